"""Builder benchmark: `docker build` (classic builder, `DOCKER_BUILDKIT=0`) against gorae and a real dockerd,
same docker CLI, same context, one run.

    python bench/build.py [--cold 3] [--cached 5] [--mib 50]

A 10-instruction Dockerfile (FROM, ARG, ENV, WORKDIR, COPY of a --mib MiB directory, RUN, COPY, LABEL, EXPOSE,
CMD) over a context of that size (incompressible random files). "cold": a build with `--no-cache` (the
first one on each engine, then repeated); "cached": the same build again, every step from the cache. Both
engines run interleaved (alternating order) so machine load hits them alike; medians are printed with the
ratios and the goals (cached <= 0.5x dockerd, cold <= 1.0x). For the cached builds the daemon's CPU time per
build is printed too (from /proc/<pid>/stat: user + system), steadier than wall time on a loaded machine.
`--compare-src DIR` adds a third engine: a gorae daemon run from another copy of the code (e.g. `git archive
<commit> src tests | tar -x -C DIR`), interleaved with the others. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

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


def cpu_seconds(pid: int) -> float:
    """user + system CPU time of process `pid` so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def other_daemon(src_root: str) -> object:
    """A gorae daemon started by DIR/tests/conftest.py, so it runs DIR/src."""
    spec = importlib.util.spec_from_file_location(
        "conftest_other", os.path.join(src_root, "tests", "conftest.py")
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["conftest_other"] = mod
    spec.loader.exec_module(mod)
    return mod.new_daemon()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cold", type=int, default=3)
    ap.add_argument("--cached", type=int, default=5)
    ap.add_argument("--mib", type=int, default=50)
    ap.add_argument("--compare-src", default="", help="also run a daemon from this copy of the code")
    args = ap.parse_args()
    load_start = os.getloadavg()[0]
    ctx = tempfile.mkdtemp(prefix="bench-build-")
    engines: dict[str, dict[str, str]] = {}
    pids: dict[str, int] = {}
    closers = []
    try:
        make_context(ctx, args.mib)
        g = new_daemon()
        closers.append(g.cleanup)
        engines["gorae"], pids["gorae"] = g.env, g.proc.pid
        if args.compare_src:
            o: Any = other_daemon(args.compare_src)
            closers.append(o.cleanup)
            engines["compared"], pids["compared"] = o.env, o.proc.pid
        if shutil.which("dockerd"):
            d = Dockerd()
            closers.append(d.close)
            engines["dockerd"], pids["dockerd"] = d.env, d.proc.pid
        cold: dict[str, list[float]] = {k: [] for k in engines}
        cached: dict[str, list[float]] = {k: [] for k in engines}
        cpu: dict[str, list[float]] = {k: [] for k in engines}
        order = list(engines)
        for i in range(args.cold):
            turn = order[i % len(order) :] + order[: i % len(order)]
            for name in turn if i % 2 == 0 else turn[::-1]:
                cold[name].append(build(engines[name], ctx, *(["--no-cache"] if i else [])))
        for i in range(args.cached):
            turn = order[i % len(order) :] + order[: i % len(order)]
            for name in turn if i % 2 == 0 else turn[::-1]:
                before = cpu_seconds(pids[name])
                cached[name].append(build(engines[name], ctx))
                cpu[name].append(cpu_seconds(pids[name]) - before)
    finally:
        for close in reversed(closers):
            close()
        remove_busybox_tar()
        shutil.rmtree(ctx, ignore_errors=True)
    print(
        f"{args.mib} MiB context, 10 instructions; load average {load_start:.2f} at the start, "
        f"{os.getloadavg()[0]:.2f} at the end"
    )
    print(
        f"{'engine':<10}{'cold median s':>15}{'(min)':>8}{'cached median s':>17}{'(min)':>8}"
        f"{'daemon CPU s/cached':>21}"
    )
    for name in engines:
        print(
            f"{name:<10}{statistics.median(cold[name]):>15.2f}{min(cold[name]):>8.2f}"
            f"{statistics.median(cached[name]):>17.2f}{min(cached[name]):>8.2f}"
            f"{statistics.median(cpu[name]):>21.3f}"
        )
    if "dockerd" in engines:
        for name in [n for n in engines if n != "dockerd"]:
            gc, dc = statistics.median(cold[name]), statistics.median(cold["dockerd"])
            gk, dkk = statistics.median(cached[name]), statistics.median(cached["dockerd"])
            gu, du = statistics.median(cpu[name]), statistics.median(cpu["dockerd"])
            print(f"{name}: cold ratio to dockerd {gc / dc:.2f} (goal <= 1.0)")
            print(
                f"{name}: cached ratio to dockerd {gk / dkk:.2f} (goal <= 0.5); daemon CPU ratio {gu / du:.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
