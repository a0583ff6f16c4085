"""The dashboard listener's application without a daemon: hostile paths, methods and headers never make a 500,
never reach the Engine API without the guards, and only our assets are served."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from gorae.api.router import Router
from gorae.api.server import EngineApp
from gorae.cmd.dashboard import DashboardApp, loopback_hosts
from gorae.httpserver.message import Request, Response, json_response
from gorae.metrics.engine import EngineMetrics, route_of

HOST = "127.0.0.1:8090"
calls: list[str] = []


async def _info(req: Request) -> Response:
    calls.append(req.path)
    return json_response({"ID": "x"})


def _app(token: str | None = None) -> DashboardApp:
    router = Router()
    router.get("/info", _info)
    router.post("/containers/{id}/stop", _info)
    reg = CollectorRegistry(auto_describe=False)
    EngineMetrics(registry=reg, states=lambda: {})
    return DashboardApp(EngineApp(router), reg, token=token, allowed_hosts=loopback_hosts("127.0.0.1", 8090))


def _status(app: DashboardApp, req: Request) -> int:
    async def go() -> int:
        try:
            resp = await app.handle(req)
        except Exception as e:  # what the server's dispatch does
            resp = app.error_response(e)
        return 204 if resp is None else resp.status

    return asyncio.run(go())


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["GET", "HEAD", "POST", "DELETE", "PUT", "OPTIONS", "X"]),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=60).map(lambda p: "/" + p),
    st.dictionaries(st.sampled_from(["host", "origin", "cookie", "authorization", "x-gorae-dashboard"]),
                    st.text(max_size=30)),
)
def test_hostile_requests_never_500(method: str, path: str, headers: dict[str, str]) -> None:
    calls.clear()
    app = _app(token="0123456789abcdef")
    status = _status(app, Request(method=method, path=path, headers=headers))
    assert status < 500
    if calls:  # the Engine API was reached: only with the right host, token and (to change) the CSRF header
        assert headers.get("host", "").strip().lower() == HOST
        assert headers.get("authorization", "").endswith("0123456789abcdef") or "0123456789abcdef" in headers.get(
            "cookie", "")


def test_routes_and_guards() -> None:
    app = _app()
    ok = {"host": HOST}
    assert _status(app, Request(method="GET", path="/", headers=ok)) == 200
    assert _status(app, Request(method="GET", path="/static/app.js", headers=ok)) == 200
    assert _status(app, Request(method="GET", path="/static/__init__.py", headers=ok)) == 404
    assert _status(app, Request(method="GET", path="/metrics", headers=ok)) == 200
    assert _status(app, Request(method="GET", path="/api/info", headers=ok)) == 200
    assert _status(app, Request(method="GET", path="/api/v1.45/info", headers=ok)) == 200
    assert _status(app, Request(method="POST", path="/api/containers/a/stop", headers=ok)) == 403
    assert _status(app, Request(method="POST", path="/api/containers/a/stop",
                                headers={**ok, "x-gorae-dashboard": "1"})) == 200
    assert _status(app, Request(method="GET", path="/api/info", headers={"host": "evil:8090"})) == 403
    assert _status(app, Request(method="POST", path="/", headers=ok)) == 404


def test_token_cookie_flow() -> None:
    app = _app(token="0123456789abcdef")
    ok = {"host": HOST}
    assert _status(app, Request(method="GET", path="/api/info", headers=ok)) == 401

    async def login() -> Response | None:
        return await app.handle(Request(method="GET", path="/", query={"token": ["0123456789abcdef"]}, headers=ok))

    resp = asyncio.run(login())
    assert resp is not None and resp.status == 303
    cookie = dict(resp.headers)["Set-Cookie"]
    assert cookie.startswith("gorae_dashboard=0123456789abcdef;") and "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert _status(app, Request(method="GET", path="/api/info",
                                headers={**ok, "cookie": "gorae_dashboard=0123456789abcdef"})) == 200


@given(st.text(max_size=40), st.dictionaries(st.sampled_from(["id", "name"]), st.text(max_size=10)))
def test_route_of_never_raises(path: str, params: dict[str, str]) -> None:
    assert isinstance(route_of(path, params), str)
