"""A real Kubernetes control plane on loopback, for discovery tests.

etcd and kube-apiserver (built from source by scripts/k8s-binaries.sh) run
on 127.0.90.1 with TLS, RBAC and service-account token signing. The tests
play the kubelet's and the EndpointSlice controller's parts: they start
ferrocast processes on 127.0.x.y with a real service-account token and the
CA, and publish the processes' addresses in EndpointSlices.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "common"))
from member_process import BINARY, FAST, ROOT, MemberProcess  # noqa: E402,F401

K8S_BIN = os.environ.get("FERROCAST_K8S_BIN", "")
API_IP = "127.0.90.1"
API_URL = f"https://{API_IP}:6443"


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def openssl_certs(d):
    """A CA, the API server's certificate, an admin client certificate and
    the service-account signing key pair."""
    def ossl(*args):
        run(["openssl", *args], cwd=d)
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
         "-days", "2", "-subj", "/CN=ferrocast-test-ca")
    ext = os.path.join(d, "server.ext")
    with open(ext, "w") as f:
        f.write(f"subjectAltName=IP:{API_IP},DNS:localhost,DNS:kubernetes.default.svc\n"
                "extendedKeyUsage=serverAuth\n")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
         "-subj", "/CN=kube-apiserver")
    ossl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "server.ext")
    with open(os.path.join(d, "client.ext"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "admin.key", "-out", "admin.csr",
         "-subj", "/O=system:masters/CN=admin")
    ossl("x509", "-req", "-in", "admin.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "admin.crt", "-days", "2", "-extfile", "client.ext")
    ossl("genrsa", "-out", "sa.key", "2048")
    ossl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub")
    # A second CA that signed nothing here: a member trusting it must refuse the server.
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other-ca.key",
         "-out", "other-ca.crt", "-days", "2", "-subj", "/CN=some-other-ca")


POD_RANGE = "10.244.0.0/16"


def check_isolated_network():
    """The API server refuses loopback addresses in EndpointSlices, so the
    "pods" use 10.244.x.y. These tests run in a network namespace of their
    own (scripts/k8s-tests.sh) where that range is local and nothing else
    is reachable: no packet can leave the machine."""
    local = run(["ip", "route", "show", "table", "local"]).stdout
    default = run(["ip", "route", "show", "default"]).stdout.strip()
    if f"local {POD_RANGE}" not in local or default:
        raise RuntimeError(f"run these tests through scripts/k8s-tests.sh: they need a network "
                           f"namespace where {POD_RANGE} is local and there is no default route")


class ControlPlane:
    def __init__(self):
        check_isolated_network()
        if not K8S_BIN or not os.path.exists(os.path.join(K8S_BIN, "kube-apiserver")):
            raise RuntimeError("FERROCAST_K8S_BIN must name the bin directory printed by "
                               "scripts/k8s-binaries.sh")
        self.dir = tempfile.mkdtemp(prefix="ferrocast-k8s-")
        self.procs = []
        openssl_certs(self.dir)
        self.ca = os.path.join(self.dir, "ca.crt")
        self.kubeconfig = os.path.join(self.dir, "admin.kubeconfig")
        with open(self.kubeconfig, "w") as f:
            f.write(f"""apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {{server: "{API_URL}", certificate-authority: "{self.ca}"}}
users:
- name: admin
  user: {{client-certificate: "{self.dir}/admin.crt", client-key: "{self.dir}/admin.key"}}
contexts:
- name: test
  context: {{cluster: test, user: admin}}
