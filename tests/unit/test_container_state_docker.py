"""The container state machine against docker's behaviour, written out independently of the module's own tables
(so a wrong entry in `TRANSITIONS`, `REFUSALS`, `FLAGS` or `OPS` fails here instead of being checked against
itself): the State flags docker shows, every status × event outcome with docker's refusal texts, every guarded
operation, the initial State and the `ps` Status column. Mutation testing (mutmut) of container/state.py found
the texts and flags unguarded by the unit tests before this file."""

from __future__ import annotations

import dataclasses

import pytest

from gorae.container import state as cs
from gorae.container.state import Event as E
from gorae.container.state import Op
from gorae.container.state import Status as S
from gorae.errors import Conflict, GoraeError, NotModified

CID = "c0ffee"

# docker's State flags (Running, Paused, Restarting, Dead) per status
DOCKER_FLAGS = {
    "created": (False, False, False, False),
    "running": (True, False, False, False),
    "paused": (True, True, False, False),
    "restarting": (True, False, True, False),
    "removing": (False, False, False, False),
    "exited": (False, False, False, False),
    "dead": (False, False, False, True),
}

NOT_RUNNING = (Conflict, f"Container {CID} is not running")
NOT_PAUSED = (Conflict, f"Container {CID} is not paused")
MARKED = (Conflict, "container is marked for removal and cannot be started")

# (status, event) -> next status, or (error type, docker's text); None: refused with the generic text
EXPECTED: dict[tuple[str, str], object] = {
    ("created", "start"): "running",
    ("created", "start_failed"): "created",
    ("created", "remove"): "removing",
    ("created", "pause"): NOT_RUNNING,
    ("created", "unpause"): NOT_PAUSED,
    ("running", "start"): (NotModified, "Container is already started"),
    ("running", "pause"): "paused",
    ("running", "exit"): "exited",
    ("running", "exit_restart"): "restarting",
    ("running", "remove"): "removing",
    ("running", "die_unknown"): "exited",
    ("running", "unpause"): NOT_PAUSED,
    ("paused", "start"): (Conflict, "cannot start a paused container, try unpause instead"),
    ("paused", "pause"): (Conflict, f"Container {CID} is already paused"),
    ("paused", "unpause"): "running",
    ("paused", "exit"): "exited",
    ("paused", "exit_restart"): "restarting",
    ("paused", "remove"): "removing",
    ("paused", "die_unknown"): "exited",
    ("restarting", "start"): "running",
    ("restarting", "start_failed"): "exited",
    ("restarting", "cancel_restart"): "exited",
    ("restarting", "exit"): "exited",
    ("restarting", "remove"): "removing",
    ("restarting", "die_unknown"): "exited",
    ("restarting", "pause"): (Conflict, f"Container {CID} is restarting, wait until the container is running"),
    ("restarting", "unpause"): NOT_PAUSED,
    ("exited", "start"): "running",
    ("exited", "start_failed"): "exited",
    ("exited", "remove"): "removing",
    ("exited", "pause"): NOT_RUNNING,
    ("exited", "unpause"): NOT_PAUSED,
    ("removing", "exit"): "removing",
    ("removing", "remove_failed"): "dead",
    ("removing", "start"): MARKED,
    ("removing", "remove"): (Conflict, f"removal of container {CID} is already in progress"),
    ("dead", "remove"): "removing",
    ("dead", "start"): MARKED,
    ("dead", "pause"): NOT_RUNNING,
    ("dead", "unpause"): NOT_PAUSED,
}


@pytest.mark.parametrize("status", [s.value for s in S])
def test_flags_are_dockers(status: str) -> None:
    flags = cs.FLAGS[S(status)]
    assert (flags["Running"], flags["Paused"], flags["Restarting"], flags["Dead"]) == DOCKER_FLAGS[status]
    assert set(flags) == {"Running", "Paused", "Restarting", "Dead"}


