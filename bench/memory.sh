#!/usr/bin/env bash
# Resident memory of one member after loading 1,000,000 entries (16-byte
# keys, 100-byte values, through ferrocast-bench's put_all), minus its idle
# resident set, per entry above the raw data (28 + 112 bytes as the clients
# serialize them). Then 2,000,000 operations over all keys, half gets and
# half sets (same sizes), and the resident set again: a layout that moves
# entries between allocator size classes, or leaks, shows there.
# Deterministic enough to compare builds: run it 5 times.
#   bench/memory.sh [path/to/ferrocast] [member flags, e.g. --per-entry-stats]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p ferrocast-server -p ferrocast-bench
BIN="${1:-target/release/ferrocast}"
shift || true
rss() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
ADDR=127.0.78.2:5701
"$BIN" --bind "$ADDR" --members "$ADDR" "$@" >/dev/null 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null || true' EXIT
sleep 0.4
B=(target/release/ferrocast-bench --addresses "$ADDR" --ops 1 --warmup 0 --connections 1 --in-flight 1)
"${B[@]}" --keys 1 >/dev/null 2>&1
IDLE=$(rss $PID)
"${B[@]}" --keys 1000000 --value-size 100 --preload >/dev/null 2>&1
sleep 1
FULL=$(rss $PID)
"${B[@]:0:3}" --ops 2000000 --warmup 0 --connections 4 --in-flight 16 \
    --keys 1000000 --value-size 100 --get-percent 50 >/dev/null 2>&1
sleep 1
USED=$(rss $PID)
python3 -c "
idle = $IDLE / 1024; full = $FULL / 1024; used = $USED / 1024; raw = 1e6 * 140 / 2**20
per = lambda m: (m - idle - raw) * 2**20 / 1e6
print(f'idle {idle:.1f} MiB, loaded {full:.1f} MiB, raw data {raw:.1f} MiB, '
      f'{per(full):.1f} bytes per entry above the data; after 2M gets/sets '
      f'{used:.1f} MiB, {per(used):.1f} bytes per entry')"
