"""Network routes: list, inspect, create, remove, connect, disconnect, prune.

`NetworksRouter` is thin over two narrow backends: `NetworkBackend` (the network service) for the networks
themselves, and `ContainerNetworkBackend` (the container service) for connect/disconnect, which keeps the
container's record (its NetworkSettings, and the endpoints a stopped container gets at its next start) in
step with the sandbox. No record is touched and no lock is taken here."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from gorae.api.http import Handler, Request, Response, empty_response, json_response
from gorae.container.schema import NETWORK_CONNECT, NETWORK_CREATE, check_body
from gorae.errors import InvalidParameter


def _object(body: Any, what: str = "body") -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidParameter(f"invalid JSON {what}: want an object")
    return body


class NetworkBackend(Protocol):
    """What the network routes call of the network service."""

    def inspect(self, name_or_id: str) -> dict[str, Any]: ...

    def create(
        self,
        name: str,
        driver: str = "bridge",
        *,
        subnet: str | None = None,
        gateway: str | None = None,
        ip_range: str | None = None,
        internal: bool = False,
        attachable: bool = False,
        labels: dict[str, str] | None = None,
        options: dict[str, str] | None = None,
        ipam_driver: str = "default",
        enable_ipv6: bool = False,
        ipv6_subnet: str | None = None,
        ipv6_gateway: str | None = None,
        ipv6_range: str | None = None,
    ) -> dict[str, str]: ...

    def remove(self, name_or_id: str) -> None: ...

    def prune(self, filters: Any = None) -> dict[str, Any]: ...

    def list(self, filters: Any = None) -> list[dict[str, Any]]: ...


class ContainerNetworkBackend(Protocol):
    """What connect/disconnect call of the container service."""

    async def connect_network(self, network: str, ref: str, endpoint_config: dict[str, Any]) -> None: ...

    async def disconnect_network(self, network: str, ref: str, *, force: bool) -> None: ...


def _pools(configs: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The IPv4 and the IPv6 entry of IPAM.Config (either may be missing): the bridge driver takes one subnet
    of each family, as dockerd's. An entry without a subnet counts as IPv4."""
    v4: list[dict[str, Any]] = []
    v6: list[dict[str, Any]] = []
    for c in configs:
        subnet = c.get("Subnet")
        (v6 if isinstance(subnet, str) and ":" in subnet else v4).append(c)
    if len(v4) > 1 or len(v6) > 1:
        raise InvalidParameter("bridge driver doesn't support multiple subnets")
    return (v4[0] if v4 else {}), (v6[0] if v6 else {})


class NetworksRouter:
    def __init__(self, networks: NetworkBackend, containers: ContainerNetworkBackend) -> None:
        self.nets = networks
        self.containers = containers

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("GET", "/networks", self.list),
            ("POST", "/networks/create", self.create),
            ("POST", "/networks/prune", self.prune),
            ("GET", "/networks/{id}", self.inspect),
            ("DELETE", "/networks/{id}", self.remove),
            ("POST", "/networks/{id}/connect", self.connect),
            ("POST", "/networks/{id}/disconnect", self.disconnect),
        ]

    async def list(self, req: Request) -> Response:
        return json_response(self.nets.list(req.qfilters("filters")))

    async def inspect(self, req: Request) -> Response:
        return json_response(self.nets.inspect(req.params["id"]))

    async def create(self, req: Request) -> Response:
        body = _object(await req.json())
        check_body(body, NETWORK_CREATE)  # dockerd's decoder: wrong types at any depth are a 400
        name = body.get("Name")
        if not isinstance(name, str):
            raise InvalidParameter("network name must be a string")
        ipam = _object(body.get("IPAM"), "IPAM")
        configs = ipam.get("Config") or []
        if not isinstance(configs, list) or not all(isinstance(c, dict) for c in configs):
            raise InvalidParameter("IPAM.Config must be a list of objects")
        pool, pool6 = _pools(configs)
        labels = body.get("Labels") or {}
        options = body.get("Options") or {}
        if not isinstance(labels, dict) or not isinstance(options, dict):
            raise InvalidParameter("Labels and Options must be objects")
        res = await asyncio.to_thread(
            self.nets.create,
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
            ipv6_subnet=pool6.get("Subnet") or None,
            ipv6_gateway=pool6.get("Gateway") or None,
            ipv6_range=pool6.get("IPRange") or None,
        )
        return json_response(res, status=201)

    async def remove(self, req: Request) -> Response:
        await asyncio.to_thread(self.nets.remove, req.params["id"])
        return empty_response(204)

    async def prune(self, req: Request) -> Response:
        res = await asyncio.to_thread(self.nets.prune, req.qfilters("filters"))
        return json_response({"NetworksDeleted": res.get("NetworksDeleted") or None})

    async def connect(self, req: Request) -> Response:
        body = _object(await req.json())
        check_body(body, NETWORK_CONNECT)
        cfg = _object(body.get("EndpointConfig"), "EndpointConfig")
        await self.containers.connect_network(req.params["id"], str(body.get("Container") or ""), cfg)
        return empty_response(200)

    async def disconnect(self, req: Request) -> Response:
        body = _object(await req.json())
        await self.containers.disconnect_network(
            req.params["id"], str(body.get("Container") or ""), force=bool(body.get("Force"))
        )
        return empty_response(200)