@pytest.mark.parametrize("status", [s.value for s in S])
@pytest.mark.parametrize("event", [e.value for e in E])
def test_every_status_and_event(status: str, event: str) -> None:
    state = {**cs.initial_state(), "Status": status, "Pid": 42}
    want = EXPECTED.get((status, event))
    if isinstance(want, str):
        out = cs.apply(state, E(event), CID, ExitCode=3)
        assert out["Status"] == want and cs.can(state, E(event))
        flags = DOCKER_FLAGS[want]
        assert (out["Running"], out["Paused"], out["Restarting"], out["Dead"]) == flags
        assert out["ExitCode"] == 3  # fields are set on the new state
        assert out["Pid"] == (42 if want in ("running", "paused") else 0)
        assert state["Status"] == status  # the old state is left alone
        return
    assert not cs.can(state, E(event))
    with pytest.raises(GoraeError) as err:
        cs.apply(state, E(event), CID)
    if want is None:
        assert type(err.value) is Conflict
        assert err.value.message == f"cannot {event.replace('_', ' ')} container {CID} in state {status}"
    else:
        kind, text = want  # type: ignore[misc]
        assert type(err.value) is kind and err.value.message == text


def test_every_listed_outcome_is_a_real_pair() -> None:
    assert {(s, e) for s, e in EXPECTED} <= {(s.value, e.value) for s in S for e in E}


# op -> statuses where it is allowed; the refusal (type, text) for the rest, by status
ALLOWED = {
    Op.KILL: {"running", "paused", "restarting"},
    Op.STOP: {"running", "paused", "restarting"},
    Op.RESIZE: {"running", "paused"},
    Op.TOP: {"running", "paused"},
    Op.EXEC_CREATE: {"running"},
    Op.EXEC_START: {"running"},
    Op.ATTACH: {"created", "running", "restarting", "removing", "exited", "dead"},
    Op.REMOVE: {"created", "exited", "dead"},
    Op.REMOVE_FORCE: {"created", "running", "paused", "restarting", "exited", "dead"},
    Op.JOIN_NETWORK: {"running", "paused"},
}
PAUSED_EXEC = (Conflict, f"Container {CID} is paused, unpause the container before exec")
RUNNING_RM = (
    Conflict,
    f"You cannot remove a running container {CID}. Stop the container before attempting removal or force remove",
)
REMOVING = (Conflict, f"removal of container {CID} is already in progress")
REFUSED = {
    Op.KILL: {None: NOT_RUNNING},
    Op.STOP: {None: (NotModified, "Container is already stopped")},
    Op.RESIZE: {None: NOT_RUNNING},
    Op.TOP: {None: NOT_RUNNING},
    Op.EXEC_CREATE: {
        None: NOT_RUNNING,
        "paused": PAUSED_EXEC,
        "restarting": (Conflict, f"Container {CID} is restarting, wait until the container is running"),
    },
    Op.EXEC_START: {None: NOT_RUNNING, "paused": PAUSED_EXEC},
    Op.ATTACH: {"paused": (Conflict, f"container {CID} is paused, unpause the container before attach")},
    Op.REMOVE: {
        None: RUNNING_RM,
        "paused": (
            Conflict,
            f"You cannot remove a paused container {CID}. Unpause and then stop the container before "
            "attempting removal or force remove",
        ),
        "restarting": (
            Conflict,
            f"You cannot remove a restarting container {CID}. Stop the container before attempting removal "
            "or force remove",
        ),
        "removing": REMOVING,
    },
    Op.REMOVE_FORCE: {None: REMOVING},
    Op.JOIN_NETWORK: {None: (Conflict, f"cannot join network of a non running container: {CID}")},
}


@pytest.mark.parametrize("status", [s.value for s in S])
@pytest.mark.parametrize("op", list(Op))
def test_guarded_operations(op: Op, status: str) -> None:
    if status in ALLOWED[op]:
        cs.require(S(status), op, CID)
        assert cs.allows(S(status), op)
        return
    assert not cs.allows(S(status), op)
    kind, text = REFUSED[op].get(status, REFUSED[op].get(None))  # type: ignore[misc]
    with pytest.raises(GoraeError) as err:
        cs.require(S(status), op, CID)
    assert type(err.value) is kind and err.value.message == text


