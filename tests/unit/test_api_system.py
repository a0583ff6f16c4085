"""The system routes, handler by handler, against a fake SystemBackend (no daemon)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from gorae.api.app import build_routes
from gorae.api.http import Request, Response, StreamResponse
from gorae.api.system import DaemonFacts, SystemRouter
from gorae.events import EventBus, Subscription


class FakeBackend:
    def __init__(self) -> None:
        self.bus = EventBus()
        self.history: list[dict[str, Any]] = []

    def daemon_facts(self) -> DaemonFacts:
        return DaemonFacts(
            node_id="NODE",
            container_states={"running": 2, "paused": 1, "exited": 3},
            images=4,
            event_listeners=len(self.bus._subs),  # noqa: SLF001
            debug=True,
            data_root="/var/lib/gorae",
            runtime_path="/usr/bin/runc",
            registry_mirrors=["https://mirror.example"],
        )

    def subscribe_events(self) -> Subscription:
        return self.bus.subscribe()

    def event_history(self, since_ns: int, until_ns: int | None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.history
            if e["timeNano"] >= since_ns and (until_ns is None or e["timeNano"] <= until_ns)
        ]

    def disk_usage(self) -> dict[str, Any]:
        return {"LayersSize": 7, "Images": [], "Containers": [], "Volumes": [], "BuildCache": []}


def call(handler: Any, method: str = "GET", query: dict[str, list[str]] | None = None) -> Response:
    return asyncio.run(handler(Request(method=method, path="/", query=query or {})))


def test_routes() -> None:
    router = SystemRouter(FakeBackend())
    routes = build_routes([router])
    assert routes.resolve("HEAD", "/_ping")[0] == router.ping
    assert routes.resolve("GET", "/system/df")[0] == router.system_df


def test_ping_and_head() -> None:
    router = SystemRouter(FakeBackend())
    resp = call(router.ping)
    assert resp.body == b"OK" and resp.content_type == "text/plain; charset=utf-8"
    assert ("Swarm", "inactive") in resp.headers and ("Builder-Version", "1") in resp.headers
    assert call(router.ping, "HEAD").body == b""


def test_info_from_facts() -> None:
    backend = FakeBackend()
    backend.subscribe_events()
    doc = json.loads(call(SystemRouter(backend).info).body)
    assert doc["ID"] == "NODE" and doc["Images"] == 4 and doc["Debug"] is True
    assert (
        doc["Containers"],
        doc["ContainersRunning"],
        doc["ContainersPaused"],
        doc["ContainersStopped"],
    ) == (
        6,
        2,
        1,
        3,
    )
    assert doc["NEventsListener"] == 1
    assert doc["DockerRootDir"] == "/var/lib/gorae" and doc["Runtimes"] == {"runc": {"path": "/usr/bin/runc"}}
    assert doc["RegistryConfig"]["Mirrors"] == ["https://mirror.example/"]  # dockerd ValidateMirror adds the slash


def test_system_df_is_the_backends() -> None:
    assert json.loads(call(SystemRouter(FakeBackend()).system_df).body)["LayersSize"] == 7


def test_events_replay_filtered_until() -> None:
    backend = FakeBackend()

    async def run() -> list[dict[str, Any]]:
        for i, (typ, action) in enumerate([("container", "start"), ("image", "pull"), ("container", "die")]):
            backend.history.append(
                {
                    "Type": typ,
                    "Action": action,
                    "Actor": {"ID": f"id{i}", "Attributes": {}},
                    "timeNano": 10 + i,
                }
            )
        query = {
            "since": ["0.000000001"],
            "until": ["0.000000100"],
            "filters": ['{"type":{"container":true}}'],
        }
        resp = await SystemRouter(backend).events(Request(method="GET", path="/events", query=query))
        assert isinstance(resp, StreamResponse) and resp.chunks is not None
        out = [json.loads(chunk) async for chunk in resp.chunks]
        assert not backend.bus._subs  # noqa: SLF001  # the feed is closed when the stream ends
        return out

    assert [e["Action"] for e in asyncio.run(run())] == ["start", "die"]
