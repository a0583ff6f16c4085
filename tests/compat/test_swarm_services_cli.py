"""Swarm services on one manager with the docker CLI and docker-py: `service create/ls/inspect/update/scale/
rollback/rm/ps` and docker-py's `services.*`, `/services` and `/tasks` over HTTP.

`test_service_texts_match_the_reference_dockerd` runs the same CLI commands against gorae and the real
dockerd (`dk`) with a constraint no node meets, so both keep their tasks pending and print the same.
The others run on gorae alone; until the swarm agent runs tasks (helper swarm-agent), they follow tasks up
to the `assigned` state (on this node) and accept any later state a running agent reports.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import GoraeDaemon, wait_for
from swarm_cluster import single_manager
from swarm_peer import free_port

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a daemon")

ID = r"[0-9a-z]{25}"
ASSIGNED_OR_LATER = ("assigned", "accepted", "preparing", "ready", "starting", "running")
DEFAULT_SPEC_TAIL = {
    "Mode": {"Replicated": {"Replicas": 2}},
    "UpdateConfig": {
        "Parallelism": 1,
        "FailureAction": "pause",
        "Monitor": 5000000000,
        "MaxFailureRatio": 0,
        "Order": "stop-first",
    },
    "RollbackConfig": {
        "Parallelism": 1,
        "FailureAction": "pause",
        "Monitor": 5000000000,
        "MaxFailureRatio": 0,
        "Order": "stop-first",
    },
    "EndpointSpec": {"Mode": "vip"},
}


@pytest.fixture
def manager() -> Iterator[GoraeDaemon]:
    """A daemon of its own with busybox, initialised as a single-node swarm; no etcd left behind."""
    with single_manager() as d:
        yield d


def _tasks(d: GoraeDaemon, service: str) -> list[dict[str, Any]]:
    out = d.docker("service", "ps", "-q", "--no-trunc", service).stdout.split()
    if not out:
        return []
    return list(json.loads(d.docker("inspect", "--type", "task", *out).stdout))


def test_service_texts_match_the_reference_dockerd(dk) -> None:  # noqa: ANN001
    port = free_port()
    init = dk("swarm", "init", "--advertise-addr", f"127.0.0.1:{port}", "--listen-addr", f"127.0.0.1:{port}")
    assert init.returncode == 0, init.stderr
    try:
        made = dk(
            "service", "create", "-d", "--name", "web", "--replicas", "2",
            "--constraint", "node.labels.nowhere==x", "busybox", "sleep", "1d",
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        assert re.fullmatch(rf"{ID}\n", made.stdout), made.stdout
        spec = json.loads(dk("service", "inspect", "--format", "{{json .Spec}}", "web").stdout)
        assert spec == {
            "Name": "web",
            "Labels": {},
            "TaskTemplate": {
                "ContainerSpec": {
                    "Image": "busybox:latest",
                    "Args": ["sleep", "1d"],
                    "Init": False,
                    "StopGracePeriod": 10000000000,
                    "DNSConfig": {},
                    "Isolation": "default",
                },
                "Resources": {"Limits": {}, "Reservations": {}},
                "RestartPolicy": {"Condition": "any", "Delay": 5000000000, "MaxAttempts": 0},
                "Placement": {"Constraints": ["node.labels.nowhere==x"]},
                "ForceUpdate": 0,
                "Runtime": "container",
            },
            **DEFAULT_SPEC_TAIL,
        }
        ps = wait_for(
            lambda: (
                (
                    out := dk(
                        "service",
                        "ps",
                        "--no-trunc",
                        "--format",
                        "{{.Name}}|{{.DesiredState}}|{{.Error}}",
                        "web",
                    ).stdout
                ).count('"no suitable node')
                == 2
                and out
            )
        )
        assert sorted(ps.splitlines()) == [
            'web.1|Running|"no suitable node (scheduling constraints not satisfied on 1 node)"',
            'web.2|Running|"no suitable node (scheduling constraints not satisfied on 1 node)"',
        ]
        ls = dk("service", "ls", "--format", "{{.Name}} {{.Mode}} {{.Replicas}} {{.Image}}").stdout
        assert ls == "web replicated 0/2 busybox:latest\n"
        again = dk("service", "create", "-d", "--name", "web", "busybox")
        assert (again.returncode, again.stderr.splitlines()[-1]) == (
            1,
            "Error response from daemon: rpc error: code = AlreadyExists desc = name conflicts with an existing "
            "object: service web already exists",
        )
        service_id = dk("service", "inspect", "--format", "{{.ID}}", "web").stdout.strip()
        r = dk("service", "rollback", "-d", "web")
        assert (r.returncode, r.stderr) == (
            1,
            f"Error response from daemon: rpc error: code = FailedPrecondition desc = service {service_id} does not "
            "have a previous spec\n",
        )
        r = dk("service", "update", "-d", "--constraint-add", "bogus", "web")
        assert (r.returncode, r.stderr) == (
            1,
            "Error response from daemon: rpc error: code = Unknown desc = constraint expected one operator from ==, !=\n",
        )
        assert dk("service", "update", "-d", "--args", "sleep 2d", "web").stdout == "web\n"
        status = dk("service", "inspect", "--format", "{{.UpdateStatus.State}}|{{.UpdateStatus.Message}}|{{json .PreviousSpec.TaskTemplate.ContainerSpec.Args}}", "web")  # fmt: skip
        assert status.stdout == 'updating|update in progress|["sleep","1d"]\n'
        assert dk("service", "rollback", "-d", "web").stdout == "web\n"
        status = dk("service", "inspect", "--format", "{{.UpdateStatus.State}}|{{.UpdateStatus.Message}}|{{json .Spec.TaskTemplate.ContainerSpec.Args}}", "web")  # fmt: skip
        assert status.stdout == 'rollback_started|manually requested rollback|["sleep","1d"]\n'
        assert dk("service", "scale", "-d", "web=3").stdout == "web scaled to 3\n"
        assert dk("service", "ls", "--format", "{{.Name}} {{.Replicas}}").stdout == "web 0/3\n"
        glob = dk("service", "create", "-d", "--mode", "global", "--name", "glob", "--constraint", "node.role==worker", "busybox")  # fmt: skip
        assert glob.returncode == 0, glob.stderr
        r = dk("service", "scale", "glob=2")
        assert (r.returncode, r.stderr) == (
            1,
            "glob: scale can only be used with replicated or replicated-job mode\n",
        )
        for args, err in [
            (("service", "inspect", "nope"), "Error: no such service: nope\n"),
            (("service", "rm", "nope"), "Error response from daemon: service nope not found\n"),
            (("service", "ps", "nope"), "no such service: nope\n"),
            (("service", "scale", "nope=2"), "nope: Error response from daemon: service nope not found\n"),
        ]:
            r = dk(*args)
            assert (r.returncode, r.stderr) == (1, err), args
        assert dk("service", "rm", "web", "glob").stdout == "web\nglob\n"
        assert dk("service", "ls", "-q").stdout == ""
    finally:
        left = dk("swarm", "leave", "--force")
    assert left.returncode == 0, left.stderr


def test_docker_cli_service_life(manager: GoraeDaemon) -> None:
    d = manager
    node_id = d.docker("info", "--format", "{{.Swarm.NodeID}}").stdout.strip()
    made = d.docker("service", "create", "-d", "--name", "web", "--replicas", "3", "busybox", "sleep", "1d")
    service_id = made.stdout.strip()
    assert re.fullmatch(ID, service_id)
    tasks = wait_for(
        lambda: (ts := _tasks(d, "web")) and all(t["Status"]["State"] in ASSIGNED_OR_LATER for t in ts) and ts
    )
    assert sorted(t["Slot"] for t in tasks) == [1, 2, 3]
    assert {t["NodeID"] for t in tasks} == {node_id}
    assert {t["ServiceID"] for t in tasks} == {service_id}
    assert {t["DesiredState"] for t in tasks} == {"running"}
    lines = d.docker("service", "ps", "--format", "{{.Name}} {{.Node}} {{.DesiredState}}", "web").stdout
    assert sorted(lines.splitlines()) == [f"web.{i} {socket.gethostname()} Running" for i in (1, 2, 3)]
    assert d.docker("service", "ls", "--format", "{{.ID}} {{.Name}} {{.Mode}} {{.Image}}").stdout == (
        f"{service_id[:12]} web replicated busybox:latest\n"
    )
    # scale down: the highest slots go (desired remove) and the rest stay
    assert d.docker("service", "scale", "-d", "web=1").stdout == "web scaled to 1\n"
    wait_for(lambda: [t["Slot"] for t in _tasks(d, "web") if t["DesiredState"] == "running"] == [1])
    # an update makes a new task for slot 1 and keeps the old spec as PreviousSpec
    assert d.docker("service", "update", "-d", "--env-add", "A=1", "web").stdout == "web\n"
    svc = json.loads(d.docker("service", "inspect", "web").stdout)[0]
    assert svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"] == ["A=1"]
    assert "Env" not in svc["PreviousSpec"]["TaskTemplate"]["ContainerSpec"]
    assert svc["UpdateStatus"]["State"] == "updating"
    new = wait_for(lambda: [t for t in _tasks(d, "web") if t["Spec"]["ContainerSpec"].get("Env") == ["A=1"]])
    assert new[0]["Slot"] == 1 and new[0]["NodeID"] == node_id
    # global: one task on this node, named by it
    d.docker("service", "create", "-d", "--mode", "global", "--name", "agent", "busybox", "sleep", "1d")
    (task,) = wait_for(lambda: _tasks(d, "agent"))
    assert task["NodeID"] == node_id and "Slot" not in task
    assert d.docker("service", "ps", "--format", "{{.Name}}", "agent").stdout == f"agent.{node_id}\n"
    assert d.docker("service", "rm", "web", "agent").stdout == "web\nagent\n"
    assert d.docker("service", "ls", "-q").stdout == ""


def test_docker_py_services(manager: GoraeDaemon) -> None:
    import docker.types

    client = manager.client()
    try:
        svc = client.services.create(
            "busybox",
            ["sleep", "1d"],
            name="py",
            mode=docker.types.ServiceMode("replicated", replicas=2),
            labels={"tier": "front"},
            constraints=["node.role==manager"],
        )
        assert client.services.get("py").id == svc.id
        assert [s.name for s in client.services.list(filters={"label": "tier=front"})] == ["py"]
        assert client.services.list(filters={"name": "zzz"}) == []
        tasks = wait_for(
            lambda: (ts := svc.tasks()) and len(ts) == 2 and all(t.get("NodeID") for t in ts) and ts
        )
        assert sorted(t["Slot"] for t in tasks) == [1, 2]
        assert svc.scale(4) == {"Warnings": None}  # dockerd's update answer, as docker-py returns it
        # docker-py's update sends the spec back with the defaults filled in (insertDefaults), so, as on
        # dockerd, slots 1 and 2 are also rolled over to new tasks
        wait_for(
            lambda: (
                {t["Slot"] for t in svc.tasks() if t["DesiredState"] in ("ready", "running")} == {1, 2, 3, 4}
            )
        )
        svc.reload()
        assert svc.attrs["Spec"]["Mode"] == {"Replicated": {"Replicas": 4}}
        svc.update(args=["sleep", "2d"])
        svc.reload()
        assert svc.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Args"] == ["sleep", "2d"]
        previous = svc.attrs["PreviousSpec"]["TaskTemplate"]["ContainerSpec"]
        assert (previous["Command"], previous.get("Args")) == (["sleep", "1d"], None)
        stale = svc.attrs["Version"]["Index"] - 1
        with pytest.raises(docker.errors.APIError) as err:
            client.api.update_service(
                svc.id, stale, task_template=svc.attrs["Spec"]["TaskTemplate"], name="py"
            )
        assert err.value.response.status_code == 500
        assert err.value.explanation == "rpc error: code = Unknown desc = update out of sequence"
        assert svc.remove() is True
        with pytest.raises(docker.errors.NotFound):
            client.services.get("py")
    finally:
        client.close()


def test_scheduling_across_nodes() -> None:
    """One manager and two workers, each in its own network namespace (tests/compat/swarm_cluster.py):
    constraints, spread over a node label, global mode, a drained node's tasks moved, and a worker killed
    with -9 whose tasks are replaced on the other one once it is Down."""
    from conftest import import_busybox
    from swarm_cluster import init, join, lan

    with lan(3) as hosts:
        manager, w1, w2 = hosts
        _, tokens = init(manager)
        ids = [manager.node_id] + [join(h, manager, tokens["worker"]) for h in (w1, w2)]
        for h in hosts:
            import_busybox(h.daemon)
        for node, zone in zip(ids[1:], ("a", "b"), strict=True):
            manager.docker("node", "update", "--label-add", f"zone={zone}", node)

        def tasks(service: str) -> list[dict[str, Any]]:
            """The service's tasks to run (DesiredState running, or ready: a replacement waiting for its
            restart delay — 1 h here, so a task an agent could not run is replaced once, and stays placed)."""
            state = ["--filter", "desired-state=running", "--filter", "desired-state=ready"]
            out = manager.docker("service", "ps", "-q", "--no-trunc", *state, service)
            found = []
            for task_id in out.stdout.split():  # one by one: the reaper may delete one meanwhile
                r = manager.docker("inspect", "--type", "task", task_id, check=False)
                if r.returncode == 0:
                    found += json.loads(r.stdout)
            return found

        def placed(service: str, nodes: list[str]) -> None:
            """Wait until the service's tasks to run are on exactly `nodes` (assigned, or further)."""

            def now() -> list[str] | None:
                ts = tasks(service)
                if all(t["Status"]["State"] in ASSIGNED_OR_LATER for t in ts):
                    return sorted(t["NodeID"] for t in ts)
                return None

            try:
                wait_for(lambda: now() == sorted(nodes), timeout=30)
            except AssertionError:
                fmt = "{{.ID}} {{.Node}} {{.DesiredState}} {{.CurrentState}} {{.Error}}"
                seen = manager.docker("service", "ps", "--no-trunc", "--format", fmt, service).stdout
                raise AssertionError(f"{service}: not on {nodes} but {now()}:\n{seen}") from None

        manager.docker(
            "service", "create", "-d", "--name", "spread", "--replicas", "4", "--constraint", "node.role==worker",
            "--placement-pref", "spread=node.labels.zone", "--restart-delay", "1h", "busybox", "sleep", "1d",
        )  # fmt: skip
        placed("spread", sorted([ids[1], ids[1], ids[2], ids[2]]))
        manager.docker("service", "create", "-d", "--name", "pinned", "--replicas", "2", "--restart-delay", "1h",
                       "--constraint", "node.labels.zone==b", "busybox", "sleep", "1d")  # fmt: skip
        placed("pinned", [ids[2], ids[2]])
        manager.docker("service", "create", "-d", "--mode", "global", "--name", "everywhere", "--restart-delay", "1h",
                       "busybox", "sleep", "1d")  # fmt: skip
        placed("everywhere", sorted(ids))

        # drain w2: its tasks go; the pinned ones have nowhere else to go and say why
        manager.docker("node", "update", "--availability", "drain", ids[2])
        placed("spread", [ids[1]] * 4)
        pending = wait_for(
            lambda: len(ts := [t for t in tasks("pinned") if t["Status"]["State"] == "pending"]) == 2 and ts,
            timeout=30,
        )
        assert {t["Status"]["Err"] for t in pending} == {
            "no suitable node (1 node not available for new tasks; scheduling constraints not satisfied on 2 nodes)"
        }
        placed("everywhere", sorted(ids[:2]))

        # w2 active again, w1 killed: once it is Down its spread tasks are replaced on w2
        manager.docker("node", "update", "--availability", "active", ids[2])
        placed("pinned", [ids[2], ids[2]])
        w1.kill9()
        wait_for(
            lambda: (
                manager.docker("node", "inspect", "--format", "{{.Status.State}}", ids[1]).stdout.strip()
                == "down"
            ),
            timeout=30,
        )
        placed("spread", [ids[2]] * 4)