def test_initial_state_is_dockers() -> None:
    assert cs.initial_state() == {
        "Status": "created",
        "Running": False,
        "Paused": False,
        "Restarting": False,
        "Dead": False,
        "OOMKilled": False,
        "Pid": 0,
        "ExitCode": 0,
        "Error": "",
        "StartedAt": "0001-01-01T00:00:00Z",
        "FinishedAt": "0001-01-01T00:00:00Z",
    }
    assert cs.status_of({}) is S.CREATED


@pytest.mark.parametrize(
    "status, exit_code, started, finished, text",
    [
        ("running", 0, 1, 0, "Up 5 seconds"),
        ("paused", 0, 1, 0, "Up 5 seconds (Paused)"),
        ("restarting", 2, 1, 3, "Restarting (2) 3 seconds ago"),
        ("removing", 0, 1, 3, "Removal In Progress"),
        ("dead", 0, 1, 3, "Dead"),
        ("created", 0, 0, 0, "Created"),
        ("exited", 0, 0, 3, "Created"),  # never started: docker says Created
        ("exited", 0, 1, 0, ""),
        ("exited", 137, 1, 3, "Exited (137) 3 seconds ago"),
    ],
)
def test_ps_status_column(status: str, exit_code: int, started: int, finished: int, text: str) -> None:
    now = 6 * 10**9
    started_ns = now - 5 * 10**9 if started else 0
    finished_ns = now - 3 * 10**9 if finished else 0
    state = {"Status": status, "ExitCode": exit_code}
    assert cs.status_text(state, started_ns, finished_ns, now_ns=now) == text


def test_predicates_and_sets() -> None:
    assert [s.value for s in S if cs.is_running(s)] == ["running"]
    assert [s.value for s in S if cs.is_paused(s)] == ["paused"]
    assert [s.value for s in S if cs.is_restarting(s)] == ["restarting"]
    assert [s.value for s in S if cs.is_removing(s)] == ["removing"]
    assert {s.value for s in cs.ALIVE} == {"running", "paused", "restarting"}
    assert {s.value for s in cs.HAS_PROCESS} == {"running", "paused"}
    assert {s.value for s in cs.STOPPED} == {"created", "exited"}
    assert {e.value for e in cs.WAKES_EXIT_WAITERS} == {"exit", "exit_restart", "start_failed", "cancel_restart"}
    assert [e.value for e in E] == [
        "start", "pause", "unpause", "exit", "exit_restart", "cancel_restart", "start_failed", "remove",
        "remove_failed", "die_unknown",
    ]
    assert [s.value for s in S] == ["created", "running", "paused", "restarting", "removing", "exited", "dead"]


def test_ps_status_column_without_an_exit_code_shows_zero() -> None:
    now = 6 * 10**9
    assert cs.status_text({"Status": "restarting"}, 1, now - 3 * 10**9, now_ns=now) == "Restarting (0) 3 seconds ago"
    assert cs.status_text({"Status": "exited"}, 1, now - 3 * 10**9, now_ns=now) == "Exited (0) 3 seconds ago"


@pytest.mark.parametrize(
    "health, shown",
    [
        ({"Status": "starting"}, "Up 5 seconds (health: starting)"),
        ({"Status": "healthy"}, "Up 5 seconds (healthy)"),
        ({"Status": "unhealthy"}, "Up 5 seconds (unhealthy)"),
        ({"Status": ""}, "Up 5 seconds ()"),  # docker's Health.String() of an empty status
        ({}, "Up 5 seconds ()"),
    ],
)
def test_ps_status_column_with_health(health: dict[str, str], shown: str) -> None:
    now = 100 * 10**9
    state = {"Status": "running", "Health": health}
    assert cs.status_text(state, now - 5 * 10**9, 0, now_ns=now) == shown


def test_the_operation_rules_cannot_be_changed_by_a_caller() -> None:
    rule = cs.OPS[Op.KILL]
    with pytest.raises(dataclasses.FrozenInstanceError):
        rule.allowed = frozenset(S)  # type: ignore[misc]
    assert {s.value for s in cs.OPS[Op.KILL].allowed} == {"running", "paused", "restarting"}
