"""Swarm mode timings: `docker swarm init` (CA, certificates, etcd member up, first writes) followed by
`swarm leave --force`, on gorae and on the reference dockerd, 3 rounds each.

    PYTHONPATH=src /opt/gorae/venv/bin/python bench/swarm.py
    PYTHONPATH=src /opt/gorae/venv/bin/python bench/swarm.py --failover 5

`--failover N`: three gorae managers, each in its own network namespace (tests/compat/swarm_cluster.py);
N rounds of: kill -9 the leader's daemon, then time until another manager accepts an API write
(`POST /swarm/update`, retried at once on failure) and until it names a new leader; the killed daemon is
started again and the cluster settles before the next round. Goal: writes again within 5 s.
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
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "compat"))

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


def failover_rounds(n: int) -> list[tuple[float, float]]:
    """(seconds until a write is accepted, seconds until a new leader is named) after each leader kill."""
    import statistics

    from swarm_cluster import init, join, lan, leader_of

    out: list[tuple[float, float]] = []
    with lan(3) as hosts:
        _, tokens = init(hosts[0])
        for h in hosts[1:]:
            join(h, hosts[0], tokens["manager"])
        ids = {h.node_id: h for h in hosts}
        for i in range(n):
            old = ""
            while old not in ids:
                old = leader_of(hosts[0]) or leader_of(hosts[1])
            victim = ids[old]
            other = next(h for h in hosts if h is not victim)
            api = other.client().api
            api.timeout = 5
            victim.kill9()
            start = time.monotonic()
            while True:
                try:
                    spec = api.inspect_swarm()
                    api.update_swarm(
                        version=spec["Version"]["Index"],
                        swarm_spec={
                            **spec["Spec"],
                            "Orchestration": {"TaskHistoryRetentionLimit": 5 + i % 3},
                        },
                    )
                    break
                except Exception:  # noqa: BLE001 - no quorum yet: retry at once
                    continue
            wrote = time.monotonic() - start
            while leader_of(other) in ("", old):
                pass
            elected = time.monotonic() - start
            out.append((wrote, elected))
            print(f"round {i + 1}: write accepted after {wrote:.2f} s, new leader after {elected:.2f} s")
            victim.start()
            while True:  # settled: the restarted manager sees a leader and every manager reachable
                r = victim.docker("node", "ls", "--format", "{{.ManagerStatus}}", check=False)
                if r.returncode == 0 and sorted(r.stdout.split()) == ["Leader", "Reachable", "Reachable"]:
                    break
        writes = [w for w, _ in out]
        print(f"failover: write accepted median {statistics.median(writes):.2f} s, max {max(writes):.2f} s")
    return out


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--failover":
        failover_rounds(int(sys.argv[2]))
        return
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
