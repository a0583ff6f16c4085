"""`/services` and `/tasks` under hostile input (hypothesis): random and spec-shaped JSON bodies, versions,
rollback and registryAuthFrom values, filters and boolean flags through `ServicesRouter` over a
`ServiceControl` on the in-memory store. Every answer is a response or a GoraeError with a status dockerd
uses for it, never a crash; whatever is stored, the orchestrator and scheduler then handle. Plus the pure
parsers: the Go type check and the constraint syntax."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gorae.api.services import ServicesRouter
from gorae.errors import GoraeError, InvalidParameter
from gorae.httpserver.message import Request, Response
from gorae.swarm.services.constraints import parse_constraints
from gorae.swarm.services.control import ServiceControl
from gorae.swarm.services.orchestrator import Orchestrator
from gorae.swarm.services.scheduler import Scheduler
from gorae.swarm.services.schema import check_types
from gorae.swarm.services.spec import validate, with_defaults
from gorae.swarm.store.memory import MemoryStore
from gorae.swarm.store.types import Node, WriteTx

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**65), 2**65)
    | st.floats(allow_nan=False)
    | st.text(max_size=6)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


def _shaped(fields: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Dicts with some of `fields` (each a strategy), other keys and values random."""
    return st.fixed_dictionaries({}, optional={k: v | JSON for k, v in fields.items()})


CONTAINER = _shaped(
    {
        "Image": st.sampled_from(["busybox", "", "a:b"]),
        "Args": st.lists(st.text(max_size=4), max_size=3),
        "Env": st.lists(st.text(max_size=4), max_size=2),
    }
)
UPDATE = _shaped(
    {
        "Parallelism": st.integers(-1, 3),
        "Delay": st.integers(-1, 10**9),
        "FailureAction": st.sampled_from(["pause", "continue", "rollback", "x"]),
        "Monitor": st.integers(-1, 10**9),
        "Order": st.sampled_from(["stop-first", "start-first", "x"]),
        "MaxFailureRatio": st.floats(-1, 2),
    }
)
TEMPLATE = _shaped(
    {
        "ContainerSpec": CONTAINER,
        "RestartPolicy": _shaped(
            {
                "Condition": st.sampled_from(["none", "on-failure", "any", "x", ""]),
                "Delay": st.integers(-1, 10**10),
                "MaxAttempts": st.integers(-1, 3),
                "Window": st.integers(-1, 10**10),
            }
        ),
        "Placement": _shaped(
            {
                "Constraints": st.lists(
                    st.sampled_from(
                        ["node.role==manager", "node.labels.a!=b", "bogus", "node.x==y", "a==b c"]
                    ),
                    max_size=2,
                ),
                "Preferences": st.lists(
                    st.fixed_dictionaries(
                        {"Spread": st.fixed_dictionaries({"SpreadDescriptor": st.text(max_size=12)})}
                    ),
                    max_size=2,
                ),
                "MaxReplicas": st.integers(-1, 3),
            }
        ),
        "Resources": _shaped(
            {
                "Reservations": _shaped(
                    {"NanoCPUs": st.integers(-1, 4 * 10**9), "MemoryBytes": st.integers(-1, 2**34)}
                )
            }
        ),
        "Runtime": st.sampled_from(["container", "plugin", "x", ""]),
        "ForceUpdate": st.integers(-1, 5),
    }
)
SPECS = _shaped(
    {
        "Name": st.sampled_from(["web", "api", "", "bad name", "a" * 64, "UP"]),
        "Labels": st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
        "TaskTemplate": TEMPLATE,
        "Mode": _shaped(
            {
                "Replicated": _shaped({"Replicas": st.integers(-1, 4)}),
                "Global": st.just({}),
                "replicated": _shaped({"Replicas": st.integers(0, 4)}),
            }
        ),
        "UpdateConfig": UPDATE,
        "RollbackConfig": UPDATE,
    }
)
BODIES = SPECS | JSON
CREATE_STATUSES = {201, 400, 409, 500, 501}


class World:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.store = MemoryStore()
        self.router = ServicesRouter(ServiceControl(lambda: self.store))

        async def seed(tx: WriteTx) -> None:
            doc = {
                "ID": "n1",
                "Spec": {"Labels": {"a": "b"}, "Role": "manager", "Availability": "active"},
                "Description": {"Hostname": "h", "Resources": {"NanoCPUs": 10**9, "MemoryBytes": 2**30}},
                "Status": {"State": "ready"},
            }
            await tx.create(Node("n1", doc))

        self.loop.run_until_complete(self.store.update(seed))

    def call(
        self, handler: Any, body: Any = None, query: dict[str, list[str]] | None = None, ref: str = ""
    ) -> Response | GoraeError:
        req = Request(method="POST", path="/", query=query or {}, params={"id": ref})
        req._body_cache = b"" if body is None else json.dumps(body).encode()  # noqa: SLF001
        try:
            return self.loop.run_until_complete(handler(req))  # type: ignore[no-any-return]
        except GoraeError as e:
            return e

    def settle(self) -> None:
        for part in (Orchestrator(), Scheduler(), Orchestrator(), Scheduler()):
            self.loop.run_until_complete(part.run_once(self.store))

    def close(self) -> None:
        self.loop.close()


def _message(r: Response | GoraeError) -> str:
    return r.message if isinstance(r, GoraeError) else ""