current-context: test
""")
        self.etcd_log = open(os.path.join(self.dir, "etcd.log"), "w")
        self.procs.append(subprocess.Popen([
            os.path.join(K8S_BIN, "etcd"), "--data-dir", os.path.join(self.dir, "etcd"),
            "--listen-client-urls", f"http://{API_IP}:2379",
            "--advertise-client-urls", f"http://{API_IP}:2379",
            "--listen-peer-urls", f"http://{API_IP}:2380",
            "--initial-advertise-peer-urls", f"http://{API_IP}:2380",
            "--initial-cluster", f"default=http://{API_IP}:2380",
            "--unsafe-no-fsync", "--log-level", "warn"],
            stdout=self.etcd_log, stderr=subprocess.STDOUT))
        self.api_log = open(os.path.join(self.dir, "apiserver.log"), "w")
        d = self.dir
        self.procs.append(subprocess.Popen([
            os.path.join(K8S_BIN, "kube-apiserver"),
            f"--etcd-servers=http://{API_IP}:2379",
            f"--bind-address={API_IP}", f"--advertise-address={API_IP}", "--secure-port=6443",
            f"--tls-cert-file={d}/server.crt", f"--tls-private-key-file={d}/server.key",
            f"--client-ca-file={d}/ca.crt",
            f"--service-account-key-file={d}/sa.pub",
            f"--service-account-signing-key-file={d}/sa.key",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--authorization-mode=RBAC",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--enable-priority-and-fairness=false",
            f"--cert-dir={d}/apiserver-certs", "-v=1"],
            stdout=self.api_log, stderr=subprocess.STDOUT))
        self.wait_ready()

    def wait_ready(self, timeout=90):
        end = time.time() + timeout
        while time.time() < end:
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"control plane process exited: {self.logs()}")
            r = subprocess.run(self.kubectl_argv("get", "--raw", "/readyz"),
                               capture_output=True, text=True)
            if r.returncode == 0 and r.stdout.strip() == "ok":
                # RBAC's bootstrap roles are written just after readyz.
                r = subprocess.run(self.kubectl_argv("get", "clusterrole", "admin"),
                                   capture_output=True, text=True)
                if r.returncode == 0:
                    return
            time.sleep(0.5)
        raise RuntimeError(f"kube-apiserver not ready within {timeout}s: {self.logs()}")

    def logs(self):
        out = []
        for name in ("etcd.log", "apiserver.log"):
            with open(os.path.join(self.dir, name), errors="replace") as f:
                out.append(f"--- {name}\n" + f.read()[-4000:])
        return "\n".join(out)

    def kubectl_argv(self, *args):
        return [os.path.join(K8S_BIN, "kubectl"), "--kubeconfig", self.kubeconfig, *args]

    def kubectl(self, *args, input=None, check=True):
        r = subprocess.run(self.kubectl_argv(*args), input=input, capture_output=True, text=True)
        if check and r.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {r.stderr}")
        return r

    def namespace(self, name):
        self.kubectl("create", "namespace", name)
        return name

    def token(self, ns, sa, name):
        """A real bound service-account token (TokenRequest API), in a file."""
        token = self.kubectl("-n", ns, "create", "token", sa, "--duration", "2h").stdout.strip()
        path = os.path.join(self.dir, f"{ns}-{name}.token")
        with open(path, "w") as f:
            f.write(token)
        return path

    def publish_slice(self, ns, service, endpoints, name=None, port_name="hazelcast", port=5701,
                      labels=None):
        """Plays the EndpointSlice controller: `endpoints` is a list of
        (ip, ready) pairs; `labels` are the Service's, which the controller
        copies onto its slices."""
        slice_ = {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name or f"{service}-test",
                         "labels": {"kubernetes.io/service-name": service,
                                    "endpointslice.kubernetes.io/managed-by": "ferrocast-tests",
                                    **(labels or {})}},
            "addressType": "IPv4",
            "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": ready}}
                          for ip, ready in endpoints],
        }
        self.kubectl("-n", ns, "apply", "--server-side", "--force-conflicts", "-f", "-",
                     input=json.dumps(slice_))

    def publish_endpoints(self, ns, service, ready_ips, not_ready_ips=()):
        """Plays the (legacy) Endpoints controller."""
        subset = {"ports": [{"name": "hazelcast", "port": 5701, "protocol": "TCP"}]}
        if ready_ips:
            subset["addresses"] = [{"ip": ip} for ip in ready_ips]
        if not_ready_ips:
            subset["notReadyAddresses"] = [{"ip": ip} for ip in not_ready_ips]
        obj = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": service},
               "subsets": [subset]}
        self.kubectl("-n", ns, "apply", "--server-side", "--force-conflicts", "-f", "-",
                     input=json.dumps(obj))

    def close(self):
        for p in self.procs[::-1]:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class Member(MemberProcess):
    """A ferrocast process as a pod would run it, talking to the real API."""

    def __init__(self, ip, ns, token, ca, service="hazelcast", extra=(), api=API_URL,
                 in_cluster=False, kubeconfig=None):
        address = f"{ip}:5701"
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
        env.update({"POD_IP": ip, "POD_NAMESPACE": ns, "HAZELCAST_SERVICE": service,
                    "KUBERNETES_MASTER": api})
        argv = [BINARY, "--bind", address, "--discovery", "kubernetes", *FAST, *extra]
        if in_cluster:
            # As in a pod: the service account's files at their fixed path
            # (in a private mount namespace, over a tmpfs on /run) and the
            # KUBERNETES_SERVICE_* variables, no flags and no POD_NAMESPACE.
            sa = "/run/secrets/kubernetes.io/serviceaccount"
            del env["KUBERNETES_MASTER"], env["POD_NAMESPACE"]
            env.update({"KUBERNETES_SERVICE_HOST": API_URL.split("//")[1].split(":")[0],
                        "KUBERNETES_SERVICE_PORT": API_URL.rsplit(":", 1)[1]})
            script = (f"mount -t tmpfs tmpfs /run && mkdir -p {sa} && cp {token} {sa}/token && "
                      f"cp {ca} {sa}/ca.crt && printf %s {ns} > {sa}/namespace && "
                      f"exec \"$@\"")
            argv = ["unshare", "--mount", "sh", "-c", script, "sh", *argv]
        elif kubeconfig:
            del env["KUBERNETES_MASTER"]
            argv += ["--kubeconfig", kubeconfig]
        else:
            argv += ["--kubernetes-token-file", token, "--kubernetes-ca-file", ca]
        super().__init__(ip, address, argv, env, prefix="ferrocast-k8s")


def wait_for(cond, timeout, what, members=()):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return
        time.sleep(0.1)
    logs = "\n".join(f"--- {m.ip}\n{m.log()[-6000:]}" for m in members)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{logs}")


def wait_one_cluster(members, timeout=30):
    """Every member's last Members block is the same list and version."""
    n = len(members)

    def agreed():
        blocks = [m.last_block() for m in members]
        if any(b is None or b[0] != n for b in blocks):
            return False
        return len({(b[1], tuple(b[2])) for b in blocks}) == 1
    wait_for(agreed, timeout, f"one cluster of {n}", members)
