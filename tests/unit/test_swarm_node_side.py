"""The node side of swarm tasks, pure logic and in-process parts over the in-memory store: task state order,
the cluster data key, secrets/configs CRUD with dockerd's texts, the dispatcher's operations (forward-only
status writes, the assignments long poll and what a node is given, orphaned tasks), the container body made
from a task, the lines `service logs` writes; hypothesis on the secrets routes and the swarm-port ops."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gorae.api.secrets import SecretsRouter
from gorae.errors import Conflict, Forbidden, GoraeError, InvalidParameter, NotFound, SystemError_
from gorae.filters import Filters
from gorae.httpserver.message import Request, Response, StreamResponse
from gorae.swarm import datakey, taskstate
from gorae.swarm.agent import spec
from gorae.swarm.component import NodeContext
from gorae.swarm.dispatcher import Dispatcher, Orphaner, apply_status
from gorae.swarm.logbroker import LogBroker, LogMessage
from gorae.swarm.logs import LogsOptions, format_line, parse_tail
from gorae.swarm.secrets import CONFIGS, SECRETS, SecretStore, decode_data
from gorae.swarm.store.memory import MemoryStore
from gorae.swarm.store.types import Node, ReadTx, Secret, Service, Task, WriteTx

# -- task states ------------------------------------------------------------------------------------


def test_states_move_only_forward() -> None:
    order = list(taskstate.ORDER)
    assert order == [
        "new", "pending", "assigned", "accepted", "preparing", "ready", "starting", "running",
        "complete", "shutdown", "failed", "rejected", "remove", "orphaned",
    ]  # fmt: skip
    for i, old in enumerate(order):
        for j, new in enumerate(order):
            assert taskstate.moves_forward(old, new) is (j > i)
    assert taskstate.moves_forward(None, "new") is True
    assert taskstate.moves_forward("running", "bogus") is False
    assert [s for s in order if taskstate.is_terminal(s)] == order[order.index("complete") :]
    assert taskstate.desired_stop("shutdown") and taskstate.desired_stop("remove")
    assert not taskstate.desired_stop("running") and not taskstate.desired_stop("ready")


@given(st.dictionaries(st.sampled_from(["State", "Message", "Err", "Timestamp", "ContainerStatus", "PortStatus", "X"]), st.none() | st.integers() | st.text(max_size=5) | st.dictionaries(st.sampled_from(["ContainerID", "PID", "ExitCode"]), st.integers(-(2**40), 2**40) | st.text(max_size=3) | st.booleans()), max_size=6) | st.integers() | st.text())  # fmt: skip
def test_check_status_accepts_only_dockers_fields(raw: Any) -> None:
    try:
        out = taskstate.check_status(raw)
    except ValueError:
        return
    assert set(out) <= {"State", "Message", "Err", "Timestamp", "ContainerStatus", "PortStatus"}
    assert out["State"] in taskstate.ORDER
    for key in ("PID", "ExitCode"):
        value = out.get("ContainerStatus", {}).get(key)
        assert value is None or (type(value) is int and -(2**31) <= value < 2**31)


# -- the data key ---------------------------------------------------------------------------------


def test_sealed_data_opens_only_with_its_key_and_object(tmp_path: Path) -> None:
    key = datakey.DataKey(tmp_path / "swarm")
    sealed = key.seal(b"hunter2", "secret/abc")
    assert sealed.startswith("v1:") and b"hunter2" not in base64.b64decode(sealed[3:])
    assert key.open(sealed, "secret/abc") == b"hunter2"
    assert (tmp_path / "swarm" / "data.key").stat().st_mode & 0o777 == 0o600
    assert key.seal(b"hunter2", "secret/abc") != sealed  # a fresh nonce each time
    with pytest.raises(SystemError_, match="cannot decrypt"):
        key.open(sealed, "secret/other")  # moved onto another object
    with pytest.raises(SystemError_, match="cannot decrypt"):
        datakey.open_sealed(b"\0" * 32, sealed, "secret/abc")
    with pytest.raises(SystemError_, match="unknown format"):
        key.open("hunter2", "secret/abc")


def test_go_base64_errors() -> None:
    """encoding/base64 StdEncoding's positions (Go 1.22): bad byte, short quantum, bad padding, trailing."""
    assert decode_data("aGVsbG8=") == b"hello"
    assert decode_data("aGVs\nbG8=\r\n") == b"hello"  # Go skips CR and LF
    assert decode_data("") == b""
    cases = {"!!!": 0, "aGVs!G8=": 4, "aGVsbG8": 4, "a===": 1, "aG==x": 4, "aGV=a": 4, "aG=": 3, "aG=a": 2, "a": 0}
    for raw, pos in cases.items():
        with pytest.raises(InvalidParameter) as e:
            decode_data(raw)
        assert e.value.message == f"illegal base64 data at input byte {pos}", raw


