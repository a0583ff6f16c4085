"""Issue 10's "tests that show it" on one multi-node swarm: 3 managers and 2 workers, each daemon in its own
network namespace (tests/compat/swarm_cluster.py), driven with the docker CLI and docker-py.

30 replicas spread over the 5 nodes; a drained node's tasks move; a worker's daemon killed with -9: its tasks
are replaced once it is marked down, and when it comes back it runs no duplicate (its old task containers are
removed); the leader manager killed with -9: a new leader, no service or task lost, the orchestrator carries
on (a scale through another manager converges); `service logs` gathers lines from tasks on several nodes; a
secret reaches only the node that runs its task."""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import import_busybox, wait_for
from swarm_cluster import Host, init, join, lan, leader_of

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a daemon")

SECRET = "only-for-the-second-worker-7f3a\n"


def tasks(host: Host, service: str) -> list[dict[str, Any]]:
    """The service's tasks as docker-py's `tasks` shows them through `host`."""
    api = host.client().api
    try:
        return list(api.tasks(filters={"service": service}))
    finally:
        api.close()


def running(host: Host, service: str) -> list[dict[str, Any]]:
    return [t for t in tasks(host, service) if t["DesiredState"] == "running" and t["Status"]["State"] == "running"]


def placement(host: Host, service: str) -> Counter[str]:
    return Counter(t["NodeID"] for t in running(host, service))


def task_containers(host: Host, service: str, *, all_states: bool = False) -> list[str]:
    """Names of the service's task containers on `host` (running only unless `all_states`)."""
    args = ["ps", "--format", "{{.Names}}", "--filter", f"label=com.docker.swarm.service.name={service}"]
    if all_states:
        args.insert(1, "-a")
    return host.docker(*args, timeout=30).stdout.split()


def node_state(host: Host, node: str) -> str:
    r = host.docker("node", "inspect", "--format", "{{.Status.State}}", node, check=False, timeout=20)
    return r.stdout.strip() if r.returncode == 0 else ""


def converged(host: Host, service: str, n: int, *, away_from: tuple[str, ...] = ()) -> bool:
    """`n` tasks running and none still meant to run anywhere else (no task in flight), none on `away_from`."""
    ts = tasks(host, service)
    live = [t for t in ts if t["DesiredState"] == "running"]
    return (
        len(live) == n
        and all(t["Status"]["State"] == "running" for t in live)
        and not any(t.get("NodeID") in away_from for t in live)
    )


