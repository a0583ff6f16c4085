"""The pure parts of swarm jobs: the spec's job modes (validation, dockerd's defaults), the orchestrator's job
pass over any mix of task states (hypothesis), the registry credentials kept in a spec and never shown."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gorae.distribution.auth import decode_registry_auth
from gorae.errors import GoraeError, InvalidParameter
from gorae.swarm import taskstate
from gorae.swarm.services import spec as specs
from gorae.swarm.services import taskdocs
from gorae.swarm.services.orchestrator import Pass, ServicePass

TEMPLATE = {"ContainerSpec": {"Image": "busybox", "Args": ["true"]}}
NODE = {"ID": "n1", "Spec": {"Availability": "active", "Role": "manager"}, "Status": {"State": "ready"}}
NOW = 10**18


def _job(concurrent: int, total: int, iteration: int = 0) -> dict[str, Any]:
    spec = specs.validate(
        {
            "Name": "j",
            "TaskTemplate": TEMPLATE,
            "Mode": {"ReplicatedJob": {"MaxConcurrent": concurrent, "TotalCompletions": total}},
        }
    )
    return {
        "ID": "s1",
        "Spec": spec,
        "JobStatus": {"JobIteration": taskdocs.version(iteration), "LastExecution": "x"},
        "_gorae": {"SpecVersion": 1},
    }


def test_job_modes_as_dockerd_stores_them() -> None:
    base = {"Name": "j", "TaskTemplate": TEMPLATE}
    assert specs.validate({**base, "Mode": {"ReplicatedJob": {}}})["Mode"] == {
        "ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}
    }
    assert specs.validate({**base, "Mode": {"ReplicatedJob": {"MaxConcurrent": 0, "TotalCompletions": 0}}})[
        "Mode"
    ] == {"ReplicatedJob": {"MaxConcurrent": 0, "TotalCompletions": 0}}
    assert specs.validate({**base, "Mode": {"GlobalJob": {}}})["Mode"] == {"GlobalJob": {}}
    with pytest.raises(InvalidParameter, match="^must specify only one service mode$"):
        specs.validate({**base, "Mode": {"GlobalJob": {}, "Replicated": {}}})
    with pytest.raises(InvalidParameter) as err:
        specs.validate({**base, "Mode": {"GlobalJob": {}}, "UpdateConfig": {"Parallelism": 1}})
    assert err.value.message == "rpc error: code = InvalidArgument desc = Jobs may not have an update config"
    kinds = [
        specs.mode_kind({"Mode": m}) for m in ({}, {"Global": {}}, {"ReplicatedJob": {}}, {"GlobalJob": {}})
    ]
    assert kinds == ["replicated", "global", "replicated-job", "global-job"]


@given(
    st.dictionaries(
        st.sampled_from(["MaxConcurrent", "TotalCompletions", "maxconcurrent", "Other"]),
        st.none() | st.booleans() | st.integers(-(2**65), 2**65) | st.floats() | st.text(max_size=5),
    )
)
@settings(max_examples=300, deadline=None)
def test_hostile_job_modes_are_refused_or_stored_as_uint64(job: dict[str, Any]) -> None:
    try:
        out = specs.validate({"Name": "j", "TaskTemplate": TEMPLATE, "Mode": {"ReplicatedJob": job}})
    except InvalidParameter as e:
        assert e.message.startswith("json: cannot unmarshal ")
        return
    counts = out["Mode"]["ReplicatedJob"]
    assert set(counts) == {"MaxConcurrent", "TotalCompletions"}
    assert all(isinstance(v, int) and 0 <= v < 2**64 for v in counts.values())


def _task(slot: int, state: str, desired: str, iteration: int, created: int) -> dict[str, Any]:
    doc = taskdocs.new_task("s1", _job(1, 1), created, slot=slot, desired=desired, job_iteration=iteration)
    doc["Status"]["State"] = state
    if taskstate.rank(state) >= taskstate.ORDER["assigned"]:
        doc["NodeID"] = "n1"
    return doc


_STATES = ["new", "pending", "assigned", "running", "complete", "failed", "shutdown", "rejected"]


@given(
    concurrent=st.integers(0, 4),
    total=st.integers(0, 6),
    iteration=st.integers(0, 2),
    tasks=st.lists(
        st.tuples(
            st.integers(0, 6),
            st.sampled_from(_STATES),
            st.sampled_from(["complete", "shutdown"]),
            st.integers(0, 2),
        ),
        max_size=10,
    ),
)
@settings(max_examples=300, deadline=None)
def test_a_job_pass_never_exceeds_its_limits(
    concurrent: int, total: int, iteration: int, tasks: list[tuple[int, str, str, int]]
) -> None:
    service = _job(concurrent, total, iteration)
    docs = [
        _task(slot, state, desired, it, NOW - 1000 + i) for i, (slot, state, desired, it) in enumerate(tasks)
    ]
    p = Pass(NOW)
    ServicePass(p, "s1", service, docs, {"n1": NODE}).run()
    after = {**{str(t["ID"]): t for t in docs}, **p.tasks}
    current = [t for t in after.values() if taskdocs.iteration(t) == iteration]
    live_before = [  # those the pass keeps (a slot beyond TotalCompletions is retired)
        t
        for t in docs
        if taskdocs.iteration(t) == iteration and taskdocs.live(t) and int(t.get("Slot") or 0) < total
    ]
    restarts = [i for i in p.created if taskdocs.private(p.tasks[i]).get("Restarts")]
    fresh = len(p.created) - len(restarts)
    # a failed task's replacement takes its place; new slots only start within MaxConcurrent
    busy = {int(t.get("Slot") or 0) for t in live_before}
    assert fresh <= max(0, concurrent - len(busy) - len(restarts))
    live_after = {int(t.get("Slot") or 0) for t in current if taskdocs.live(t)}
    assert len(live_after) <= max(concurrent, len(busy) + len(restarts))
    done_slots = {
        int(t.get("Slot") or 0)
        for t in docs
        if taskdocs.iteration(t) == iteration and t["Status"]["State"] == "complete"
    }
    for task_id in p.created:
        new = p.tasks[task_id]
        assert new["JobIteration"] == taskdocs.version(iteration)
        assert new["DesiredState"] in ("complete", "ready")
        slot = int(new.get("Slot") or 0)
        assert slot < total and slot not in done_slots
    # an older iteration's unfinished task is stopped; a completed task is never touched
    for t in after.values():
        if taskdocs.iteration(t) != iteration:
            assert not taskdocs.live(t)
    for t in docs:
        if t["Status"]["State"] == "complete":
            assert after[str(t["ID"])]["DesiredState"] == t["DesiredState"]


def test_a_fresh_job_starts_max_concurrent_lowest_slots() -> None:
    p = Pass(NOW)
    ServicePass(p, "s1", _job(2, 5), [], {"n1": NODE}).run()
    made = sorted(int(t.get("Slot") or 0) for t in p.tasks.values())
    assert made == [0, 1]
    assert {t["DesiredState"] for t in p.tasks.values()} == {"complete"}
    assert all(list(taskdocs.public_task(t, 1))[-1] == "JobIteration" for t in p.tasks.values())


def test_registry_auth_is_kept_but_never_shown() -> None:
    spec = specs.validate(
        {
            "Name": "p",
            "TaskTemplate": {"ContainerSpec": {"Image": "x", "PullOptions": {"RegistryAuth": "forged"}}},
        }
    )
    assert "PullOptions" not in spec["TaskTemplate"]["ContainerSpec"]  # only the header sets it
    specs.set_registry_auth(spec, "e30")
    assert specs.registry_auth(spec) == "e30"
    doc = {"ID": "s", "Spec": spec, "PreviousSpec": spec}
    shown = taskdocs.public_service(doc, 3)
    assert "PullOptions" not in str(shown)
    task = taskdocs.new_task("s", doc, NOW)
    assert specs.registry_auth(task["Spec"]) == "e30"  # the node gets it with its task
    assert "PullOptions" not in str(taskdocs.public_task(task, 1))
    specs.set_registry_auth(spec, "")
    assert specs.registry_auth(spec) == ""


@given(st.text(max_size=200))
@settings(max_examples=300, deadline=None)
def test_any_stored_registry_auth_decodes_or_is_refused(header: str) -> None:
    try:
        decode_registry_auth(header)
    except GoraeError as e:
        assert e.message.startswith("invalid X-Registry-Auth header: ")
