#!/usr/bin/env python3
"""ferrocast side by side with the real Hazelcast 5.7 member and redis-server.

On a fresh machine this fetches what it needs (the Hazelcast member jar from
Maven Central into ~/.cache/ferrocast/, redis-server from Debian when it is
missing), builds ferrocast and ferrocast-bench in release mode, then starts
each server in turn on loopback with the same cluster size, backup count and
workloads, drives both through the same Rust client (ferrocast-bench speaks
the Hazelcast client protocol to either), and prints one table with both
and the ratio per row. Raw figures go to bench/results/compare.json.

    python3 bench/compare.py            # the full run (about 10 minutes)
    python3 bench/compare.py --quick    # shorter runs, for a smoke check

Throughput rows pin the servers to one CPU and the load generator to the
other (--server-cpus / --client-cpus), so a row compares work per core and
the client does not steal the server's CPU. Memory and start-up rows are
unpinned.
"""

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path.home() / ".cache" / "ferrocast"
HZ_VERSION = "5.7.0"
HZ_URL = (
    "https://repo1.maven.org/maven2/com/hazelcast/hazelcast/"
    f"{HZ_VERSION}/hazelcast-{HZ_VERSION}.jar"
)
HZ_HEAP = "-Xmx2g"
FC = ROOT / "target" / "release" / "ferrocast"
BENCH = ROOT / "target" / "release" / "ferrocast-bench"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- setup


def fetch_hazelcast():
    """The member jar, cached by version and checked against Maven's SHA-1."""
    dest = CACHE / f"hazelcast-{HZ_VERSION}" / f"hazelcast-{HZ_VERSION}.jar"
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    log(f"== fetching {HZ_URL}")
    data = urllib.request.urlopen(HZ_URL, timeout=120).read()
    want = urllib.request.urlopen(HZ_URL + ".sha1", timeout=60).read().decode().split()[0]
    got = hashlib.sha1(data).hexdigest()
    if got != want:
        sys.exit(f"checksum mismatch for {HZ_URL}: {got} != {want}")
    tmp = dest.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.rename(dest)
    return dest


def ensure_tools():
    missing = [p for p, cmd in (("default-jre-headless", "java"), ("redis-server", "redis-server"),
                                ("redis-tools", "redis-benchmark")) if shutil.which(cmd) is None]
    if missing:
        if os.geteuid() != 0:
            sys.exit(f"please install: {' '.join(missing)}")
        log(f"== apt-get install {' '.join(missing)}")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-q", *missing], check=True, env=env,
                       stdout=subprocess.DEVNULL)
    log("== cargo build --release (ferrocast, ferrocast-bench)")
    subprocess.run(["cargo", "build", "--release", "--locked", "-q", "-p", "ferrocast-server",
                    "-p", "ferrocast-bench"], cwd=ROOT, check=True)


# ---------------------------------------------------------------- servers


def wait_port(host, port, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.01)
    return False


