"""Kubernetes API discovery against a real kube-apiserver and etcd."""
import os
import time

import pytest

from k8s_env import ROOT, ControlPlane, Member, wait_for, wait_one_cluster

DEPLOY = os.path.join(ROOT, "deploy", "kubernetes")


@pytest.fixture(scope="module")
def api():
    cp = ControlPlane()
    yield cp
    cp.close()


def setup_namespace(api, name):
    """The namespace with deploy/'s ServiceAccount, Role, RoleBinding and
    Services applied (server-side, so the API server validates them)."""
    ns = api.namespace(name)
    api.kubectl("-n", ns, "apply", "--server-side", "-f", os.path.join(DEPLOY, "rbac.yaml"),
                "-f", os.path.join(DEPLOY, "service.yaml"))
    return ns, api.token(ns, "ferrocast", "ferrocast")


def test_manifests_are_valid_and_the_role_is_least_privilege(api):
    ns, _ = setup_namespace(api, "manifests")
    # The workloads cannot run here (no scheduler or kubelet), but the API
    # server validates them in full with a server-side dry run.
    for f in ("statefulset.yaml", "deployment.yaml", "pdb.yaml"):
        api.kubectl("-n", ns, "apply", "--dry-run=server", "-f", os.path.join(DEPLOY, f))
    api.kubectl("-n", ns, "apply", "--dry-run=server", "-k", DEPLOY)
    who = f"system:serviceaccount:{ns}:ferrocast"
    allowed = [("list", "endpointslices.discovery.k8s.io"), ("watch", "endpointslices.discovery.k8s.io"),
               ("get", "endpointslices.discovery.k8s.io"), ("list", "endpoints"), ("watch", "endpoints")]
    denied = [("list", "pods"), ("get", "secrets"), ("create", "endpointslices.discovery.k8s.io"),
              ("delete", "endpoints"), ("list", "services")]
    for verb, res in allowed:
        r = api.kubectl("-n", ns, "auth", "can-i", verb, res, "--as", who, check=False)
        assert r.stdout.strip() == "yes", (verb, res, r.stdout, r.stderr)
    for verb, res in denied:
        r = api.kubectl("-n", ns, "auth", "can-i", verb, res, "--as", who, check=False)
        assert r.stdout.strip() == "no", (verb, res, r.stdout, r.stderr)
    # Namespaced: nothing in another namespace.
    r = api.kubectl("-n", "default", "auth", "can-i", "list", "endpointslices.discovery.k8s.io",
                    "--as", who, check=False)
    assert r.stdout.strip() == "no"


def test_scale_1_3_5_2(api, members):
    ns, token = setup_namespace(api, "scale")
    ips = [f"10.244.91.{i}" for i in range(2, 7)]

    def scale_to(n):
        # The controller lists every pod of the headless service
        # (publishNotReadyAddresses), as soon as it has an address.
        api.publish_slice(ns, "hazelcast", [(ip, True) for ip in ips[:n]])
        while len([m for m in members if m.proc.poll() is None]) < n:
            members.append(Member(ips[len(members)], ns, token, api.ca))

    for n in (1, 3, 5):
        scale_to(n)
        wait_one_cluster(members, timeout=30)
    live = members[:2]
    for m in members[2:][::-1]:
        m.stop()  # SIGTERM, as the kubelet does
    api.publish_slice(ns, "hazelcast", [(ip, True) for ip in ips[:2]])
    wait_one_cluster(live, timeout=30)
    size, version, addrs = live[0].last_block()
    assert size == 2 and [a for a, _ in addrs] == ips[:2]
    assert version >= 7, "one version per join and per leave"
    # Discovery saw every change through its watch.
    assert "5 member address(es) from endpointslices" in live[0].log()