@settings(max_examples=150, deadline=None)
@given(bodies=st.lists(BODIES, min_size=1, max_size=3))
def test_create_hostile(bodies: list[Any]) -> None:
    w = World()
    try:
        for body in bodies:
            r = w.call(w.router.create, body)
            assert r.status in CREATE_STATUSES, r
            if r.status == 500:
                assert _message(r).startswith("rpc error: code = Unknown desc = "), r
            if r.status == 409:
                assert "name conflicts with an existing object" in _message(r)
            w.settle()  # whatever was stored, the components handle
        listed = w.call(w.router.list_services, query={"status": ["1"]})
        assert isinstance(listed, Response) and listed.status == 200
        tasks = w.call(w.router.list_tasks)
        assert isinstance(tasks, Response) and tasks.status == 200
    finally:
        w.close()


@settings(max_examples=120, deadline=None)
@given(
    body=BODIES,
    version=st.none() | st.text(max_size=4) | st.integers(-1, 6).map(str),
    rollback=st.none() | st.sampled_from(["previous", "", "x"]),
    auth=st.none() | st.sampled_from(["spec", "previous-spec", "x"]),
    ref=st.sampled_from(["web", "nope", ""]),
)
def test_update_hostile(
    body: Any, version: str | None, rollback: str | None, auth: str | None, ref: str
) -> None:
    w = World()
    try:
        made = w.call(
            w.router.create, {"Name": "web", "TaskTemplate": {"ContainerSpec": {"Image": "busybox"}}}
        )
        assert made.status == 201
        w.settle()
        query: dict[str, list[str]] = {}
        for key, value in (("version", version), ("rollback", rollback), ("registryAuthFrom", auth)):
            if value is not None:
                query[key] = [value]
        r = w.call(w.router.update, body, query, ref)
        assert r.status in {200, 400, 404, 500, 501}, r
        if r.status == 500:
            assert _message(r) in (
                "rpc error: code = Unknown desc = update out of sequence",
                "unsupported registryAuthFrom value",
                f"unrecognized rollback option {rollback}",
            ) or _message(r).startswith("rpc error: code = Unknown desc = "), r
        w.settle()
        inspected = w.call(w.router.inspect, query={"insertDefaults": ["true"]}, ref="web")
        assert isinstance(inspected, Response) and inspected.status == 200
    finally:
        w.close()


@settings(max_examples=100, deadline=None)
@given(
    filters=JSON,
    flag=st.text(max_size=5),
    which=st.sampled_from(["services", "tasks"]),
)
def test_list_filters_and_flags_hostile(filters: Any, flag: str, which: str) -> None:
    w = World()
    try:
        handler = w.router.list_services if which == "services" else w.router.list_tasks
        r = w.call(handler, query={"filters": [json.dumps(filters)], "status": [flag]})
        assert r.status in {200, 400, 404, 500}, r
        if r.status == 500:
            assert _message(r).startswith("Invalid desired-state filter: ")
        r = w.call(w.router.inspect, query={"insertDefaults": [flag]}, ref="nope")
        assert r.status in {400, 404}
    finally:
        w.close()


@given(body=BODIES)
def test_type_check_and_validation_raise_only_client_errors(body: Any) -> None:
    try:
        spec = validate(body)
    except GoraeError as e:
        assert e.status in (400, 500, 501)
        return
    assert spec["TaskTemplate"]["Runtime"] == "container"
    assert spec["TaskTemplate"]["ContainerSpec"]["Image"]
    assert list(spec["Mode"]) in (["Replicated"], ["Global"])
    assert with_defaults(spec)["UpdateConfig"]["Order"] in ("stop-first", "start-first")


def test_type_check_texts() -> None:
    cases = {
        '{"Name": 5}': "json: cannot unmarshal number into Go struct field ServiceSpec.Name of type string",
        '{"Mode": {"Replicated": {"Replicas": -1}}}': (
            "json: cannot unmarshal number -1 into Go struct field ReplicatedService.Mode.Replicated.Replicas of "
            "type uint64"
        ),
        '{"TaskTemplate": {"RestartPolicy": {"Delay": 1.5}}}': (
            "json: cannot unmarshal number 1.5 into Go struct field RestartPolicy.TaskTemplate.RestartPolicy.Delay "
            "of type time.Duration"
        ),
        '{"TaskTemplate": {"Placement": {"Preferences": [{"Spread": {"SpreadDescriptor": 3}}]}}}': (
            "json: cannot unmarshal number into Go struct field SpreadOver.TaskTemplate.Placement.Preferences."
            "Spread.SpreadDescriptor of type string"
        ),
        "[]": "json: cannot unmarshal array into Go value of type swarm.ServiceSpec",
        '"x"': "json: cannot unmarshal string into Go value of type swarm.ServiceSpec",
    }
    for raw, text in cases.items():
        try:
            check_types(json.loads(raw))
        except InvalidParameter as e:
            assert e.message == text
        else:
            raise AssertionError(raw)
    assert check_types({"mode": {"replicated": {"replicas": 2}}}) == {"Mode": {"Replicated": {"Replicas": 2}}}


@given(expr=st.text(max_size=20))
def test_constraint_parser_hostile(expr: str) -> None:
    try:
        (c,) = parse_constraints([expr])
    except ValueError as e:
        assert str(e) == "constraint expected one operator from ==, !=" or str(e).startswith(
            ("key '", "value '")
        )
        return
    assert c.key and c.value and ("==" in expr or "!=" in expr)


def test_constraint_texts() -> None:
    for expr, text in (
        ("bogus", "constraint expected one operator from ==, !="),
        ("node.labels.a b==c", "key 'node.labels.a b' is invalid"),
        ("node.role==m@n", "value 'm@n' is invalid"),
    ):
        try:
            parse_constraints([expr])
        except ValueError as e:
            assert str(e) == text
        else:
            raise AssertionError(expr)
    (c,) = parse_constraints(["node.labels.zone != East"])
    assert (c.key, c.equal, c.value) == ("node.labels.zone", False, "East")
