import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from cluster import Cluster  # noqa: E402

PASSWORD = "interop-secret"


@pytest.fixture(scope="module")
def cluster3():
    # Per-entry statistics on, so entry views report hits (off by default).
    c = Cluster(71, 3, extra=["--password", PASSWORD, "--per-entry-stats"])
    yield c
    c.close()


@pytest.fixture
def client(cluster3):
    import hazelcast
    c = hazelcast.HazelcastClient(
        cluster_members=cluster3.addresses(), cluster_name="dev",
        creds_username="dev", creds_password=PASSWORD, cluster_connect_timeout=15)
    yield c
    c.shutdown()
