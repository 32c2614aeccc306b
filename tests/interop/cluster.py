"""Starting real ferrocast members on loopback addresses for interop tests."""
import os
import re
import signal
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("FERROCAST_BIN", os.path.join(ROOT, "target", "debug", "ferrocast"))
BLOCK = re.compile(r"^Members \{size:(\d+), ver:(\d+)\} \[$", re.M)
FAST = ["--heartbeat-interval", "250ms", "--failure-timeout", "2s", "--merge-interval", "1s"]


class Member:
    def __init__(self, ip, members, extra=()):
        self.ip = ip
        self.address = f"{ip}:5701"
        self.log_file = tempfile.NamedTemporaryFile(prefix=f"ferrocast-{ip}-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            [BINARY, "--bind", self.address, "--members", members, *FAST, *extra],
            stdout=self.log_file, stderr=subprocess.STDOUT,
            env={**os.environ, "FERROCAST_LOG": os.environ.get("FERROCAST_TEST_LOG", "info")})

    def log(self):
        with open(self.log_file.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def size(self):
        sizes = BLOCK.findall(self.log())
        return int(sizes[-1][0]) if sizes else 0

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Cluster:
    """Members on 127.0.<subnet>.2.. sharing one static member list."""

    def __init__(self, subnet, n, extra=(), hosts=6):
        self.subnet = subnet
        self.extra = list(extra)
        self.all_ips = [f"127.0.{subnet}.{h}" for h in range(2, 2 + hosts)]
        self.members = []
        for _ in range(n):
            self.add()
        self.wait_size(n)

    def add(self):
        ip = self.all_ips[len(self.members)]
        m = Member(ip, ",".join(self.all_ips), self.extra)
        self.members.append(m)
        return m

    def live(self):
        return [m for m in self.members if m.proc.poll() is None]

    def addresses(self):
        return [m.address for m in self.live()]

    def wait_size(self, n, timeout=30):
        end = time.time() + timeout
        while time.time() < end:
            if all(m.size() == n for m in self.live()):
                return
            time.sleep(0.1)
        logs = "\n".join(f"--- {m.ip}\n{m.log()}" for m in self.live())
        raise AssertionError(f"cluster did not reach {n} members:\n{logs}")

    def close(self):
        for m in self.members:
            m.stop(signal.SIGKILL)
