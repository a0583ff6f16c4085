"""Swarm-scoped networks on this node: the controller's side of `types.ClusterNetworks`.

A cluster network exists on a node only while a container here uses it (Docker's lazy instantiation): when a
container starts with `--network <overlay>`, the manager grants it an address (`ClusterNetworks.attach`), the
network's record is stored here and its driver builds the kernel state (`materialize`), and the container's
endpoint gets the granted address. `docker network connect` of a running container to a swarm network is the
same grant for that one network (`grant`). When the last such container is gone, the address goes back to the
cluster and the network's kernel state and record go too (`release`). `set_peers` programs where the
other nodes' endpoints are.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
import re
from collections.abc import Sequence
from typing import Any

from gorae.errors import GoraeError, NotFound
from gorae.network.ipam import Ipam
from gorae.network.kernel.vxlan import Peer
from gorae.network.model import PREDEFINED
from gorae.network.state import NetworkState
from gorae.network.types import ClusterNetworks, EndpointRequest, NetworkDoc

log = logging.getLogger(__name__)


TASK_NAME = re.compile(r"[^./]+\.[^./]+\.[0-9a-z]{25}")  # <service>.<slot or node ID>.<task ID>


def is_cluster(net: NetworkDoc) -> bool:
    return net.get("Scope") == "swarm"


class ClusterAttachments:
    def __init__(self, state: NetworkState, ipam: Ipam) -> None:
        self.state = state
        self.ipam = ipam
        self._lock = asyncio.Lock()
        self.pinned: set[str] = set()  # networks kept here without containers (the routing mesh's ingress)

    @property
    def cluster(self) -> ClusterNetworks | None:
        return self.state.cluster

    @cluster.setter
    def cluster(self, cluster: ClusterNetworks | None) -> None:
        self.state.cluster = cluster

    def _cluster_net(self, ref: str) -> NetworkDoc | None:
        """The swarm network `ref` names (a local instance or one the cluster knows), None for others."""
        try:
            local = self.state.find_network(ref)
        except NotFound:
            local = None
        if local is not None:
            return local if is_cluster(local) else None
        return self.cluster.find(ref) if self.cluster is not None else None

    async def attach(self, req: EndpointRequest) -> tuple[EndpointRequest, list[str]]:
        """Ask the cluster for an address on each swarm network of the request; the request with those
        addresses, and the IDs of the networks granted (give them back with `detach` on failure)."""
        mode = req.network_mode or "default"
        refs = [mode] if mode not in (*PREDEFINED, "default") and not mode.startswith("container:") else []
        refs += [k for k in req.endpoints_config if k not in refs]
        cfgs = {k: dict(v or {}) for k, v in req.endpoints_config.items()}
        if self.cluster is not None and TASK_NAME.fullmatch(req.name.lstrip("/")):
            # a swarm task: the networks of its service (and the ingress network when it publishes ports)
            try:
                extra = await self.cluster.task_networks(req.name.lstrip("/"))
            except GoraeError as e:  # no manager now: the container still runs, on its own networks
                log.warning("swarm networks of task %s: %s", req.name.lstrip("/"), e.message)
                extra = []
            for nid in extra:
                if nid not in refs and not any(self._is(ref, nid) for ref in refs):
                    refs.append(nid)
                    cfgs[nid] = {}
        granted: list[str] = []
        try:
            for ref in refs:
                net = self._cluster_net(ref)
                if net is None:
                    continue
                if self.cluster is None:
                    raise NotFound(f"network {ref} not found")
                cfg = cfgs.get(ref) or {}
                wanted = (cfg.get("IPAMConfig") or {}).get("IPv4Address") or None
                aliases = [str(a) for a in cfg.get("Aliases") or []]
                ip = await self._grant(net, req.container_id, req.name.lstrip("/"), wanted, granted, aliases)
                cfgs[ref] = {**cfg, "IPAMConfig": {**(cfg.get("IPAMConfig") or {}), "IPv4Address": ip}}
        except BaseException:
            await self.detach(req.container_id, granted)
            raise
        if not granted:
            return req, []
        return dataclasses.replace(req, endpoints_config=cfgs), granted

    async def _grant(
        self,
        net: NetworkDoc,
        container_id: str,
        name: str,
        wanted: str | None,
        granted: list[str],
        aliases: Sequence[str] = (),
    ) -> str:
        """The manager's address for the container on `net` (its ID added to `granted` at once, so a failure
        later gives it back), the network built here; the address."""
        assert self.cluster is not None
        async with self._lock:
            grant = await self.cluster.attach(net["Id"], container_id, name, wanted, aliases)
            granted.append(net["Id"])
            await asyncio.to_thread(self.materialize, grant.network)
            await self.cluster.instantiated(net["Id"])
        return grant.ip

    async def grant(
        self, ref: str, container_id: str, wanted: str | None, aliases: Sequence[str] = ()
    ) -> tuple[str, str] | None:
        """`network connect` of a live container: (network ID, address) when `ref` is a swarm network
        (refused by the manager when it is not attachable), None for a local one."""
        net = self._cluster_net(ref)
        if net is None:
            return None
        if self.cluster is None:
            raise NotFound(f"network {ref} not found")
        name = str(self.state.sandbox(container_id)["name"]).lstrip("/")
        if net["Id"] in self.cluster_networks_of(container_id):
            return None  # already on it: the connect refuses that as for any network (its address stays)
        granted: list[str] = []
        try:
            ip = await self._grant(net, container_id, name, wanted, granted, aliases)
        except BaseException:
            await self.detach(container_id, granted)
            raise
        return net["Id"], ip

    def _is(self, ref: str, network_id: str) -> bool:
        net = self._cluster_net(ref)
        return net is not None and net["Id"] == network_id

    async def detach(self, container_id: str, network_ids: Sequence[str]) -> None:
        """Give the container's addresses back; networks no container here uses any more are removed."""
        for nid in network_ids:
            if self.cluster is not None:
                try:
                    await self.cluster.detach(nid, container_id)
                except GoraeError as e:
                    log.warning("giving back the address of %s on %s: %s", container_id[:12], nid[:12], e)
            async with self._lock:
                await asyncio.to_thread(self.release, nid)

    def cluster_networks_of(self, container_id: str) -> list[str]:
        with self.state.lock:
            sb = self.state.sandboxes.get(container_id)
            if sb is None:
                return []
            return [
                ep["network_id"]
                for ep in self.state.endpoints_of(sb)
                if is_cluster(self.state.networks.get(ep["network_id"], {}))
            ]

    def materialize(self, doc: NetworkDoc) -> None:
        """Store a cluster network's record here and build its kernel state (idempotent)."""
        state = self.state
        with state.lock:
            if doc["Id"] in state.networks:
                return
            local = {**doc, "_gorae": {"bridge": None, "default": False, "swarm": True}}
            cfg = local["IPAM"]["Config"][0]
            self.ipam.add_pool(local["Id"], cfg["Subnet"], cfg.get("Gateway", ""), cfg.get("IPRange"))
            drv = state.driver(local)
            try:
                drv.create_network(local)
            except BaseException:
                self.ipam.remove_pool(local["Id"])
                raise
            state.store_network(local)
        state.event("create", local)

    def release(self, network_id: str) -> None:
        """Remove the local instance of a cluster network when no container here is on it."""
        state = self.state
        with state.lock:
            net = state.networks.get(network_id)
            if (
                net is None
                or not is_cluster(net)
                or state.containers_of(network_id)
                or network_id in self.pinned
            ):
                return
            state.forget_network(network_id)
            try:
                self.ipam.remove_pool(network_id)
            except NotFound:
                pass
        try:
            state.driver(net).delete_network(net)
        finally:
            state.event("destroy", net)

    def set_peers(self, network_id: str, peers: Sequence[Peer]) -> None:
        """Program the other nodes' endpoints of a cluster network instantiated here (no-op otherwise)."""
        with self.state.lock:
            net = self.state.networks.get(network_id)
        if net is None:
            return
        drv: Any = self.state.driver(net)
        if hasattr(drv, "set_peers"):
            subnet = ipaddress.IPv4Network(net["IPAM"]["Config"][0]["Subnet"])
            drv.set_peers(net, [p for p in peers if ipaddress.IPv4Address(p.ip) in subnet])

    def local_ids(self) -> list[str]:
        with self.state.lock:
            return [n["Id"] for n in self.state.networks.values() if is_cluster(n)]