@given(st.binary(max_size=40))
def test_go_base64_decodes_what_python_encodes(data: bytes) -> None:
    assert decode_data(base64.b64encode(data).decode()) == data


# -- secrets and configs ---------------------------------------------------------------------------


def _run(coro: Any) -> Any:
    return asyncio.new_event_loop().run_until_complete(coro)


@pytest.fixture
def stores(tmp_path: Path) -> tuple[MemoryStore, SecretStore, SecretStore]:
    mem = MemoryStore()
    key = datakey.DataKey(tmp_path / "swarm")
    return mem, SecretStore(SECRETS, lambda: mem, key), SecretStore(CONFIGS, lambda: mem, key)


def test_secrets_as_dockerd(stores: tuple[MemoryStore, SecretStore, SecretStore]) -> None:
    mem, secrets, configs = stores
    loop = asyncio.new_event_loop()
    run = loop.run_until_complete
    sid = run(secrets.create({"Name": "s1", "Labels": {"a": "b"}, "Data": "aGVsbG8="}))
    doc = run(secrets.inspect("s1"))
    assert doc == {
        "ID": sid,
        "Version": {"Index": 1},
        "CreatedAt": doc["CreatedAt"],
        "UpdatedAt": doc["CreatedAt"],
        "Spec": {"Name": "s1", "Labels": {"a": "b"}},
    }
    assert run(secrets.inspect(sid[:5])) == doc
    stored = run(mem.view(lambda tx: tx.get(Secret, sid)))
    assert "Data" not in stored.doc["Spec"] and b"hello" not in json.dumps(stored.doc).encode()
    errors = {
        json.dumps({"Name": "s1", "Data": "aGVsbG8="}): (
            Conflict, "rpc error: code = AlreadyExists desc = secret s1 already exists"),
        json.dumps({"Name": "s2"}): (
            InvalidParameter,
            "rpc error: code = InvalidArgument desc = secret data must be larger than 0 and less than 512000 bytes"),
        json.dumps({"Name": "", "Data": "aGVsbG8="}): (
            InvalidParameter, "rpc error: code = InvalidArgument desc = name must be provided"),
        json.dumps({"Name": "bad name!", "Data": "aGVsbG8="}): (
            InvalidParameter,
            "rpc error: code = InvalidArgument desc = invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, "
            "and the start and end character must be [a-zA-Z0-9]"),
        json.dumps({"Name": "s3", "Data": "!!!"}): (InvalidParameter, "illegal base64 data at input byte 0"),
        json.dumps([1]): (InvalidParameter, "json: cannot unmarshal array into Go value of type swarm.SecretSpec"),
        json.dumps({"Name": 5}): (
            InvalidParameter, "json: cannot unmarshal number into Go struct field SecretSpec.Name of type string"),
    }  # fmt: skip
    for body, (kind, text) in errors.items():
        with pytest.raises(kind) as e:
            run(secrets.create(json.loads(body)))
        assert e.value.message == text
    with pytest.raises(NotFound, match="^secret nope not found$"):
        run(secrets.inspect("nope"))
    with pytest.raises(InvalidParameter, match="^Invalid filter 'bogus'$"):
        run(secrets.list_objects(Filters({"bogus": ["x"]})))
    s4 = run(secrets.create({"Name": "s4", "Data": "aGVsbG8="}))
    assert run(secrets.inspect("s4"))["Spec"] == {"Name": "s4", "Labels": {}}
    # update: labels only, at the current version
    for bad_version in (None, "", "x", "²", "-1"):
        with pytest.raises(InvalidParameter, match="^invalid secret version$"):
            run(secrets.update("s4", bad_version, {"Name": "s4"}))
    with pytest.raises(SystemError_, match="update out of sequence"):
        run(secrets.update("s4", "1", {"Name": "s4", "Labels": {"x": "y"}, "Data": "aGVsbG8="}))
    only_labels = "rpc error: code = InvalidArgument desc = only updates to Labels are allowed"
    for body in ({"Name": "s4", "Data": "aGVsbG9v"}, {"Name": "s5"}):
        with pytest.raises(InvalidParameter) as e:
            run(secrets.update("s4", "2", body))
        assert e.value.message == only_labels
    run(secrets.update("s4", "2", {"Name": "s4", "Labels": {"x": "y"}, "Data": "aGVsbG8="}))
    assert run(secrets.inspect("s4"))["Spec"] == {"Name": "s4", "Labels": {"x": "y"}}
    names = lambda f: [s["Spec"]["Name"] for s in run(secrets.list_objects(Filters(f)))]  # noqa: E731
    assert sorted(names({})) == ["s1", "s4"]
    assert sorted(names({"name": ["s"]})) == ["s1", "s4"]
    assert names({"names": ["s1"]}) == ["s1"]
    assert names({"label": ["x"]}) == ["s4"]
    assert names({"label": ["a=b"]}) == ["s1"]
    assert names({"id": [s4[:6]]}) == ["s4"]
    # in use by a service: refused with swarmkit's text
    svc = {"Name": "web", "TaskTemplate": {"ContainerSpec": {"Secrets": [{"SecretID": sid, "SecretName": "s1"}]}}}

    async def add(tx: WriteTx) -> None:
        await tx.create(Service("svc1", {"ID": "svc1", "Spec": svc}))
        await tx.create(Service("svc2", {"ID": "svc2", "Spec": {**svc, "Name": "api"}}))

    run(mem.update(add))
    with pytest.raises(InvalidParameter) as e:
        run(secrets.remove("s1"))
    assert e.value.message == (
        "rpc error: code = InvalidArgument desc = secret 's1' is in use by the following services: api, web"
    )
    run(secrets.remove("s4"))
    with pytest.raises(NotFound, match="^secret s4 not found$"):
        run(secrets.remove("s4"))
    # configs show their data, with their own limit
    cid = run(configs.create({"Name": "c1", "Data": "aGVsbG8="}))
    assert run(configs.inspect(cid))["Spec"] == {"Name": "c1", "Labels": {}, "Data": "aGVsbG8="}
    with pytest.raises(InvalidParameter) as e:
        run(configs.create({"Name": "c2"}))
    assert e.value.message.endswith("config data must be larger than 0 and less than 1024000 bytes")
    loop.close()


