"""CLI benchmark: the `gorae` CLI vs the `docker` CLI, both against the same gorae daemon.

    python bench/cli.py [--runs 40] [--no-run] [--console-script] [--python PATH] [--compare-src DIR]

Commands: `ps`, `images`, `inspect C`, `inspect -f '{{.State.Status}}' C`, `logs C` (C: a running container
that printed 200 lines; a second one runs too, so `ps` has two rows) and `run --rm busybox true`. The gorae
CLI is the `-ISXutf8` launcher that scripts/setup.sh installs as /usr/local/bin/gorae (written here to a temp file
the same way, pointing at this checkout and this interpreter's site-packages); `--console-script` adds
`python -m gorae.cmd.main` (what a plain console script costs: `site` and .pth files included). `--python`
runs the launcher (and the floor) with another interpreter of the same version, e.g. Debian's own
/usr/bin/python3.11 (statically linked: what setup.sh's venv is made from on a stock Debian 12) where this
machine's venv comes from a pyenv build with a shared libpython; the CLI needs nothing outside the stdlib.
`--compare-src DIR` adds a third CLI: the same launcher over another checkout's `src` (e.g. an older commit
unpacked with `git archive COMMIT | tar -x -C DIR`), timed in the same alternation.

The machine is shared, so the CLIs alternate run by run (ABAB..., the order flipped every repetition) and load
hits both alike. Per command: the median wall time of each CLI with its interquartile range, and the ratio to
docker's as the median of the per-repetition ratios (each gorae run against the docker run next to it) with
their interquartile range: the spread says how far one re-run may land from another. The fastest run of each
(and the ratio of the fastest runs) shows the cost without the machine's load, which on a busy machine moves
the medians by more than the difference measured. Also prints the interpreter's own floor (`python -ISXutf8 -c
pass`), timed in the same alternation. `cpu`: the median CPU time (user + system, all threads) of each CLI's
runs and its ratio to docker's: what a command costs the machine, steadier than wall time under load (the docker
CLI's Go runtime spreads its work over several threads, so on an idle machine its wall time is below its CPU
time).
"""

from __future__ import annotations

import argparse
import os
import resource
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

LOGGER = "bench-cli-logs"
COMMANDS = [
    ["ps"],
    ["images"],
    ["inspect", LOGGER],
    ["inspect", "-f", "{{.State.Status}}", LOGGER],
    ["logs", LOGGER],
    ["run", "--rm", "busybox", "true"],
]
FLOOR = "python -ISXutf8 -c pass"


def write_launcher(path: str, python: str, src: str) -> None:
    """The launcher scripts/setup.sh installs, for the checkout `src` and the interpreter `python` (checkouts
    older than `gorae.cmd.main.run` get `sys.exit(main())`, what setup.sh wrote then)."""
    site = sysconfig.get_paths()["purelib"]
    with open(path, "w", encoding="utf-8") as f:
        f.write(
            f"#!{python} -ISXutf8\n"
            "import sys\n"
            f"sys.path[:0] = [{src!r}]\n"
            f"sys.path.append({site!r})\n"
            "import gorae.cmd.main as m\n"
            "m.run() if hasattr(m, 'run') else sys.exit(m.main())\n"
        )
    os.chmod(path, 0o755)


CPU: dict[tuple[str, str], list[float]] = {}  # (command, cli) -> CPU seconds (user + system) of each run


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def timed(argv: list[str], env: dict[str, str], cpu_key: tuple[str, str] | None = None) -> float:
    """Wall seconds of one run; its CPU seconds (all its threads, from the reaped child's rusage) go to
    CPU[cpu_key]."""
    c = _children_cpu()
    t = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    if cpu_key is not None:
        CPU.setdefault(cpu_key, []).append(_children_cpu() - c)
    return wall


