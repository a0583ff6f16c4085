"""Metrics benchmark: scrape latency and the daemon's collecting cost with real containers.

    python bench/metrics.py [--containers 50] [--scrapes 40] [--interval 1.0]

Starts a gorae daemon with --metrics-addr, runs --containers `busybox sleep` containers, then scrapes
/metrics --scrapes times, --interval seconds apart (Prometheus' default is 15 s; 1 s is a harsh scraper),
and reports the scrape wall time (median, p95, max) and the daemon's CPU while being scraped, as % of one
core (from /proc/<pid>/stat utime+stime), next to the same idle period without scrapes. The difference is
what collecting costs. Not a test: figures depend on the machine; the README records what it printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "compat"))

from conftest import new_daemon, remove_busybox_tar  # noqa: E402
from monitoring_peers import free_port  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--containers", type=int, default=50)
    ap.add_argument("--scrapes", type=int, default=40)
    ap.add_argument("--interval", type=float, default=1.0)
    args = ap.parse_args()
    port = free_port()
    d = new_daemon(["--metrics-addr", f"127.0.0.1:{port}"])
    try:
        assert d.proc is not None
        pid = d.proc.pid
        ids = []
        for i in range(args.containers):
            out = subprocess.run(["docker", "run", "-d", "--name", f"bench-m{i}", "busybox", "sleep", "3600"],
                                 env=d.env, check=True, capture_output=True, text=True)
            ids.append(out.stdout.strip())
        url = f"http://127.0.0.1:{port}/metrics"
        urllib.request.urlopen(url).read()  # warm
        period = args.scrapes * args.interval
        c0, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(period)
        idle = (cpu_seconds(pid) - c0) / (time.monotonic() - t0) * 100
        times, size = [], 0
        c0, t0 = cpu_seconds(pid), time.monotonic()
        for _ in range(args.scrapes):
            start = time.perf_counter()
            body = urllib.request.urlopen(url).read()
            times.append(time.perf_counter() - start)
            size = len(body)
            time.sleep(max(0.0, args.interval - times[-1]))
        busy = (cpu_seconds(pid) - c0) / (time.monotonic() - t0) * 100
        times.sort()
        series = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))
        print(f"containers: {args.containers}, series per scrape: {series}, body {size} bytes")
        print(f"scrape wall time: median {statistics.median(times) * 1000:.1f} ms, "
              f"p95 {times[int(len(times) * 0.95) - 1] * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms")
        print(f"daemon CPU: idle {idle:.2f} % of a core, scraped every {args.interval:g} s {busy:.2f} %, "
              f"collecting costs {busy - idle:.2f} % (at Prometheus' 15 s: ~{(busy - idle) * args.interval / 15:.2f} %)")
        subprocess.run(["docker", "rm", "-f", *ids], env=d.env, check=False, capture_output=True)
    finally:
        d.cleanup()
        remove_busybox_tar()


if __name__ == "__main__":
    main()
