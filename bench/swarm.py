"""Swarm mode timings: `docker swarm init` (CA, certificates, etcd member up, first writes) followed by
`swarm leave --force`, on gorae and on the reference dockerd, 3 rounds each.

    PYTHONPATH=src /opt/gorae/venv/bin/python bench/swarm.py
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from conftest import new_daemon  # noqa: E402
from refdockerd import Dockerd  # noqa: E402


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def init_rounds(env: dict[str, str], n: int = 3) -> list[float]:
    times = []
    for _ in range(n):
        addr = f"127.0.0.1:{_port()}"
        start = time.monotonic()
        subprocess.run(
            ["docker", "swarm", "init", "--advertise-addr", addr, "--listen-addr", addr],
            env=env,
            check=True,
            capture_output=True,
        )
        times.append(time.monotonic() - start)
        subprocess.run(["docker", "swarm", "leave", "--force"], env=env, check=True, capture_output=True)
    return times


def main() -> None:
    g = new_daemon(with_busybox=False)
    try:
        print("gorae   swarm init (s):", " ".join(f"{t:.2f}" for t in init_rounds(g.env)))
    finally:
        g.cleanup()
    d = Dockerd()
    try:
        print("dockerd swarm init (s):", " ".join(f"{t:.2f}" for t in init_rounds(d.env)))
    finally:
        d.close()


if __name__ == "__main__":
    main()
