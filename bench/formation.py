#!/usr/bin/env python3
"""Cluster-formation benchmark for ferrocast (not a test: it asserts nothing).

Starts real `ferrocast` processes on 127.0.9x.y:5701 and prints, over several
runs: process start to listening, process start to first Members block (a lone
member), formation time for 3 and 5 members started at once, detection time
after kill -9 (default and fast timings) and the time for a graceful leave.

    python3 bench/formation.py [--runs 5] [--bin target/release/ferrocast] [--json out.json]
"""
import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time

BLOCK = re.compile(r"^Members \{size:(\d+), ver:(\d+)\} \[$")
FAST = ["--heartbeat-interval", "250ms", "--failure-timeout", "2s"]


class Member:
    """A ferrocast process whose log lines are time-stamped as they arrive."""

    def __init__(self, binary, ip, members, extra=()):
        self.ip = ip
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [binary, "--bind", f"{ip}:5701", "--members", members, *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "FERROCAST_LOG": "info"})
        self.lines = []  # (time, line)
        self.blocks = []  # (time, size, version)
        self.listening_at = None
        self.cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            now = time.monotonic()
            line = line.rstrip("\n")
            with self.cv:
                self.lines.append((now, line))
                if self.listening_at is None and " listening on " in line:
                    self.listening_at = now
                m = BLOCK.match(line)
                if m:
                    self.blocks.append((now, int(m.group(1)), int(m.group(2))))
                self.cv.notify_all()

    def wait_block(self, pred, timeout=30.0):
        """Time of the first block (after index 0) satisfying pred(size, version)."""
        end = time.monotonic() + timeout
        with self.cv:
            while True:
                for t, size, ver in self.blocks:
                    if pred(size, ver):
                        return t
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self.ip}: no matching Members block")
                self.cv.wait(left)

    def stop(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait()


def ips(subnet, n):
    return [f"127.0.{subnet}.{h}" for h in range(2, 2 + n)]


def lone_start(binary, subnet):
    ip = ips(subnet, 1)[0]
    m = Member(binary, ip, ip)
    try:
        block = m.wait_block(lambda s, v: True)
        return (m.listening_at - m.started) * 1000, (block - m.started) * 1000
    finally:
        m.stop()


def formation(binary, subnet, n):
    addrs = ips(subnet, n)
    members = [Member(binary, ip, ",".join(addrs), FAST) for ip in addrs]
    try:
        t0 = min(m.started for m in members)
        done = max(m.wait_block(lambda s, v: s == n) for m in members)
        return (done - t0) * 1000
    finally:
        for m in members:
            m.stop()


def detection(binary, subnet, n, extra, graceful=False):
    addrs = ips(subnet, n)
    members = [Member(binary, ip, ",".join(addrs), extra) for ip in addrs]
    try:
        for m in members:
            m.wait_block(lambda s, v: s == n)
        victim = members[-1]
        survivors = members[:-1]
        ver = max(v for m in survivors for _, s, v in m.blocks)
        t0 = time.monotonic()
        victim.stop(signal.SIGTERM if graceful else signal.SIGKILL)
        done = max(m.wait_block(lambda s, v: s == n - 1 and v > ver) for m in survivors)
        return (done - t0) * 1000
    finally:
        for m in members:
            m.stop()


def summarize(samples):
    return {
        "median_ms": round(statistics.median(samples), 1),
        "min_ms": round(min(samples), 1),
        "max_ms": round(max(samples), 1),
        "runs": len(samples),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--bin", default=None, help="ferrocast binary (default: build target/release/ferrocast)")
    ap.add_argument("--json", default=None, help="also write the results as JSON here")
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    binary = args.bin
    if binary is None:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "ferrocast-server"], cwd=root, check=True)
        binary = os.path.join(root, "target", "release", "ferrocast")

    rows = {}
    listen, first_block = [], []
    f3, f5, kill_default, kill_fast, leave = [], [], [], [], []
    for r in range(args.runs):
        subnet = 90 + (r % 5)
        a, b = lone_start(binary, subnet)
        listen.append(a)
        first_block.append(b)
        f3.append(formation(binary, subnet, 3))
        f5.append(formation(binary, subnet, 5))
        kill_fast.append(detection(binary, subnet, 3, FAST))
        kill_default.append(detection(binary, subnet, 3, []))
        leave.append(detection(binary, subnet, 3, [], graceful=True))
        print(f"run {r + 1}/{args.runs} done", file=sys.stderr)
    rows["process start to listening"] = summarize(listen)
    rows["process start to first Members block (lone member)"] = summarize(first_block)
    rows["formation, 3 members started at once"] = summarize(f3)
    rows["formation, 5 members started at once"] = summarize(f5)
    rows["kill -9 detected (defaults: 1s heartbeat, 5s timeout)"] = summarize(kill_default)
    rows["kill -9 detected (250ms heartbeat, 2s timeout)"] = summarize(kill_fast)
    rows["graceful leave (SIGTERM) seen by all"] = summarize(leave)

    width = max(len(k) for k in rows)
    print(f"{'measure':<{width}}  {'median ms':>10}  {'min ms':>9}  {'max ms':>9}  runs")
    for k, v in rows.items():
        print(f"{k:<{width}}  {v['median_ms']:>10}  {v['min_ms']:>9}  {v['max_ms']:>9}  {v['runs']:>4}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"date": time.strftime("%Y-%m-%d"), "results": rows}, f, indent=2)


if __name__ == "__main__":
    main()
