"""The services control plane on the in-memory store, with a hand-driven clock and a hand-played agent:
`ServiceControl` (the /services and /tasks operations, dockerd's texts), the orchestrator (slots, scale,
global, restart policy, rolling updates, rollback), the scheduler (filters, texts, spread, least loaded)
and the reaper (retention, removed services)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gorae.errors import Conflict, GoraeError, InvalidParameter, NotFound, NotImplementedYet, SystemError_
from gorae.filters import Filters
from gorae.swarm.services.control import ServiceControl
from gorae.swarm.services.orchestrator import Orchestrator
from gorae.swarm.services.reaper import TaskReaper
from gorae.swarm.services.scheduler import Scheduler
from gorae.swarm.store.memory import MemoryStore
from gorae.swarm.store.types import Cluster, Node, ReadTx, Service, Task, WriteTx

T = TypeVar("T")
S = 1_000_000_000


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


def node_doc(node_id: str, role: str = "worker", **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "ID": node_id,
        "Spec": {
            "Labels": extra.pop("labels", {}),
            "Role": role,
            "Availability": extra.pop("availability", "active"),
        },
        "Description": {
            "Hostname": extra.pop("hostname", f"host-{node_id}"),
            "Resources": {"NanoCPUs": 2 * S, "MemoryBytes": 4 << 30},
            "Engine": {"Labels": extra.pop("engine_labels", {})},
        },
        "Status": {"State": extra.pop("state", "ready"), "Addr": "10.0.0.1"},
    }
    return doc


class World:
    """A store, a clock, the three components and an agent played by hand."""

    def __init__(self, nodes: list[dict[str, Any]] | None = None, retention: int = 5) -> None:
        self.store = MemoryStore()
        self.now = 1_000 * S
        self.control = ServiceControl(lambda: self.store, clock=lambda: self.now)
        self.parts = [
            Orchestrator(lambda: self.now),
            Scheduler(lambda: self.now),
            TaskReaper(lambda: self.now),
        ]
        self.wake: int | None = None

        async def seed(tx: WriteTx) -> None:
            await tx.create(
                Cluster(
                    "c1", {"ID": "c1", "Spec": {"Orchestration": {"TaskHistoryRetentionLimit": retention}}}
                )
            )
            for n in nodes or [node_doc("n1", "manager")]:
                await tx.create(Node(n["ID"], n))

        run(self.store.update(seed))

    def settle(self) -> None:
        """Run the components until a round writes nothing (what the watch loop does)."""

        async def go() -> None:
            for _ in range(50):
                before = await self.store.revision()
                wakes = [await p.run_once(self.store) for p in self.parts]
                times = [w for w in wakes if w is not None]
                self.wake = min(times) if times else None
                if await self.store.revision() == before:
                    return
            raise AssertionError("the components did not settle")

        run(go())

    def advance(self, ns: int) -> None:
        self.now += ns
        self.settle()

    def read(self, fn: Callable[[ReadTx], Awaitable[T]]) -> T:
        return run(self.store.view(fn))

    def tasks(self, service: str | None = None) -> list[dict[str, Any]]:
        async def read(tx: ReadTx) -> list[dict[str, Any]]:
            return [t.doc for t in await tx.find(Task)]

        docs = self.read(read)
        if service is not None:
            docs = [d for d in docs if d["_gorae"]["ServiceName"] == service]
        return sorted(docs, key=lambda d: (d.get("Slot", 0), d.get("NodeID", ""), d["_gorae"]["CreatedNs"]))

    def service(self, ref: str) -> dict[str, Any]:
        return run(self.control.inspect(ref, False))

    def create(self, name: str, replicas: int | None = 1, **spec: Any) -> str:
        body: dict[str, Any] = {
            "Name": name,
            "TaskTemplate": {
                "ContainerSpec": {"Image": "busybox", "Args": ["sleep", "1d"]},
                **spec.pop("template", {}),
            },
            **spec,
        }
        if replicas is not None and "Mode" not in body:
            body["Mode"] = {"Replicated": {"Replicas": replicas}}
        service_id = run(self.control.create(body))["ID"]
        self.settle()
        return str(service_id)

    def update(self, ref: str, change: Callable[[dict[str, Any]], None], rollback: str | None = None) -> None:
        current = self.service(ref)
        spec = current["Spec"]
        change(spec)
        run(self.control.update(ref, str(current["Version"]["Index"]), spec, rollback, None))
        self.settle()

    def report(self, task_id: str, state: str, **status: Any) -> None:
        """What the agent would report through the dispatcher."""

        async def write(tx: WriteTx) -> None:
            task = await tx.get(Task, task_id)
            assert task is not None
            doc = dict(task.doc)
            doc["Status"] = {"Timestamp": "t", "State": state, "Message": state, **status}
            await tx.update(task.with_doc(doc))

        run(self.store.update(write))
        self.now += 1000  # events are apart in time (task history orders by creation)
        self.settle()

    def agent(self) -> None:
        """Play the agent once: assigned tasks desired running run; tasks desired shutdown/remove stop."""
        for t in self.tasks():
            st = t["Status"]["State"]
            if t["DesiredState"] == "running" and st in (
                "assigned",
                "accepted",
                "preparing",
                "ready",
                "starting",
            ):
                self.report(t["ID"], "running")
            elif t["DesiredState"] in ("shutdown", "remove") and st in ("assigned", "running"):
                self.report(t["ID"], "shutdown")


def states(tasks: list[dict[str, Any]]) -> list[tuple[Any, str, str]]:
    return [(t.get("Slot") or t.get("NodeID"), t["DesiredState"], t["Status"]["State"]) for t in tasks]


# -- the orchestrator and scheduler ----------------------------------------------------------------


def test_replicated_service_gets_slots_assigned_to_the_node() -> None:
    w = World()
    sid = w.create("web", 3)
    tasks = w.tasks("web")
    assert states(tasks) == [
        (1, "running", "assigned"),
        (2, "running", "assigned"),
        (3, "running", "assigned"),
    ]
    t = tasks[0]
    assert t["ServiceID"] == sid and t["NodeID"] == "n1" and t["Labels"] == {}
    assert t["Status"]["Message"] == "scheduler assigned task to node"
    assert t["Spec"] == {
        "ContainerSpec": {"Image": "busybox", "Args": ["sleep", "1d"], "DNSConfig": {}, "Isolation": "default"},
        "ForceUpdate": 0,
    }
    assert t["_gorae"]["ServiceName"] == "web" and t["_gorae"]["SpecVersion"] == 1
    listed = run(w.control.list_services(Filters(), True))
    assert listed[0]["ServiceStatus"] == {"RunningTasks": 0, "DesiredTasks": 3, "CompletedTasks": 0}
    w.agent()
    listed = run(w.control.list_services(Filters(), True))
    assert listed[0]["ServiceStatus"] == {"RunningTasks": 3, "DesiredTasks": 3, "CompletedTasks": 0}


def test_scale_down_removes_the_highest_slots_and_the_reaper_deletes_them() -> None:
    w = World()
    w.create("web", 3)
    w.agent()
    w.update("web", lambda s: s["Mode"]["Replicated"].update(Replicas=1))
    assert states(w.tasks("web")) == [
        (1, "running", "running"),
        (2, "remove", "running"),
        (3, "remove", "running"),
    ]
    w.agent()
    assert states(w.tasks("web")) == [(1, "running", "running")]
    assert w.service("web").get("UpdateStatus") is None  # a scale is no rolling update
    w.update("web", lambda s: s["Mode"]["Replicated"].update(Replicas=2))
    assert states(w.tasks("web")) == [(1, "running", "running"), (2, "running", "assigned")]


def test_restart_policy_any_waits_the_delay_then_runs() -> None:
    w = World()
    w.create("web", 1, template={"RestartPolicy": {"Condition": "any", "Delay": 3 * S}})
    w.agent()
    first = w.tasks("web")[0]
    w.report(first["ID"], "failed", Err="task: non-zero exit (1)")
    tasks = w.tasks("web")
    assert states(tasks) == [(1, "shutdown", "failed"), (1, "ready", "assigned")]
    assert w.wake == w.now + 3 * S
    w.advance(3 * S)
    assert states(w.tasks("web")) == [(1, "shutdown", "failed"), (1, "running", "assigned")]


def test_restart_condition_none_and_on_failure() -> None:
    w = World()
    w.create("once", 1, template={"RestartPolicy": {"Condition": "none"}})
    w.create("onfail", 2, template={"RestartPolicy": {"Condition": "on-failure", "Delay": 0}})
    w.agent()
    w.report(w.tasks("once")[0]["ID"], "complete")
    assert states(w.tasks("once")) == [(1, "shutdown", "complete")]
    a, b = w.tasks("onfail")
    w.report(a["ID"], "complete")
    w.report(b["ID"], "failed")
    assert states(w.tasks("onfail")) == [
        (1, "shutdown", "complete"),
        (2, "shutdown", "failed"),
        (2, "running", "assigned"),
    ]
    w.advance(60 * S)  # nothing more: the slots the policy ended stay ended
    assert len(w.tasks("once")) == 1 and len(w.tasks("onfail")) == 3


def test_restart_max_attempts_and_window() -> None:
    w = World()
    w.create("flaky", 1, template={"RestartPolicy": {"Condition": "any", "Delay": 0, "MaxAttempts": 2}})
    for _ in range(4):
        w.agent()
        live = [t for t in w.tasks("flaky") if t["DesiredState"] == "running"]
        if live:
            w.report(live[0]["ID"], "failed")
    assert [t["Status"]["State"] for t in w.tasks("flaky")] == [
        "failed",
        "failed",
        "failed",
    ]  # 1 + 2 restarts
    w2 = World()
    w2.create("win", 1, template={"RestartPolicy": {"Delay": 0, "MaxAttempts": 1, "Window": 10 * S}})
    for _ in range(3):
        w2.agent()
        w2.report([t for t in w2.tasks("win") if t["DesiredState"] == "running"][0]["ID"], "failed")
        w2.advance(11 * S)  # each failure is outside the window of the previous restart
    assert len([t for t in w2.tasks("win") if t["DesiredState"] == "running"]) == 1


def test_global_service_one_task_per_eligible_node() -> None:
    w = World([node_doc("m1", "manager"), node_doc("w1"), node_doc("w2", availability="drain")])
    w.create("agent", None, Mode={"Global": {}})
    assert states(w.tasks("agent")) == [("m1", "running", "assigned"), ("w1", "running", "assigned")]
    assert "Slot" not in w.tasks("agent")[0]
    w.create(
        "mgr", None, Mode={"Global": {}}, template={"Placement": {"Constraints": ["node.role==manager"]}}
    )
    assert states(w.tasks("mgr")) == [("m1", "running", "assigned")]

    async def drain(tx: WriteTx) -> None:
        n = await tx.get(Node, "w1")
        assert n is not None
        await tx.update(n.with_doc({**n.doc, "Spec": {**n.doc["Spec"], "Availability": "drain"}}))

    run(w.store.update(drain))
    w.settle()
    assert states(w.tasks("agent")) == [("m1", "running", "assigned"), ("w1", "shutdown", "assigned")]


def test_drained_node_tasks_move() -> None:
    w = World([node_doc("a"), node_doc("b")])
    w.create("web", 2, template={"RestartPolicy": {"Delay": 0}})
    assert sorted(t["NodeID"] for t in w.tasks("web")) == ["a", "b"]  # least loaded: one each
    w.agent()

    async def drain(tx: WriteTx) -> None:
        n = await tx.get(Node, "a")
        assert n is not None
        await tx.update(n.with_doc({**n.doc, "Spec": {**n.doc["Spec"], "Availability": "drain"}}))

    run(w.store.update(drain))
    w.settle()
    live = [t for t in w.tasks("web") if t["DesiredState"] == "running"]
    assert sorted(t["NodeID"] for t in live) == ["b", "b"]


def test_scheduler_explains_unplaceable_tasks() -> None:
    w = World([node_doc("a", "manager"), node_doc("b", availability="pause"), node_doc("c", state="down")])
    w.create("c1", 1, template={"Placement": {"Constraints": ["node.labels.zone==x"]}})
    t = w.tasks("c1")[0]
    assert t["Status"]["State"] == "pending" and t["Status"]["Message"] == "pending task scheduling"
    assert (
        t["Status"]["Err"]
        == "no suitable node (2 nodes not available for new tasks; scheduling constraints not satisfied on 1 node)"
    )
    assert "NodeID" not in t
    w.create("big", 1, template={"Resources": {"Reservations": {"MemoryBytes": 8 << 30}}})
    assert (
        w.tasks("big")[0]["Status"]["Err"]
        == "no suitable node (2 nodes not available for new tasks; insufficient resources on 1 node)"
    )
    w.create("fits", 2, template={"Resources": {"Reservations": {"NanoCPUs": S + S // 2}}})
    assert sorted(x["Status"]["State"] for x in w.tasks("fits")) == ["assigned", "pending"]


def test_scheduler_spread_and_hostname_constraint() -> None:
    nodes = [
        node_doc("a", labels={"zone": "x"}),
        node_doc("b", labels={"zone": "x"}),
        node_doc("c", labels={"zone": "y"}, hostname="special"),
    ]
    w = World(nodes)
    w.create(
        "s",
        4,
        template={"Placement": {"Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}]}},
    )
    per_zone: dict[str, int] = {}
    for t in w.tasks("s"):
        zone = {"a": "x", "b": "x", "c": "y"}[t["NodeID"]]
        per_zone[zone] = per_zone.get(zone, 0) + 1
    assert per_zone == {"x": 2, "y": 2}
    w.create("h", 2, template={"Placement": {"Constraints": ["node.hostname==special"]}})
    assert {t["NodeID"] for t in w.tasks("h")} == {"c"}
    w.create("n", 2, template={"Placement": {"Constraints": ["node.hostname!=special", "node.id!=a"]}})
    assert {t["NodeID"] for t in w.tasks("n")} == {"b"}


def test_rolling_update_stop_first_with_delay_and_monitor() -> None:
    w = World()
    w.create("web", 2, UpdateConfig={"Parallelism": 1, "Delay": 2 * S, "Monitor": 3 * S})
    w.agent()
    w.update("web", lambda s: s["TaskTemplate"]["ContainerSpec"].update(Args=["sleep", "2d"]))
    svc = w.service("web")
    assert (
        svc["UpdateStatus"]["State"] == "updating" and svc["UpdateStatus"]["Message"] == "update in progress"
    )
    assert svc["PreviousSpec"]["TaskTemplate"]["ContainerSpec"]["Args"] == ["sleep", "1d"]
    assert states(w.tasks("web")) == [
        (1, "shutdown", "running"),
        (1, "ready", "assigned"),
        (2, "running", "running"),
    ]
    w.agent()  # the old one stops; the new one may start, and is started
    w.agent()
    assert states(w.tasks("web")) == [
        (1, "shutdown", "shutdown"),
        (1, "running", "running"),
        (2, "running", "running"),
    ]
    w.advance(1 * S)  # the delay after slot 1 is not over
    assert states(w.tasks("web"))[-1] == (2, "running", "running")
    w.advance(1 * S)
    assert states(w.tasks("web"))[2:] == [(2, "shutdown", "running"), (2, "ready", "assigned")]
    w.agent()
    w.agent()
    assert w.service("web")["UpdateStatus"]["State"] == "updating"  # monitoring the last new task
    w.advance(3 * S)
    status = w.service("web")["UpdateStatus"]
    assert (
        status["State"] == "completed" and status["Message"] == "update completed" and "CompletedAt" in status
    )


def test_rolling_update_start_first() -> None:
    w = World()
    w.create("web", 1, UpdateConfig={"Order": "start-first", "Monitor": S})
    w.agent()
    w.update("web", lambda s: s["TaskTemplate"].update(ForceUpdate=1))
    assert states(w.tasks("web")) == [(1, "running", "running"), (1, "running", "assigned")]
    w.agent()
    assert states(w.tasks("web")) == [(1, "shutdown", "running"), (1, "running", "running")]
    w.agent()
    w.advance(S)
    assert w.service("web")["UpdateStatus"]["State"] == "completed"


def test_a_change_of_ports_alone_recreates_the_tasks() -> None:
    """swarmkit's IsTaskDirty compares the task's endpoint spec too: publishing a port rolls the tasks; a
    change of the replica count alone does not touch the running ones."""
    w = World()
    host = {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"}
    w.create("web", 2, EndpointSpec={"Mode": "vip", "Ports": [host]})
    w.agent()
    first = {t["ID"] for t in w.tasks("web")}
    w.update("web", lambda s: s.update(Mode={"Replicated": {"Replicas": 3}}))
    w.agent()
    assert first < {t["ID"] for t in w.tasks("web")} and len(w.tasks("web")) == 3
    assert all(t["DesiredState"] == "running" for t in w.tasks("web"))
    w.update(
        "web", lambda s: s["EndpointSpec"]["Ports"].append({**host, "TargetPort": 81, "PublishedPort": 8081})
    )
    for _ in range(6):  # stop-first, one at a time
        w.agent()
    tasks = w.tasks("web")
    assert states(tasks).count((1, "shutdown", "shutdown")) == 1 and len(tasks) == 6
    assert {t["ID"] for t in tasks if t["DesiredState"] == "running"}.isdisjoint(first)


def test_host_mode_ports_keep_tasks_apart() -> None:
    """swarmkit's HostPortFilter: a node where a live task publishes the same host-mode port does not fit."""
    host = {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "host"}
    w = World()
    w.create("web", 2, EndpointSpec={"Mode": "vip", "Ports": [host]})
    pending = [t for t in w.tasks("web") if t["Status"]["State"] == "pending"]
    assert len(pending) == 1 and pending[0]["Status"]["Err"] == (
        "no suitable node (host-mode port already in use on 1 node)"
    )
    # another protocol, or ingress mode, does not collide
    w.create("udp", 1, EndpointSpec={"Ports": [{**host, "Protocol": "udp"}]})
    w.create("mesh", 1, EndpointSpec={"Ports": [{**host, "PublishMode": "ingress", "PublishedPort": 9090}]})
    assert {t["Status"]["State"] for t in w.tasks("udp") + w.tasks("mesh")} == {"assigned"}
    two = World([node_doc("n1", "manager"), node_doc("n2")])
    two.create("web", 2, EndpointSpec={"Mode": "vip", "Ports": [host]})
    assert sorted(t["NodeID"] for t in two.tasks("web")) == ["n1", "n2"]


