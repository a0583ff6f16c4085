"""The bridge driver: a Linux bridge per network, a veth pair per endpoint (one end on the bridge, the other
in the container's namespace), and the iptables rules for its networks (masquerading, isolation, ICC) and
for the ports published towards them. Kernel work only; records, addresses and host ports are the
controller's.

An existing interface is never taken over: a non-bridge (eth0, lo, a veth) is refused as dockerd refuses it, a
bridge another gorae daemon holds is refused (`kernel.claims`), and a bridge made by someone else is used but
left in place when the network is removed (dockerd's "bridge interface was created by user").
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from collections.abc import Callable, Mapping, Sequence

from gorae.errors import Conflict, InvalidParameter
from gorae.network import model
from gorae.network.ipam import parse_any_subnet, parse_subnet
from gorae.network.kernel import netlink
from gorae.network.kernel.claims import InterfaceClaimed, claim_interface
from gorae.network.names import NetworkNames
from gorae.network.portmap import iptables
from gorae.network.types import (
    DriverCapabilities,
    EndpointDoc,
    NetworkDoc,
    NetworkOptions,
    NetworkSpec,
    PortMappingDoc,
    PortTarget,
    SandboxInfo,
)

log = logging.getLogger(__name__)


def _mtu(net: NetworkDoc) -> int:
    return int(net["Options"].get(model.BRIDGE_OPT_MTU) or 1500)


class BridgeDriver:
    type = "bridge"
    capabilities = DriverCapabilities(user_networks=True, addresses=True)
    predefined_name = "bridge"

    def __init__(self, names: NetworkNames, options: NetworkOptions) -> None:
        self.names = names
        self.options = options
        self.chains = iptables.Chains(names.chain_prefix)
        self._rules_lock = threading.Lock()
        self._applied_rules: str | None = None  # last iptables-restore input applied (skip repeats)
        self._applied_rules6: str | None = None  # the same for ip6tables (--ip6tables)
        self._jumps_checked = False
        self._jumps6_checked = False
        self._claims: dict[str, socket.socket] = {}  # bridges of user networks this daemon holds

    # ---- networks --------------------------------------------------------------------------------

    def predefined_network(self, pick_subnet: Callable[[], ipaddress.IPv4Network]) -> NetworkSpec:
        """The default bridge: --bip, else --fixed-cidr, else a free subnet of the address pools."""
        bip, fixed = self.options.bip or "", self.options.fixed_cidr or ""
        if bip:
            iface = ipaddress.ip_interface(bip)
            subnet, gateway = iface.network, str(iface.ip)
        elif fixed:
            subnet = parse_subnet(fixed)
            gateway = str(next(subnet.hosts()))
        else:
            subnet = pick_subnet()
            gateway = str(next(subnet.hosts()))
        ip_range = str(parse_subnet(fixed)) if fixed else None
        if ip_range and not ipaddress.ip_network(ip_range).subnet_of(subnet):  # type: ignore[arg-type]
            raise InvalidParameter(f"fixed-cidr {fixed} is not inside the bridge subnet {subnet}")
        options = {
            model.BRIDGE_OPT_DEFAULT: "true",
            model.BRIDGE_OPT_ICC: "true",
            model.BRIDGE_OPT_MASQ: "true" if self.options.ip_masq else "false",
            model.BRIDGE_OPT_HOST_IP: "0.0.0.0",
            model.BRIDGE_OPT_NAME: self.names.bridge,
            model.BRIDGE_OPT_MTU: "1500",
        }
        v6 = self.options.fixed_cidr_v6 if self.options.ipv6 else None
        if v6:
            net6 = parse_any_subnet(v6)
            if net6.version != 6:
                raise InvalidParameter(f"invalid fixed-cidr-v6 {v6}: not an IPv6 subnet")
            v6 = str(net6)
        return NetworkSpec(
            str(subnet), gateway, ip_range, options, self.names.bridge, enable_ipv6=self.options.ipv6, ipv6_subnet=v6
        )

    def network_interface(
        self, network_id: str, options: Mapping[str, str], networks: Sequence[NetworkDoc]
    ) -> str:
        prefix = self.names.user_bridge_prefix
        bridge = options.get(model.BRIDGE_OPT_NAME) or (prefix + network_id[: netlink.IFNAMSIZ - len(prefix)])
        if len(bridge) > netlink.IFNAMSIZ:
            raise InvalidParameter(f"bridge name {bridge!r} is longer than {netlink.IFNAMSIZ} characters")
        if not netlink.valid_interface_name(bridge):
            raise InvalidParameter(f"invalid bridge name {bridge!r}")
        if any(n["_gorae"].get("bridge") == bridge for n in networks):
            raise Conflict(f"bridge name {bridge} is already in use by another network")
        mtu = options.get(model.BRIDGE_OPT_MTU)
        if mtu is not None and not (mtu.isdigit() and 68 <= int(mtu) <= 65535):
            raise InvalidParameter(f"invalid MTU {mtu}")
        return bridge

    def create_network(self, net: NetworkDoc) -> None:
        bridge = net["_gorae"]["bridge"]
        self._claim(net)
        try:
            kind = netlink.link_kind(bridge)
            if kind is not None and kind != "bridge":
                raise InvalidParameter(f"existing interface {bridge} is not a bridge")
            if kind == "bridge":
                net["_gorae"]["adopted"] = True  # someone else's bridge: used, never deleted
        except BaseException:
            self._release(bridge)
            raise
        try:
            self._ensure_bridge(net)
        except BaseException:
            self.delete_network(net)
            raise

    def delete_network(self, net: NetworkDoc) -> None:
        bridge = net["_gorae"]["bridge"]
        try:
            if not net["_gorae"].get("adopted"):
                netlink.delete_link(bridge)
        finally:
            self._release(bridge)

    def _claim(self, net: NetworkDoc) -> None:
        """Hold a user network's bridge (the default one is held with the daemon's roots, at start)."""
        bridge = net["_gorae"]["bridge"]
        if not net["_gorae"].get("default") and bridge not in self._claims:
            self._claims[bridge] = claim_interface(bridge)

    def _release(self, bridge: str) -> None:
        held = self._claims.pop(bridge, None)
        if held is not None:
            held.close()

    def _ensure_bridge(self, net: NetworkDoc) -> None:
        cfg = net["IPAM"]["Config"][0]
        prefix = ipaddress.IPv4Network(cfg["Subnet"]).prefixlen
        v6 = model.ipv6_of(net)
        netlink.ensure_bridge(
            net["_gorae"]["bridge"],
            cfg.get("Gateway", ""),
            prefix,
            _mtu(net),
            with_address=bool(cfg.get("Gateway")),
            ipv6=((v6["gateway"], int(v6["prefixlen"])),) if v6 else (),
        )
        # IPv6 forwarding only with --ip6tables (dockerd sets it with --ip-forward alone): it changes how the
        # host itself treats router advertisements, and without the ip6tables rules nothing routes out anyway
        if v6 and self.options.ip_forward and self.options.ip6tables:
            try:
                iptables.set_ipv6_forward()
            except OSError as e:
                log.warning("cannot enable IPv6 forwarding: %s", e)

    def restore(self, networks: Sequence[NetworkDoc]) -> None:
        if self.options.ip_forward:
            try:
                iptables.set_ip_forward()
            except OSError as e:
                log.warning("cannot enable ip_forward: %s", e)
        for net in networks:
            try:
                self._claim(net)
            except InterfaceClaimed as e:  # start-up goes on; this network stays down
                log.error("network %s: %s", net["Name"], e.message)
                continue
            self._ensure_bridge(net)

    def purge(self, networks: Sequence[NetworkDoc]) -> None:
        for net in networks:
            self.delete_network(net)
        iptables.purge(self.chains)
        self._applied_rules, self._jumps_checked = None, False
        if self.options.ip6tables:
            iptables.purge(self.chains, family=6)
        self._applied_rules6, self._jumps6_checked = None, False

    # ---- endpoints -------------------------------------------------------------------------------

    def create_endpoint(self, net: NetworkDoc, ep: EndpointDoc) -> None:
        mac = ep.get("mac") or netlink.mac_for_ip(ep["ip"])
        ep["mac"] = mac.lower().replace("-", ":")
        ep["veth"] = netlink.random_veth_name(self.names.veth_prefix)

    def delete_endpoint(self, net: NetworkDoc, ep: EndpointDoc) -> None:
        if ep.get("veth"):
            try:
                netlink.delete_link(ep["veth"])
            except OSError as e:
                log.warning("deleting %s: %s", ep["veth"], e)

    def join(self, net: NetworkDoc, ep: EndpointDoc, sandbox: SandboxInfo, *, default_route: bool) -> None:
        netlink.plug_veth(
            bridge=net["_gorae"]["bridge"],
            host_name=ep["veth"],
            netns_path=sandbox.netns_path,
            ifname=ep["ifname"],
            ip=ep["ip"],
            prefixlen=ep["prefixlen"],
            mac=ep["mac"],
            gateway=(ep["gateway"] if default_route and not net["Internal"] else None),
            mtu=_mtu(net),
            ns_rtnl=sandbox.rtnl,
            ip6=ep.get("ip6", ""),
            prefixlen6=ep.get("prefixlen6", 0),
            gateway6=(ep.get("gateway6") if default_route and not net["Internal"] else None),
        )

    def leave(self, net: NetworkDoc, ep: EndpointDoc, sandbox: SandboxInfo) -> None:
        if ep.get("ifname"):
            netlink.delete_in_netns(sandbox.netns_path, ep["ifname"])

    # ---- published ports and rules ---------------------------------------------------------------

    def port_target(self, net: NetworkDoc) -> PortTarget:
        return PortTarget(net["Options"].get(model.BRIDGE_OPT_HOST_IP, ""), net["_gorae"]["bridge"])

    def sync(self, networks: Sequence[NetworkDoc], ports: Sequence[PortMappingDoc]) -> None:
        """Render the rule set and apply it (no-op when iptables is disabled or nothing changed)."""
        if not self.options.iptables:
            return
        with self._rules_lock:
            rules = iptables.RuleSet()
            for net in networks:
                masq = self.options.ip_masq and net["Options"].get(model.BRIDGE_OPT_MASQ, "true") == "true"
                rules.bridges.append(
                    iptables.BridgeRules(
                        bridge=net["_gorae"]["bridge"],
                        subnet=net["IPAM"]["Config"][0]["Subnet"],
                        internal=net["Internal"],
                        masquerade=masq,
                        icc=net["Options"].get(model.BRIDGE_OPT_ICC, "true") == "true",
                    )
                )
            for m in ports:
                rules.ports.append(
                    iptables.PortRule(
                        m["proto"], m["host_ip"], m["host_port"], m["container_ip"], m["container_port"], m["bridge"]
                    )
                )
            text = self.chains.render(rules)
            if text != self._applied_rules:  # a container without published ports changes nothing
                self._applied_rules = None
                # the jumps from the built-in chains are checked once per daemon (as dockerd does)
                iptables.apply(self.chains, rules, jumps=not self._jumps_checked)
                self._applied_rules, self._jumps_checked = text, True
            if self.options.ip6tables:
                self._sync6(networks)

    def _sync6(self, networks: Sequence[NetworkDoc]) -> None:
        """--ip6tables: the same forwarding, isolation and masquerading rules for the IPv6 subnets (published
        ports stay IPv4, see the README)."""
        rules = iptables.RuleSet()
        for net in networks:
            v6 = model.ipv6_of(net)
            if v6 is None:
                continue
            masq = self.options.ip_masq and net["Options"].get(model.BRIDGE_OPT_MASQ, "true") == "true"
            rules.bridges.append(
                iptables.BridgeRules(
                    bridge=net["_gorae"]["bridge"],
                    subnet=v6["subnet"],
                    internal=net["Internal"],
                    masquerade=masq,
                    icc=net["Options"].get(model.BRIDGE_OPT_ICC, "true") == "true",
                )
            )
        text = self.chains.render(rules)
        if text == self._applied_rules6:
            return
        self._applied_rules6 = None
        iptables.apply(self.chains, rules, jumps=not self._jumps6_checked, family=6)
        self._applied_rules6, self._jumps6_checked = text, True
