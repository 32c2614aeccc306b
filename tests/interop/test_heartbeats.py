"""Client heartbeats: the Hazelcast Python client's pings keep an idle
connection open on a member that disconnects silent clients."""
import time

import hazelcast

from cluster import Cluster

CLOSED = "sent nothing for 1s; closing the connection"


def test_an_idle_python_client_is_kept_by_its_pings():
    cluster = Cluster(75, 1, extra=["--client-heartbeat-timeout", "1s"])
    member = cluster.members[0]
    # Pings every 0.3 s when it has sent nothing (the default is 5 s).
    client = hazelcast.HazelcastClient(cluster_members=cluster.addresses(), cluster_name="dev",
                                       cluster_connect_timeout=15, heartbeat_interval=0.3)
    try:
        m = client.get_map("idle").blocking()
        m.put("k", 1)
        time.sleep(2.5)
        assert member.log().count(CLOSED) == 0, member.log()
        assert m.get("k") == 1
    finally:
        client.shutdown()
    # With its default 5 s interval the same client counts as gone.
    quiet = hazelcast.HazelcastClient(cluster_members=cluster.addresses(), cluster_name="dev",
                                      cluster_connect_timeout=15)
    try:
        quiet.get_map("idle").blocking().put("q", 2)
        end = time.time() + 5
        while time.time() < end and CLOSED not in member.log():
            time.sleep(0.1)
        assert CLOSED in member.log(), member.log()
    finally:
        quiet.shutdown()
        cluster.close()