def test_update_failure_pauses_or_rolls_back() -> None:
    w = World()
    w.create("p", 2, template={"RestartPolicy": {"Delay": 0}})
    w.agent()
    w.update("p", lambda s: s["TaskTemplate"]["ContainerSpec"].update(Image="busybox:2"))
    w.agent()
    new = [
        t
        for t in w.tasks("p")
        if t["DesiredState"] == "running" and t["Spec"]["ContainerSpec"]["Image"] == "busybox:2"
    ]
    w.report(new[0]["ID"], "running")
    w.report(new[0]["ID"], "failed")
    status = w.service("p")["UpdateStatus"]
    assert status["State"] == "paused"
    assert status["Message"] == f"update paused due to failure or early termination of task {new[0]['ID']}"

    w.create(
        "r",
        1,
        UpdateConfig={"FailureAction": "rollback"},
        RollbackConfig={"Monitor": S},
        template={"RestartPolicy": {"Delay": 0}},
    )
    w.agent()
    w.update("r", lambda s: s["TaskTemplate"]["ContainerSpec"].update(Image="busybox:bad"))
    w.agent()
    w.agent()
    bad = [t for t in w.tasks("r") if t["Spec"]["ContainerSpec"]["Image"] == "busybox:bad"][0]
    w.report(bad["ID"], "rejected", Err="No such image: busybox:bad")
    svc = w.service("r")
    assert svc["UpdateStatus"]["State"] == "rollback_started"
    assert (
        svc["UpdateStatus"]["Message"]
        == f"update rolled back due to failure or early termination of task {bad['ID']}"
    )
    assert svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == "busybox"
    for _ in range(3):
        w.agent()
    w.advance(S)
    svc = w.service("r")
    assert (
        svc["UpdateStatus"]["State"] == "rollback_completed"
        and svc["UpdateStatus"]["Message"] == "rollback completed"
    )
    live = [t for t in w.tasks("r") if t["DesiredState"] == "running"]
    assert [t["Spec"]["ContainerSpec"]["Image"] for t in live] == ["busybox"]


