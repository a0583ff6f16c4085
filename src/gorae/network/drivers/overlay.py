"""The overlay driver: swarm-scoped networks spanning nodes over VXLAN (see `kernel.vxlan` for the kernel
shape: one namespace per network per node, br0 + vxlan0 inside, container veths on br0).

A node has an overlay network's record only while it needs it (an attachable container or a task on it);
the records come from the cluster (`gorae.swarm.networks`), which also allocates the addresses and tells each
node where the other endpoints are (`set_peers`). A container whose first network is an overlay gets its default
route through the network's gateway (br0 in the overlay namespace), which leaves through a veth to the node
and two MASQUERADEs (Docker's docker_gwbridge role); overlay endpoints publish no ports (the routing mesh
does, see docs/swarm-networking.md).
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Callable, Mapping, Sequence

from gorae.errors import Forbidden
from gorae.network.kernel import netlink, vxlan
from gorae.network.types import (
    DriverCapabilities,
    EndpointDoc,
    NetworkDoc,
    NetworkSpec,
    PortMappingDoc,
    PortTarget,
    SandboxInfo,
)

log = logging.getLogger(__name__)

OPT_VXLANID = "com.docker.network.driver.overlay.vxlanid_list"
NETNS_PREFIX = "ovl-"


def vni_of(net: NetworkDoc) -> int:
    return int(str(net["Options"].get(OPT_VXLANID, "0")).split(",")[0])


class OverlayDriver:
    type = "overlay"
    capabilities = DriverCapabilities(user_networks=True, addresses=True, cluster=True)
    predefined_name = None

    def __init__(self, netns_dir: str, veth_prefix: str) -> None:
        self.netns_dir = netns_dir
        self.veth_prefix = veth_prefix

    def netns_path(self, net: NetworkDoc) -> str:
        """The overlay namespace of net on this node (`<exec root>/netns/ovl-<network id>`)."""
        return os.path.join(self.netns_dir, NETNS_PREFIX + net["Id"][:25])

    # ---- networks --------------------------------------------------------------------------------

    def predefined_network(self, pick_subnet: Callable[[], ipaddress.IPv4Network]) -> NetworkSpec:
        raise NotImplementedError("the overlay driver has no predefined network")

    def network_interface(
        self, network_id: str, options: Mapping[str, str], networks: Sequence[NetworkDoc]
    ) -> str | None:
        # a local `network create -d overlay` (outside the cluster path) is dockerd's refusal off a manager
        raise Forbidden(
            'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect '
            "this node to swarm and try again."
        )

    def egress_interface(self, net: NetworkDoc) -> str:
        """The node's end of the network's egress veth (see vxlan.add_egress)."""
        return f"{self.veth_prefix}e{vni_of(net):x}"[: netlink.IFNAMSIZ]

    @staticmethod
    def _has_egress(net: NetworkDoc) -> bool:
        return not net.get("Internal") and not net.get("Ingress")

    def create_network(self, net: NetworkDoc) -> None:
        cfg = net["IPAM"]["Config"][0]
        prefix = ipaddress.IPv4Network(cfg["Subnet"]).prefixlen
        path = self.netns_path(net)
        vxlan.create(path, vni_of(net), cfg.get("Gateway", ""), prefix, None)
        if self._has_egress(net):
            try:
                vxlan.add_egress(path, vni_of(net), self.egress_interface(net))
            except BaseException:
                self.delete_network(net)
                raise

    def delete_network(self, net: NetworkDoc) -> None:
        try:
            if self._has_egress(net):
                vxlan.remove_egress(vni_of(net), self.egress_interface(net))
        finally:
            vxlan.delete(self.netns_path(net))

    def restore(self, networks: Sequence[NetworkDoc]) -> None:
        for net in networks:
            try:
                self.create_network(net)
            except OSError as e:
                log.error("overlay network %s: %s", net["Name"], e)

    def purge(self, networks: Sequence[NetworkDoc]) -> None:
        for net in networks:
            self.delete_network(net)

    def set_peers(self, net: NetworkDoc, peers: Sequence[vxlan.Peer]) -> None:
        """The remote endpoints of net (on other nodes), as its VXLAN forwarding and neighbour entries."""
        vxlan.set_peers(self.netns_path(net), peers)

    # ---- endpoints -------------------------------------------------------------------------------

    def create_endpoint(self, net: NetworkDoc, ep: EndpointDoc) -> None:
        mac = ep.get("mac") or netlink.mac_for_ip(ep["ip"])
        ep["mac"] = mac.lower().replace("-", ":")
        ep["veth"] = netlink.random_veth_name(self.veth_prefix)

    def delete_endpoint(self, net: NetworkDoc, ep: EndpointDoc) -> None:
        if ep.get("veth"):
            try:
                vxlan.unplug(self.netns_path(net), ep["veth"])
            except OSError as e:
                log.warning("deleting %s: %s", ep["veth"], e)

    def join(self, net: NetworkDoc, ep: EndpointDoc, sandbox: SandboxInfo, *, default_route: bool) -> None:
        vxlan.plug(
            self.netns_path(net),
            host_name=ep["veth"],
            container_netns=sandbox.netns_path,
            ifname=ep["ifname"],
            ip=ep["ip"],
            prefixlen=ep["prefixlen"],
            mac=ep["mac"],
            ns_rtnl=sandbox.rtnl,
            gateway=ep["gateway"] if default_route and self._has_egress(net) and ep.get("gateway") else None,
        )

    def leave(self, net: NetworkDoc, ep: EndpointDoc, sandbox: SandboxInfo) -> None:
        if ep.get("ifname"):
            netlink.delete_in_netns(sandbox.netns_path, ep["ifname"])

    def port_target(self, net: NetworkDoc) -> PortTarget | None:
        return None

    def sync(self, networks: Sequence[NetworkDoc], ports: Sequence[PortMappingDoc]) -> None:
        return None