def test_gorae_cli_and_docker_cli_print_the_same(manager: GoraeDaemon) -> None:
    """The gorae CLI (helper swarm-cli's) against these routes: the same output as the docker CLI's."""
    import subprocess
    import sys

    from conftest import SRC

    def both(*args: str) -> tuple[int, str, str]:
        r = manager.docker(*args, check=False)
        g = subprocess.run(
            [sys.executable, "-m", "gorae.cli.main", *args],
            env=dict(manager.env, PYTHONPATH=SRC),
            capture_output=True,
            text=True,
            timeout=120,
        )
        got = (g.returncode, g.stdout.replace("gorae", "docker"), g.stderr.replace("gorae", "docker"))
        assert got == (r.returncode, r.stdout, r.stderr), args
        return got

    g = subprocess.run(
        [sys.executable, "-m", "gorae.cli.main", "service", "create", "-d", "--name", "web", "--replicas", "2",
         "--constraint", "node.role==manager", "--label", "a=b", "busybox", "sleep", "1d"],
        env=dict(manager.env, PYTHONPATH=SRC), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert g.returncode == 0 and re.fullmatch(rf"{ID}\n", g.stdout), g.stderr
    wait_for(
        lambda: len([t for t in _tasks(manager, "web") if t["Status"]["State"] in ASSIGNED_OR_LATER]) == 2
    )
    for args in (
        ("service", "ls", "--format", "{{.ID}} {{.Name}} {{.Mode}} {{.Image}}"),
        ("service", "ps", "--format", "{{.ID}} {{.Name}} {{.Node}} {{.DesiredState}}", "web"),
        ("service", "inspect", "--pretty", "web"),
        ("service", "inspect", "web"),
        ("service", "rm", "nope"),
        ("service", "rollback", "nope"),
    ):
        both(*args)
    assert both("service", "scale", "-d", "web=3")[1] == "web scaled to 3\n"
    r = subprocess.run(
        [sys.executable, "-m", "gorae.cli.main", "service", "rm", "web"],
        env=dict(manager.env, PYTHONPATH=SRC), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert (r.returncode, r.stdout) == (0, "web\n")
    assert manager.docker("service", "ls", "-q").stdout == ""
