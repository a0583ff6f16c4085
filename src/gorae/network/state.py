"""The controller's state: the in-memory copy of the network, endpoint and sandbox records, their
persistence in the metadata store, the driver of each network, network events, and the host-wide sync of
the drivers' rules. Every module of the controller reads and changes records through one `NetworkState`.

Kinds in the metadata store: "network" (docker's inspect shape), "endpoint" (one per container per network),
"netsandbox" (one per container: namespace path, resolved port mappings, DNS settings); "ipam" is `ipam`'s.
"""

from __future__ import annotations

import logging
import secrets
import threading
from typing import Any

from gorae.errors import InvalidParameter, NotFound
from gorae.network.registry import DriverRegistry
from gorae.network.types import (
    ClusterNetworks,
    EndpointDoc,
    MetaStore,
    NetworkDoc,
    NetworkDriver,
    Publish,
    SandboxDoc,
)

log = logging.getLogger(__name__)

NET, EP, SB = "network", "endpoint", "netsandbox"


def new_id() -> str:
    return secrets.token_hex(32)


class NetworkState:
    def __init__(self, meta: MetaStore, drivers: DriverRegistry, publish: Publish | None = None) -> None:
        self.meta = meta
        self.drivers = drivers
        self.publish = publish
        self.lock = threading.RLock()
        self._sync_lock = threading.Lock()
        self.networks: dict[str, NetworkDoc] = {}
        self.endpoints: dict[str, EndpointDoc] = {}
        self.sandboxes: dict[str, SandboxDoc] = {}
        self.cluster: ClusterNetworks | None = None  # the swarm's networks while this node is in a swarm

    def load(self) -> None:
        with self.lock:
            self.networks = {d["Id"]: d for d in self.meta.list(NET)}
            self.endpoints = {d["id"]: d for d in self.meta.list(EP)}
            self.sandboxes = {d["container_id"]: d for d in self.meta.list(SB)}

    # ---- records ---------------------------------------------------------------------------------

    def driver(self, net: NetworkDoc) -> NetworkDriver:
        return self.drivers.of(net)

    def store_network(self, doc: NetworkDoc) -> None:
        self.meta.put(NET, doc["Id"], doc, name=doc["Name"])
        self.networks[doc["Id"]] = doc

    def forget_network(self, net_id: str) -> None:
        self.networks.pop(net_id, None)
        self._delete(NET, net_id)

    def store_endpoint(self, ep: EndpointDoc) -> None:
        self.meta.put(EP, ep["id"], ep)

    def delete_endpoint(self, ep_id: str) -> None:
        self._delete(EP, ep_id)

    def store_sandbox(self, sb: SandboxDoc) -> None:
        self.meta.put(SB, sb["container_id"], sb)

    def delete_sandbox(self, cid: str) -> None:
        self._delete(SB, cid)

    def _delete(self, kind: str, id: str) -> None:
        try:
            self.meta.delete(kind, id)
        except NotFound:
            pass

    # ---- lookups ---------------------------------------------------------------------------------

    def find_network(self, name_or_id: str) -> NetworkDoc:
        with self.lock:
            for n in self.networks.values():
                if n["Id"] == name_or_id:
                    return n
            for n in self.networks.values():
                if n["Name"] == name_or_id:
                    return n
            found = [n for n in self.networks.values() if name_or_id and n["Id"].startswith(name_or_id)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise InvalidParameter(
                f"network {name_or_id} is ambiguous ({len(found)} matches found based on ID prefix)"
            )
        raise NotFound(f"network {name_or_id} not found")

    def sandbox(self, container_id: str) -> SandboxDoc:
        with self.lock:
            sb = self.sandboxes.get(container_id)
        if sb is None:
            raise NotFound(f"No such container: {container_id}")
        return sb

    def find_sandbox(self, name_or_id: str) -> SandboxDoc | None:
        key = name_or_id.lstrip("/")
        with self.lock:
            for sb in self.sandboxes.values():
                if sb["container_id"] == key or sb["name"] == key:
                    return sb
            found = [sb for sb in self.sandboxes.values() if sb["container_id"].startswith(key)]
        return found[0] if len(found) == 1 else None

    def endpoints_of(self, sb: SandboxDoc) -> list[EndpointDoc]:
        return [self.endpoints[e] for e in sb["endpoints"] if e in self.endpoints]

    def shared_network_ip(self, sb: SandboxDoc, child: SandboxDoc) -> str | None:
        """child's address on a network sb is on too (legacy links)."""
        mine = {ep["network_id"] for ep in self.endpoints_of(sb)}
        for e in child["endpoints"]:
            ep = self.endpoints.get(e)
            if ep and ep["network_id"] in mine and ep.get("ip"):
                return str(ep["ip"])
        return None

    def containers_of(self, net_id: str) -> dict[str, Any]:
        """The `Containers` of a network's inspect document."""
        out: dict[str, Any] = {}
        with self.lock:
            for ep in self.endpoints.values():
                if ep["network_id"] != net_id:
                    continue
                out[ep["container_id"]] = {
                    "Name": ep["container_name"],
                    "EndpointID": ep["id"],
                    "MacAddress": ep.get("mac", ""),
                    "IPv4Address": f"{ep['ip']}/{ep['prefixlen']}" if ep.get("ip") else "",
                    "IPv6Address": f"{ep['ip6']}/{ep['prefixlen6']}" if ep.get("ip6") else "",
                }
        return out

    # ---- side effects ----------------------------------------------------------------------------

    def event(self, action: str, net: NetworkDoc, extra: dict[str, str] | None = None) -> None:
        if self.publish is None:
            return
        attrs = {"name": net["Name"], "type": net["Driver"], **(extra or {})}
        try:
            self.publish("network", action, net["Id"], attrs)
        except Exception:  # noqa: BLE001 - events never break the operation
            log.exception("publishing network event failed")

    def sync(self) -> None:
        """Let every driver bring its host-wide state (rules) in line with the networks and published ports."""
        with self._sync_lock:
            with self.lock:
                nets = list(self.networks.values())
                ports = [m for sb in self.sandboxes.values() for m in sb.get("ports", [])]
            for driver in self.drivers:
                driver.sync([n for n in nets if n["Driver"] == driver.type], ports)
