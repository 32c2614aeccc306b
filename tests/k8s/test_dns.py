"""DNS discovery against a real DNS server (dnsmasq) on loopback serving a
headless service's records, as Kubernetes' cluster DNS would."""
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from k8s_env import BINARY, FAST, MemberProcess, wait_for, wait_one_cluster

DNS = "127.0.53.1:5353"
NAME = "hazelcast.dnsns.svc.cluster.local"


class Dnsmasq:
    """dnsmasq serving the service's A records from a hosts file (reread on
    SIGHUP) and SRV records from its configuration (read at start)."""

    def __init__(self, srv_targets=()):
        if not shutil.which("dnsmasq"):
            raise RuntimeError("dnsmasq is not installed (apt-get install dnsmasq)")
        self.dir = tempfile.mkdtemp(prefix="ferrocast-dns-")
        self.hosts = os.path.join(self.dir, "hosts")
        conf = os.path.join(self.dir, "dnsmasq.conf")
        with open(conf, "w") as f:
            for pod, _, port in srv_targets:
                f.write(f"srv-host=_hazelcast._tcp.{NAME},{pod}.{NAME},{port}\n")
        self.set_records([], srv_targets)
        self.proc = subprocess.Popen(
            ["dnsmasq", "--no-daemon", f"--conf-file={conf}", "--no-resolv", "--no-hosts",
             "--bind-interfaces", "--listen-address=127.0.53.1", "--port=5353", "--pid-file=",
             "--user=root", f"--addn-hosts={self.hosts}", "--local-ttl=1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        assert self.proc.poll() is None, "dnsmasq did not start"

    def set_records(self, a_records, srv_targets=()):
        """A records of the service; the SRV targets' own A records."""
        with open(self.hosts, "w") as f:
            for ip in a_records:
                f.write(f"{ip} {NAME}\n")
            for pod, ip, _ in srv_targets:
                f.write(f"{ip} {pod}.{NAME}\n")
        if hasattr(self, "proc"):
            self.proc.send_signal(signal.SIGHUP)

    def close(self):
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class DnsMember(MemberProcess):
    def __init__(self, ip, port=5701, extra=()):
        address = f"{ip}:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
        env.update({"POD_NAMESPACE": "dnsns", "HAZELCAST_SERVICE": "hazelcast"})
        super().__init__(ip, address,
                         [BINARY, "--bind", address, "--discovery", "dns", "--dns-server", DNS,
                          "--dns-timeout", "2s", *FAST, *extra],
                         env, prefix="ferrocast-dns")


@pytest.fixture
def dns():
    d = Dnsmasq()
    yield d
    d.close()


def test_a_records_of_the_headless_service(dns, members):
    ips = [f"127.0.99.{i}" for i in range(2, 6)]
    dns.set_records(ips[:3])
    for ip in ips[:3][::-1]:
        members.append(DnsMember(ip))
    wait_one_cluster(members, timeout=30)
    # A new pod: its record appears, it finds the others by name.
    dns.set_records(ips)
    members.append(DnsMember(ips[3]))
    wait_one_cluster(members, timeout=30)
    assert f"DNS {NAME} (server {DNS})" in members[0].log()


def test_srv_records_give_the_port(members):
    ips = [f"127.0.99.{i}" for i in range(10, 13)]
    # Members on port 5801, which only the SRV records tell.
    dns = Dnsmasq(srv_targets=[(f"pod-{i}", ip, 5801) for i, ip in enumerate(ips)])
    try:
        for ip in ips:
            members.append(DnsMember(ip, port=5801))
        wait_one_cluster(members, timeout=30)
    finally:
        dns.close()


def test_an_unanswering_dns_server_leaves_the_member_alone_and_looking(members):
    m = DnsMember("127.0.99.20")
    members.append(m)
    wait_for(lambda: m.last_block() is not None, 30, "a cluster of one", [m])
    assert m.last_block()[0] == 1
    assert f"cannot resolve '{NAME}'" in m.log(), m.log()