def test_manual_rollback() -> None:
    w = World()
    w.create("web", 1, UpdateConfig={"Monitor": S}, RollbackConfig={"Monitor": S})
    w.agent()
    w.update("web", lambda s: s["TaskTemplate"]["ContainerSpec"].update(Args=["sleep", "9"]))
    for _ in range(2):
        w.agent()
    w.advance(S)
    assert w.service("web")["UpdateStatus"]["State"] == "completed"
    w.update("web", lambda s: None, rollback="previous")
    svc = w.service("web")
    assert (
        svc["UpdateStatus"]["State"] == "rollback_started"
        and svc["UpdateStatus"]["Message"] == "manually requested rollback"
    )
    assert svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Args"] == ["sleep", "1d"]
    assert svc["PreviousSpec"]["TaskTemplate"]["ContainerSpec"]["Args"] == ["sleep", "9"]
    for _ in range(2):
        w.agent()
    w.advance(S)
    assert w.service("web")["UpdateStatus"]["State"] == "rollback_completed"


def test_reaper_keeps_the_retention_limit_and_removes_a_removed_services_tasks() -> None:
    w = World(retention=3)
    w.create("flaky", 1, template={"RestartPolicy": {"Delay": 0}})
    for _ in range(6):
        w.agent()
        w.report([t for t in w.tasks("flaky") if t["DesiredState"] == "running"][0]["ID"], "failed")
    tasks = w.tasks("flaky")
    assert len(tasks) == 3 and states(tasks)[-1] == (1, "running", "assigned")
    run(w.control.remove("flaky"))
    w.settle()
    assert states(w.tasks("flaky")) == [(1, "remove", "assigned")]  # the ended ones went at once
    w.agent()
    assert w.tasks("flaky") == []


