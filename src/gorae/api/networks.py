"""Network routes: list, inspect, create, remove, connect, disconnect, prune — thin over
`gorae.network.service.NetworkService` (daemon.networks); connect/disconnect also keep the container's record
(its NetworkSettings, and the endpoints a stopped container gets at its next start) in step."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from gorae.api.http import Request, Response, empty_response, json_response
from gorae.errors import Forbidden, InvalidParameter, NotFound

if TYPE_CHECKING:
    from gorae.daemon.daemon import Daemon


def _object(body: Any, what: str = "body") -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidParameter(f"invalid JSON {what}: want an object")
    return body


def register(routes: Any, d: Daemon) -> None:
    nets = d.networks

    async def list_(req: Request) -> Response:
        return json_response(nets.list(req.qfilters("filters")))

    async def inspect(req: Request) -> Response:
        return json_response(nets.inspect(req.params["id"]))

    async def create(req: Request) -> Response:
        body = _object(await req.json())
        name = body.get("Name")
        if not isinstance(name, str):
            raise InvalidParameter("network name must be a string")
        ipam = _object(body.get("IPAM"), "IPAM")
        configs = ipam.get("Config") or []
        if not isinstance(configs, list) or not all(isinstance(c, dict) for c in configs):
            raise InvalidParameter("IPAM.Config must be a list of objects")
        if len(configs) > 1:
            raise InvalidParameter("gorae supports one IPAM config (subnet) per network")
        pool: dict[str, Any] = configs[0] if configs else {}
        labels = body.get("Labels") or {}
        options = body.get("Options") or {}
        if not isinstance(labels, dict) or not isinstance(options, dict):
            raise InvalidParameter("Labels and Options must be objects")
        res = await asyncio.to_thread(
            nets.create,
            name,
            str(body.get("Driver") or "bridge"),
            subnet=pool.get("Subnet") or None,
            gateway=pool.get("Gateway") or None,
            ip_range=pool.get("IPRange") or None,
            internal=bool(body.get("Internal")),
            attachable=bool(body.get("Attachable")),
            labels={str(k): str(v) for k, v in labels.items()},
            options={str(k): str(v) for k, v in options.items()},
            ipam_driver=str(ipam.get("Driver") or "default"),
            enable_ipv6=bool(body.get("EnableIPv6")),
        )
        return json_response(res, status=201)

    async def remove(req: Request) -> Response:
        await asyncio.to_thread(nets.remove, req.params["id"])
        return empty_response(204)

    async def prune(req: Request) -> Response:
        res = await asyncio.to_thread(nets.prune, req.qfilters("filters"))
        d.events.publish("network", "prune", "", {})
        return json_response({"NetworksDeleted": res.get("NetworksDeleted") or None})

    async def connect(req: Request) -> Response:
        body = _object(await req.json())
        ct = d.containers.get(str(body.get("Container") or ""))
        net = nets.inspect(req.params["id"])
        cfg = _object(body.get("EndpointConfig"), "EndpointConfig")
        if _has_sandbox(d, ct.id):
            ipam_cfg = cfg.get("IPAMConfig") or {}
            await nets.connect(
                net["Id"],
                ct.id,
                ipv4_address=ipam_cfg.get("IPv4Address") or None,
                aliases=list(cfg.get("Aliases") or []),
                links=list(cfg.get("Links") or []),
            )
            async with ct.lock:
                ct.doc["NetworkSettings"] = nets.network_settings(ct.id)
                d.containers._save(ct)  # noqa: SLF001 - the record follows the sandbox
            return empty_response(200)
        # not running: remembered for the next start, as docker does
        mode = str(ct.doc["HostConfig"].get("NetworkMode") or "bridge")
        if mode == "host" or mode.startswith("container:") or mode == "none":
            raise Forbidden(
                "container cannot be disconnected from host network or connected to host network"
                if mode == "host"
                else "container sharing network namespace with another container or host cannot be "
                "connected to any other network"
            )
        async with ct.lock:
            eps = ct.private.setdefault("EndpointsConfig", {})
            networks = ct.doc["NetworkSettings"].setdefault("Networks", {})
            if net["Name"] in networks or net["Name"] == mode:
                raise Forbidden(
                    f"endpoint with name {ct.name.lstrip('/')} already exists in network {net['Name']}"
                )
            eps[net["Name"]] = cfg
            from gorae.network.model import endpoint_settings

            entry = endpoint_settings(None, net["Id"])
            entry["Aliases"] = list(cfg.get("Aliases") or []) or None
            entry["IPAMConfig"] = cfg.get("IPAMConfig") or None
            networks[net["Name"]] = entry
            d.containers._save(ct)  # noqa: SLF001
        d.events.publish(
            "network", "connect", net["Id"], {"container": ct.id, "name": net["Name"], "type": net["Driver"]}
        )
        return empty_response(200)

    async def disconnect(req: Request) -> Response:
        body = _object(await req.json())
        ref = str(body.get("Container") or "")
        net = nets.inspect(req.params["id"])
        try:
            ct = d.containers.get(ref)
        except NotFound:
            if body.get("Force"):
                return empty_response(200)
            raise
        if _has_sandbox(d, ct.id):
            await nets.disconnect(net["Id"], ct.id, force=bool(body.get("Force")))
            async with ct.lock:
                ct.doc["NetworkSettings"] = nets.network_settings(ct.id)
                eps = ct.private.get("EndpointsConfig") or {}
                eps.pop(net["Name"], None)
                eps.pop(net["Id"], None)
                d.containers._save(ct)  # noqa: SLF001
            return empty_response(200)
        async with ct.lock:
            networks = ct.doc["NetworkSettings"].get("Networks") or {}
            if net["Name"] not in networks:
                raise Forbidden(f"container {ct.id} is not connected to network {net['Name']}")
            networks.pop(net["Name"], None)
            eps = ct.private.get("EndpointsConfig") or {}
            eps.pop(net["Name"], None)
            eps.pop(net["Id"], None)
            d.containers._save(ct)  # noqa: SLF001
        d.events.publish(
            "network",
            "disconnect",
            net["Id"],
            {"container": ct.id, "name": net["Name"], "type": net["Driver"]},
        )
        return empty_response(200)

    routes.add("GET", "/networks", list_)
    routes.add("POST", "/networks/create", create)
    routes.add("POST", "/networks/prune", prune)
    routes.add("GET", "/networks/{id}", inspect)
    routes.add("DELETE", "/networks/{id}", remove)
    routes.add("POST", "/networks/{id}/connect", connect)
    routes.add("POST", "/networks/{id}/disconnect", disconnect)


def _has_sandbox(d: Daemon, cid: str) -> bool:
    try:
        d.networks.network_settings(cid)
        return True
    except NotFound:
        return False
