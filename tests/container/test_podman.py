"""The container image: built from deploy/ with podman, three containers on
a podman network of our own form one cluster, a killed one is dropped."""
import os
import re
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager=cgroupfs"]
ULIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=1000:1000"]
IMAGE = "localhost/ferrocast:dev"
BLOCK = re.compile(r"^Members \{size:(\d+), ver:(\d+)\} \[$", re.M)
TAG = f"fctest{os.getpid()}"


def podman(*args, check=True):
    r = subprocess.run([*PODMAN, *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: {r.stderr}")
    return r


@pytest.fixture(scope="module")
def image():
    if not os.environ.get("FERROCAST_IMAGE_BUILT"):
        r = subprocess.run(["bash", os.path.join(ROOT, "deploy", "build-image.sh")],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-3000:]
        print(r.stdout.strip())
    size = int(podman("image", "inspect", IMAGE, "--format", "{{.Size}}").stdout.strip())
    print(f"image {IMAGE}: {size} bytes ({size / 1e6:.1f} MB)")
    return size


@pytest.fixture
def network():
    name = f"{TAG}-net"
    podman("network", "create", name)
    yield name
    podman("rm", "-f", "-t", "0", *[f"{TAG}-{i}" for i in range(1, 4)], check=False)
    podman("network", "rm", "-f", name, check=False)


def last_size(name):
    logs = podman("logs", name, check=False)
    sizes = BLOCK.findall(logs.stdout + logs.stderr)
    return int(sizes[-1][0]) if sizes else 0


def wait_sizes(names, n, timeout=40):
    end = time.time() + timeout
    while time.time() < end:
        if all(last_size(c) == n for c in names):
            return
        time.sleep(0.3)
    logs = "\n".join(f"--- {c}\n{podman('logs', c, check=False).stderr[-3000:]}" for c in names)
    raise AssertionError(f"containers did not reach {n} members:\n{logs}")


def test_image_is_small_and_static(image):
    assert image < 15_000_000, f"image is {image} bytes, over 15 MB"
    cfg = podman("image", "inspect", IMAGE, "--format", "{{json .Config.User}}").stdout
    assert "65532" in cfg, "the image runs as a non-root user"


def test_three_containers_form_one_cluster_and_drop_a_killed_one(image, network):
    names = [f"{TAG}-{i}" for i in range(1, 4)]
    for name in names:
        # Container names resolve through the network's DNS: a static list
        # of names, as with Hazelcast's TCP-IP join in Docker.
        podman("run", "-d", "--name", name, "--network", network, *ULIMITS, IMAGE,
               "--members", ",".join(names), "--heartbeat-interval", "500ms",
               "--failure-timeout", "3s", "--group", "podman", "--password", "in-containers")
    wait_sizes(names, 3)
    podman("kill", names[1])
    wait_sizes([names[0], names[2]], 2, timeout=20)
    # A readable Members block, with container addresses.
    logs = podman("logs", names[0]).stdout
    assert re.search(r"Members \{size:2, ver:\d+\} \[\n\tMember \[10\.", logs), logs[-2000:]
