"""Engine benchmark: gorae vs a real dockerd on this machine, same docker CLI, same run.

    python bench/engine.py [--runs 20] [--batch 50]

Measures (1) `docker run --rm busybox true` wall time, median of --runs, and (2) throughput of
create+start+stop+rm for --batch containers (`docker create` / `start` / `stop -t 0` / `rm`, sequential,
in --rounds rounds; the median round rate is reported),
against a fresh gorae daemon and, when Debian's docker.io is installed, a dockerd on its own roots
(`--iptables=false --bridge=none`, so it cannot touch the host's firewall). Both engines run interleaved
(alternating order per repetition) so machine load affects them alike. Prints a table and the ratios.
Not a test: numbers depend on the machine; the README records what it printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from conftest import new_daemon, remove_busybox_tar  # noqa: E402
from refdockerd import Dockerd  # noqa: E402


def docker(env: dict[str, str], *args: str) -> None:
    subprocess.run(["docker", *args], env=env, check=True, capture_output=True)


NET: list[str] = []  # ["--network", X] from --network


def one_run(env: dict[str, str]) -> float:
    t = time.perf_counter()
    docker(env, "run", "--rm", *NET, "busybox", "true")
    return time.perf_counter() - t


def lifecycle(env: dict[str, str], batch: int) -> float:
    """Seconds for `batch` sequential create+start+stop -t 0+rm cycles."""
    names = [f"bench-{uuid.uuid4().hex[:8]}" for _ in range(batch)]
    t = time.perf_counter()
    for n in names:
        docker(env, "create", "--name", n, *NET, "busybox", "sleep", "60")
        docker(env, "start", n)
        docker(env, "stop", "-t", "0", n)
        docker(env, "rm", n)
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=5, help="throughput rounds (batch split across them)")
    ap.add_argument(
        "--network",
        default="none",
        help="container network for both engines (default none: the reference dockerd runs with "
        "--bridge=none, so a bridge would be measured on gorae only); '' for the engine default",
    )
    args = ap.parse_args()
    if args.network:
        NET[:] = ["--network", args.network]
    engines: dict[str, dict[str, str]] = {}
    closers = []
    g = new_daemon()
    closers.append(g.cleanup)
    engines["gorae"] = g.env
    try:
        if shutil.which("dockerd"):
            d = Dockerd()
            closers.append(d.close)
            engines["dockerd"] = d.env
        lat: dict[str, list[float]] = {k: [] for k in engines}
        thr: dict[str, list[float]] = {k: [] for k in engines}
        for env in engines.values():  # warm up
            one_run(env)
        # interleaved: each repetition runs every engine once, in alternating order, so load hits all alike
        order = list(engines)
        for i in range(args.runs):
            for name in order if i % 2 == 0 else order[::-1]:
                lat[name].append(one_run(engines[name]))
        per_round = max(1, args.batch // args.rounds)
        for i in range(args.rounds):
            for name in order if i % 2 == 0 else order[::-1]:
                thr[name].append(per_round / lifecycle(engines[name], per_round))
    finally:
        for close in reversed(closers):
            close()
        remove_busybox_tar()
    print(f"{'engine':<10}{'run --rm true median s':>24}{'(min)':>8}{'create+start+stop+rm /s':>26}")
    for name in engines:
        print(
            f"{name:<10}{statistics.median(lat[name]):>24.3f}{min(lat[name]):>8.3f}"
            f"{statistics.median(thr[name]):>26.2f}"
        )
    if "dockerd" in engines:
        gl, dl = statistics.median(lat["gorae"]), statistics.median(lat["dockerd"])
        gt, dt = statistics.median(thr["gorae"]), statistics.median(thr["dockerd"])
        print(f"run latency ratio gorae/dockerd: {gl / dl:.2f} (goal <= 0.5)")
        print(f"lifecycle throughput ratio gorae/dockerd: {gt / dt:.2f} (goal >= 2.0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
