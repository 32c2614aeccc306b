"""Data moves with partition ownership: scaling up and graceful leaves lose nothing."""
import signal
import time

import hazelcast

from cluster import Cluster


def connect(cluster):
    return hazelcast.HazelcastClient(cluster_members=cluster.addresses(), cluster_name="dev",
                                     cluster_connect_timeout=15)


def owners(client):
    ps = client.partition_service
    return {str(ps.get_partition_owner(p)) for p in range(271)}


def wait_for(pred, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.1)
    return False


def test_scale_up_moves_data_to_new_members():
    cluster = Cluster(72, 1)
    client = connect(cluster)
    try:
        m = client.get_map("scale").blocking()
        m.put_all({f"k{i}": i for i in range(3000)})
        cluster.add()
        cluster.add()
        cluster.wait_size(3)
        assert wait_for(lambda: len(owners(client)) == 3), "partitions never spread to the new members"
        assert m.size() == 3000
        assert m.get_all([f"k{i}" for i in range(3000)]) == {f"k{i}": i for i in range(3000)}
    finally:
        client.shutdown()
        cluster.close()


def test_graceful_leave_of_members_loses_no_entry():
    cluster = Cluster(73, 3)
    client = connect(cluster)
    try:
        m = client.get_map("leave").blocking()
        m.put_all({f"k{i}": f"v{i}" for i in range(3000)})
        # The master leaves first, then another member: each hands its
        # partitions over before it exits.
        for victim in (cluster.members[0], cluster.members[1]):
            victim.stop(signal.SIGTERM)
            assert victim.proc.returncode == 0
            assert "handed over" in victim.log()
            assert m.size() == 3000
        survivors = cluster.live()
        assert len(survivors) == 1
        assert wait_for(lambda: len(owners(client)) == 1)
        assert m.get_all([f"k{i}" for i in range(3000)]) == {f"k{i}": f"v{i}" for i in range(3000)}
    finally:
        client.shutdown()
        cluster.close()


def test_writes_during_a_graceful_leave_are_kept():
    cluster = Cluster(74, 3)
    client = connect(cluster)
    try:
        m = client.get_map("busy").blocking()
        acknowledged = {}
        victim = cluster.members[2]
        victim.proc.send_signal(signal.SIGTERM)
        i = 0
        while victim.proc.poll() is None or i < 500:
            m.put(f"w{i}", i)
            acknowledged[f"w{i}"] = i
            i += 1
        assert m.get_all(list(acknowledged)) == acknowledged
        assert m.size() == len(acknowledged)
    finally:
        client.shutdown()
        cluster.close()