def test_members_started_together_form_one_cluster_without_a_merge(api, members):
    ns, token = setup_namespace(api, "together")
    ips = [f"10.244.92.{i}" for i in range(2, 6)]
    # Listed before any of them listens, then started highest address
    # first: the higher ones must wait for the lowest rather than found
    # clusters of their own.
    api.publish_slice(ns, "hazelcast", [(ip, True) for ip in ips])
    for ip in ips[::-1]:
        members.append(Member(ip, ns, token, api.ca))
        time.sleep(0.4)
    wait_one_cluster(members, timeout=40)
    founders = [m.ip for m in members if "starting a new cluster as its master" in m.log()]
    assert founders == [ips[0]], founders
    assert all(b[0] > 1 for m in members[:-1] for b in m.blocks()), \
        "a higher member printed a cluster of its own"


def test_in_cluster_configuration_from_the_service_account_files(api, members):
    ns, token = setup_namespace(api, "incluster")
    ips = [f"10.244.90.{i}" for i in (2, 3)]
    api.publish_slice(ns, "hazelcast", [(ip, True) for ip in ips])
    for ip in ips:
        members.append(Member(ip, ns, token, api.ca, in_cluster=True))
    wait_one_cluster(members, timeout=30)
    # The namespace came from the service account's namespace file.
    assert "service hazelcast in namespace incluster" in members[0].log()


def test_out_of_cluster_through_a_kubeconfig(api, members):
    # The admin kubeconfig: a client certificate instead of a token.
    ns, _ = setup_namespace(api, "kubeconfig")
    ips = [f"10.244.89.{i}" for i in (2, 3)]
    api.publish_slice(ns, "hazelcast", [(ip, True) for ip in ips])
    for ip in ips:
        members.append(Member(ip, ns, None, None, kubeconfig=api.kubeconfig))
    wait_one_cluster(members, timeout=30)


def test_a_not_ready_only_slice_still_forms_a_cluster(api, members):
    ns, token = setup_namespace(api, "notready")
    ips = [f"10.244.93.{i}" for i in range(2, 5)]
    # After a full restart no pod is ready (ready means joined), so the
    # slice holds only not-ready endpoints: they are taken.
    api.publish_slice(ns, "hazelcast", [(ip, False) for ip in ips])
    for ip in ips:
        members.append(Member(ip, ns, token, api.ca))
    wait_one_cluster(members, timeout=40)


def test_members_found_by_label_selector_across_services(api, members):
    ns, token = setup_namespace(api, "labels")
    # Two services labelled alike (say, one per zone): one cluster across both.
    a = [f"10.244.99.{i}" for i in (2, 3)]
    b = [f"10.244.99.{i}" for i in (4, 5)]
    api.publish_slice(ns, "grid-a", [(ip, True) for ip in a], labels={"app": "grid"})
    api.publish_slice(ns, "grid-b", [(ip, True) for ip in b], labels={"app": "grid"})
    api.publish_slice(ns, "other", [("10.244.99.9", True)], labels={"app": "other"})
    for ip in a + b:
        members.append(Member(ip, ns, token, api.ca,
                              extra=["--kubernetes-label-selector", "app=grid"]))
    wait_one_cluster(members, timeout=30)
    assert "endpoints labelled app=grid" in members[0].log()
    assert "10.244.99.9" not in members[0].log()


def test_endpoints_fallback_when_endpointslices_are_not_allowed(api, members):
    ns = api.namespace("legacy")
    # A Role from older manifests: core Endpoints only.
    api.kubectl("-n", ns, "create", "serviceaccount", "legacy")
    api.kubectl("-n", ns, "create", "role", "endpoints-only", "--verb=get,list,watch",
                "--resource=endpoints")
    api.kubectl("-n", ns, "create", "rolebinding", "endpoints-only", "--role=endpoints-only",
                f"--serviceaccount={ns}:legacy")
    token = api.token(ns, "legacy", "legacy")
    ips = [f"10.244.94.{i}" for i in range(2, 5)]
    api.publish_endpoints(ns, "hazelcast", ready_ips=ips[:1], not_ready_ips=ips[1:])
    members.append(Member(ips[0], ns, token, api.ca))
    wait_one_cluster(members, timeout=30)
    api.publish_endpoints(ns, "hazelcast", ready_ips=ips)
    for ip in ips[1:]:
        members.append(Member(ip, ns, token, api.ca))
    wait_one_cluster(members, timeout=30)
    log = members[0].log()
    assert "may not list endpointslices (discovery.k8s.io)" in log
    assert "reading endpoints (core) instead" in log


