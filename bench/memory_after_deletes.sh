#!/usr/bin/env bash
# Resident memory of one member after loading 1,000,000 entries (16-byte
# keys, 100-byte values, ferrocast-bench's preload) and after deleting all
# but 10,000 of them again through the real Hazelcast Python client: what a
# map that emptied (deletes, expiry) gives back.
#   bench/memory_after_deletes.sh [path/to/ferrocast]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p ferrocast-server -p ferrocast-bench
BIN="${1:-target/release/ferrocast}"
VENV="${HOME}/.cache/ferrocast/python-hazelcast-5.7.0"
if ! "$VENV/bin/python" -c "import hazelcast" 2>/dev/null; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "hazelcast-python-client==5.7.0" pytest
fi
ADDR=127.0.78.5:5701
"$BIN" --bind "$ADDR" --members "$ADDR" >/dev/null 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null || true' EXIT
sleep 0.5
target/release/ferrocast-bench --addresses "$ADDR" --ops 1 --warmup 0 --connections 1 \
    --in-flight 1 --keys 1000000 --value-size 100 --preload >/dev/null 2>&1
sleep 2
"$VENV/bin/python" - "$ADDR" "$PID" <<'PY' 2>&1 | grep -v -e WARNING -e INFO
import sys, time, hazelcast
addr, pid = sys.argv[1], int(sys.argv[2])
def rss():
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024
client = hazelcast.HazelcastClient(cluster_members=[addr], cluster_name="dev")
m = client.get_map("bench")
loaded, size = rss(), m.size().result()
start, pending = time.time(), []
for i in range(10_000, 1_000_000):
    pending.append(m.delete(f"k{i:015d}"))  # ferrocast-bench's 16-byte keys
    if len(pending) == 2000:
        for f in pending:
            f.result()
        pending = []
for f in pending:
    f.result()
took, left = time.time() - start, m.size().result()
time.sleep(2)
print(f"{size} entries: {loaded:.1f} MiB; deleted {size - left} in {took:.1f} s, "
      f"{left} left: {rss():.1f} MiB")
client.shutdown()
PY