SECRET_BODIES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=5), inner, max_size=2),
    max_leaves=6,
) | st.fixed_dictionaries(
    {},
    optional={
        "Name": st.text(max_size=70) | st.integers(),
        "Labels": st.dictionaries(st.text(max_size=4), st.text(max_size=4) | st.integers(), max_size=2),
        "Data": st.text(max_size=12) | st.binary(max_size=8).map(lambda b: base64.b64encode(b).decode()),
        "Driver": st.none() | st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=1),
    },
)


def _call(loop: asyncio.AbstractEventLoop, handler: Any, body: Any, query: dict[str, list[str]], params: dict[str, str]) -> Response | GoraeError:  # fmt: skip
    req = Request(method="POST", path="/", query=query, params=params)
    req._body_cache = json.dumps(body).encode()  # noqa: SLF001 - the body as the server would have read it
    try:
        return loop.run_until_complete(handler(req))  # type: ignore[no-any-return]
    except GoraeError as e:
        return e


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=SECRET_BODIES,
    version=st.none() | st.text(max_size=4) | st.integers(-1, 5).map(str),
    ref=st.sampled_from(["s1", "", "nope", "x"]),
    filters=st.text(max_size=20),
    plural=st.sampled_from(["secrets", "configs"]),
)
def test_secret_routes_hostile(
    stores: tuple[MemoryStore, SecretStore, SecretStore], body: Any, version: str | None, ref: str, filters: str, plural: str
) -> None:
    _, secrets, configs = stores
    loop = asyncio.new_event_loop()
    router = SecretsRouter(secrets, configs)
    handlers = {(m, p): h for m, p, h in router.routes()}
    query = {} if version is None else {"version": [version]}
    for method, path, params in (
        ("POST", f"/{plural}/create", {}),
        ("POST", f"/{plural}/{{id}}/update", {"id": ref}),
        ("GET", f"/{plural}/{{id}}", {"id": ref}),
        ("DELETE", f"/{plural}/{{id}}", {"id": ref}),
    ):
        r = _call(loop, handlers[(method, path)], body, query, params)
        assert r.status in {200, 201, 204, 400, 404, 409, 500, 501}, (path, r)
        if isinstance(r, GoraeError) and r.status == 500:
            assert r.message == "rpc error: code = Unknown desc = update out of sequence"
    r = _call(loop, handlers[("GET", f"/{plural}")], None, {"filters": [filters]}, {})
    assert r.status in {200, 400}, r
    loop.close()