def test_a_token_without_the_role_gets_a_clear_rbac_error(api, members):
    ns = api.namespace("norole")
    api.kubectl("-n", ns, "create", "serviceaccount", "nobody")
    token = api.token(ns, "nobody", "nobody")
    api.publish_slice(ns, "hazelcast", [("10.244.95.2", True)])
    m = Member("10.244.95.2", ns, token, api.ca, extra=["--kubernetes-sync-timeout", "5s"])
    members.append(m)
    wait_for(lambda: "forbidden" in m.log() and m.last_block() is not None, 30,
             "the RBAC error, then a cluster of one", [m])
    log = m.log()
    assert ("forbidden: this member's service account may not list endpointslices "
            "(discovery.k8s.io) in namespace norole") in log, log
    assert "may not list endpoints (core) in namespace norole" in log, log
    assert "get, list and watch on endpointslices and endpoints" in log
    assert m.last_block()[0] == 1, "it starts alone and keeps looking"


def test_an_unreachable_or_untrusted_api_server_leaves_the_member_alone_and_looking(api, members):
    ns, token = setup_namespace(api, "unreachable")
    nobody = Member("10.244.96.2", ns, token, api.ca, api="https://127.0.90.1:6999",
                    extra=["--kubernetes-sync-timeout", "3s"])
    other_ca = os.path.join(api.dir, "other-ca.crt")
    untrusted = Member("10.244.96.3", ns, token, other_ca, extra=["--kubernetes-sync-timeout", "3s"])
    members.extend([nobody, untrusted])
    for m in members:
        wait_for(lambda m=m: m.last_block() is not None, 30, "a cluster of one", [m])
        assert m.last_block()[0] == 1
    assert "cannot reach the Kubernetes API server https://127.0.90.1:6999" in nobody.log()
    # TLS is verified: a CA that did not sign the server's certificate fails.
    assert "TLS verification of the Kubernetes API server https://127.0.90.1:6443/ failed" \
        in untrusted.log(), untrusted.log()
    assert "UnknownIssuer" in untrusted.log()


def test_a_missing_service_is_reported(api, members):
    ns, token = setup_namespace(api, "missing")
    m = Member("10.244.97.2", ns, token, api.ca, service="no-such-service")
    members.append(m)
    wait_for(lambda: m.last_block() is not None, 30, "a cluster of one", [m])
    assert "no endpointslices (discovery.k8s.io) for service no-such-service in namespace missing" \
        in m.log()


def test_http_health_checks(api, members):
    import urllib.error
    import urllib.request
    ns, token = setup_namespace(api, "health")
    # A lower-addressed pod is listed but never starts: the member waits
    # for it (startup patience) and is live but not ready meanwhile.
    api.publish_slice(ns, "hazelcast", [("10.244.98.1", True), ("10.244.98.2", True)])
    m = Member("10.244.98.2", ns, token, api.ca, extra=["--startup-patience", "4s"])
    members.append(m)

    def get(path):
        try:
            with urllib.request.urlopen(f"http://10.244.98.2:5701{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except (urllib.error.URLError, ConnectionError) as e:
            if isinstance(e, urllib.error.HTTPError):
                return e.code, e.read().decode()
            return None, str(e)
    wait_for(lambda: get("/hazelcast/health/live")[0] == 200, 10, "live", [m])
    assert get("/hazelcast/health/ready") == (503, "not ready\n")
    status, body = get("/hazelcast/health")
    assert status == 503 and '"nodeState":"JOINING"' in body, body
    wait_one_cluster([m])
    wait_for(lambda: get("/hazelcast/health/ready")[0] == 200, 10, "ready", [m])
    assert get("/hazelcast/health/live") == (200, "live\n")
    status, body = get("/hazelcast/health")
    assert status == 200 and '"nodeState":"ACTIVE"' in body and '"clusterSize":1' in body
    assert get("/nothing")[0] == 404
