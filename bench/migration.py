#!/usr/bin/env python3
"""Data-movement benchmark for ferrocast (not a test: it asserts nothing).

Measures, with release builds on loopback (127.0.8x.y):
  1. migration throughput when a third member joins two that hold data
     (bytes the new member copied / time until it reported its replicas in sync);
  2. the time a member holding about 1 GB (owned + backup) takes to hand its
     partitions over and exit on SIGTERM;
  3. recovery after kill -9 with the default timings (1 s heartbeat, 5 s
     timeout): time from the kill until every survivor holds all its
     replicas again.

    python3 bench/migration.py [--join-mb 500] [--leave-mb 1500] [--json out.json]
"""
import argparse
import json
import os
import re
import signal
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "ferrocast")
LOAD = os.path.join(ROOT, "target", "release", "examples", "load")
SYNC = re.compile(r"partition table version (\d+): replicas on this member are in sync "
                  r"\(copied (\d+) entries, (\d+) bytes in (\d+) ms\)")
VALUE = 10_000


class Member:
    def __init__(self, ip, members, extra=()):
        self.ip = ip
        self.log_path = f"/tmp/ferrocast-bench-{ip}.log"
        self.log_file = open(self.log_path, "w")
        self.started = time.monotonic()
        self.proc = subprocess.Popen([BIN, "--bind", f"{ip}:5701", "--members", members, *extra],
                                     stdout=self.log_file, stderr=subprocess.STDOUT)

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def syncs(self):
        return [tuple(int(x) for x in m) for m in SYNC.findall(self.log())]

    def rss_mb(self, field="VmRSS"):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024
        return 0

    def peak_mb(self):
        """The most memory the process has held so far (VmHWM); after it
        exited, the peak its last log line gives."""
        if self.proc.poll() is None:
            return self.rss_mb("VmHWM")
        m = re.findall(r"peak resident memory (\d+) MiB", self.log())
        return int(m[-1]) * 1.048576 if m else 0

    def stop(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait()


def wait(pred, timeout=300, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise TimeoutError("condition not reached")


def members_line(subnet, n):
    return ",".join(f"127.0.{subnet}.{h}" for h in range(2, 2 + n))


def block_size(m):
    sizes = re.findall(r"^Members \{size:(\d+),", m.log(), re.M)
    return int(sizes[-1]) if sizes else 0


def load(addr, mb):
    count = int(mb * 1_000_000 / VALUE)
    out = subprocess.run([LOAD, addr, "bench", str(count), str(VALUE)], check=True,
                         capture_output=True, text=True)
    return out.stdout.strip()


def join_migration(mb, extra):
    line = members_line(81, 3)
    ms = [Member(f"127.0.81.{h}", line, extra) for h in (2, 3)]
    try:
        wait(lambda: all(block_size(m) == 2 for m in ms))
        print("  ", load("127.0.81.2:5701", mb))
        before = [m.peak_mb() for m in ms]
        new = Member("127.0.81.4", line, extra)
        ms.append(new)
        v, entries, nbytes, ms_ = wait(lambda: next((s for s in new.syncs() if s[2] > 0), None))
        wall = time.monotonic() - new.started
        growth = max(m.peak_mb() - b for m, b in zip(ms, before))
        return {"data_mb": mb, "copied_mb": round(nbytes / 1e6, 1), "copy_ms": ms_,
                "mb_per_s": round(nbytes / 1e6 / max(ms_, 1) * 1000, 1),
                "join_to_in_sync_s": round(wall, 2),
                "holders_peak_before_mb": round(max(before)), "holders_peak_growth_mb": round(growth)}
    finally:
        for m in ms:
            m.stop()


def graceful_leave(mb, extra):
    line = members_line(82, 3)
    ms = [Member(f"127.0.82.{h}", line, extra) for h in (2, 3, 4)]
    try:
        wait(lambda: all(block_size(m) == 3 for m in ms))
        print("  ", load("127.0.82.2:5701", mb))
        time.sleep(1)
        victim = ms[2]
        rss = victim.rss_mb()
        t0 = time.monotonic()
        victim.proc.send_signal(signal.SIGTERM)
        victim.proc.wait()
        took = time.monotonic() - t0
        handed = re.findall(r"handed over (\d+) partition\(s\) in (\d+) ms", victim.log())
        return {"data_mb": mb, "leaving_member_rss_mb": round(rss),
                "leaving_member_peak_mb": round(victim.peak_mb()), "sigterm_to_exit_s": round(took, 2),
                "hand_over_ms": int(handed[-1][1]) if handed else None, "exit_code": victim.proc.returncode}
    finally:
        for m in ms:
            m.stop()


def kill_recovery(mb):
    line = members_line(83, 3)
    ms = [Member(f"127.0.83.{h}", line) for h in (2, 3, 4)]
    try:
        wait(lambda: all(block_size(m) == 3 for m in ms))
        print("  ", load("127.0.83.2:5701", mb))
        time.sleep(1)
        before = max(s[0] for m in ms for s in m.syncs())
        ms[2].stop(signal.SIGKILL)
        t0 = time.monotonic()
        survivors = ms[:2]
        wait(lambda: all(any(s[0] > before for s in m.syncs()) for m in survivors), timeout=120)
        return {"data_mb": mb, "kill_to_all_replicas_in_sync_s": round(time.monotonic() - t0, 2)}
    finally:
        for m in ms:
            m.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--join-mb", type=float, default=500)
    ap.add_argument("--leave-mb", type=float, default=1500)
    ap.add_argument("--kill-mb", type=float, default=200)
    ap.add_argument("--json")
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "ferrocast-server", "-p", "ferrocast-client",
                    "--bins", "--examples"], cwd=ROOT, check=True)
    fast = ["--heartbeat-interval", "250ms", "--failure-timeout", "2s"]
    results = {}
    print("join migration ...")
    results["join"] = join_migration(args.join_mb, fast)
    print("graceful leave ...")
    results["leave"] = graceful_leave(args.leave_mb, fast)
    print("kill -9 recovery (default timings) ...")
    results["kill"] = kill_recovery(args.kill_mb)
    for name, r in results.items():
        print(f"{name:6} " + "  ".join(f"{k}={v}" for k, v in r.items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"date": time.strftime("%Y-%m-%d"), "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