def quartiles(xs: list[float]) -> tuple[float, float, float]:
    q1, q2, q3 = statistics.quantiles(xs, n=4)
    return q1, statistics.median(xs), q3


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--no-run", action="store_true", help="leave out `run --rm` (the slowest)")
    ap.add_argument("--console-script", action="store_true", help="also time `python -m gorae.cmd.main`")
    ap.add_argument("--python", default=sys.executable, help="the launcher's interpreter (default: this one)")
    ap.add_argument("--compare-src", help="also time the launcher over this checkout's src directory")
    args = ap.parse_args()
    commands = [c for c in COMMANDS if not (args.no_run and c[0] == "run")]
    launcher_dir = tempfile.mkdtemp(prefix="gorae-cli-bench-")
    launcher = os.path.join(launcher_dir, "gorae")
    write_launcher(launcher, args.python, os.path.join(ROOT, "src"))
    clis = {"docker": ["docker"], "gorae": [launcher]}
    if args.compare_src:
        other = os.path.join(launcher_dir, "gorae-other")
        write_launcher(other, args.python, os.path.abspath(os.path.join(args.compare_src, "src")))
        clis["gorae (--compare-src)"] = [other]
    if args.console_script:
        clis["gorae (python -m)"] = [sys.executable, "-m", "gorae.cmd.main"]
    results: dict[tuple[str, str], list[float]] = {}
    floor: list[float] = []
    d = None
    try:
        d = new_daemon()
        env = dict(d.env, PYTHONPATH=os.path.join(ROOT, "src"))
        d.docker("run", "-d", "--name", LOGGER, "busybox", "sh", "-c", "seq 1 200; exec sleep 1000000")
        d.docker("run", "-d", "--name", "bench-cli-other", "busybox", "sleep", "1000000")
        while d.docker("logs", LOGGER).stdout.count("\n") < 200:  # the output is there before the first run
            pass
        for cmd in commands:
            for argv in clis.values():  # warm up (page cache, .pyc files)
                timed([*argv, *cmd], env)
            order = list(clis)
            for i in range(args.runs):
                for name in order if i % 2 == 0 else order[::-1]:
                    key = (" ".join(cmd), name)
                    results.setdefault(key, []).append(timed([*clis[name], *cmd], env, key))
                if cmd == commands[0]:
                    floor.append(timed([args.python, "-ISXutf8", "-c", "pass"], env))
    finally:
        if d is not None:
            d.docker("rm", "-f", LOGGER, "bench-cli-other", check=False)
            d.cleanup()
        remove_busybox_tar()
        shutil.rmtree(launcher_dir, ignore_errors=True)
    print(f"{args.runs} runs each, CLIs alternating; times: median [q1-q3] ms; ratio: median [q1-q3] of the")
    print(
        "per-repetition ratios to the docker run beside it; best: the fastest run, and its ratio to docker's"
    )
    w = max(len(" ".join(c)) for c in commands) + 2
    print(
        f"{'command':<{w}}{'cli':<24}{'median':>8}{'q1-q3':>15}{'vs docker':>11}{'q1-q3':>14}{'best':>8}{'ratio':>8}"
        f"{'cpu':>7}{'ratio':>8}"
    )
    for cmd in commands:
        key = " ".join(cmd)
        base = results[(key, "docker")]
        for name in clis:
            xs = results[(key, name)]
            q1, m, q3 = quartiles(xs)
            r1, rm, r3 = quartiles([x / b for x, b in zip(xs, base, strict=True)])
            cpu = statistics.median(CPU[(key, name)])
            print(
                f"{key:<{w}}{name:<24}{m * 1000:>8.1f}{f'{q1 * 1000:.1f}-{q3 * 1000:.1f}':>15}"
                f"{rm:>10.2f}x{f'{r1:.2f}-{r3:.2f}':>14}{min(xs) * 1000:>8.1f}{min(xs) / min(base):>7.2f}x"
                f"{cpu * 1000:>7.1f}{cpu / statistics.median(CPU[(key, 'docker')]):>7.2f}x"
            )
    q1, m, q3 = quartiles(floor)
    print(
        f"interpreter floor `{FLOOR}` ({args.python}): {m * 1000:.1f} ms [{q1 * 1000:.1f}-{q3 * 1000:.1f}], "
        f"best {min(floor) * 1000:.1f} ms"
    )
    print("goal (issue 16): gorae <= 1.0x docker for ps, images, inspect, logs and run --rm")
    return 0


if __name__ == "__main__":
    sys.exit(main())
