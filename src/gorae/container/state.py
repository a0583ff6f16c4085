"""The container state machine, as tables: which event moves which status where, which operation is
allowed in which status, and docker's refusals for both.

Owns the seven statuses (created, running, paused, restarting, removing, exited, dead), the flags
each one shows in `State` (Running/Paused/Restarting/Dead) and docker's `Status` strings for
`ps`. `apply(state, event, **fields)` returns a new `State` dict or raises the typed error docker
answers with; `require(status, op, id)` guards the operations that change no status (kill, exec,
attach, top, resize, remove without force, ...). It never persists, publishes events or touches the
runtime (container/repository.py's `transition` is the one commit point).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from gorae.errors import Conflict, GoraeError, NotModified
from gorae.humanize import human_duration
from gorae.timefmt import ZERO_TIME


class Status(StrEnum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"
    REMOVING = "removing"
    EXITED = "exited"
    DEAD = "dead"


class Event(StrEnum):
    START = "start"  # the process runs
    PAUSE = "pause"
    UNPAUSE = "unpause"
    EXIT = "exit"  # the process ended and stays down
    EXIT_RESTART = "exit_restart"  # the process ended; the restart policy will start it again
    CANCEL_RESTART = "cancel_restart"  # stop/kill while a restart is pending
    START_FAILED = "start_failed"  # the runtime refused to start it (exit code 126/127/128)
    REMOVE = "remove"  # removal begins
    REMOVE_FAILED = "remove_failed"  # removal could not finish: the container is dead
    DIE_UNKNOWN = "die_unknown"  # found running in the record, gone in reality, no exit status


S, E = Status, Event

# (status, event) -> next status
TRANSITIONS: dict[tuple[Status, Event], Status] = {
    (S.CREATED, E.START): S.RUNNING,
    (S.CREATED, E.START_FAILED): S.CREATED,  # docker: never started, so still "created" (with ExitCode)
    (S.CREATED, E.REMOVE): S.REMOVING,
    (S.RUNNING, E.PAUSE): S.PAUSED,
    (S.RUNNING, E.EXIT): S.EXITED,
    (S.RUNNING, E.EXIT_RESTART): S.RESTARTING,
    (S.RUNNING, E.REMOVE): S.REMOVING,  # rm -f: the kill happens first, the exit is recorded while removing
    (S.RUNNING, E.DIE_UNKNOWN): S.EXITED,
    (S.PAUSED, E.UNPAUSE): S.RUNNING,
    (S.PAUSED, E.EXIT): S.EXITED,
    (S.PAUSED, E.EXIT_RESTART): S.RESTARTING,
    (S.PAUSED, E.REMOVE): S.REMOVING,
    (S.PAUSED, E.DIE_UNKNOWN): S.EXITED,
    (S.RESTARTING, E.START): S.RUNNING,
    (S.RESTARTING, E.START_FAILED): S.EXITED,
    (S.RESTARTING, E.CANCEL_RESTART): S.EXITED,
    (S.RESTARTING, E.EXIT): S.EXITED,
    (S.RESTARTING, E.REMOVE): S.REMOVING,
    (S.RESTARTING, E.DIE_UNKNOWN): S.EXITED,
    (S.EXITED, E.START): S.RUNNING,
    (S.EXITED, E.START_FAILED): S.EXITED,
    (S.EXITED, E.REMOVE): S.REMOVING,
    (S.REMOVING, E.EXIT): S.REMOVING,
    (S.REMOVING, E.REMOVE_FAILED): S.DEAD,
    (S.DEAD, E.REMOVE): S.REMOVING,
}

# (status, event) -> docker's refusal; "{id}" is the container id. Pairs in neither table are a 409
# with a generic text (a bug in the caller more than a user error).
REFUSALS: dict[tuple[Status, Event], GoraeError] = {
    (S.RUNNING, E.START): NotModified("Container is already started"),
    (S.PAUSED, E.START): Conflict("cannot start a paused container, try unpause instead"),
    (S.REMOVING, E.START): Conflict("container is marked for removal and cannot be started"),
    (S.DEAD, E.START): Conflict("container is marked for removal and cannot be started"),
    (S.CREATED, E.PAUSE): Conflict("Container {id} is not running"),
    (S.EXITED, E.PAUSE): Conflict("Container {id} is not running"),
    (S.DEAD, E.PAUSE): Conflict("Container {id} is not running"),
    (S.PAUSED, E.PAUSE): Conflict("Container {id} is already paused"),
    (S.RESTARTING, E.PAUSE): Conflict("Container {id} is restarting, wait until the container is running"),
    (S.CREATED, E.UNPAUSE): Conflict("Container {id} is not paused"),
    (S.RUNNING, E.UNPAUSE): Conflict("Container {id} is not paused"),
    (S.RESTARTING, E.UNPAUSE): Conflict("Container {id} is not paused"),
    (S.EXITED, E.UNPAUSE): Conflict("Container {id} is not paused"),
    (S.DEAD, E.UNPAUSE): Conflict("Container {id} is not paused"),
    (S.REMOVING, E.REMOVE): Conflict("removal of container {id} is already in progress"),
}

# status -> the State flags docker shows for it (a restarting container counts as Running, as in docker)
FLAGS: dict[Status, dict[str, bool]] = {
    S.CREATED: {"Running": False, "Paused": False, "Restarting": False, "Dead": False},
    S.RUNNING: {"Running": True, "Paused": False, "Restarting": False, "Dead": False},
    S.PAUSED: {"Running": True, "Paused": True, "Restarting": False, "Dead": False},
    S.RESTARTING: {"Running": True, "Paused": False, "Restarting": True, "Dead": False},
    S.REMOVING: {"Running": False, "Paused": False, "Restarting": False, "Dead": False},
    S.EXITED: {"Running": False, "Paused": False, "Restarting": False, "Dead": False},
    S.DEAD: {"Running": False, "Paused": False, "Restarting": False, "Dead": True},
}

# statuses in which a process may exist (rm without force refuses, stop/kill act)
ALIVE = frozenset({S.RUNNING, S.PAUSED, S.RESTARTING})
# statuses in which a process exists right now
HAS_PROCESS = frozenset({S.RUNNING, S.PAUSED})
# statuses a container can be started from at daemon start
STOPPED = frozenset({S.CREATED, S.EXITED})


def is_running(status: Status) -> bool:
    return status == S.RUNNING


def is_paused(status: Status) -> bool:
    return status == S.PAUSED


def is_restarting(status: Status) -> bool:
    """A restart is pending (the restart policy's back-off)."""
    return status == S.RESTARTING


def is_removing(status: Status) -> bool:
    return status == S.REMOVING


# events after which `wait` (not-running / next-exit) answers
WAKES_EXIT_WAITERS = frozenset({E.EXIT, E.EXIT_RESTART, E.START_FAILED, E.CANCEL_RESTART})


class Op(StrEnum):
    """Operations that need a status but change none (the table above covers the ones that do)."""

    KILL = "kill"
    STOP = "stop"
    RESIZE = "resize"
    TOP = "top"
    EXEC_CREATE = "exec_create"
    EXEC_START = "exec_start"
    ATTACH = "attach"
    REMOVE = "remove"  # rm without force
    REMOVE_FORCE = "remove_force"
    JOIN_NETWORK = "join_network"  # --network container:<this one>


@dataclass(frozen=True)
class Rule:
    allowed: frozenset[Status]
    refusal: GoraeError  # for any other status ...
    refusals: dict[Status, GoraeError] = field(default_factory=dict)  # ... unless a status has its own


_NOT_RUNNING = Conflict("Container {id} is not running")
_PAUSED_EXEC = Conflict("Container {id} is paused, unpause the container before exec")
_RUNNING_RM = Conflict(
    "You cannot remove a running container {id}. Stop the container before attempting removal or force remove"
)
_REMOVING = Conflict("removal of container {id} is already in progress")

OPS: dict[Op, Rule] = {
    Op.KILL: Rule(ALIVE, _NOT_RUNNING),
    Op.STOP: Rule(ALIVE, NotModified("Container is already stopped")),
    Op.RESIZE: Rule(HAS_PROCESS, _NOT_RUNNING),
    Op.TOP: Rule(HAS_PROCESS, _NOT_RUNNING),
    Op.EXEC_CREATE: Rule(
        frozenset({S.RUNNING}),
        _NOT_RUNNING,
        {
            S.PAUSED: _PAUSED_EXEC,
            S.RESTARTING: Conflict("Container {id} is restarting, wait until the container is running"),
        },
    ),
    Op.EXEC_START: Rule(frozenset({S.RUNNING}), _NOT_RUNNING, {S.PAUSED: _PAUSED_EXEC}),
    # "{id}" is the reference the client gave here, as docker words it
    Op.ATTACH: Rule(
        frozenset(S) - {S.PAUSED},
        _NOT_RUNNING,
        {S.PAUSED: Conflict("container {id} is paused, unpause the container before attach")},
    ),
    Op.REMOVE: Rule(
        frozenset({S.CREATED, S.EXITED, S.DEAD}),
        _RUNNING_RM,
        {
            S.PAUSED: Conflict(
                "You cannot remove a paused container {id}. Unpause and then stop the container "
                "before attempting removal or force remove"
            ),
            S.RESTARTING: Conflict(
                "You cannot remove a restarting container {id}. Stop the container before "
                "attempting removal or force remove"
            ),
            S.REMOVING: _REMOVING,
        },
    ),
    Op.REMOVE_FORCE: Rule(frozenset(S) - {S.REMOVING}, _REMOVING),
    Op.JOIN_NETWORK: Rule(HAS_PROCESS, Conflict("cannot join network of a non running container: {id}")),
}


def require(status: Status, op: Op, container_id: str) -> None:
    """Nothing when `op` is allowed in `status`; docker's refusal otherwise."""
    rule = OPS[op]
    if status in rule.allowed:
        return
    refusal = rule.refusals.get(status, rule.refusal)
    raise type(refusal)(refusal.message.format(id=container_id))


def allows(status: Status, op: Op) -> bool:
    return status in OPS[op].allowed


def initial_state() -> dict[str, Any]:
    """`State` of a freshly created container."""
    return {
        "Status": S.CREATED.value,
        **FLAGS[S.CREATED],
        "OOMKilled": False,
        "Pid": 0,
        "ExitCode": 0,
        "Error": "",
        "StartedAt": ZERO_TIME,
        "FinishedAt": ZERO_TIME,
    }


def status_of(state: dict[str, Any]) -> Status:
    return Status(state.get("Status", "created"))


def check(state: dict[str, Any], event: Event, container_id: str) -> Status:
    """The status `event` leads to from `state`, or docker's error for refusing it."""
    cur = status_of(state)
    nxt = TRANSITIONS.get((cur, event))
    if nxt is not None:
        return nxt
    refusal = REFUSALS.get((cur, event))
    if refusal is not None:
        raise type(refusal)(refusal.message.format(id=container_id))
    raise Conflict(f"cannot {event.value.replace('_', ' ')} container {container_id} in state {cur.value}")


def can(state: dict[str, Any], event: Event) -> bool:
    return (status_of(state), event) in TRANSITIONS


def apply(state: dict[str, Any], event: Event, container_id: str, **fields: Any) -> dict[str, Any]:
    """A new State dict after `event`, with `fields` (Pid, ExitCode, StartedAt, ...) set on it."""
    nxt = check(state, event, container_id)
    out = dict(state)
    out["Status"] = nxt.value
    out.update(FLAGS[nxt])
    if nxt in (S.EXITED, S.RESTARTING, S.DEAD, S.REMOVING, S.CREATED):
        out["Pid"] = 0
    out.update(fields)
    return out


# -- `docker ps` Status column -----------------------------------------------------------------


def status_text(state: dict[str, Any], started_ns: int, finished_ns: int, now_ns: int | None = None) -> str:
    """docker's State.String(): "Up 3 seconds", "Exited (0) 5 seconds ago", "Created", ..."""
    now = time.time_ns() if now_ns is None else now_ns
    cur = status_of(state)
    if cur == S.PAUSED:
        return f"Up {human_duration((now - started_ns) / 1e9)} (Paused)"
    if cur == S.RESTARTING:
        return f"Restarting ({state.get('ExitCode', 0)}) {human_duration((now - finished_ns) / 1e9)} ago"
    if cur == S.RUNNING:
        health = state.get("Health")
        if isinstance(health, dict):  # docker's Health.String()
            h = str(health.get("Status") or "")
            return f"Up {human_duration((now - started_ns) / 1e9)} ({'health: starting' if h == 'starting' else h})"
        return f"Up {human_duration((now - started_ns) / 1e9)}"
    if cur == S.REMOVING:
        return "Removal In Progress"
    if cur == S.DEAD:
        return "Dead"
    if cur == S.CREATED or not started_ns:
        return "Created"
    if not finished_ns:
        return ""
    return f"Exited ({state.get('ExitCode', 0)}) {human_duration((now - finished_ns) / 1e9)} ago"
