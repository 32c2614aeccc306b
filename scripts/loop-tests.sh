#!/usr/bin/env bash
# Runs one integration test binary many times, the way CI runs it, to find
# the failures that show once in ten or twenty runs (timing races between
# member processes). CI runs every test binary with three test threads on a
# 2-core machine (scripts/test.sh); loops with fewer threads, or on an idle
# machine, miss what CI finds (2026-11-27: a copy race failed CI three times
# in a row and one local run in eight at two threads).
#
#   scripts/loop-tests.sh -p ferrocast-server -t partial_backups
#   scripts/loop-tests.sh -p ferrocast-server -t leave_and_crash -n 12 --hog
#   scripts/loop-tests.sh -p ferrocast-server -t owners -- one_test_name
#
# -n RUNS     how many runs (default 10)
# --hog       keep one CPU busy meanwhile (`yes`), as other builds and test
#             binaries do on CI
# -j THREADS  test threads (default 3, scripts/test.sh's)
# After `--`: arguments for the test binary (test name filters).
#
# Each run's output goes to target/loop-tests/<test>/run-N.log (member logs
# with FERROCAST_TEST_LOG=debug in the environment). Prints a line per run,
# then the failing tests and how often each failed; exits 1 if any run
# failed.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=10
hog=false
threads=3
package=""
test=""
while [ $# -gt 0 ]; do
    case "$1" in
        -n) runs="$2"; shift 2 ;;
        --hog) hog=true; shift ;;
        -j) threads="$2"; shift 2 ;;
        -p) package="$2"; shift 2 ;;
        -t) test="$2"; shift 2 ;;
        --) shift; break ;;
        *) echo "unknown argument: $1 (see the comment at the top of $0)" >&2; exit 2 ;;
    esac
done
if [ -z "$package" ] || [ -z "$test" ]; then
    echo "usage: $0 -p PACKAGE -t TEST [-n RUNS] [--hog] [-j THREADS] [-- FILTERS]" >&2
    exit 2
fi
case "$runs$threads" in
    *[!0-9]*) echo "-n and -j take whole numbers" >&2; exit 2 ;;
esac

# Build once; the binary's path is in cargo's JSON messages. The tests run
# the member binary of the same (debug) build.
cargo build --locked -q -p ferrocast-server --bin ferrocast
bin=$(cargo test --locked -q -p "$package" --test "$test" --no-run --message-format=json \
    | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("profile", {}).get("test") \
            and m.get("executable"):
        print(m["executable"])
' | tail -n 1)
if [ -z "$bin" ]; then
    echo "no test binary $test in $package" >&2
    exit 2
fi

out="target/loop-tests/$test"
rm -rf "$out"
mkdir -p "$out"
hog_pid=""
if $hog; then
    yes >/dev/null &
    hog_pid=$!
fi
trap '[ -n "$hog_pid" ] && kill "$hog_pid" 2>/dev/null; true' EXIT

# The tests find fixtures relative to the package, as under `cargo test`.
pkg_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c '
import json, sys
for p in json.load(sys.stdin)["packages"]:
    if p["name"] == sys.argv[1]:
        print(p["manifest_path"].rsplit("/", 1)[0])
' "$package")

failed=0
for i in $(seq 1 "$runs"); do
    log="$out/run-$i.log"
    start=$(date +%s)
    if (cd "$pkg_dir" && "$bin" --test-threads="$threads" "$@") >"$log" 2>&1; then
        result=ok
    else
        result=FAILED
        failed=$((failed + 1))
    fi
    echo "run $i/$runs: $result in $(( $(date +%s) - start )) s ($log)"
done

echo
echo "$test: $((runs - failed)) of $runs runs passed (threads $threads, hog $hog)"
if [ "$failed" -gt 0 ]; then
    echo "failing tests (runs failed in):"
    # libtest prints "test NAME ... FAILED" as each one ends.
    cat "$out"/run-*.log | sed -n 's/^test \(.*\) \.\.\. FAILED$/\1/p' | sort | uniq -c | sort -rn
    exit 1
fi