# -- the dispatcher ----------------------------------------------------------------------------------


def _task(task_id: str, node: str, state: str = "assigned", **extra: Any) -> Task:
    doc = {
        "ID": task_id,
        "ServiceID": "svc",
        "Slot": 1,
        "NodeID": node,
        "Spec": {"ContainerSpec": {"Image": "busybox"}},
        "Status": {"State": state, "Message": "scheduler assigned task to node"},
        "DesiredState": "running",
        "_gorae": {"ServiceName": "web"},
        **extra,
    }
    return Task(task_id, doc)


async def _put(mem: MemoryStore, *objs: Any) -> None:
    async def write(tx: WriteTx) -> None:
        for o in objs:
            await tx.create(o)

    await mem.update(write)


async def _get(mem: MemoryStore, task_id: str) -> Task:
    async def read(tx: ReadTx) -> Task | None:
        return await tx.get(Task, task_id)

    t = await mem.view(read)
    assert t is not None
    return t


def _dispatcher(tmp_path: Path) -> tuple[MemoryStore, Dispatcher, SecretStore]:
    mem = MemoryStore()
    key = datakey.DataKey(tmp_path / "swarm")
    secrets = SecretStore(SECRETS, lambda: mem, key)
    return mem, Dispatcher(secrets, SecretStore(CONFIGS, lambda: mem, key), LogBroker()), secrets


async def _no_manager(request: dict[str, Any]) -> dict[str, Any]:
    raise AssertionError("not called")


def _ctx(mem: MemoryStore) -> NodeContext:
    return NodeContext("m", "c", "manager", "127.0.0.1", mem, _no_manager)


def test_status_reports_are_written_only_forward_and_only_for_the_nodes_own_tasks(tmp_path: Path) -> None:
    mem, disp, _ = _dispatcher(tmp_path)

    async def scenario() -> None:
        await disp.start(_ctx(mem))
        await _put(mem, _task("t1", "n1"), _task("t2", "n2"))

        def up(task_id: str, state: str, **kw: Any) -> dict[str, Any]:
            return {"ID": task_id, "Status": {"State": state, "Message": state, **kw}}

        cs = {"ContainerID": "c" * 64, "PID": 42, "ExitCode": 0}
        r = await disp.task_status({"updates": [up("t1", "running", ContainerStatus=cs), up("t2", "running")]}, "n1", "")
        assert r == {"written": 1}
        t1 = await _get(mem, "t1")
        status = t1.doc["Status"]
        assert status == {
            "Timestamp": status["Timestamp"], "State": "running", "Message": "running",
            "ContainerStatus": cs, "PortStatus": {},
        }  # fmt: skip
        assert (await _get(mem, "t2")).doc["Status"]["State"] == "assigned"  # another node's task
        assert await disp.task_status({"updates": [up("t1", "starting")]}, "n1", "") == {"written": 0}
        assert (await _get(mem, "t1")).doc["Status"]["State"] == "running"
        assert await disp.task_status({"updates": [up("gone", "running")]}, "n1", "") == {"written": 0}
        for bad in ({"updates": "x"}, {"updates": [{"ID": 3}]}, {"updates": [up("t1", "bogus")]}):
            with pytest.raises(InvalidParameter):
                await disp.task_status(bad, "n1", "")
        await disp.stop()

    _run(scenario())