def test_thirty_replicas_drain_worker_and_leader_kills_logs_and_a_secret() -> None:
    t0 = time.monotonic()
    with lan(5, containers=True) as hosts:
        for h in hosts:
            import_busybox(h.daemon)
        _, tokens = init(hosts[0])
        for h in hosts[1:3]:
            join(h, hosts[0], tokens["manager"])
        for h in hosts[3:]:
            join(h, hosts[0], tokens["worker"])
        ids = {h.node_id: h for h in hosts}
        node_of = {h.addr: nid for nid, h in ids.items()}
        m0, m1, m2, w1, w2 = hosts
        assert leader_of(m0) in node_of.values()

        # 30 replicas spread over the 5 nodes, 6 on each
        m0.docker(
            "service", "create", "--detach", "--name", "web", "--replicas", "30",
            "busybox", "sh", "-c", "echo up on $(cat /etc/hostname); exec sleep 1d",
        )  # fmt: skip
        wait_for(lambda: converged(m0, "web", 30), timeout=150)
        assert sorted(placement(m0, "web").values()) == [6, 6, 6, 6, 6]
        for h in hosts:
            assert len(task_containers(h, "web")) == 6, h.addr

        # `service logs` through a manager gathers the lines of tasks on every node
        def log_nodes() -> set[str]:
            out = m1.docker("service", "logs", "--no-trunc", "web", timeout=60).stdout
            tids = set(re.findall(r"^web\.\d+\.([0-9a-z]{25})@\S+\s+\| up on [0-9a-f]{12}$", out, re.M))
            by_id = {t["ID"]: t["NodeID"] for t in tasks(m1, "web")}
            return {by_id[t] for t in tids if t in by_id}

        wait_for(lambda: log_nodes() == set(ids), timeout=60)

        # drain the second worker: its 6 tasks move to the others, its containers go
        m0.docker("node", "update", "--availability", "drain", node_of[w2.addr])
        wait_for(lambda: converged(m0, "web", 30, away_from=(node_of[w2.addr],)), timeout=120)
        wait_for(lambda: task_containers(w2, "web") == [], timeout=60)  # stopped (kept as history, as dockerd)
        assert sorted(placement(m0, "web").values()) == [7, 7, 8, 8]
        m0.docker("node", "update", "--availability", "active", node_of[w2.addr])

        # a secret reaches only the node running its task (the second worker, active again)
        m0.daemon.docker("secret", "create", "s1", "-", input=SECRET)
        m0.docker(
            "service", "create", "--detach", "--name", "sec", "--secret", "s1",
            "--constraint", f"node.id=={node_of[w2.addr]}", "busybox", "sh", "-c", "exec sleep 1d",
        )  # fmt: skip
        wait_for(lambda: converged(m0, "sec", 1), timeout=60)
        (sec_task,) = running(m0, "sec")
        assert w2.docker("exec", f"sec.1.{sec_task['ID']}", "cat", "/run/secrets/s1").stdout == SECRET

        def holders() -> list[str]:
            found = []
            for h in hosts:
                for p in Path(h.daemon.exec_root, "swarm").rglob("*"):
                    if p.is_file() and p.read_text(errors="replace") == SECRET:
                        found.append(h.addr)
            return found

        assert holders() == [w2.addr]

        # kill -9 the first worker's daemon: once it is down its tasks run elsewhere; back, it runs none of them
        before = {t["ID"] for t in tasks(m0, "web") if t["NodeID"] == node_of[w1.addr]}
        assert len(before) in (7, 8)
        w1.kill9()
        wait_for(lambda: node_state(m0, node_of[w1.addr]) == "down", timeout=30)
        wait_for(lambda: converged(m0, "web", 30, away_from=(node_of[w1.addr],)), timeout=120)
        w1.start()
        wait_for(lambda: node_state(m0, node_of[w1.addr]) == "ready", timeout=60)
        # no duplicate: its old tasks' containers stopped (or gone), none of them runs, no new one there
        wait_for(lambda: task_containers(w1, "web") == [], timeout=90)
        assert {n.rsplit(".", 1)[1] for n in task_containers(w1, "web", all_states=True)} <= before
        assert converged(m0, "web", 30)
        assert {t["ID"] for t in running(m0, "web")}.isdisjoint(before)

        # kill -9 the leader (whichever manager leads now): another manager leads, no service or task lost, a
        # scale through it converges
        managers = (m0, m1, m2)
        lead = ids[wait_for(lambda: leader_of(m1), timeout=30)]
        assert lead in managers
        via = next(h for h in managers if h is not lead)
        services_before = sorted(via.docker("service", "ls", "--format", "{{.Name}}").stdout.split())
        task_ids_before = {t["ID"] for t in tasks(via, "web")}
        on_leader = {t["ID"] for t in running(via, "web") if t["NodeID"] == node_of[lead.addr]}
        assert len(on_leader) >= 6
        lead.kill9()
        survivors = tuple(node_of[h.addr] for h in managers if h is not lead)
        wait_for(lambda: leader_of(via) in survivors, timeout=30)
        assert sorted(via.docker("service", "ls", "--format", "{{.Name}}").stdout.split()) == services_before
        assert task_ids_before <= {t["ID"] for t in tasks(via, "web")}
        via.docker("service", "scale", "--detach", "web=35", timeout=60)
        wait_for(lambda: node_state(via, node_of[lead.addr]) == "down", timeout=30)
        wait_for(lambda: converged(via, "web", 35, away_from=(node_of[lead.addr],)), timeout=150)
        lead.start()
        wait_for(lambda: node_state(via, node_of[lead.addr]) == "ready", timeout=60)
        wait_for(lambda: task_containers(lead, "web") == [], timeout=90)
        assert {n.rsplit(".", 1)[1] for n in task_containers(lead, "web", all_states=True)} <= on_leader
        assert converged(via, "web", 35)
        assert json.loads(lead.docker("info", "--format", "{{json .Swarm.ControlAvailable}}").stdout) is True

        via.docker("service", "rm", "web", "sec")
        for h in hosts:
            wait_for(lambda h=h: task_containers(h, "web", all_states=True) == [], timeout=90)  # type: ignore[misc]
            assert task_containers(h, "sec", all_states=True) == []
    print(f"multi-node swarm scenario took {time.monotonic() - t0:.1f} s")