# -- the control operations ------------------------------------------------------------------------


def test_control_errors_as_dockerd() -> None:
    w = World()
    sid = w.create("web", 1)
    with pytest.raises(Conflict) as conflict:
        w.create("web", 1)
    assert conflict.value.message == (
        "rpc error: code = AlreadyExists desc = name conflicts with an existing object: service web already exists"
    )
    spec = w.service("web")["Spec"]
    with pytest.raises(SystemError_) as seq:
        run(w.control.update("web", "1", spec, None, None))
    assert seq.value.message == "rpc error: code = Unknown desc = update out of sequence"
    version = str(w.service("web")["Version"]["Index"])
    with pytest.raises(InvalidParameter) as bad_version:
        run(w.control.update("web", None, spec, None, None))
    assert (
        bad_version.value.message
        == "invalid service version '': strconv.ParseUint: parsing \"\": invalid syntax"
    )
    with pytest.raises(NotImplementedYet) as rename:
        run(w.control.update("web", version, {**spec, "Name": "other"}, None, None))
    assert rename.value.message == "rpc error: code = Unimplemented desc = renaming services is not supported"
    with pytest.raises(InvalidParameter) as no_previous:
        run(w.control.update("web", version, spec, "previous", None))
    assert no_previous.value.message == (
        f"rpc error: code = FailedPrecondition desc = service {sid} does not have a previous spec"
    )
    with pytest.raises(SystemError_) as bad_rollback:
        run(w.control.update("web", version, spec, "bogus", None))
    assert bad_rollback.value.message == "unrecognized rollback option bogus"
    with pytest.raises(SystemError_) as bad_auth:
        run(w.control.update("web", version, spec, None, "bogus"))
    assert bad_auth.value.message == "unsupported registryAuthFrom value"
    with pytest.raises(SystemError_) as no_previous_auth:  # dockerd 20.10's 500 for a service never updated
        run(w.control.update("web", version, spec, None, "previous-spec"))
    assert no_previous_auth.value.message == "service does not have a previous spec"
    assert run(w.control.update("web", version, spec, None, "spec")) == {"Warnings": None}
    with pytest.raises(NotFound) as missing:
        run(w.control.inspect("nope", False))
    assert missing.value.message == "service nope not found"
    with pytest.raises(NotFound):
        run(w.control.remove("nope"))
    assert w.service(sid[:5])["ID"] == sid


