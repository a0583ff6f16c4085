"""Swarm services on 5 nodes, each gorae daemon in its own network namespace (tests/compat/swarm_cluster.py):
3 managers and 2 workers, `--dispatcher-heartbeat` as given (1 s by default: the harness's value; dockerd's
default is 5 s, and the heal time is heartbeat-bound: a node is marked down after 3 missed periods).

1. From `docker service create -d --replicas N busybox sleep 1d` to N tasks running (polled through
   `GET /tasks` every 100 ms).
2. Heal: kill -9 the daemon of the worker with the most tasks, time until N tasks run again on the others
   (and, on the way, until the node is marked down), and when the replacement tasks were first seen created,
   assigned and running (a 100 ms poll of GET /tasks). The killed daemon is started again afterwards.
   `--keep-logs DIR` copies the daemons' logs there.

    PYTHONPATH=src /opt/gorae/venv/bin/python bench/swarm_cluster.py [--replicas 100] [--heartbeat 1s] [--keep-logs DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections import Counter
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "compat"))

from conftest import import_busybox, remove_busybox_tar  # noqa: E402
from swarm_cluster import SWARM_PORT, Host, lan  # noqa: E402


def _tasks(host: Host, service: str) -> list[dict[str, Any]]:
    api = host.client().api
    try:
        return list(api.tasks(filters={"service": service}))
    finally:
        api.close()


def _running(host: Host, service: str, away_from: str = "") -> int:
    return sum(
        1
        for t in _tasks(host, service)
        if t["DesiredState"] == "running" and t["Status"]["State"] == "running" and t["NodeID"] != away_from
    )


def _main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--replicas", type=int, default=100)
    ap.add_argument("--heartbeat", default="1s")
    ap.add_argument("--keep-logs", default="", help="copy the daemons' logs to this directory after the heal")
    args = ap.parse_args()
    n = args.replicas
    print(f"load average before: {os.getloadavg()}")
    with lan(5, containers=True) as hosts:
        for h in hosts:
            import_busybox(h.daemon)
        m0 = hosts[0]
        m0.docker("swarm", "init", "--advertise-addr", m0.addr, "--dispatcher-heartbeat", args.heartbeat)
        tokens = {r: m0.docker("swarm", "join-token", "-q", r).stdout.strip() for r in ("worker", "manager")}
        for i, h in enumerate(hosts[1:]):
            role = "manager" if i < 2 else "worker"
            h.docker("swarm", "join", "--token", tokens[role], f"{m0.addr}:{SWARM_PORT}", timeout=120)
        node_of = {h.addr: h.node_id for h in hosts}

        start = time.monotonic()
        m0.docker("service", "create", "-d", "--name", "b", "--replicas", str(n), "--stop-grace-period", "1s",
                  "busybox", "sleep", "1d")  # fmt: skip
        while _running(m0, "b") < n:
            time.sleep(0.1)
        up = time.monotonic() - start
        per_node = Counter(t["NodeID"] for t in _tasks(m0, "b") if t["Status"]["State"] == "running")
        role = {nid: ("manager" if i < 3 else "worker") for i, nid in enumerate(node_of.values())}
        print(f"service create --replicas {n} to {n} running on 5 nodes: {up:.2f} s (per node: "
              + ", ".join(f"{role[nid]} {per_node[nid]}" for nid in node_of.values()) + ")")
        history = Counter(t["NodeID"] for t in _tasks(m0, "b"))
        if sum(history.values()) != n:  # tasks were replaced on the way (a node marked down under load?)
            print(f"  {sum(history.values()) - n} tasks replaced on the way; nodes now:")
            print(m0.docker("node", "ls").stdout)

        victim = max(hosts[3:], key=lambda h: per_node[node_of[h.addr]])
        vid = node_of[victim.addr]
        moved = per_node[vid]
        before = {t["ID"] for t in _tasks(m0, "b")}
        victim.kill9()
        start = time.monotonic()
        killed_at = time.strftime("%H:%M:%S", time.localtime()) + f".{int(time.time() * 1000) % 1000:03d}"
        down = 0.0
        seen: dict[str, dict[str, float]] = {}  # new task -> first time (since the kill) seen in a phase
        while True:
            if not down:
                r = m0.docker("node", "inspect", "--format", "{{.Status.State}}", vid, check=False)
                if r.stdout.strip() == "down":
                    down = time.monotonic() - start
            tasks = _tasks(m0, "b")
            now = time.monotonic() - start
            for t in tasks:
                if t["ID"] in before:
                    continue
                phases = seen.setdefault(t["ID"], {"created": now})
                state = t["Status"]["State"]
                if t.get("NodeID") and state not in ("new", "pending"):
                    phases.setdefault("assigned", now)
                if state == "running":
                    phases.setdefault("running", now)
            running = sum(
                1
                for t in tasks
                if t["DesiredState"] == "running" and t["Status"]["State"] == "running" and t["NodeID"] != vid
            )
            if down and running >= n:
                break
            time.sleep(0.1)
        healed = time.monotonic() - start
        print(f"kill -9 of a worker's daemon ({moved} tasks): marked down after {down:.2f} s, "
              f"{n} running again after {healed:.2f} s (heartbeat {args.heartbeat})")  # fmt: skip
        print(f"  killed at {killed_at} ({victim.addr}); phases since then:")
        for phase in ("created", "assigned", "running"):  # as seen by a 100 ms poll of GET /tasks
            times = sorted(p[phase] for p in seen.values() if phase in p)
            if times:
                print(f"  replacement tasks {phase}: first {times[0]:.2f} s, last {times[-1]:.2f} s "
                      f"({len(times)} tasks)")  # fmt: skip
        if args.keep_logs:
            os.makedirs(args.keep_logs, exist_ok=True)
            for h in hosts:
                shutil.copy(h.daemon.log_path, os.path.join(args.keep_logs, f"{h.addr}.log"))
        victim.start()
        m0.docker("service", "rm", "b")
    print(f"load average after: {os.getloadavg()}")


def main() -> None:
    try:
        _main()
    finally:
        remove_busybox_tar()  # the tarball import_busybox made for this run


if __name__ == "__main__":
    main()
