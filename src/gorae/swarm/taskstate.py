"""Task states and their order (swarmkit's `api.TaskState`), and the Status documents nodes report.

A task's state only moves forward: NEW < PENDING < ASSIGNED < ACCEPTED < PREPARING < READY < STARTING <
RUNNING < COMPLETE < SHUTDOWN < FAILED < REJECTED < REMOVE < ORPHANED (swarmkit's enum values, lower case as
the Engine API shows them). The dispatcher writes a node's report only when it moves the task forward.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

ORDER: dict[str, int] = {
    "new": 0,
    "pending": 64,
    "assigned": 192,
    "accepted": 256,
    "preparing": 320,
    "ready": 384,
    "starting": 448,
    "running": 512,
    "complete": 576,
    "shutdown": 640,
    "failed": 704,
    "rejected": 768,
    "remove": 800,
    "orphaned": 832,
}
TERMINAL = ORDER["complete"]  # complete and beyond: the task's container will not run again


def rank(state: Any) -> int:
    """The state's place in the order; an unknown state ranks below every known one."""
    return ORDER.get(state, -1) if isinstance(state, str) else -1


def moves_forward(old: Any, new: Any) -> bool:
    """Whether a report of `new` may replace `old` (known states only, strictly later)."""
    return isinstance(new, str) and new in ORDER and rank(new) > rank(old)


def is_terminal(state: Any) -> bool:
    return rank(state) >= TERMINAL


def desired_stop(desired: Any) -> bool:
    """A DesiredState that asks the node to stop the task's container (shutdown, remove, ...); a job's
    task is desired `complete`: it runs to its end."""
    return rank(desired) > ORDER["complete"]


def check_status(raw: Any) -> dict[str, Any]:
    """A node's reported Status, as the dispatcher accepts it: Docker's fields only, typed."""
    if not isinstance(raw, dict):
        raise ValueError("status must be an object")
    state = raw.get("State")
    if not isinstance(state, str) or state not in ORDER:
        raise ValueError(f"unknown task state {state!r}")
    out: dict[str, Any] = {"State": state}
    for key in ("Timestamp", "Message", "Err"):
        value = raw.get(key)
        if value is not None:
            if not isinstance(value, str):
                raise ValueError(f"{key} must be a string")
            out[key] = value
    cs = raw.get("ContainerStatus")
    if cs is not None:
        if not isinstance(cs, dict):
            raise ValueError("ContainerStatus must be an object")
        checked: dict[str, Any] = {}
        if cs.get("ContainerID") is not None:
            if not isinstance(cs["ContainerID"], str):
                raise ValueError("ContainerID must be a string")
            checked["ContainerID"] = cs["ContainerID"]
        for key in ("PID", "ExitCode"):
            value = cs.get(key)
            if value is not None:
                if not isinstance(value, int) or isinstance(value, bool) or not -(2**31) <= value < 2**31:
                    raise ValueError(f"{key} must be an integer")
                checked[key] = value
        out["ContainerStatus"] = checked
    ps = raw.get("PortStatus")
    if ps is not None:
        if not isinstance(ps, dict):
            raise ValueError("PortStatus must be an object")
        out["PortStatus"] = ps
    return out


UNSTABLE = ("Status", "UpdatedAt", "Version", "_gorae")


def stable(doc: dict[str, Any]) -> str:
    """What an agent acts on in a task document, as a digest: all but its status (which the node reports
    itself) and the managers' bookkeeping (swarmkit's TasksEqualStable: a status-only change is no news
    to the node)."""
    kept = {k: v for k, v in doc.items() if k not in UNSTABLE}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()