def test_service_names_as_swarmkit_checks_them() -> None:
    """swarmkit's isValidDNSName: letters, digits, and `-`/`_` inside (`docker stack` names services
    `<stack>_<service>`); the pattern is checked before the length, as swarmkit does."""
    w = World()
    for good in ("a", "app_web", "a-b_c9", "A__-_b", "x" * 63):
        w.create(good, 0)
    for bad, why in (
        ("_a", "name must be valid as a DNS name component"),
        ("a_", "name must be valid as a DNS name component"),
        ("a.b", "name must be valid as a DNS name component"),
        ("a\n", "name must be valid as a DNS name component"),
        ("x" * 63 + "_", "name must be valid as a DNS name component"),
        ("x" * 64, "name must be 63 characters or fewer"),
    ):
        with pytest.raises(InvalidParameter) as e:
            w.create(bad, 0)
        assert e.value.message == f"rpc error: code = InvalidArgument desc = {why}", bad


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="aZ9-_.! \n", max_size=14))
def test_service_name_pattern_is_swarmkits(name: str) -> None:
    import re

    from gorae.swarm.services.spec import _DNS_LABEL

    swarmkit = re.compile(r"^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*\Z")  # Go's `$` ends the text (no newline)
    assert bool(_DNS_LABEL.fullmatch(name)) == bool(swarmkit.match(name))


