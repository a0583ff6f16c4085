"""Builder benchmark: `docker build` (classic builder, `DOCKER_BUILDKIT=0`) against gorae and a real dockerd,
same docker CLI, same context, one run.

    python bench/build.py [--cold 3] [--cached 5] [--mib 50]

A 10-instruction Dockerfile (FROM, ARG, ENV, WORKDIR, COPY of a --mib MiB directory, RUN, COPY, LABEL, EXPOSE,
CMD) over a context of that size (incompressible random files). "cold": a build with `--no-cache` (the
first one on each engine, then repeated); "cached": the same build again, every step from the cache. Both
engines run interleaved (alternating order) so machine load hits them alike; medians are printed with the
ratios and the goals (cached <= 0.5x dockerd, cold <= 1.0x). Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from conftest import new_daemon, remove_busybox_tar  # noqa: E402
from refdockerd import Dockerd  # noqa: E402

DOCKERFILE = """FROM busybox
ARG V=1
ENV A=1
WORKDIR /app
COPY big/ /app/big/
RUN echo built-$V > /app/built
COPY small.txt /app/
LABEL bench=build
EXPOSE 8080
CMD ["sh"]
"""


def make_context(path: str, mib: int) -> None:
    os.makedirs(os.path.join(path, "big"))
    with open(os.path.join(path, "Dockerfile"), "w") as f:
        f.write(DOCKERFILE)
    with open(os.path.join(path, "small.txt"), "w") as f:
        f.write("small\n")
    for i in range(mib):
        with open(os.path.join(path, "big", f"f{i:03d}"), "wb") as f:
            f.write(os.urandom(1 << 20))


def build(env: dict[str, str], ctx: str, *extra: str) -> float:
    t = time.perf_counter()
    r = subprocess.run(
        ["docker", "build", "--network", "none", "-q", "-t", "bench-build:1", *extra, ctx],
        env=dict(env, DOCKER_BUILDKIT="0"),
        capture_output=True,
        text=True,
    )
    took = time.perf_counter() - t
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    return took


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cold", type=int, default=3)
    ap.add_argument("--cached", type=int, default=5)
    ap.add_argument("--mib", type=int, default=50)
    args = ap.parse_args()
    load_start = os.getloadavg()[0]
    ctx = tempfile.mkdtemp(prefix="bench-build-")
    engines: dict[str, dict[str, str]] = {}
    closers = []
    try:
        make_context(ctx, args.mib)
        g = new_daemon()
        closers.append(g.cleanup)
        engines["gorae"] = g.env
        if shutil.which("dockerd"):
            d = Dockerd()
            closers.append(d.close)
            engines["dockerd"] = d.env
        cold: dict[str, list[float]] = {k: [] for k in engines}
        cached: dict[str, list[float]] = {k: [] for k in engines}
        order = list(engines)
        for i in range(args.cold):
            for name in order if i % 2 == 0 else order[::-1]:
                cold[name].append(build(engines[name], ctx, *(["--no-cache"] if i else [])))
        for i in range(args.cached):
            for name in order if i % 2 == 0 else order[::-1]:
                cached[name].append(build(engines[name], ctx))
    finally:
        for close in reversed(closers):
            close()
        remove_busybox_tar()
        shutil.rmtree(ctx, ignore_errors=True)
    print(
        f"{args.mib} MiB context, 10 instructions; load average {load_start:.2f} at the start, "
        f"{os.getloadavg()[0]:.2f} at the end"
    )
    print(f"{'engine':<10}{'cold median s':>15}{'(min)':>8}{'cached median s':>17}{'(min)':>8}")
    for name in engines:
        print(
            f"{name:<10}{statistics.median(cold[name]):>15.2f}{min(cold[name]):>8.2f}"
            f"{statistics.median(cached[name]):>17.2f}{min(cached[name]):>8.2f}"
        )
    if "dockerd" in engines:
        gc, dc = statistics.median(cold["gorae"]), statistics.median(cold["dockerd"])
        gk, dkk = statistics.median(cached["gorae"]), statistics.median(cached["dockerd"])
        print(f"cold ratio gorae/dockerd: {gc / dc:.2f} (goal <= 1.0)")
        print(f"cached ratio gorae/dockerd: {gk / dkk:.2f} (goal <= 0.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
