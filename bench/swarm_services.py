"""Swarm services on one node: from `docker service create -d --replicas N busybox sleep 1d` to N tasks
running (polled through `GET /tasks` every 50 ms), and from `service rm` to no task left; on gorae and on
the reference dockerd, 3 rounds each. Without a swarm agent, gorae's tasks stop at `assigned`: then the
time to N assigned is printed instead.

    PYTHONPATH=src /opt/gorae/venv/bin/python bench/swarm_services.py [N]
"""

from __future__ import annotations

import json
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


def _tasks(env: dict[str, str], service_id: str) -> list[dict[str, object]]:
    """The service's tasks (every task listed, then picked: a removed service's tasks are still there)."""
    sock = env["DOCKER_HOST"].removeprefix("unix://")
    out = subprocess.run(
        ["curl", "-s", "--unix-socket", sock, "http://x/v1.41/tasks"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [t for t in json.loads(out) if t["ServiceID"] == service_id]


def rounds(env: dict[str, str], n: int, want: str, count: int = 3) -> list[tuple[float, float]]:
    addr = f"127.0.0.1:{_port()}"
    subprocess.run(
        ["docker", "swarm", "init", "--advertise-addr", addr, "--listen-addr", addr],
        env=env,
        check=True,
        capture_output=True,
    )
    times = []
    try:
        for i in range(count):
            name = f"bench{i}"
            start = time.monotonic()
            service_id = subprocess.run(
                ["docker", "service", "create", "-d", "--name", name, "--replicas", str(n),
                 "--stop-grace-period", "1s", "busybox", "sleep", "1d"],
                env=env, check=True, capture_output=True, text=True,
            ).stdout.strip()  # fmt: skip
            while sum(1 for t in _tasks(env, service_id) if t["Status"]["State"] == want) < n:  # type: ignore[index]
                time.sleep(0.05)
            up = time.monotonic() - start
            start = time.monotonic()
            subprocess.run(["docker", "service", "rm", name], env=env, check=True, capture_output=True)
            while want == "running" and _tasks(env, service_id):  # without an agent nothing stops them
                time.sleep(0.05)
            times.append((up, time.monotonic() - start))
    finally:
        subprocess.run(["docker", "swarm", "leave", "--force"], env=env, capture_output=True)
    return times


def _agent_present() -> bool:
    try:
        import gorae.swarm.agent  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    want = "running" if _agent_present() else "assigned"
    g = new_daemon()
    try:
        for up, down in rounds(g.env, n, want):
            tail = f"; service rm to no task: {down:.2f} s" if want == "running" else ""
            print(f"gorae   {n} tasks {want}: {up:.2f} s{tail}")
    finally:
        g.cleanup()
    d = Dockerd()
    try:
        for up, down in rounds(d.env, n, "running"):
            print(f"dockerd {n} tasks running: {up:.2f} s; service rm to no task: {down:.2f} s")
    finally:
        d.close()


if __name__ == "__main__":
    main()
