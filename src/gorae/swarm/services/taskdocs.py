"""Task documents: the states in their order, a new task as the orchestrator makes it (the contract in
docs/swarm.md), the slot a task fills, and a task or service as the Engine API shows it.

Private fields under `_gorae` (stripped from the API): ServiceName and ServiceLabels (swarmkit's
ServiceAnnotations), SpecVersion, EndpointSpec, CreatedNs (ordering),
StartAt (ns: a delayed restart may run from then), Restarts (ns of the slot's restarts, for MaxAttempts),
Done (the restart policy ended this slot), UpdateRun/Replaces/WaitFor/RunningAt (rolling updates).
"""

from __future__ import annotations

import copy
from typing import Any

from gorae.swarm.ids import new_id
from gorae.timefmt import rfc3339nano

STATES = (
    "new",
    "pending",
    "assigned",
    "accepted",
    "preparing",
    "ready",
    "starting",
    "running",
    "complete",
    "shutdown",
    "failed",
    "rejected",
    "remove",
    "orphaned",
)
_INDEX = {s: i for i, s in enumerate(STATES)}
RUNNING = _INDEX["running"]
ASSIGNED = _INDEX["assigned"]


def rank(state: str | None) -> int:
    return _INDEX.get(state or "new", 0)


def state(task: dict[str, Any]) -> str:
    return str((task.get("Status") or {}).get("State") or "new")


def live(task: dict[str, Any]) -> bool:
    """Desired to run (or to be ready to run): DesiredState at most running, or a job's task (desired
    `complete`) that has not ended yet."""
    desired = task.get("DesiredState")
    if desired == "complete":
        return not ended(task)
    return rank(desired) <= RUNNING


def ended(task: dict[str, Any]) -> bool:
    """Its observed state is past running (complete, shutdown, failed, rejected, orphaned, ...)."""
    return rank(state(task)) > RUNNING


def on_node(task: dict[str, Any]) -> bool:
    """Assigned to a node and not yet ended: it holds (or will hold) a container there."""
    return bool(task.get("NodeID")) and ASSIGNED <= rank(state(task)) <= RUNNING


def private(doc: dict[str, Any]) -> dict[str, Any]:
    bag = doc.get("_gorae")
    return bag if isinstance(bag, dict) else {}


def slot_key(task: dict[str, Any]) -> tuple[str, str]:
    """(service ID, slot number or node ID): the slot a task fills (swarmkit's instance)."""
    slot = task.get("Slot")
    return str(task.get("ServiceID", "")), str(slot) if slot else "node:" + str(task.get("NodeID", ""))


def task_name(task: dict[str, Any]) -> str:
    """`<service>.<slot>` or `<service>.<node ID>` (global), as `docker service ps` names it."""
    name = private(task).get("ServiceName", "")
    return f"{name}.{task['Slot']}" if task.get("Slot") else f"{name}.{task.get('NodeID', '')}"


def new_task(
    service_id: str,
    service_doc: dict[str, Any],
    now: int,
    *,
    slot: int = 0,
    node_id: str = "",
    desired: str = "running",
    extra: dict[str, Any] | None = None,
    job_iteration: int | None = None,
) -> dict[str, Any]:
    """A task of the service's current TaskTemplate in state new (the orchestrator's contract); a job's
    task carries the service's JobIteration."""
    spec = service_doc.get("Spec") or {}
    stamp = rfc3339nano(now)
    doc: dict[str, Any] = {
        "ID": new_id(),
        "CreatedAt": stamp,
        "UpdatedAt": stamp,
        "Labels": {},
        "Spec": {k: v for k, v in copy.deepcopy(spec.get("TaskTemplate") or {}).items() if k != "Runtime"},
        "ServiceID": service_id,
    }
    if slot:
        doc["Slot"] = slot
    if node_id:
        doc["NodeID"] = node_id
    doc["Status"] = {"Timestamp": stamp, "State": "new", "Message": "created"}
    doc["DesiredState"] = desired
    if job_iteration is not None:
        doc["JobIteration"] = version(job_iteration)
    doc["_gorae"] = {
        "ServiceName": spec.get("Name", ""),
        "ServiceLabels": dict(spec.get("Labels") or {}),  # swarmkit's Task.ServiceAnnotations.Labels
        "SpecVersion": int(private(service_doc).get("SpecVersion", 1)),
        # swarmkit's Task.Endpoint.Spec: the service's ports when the task was made (a change re-creates it)
        "EndpointSpec": copy.deepcopy(spec.get("EndpointSpec")),
        "CreatedNs": now,
        **(extra or {}),
    }
    return doc


def version(index: int) -> dict[str, int]:
    """A Version as Go's JSON shows it (Index omitted when 0)."""
    return {"Index": index} if index else {}


def iteration(doc: dict[str, Any]) -> int:
    """A job task's JobIteration, or a job service's JobStatus.JobIteration (0 when unset)."""
    ver = (
        doc.get("JobIteration") if "JobIteration" in doc else (doc.get("JobStatus") or {}).get("JobIteration")
    )
    return int((ver or {}).get("Index") or 0)


_STATUS_ORDER = ("Timestamp", "State", "Message", "Err", "ContainerStatus", "PortStatus")
_TASK_ORDER = (
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
    "NetworksAttachments",
    "GenericResources",
    "Volumes",
)


def public_task(doc: dict[str, Any], version: int) -> dict[str, Any]:
    """A task as GET /tasks shows it (dockerd's key order; Status.PortStatus always present)."""
    out = {k: copy.deepcopy(v) for k, v in doc.items() if not k.startswith("_")}
    out["Version"] = {"Index": version}
    _strip_pull_options(out.get("Spec"))
    status = dict(out.get("Status") or {})
    status.setdefault("PortStatus", {})
    out["Status"] = {k: status[k] for k in (*_STATUS_ORDER, *status) if k in status}
    return {k: out[k] for k in dict.fromkeys((*_TASK_ORDER, *out, "JobIteration")) if k in out}


_SERVICE_ORDER = (
    "ID",
    "Version",
    "CreatedAt",
    "UpdatedAt",
    "Spec",
    "PreviousSpec",
    "Endpoint",
    "UpdateStatus",
    "ServiceStatus",
)  # then JobStatus (Go's swarm.Service)


def _strip_pull_options(spec: Any) -> None:
    """The registry credentials kept in a spec (ContainerSpec.PullOptions) never leave the managers
    through the API."""
    if isinstance(spec, dict):
        template = spec.get("TaskTemplate") if "TaskTemplate" in spec else spec
        container = (template or {}).get("ContainerSpec") if isinstance(template, dict) else None
        if isinstance(container, dict):
            container.pop("PullOptions", None)


def public_service(doc: dict[str, Any], version: int) -> dict[str, Any]:
    out = {k: copy.deepcopy(v) for k, v in doc.items() if not k.startswith("_")}
    out["Version"] = {"Index": version}
    _strip_pull_options(out.get("Spec"))
    _strip_pull_options(out.get("PreviousSpec"))
    return {k: out[k] for k in dict.fromkeys((*_SERVICE_ORDER, *out, "JobStatus")) if k in out}