def test_assignments_long_poll_and_what_a_node_is_given(tmp_path: Path) -> None:
    mem, disp, secrets = _dispatcher(tmp_path)

    async def scenario() -> None:
        await disp.start(_ctx(mem))
        sid = await secrets.create({"Name": "s1", "Data": base64.b64encode(b"pw").decode()})
        other = await secrets.create({"Name": "s2", "Data": base64.b64encode(b"no").decode()})
        uses = {"ContainerSpec": {"Image": "busybox", "Secrets": [{"SecretID": sid, "SecretName": "s1"}]}}
        await _put(
            mem,
            _task("t1", "n1", Spec=uses),
            _task("t0", "n1", state="pending"),  # not yet assigned: not given
            _task("t9", "n2", Spec={"ContainerSpec": {"Secrets": [{"SecretID": other}]}}),
        )
        first = await disp.assignments({"have": None}, "n1", "")
        assert [t["ID"] for t in first["tasks"]] == ["t1"]
        assert first["tasks"][0]["ServiceName"] == "web" and "_gorae" not in first["tasks"][0]
        assert [(s["Name"], base64.b64decode(s["Data"])) for s in first["secrets"]] == [("s1", b"pw")]
        assert first["configs"] == [] and first["logs"] == []
        # nothing changed: the poll waits; a change for this node answers it
        poll = asyncio.ensure_future(disp.assignments({"have": first["digest"]}, "n1", ""))
        await asyncio.sleep(0)
        for _ in range(5):
            await asyncio.sleep(0)
        assert not poll.done()
        await _put(mem, _task("t2", "n1"))
        second = await asyncio.wait_for(poll, 5)
        assert [t["ID"] for t in second["tasks"]] == ["t1", "t2"] and second["digest"] != first["digest"]
        # a task that is done no longer gets its secrets
        await disp.task_status({"updates": [{"ID": "t1", "Status": {"State": "complete"}}]}, "n1", "")
        third = await disp.assignments({"have": None}, "n1", "")
        assert third["secrets"] == []
        # a log subscription for the node wakes its poll
        poll = asyncio.ensure_future(disp.assignments({"have": third["digest"]}, "n1", ""))
        for _ in range(5):
            await asyncio.sleep(0)
        sub = disp.broker.subscribe({"n1": [{"ID": "t2", "ServiceID": "svc"}]}, {"stdout": True})
        fourth = await asyncio.wait_for(poll, 5)
        assert fourth["logs"] == [{"ID": sub.id, "Tasks": [{"ID": "t2", "ServiceID": "svc"}], "Options": {"stdout": True}}]
        line = base64.b64encode(b"hi\n").decode()
        msg = {"task": "t2", "service": "svc", "stream": 1, "ts": 5, "line": line}
        assert await disp.log_push({"sub": sub.id, "messages": [msg], "close": True}, "n1", "") == {"gone": False}
        assert await sub.queue.get() == [LogMessage("n1", "svc", "t2", 1, 5, b"hi\n")]
        assert await sub.queue.get() is None
        # a node speaks only for its own tasks of the subscription
        foreign = {**msg, "task": "t9"}
        assert await disp.log_push({"sub": sub.id, "messages": [foreign]}, "n1", "") == {"gone": False}
        assert sub.queue.empty()
        assert await disp.log_push({"sub": sub.id, "messages": [msg]}, "n2", "") == {"gone": True}
        disp.broker.unsubscribe(sub)
        assert await disp.log_push({"sub": sub.id, "messages": []}, "n1", "") == {"gone": True}
        with pytest.raises(InvalidParameter):
            await disp.log_push({"sub": sub.id, "messages": [{"task": 1}]}, "n1", "")
        await disp.stop()

    _run(scenario())


def test_a_long_poll_is_answered_only_for_news_to_its_node(tmp_path: Path) -> None:
    """swarmkit's TasksEqualStable: a status the node reported itself (or another node's task changing) does
    not answer a node's poll, so a heal's burst of status writes is not echoed back as whole snapshots to
    every node; a task assigned to it, a DesiredState change, a removal do."""
    mem, disp, _ = _dispatcher(tmp_path)

    async def change(task_id: str, **fields: Any) -> None:
        async def write(tx: WriteTx) -> None:
            task = await tx.get(Task, task_id)
            assert task is not None
            await tx.update(task.with_doc({**task.doc, **fields}))

        await mem.update(write)

    async def delete(task_id: str) -> None:
        async def write(tx: WriteTx) -> None:
            await tx.delete(Task, task_id)

        await mem.update(write)

    async def answered(poll: asyncio.Future[dict[str, Any]]) -> bool:
        for _ in range(20):
            await asyncio.sleep(0)
        return poll.done()

    async def scenario() -> None:
        await disp.start(_ctx(mem))
        await _put(mem, _task("t1", "n1"), _task("t2", "n2"), _task("t3", "", state="pending"))
        have = (await disp.assignments({"have": None}, "n1", ""))["digest"]
        poll = asyncio.ensure_future(disp.assignments({"have": have}, "n1", ""))
        assert not await answered(poll)
        await disp.task_status({"updates": [{"ID": "t1", "Status": {"State": "running"}}]}, "n1", "")
        await change("t1", UpdatedAt="2026-12-06T00:00:00Z", _gorae={"ServiceName": "web", "RunningAt": 5})
        await change("t2", DesiredState="shutdown")
        await change("t3", Status={"State": "pending", "Message": "pending task scheduling"})
        assert not await answered(poll)
        assert (await disp.assignments({"have": have, "wait": False}, "n1", ""))["digest"] == have
        await change("t1", DesiredState="shutdown")
        answer = await asyncio.wait_for(poll, 5)
        assert [(t["ID"], t["DesiredState"], t["Status"]["State"]) for t in answer["tasks"]] == [
            ("t1", "shutdown", "running")
        ]
        for news in (
            lambda: change("t3", NodeID="n1", Status={"State": "assigned"}),  # assigned to it
            lambda: delete("t1"),
        ):
            poll = asyncio.ensure_future(disp.assignments({"have": answer["digest"]}, "n1", ""))
            assert not await answered(poll)
            await news()
            answer = await asyncio.wait_for(poll, 5)
        assert [t["ID"] for t in answer["tasks"]] == ["t3"]
        await disp.stop()

    _run(scenario())


