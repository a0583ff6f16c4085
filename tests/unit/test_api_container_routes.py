"""The container, exec and network routers one handler at a time, against fake backends (no daemon)."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gorae.api.app import build_routes
from gorae.api.containers import START_BODY_ERROR, ContainersRouter
from gorae.api.exec import ExecRouter
from gorae.api.http import Request, StreamResponse
from gorae.api.networks import NetworksRouter
from gorae.errors import InvalidParameter


class Recorder:
    """Any backend: records calls, answers from `answers` by method name."""

    def __init__(self, **answers: Any) -> None:
        self.calls: list[tuple[str, tuple, dict]] = []
        self.answers = answers

    def __getattr__(self, name: str):
        def call(*args, **kw):
            self.calls.append((name, args, kw))
            value = self.answers.get(name)
            if asyncio.iscoroutinefunction(value) or callable(value):
                return value(*args, **kw)
            return value

        return call


def async_answer(value):
    async def answer(*args, **kw):
        return value

    return answer


def req(method: str, path: str, *, params=None, query=None, body: bytes | None = None) -> Request:
    r = Request(
        method=method, path=path, query={k: [v] for k, v in (query or {}).items()}, params=params or {}
    )
    r._body_cache = body if body is not None else b""
    return r


def run(coro):
    return asyncio.run(coro)


async def drain(resp: StreamResponse) -> bytes:
    return b"".join([c async for c in resp.chunks])


def test_start_with_a_body_is_refused_before_the_backend_is_called():
    backend = Recorder(start=async_answer(None))
    router = ContainersRouter(backend)
    with pytest.raises(InvalidParameter, match="deprecated"):
        run(router.start(req("POST", "/containers/x/start", params={"id": "x"}, body=b'{"Binds": []}')))
    assert backend.calls == [] and "v1.24" in START_BODY_ERROR
    resp = run(router.start(req("POST", "/containers/x/start", params={"id": "x"}, body=b"{}")))
    assert resp.status == 204 and backend.calls == [("start", ("x",), {})]


def test_stop_passes_timeout_and_signal():
    backend = Recorder(stop=async_answer(None))
    resp = run(
        ContainersRouter(backend).stop(
            req("POST", "/containers/c/stop", params={"id": "c"}, query={"t": "5", "signal": "SIGINT"})
        )
    )
    assert resp.status == 204
    assert backend.calls == [("stop", ("c", 5, "SIGINT"), {})]


def test_wait_streams_the_exit_result():
    async def go():
        fut = asyncio.get_running_loop().create_future()
        fut.set_result({"StatusCode": 3, "Error": None})
        backend = Recorder(wait=lambda ref, cond: fut)
        resp = await ContainersRouter(backend).wait(
            req("POST", "/containers/c/wait", params={"id": "c"}, query={"condition": "next-exit"})
        )
        assert backend.calls == [("wait", ("c", "next-exit"), {})]
        return await drain(resp)

    assert json.loads(run(go())) == {"StatusCode": 3, "Error": None}


def test_archive_head_answers_the_stat_header_only():
    class Stat:
        def to_json(self):
            return {
                "name": "etc",
                "size": 1,
                "mode": 2147484141,
                "mtime": "2024-01-01T00:00:00Z",
                "linkTarget": "",
            }

    backend = Recorder(archive=async_answer((Stat(), None)))
    resp = run(
        ContainersRouter(backend).archive_get(
            req("HEAD", "/containers/c/archive", params={"id": "c"}, query={"path": "/etc"})
        )
    )
    assert backend.calls == [("archive", ("c", "/etc"), {"stat_only": True})]
    ((name, value),) = resp.headers
    assert name == "X-Docker-Container-Path-Stat"
    assert json.loads(base64.b64decode(value))["name"] == "etc"
    assert resp.body == b""


def test_archive_without_path_is_refused():
    with pytest.raises(InvalidParameter, match="Path cannot be empty"):
        run(ContainersRouter(Recorder()).archive_get(req("GET", "/containers/c/archive", params={"id": "c"})))


def test_exec_create_answers_201_with_the_id():
    backend = Recorder(create="e" * 64)
    resp = run(
        ExecRouter(backend).create(
            req("POST", "/containers/c/exec", params={"id": "c"}, body=b'{"Cmd":["ls"]}')
        )
    )
    assert resp.status == 201 and json.loads(resp.body) == {"Id": "e" * 64}
    assert backend.calls == [("create", ("c", {"Cmd": ["ls"]}), {})]


def test_network_connect_and_disconnect_go_to_the_container_backend():
    containers = Recorder(connect_network=async_answer(None), disconnect_network=async_answer(None))
    router = NetworksRouter(Recorder(), containers)
    body = b'{"Container": "c1", "EndpointConfig": {"Aliases": ["a"]}}'
    resp = run(router.connect(req("POST", "/networks/n/connect", params={"id": "n"}, body=body)))
    assert resp.status == 200
    resp = run(
        router.disconnect(
            req("POST", "/networks/n/disconnect", params={"id": "n"}, body=b'{"Container":"c1","Force":true}')
        )
    )
    assert containers.calls == [
        ("connect_network", ("n", "c1", {"Aliases": ["a"]}), {}),
        ("disconnect_network", ("n", "c1"), {"force": True}),
    ]
    with pytest.raises(InvalidParameter):
        run(
            router.connect(
                req("POST", "/networks/n/connect", params={"id": "n"}, body=b'{"EndpointConfig": 3}')
            )
        )


def test_routers_register_flat_route_tables():
    routes = build_routes(
        [ContainersRouter(Recorder()), ExecRouter(Recorder()), NetworksRouter(Recorder(), Recorder())]
    )
    assert routes.resolve("POST", "/networks/{id}/connect".replace("{id}", "n1"))[0].__name__ == "connect"
    paths = {p for _, p, _ in ContainersRouter(Recorder()).routes()}
    assert "/containers/{id}/attach/ws" in paths and "/commit" in paths


def test_take_ports_passes_both_containers_and_needs_from():
    backend = Recorder(take_ports=async_answer(None))
    router = ContainersRouter(backend)
    with pytest.raises(InvalidParameter, match=r"missing \(from=\)"):
        run(router.take_ports(req("POST", "/containers/new/ports/take", params={"id": "new"})))
    assert backend.calls == []
    resp = run(
        router.take_ports(req("POST", "/containers/new/ports/take", params={"id": "new"}, query={"from": "old"}))
    )
    assert resp.status == 204 and backend.calls == [("take_ports", ("new", "old"), {})]


@given(st.text(), st.text())
def test_take_ports_hostile_query(ident: str, src: str) -> None:
    backend = Recorder(take_ports=async_answer(None))
    r = req("POST", "/containers/x/ports/take", params={"id": ident}, query={"from": src})
    try:
        resp = run(ContainersRouter(backend).take_ports(r))
    except InvalidParameter:
        assert src == "" and backend.calls == []
        return
    assert resp.status == 204 and backend.calls == [("take_ports", (ident, src), {})]
