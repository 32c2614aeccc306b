"""hazelcast-python-client 5.7.0 against a 3-member ferrocast cluster with a password."""
import time
import uuid

import hazelcast
import pytest
from hazelcast.core import HazelcastJsonValue
from hazelcast.errors import IllegalStateError

from conftest import PASSWORD


def fresh_map(client):
    return client.get_map("m-" + uuid.uuid4().hex[:8]).blocking()


def test_single_key_operations(client):
    m = fresh_map(client)
    assert m.put("a", "1") is None
    assert m.put("a", "2") == "1"
    assert m.get("a") == "2"
    assert m.get("missing") is None
    m.set("b", "x")
    assert m.get("b") == "x"
    assert m.put_if_absent("b", "y") == "x"
    assert m.put_if_absent("c", "z") is None
    assert m.replace("c", "zz") == "z"
    assert m.replace("nope", "v") is None
    assert not m.contains_key("nope")
    assert m.replace_if_same("c", "zz", "zzz")
    assert not m.replace_if_same("c", "wrong", "q")
    assert m.get("c") == "zzz"
    assert not m.remove_if_same("c", "wrong")
    assert m.remove_if_same("c", "zzz")
    assert m.remove("a") == "2"
    assert m.remove("a") is None
    m.delete("b")
    assert not m.contains_key("b")
    assert m.is_empty()


def test_map_wide_operations(client):
    m = fresh_map(client)
    data = {f"key-{i}": i for i in range(500)}
    m.put_all(data)
    assert m.size() == 500
    assert not m.is_empty()
    assert sorted(m.key_set()) == sorted(data)
    assert sorted(m.values()) == sorted(data.values())
    assert dict(m.entry_set()) == data
    some = [f"key-{i}" for i in range(0, 500, 7)] + ["absent"]
    assert m.get_all(some) == {k: data[k] for k in some if k in data}
    assert m.contains_value(499)
    assert not m.contains_value(500)
    m.clear()
    assert m.size() == 0
    assert m.is_empty()


def test_values_of_several_types(client):
    m = fresh_map(client)
    values = {
        "str": "héllo wörld",
        "int": 42,
        "negative": -7,
        "float": 3.25,
        "bool": True,
        "bytes": bytearray(b"\x00\x01\xff"),
        "json": HazelcastJsonValue('{"a": [1, 2, 3]}'),
    }
    for k, v in values.items():
        m.put(k, v)
    for k, v in values.items():
        got = m.get(k)
        if k == "json":
            assert got.loads() == {"a": [1, 2, 3]}
        else:
            assert got == v, k
    # Keys of several types too.
    m.put(7, "int key")
    m.put(2.5, "float key")
    assert m.get(7) == "int key" and m.get(2.5) == "float key"


def test_ttl_set_ttl_evict_and_entry_view(client):
    m = fresh_map(client)
    m.put("short", "v", ttl=1)
    m.put("long", "v")
    assert m.get("short") == "v"
    m.set_ttl("long", 1)
    time.sleep(2.2)
    assert m.get("short") is None
    assert m.get("long") is None
    m.put("e", "v")
    assert m.evict("e")
    assert not m.evict("e")
    assert m.get("e") is None
    m.put("view", "v1")
    m.get("view")
    m.put("view", "v2")
    view = m.get_entry_view("view")
    assert view.value == "v2" and view.key == "view"
    assert view.hits >= 1 and view.version == 1
    assert m.get_entry_view("none") is None


def test_entry_listener_events(client):
    m = fresh_map(client)
    events = []
    reg = m.add_entry_listener(
        include_value=True,
        added_func=lambda e: events.append(("added", e.key, e.value)),
        updated_func=lambda e: events.append(("updated", e.key, e.value, e.old_value)),
        removed_func=lambda e: events.append(("removed", e.key, e.old_value)),
        expired_func=lambda e: events.append(("expired", e.key)),
    )
    for i in range(20):
        m.put(f"k{i}", i)
    m.put("k0", 100)
    m.remove("k1")
    m.put("gone", "soon", ttl=1)
    deadline = time.time() + 10
    while time.time() < deadline and ("expired", "gone") not in events:
        time.sleep(0.1)
    assert sorted(e for e in events if e[0] == "added") == sorted(
        [("added", f"k{i}", i) for i in range(20)] + [("added", "gone", "soon")])
    assert ("updated", "k0", 100, 0) in events
    assert ("removed", "k1", 1) in events
    assert ("expired", "gone") in events
    assert m.remove_entry_listener(reg)
    before = len(events)
    m.put("after", 1)
    time.sleep(0.5)
    assert len(events) == before


def test_smart_routing_spreads_partitions_over_all_members(client, cluster3):
    m = fresh_map(client)
    for i in range(100):
        m.put(i, i)
    ps = client.partition_service
    assert ps.get_partition_count() == 271
    owners = {}
    for p in range(271):
        owner = ps.get_partition_owner(p)
        owners[owner] = owners.get(owner, 0) + 1
    assert len(owners) == 3
    assert sorted(owners.values()) == [90, 90, 91]
    members = {str(mem.uuid) for mem in client.cluster_service.get_members()}
    assert {str(o) for o in owners} == members
    assert len(client._connection_manager.active_connections) == 3


def test_unisocket_client_is_forwarded_to_owners(cluster3):
    c = hazelcast.HazelcastClient(
        cluster_members=[cluster3.addresses()[0]], cluster_name="dev", smart_routing=False,
        creds_username="dev", creds_password=PASSWORD, cluster_connect_timeout=15)
    try:
        m = c.get_map("unisocket").blocking()
        for i in range(300):
            m.put(f"u{i}", i)
        assert m.size() == 300
        assert all(m.get(f"u{i}") == i for i in range(300))
        assert len(c._connection_manager.active_connections) == 1
    finally:
        c.shutdown()


def test_distributed_objects_and_destroy(client):
    name = "objects-" + uuid.uuid4().hex[:6]
    m = client.get_map(name).blocking()
    m.put("a", 1)
    names = [o.name for o in client.get_distributed_objects()]
    assert name in names
    m.destroy()
    assert client.get_map(name).blocking().size() == 0


@pytest.mark.parametrize("cluster_name,password", [("dev", "wrong"), ("other", PASSWORD)])
def test_wrong_credentials_are_refused(cluster3, cluster_name, password):
    with pytest.raises(IllegalStateError):
        hazelcast.HazelcastClient(
            cluster_members=cluster3.addresses(), cluster_name=cluster_name,
            creds_username=cluster_name, creds_password=password, cluster_connect_timeout=3)
    assert any("refused: wrong cluster name or credentials" in m.log() for m in cluster3.members)
