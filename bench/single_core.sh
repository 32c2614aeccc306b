#!/usr/bin/env bash
# One ferrocast member pinned to CPU 1, ferrocast-bench pinned to CPU 0:
# prints ops/s and latency, and how much of its core the member used (so a
# figure is known to be the member's limit, not the load generator's).
# Extra arguments go to ferrocast-bench, e.g.
#   bench/single_core.sh --get-percent 90 --value-size 100
# This is the command behind the before/after figures in docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p ferrocast-server -p ferrocast-bench
ADDR=127.0.77.2:5701
taskset -c 1 target/release/ferrocast --bind "$ADDR" --members "$ADDR" >/dev/null 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null || true' EXIT
sleep 0.5
bench() { taskset -c 0 target/release/ferrocast-bench --addresses "$ADDR" --keys 10000 "$@"; }
bench --preload --warmup 1 --duration 1 "$@" >/dev/null 2>&1
ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
T0=$(ticks); S=$(date +%s.%N)
bench --warmup 1 --duration 5 "$@" 2>&1 | tail -1
T1=$(ticks); E=$(date +%s.%N)
HZ=$(getconf CLK_TCK)
python3 -c "print(f'member CPU: {($T1 - $T0) / $HZ / ($E - $S) * 100:.0f}% of one core')"
