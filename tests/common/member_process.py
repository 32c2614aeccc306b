"""One ferrocast member process for the Python test suites: started with
its output in a log file, read back, stopped gracefully or not."""
import os
import re
import signal
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("FERROCAST_BIN", os.path.join(ROOT, "target", "debug", "ferrocast"))
FAST = ["--heartbeat-interval", "250ms", "--failure-timeout", "2s", "--merge-interval", "1s"]
BLOCK = re.compile(r"^Members \{size:(\d+), ver:(\d+)\} \[\n((?:\t.*\n)*)\]", re.M)


class MemberProcess:
    def __init__(self, ip, address, argv, env=None, prefix="ferrocast"):
        self.ip = ip
        self.address = address
        self.log_file = tempfile.NamedTemporaryFile(prefix=f"{prefix}-{ip}-", suffix=".log",
                                                    delete=False)
        env = dict(os.environ if env is None else env)
        env["FERROCAST_LOG"] = os.environ.get("FERROCAST_TEST_LOG", "info")
        self.proc = subprocess.Popen(argv, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     env=env)

    def log(self):
        with open(self.log_file.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def blocks(self):
        """Every Members block printed: (size, version, [(ip, port)])."""
        return [(int(s), int(v), re.findall(r"Member \[([\d.]+)\]:(\d+)", body))
                for s, v, body in BLOCK.findall(self.log())]

    def last_block(self):
        b = self.blocks()
        return b[-1] if b else None

    def size(self):
        b = self.last_block()
        return b[0] if b else 0

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
