"""Values written by the Python client read by the Rust client, and the other way round."""
import os
import subprocess

from hazelcast.core import HazelcastJsonValue

from cluster import ROOT
from conftest import PASSWORD

INTEROP = os.environ.get("FERROCAST_INTEROP_BIN", os.path.join(ROOT, "target", "debug", "examples", "interop"))


def rust(cluster, mode, map_name):
    out = subprocess.run([INTEROP, cluster.addresses()[0], PASSWORD, mode, map_name],
                         check=True, capture_output=True, text=True, timeout=60)
    return out.stdout.splitlines()


def test_python_writes_rust_reads(client, cluster3):
    m = client.get_map("from-python").blocking()
    m.put("str", "from python ✓")
    m.put("int", 42)
    m.put("float", 2.5)
    m.put("bool", True)
    m.put("bytes", bytearray(b"\x01\x02\x03"))
    m.put("json", HazelcastJsonValue('{"lang": "python"}'))
    assert rust(cluster3, "read", "from-python") == [
        "bool=bool:true",
        "bytes=bytes:[1, 2, 3]",
        "float=float:2.5",
        "int=int:42",
        'json=json:{"lang":"python"}',
        "str=str:from python ✓",
    ]


def test_rust_writes_python_reads(client, cluster3):
    rust(cluster3, "write", "from-rust")
    m = client.get_map("from-rust").blocking()
    assert m.get("str") == "from rust ✓"
    assert m.get("int") == 42
    assert m.get("long") == 1 << 40
    assert m.get("float") == 2.5
    assert m.get("bool") is True
    assert m.get("bytes") == bytearray(b"\x01\x02\x03")
    assert m.get("json").loads() == {"lang": "rust", "n": [1, 2]}