def rss_kib(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Cluster:
    """n members of one kind on loopback; `addresses` is what clients dial."""

    def __init__(self, kind, n, jar, cpus=None, backups=1):
        self.kind, self.n, self.procs, self.logs = kind, n, [], []
        self.dir = Path(tempfile.mkdtemp(prefix=f"cmp-{kind}-"))
        self.cpus, self.backups, self.jar = cpus, backups, jar
        if kind == "ferrocast":
            self.hosts = [(f"127.0.77.{2 + i}", 5701) for i in range(n)]
        else:
            self.hosts = [("127.0.0.1", 5801 + i) for i in range(n)]
        self.addresses = ",".join(f"{h}:{p}" for h, p in self.hosts)

    def _pin(self, cmd):
        return ["taskset", "-c", self.cpus, *cmd] if self.cpus else cmd

    def command(self, i):
        host, port = self.hosts[i]
        if self.kind == "ferrocast":
            members = ",".join(f"{h}:{p}" for h, p in self.hosts)
            return self._pin([str(FC), "--bind", f"{host}:{port}", "--members", members,
                              "--backup-count", str(self.backups)])
        cfg = self.dir / f"hazelcast-{i}.yaml"
        members = ", ".join(f"127.0.0.1:{p}" for _, p in self.hosts)
        cfg.write_text(f"""hazelcast:
  cluster-name: dev
  network:
    port:
      port: {port}
      auto-increment: false
    join:
      auto-detection:
        enabled: false
      multicast:
        enabled: false
      tcp-ip:
        enabled: true
        member-list: [{members}]
  map:
    default:
      backup-count: {self.backups}
""")
        return self._pin(["java", HZ_HEAP, f"-Dhazelcast.config={cfg}",
                          "-Dhazelcast.phone.home.enabled=false",
                          "-Dhazelcast.logging.type=jdk", "-Djava.net.preferIPv4Stack=true",
                          "-cp", str(self.jar), "com.hazelcast.core.server.HazelcastMemberStarter"])

    def start(self):
        t0 = time.time()
        for i in range(self.n):
            out = open(self.dir / f"member-{i}.log", "w")
            self.logs.append(self.dir / f"member-{i}.log")
            self.procs.append(subprocess.Popen(self.command(i), stdout=out, stderr=subprocess.STDOUT,
                                               cwd=self.dir))
        return t0

    def formed_at(self, timeout=120):
        """Wall time at which every member logged a Members block of full size."""
        want = f"Members {{size:{self.n},"
        deadline = time.time() + timeout
        while time.time() < deadline:
            if all(want in p.read_text(errors="replace") for p in self.logs):
                return time.time()
            if any(pr.poll() is not None for pr in self.procs):
                raise RuntimeError(f"{self.kind} member exited; logs in {self.dir}")
            time.sleep(0.005)
        raise RuntimeError(f"{self.kind} cluster of {self.n} did not form; logs in {self.dir}")

    def rss_mib(self):
        return sum(rss_kib(p.pid) for p in self.procs) / 1024

    def stop(self):
        for p in self.procs:
            p.send_signal(signal.SIGKILL)
        for p in self.procs:
            p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def throughput_args(size, get_pct, conns, inflight, warm, dur):
    """ferrocast-bench arguments of a throughput row: 10 000 preloaded keys,
    `get_pct` percent gets, `size`-byte values, `conns` x `inflight`."""
    return ["--keys", "10000", "--value-size", str(size), "--get-percent", str(get_pct),
            "--connections", str(conns), "--in-flight", str(inflight), "--warmup", str(warm),
            "--duration", str(dur), "--preload"]


def bench(addresses, args, label, client_cpus, servers=None):
    """One ferrocast-bench run; returns its JSON. With `servers` (their
    pids) the JSON also says how busy the load generator and the servers
    were over the measured part (CPU seconds per second: 1.0 is one core)
    and the servers' CPU time per operation."""
    out = Path(tempfile.mktemp(suffix=".json"))
    cmd = [str(BENCH), "--addresses", addresses, "--json", str(out), "--label", label, *args]
    if servers:
        cmd += ["--server-pids", ",".join(str(p) for p in servers)]
    if client_cpus:
        cmd = ["taskset", "-c", client_cpus, *cmd]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    r = json.loads(out.read_text())
    out.unlink()
    return r


def ready_ms(kind, jar):
    """Process start to the first client write it acknowledges."""
    c = Cluster(kind, 1, jar)
    probe = subprocess.Popen([str(BENCH), "--addresses", c.addresses, "--probe-ready"],
                             stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)  # the probe is up and retrying
    t0 = c.start()
    try:
        out, _ = probe.communicate(timeout=120)
        return (int(out.strip()) / 1e6 - t0) * 1000
    finally:
        c.stop()


def formation_ms(kind, jar, n=3):
    c = Cluster(kind, n, jar)
    t0 = c.start()
    try:
        return (c.formed_at() - t0) * 1000
    finally:
        c.stop()


# ---------------------------------------------------------------- redis


def redis_row(conns, value_size, requests, client_cpus, server_cpus):
    port = 6390
    srv = subprocess.Popen(["taskset", "-c", server_cpus, "redis-server", "--port", str(port),
                            "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port("127.0.0.1", port)
        out = subprocess.run(["taskset", "-c", client_cpus, "redis-benchmark", "-p", str(port),
                              "-c", str(conns), "-n", str(requests), "-d", str(value_size),
                              "-r", "10000", "-t", "set,get", "--csv"],
                             check=True, capture_output=True, text=True).stdout
    finally:
        srv.terminate()
        srv.wait()
    rows = {}
    for line in out.splitlines():
        cells = [c.strip('"') for c in line.split(",")]
        if cells[0] in ("SET", "GET"):
            rows[cells[0]] = float(cells[1])
    return rows


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short runs (smoke check)")
    ap.add_argument("--server-cpus", default="1", help="CPUs for the servers (taskset list)")
    ap.add_argument("--client-cpus", default="0", help="CPUs for the load generator")
    ap.add_argument("--sizes", default="1,3", help="cluster sizes for the throughput rows")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "compare.json"))
    a = ap.parse_args()

    ensure_tools()
    jar = fetch_hazelcast()
    dur, warm = ("3", "1") if a.quick else ("10", "3")
    entries = 100_000 if a.quick else 1_000_000
    conns, inflight = 4, 16
    results = {"rows": [], "machine": {
        "cpu": next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                     if l.startswith("model name")), platform.processor()),
        "cpus": os.cpu_count(), "kernel": platform.release(),
        "java": subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0],
        "date": time.strftime("%Y-%m-%d"),
    }, "settings": {"hazelcast_heap": HZ_HEAP, "connections": conns, "in_flight": inflight,
                    "duration_s": float(dur), "warmup_s": float(warm),
                    "server_cpus": a.server_cpus, "client_cpus": a.client_cpus}}

    def row(name, unit, fc, hz, better, target=None, extra=None):
        r = {"row": name, "unit": unit, "ferrocast": fc, "hazelcast": hz, "better": better,
             "target": target}
        if extra:
            r.update(extra)
        results["rows"].append(r)
        log(f"   {name}: ferrocast {fc:.1f} {unit}, hazelcast {hz:.1f} {unit}")

    workloads = [("get-heavy 90/10", 90, 100), ("put-heavy 10/90", 10, 100),
                 ("get-heavy 90/10", 90, 10240), ("put-heavy 10/90", 10, 10240)]
    for n in [int(x) for x in a.sizes.split(",")]:
        runs = {}
        for kind in ("ferrocast", "hazelcast"):
            log(f"== {kind}: {n} member(s), throughput and fixed-rate latency")
            c = Cluster(kind, n, jar, cpus=a.server_cpus)
            c.start()
            try:
                c.formed_at()
                for name, get_pct, size in workloads:
                    r = bench(c.addresses, throughput_args(size, get_pct, conns, inflight, warm, dur),
                              kind, a.client_cpus, [p.pid for p in c.procs])
                    runs[(kind, name, size)] = r
                runs[(kind, "max")] = runs[(kind, "get-heavy 90/10", 100)]["ops_per_sec"]
            finally:
                c.stop()
        for name, _, size in workloads:
            fc, hz = runs[("ferrocast", name, size)], runs[("hazelcast", name, size)]
            label = f"{n} member(s), {name}, {size if size < 1024 else size // 1024}{'' if size < 1024 else ' K'}B values"
            row(label + ", ops/s", "ops/s", fc["ops_per_sec"], hz["ops_per_sec"], "higher", 3.0,
                {"ferrocast_p99_us": fc["p99_us"], "hazelcast_p99_us": hz["p99_us"],
                 "ferrocast_client_cores_busy": fc["client_cores_busy"],
                 "hazelcast_client_cores_busy": hz["client_cores_busy"],
                 "ferrocast_server_cores_busy": fc["server_cores_busy"],
                 "hazelcast_server_cores_busy": hz["server_cores_busy"]})
            # Work per operation: the servers' CPU time per op at the rate
            # they reached. When the load generator's core is saturated
            # (see the table under the main one) this, not ops/s, is what
            # tells how much each server could serve per core.
            row(label + ", server CPU per op", "us", fc["server_us_per_op"], hz["server_us_per_op"],
                "lower")
        # p99 at a rate both can hold: half of the slower one's maximum.
        rate = int(min(runs[("ferrocast", "max")], runs[("hazelcast", "max")]) * 0.5)
        fixed = {}
        for kind in ("ferrocast", "hazelcast"):
            c = Cluster(kind, n, jar, cpus=a.server_cpus)
            c.start()
            try:
                c.formed_at()
                fixed[kind] = bench(c.addresses, ["--keys", "10000", "--value-size", "100",
                                                  "--get-percent", "90", "--connections", str(conns),
                                                  "--in-flight", str(inflight), "--warmup", warm,
                                                  "--duration", dur, "--preload", "--rate", str(rate)],
                                    kind, a.client_cpus)
            finally:
                c.stop()
        row(f"{n} member(s), p99 at {rate} ops/s (90/10, 100 B)", "us", fixed["ferrocast"]["p99_us"],
            fixed["hazelcast"]["p99_us"], "lower", 1 / 3,
            {"ferrocast_p50_us": fixed["ferrocast"]["p50_us"], "hazelcast_p50_us": fixed["hazelcast"]["p50_us"],
             "ferrocast_p999_us": fixed["ferrocast"]["p999_us"],
             "hazelcast_p999_us": fixed["hazelcast"]["p999_us"]})

    log(f"== memory: {entries} entries, 16-byte keys, 100-byte values, 1 member, backup count 1")
    mem = {}
    for kind in ("ferrocast", "hazelcast"):
        c = Cluster(kind, 1, jar)
        c.start()
        try:
            c.formed_at()
            bench(c.addresses, ["--keys", str(entries), "--value-size", "100", "--preload",
                                "--ops", "1", "--warmup", "0", "--connections", "1", "--in-flight", "1"],
                  kind, None)
            # Both settle for 2 s: Hazelcast's collector, ferrocast's purge
            # of the tables it freed as they grew (every 250 ms).
            time.sleep(2)
            mem[kind] = c.rss_mib()
        finally:
            c.stop()
    # The raw data: a key as the client serializes it (8-byte Data header +
    # 4-byte length + 16 bytes) and the value (8 + 4 + 100).
    raw = entries * ((8 + 4 + 16) + (8 + 4 + 100)) / 2**20
    base = {}
    for kind in ("ferrocast", "hazelcast"):
        c = Cluster(kind, 1, jar)
        c.start()
        try:
            c.formed_at()
            bench(c.addresses, ["--keys", "1", "--ops", "1", "--warmup", "0", "--connections", "1",
                                "--in-flight", "1"], kind, None)
            base[kind] = c.rss_mib()
        finally:
            c.stop()
    per_entry = {k: (mem[k] - base[k]) * 2**20 / entries - raw * 2**20 / entries for k in mem}
    row(f"resident memory after {entries} entries", "MiB", mem["ferrocast"], mem["hazelcast"], "lower",
        1 / 4, {"raw_data_mib": raw, "ferrocast_idle_mib": base["ferrocast"],
                "hazelcast_idle_mib": base["hazelcast"]})
    row("bytes per entry above the raw data", "B", per_entry["ferrocast"], per_entry["hazelcast"], "lower")

    log("== start-up and formation")
    reps = 3 if a.quick else 5
    for name, fn in (("process start to ready for clients", ready_ms),
                     ("3-member formation", formation_ms)):
        vals = {k: sorted(fn(k, jar) for _ in range(reps))[reps // 2] for k in ("ferrocast", "hazelcast")}
        row(name, "ms", vals["ferrocast"], vals["hazelcast"], "lower")

    log("== redis-server, single member get/set at equal connections")
    req = 200_000 if a.quick else 1_000_000
    redis = redis_row(64, 100, req, a.client_cpus, a.server_cpus)
    fc_rows = {}
    c = Cluster("ferrocast", 1, jar, cpus=a.server_cpus)
    c.start()
    try:
        c.formed_at()
        for op, pct in (("SET", 0), ("GET", 100)):
            fc_rows[op] = bench(c.addresses, ["--keys", "10000", "--value-size", "100", "--get-percent",
                                              str(pct), "--connections", "64", "--in-flight", "1",
                                              "--warmup", warm, "--duration", dur, "--preload"],
                                "ferrocast", a.client_cpus)["ops_per_sec"]
    finally:
        c.stop()
    for op in ("SET", "GET"):
        results["rows"].append({"row": f"1 member, {op.lower()} at 64 connections (vs redis-server)",
                                "unit": "ops/s", "ferrocast": fc_rows[op], "redis": redis.get(op, 0.0),
                                "better": "higher", "target": 0.8})

    print_table(results)
    Path(a.out).write_text(json.dumps(results, indent=2) + "\n")
    log(f"raw figures in {a.out}")


def print_table(results):
    print(f"| row | ferrocast | peer | ratio | target |")
    print("|---|---:|---:|---:|---|")
    for r in results["rows"]:
        peer_name = "redis" if "redis" in r else "hazelcast"
        fc, peer = r["ferrocast"], r[peer_name]
        if r["better"] == "higher":
            ratio = fc / peer if peer else float("inf")
            tgt = f"≥ {r['target']:.1f}x" if r.get("target") else ""
        else:
            ratio = peer / fc if fc else float("inf")
            tgt = f"≥ {1 / r['target']:.0f}x better" if r.get("target") else ""
        fmt = lambda v: (f"{v:,.0f}" if r["unit"] == "ops/s" or (r["unit"] == "us" and v >= 100)
                         else f"{v:,.2f}" if r["unit"] == "us" else f"{v:,.1f}")
        print(f"| {r['row']} | {fmt(fc)} {r['unit']} | {fmt(peer)} {r['unit']} ({peer_name}) | "
              f"{ratio:.2f}x | {tgt} |")
    busy = [r for r in results["rows"] if "ferrocast_client_cores_busy" in r]
    if busy:
        print("\nCores busy during the throughput rows (1.00 = one core; the load generator has one):\n")
        print("| row | load generator vs ferrocast | ferrocast | load generator vs hazelcast | hazelcast |")
        print("|---|---:|---:|---:|---:|")
        for r in busy:
            print(f"| {r['row']} | {r['ferrocast_client_cores_busy']:.2f} | {r['ferrocast_server_cores_busy']:.2f} "
                  f"| {r['hazelcast_client_cores_busy']:.2f} | {r['hazelcast_server_cores_busy']:.2f} |")
    print(f"\nmachine: {results['machine']}")


if __name__ == "__main__":
    main()
