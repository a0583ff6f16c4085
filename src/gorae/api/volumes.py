"""Volume routes: create, list, inspect, remove, prune — thin over `gorae.volume.local.VolumeService`."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from gorae.api.http import Request, Response, empty_response, json_response
from gorae.errors import InvalidParameter

if TYPE_CHECKING:
    from gorae.daemon.daemon import Daemon


def register(routes: Any, d: Daemon) -> None:
    vols = d.volumes

    async def create(req: Request) -> Response:
        body = await req.json() or {}
        if not isinstance(body, dict):
            raise InvalidParameter("invalid JSON body: want an object")
        labels = body.get("Labels") or {}
        opts = body.get("DriverOpts") or {}
        if not isinstance(labels, dict) or not isinstance(opts, dict):
            raise InvalidParameter("Labels and DriverOpts must be objects")
        doc = await asyncio.to_thread(
            vols.create, body.get("Name") or None, body.get("Driver") or "local", labels, opts
        )
        d.events.publish("volume", "create", doc["Name"], {"driver": doc["Driver"]})
        return json_response(doc, status=201)

    async def list_(req: Request) -> Response:
        res = await asyncio.to_thread(vols.list, req.qfilters("filters"))
        return json_response({"Volumes": res, "Warnings": None})

    async def inspect(req: Request) -> Response:
        return json_response(await asyncio.to_thread(vols.inspect, req.params["name"]))

    async def remove(req: Request) -> Response:
        name = req.params["name"]
        await asyncio.to_thread(vols.remove, name, req.qbool("force"))
        d.events.publish("volume", "destroy", name, {"driver": "local"})
        return empty_response(204)

    async def prune(req: Request) -> Response:
        res = await asyncio.to_thread(vols.prune, req.qfilters("filters"))
        for name in res["VolumesDeleted"]:
            d.events.publish("volume", "destroy", name, {"driver": "local"})
        d.events.publish("volume", "prune", "", {"reclaimed": str(res["SpaceReclaimed"])})
        return json_response(res)

    routes.add("POST", "/volumes/create", create)
    routes.add("GET", "/volumes", list_)
    routes.add("POST", "/volumes/prune", prune)
    routes.add("GET", "/volumes/{name}", inspect)
    routes.add("DELETE", "/volumes/{name}", remove)
