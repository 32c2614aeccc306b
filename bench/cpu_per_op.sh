#!/usr/bin/env bash
# One member pinned to CPU 1, ferrocast-bench on CPU 0 for 5 s: ops/s and the
# member's CPU time (user + system, from /proc) per operation, and each. CPU per op
# moves less than ops/s on this shared machine; alternate A/B builds.
#   bench/cpu_per_op.sh path/to/ferrocast --get-percent 90 --value-size 100
# KEYS (default 10000) sets how many keys are preloaded and used.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$1
shift
ADDR=127.0.77.2:5701
taskset -c 1 "$BIN" --bind "$ADDR" --members "$ADDR" >/dev/null 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null || true' EXIT
sleep 0.4
B=(taskset -c 0 target/release/ferrocast-bench --addresses "$ADDR" --keys "${KEYS:-10000}")
"${B[@]}" --preload --warmup 1 --duration 1 "$@" >/dev/null 2>&1
read -r U0 S0 < <(awk '{print $14, $15}' "/proc/$PID/stat")
OPS=$("${B[@]}" --warmup 0 --duration 5 "$@" 2>&1 | tail -1 | awk '{print $1}')
read -r U1 S1 < <(awk '{print $14, $15}' "/proc/$PID/stat")
HZ=$(getconf CLK_TCK)
python3 -c "
per = lambda ticks: ticks / $HZ * 1e6 / (float($OPS) * 5)
print(f'{float($OPS):9.0f} ops/s  {per($U1 - $U0 + $S1 - $S0):.2f} us member CPU per op'
      f' ({per($U1 - $U0):.2f} user, {per($S1 - $S0):.2f} system)')"
