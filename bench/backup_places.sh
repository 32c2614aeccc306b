#!/usr/bin/env bash
# What `backup-places: uniform` (the default) costs a configuration that
# mixes backup counts, against `per-map`: 3 members on loopback, map
# `critical` with 2 backups, the benchmark's map with the default 1 (kept
# on both backup places and waited for on both with `uniform`, on one with
# `per-map`). For each setting, alternating ROUNDS times (default 3): a
# fresh cluster, ferrocast-bench 10/90 then 90/10 at 100-byte values
# (4 x 16 in flight, 5 s), then 300,000 entries loaded and the three
# members' resident memory summed. Prints one row per run.
#   bench/backup_places.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p ferrocast-server -p ferrocast-bench
ROUNDS=${ROUNDS:-3}
DIR=$(mktemp -d)
PIDS=()
stop() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    PIDS=()
}
trap 'stop; rm -rf "$DIR"' EXIT
ADDRS=127.0.79.2:5701,127.0.79.3:5701,127.0.79.4:5701
B=(target/release/ferrocast-bench --addresses "$ADDRS")
rss_sum() {
    local t=0
    for p in "${PIDS[@]}"; do t=$((t + $(awk '/VmRSS/{print $2}' "/proc/$p/status"))); done
    echo $((t / 1024))
}
run() {
    local places=$1
    printf 'backup-places: %s\nmaps:\n  critical:\n    backup-count: 2\n' "$places" >"$DIR/ferrocast.yaml"
    for h in 2 3 4; do
        target/release/ferrocast --bind "127.0.79.$h:5701" --members "$ADDRS" \
            --config "$DIR/ferrocast.yaml" >"$DIR/m$h.log" 2>&1 &
        PIDS+=($!)
    done
    # Formed and the table settled (owners evened once in sync).
    sleep 4
    local row=("$places")
    for get in 10 90; do
        "${B[@]}" --keys 10000 --preload --get-percent "$get" --warmup 1 --duration 5 \
            --json "$DIR/r.json" >/dev/null 2>&1
        row+=("$(python3 -c "
import json; r = json.load(open('$DIR/r.json'))
print(f\"{r['ops_per_sec']:.0f} / {r['p99_us']/1000:.2f}\")")")
    done
    local before
    before=$(rss_sum)
    "${B[@]}" --map loaded --keys 300000 --value-size 100 --preload --ops 1 --warmup 0 \
        --connections 1 --in-flight 1 >/dev/null 2>&1
    sleep 1
    row+=("$before" "$(rss_sum)")
    stop
    printf '| %s | %s | %s | %s | %s |\n' "${row[@]}"
}
echo "| backup-places | 10/90 100 B: ops/s / p99 ms | 90/10 100 B: ops/s / p99 ms | resident MiB, 3 members | after 300k entries |"
echo "|---|---:|---:|---:|---:|"
for _ in $(seq "$ROUNDS"); do
    run per-map
    run uniform
done
