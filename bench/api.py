"""API server benchmark: per-request cost of gorae's Engine API server against a real dockerd.

    python bench/api.py [--rounds 15] [--requests 300] [--containers 3]

Measures, with one cheap raw-socket client (the same code for both engines, in this process):
  ping-new   `GET /_ping` on a new unix connection per request (connect, request, read, close)
  ping-keep  `GET /_ping` on one keep-alive connection
  list-new   `GET /v1.41/containers/json` on a new connection, with --containers running containers
  list-keep  the same on one keep-alive connection
Each round runs --requests requests per case on every engine, in alternating engine order, so machine load
hits both alike; the figure is the median over rounds of the mean milliseconds per request. The reference
dockerd (bench/refdockerd.py) runs with `--iptables=false --bridge=none` on its own roots and is removed at
the end; containers run with `--network none` on both. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

import conftest  # noqa: E402
from conftest import new_daemon  # noqa: E402
from refdockerd import Dockerd  # noqa: E402

# v1.41: the newest version the reference dockerd (20.10) accepts; gorae accepts it too
CASES = {
    "ping-new": (b"/_ping", True),
    "ping-keep": (b"/_ping", False),
    "list-new": (b"/v1.41/containers/json", True),
    "list-keep": (b"/v1.41/containers/json", False),
}
GOALS = ("ping-new", "list-new")


def request(path: bytes) -> bytes:
    return b"GET " + path + b" HTTP/1.1\r\nHost: docker\r\nUser-Agent: bench/1\r\n\r\n"


def read_response(sock: socket.socket, buf: bytearray) -> None:
    """Read one whole response (Content-Length or chunked) into nothing; leftovers stay in `buf`."""
    while (end := buf.find(b"\r\n\r\n")) < 0:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("server closed before the response head")
        buf += data
    head = bytes(buf[:end]).lower()
    del buf[: end + 4]
    if not head.startswith(b"http/1.1 200"):
        raise RuntimeError(f"unexpected response: {head[:200]!r}")
    i = head.find(b"\r\ncontent-length:")
    if i >= 0:
        length = int(head[i + 17 :].split(b"\r\n", 1)[0])
        while len(buf) < length:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("server closed mid-body")
            buf += data
        del buf[:length]
        return
    while (end := buf.find(b"\r\n0\r\n\r\n")) < 0 and not buf.startswith(b"0\r\n\r\n"):
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("server closed mid-body")
        buf += data
    del buf[: (end + 7) if end >= 0 else 5]


def run_case(path: str, target: bytes, new_conn: bool, n: int) -> float:
    """Mean milliseconds per request over `n` requests."""
    req = request(target)
    buf = bytearray()
    if new_conn:
        t = time.perf_counter()
        for _ in range(n):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(path)
                s.sendall(req)
                read_response(s, buf)
                buf.clear()
        return (time.perf_counter() - t) * 1000 / n
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
        t = time.perf_counter()
        for _ in range(n):
            s.sendall(req)
            read_response(s, buf)
        return (time.perf_counter() - t) * 1000 / n


def start_containers(env: dict[str, str], count: int) -> None:
    for _ in range(count):
        subprocess.run(
            ["docker", "run", "-d", "--network", "none", "--label", "bench=api", "busybox", "sleep", "3600"],
            env=env,
            check=True,
            capture_output=True,
        )


def remove_containers(env: dict[str, str]) -> None:
    ids = subprocess.run(
        ["docker", "ps", "-aq", "--filter", "label=bench=api"], env=env, capture_output=True, text=True
    ).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], env=env, capture_output=True)


def remove_files(*paths: str) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            os.unlink(path)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--requests", type=int, default=300, help="requests per case per engine per round")
    ap.add_argument("--containers", type=int, default=3, help="running containers during list-*")
    ap.add_argument("--no-dockerd", action="store_true", help="measure gorae only")
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of " + ",".join(CASES))
    args = ap.parse_args()
    cases = [c for c in args.cases.split(",") if c]
    engines: dict[str, tuple[str, dict[str, str]]] = {}
    closers = []
    try:
        g = new_daemon()
        closers.append(lambda: remove_files(g.log_path))
        closers.append(conftest.remove_busybox_tar)
        closers.append(g.cleanup)
        engines["gorae"] = (g.socket, g.env)
        if shutil.which("dockerd") and not args.no_dockerd:
            d = Dockerd()
            closers.append(d.close)
            engines["dockerd"] = (d.sock, d.env)
        for _, env in engines.values():
            closers.append(lambda env=env: remove_containers(env))
            start_containers(env, args.containers)
        results: dict[str, dict[str, list[float]]] = {e: {c: [] for c in cases} for e in engines}
        order = list(engines)
        for path, _ in engines.values():  # warm up
            for c in cases:
                run_case(path, CASES[c][0], CASES[c][1], 50)
        for i in range(args.rounds):
            for name in order if i % 2 == 0 else order[::-1]:
                for c in cases:
                    target, new_conn = CASES[c]
                    results[name][c].append(run_case(engines[name][0], target, new_conn, args.requests))
    finally:
        for close in reversed(closers):
            close()
    print(
        f"{'case':<12}"
        + "".join(f"{name + ' ms':>14}" for name in engines)
        + ("  ratio" if len(engines) > 1 else "")
    )
    for c in cases:
        med = {name: statistics.median(results[name][c]) for name in engines}
        line = f"{c:<12}" + "".join(f"{med[name]:>14.3f}" for name in engines)
        if "dockerd" in engines:
            line += f"  {med['gorae'] / med['dockerd']:.2f}" + ("  (goal <= 1.0)" if c in GOALS else "")
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