def test_filters() -> None:
    w = World()
    sid = w.create("web", 2, Labels={"tier": "front"})
    w.create("glob", None, Mode={"Global": {}})
    names = lambda f: sorted(s["Spec"]["Name"] for s in run(w.control.list_services(Filters(f), False)))  # noqa: E731
    assert names({"name": ["we"]}) == ["web"]
    assert names({"mode": ["global"]}) == ["glob"]
    assert names({"mode": ["bogus"]}) == []
    assert names({"label": ["tier=front"]}) == ["web"]
    assert names({"id": [sid[:6]]}) == ["web"]
    with pytest.raises(InvalidParameter) as bad:
        names({"bogus": ["x"]})
    assert bad.value.message == "Invalid filter 'bogus'"
    tasks = lambda f: run(w.control.tasks(Filters(f)))  # noqa: E731
    assert len(tasks({"service": ["web"]})) == 2
    assert len(tasks({"name": ["web.1"]})) == 1
    assert len(tasks({"node": ["n1"], "desired-state": ["running"]})) == 3
    assert tasks({"desired-state": ["accepted"]}) == []
    with pytest.raises(SystemError_) as bad_state:
        tasks({"desired-state": ["x"]})
    assert bad_state.value.message == "Invalid desired-state filter: 'x'"
    with pytest.raises(NotFound) as no_service:
        tasks({"service": ["nonexist"]})
    assert no_service.value.message == "service nonexist not found"
    with pytest.raises(NotFound) as no_node:
        tasks({"node": ["nonexist"]})
    assert no_node.value.message == "node nonexist not found"
    one = tasks({"service": ["web"]})[0]
    assert list(one) == [
        "ID",
        "Version",
        "CreatedAt",
        "UpdatedAt",
        "Labels",
        "Spec",
        "ServiceID",
        "Slot",
        "NodeID",
        "Status",
        "DesiredState",
    ]
    assert run(w.control.task(one["ID"])) == one
    w.update("web", lambda s: s["TaskTemplate"].update(ForceUpdate=1))
    fresh = tasks({"service": ["web"], "_up-to-date": ["true"]})  # the CLI's progress asks for these
    assert [t["Spec"]["ForceUpdate"] for t in fresh] == [1]
    assert len(tasks({"service": ["web"]})) == 3
    assert len(tasks({"desired-state": ["READY"]})) == 1  # any task state, any case
    with pytest.raises(NotFound) as no_task:
        run(w.control.task("nope"))
    assert no_task.value.message == "task nope not found"


def test_services_and_tasks_need_a_manager() -> None:
    from gorae.errors import Unavailable

    def off() -> MemoryStore:
        raise Unavailable("This node is not a swarm manager.")

    control = ServiceControl(off)
    for call in (control.list_services(Filters(), False), control.tasks(Filters()), control.remove("x")):
        with pytest.raises(Unavailable):
            run(call)


def test_unnamed_service_gets_a_random_name() -> None:
    w = World()
    w.create("", 0)

    async def read(tx: ReadTx) -> list[Service]:
        return await tx.find(Service)

    (svc,) = w.read(read)
    assert "_" in svc.doc["Spec"]["Name"] and svc.doc["Spec"]["Mode"] == {"Replicated": {"Replicas": 0}}
    assert w.tasks() == []


def test_every_error_is_a_gorae_error() -> None:
    w = World()
    for body in ([], {}, {"Name": 5}, {"TaskTemplate": {"ContainerSpec": {}}}):
        with pytest.raises(GoraeError):
            run(w.control.create(body))


# -- random histories (hypothesis) -----------------------------------------------------------------


