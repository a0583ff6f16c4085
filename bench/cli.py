"""CLI benchmark: `gorae` vs the `docker` CLI against the same gorae daemon, interleaved.

    python bench/cli.py [--runs 20]

Commands: `ps`, `images`, `run --rm busybox true`. Two gorae launchers are timed: the `-IS` launcher that
scripts/setup.sh installs as /usr/local/bin/gorae (written here to a temp file the same way, pointing at this
checkout and this interpreter's site-packages), and `python -m gorae.cmd.main` (what a plain console script
costs, `site` and .pth files included). Also prints the interpreter's own floor (`python -IS -c pass`).
Median wall time of --runs each, the engines alternating per repetition; prints the ratios to docker's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from conftest import new_daemon, remove_busybox_tar  # noqa: E402

COMMANDS = [["ps"], ["images"], ["run", "--rm", "busybox", "true"]]


def write_launcher(path: str) -> None:
    """The launcher scripts/setup.sh installs, for this checkout and interpreter."""
    src = os.path.join(ROOT, "src")
    site = sysconfig.get_paths()["purelib"]
    with open(path, "w", encoding="utf-8") as f:
        f.write(
            f"#!{sys.executable} -IS\n"
            "import sys\n"
            f"sys.path[:0] = [{src!r}, {site!r}]\n"
            "from gorae.cmd.main import main\n"
            "sys.exit(main())\n"
        )
    os.chmod(path, 0o755)


def timed(argv: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--no-run", action="store_true", help="time ps and images only")
    args = ap.parse_args()
    commands = COMMANDS[:2] if args.no_run else COMMANDS
    launcher_dir = tempfile.mkdtemp(prefix="gorae-cli-bench-")
    launcher = os.path.join(launcher_dir, "gorae")
    write_launcher(launcher)
    clis = {
        "docker": ["docker"],
        "gorae (-IS launcher)": [launcher],
        "gorae (python -m)": [sys.executable, "-m", "gorae.cmd.main"],
    }
    results: dict[tuple[str, str], list[float]] = {}
    floor: list[float] = []
    d = None
    try:
        d = new_daemon()
        env = dict(d.env, PYTHONPATH=os.path.join(ROOT, "src"))
        for cmd in commands:
            for argv in clis.values():  # warm up
                timed([*argv, *cmd], env)
            order = list(clis)
            for i in range(args.runs):
                for name in order if i % 2 == 0 else order[::-1]:
                    results.setdefault((" ".join(cmd), name), []).append(timed([*clis[name], *cmd], env))
        for _ in range(args.runs):
            floor.append(timed([sys.executable, "-IS", "-c", "pass"], env))
    finally:
        if d is not None:
            d.cleanup()
        remove_busybox_tar()
        shutil.rmtree(launcher_dir, ignore_errors=True)
    print(f"{'command':<28}{'cli':<24}{'median ms':>10}{'vs docker':>11}")
    for cmd in commands:
        key = " ".join(cmd)
        base = statistics.median(results[(key, "docker")])
        for name in clis:
            m = statistics.median(results[(key, name)])
            print(f"{key:<28}{name:<24}{m * 1000:>10.1f}{m / base:>10.2f}x")
    print(f"interpreter floor `python -IS -c pass`: {statistics.median(floor) * 1000:.1f} ms")
    print("goals: ps <= 1.3x docker, run <= 1.1x docker")
    return 0


if __name__ == "__main__":
    sys.exit(main())
