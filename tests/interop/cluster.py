"""Starting real ferrocast members on loopback addresses for interop tests."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "common"))
from member_process import FAST, ROOT, BINARY, MemberProcess  # noqa: E402,F401


class Member(MemberProcess):
    def __init__(self, ip, members, extra=()):
        address = f"{ip}:5701"
        super().__init__(ip, address,
                         [BINARY, "--bind", address, "--members", members, *FAST, *extra])


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