def test_tasks_of_a_node_down_long_enough_are_orphaned() -> None:
    mem = MemoryStore()

    async def scenario() -> None:
        await _put(
            mem,
            Node("n1", {"ID": "n1", "Status": {"State": "down"}}),
            Node("n2", {"ID": "n2", "Status": {"State": "ready"}}),
            _task("t1", "n1", state="running"),
            _task("t2", "n2", state="running"),
            _task("t3", "n1", state="orphaned"),
        )
        orphaner = Orphaner(after=60.0)
        assert await orphaner.check(mem, now=1000.0) == 0  # down from now on
        assert await orphaner.check(mem, now=1059.0) == 0
        assert await orphaner.check(mem, now=1060.0) == 1
        t1 = await _get(mem, "t1")
        assert t1.doc["Status"]["State"] == "orphaned"
        assert t1.doc["Status"]["Message"] == "scheduler assigned task to node"
        assert (await _get(mem, "t2")).doc["Status"]["State"] == "running"

    _run(scenario())


def test_apply_status_keeps_dockers_fields() -> None:
    doc = {"ID": "t", "Status": {"State": "starting"}}
    assert apply_status(doc, {"State": "starting"}) is None
    out = apply_status(doc, {"State": "failed", "Err": "task: non-zero exit (1)", "Timestamp": "T"})
    assert out is not None
    assert out["Status"] == {"Timestamp": "T", "State": "failed", "Err": "task: non-zero exit (1)", "Message": "", "PortStatus": {}}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    request=st.dictionaries(
        st.sampled_from(["op", "have", "wait", "updates", "sub", "messages", "close"]),
        st.none() | st.booleans() | st.integers() | st.text(max_size=5)
        | st.lists(st.dictionaries(st.sampled_from(["ID", "Status", "task", "service", "ts", "line", "stream"]),
                                   st.none() | st.integers() | st.text(max_size=5)
                                   | st.dictionaries(st.sampled_from(["State", "Message"]), st.sampled_from(["running", "x", ""])),
                                   max_size=4), max_size=3),
        max_size=6,
    ),
)  # fmt: skip
def test_swarm_port_ops_hostile(tmp_path: Path, request: dict[str, Any]) -> None:
    mem, disp, _ = _dispatcher(tmp_path)

    async def scenario() -> None:
        await disp.start(_ctx(mem))
        await _put(mem, _task("t1", "n1"))
        for name, op in disp.ops().items():
            req = dict(request, wait=False) if name == "assignments" else request
            try:
                answer = await asyncio.wait_for(op(req, "n1", "127.0.0.1"), 20)
            except (InvalidParameter, Forbidden):
                continue
            assert isinstance(answer, dict)
        state = (await _get(mem, "t1")).doc["Status"]["State"]
        assert state in ("assigned", "running")
        await disp.stop()

    _run(scenario())


# -- a task as a container ---------------------------------------------------------------------------


