"""The routing mesh on one node, without IPVS: a port a service publishes (`-p 8080:80`, mode ingress)
answers on every node, on every local address including 127.0.0.1, and is spread over the service's
running tasks on any node.

Docker's shape, simplified: the node has its own endpoint on the ingress overlay network (an address the
cluster allocates, owner `<node>/ingress-sbox`), a veth whose one end is on the ingress namespace's bridge
and whose other end is in the node's namespace with that address. A published port is DNATed in the node's
nat PREROUTING (other hosts) and OUTPUT (the node itself) to the tasks' ingress addresses, chosen by
`statistic` (gorae.network.portmap.lb), and MASQUERADEd out of that veth, so replies from a task on another
node come back over VXLAN to this node. `route_localnet` on the veth lets 127.0.0.1 be DNATed out of it.

The mesh is built only while some service publishes a port and is torn down when none does (or the node
leaves): no veth, rule or namespace of its own stays behind.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from gorae.network.controller import NetworkController
from gorae.network.kernel import netlink, vxlan
from gorae.network.portmap.lb import Backend, Frontend, LoadBalancer, mesh_chain_prefix
from gorae.network.types import Attachment
from gorae.swarm.networks import allocator, records

log = logging.getLogger(__name__)

SBOX = "ingress-sbox"  # the node's endpoint on the ingress network (Docker's name for its sandbox)
OVERLAY_SIDE = "ingress0"  # the veth's end on the ingress namespace's bridge

Attach = Callable[[str, str, str, str | None], Awaitable[Attachment]]
Detach = Callable[[str, str], Awaitable[None]]


class RoutingMesh:
    def __init__(self, controller: NetworkController, attach: Attach, detach: Detach) -> None:
        self.controller = controller
        self._attach = attach
        self._detach = detach
        names = controller.names
        self.host_if = (names.veth_prefix[:9] + "ingr")[: netlink.IFNAMSIZ]
        self.lb = LoadBalancer(mesh_chain_prefix(names.chain_prefix), masquerade_out=self.host_if)
        self.ingress_id: str | None = None
        self.address: str | None = None
        self._table: dict[Frontend, list[Backend]] | None = None
        self._active = False  # something of the mesh may exist (rules, veth, the node's address)
        self._lock = asyncio.Lock()

    async def update(self, recs: list[dict[str, Any]], docs: list[dict[str, Any]]) -> None:
        """Bring the mesh in line with the cluster's services: built, updated or torn down."""
        async with self._lock:
            mesh = records.mesh(recs)
            ingress = next((d for d in docs if allocator.is_ingress(d)), None)
            if not mesh or ingress is None:
                await self._teardown()
                return
            table = {
                Frontend("", port, proto): [Backend(ip, target) for ip, target in backends]
                for (proto, port), backends in mesh.items()
                if proto in ("tcp", "udp")
            }
            if self.ingress_id != ingress["Id"]:
                await self._teardown()
                await self._build(ingress)
            if table != self._table:
                await asyncio.to_thread(self.lb.apply, table)
                self._table = table

    async def _build(self, ingress: dict[str, Any]) -> None:
        nid = ingress["Id"]
        self._active = True
        grant = await self._attach(nid, SBOX, SBOX, None)
        self.ingress_id, self.address = nid, grant.ip
        swarm = self.controller.swarm
        swarm.pinned.add(nid)
        try:
            await asyncio.to_thread(swarm.materialize, grant.network)
            await asyncio.to_thread(self._plug, grant.network, grant.ip)
        except BaseException:
            await self._teardown()
            raise

    def _plug(self, net: dict[str, Any], ip: str) -> None:
        drv: Any = self.controller.state.driver(net)
        path = drv.netns_path(net)
        prefix = int(net["IPAM"]["Config"][0]["Subnet"].split("/")[1])
        netlink.delete_link(self.host_if)  # a leftover of a crash
        vxlan.plug(
            path,
            host_name=OVERLAY_SIDE,
            container_netns=f"/proc/{os.getpid()}/ns/net",
            ifname=self.host_if,
            ip=ip,
            prefixlen=prefix,
            mac=netlink.mac_for_ip(ip),
        )
        for key in ("route_localnet", "forwarding"):
            with open(f"/proc/sys/net/ipv4/conf/{self.host_if}/{key}", "w", encoding="ascii") as f:
                f.write("1")
        try:
            with open("/proc/sys/net/ipv4/ip_forward", "w", encoding="ascii") as f:
                f.write("1")  # other hosts' connections are forwarded to the tasks
        except OSError as e:
            log.warning("routing mesh: cannot enable ip_forward: %s", e)

    async def _teardown(self) -> None:
        if not self._active:
            return
        self._active = False
        nid, self.ingress_id, self.address, self._table = self.ingress_id, None, None, None
        try:
            await asyncio.to_thread(self.lb.purge)
        except Exception as e:  # noqa: BLE001 - the rest still goes
            log.warning("routing mesh rules: %s", e)
        await asyncio.to_thread(netlink.delete_link, self.host_if)
        if nid is None:
            return
        swarm = self.controller.swarm
        swarm.pinned.discard(nid)
        try:
            await self._detach(nid, SBOX)
        except Exception as e:  # noqa: BLE001 - the manager may be gone (leave); its address goes with the node
            log.info("routing mesh: giving back the node's ingress address: %s", e)
        await asyncio.to_thread(swarm.release, nid)

    async def close(self) -> None:
        async with self._lock:
            await self._teardown()
