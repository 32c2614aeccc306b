#!/usr/bin/env python3
"""Throughput rows of bench/compare.py alone, for measuring one change.

Starts a cluster of the given kind (servers pinned to CPU 1, the load
generator to CPU 0, as compare.py does), runs each workload and prints
ops/s, p99, how busy the generator and the servers were (cores) and the
CPU time per operation of each, over the measured part of the run.

    python3 bench/rows.py                          # 1 ferrocast member, 4 rows
    python3 bench/rows.py --members 3 --kinds ferrocast,hazelcast
    python3 bench/rows.py --workloads 90/10240,10/10240 --duration 5
    python3 bench/rows.py --kinds ferrocast,hazelcast --workloads 10/100 --in-flight 16,32,64
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compare  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--members", type=int, default=1)
    ap.add_argument("--kinds", default="ferrocast", help="ferrocast, hazelcast or both, comma-separated")
    ap.add_argument("--workloads", default="90/100,10/100,90/10240,10/10240",
                    help="get percent / value bytes, comma-separated")
    ap.add_argument("--duration", default="5", help="seconds measured per row")
    ap.add_argument("--server-cpus", default="1")
    ap.add_argument("--client-cpus", default="0")
    ap.add_argument("--in-flight", default="16",
                    help="requests in flight per connection, comma-separated for a sweep")
    a = ap.parse_args()
    kinds = a.kinds.split(",")
    compare.ensure_tools()
    jar = compare.fetch_hazelcast() if "hazelcast" in kinds else None
    workloads = [tuple(int(x) for x in w.split("/")) for w in a.workloads.split(",")]
    for kind in kinds:
        c = compare.Cluster(kind, a.members, jar, cpus=a.server_cpus)
        c.start()
        try:
            c.formed_at()
            for (get_pct, size), in_flight in [(w, f) for w in workloads for f in a.in_flight.split(",")]:
                r = compare.bench(c.addresses,
                                  compare.throughput_args(size, get_pct, 4, in_flight, 2, a.duration),
                                  kind, a.client_cpus, [p.pid for p in c.procs])
                print(f"{kind}, {a.members} member(s), {get_pct}/{100 - get_pct}, {size} B, 4 x {in_flight}: "
                      f"{r['ops_per_sec']:,.0f} ops/s, p99 {r['p99_us']} us; cores busy: generator "
                      f"{r['client_cores_busy']:.2f}, servers {r['server_cores_busy']:.2f}; CPU per op: "
                      f"servers {r['server_us_per_op']:.2f} us, generator {r['client_us_per_op']:.2f} us",
                      flush=True)
        finally:
            c.stop()


if __name__ == "__main__":
    main()