def test_the_container_body_of_a_task() -> None:
    task = {
        "ID": "t1",
        "ServiceID": "s1",
        "ServiceName": "web",
        "NodeID": "n1",
        "Slot": 2,
        "Labels": {"from-task": "1"},
        "Spec": {
            "ContainerSpec": {
                "Image": "busybox:latest",
                "Labels": {"com.docker.swarm.task.id": "forged", "app": "x"},
                "Command": ["/bin/sh"],
                "Args": ["-c", "true"],
                "Env": ["A=1"],
                "Dir": "/srv",
                "User": "nobody",
                "Hostname": "h",
                "StopSignal": "SIGINT",
                "StopGracePeriod": 3_000_000_000,
                "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1_000_000_000},
                "Mounts": [{"Type": "volume", "Source": "v", "Target": "/data"}],
            },
            "Resources": {"Limits": {"MemoryBytes": 1 << 20, "NanoCPUs": 500_000_000, "Pids": 9}},
        },
    }
    body = spec.create_body(task, [("/x/secret-0", "/run/secrets/s")])
    assert body == {
        "Image": "busybox:latest",
        "Labels": {
            "app": "x", "from-task": "1", "com.docker.swarm.task": "", "com.docker.swarm.task.id": "t1",
            "com.docker.swarm.task.name": "web.2.t1", "com.docker.swarm.node.id": "n1",
            "com.docker.swarm.service.id": "s1", "com.docker.swarm.service.name": "web",
        },
        "Env": ["A=1"],
        "Tty": False,
        "OpenStdin": False,
        "Hostname": "h",
        "User": "nobody",
        "WorkingDir": "/srv",
        "StopSignal": "SIGINT",
        "Entrypoint": ["/bin/sh"],
        "Cmd": ["-c", "true"],
        "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1_000_000_000},
        "StopTimeout": 3,
        "HostConfig": {
            "RestartPolicy": {"Name": "no"},
            "Mounts": [
                {"Type": "volume", "Source": "v", "Target": "/data"},
                {"Type": "bind", "Source": "/x/secret-0", "Target": "/run/secrets/s", "ReadOnly": True},
            ],
            "Memory": 1 << 20,
            "NanoCpus": 500_000_000,
            "PidsLimit": 9,
        },
    }  # fmt: skip
    assert spec.task_name({**task, "Slot": 0}) == "web.n1.t1"  # global: the node in the slot's place
    assert spec.stop_grace(task) == 3 and spec.stop_grace({}) == 10
    assert spec.secret_target({"File": {"Name": "s"}}) == "/run/secrets/s"
    assert spec.secret_target({"File": {"Name": "/etc/s"}}) == "/etc/s"
    assert spec.config_target({"File": {"Name": "c1"}}) == "/c1"
    assert spec.file_mode({"File": {"Name": "s", "UID": "5", "GID": "6", "Mode": 0o400}}) == (0o400, 5, 6)
    assert spec.file_mode({}) == (0o444, 0, 0)
    only_args = spec.create_body({**task, "Spec": {"ContainerSpec": {"Image": "i", "Args": ["a"]}}}, [])
    assert only_args["Cmd"] == ["a"] and "Entrypoint" not in only_args


# -- service logs lines --------------------------------------------------------------------------------


def test_service_log_lines_as_dockerd_writes_them() -> None:
    msg = LogMessage("n1", "s1", "t1", 1, 1_700_000_000_000_000_001, b"hello\n")
    ctx = "com.docker.swarm.node.id=n1,com.docker.swarm.service.id=s1,com.docker.swarm.task.id=t1"
    assert format_line(msg, LogsOptions()) == b"hello\n"
    assert format_line(msg, LogsOptions(details=True)) == f"{ctx} hello\n".encode()
    assert format_line(msg, LogsOptions(details=True, timestamps=True)) == (
        f"2023-11-14T22:13:20.000000001Z {ctx} hello\n".encode()
    )
    odd = LogMessage("n1", "s1", "t1", 1, 0, b"x\n", attrs=(("a b", "c,d=e"),))
    assert format_line(odd, LogsOptions(details=True)).startswith(b"a+b=c%2Cd%3De,com.docker.swarm.node.id=n1,")
    assert parse_tail("all") is None and parse_tail("") is None and parse_tail("3") == 3 and parse_tail("-1") is None
    with pytest.raises(SystemError_, match='tail value must be a positive integer or "all"'):
        parse_tail("x")