NAMES = ("a", "b", "c")
ACTIONS = st.one_of(
    st.tuples(
        st.just("create"),
        st.sampled_from(NAMES),
        st.integers(0, 4),
        st.booleans(),
        st.sampled_from(["stop-first", "start-first"]),
        st.sampled_from(["any", "on-failure", "none"]),
        st.sampled_from([0, S]),
        st.integers(0, 2),
    ),
    st.tuples(st.just("scale"), st.sampled_from(NAMES), st.integers(0, 5)),
    st.tuples(st.just("update"), st.sampled_from(NAMES), st.integers(0, 3)),
    st.tuples(st.just("rollback"), st.sampled_from(NAMES)),
    st.tuples(st.just("remove"), st.sampled_from(NAMES)),
    st.tuples(st.just("agent")),
    st.tuples(st.just("fail"), st.integers(0, 20), st.sampled_from(["failed", "complete", "rejected"])),
    st.tuples(st.just("advance"), st.sampled_from([S // 2, 2 * S, 6 * S])),
    st.tuples(
        st.just("node"),
        st.sampled_from(["n1", "n2"]),
        st.sampled_from(["active", "drain", "pause", "down", "ready"]),
    ),
)


def _apply(w: World, action: tuple[Any, ...]) -> None:
    kind = action[0]
    names = {t["_gorae"]["ServiceName"] for t in w.tasks()} | {
        s["Spec"]["Name"] for s in run(w.control.list_services(Filters(), False))
    }
    if kind == "create":
        _, name, replicas, global_, order, condition, delay, attempts = action
        if name in names:
            return
        mode = {"Global": {}} if global_ else {"Replicated": {"Replicas": replicas}}
        w.create(
            name,
            None,
            Mode=mode,
            UpdateConfig={"Order": order, "Monitor": S},
            RollbackConfig={"Order": order, "Monitor": S},
            template={"RestartPolicy": {"Condition": condition, "Delay": delay, "MaxAttempts": attempts}},
        )
        return
    if kind in ("scale", "update", "rollback", "remove"):
        name = action[1]
        try:
            current = w.service(name)
        except NotFound:
            return
        if kind == "remove":
            run(w.control.remove(name))
            w.settle()
        elif kind == "rollback":
            if current.get("PreviousSpec"):
                w.update(name, lambda s: None, rollback="previous")
        elif kind == "scale":
            if "Replicated" in current["Spec"]["Mode"]:
                w.update(name, lambda s: s["Mode"]["Replicated"].update(Replicas=action[2]))
        else:
            w.update(
                name, lambda s: s["TaskTemplate"]["ContainerSpec"].update(Args=["sleep", str(action[2])])
            )
        return
    if kind == "agent":
        w.agent()
    elif kind == "fail":
        on_nodes = [t for t in w.tasks() if t["Status"]["State"] == "running"]
        if on_nodes:
            w.report(on_nodes[action[1] % len(on_nodes)]["ID"], action[2])
    elif kind == "advance":
        w.advance(action[1])
    elif kind == "node":
        _, node_id, what = action

        async def change(tx: WriteTx) -> None:
            n = await tx.get(Node, node_id)
            assert n is not None
            doc = dict(n.doc)
            if what in ("down", "ready"):
                doc["Status"] = {**doc["Status"], "State": what}
            else:
                doc["Spec"] = {**doc["Spec"], "Availability": what}
            await tx.update(n.with_doc(doc))

        run(w.store.update(change))
        w.settle()


def _check(w: World, seen: dict[str, tuple[int, str]], nodes_before: dict[str, dict[str, Any]]) -> None:
    from gorae.swarm.services import taskdocs

    tasks = w.tasks()
    for t in tasks:
        rank = taskdocs.rank(t["DesiredState"])
        old = seen.get(t["ID"])
        if old is not None:
            assert rank >= old[0], ("DesiredState went back", t["ID"], old, t["DesiredState"])
            assert not old[1] or t.get("NodeID") == old[1], ("task moved between nodes", t["ID"])
        elif t.get("NodeID") and t["Status"]["State"] == "assigned" and t.get("Slot"):
            node = nodes_before.get(t["NodeID"]) or {}
            assert (
                node.get("Status", {}).get("State") == "ready"
                and node.get("Spec", {}).get("Availability") == "active"
            ), ("assigned to an unavailable node", t, node)
        seen[t["ID"]] = (rank, str(t.get("NodeID") or ""))
    for svc in run(w.control.list_services(Filters(), False)):
        mine = [t for t in tasks if t["ServiceID"] == svc["ID"]]
        live: dict[Any, list[dict[str, Any]]] = {}
        for t in mine:
            if taskdocs.live(t):
                live.setdefault(t.get("Slot") or t.get("NodeID"), []).append(t)
        order = (svc["Spec"].get("UpdateConfig") or {}).get("Order")
        most = 2 if order == "start-first" else 1
        for key, group in live.items():
            assert len(group) <= most, ("too many live tasks in a slot", svc["Spec"]["Name"], key, group)
        if "Replicated" in svc["Spec"]["Mode"]:
            n = svc["Spec"]["Mode"]["Replicated"]["Replicas"]
            assert set(live) <= set(range(1, n + 1)), (
                "live slots beyond the replicas",
                svc["Spec"]["Name"],
                live,
            )


@settings(max_examples=int(os.environ.get("GORAE_HYPOTHESIS_EXAMPLES", "60")), deadline=None)
@given(actions=st.lists(ACTIONS, min_size=1, max_size=25))
def test_random_histories_keep_the_invariants(actions: list[tuple[Any, ...]]) -> None:
    """Whatever happens, in any order: desired states only move forward, a task never changes node, a new
    assignment goes to a ready and active node, a slot has at most one task to run (two with start-first),
    and no replicated slot beyond the replica count runs."""
    w = World([node_doc("n1", "manager"), node_doc("n2")])
    seen: dict[str, tuple[int, str]] = {}

    async def nodes(tx: ReadTx) -> dict[str, dict[str, Any]]:
        return {n.id: n.doc for n in await tx.find(Node)}

    for action in actions:
        before = w.read(nodes)
        _apply(w, action)
        _check(w, seen, before)
    # then calm: every node ready and active, the agent does its part, time passes — everything converges
    for node_id in ("n1", "n2"):
        _apply(w, ("node", node_id, "ready"))
        _apply(w, ("node", node_id, "active"))
    for _ in range(12):
        w.agent()
        w.advance(6 * S)
    _check(w, seen, w.read(nodes))
    from gorae.swarm.services import taskdocs

    for svc in run(w.control.list_services(Filters(), False)):
        mine = [t for t in w.tasks() if t["ServiceID"] == svc["ID"]]
        live = [t for t in mine if taskdocs.live(t)]
        state = (svc.get("UpdateStatus") or {}).get("State")
        assert state in (None, "completed", "rollback_completed", "paused", "rollback_paused"), svc
        assert {(t["DesiredState"], t["Status"]["State"]) for t in live} <= {("running", "running")}, (
            svc,
            live,
        )
        if state not in ("paused", "rollback_paused"):
            template = {k: v for k, v in svc["Spec"]["TaskTemplate"].items() if k != "Runtime"}
            assert all(t["Spec"] == template for t in live), ("not updated", svc, live)
        if "Replicated" in svc["Spec"]["Mode"]:
            n = svc["Spec"]["Mode"]["Replicated"]["Replicas"]
            done = {t["Slot"] for t in mine if t["_gorae"].get("Done")}
            assert {t["Slot"] for t in live} | done >= set(range(1, n + 1)), (svc["Spec"]["Name"], mine)
        else:
            assert {t["NodeID"] for t in live} | {t["NodeID"] for t in mine if t["_gorae"].get("Done")} == {
                "n1",
                "n2",
            }


def test_start_first_updates_in_a_row_keep_one_old_task() -> None:
    """Found by the random histories: a second start-first update before the first one's task ran."""
    w = World()
    w.create("g", None, Mode={"Global": {}}, UpdateConfig={"Order": "start-first"})
    w.agent()
    w.update("g", lambda s: s["TaskTemplate"]["ContainerSpec"].update(Args=["sleep", "0"]))
    w.update("g", lambda s: s["TaskTemplate"]["ContainerSpec"].update(Args=["sleep", "1"]))
    live = [t for t in w.tasks("g") if t["DesiredState"] in ("ready", "running")]
    assert sorted(t["Spec"]["ContainerSpec"]["Args"][1] for t in live) == ["1", "1d"]


# -- the component loop ---------------------------------------------------------------------------


def test_components_follow_the_store_and_stop_promptly() -> None:
    """Started as the swarm starts them: a service written to the store gets its tasks without anyone
    calling the components; `stop` ends them even when the store's watch turns the cancellation into an
    error (as a gRPC stream may), so `swarm leave` is never held up."""
    from gorae.swarm.component import NodeContext

    class SwallowingStore(MemoryStore):
        async def watch(self, after: int = 0):  # type: ignore[no-untyped-def, override]
            try:
                async for change in super().watch(after):
                    yield change
            except asyncio.CancelledError:
                raise RuntimeError("stream cancelled") from None

    async def scenario() -> list[str]:
        store = SwallowingStore()

        async def seed(tx: WriteTx) -> None:
            await tx.create(Node("n1", node_doc("n1", "manager")))

        await store.update(seed)

        async def no_manager(request: dict[str, Any]) -> dict[str, Any]:
            raise AssertionError("not used")

        ctx = NodeContext("n1", "c1", "manager", "127.0.0.1", store, no_manager)
        parts = [Orchestrator(), Scheduler(), TaskReaper()]
        for p in parts:
            await p.start(ctx)
        await ServiceControl(lambda: store).create(
            {
                "Name": "web",
                "TaskTemplate": {"ContainerSpec": {"Image": "busybox"}},
                "Mode": {"Replicated": {"Replicas": 2}},
            }
        )

        async def assigned(tx: ReadTx) -> list[str]:
            return sorted(t.doc["Status"]["State"] for t in await tx.find(Task))

        for _ in range(200):
            if await store.view(assigned) == ["assigned", "assigned"]:
                break
            await asyncio.sleep(0.01)
        started = asyncio.get_running_loop().time()

        async def stop_all() -> None:
            for p in parts:
                await p.stop()

        await asyncio.wait_for(stop_all(), 10)  # fails (TimeoutError) rather than hangs
        assert asyncio.get_running_loop().time() - started < 1
        return await store.view(assigned)

    assert run(scenario()) == ["assigned", "assigned"]
