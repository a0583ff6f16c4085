"""Volume routes: create, list, inspect, remove, prune — `VolumesRouter` over a `VolumeBackend`
(`gorae.volume.local.VolumeService`, which publishes the volume events)."""

from __future__ import annotations

import asyncio
import builtins
from typing import Any, Protocol

from gorae.api.http import Handler, Request, Response, empty_response, json_response
from gorae.container.schema import VOLUME_CREATE, check_body
from gorae.errors import InvalidParameter


class VolumeBackend(Protocol):
    """What the volume handlers call."""

    def create(
        self,
        name: str | None = None,
        driver: str | None = "local",
        labels: dict[str, str] | None = None,
        options: dict[str, str] | None = None,
    ) -> dict[str, Any]: ...
    def list(self, filters: dict[str, list[str]] | None = None) -> list[dict[str, Any]]: ...
    def inspect(self, name: str) -> dict[str, Any]: ...
    def remove(self, name: str, force: bool = False) -> None: ...
    def prune(self, filters: dict[str, builtins.list[str]] | None = None) -> dict[str, Any]: ...


class VolumesRouter:
    def __init__(self, backend: VolumeBackend) -> None:
        self.volumes = backend

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("POST", "/volumes/create", self.create),
            ("GET", "/volumes", self.list_volumes),
            ("POST", "/volumes/prune", self.prune),
            ("GET", "/volumes/{name}", self.inspect),
            ("DELETE", "/volumes/{name}", self.remove),
        ]

    async def create(self, req: Request) -> Response:
        body = await req.json() or {}
        check_body(body, VOLUME_CREATE)  # dockerd's decoder: {"Name": 1} is a 400
        labels = body.get("Labels") or {}
        opts = body.get("DriverOpts") or {}
        if not isinstance(labels, dict) or not isinstance(opts, dict):
            raise InvalidParameter("Labels and DriverOpts must be objects")
        doc = await asyncio.to_thread(
            self.volumes.create, body.get("Name") or None, body.get("Driver") or "local", labels, opts
        )
        return json_response(doc, status=201)

    async def list_volumes(self, req: Request) -> Response:
        res = await asyncio.to_thread(self.volumes.list, req.qfilters("filters"))
        return json_response({"Volumes": res, "Warnings": None})

    async def inspect(self, req: Request) -> Response:
        return json_response(await asyncio.to_thread(self.volumes.inspect, req.params["name"]))

    async def remove(self, req: Request) -> Response:
        await asyncio.to_thread(self.volumes.remove, req.params["name"], req.qbool("force"))
        return empty_response(204)

    async def prune(self, req: Request) -> Response:
        return json_response(await asyncio.to_thread(self.volumes.prune, req.qfilters("filters")))