@settings(max_examples=100, deadline=None)
@given(
    query=st.dictionaries(
        st.sampled_from(["stdout", "stderr", "follow", "tail", "since", "timestamps", "details"]),
        st.lists(st.sampled_from(["1", "0", "true", "all", "-1", "x", "", "3", "1700000000.5", "2023-01-01T00:00:00Z"]) | st.text(max_size=6), min_size=1, max_size=2),
        max_size=7,
    ),
    ref=st.sampled_from(["svc1", "web", "sv", "", "nope", "t1"]),
)  # fmt: skip
def test_log_routes_hostile(query: dict[str, list[str]], ref: str) -> None:
    """Any query on the logs routes: a stream (nodes that serve nothing close at once) or dockerd's errors."""
    from gorae.api.swarmlogs import SwarmLogsRouter
    from gorae.swarm.logs import SwarmLogs

    mem = MemoryStore()
    broker = LogBroker()
    router = SwarmLogsRouter(SwarmLogs(lambda: mem, broker))

    async def scenario() -> None:
        await _put(mem, Service("svc1", {"ID": "svc1", "Spec": {"Name": "web"}}), _task("t1", "n1", state="pending"))
        for handler in (router.service_logs, router.task_logs):
            req = Request(method="GET", path="/", query=query, params={"id": ref})
            try:
                resp = await handler(req)
            except GoraeError as e:
                assert e.status in (400, 404, 500), e
                continue
            assert resp is not None and resp.status == 200
            assert isinstance(resp, StreamResponse) and resp.chunks is not None
            if not req.qbool("follow"):
                assert [c async for c in resp.chunks] == []
                continue
            # following: nothing comes (no task is placed) until the client goes away
            it = aiter(resp.chunks)
            first = asyncio.ensure_future(anext(it))
            for _ in range(5):
                await asyncio.sleep(0)
            assert not first.done()
            first.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await first
            await it.aclose()  # type: ignore[attr-defined]
        assert broker._subs == {}  # noqa: SLF001 - every subscription ended with its stream

    _run(scenario())


def test_the_data_key_goes_only_to_managers(tmp_path: Path) -> None:
    mem, disp, secrets = _dispatcher(tmp_path)

    async def scenario() -> None:
        await disp.start(_ctx(mem))
        await _put(
            mem,
            Node("m2", {"ID": "m2", "Spec": {"Role": "manager"}}),
            Node("w1", {"ID": "w1", "Spec": {"Role": "worker"}}),
        )
        answer = await disp.data_key({}, "m2", "")
        key = base64.b64decode(answer["key"])
        assert key == secrets.key.get() and len(key) == 32
        for node in ("w1", "gone"):
            with pytest.raises(Forbidden, match="only managers may have the cluster data key"):
                await disp.data_key({}, node, "")
        # a joining manager keeps it: what one manager sealed, the other opens
        other = datakey.DataKey(tmp_path / "other")
        other.install(key)
        assert other.open(secrets.key.seal(b"pw", "secret/x"), "secret/x") == b"pw"
        with pytest.raises(SystemError_):
            other.install(b"short")
        await disp.stop()

    _run(scenario())


def test_a_manager_that_joins_takes_the_clusters_data_key(tmp_path: Path) -> None:
    """A second manager never makes its own key: it fetches the first's over the swarm port (`data_key`)."""
    mem = MemoryStore()
    first = Dispatcher(
        SecretStore(SECRETS, lambda: mem, datakey.DataKey(tmp_path / "a")),
        SecretStore(CONFIGS, lambda: mem, datakey.DataKey(tmp_path / "a")),
        LogBroker(),
    )
    joined_key = datakey.DataKey(tmp_path / "b")
    joined = Dispatcher(SecretStore(SECRETS, lambda: mem, joined_key), SecretStore(CONFIGS, lambda: mem, joined_key), LogBroker())
    calls: list[str] = []

    async def call_at(addr: str, request: dict[str, Any]) -> dict[str, Any]:
        calls.append(addr)
        return await first.ops()[request["op"]](request, "m2", "10.0.0.2")

    async def scenario() -> None:
        await _put(mem, Node("m1", {"ID": "m1", "Spec": {"Role": "manager"}, "ManagerStatus": {"Addr": "10.0.0.1:2377"}}))
        await first.start(NodeContext("m1", "c", "manager", "10.0.0.1", mem, _no_manager))  # makes the key
        assert (tmp_path / "a" / "data.key").exists()
        await _put(mem, Node("m2", {"ID": "m2", "Spec": {"Role": "manager"}, "ManagerStatus": {"Addr": "10.0.0.2:2377"}}))
        ctx = NodeContext("m2", "c", "manager", "10.0.0.2", mem, _no_manager, call_at=call_at)
        await joined.start(ctx)
        assert joined._key_fetch is not None  # noqa: SLF001
        await asyncio.wait_for(joined._key_fetch, 5)  # noqa: SLF001
        assert calls == ["10.0.0.1:2377"]
        assert joined_key.get() == datakey.DataKey(tmp_path / "a").get()
        await first.stop()
        await joined.stop()

    _run(scenario())
    # while it waits for the key, it makes none of its own
    waiting = datakey.DataKey(tmp_path / "c")
    waiting.awaited = True
    with pytest.raises(GoraeError, match="has not received the cluster data key yet"):
        waiting.get()
    assert not waiting.exists()
