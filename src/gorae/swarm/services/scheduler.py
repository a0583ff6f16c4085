"""The scheduler (leader only): assigns tasks to nodes, as swarmkit's does.

A task to run (DesiredState at most running) in state new or pending without a node goes to pending
("pending task scheduling") and, when a node fits, to assigned with that NodeID ("scheduler assigned task to
node"). A global task already names its node: it is assigned when that node fits. Nodes are filtered in
swarmkit's order — ready and active, resources (reservations against what the node's tasks reserve),
constraints, platform (Placement.Platforms against the node's Description.Platform; x86_64 is amd64,
aarch64 is arm64), host-mode published ports (a node whose live tasks publish the same protocol and port in
host mode does not fit), MaxReplicas per node — and a task no node fits stays pending with swarmkit's
`no suitable node (...)` in Status.Err. Among fitting nodes: spread placement preferences first (the
label value with the fewest of the service's tasks), then the node with fewest tasks of the service, then
fewest tasks in all.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from gorae.swarm.services import taskdocs
from gorae.swarm.services.component import Reconciler
from gorae.swarm.services.constraints import parse_constraints, satisfied
from gorae.swarm.store.types import Node, Task, WriteTx
from gorae.timefmt import rfc3339nano

_FILTERS = (
    ("ready", "not available for new tasks"),
    ("resources", "insufficient resources on"),
    ("constraints", "scheduling constraints not satisfied on"),
    ("platform", "unsupported platform on"),
    ("host-port", "host-mode port already in use on"),
    ("max-replicas", "max replicas per node limit exceed"),
)


def _explain(failed: Counter[str]) -> str:
    parts = []
    for name, text in _FILTERS:
        n = failed.get(name, 0)
        if not n:
            continue
        if name == "ready":
            parts.append(f"{n} node{'s' if n != 1 else ''} {text}")
        elif name == "max-replicas":
            parts.append(text)
        else:
            parts.append(f"{text} {n} node{'s' if n != 1 else ''}")
    return f"no suitable node ({'; '.join(parts)})"


_ARCH_ALIASES = {"x86_64": "amd64", "aarch64": "arm64"}


def _platform_ok(platforms: list[Any], node: dict[str, Any]) -> bool:
    """swarmkit's PlatformFilter: no platforms, or one that the node's platform matches (an empty field
    matches any)."""
    if not platforms:
        return True
    mine = (node.get("Description") or {}).get("Platform")
    if not isinstance(mine, dict):
        return False
    arch = _ARCH_ALIASES.get(str(mine.get("Architecture") or ""), str(mine.get("Architecture") or ""))
    for p in platforms:
        if not isinstance(p, dict):
            continue
        want = str(p.get("Architecture") or "")
        want = _ARCH_ALIASES.get(want, want)
        if (not want or want == arch) and (not p.get("OS") or p.get("OS") == mine.get("OS")):
            return True
    return False


def _host_ports(task: dict[str, Any]) -> set[tuple[str, int]]:
    """(protocol, port) the task publishes in host mode (its endpoint spec when it was made)."""
    ports = (taskdocs.private(task).get("EndpointSpec") or {}).get("Ports") or []
    return {
        (str(p.get("Protocol") or "tcp"), int(p["PublishedPort"]))
        for p in ports
        if isinstance(p, dict)
        and p.get("PublishMode") == "host"
        and isinstance(p.get("PublishedPort"), int)
        and p["PublishedPort"]
    }


def _reservations(task: dict[str, Any]) -> tuple[int, int]:
    res = ((task.get("Spec") or {}).get("Resources") or {}).get("Reservations") or {}
    return int(res.get("NanoCPUs") or 0), int(res.get("MemoryBytes") or 0)


@dataclass
class _NodeLoad:
    node: dict[str, Any]
    cpus: int = 0
    memory: int = 0
    total: int = 0
    per_service: Counter[str] = field(default_factory=Counter)
    host_ports: set[tuple[str, int]] = field(default_factory=set)

    def add(self, task: dict[str, Any]) -> None:
        cpu, mem = _reservations(task)
        self.cpus += cpu
        self.memory += mem
        self.total += 1
        self.per_service[str(task.get("ServiceID", ""))] += 1
        self.host_ports |= _host_ports(task)


def _check(load: _NodeLoad, task: dict[str, Any]) -> str | None:
    """The first filter the node fails for the task, or None."""
    node = load.node
    if (node.get("Status") or {}).get("State") != "ready" or (node.get("Spec") or {}).get(
        "Availability", "active"
    ) != "active":
        return "ready"
    cpu, mem = _reservations(task)
    resources = (node.get("Description") or {}).get("Resources") or {}
    if cpu and load.cpus + cpu > int(resources.get("NanoCPUs") or 0):
        return "resources"
    if mem and load.memory + mem > int(resources.get("MemoryBytes") or 0):
        return "resources"
    placement = (task.get("Spec") or {}).get("Placement") or {}
    try:
        constraints = parse_constraints(placement.get("Constraints") or [])
    except ValueError:
        return "constraints"
    if not satisfied(constraints, node):
        return "constraints"
    if not _platform_ok(placement.get("Platforms") or [], node):
        return "platform"
    if _host_ports(task) & load.host_ports:
        return "host-port"
    limit = int(placement.get("MaxReplicas") or 0)
    if limit and load.per_service[str(task.get("ServiceID", ""))] >= limit:
        return "max-replicas"
    return None


def _spread_value(node: dict[str, Any], descriptor: str) -> str | None:
    d = descriptor.strip()
    if d.startswith("node.labels."):
        return (node.get("Spec", {}).get("Labels") or {}).get(d[len("node.labels.") :])
    if d.startswith("engine.labels."):
        return ((node.get("Description", {}).get("Engine") or {}).get("Labels") or {}).get(
            d[len("engine.labels.") :]
        )
    if d == "node.hostname":
        return (node.get("Description") or {}).get("Hostname")
    if d == "node.id":
        return str(node.get("ID", ""))
    return None


def _pick(fits: list[_NodeLoad], task: dict[str, Any], loads: list[_NodeLoad]) -> _NodeLoad:
    service = str(task.get("ServiceID", ""))
    prefs = ((task.get("Spec") or {}).get("Placement") or {}).get("Preferences") or []
    candidates = fits
    for pref in prefs:
        descriptor = ((pref or {}).get("Spread") or {}).get("SpreadDescriptor") or ""
        if not descriptor:
            continue
        per_value: Counter[str | None] = Counter()
        for load in loads:  # the service's tasks per value, over every node
            per_value[_spread_value(load.node, descriptor)] += load.per_service[service]
        least = min(per_value[_spread_value(c.node, descriptor)] for c in candidates)
        candidates = [c for c in candidates if per_value[_spread_value(c.node, descriptor)] == least]
    return min(candidates, key=lambda c: (c.per_service[service], c.total, str(c.node.get("ID", ""))))


def schedule(tasks: list[dict[str, Any]], nodes: list[dict[str, Any]], now: int) -> dict[str, dict[str, Any]]:
    """The tasks this pass moves (ID -> new document), given every task and node."""
    loads = {str(n["ID"]): _NodeLoad(n) for n in nodes}
    for t in tasks:
        if (
            taskdocs.live(t)
            and t.get("NodeID") in loads
            and taskdocs.rank(taskdocs.state(t)) >= taskdocs.ASSIGNED
        ):
            if not taskdocs.ended(t):
                loads[str(t["NodeID"])].add(t)
    stamp = rfc3339nano(now)
    out: dict[str, dict[str, Any]] = {}
    waiting = [t for t in tasks if taskdocs.live(t) and taskdocs.rank(taskdocs.state(t)) < taskdocs.ASSIGNED]
    waiting.sort(key=lambda t: (int(taskdocs.private(t).get("CreatedNs", 0)), str(t["ID"])))
    for task in waiting:
        failed: Counter[str] = Counter()
        if task.get("NodeID"):  # global: its own node or none
            load = loads.get(str(task["NodeID"]))
            reason = "ready" if load is None else _check(load, task)
            fits = [load] if load is not None and reason is None else []
            if reason:
                failed[reason] += 1
        else:
            fits = []
            for load in loads.values():
                reason = _check(load, task)
                if reason:
                    failed[reason] += 1
                else:
                    fits.append(load)
        doc = dict(task)
        if fits:
            chosen = _pick(fits, task, list(loads.values()))
            chosen.add(task)
            doc["NodeID"] = chosen.node["ID"]
            doc["Status"] = {
                "Timestamp": stamp,
                "State": "assigned",
                "Message": "scheduler assigned task to node",
            }
        else:
            status = {"Timestamp": stamp, "State": "pending", "Message": "pending task scheduling"}
            if failed or not loads:
                status["Err"] = _explain(failed) if failed else "no suitable node"
            old = task.get("Status") or {}
            if old.get("State") == "pending" and old.get("Err") == status.get("Err"):
                continue
            doc["Status"] = status
        doc["UpdatedAt"] = stamp
        out[str(task["ID"])] = doc
    return out


class Scheduler(Reconciler):
    """Assigns waiting tasks to nodes whenever tasks or nodes change."""

    async def reconcile(self, tx: WriteTx, now: int) -> int | None:
        tasks = await tx.find(Task)
        nodes = await tx.find(Node)
        by_id = {t.id: t for t in tasks}
        for task_id, doc in schedule([t.doc for t in tasks], [n.doc for n in nodes], now).items():
            await tx.update(by_id[task_id].with_doc(doc))
        return None
