"""Container sandboxes: building one when a container starts (its namespace, an endpoint on each network
plugged in by the network's driver, published host ports, the embedded DNS server), tearing it down when
the container stops, and connecting or disconnecting a running container. On any failure nothing is left
behind; a crash in between leaves records that the controller's start-up cleans up.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import re
from collections.abc import Callable, Iterable
from typing import Any

from gorae.errors import Conflict, Forbidden, InvalidParameter, NotFound, SystemError_
from gorae.network import model
from gorae.network.dns.resolver import DnsServers, needs_dns
from gorae.network.ipam import Ipam, v6_pool
from gorae.network.kernel import netns, rtnl
from gorae.network.portmap import publish
from gorae.network.portmap.ports import PortReserver, validate_port_bindings
from gorae.network.settings import container_net, network_settings
from gorae.network.state import NetworkState, new_id
from gorae.network.types import (
    SANDBOX_ATTACHED,
    SANDBOX_HOST,
    SANDBOX_ISOLATED,
    SANDBOX_SHARED,
    ContainerNet,
    EndpointDoc,
    EndpointRequest,
    NetworkDoc,
    SandboxDoc,
    SandboxInfo,
)

log = logging.getLogger(__name__)

MAC_RE = re.compile(r"^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$")


def owns_namespace(sb: SandboxDoc) -> bool:
    """The sandbox's namespace file is its own (not the host's, not another container's)."""
    return sb.get("mode") in (SANDBOX_ATTACHED, SANDBOX_ISOLATED) and bool(sb.get("netns_path"))



def _nothing() -> None:
    """What teardown returns when there is nothing left to announce."""


USER_SUBNETS_ONLY = "user specified IP address is supported only when connecting to networks with user configured subnets"


def check_requested_addresses(net: NetworkDoc, ip4: str | None, ip6: str | None) -> None:
    """dockerd's checks of `--ip`/`--ip6` against a network: well-formed, on a subnet the user configured,
    inside it."""
    configs = net["IPAM"]["Config"]
    for value, version in ((ip4, 4), (ip6, 6)):
        if not value:
            continue
        try:
            addr = ipaddress.ip_address(value)
        except ValueError:
            addr = None
        if addr is None or addr.version != version:
            raise InvalidParameter(f"invalid IPv{version} address: {value}")
        subnets = [
            n for n in (ipaddress.ip_network(c["Subnet"]) for c in configs if c.get("Subnet")) if n.version == version
        ]
        if not subnets or (version == 4 and net["_gorae"].get("auto_subnet")):
            raise InvalidParameter(USER_SUBNETS_ONLY)
        if not any(addr in n for n in subnets):
            raise InvalidParameter(f"Invalid address {value}: It does not belong to any of this network's subnets")


class SandboxManager:
    def __init__(
        self, state: NetworkState, ipam: Ipam, ports: PortReserver, dns: DnsServers, netns_dir: str
    ) -> None:
        self.state = state
        self.ipam = ipam
        self.ports = ports
        self.dns = dns
        self.netns_dir = netns_dir
        self._teardowns: dict[str, asyncio.Task[None]] = {}  # kernel teardown after the exit is recorded

    def _netns_path(self, cid: str) -> str:
        return os.path.join(self.netns_dir, cid)

    # ---- setup -----------------------------------------------------------------------------------

    async def setup(self, req: EndpointRequest) -> ContainerNet:
        """Build the container's network sandbox; on any failure nothing is left behind."""
        cid = req.container_id
        mode = req.network_mode or "default"
        if mode == "default":
            mode = "bridge"
        await self.settle(cid)  # a restart reuses the namespace path of the last run
        if cid in self.state.sandboxes:
            raise Conflict(f"container {cid[:12]} already has a network sandbox")
        port_bindings = dict(req.port_bindings or {})
        sb: SandboxDoc = {
            "container_id": cid,
            "name": req.name.lstrip("/"),
            "hostname": req.hostname,
            "domainname": req.domainname,
            "sandbox_id": new_id(),
            "netns_path": None,
            "mode": SANDBOX_ATTACHED,
            "endpoints": [],
            "ports": [],
            "exposed": sorted(set(req.exposed_ports or []) | set(port_bindings.keys())),
            "port_bindings": port_bindings,
            "publish_all": req.publish_all,
            "dns": list(req.dns),
            "dns_search": list(req.dns_search),
            "dns_options": list(req.dns_options),
            "extra_hosts": list(req.extra_hosts),
            "env": list(req.env),
            "links": [],
            "link_aliases": {},
        }
        eps_cfg = dict(req.endpoints_config or {})
        validate_port_bindings(port_bindings)
        if req.mac_address and not MAC_RE.match(req.mac_address):
            raise InvalidParameter(f"{req.mac_address} is not a valid mac address")
        if mode.startswith("container:"):
            return await self._setup_shared(sb, mode.partition(":")[2])
        first = self.state.find_network(mode)
        caps = self.state.driver(first).capabilities
        if caps.exclusive:
            if not caps.host_namespace and any(k != first["Name"] for k in eps_cfg):
                raise InvalidParameter("Container cannot be connected to network endpoints: none and others")
            sb["mode"] = SANDBOX_HOST if caps.host_namespace else SANDBOX_ISOLATED
            return await self._setup_exclusive(sb, first)
        nets = [first]
        first_cfg = eps_cfg.pop(first["Name"], None) or eps_cfg.pop(first["Id"], None) or {}
        cfgs = [first_cfg]
        for key, cfg in eps_cfg.items():
            other = self.state.find_network(key)
            if other["Id"] != first["Id"] and not self.state.driver(other).capabilities.exclusive:
                nets.append(other)
                cfgs.append(cfg or {})
        cfgs[0] = {**cfgs[0], "Aliases": list(cfgs[0].get("Aliases") or []) + list(req.aliases)}
        if req.mac_address:
            cfgs[0] = {**cfgs[0], "MacAddress": req.mac_address}
        self.check_endpoint_configs(nets, cfgs)
        sb["netns_path"] = self._netns_path(cid)
        with self.state.lock:
            self.state.sandboxes[cid] = sb
        try:
            self.state.store_sandbox(sb)
            ipv6 = any(model.ipv6_of(n) for n in nets)  # dockerd disables IPv6 in a sandbox without it
            ns_rtnl = await asyncio.to_thread(netns.create, sb["netns_path"], rtnl=True, ipv6=ipv6)
            # the default route goes through the first network that can give one (libnetwork's gateway
            # endpoint): an internal network, or the swarm's ingress, is skipped for the next
            gateway_at = next((i for i, n in enumerate(nets) if self._routes(n)), None)
            try:
                for i, (net, cfg) in enumerate(zip(nets, cfgs, strict=True)):
                    await self.attach(
                        sb, net, cfg, ifname=f"eth{i}", default_route=(i == gateway_at), ns_rtnl=ns_rtnl
                    )
            finally:
                ns_rtnl.close()
            self._resolve_links(sb, list(req.links))
            await asyncio.to_thread(self._publish_ports, sb)
            self.state.store_sandbox(sb)
            await asyncio.to_thread(self.state.sync)
            if needs_dns(self.state, sb):
                await self.dns.start(cid)
        except BaseException:
            await self.teardown(cid)
            await self.settle(cid)  # nothing left behind when the call returns
            raise
        for ep_id in sb["endpoints"]:
            ep = self.state.endpoints[ep_id]
            self.state.event("connect", self.state.networks[ep["network_id"]], {"container": cid})
        return container_net(self.state, sb)

    def container_files(self, container_id: str) -> tuple[str, str]:
        cnet = container_net(self.state, self.state.sandbox(container_id))
        return cnet.hosts, cnet.resolv_conf

    def check_endpoint_configs(self, nets: list[NetworkDoc], cfgs: list[dict[str, Any]]) -> None:
        for net, cfg in zip(nets, cfgs, strict=True):
            user = not net["_gorae"].get("default")
            ipam_cfg = cfg.get("IPAMConfig") or {}
            if (ipam_cfg.get("IPv4Address") or ipam_cfg.get("IPv6Address")) and not user:
                raise InvalidParameter("user specified IP address is supported on user defined networks only")
            if cfg.get("Aliases") and not user:
                raise InvalidParameter(
                    "network-scoped alias is supported only for containers in user defined networks"
                )
            if cfg.get("MacAddress") and not MAC_RE.match(cfg["MacAddress"]):
                raise InvalidParameter(f"{cfg['MacAddress']} is not a valid mac address")

    async def _setup_exclusive(self, sb: SandboxDoc, net: NetworkDoc) -> ContainerNet:
        """host and none: no interface; none gets its own namespace with only lo."""
        cid = sb["container_id"]
        if sb["mode"] == SANDBOX_ISOLATED:
            sb["netns_path"] = self._netns_path(cid)
        with self.state.lock:
            self.state.sandboxes[cid] = sb
        try:
            if sb["netns_path"]:
                await asyncio.to_thread(netns.create, sb["netns_path"], ipv6=False)  # lo comes up there
            ep: EndpointDoc = {
                "id": new_id(),
                "container_id": cid,
                "container_name": sb["name"],
                "network_id": net["Id"],
                "ip": "",
                "prefixlen": 0,
                "mac": "",
                "gateway": "",
                "aliases": [],
                "dns_names": [],
                "ifname": "",
                "veth": "",
                "ipam_config": None,
            }
            self.state.driver(net).create_endpoint(net, ep)
            with self.state.lock:
                self.state.endpoints[ep["id"]] = ep
                sb["endpoints"].append(ep["id"])
            self.state.store_endpoint(ep)
            self.state.store_sandbox(sb)
        except BaseException:
            await self.teardown(cid)
            await self.settle(cid)
            raise
        self.state.event("connect", net, {"container": cid})
        return container_net(self.state, sb)

    async def _setup_shared(self, sb: SandboxDoc, other_ref: str) -> ContainerNet:
        other = self.state.find_sandbox(other_ref)
        if other is None:
            raise NotFound(f"No such container: {other_ref}")
        while other.get("mode") == SANDBOX_SHARED:
            other = self.state.sandbox(other["shared_with"])
        if other["container_id"] == sb["container_id"]:
            raise InvalidParameter("cannot join own network namespace")
        sb.update(mode=SANDBOX_SHARED, shared_with=other["container_id"], netns_path=other["netns_path"])
        with self.state.lock:
            self.state.sandboxes[sb["container_id"]] = sb
        self.state.store_sandbox(sb)
        base = container_net(self.state, other)
        return ContainerNet(
            netns_path=other["netns_path"],
            settings=model.empty_settings(),
            hosts=base.hosts,
            resolv_conf=base.resolv_conf,
            link_env=[],
        )

    async def attach(
        self,
        sb: SandboxDoc,
        net: NetworkDoc,
        cfg: dict[str, Any],
        *,
        ifname: str,
        default_route: bool,
        ns_rtnl: Any = None,
    ) -> EndpointDoc:
        """Allocate an address on net and have its driver plug an endpoint into the sandbox's namespace."""
        cid = sb["container_id"]
        driver = self.state.driver(net)
        ep_id = new_id()
        ipam_cfg = cfg.get("IPAMConfig") or {}
        requested = ipam_cfg.get("IPv4Address") or None
        requested6 = ipam_cfg.get("IPv6Address") or None
        ip, prefixlen, gateway = "", 0, ""
        ip6, prefixlen6, gateway6 = "", 0, ""
        v6 = model.ipv6_of(net)
        check_requested_addresses(net, requested, requested6)
        if v6 is None:
            requested6 = None  # a v6 subnet on a network without EnableIPv6: dockerd ignores the address
        if driver.capabilities.addresses:
            label = f"{net['Name']} ({net['Id']})"
            ip = self.ipam.allocate(net["Id"], ep_id, requested, label=label)
            pool = net["IPAM"]["Config"][0]
            prefixlen = ipaddress.IPv4Network(pool["Subnet"]).prefixlen
            gateway = pool.get("Gateway", "")
            if v6 is not None:
                try:
                    ip6 = self.ipam.allocate(v6_pool(net["Id"]), ep_id, requested6, label=label)
                except BaseException:
                    self.ipam.release(net["Id"], ip, ep_id)
                    raise
                prefixlen6, gateway6 = int(v6["prefixlen"]), str(v6["gateway"])
        ipam_config: dict[str, str] = {}
        if requested:
            ipam_config["IPv4Address"] = requested
        if requested6:
            ipam_config["IPv6Address"] = requested6
        user = not net["_gorae"].get("default")
        aliases = list(dict.fromkeys(cfg.get("Aliases") or []))
        ep: EndpointDoc = {
            "id": ep_id,
            "container_id": cid,
            "container_name": sb["name"],
            "network_id": net["Id"],
            "ip": ip,
            "prefixlen": prefixlen,
            "ip6": ip6,
            "prefixlen6": prefixlen6,
            "gateway6": gateway6,
            "mac": cfg.get("MacAddress") or "",
            "gateway": gateway,
            "aliases": aliases,
            "dns_names": ([sb["name"], cid[:12], *aliases] if user else []),
            "ifname": ifname,
            "veth": "",
            "ipam_config": ipam_config or None,
            "links": cfg.get("Links") or None,
            "driver_opts": dict(cfg.get("DriverOpts") or {}) or None,
        }
        driver.create_endpoint(net, ep)
        with self.state.lock:
            self.state.endpoints[ep_id] = ep
            sb["endpoints"].append(ep_id)
        self.state.store_endpoint(ep)
        sandbox = SandboxInfo(cid, sb["netns_path"], ns_rtnl)
        await asyncio.to_thread(driver.join, net, ep, sandbox, default_route=default_route)
        return ep

    def _routes(self, net: NetworkDoc) -> bool:
        """Whether an endpoint on `net` can be the sandbox's way out: it has addresses and is neither internal
        nor the swarm's ingress network."""
        return (
            self.state.driver(net).capabilities.addresses and not net.get("Internal") and not net.get("Ingress")
        )

    def _route_carrier(self, sb: SandboxDoc) -> str | None:
        """The endpoint the sandbox's default route goes through: the first that can give one (the one that
        got it at the start or at its connect)."""
        with self.state.lock:
            for e in sb["endpoints"]:
                ep = self.state.endpoints.get(e)
                net = self.state.networks.get(ep["network_id"]) if ep else None
                if net is not None and self._routes(net):
                    return str(e)
        return None

    def _route_through(self, sb: SandboxDoc, ep: EndpointDoc) -> None:
        """A default route through `ep`'s gateways (blocking: run it in a thread)."""

        def inside() -> None:
            with rtnl.Rtnl() as sock:
                index = sock.index(ep["ifname"])
                for gateway in (ep.get("gateway"), ep.get("gateway6")):
                    if gateway:
                        sock.add_default_route(str(gateway), index)

        try:
            netns.run_in_netns(sb["netns_path"], inside)
        except OSError as err:
            log.warning("default route of %s through %s: %s", sb["container_id"][:12], ep["ifname"], err)

    def _endpoint_networks(self, sb: SandboxDoc) -> list[str]:
        with self.state.lock:
            return [
                str(self.state.endpoints[e]["network_id"])
                for e in sb["endpoints"]
                if e in self.state.endpoints and self.state.endpoints[e]["network_id"] in self.state.networks
            ]

    def _resolve_links(self, sb: SandboxDoc, links: list[str]) -> None:
        """Legacy links: `child:alias` (or docker's stored `/child:/parent/alias`)."""
        for link in links:
            child_ref, _, alias = link.partition(":")
            alias = alias.rsplit("/", 1)[-1] if alias else child_ref.lstrip("/")
            child = self.state.find_sandbox(child_ref)
            if child is None or child.get("mode") != SANDBOX_ATTACHED:
                raise InvalidParameter(
                    f"Cannot link to a non running container: /{child_ref.lstrip('/')} AS /{sb['name']}/{alias}"
                )
            if self.state.shared_network_ip(sb, child) is None:
                raise InvalidParameter(
                    f"Cannot link to /{child['name']}, as it does not belong to the default network"
                )
            sb["links"].append({"child": child["container_id"], "alias": alias})
            sb["link_aliases"][alias.lower()] = child["container_id"]

    def _publish_ports(self, sb: SandboxDoc) -> None:
        """Reserve host ports for PortBindings (and -P) towards the first endpoint with an address whose
        driver forwards ports; all or nothing."""
        for ep in self.state.endpoints_of(sb):
            if not ep.get("ip"):
                continue
            net = self.state.networks[ep["network_id"]]
            target = self.state.driver(net).port_target(net)
            if target is None:
                continue
            try:
                sb["ports"] = publish.reserve_bindings(
                    self.ports,
                    sb["port_bindings"],
                    sb["exposed"] if sb["publish_all"] else [],
                    default_host_ip=target.default_host_ip,
                    container_ip=ep["ip"],
                    bridge=target.interface,
                )
            except SystemError_ as e:
                raise SystemError_(
                    f"driver failed programming external connectivity on endpoint {sb['name']} ({ep['id']}):"
                    f" {e.message}"
                ) from None
            return

    async def take_ports(self, container_id: str, from_id: str) -> None:
        """Move the published ports of running container `from_id` to running container `container_id`
        (gorae's handover, used by `gorae deploy`): the host ports stay held throughout and the forwarding
        rules switch to the new container's address in one iptables transaction, so a client never meets a
        closed port; connections already open to the old container keep flowing (conntrack). The old one
        keeps running, publishing nothing."""
        state = self.state
        with state.lock:
            new, old = state.sandboxes.get(container_id), state.sandboxes.get(from_id)
            if new is None or new.get("mode") != SANDBOX_ATTACHED:
                raise Conflict(f"container {container_id[:12]} has no network endpoint to take ports to")
            if old is None or not old.get("ports"):
                raise Conflict(f"container {from_id[:12]} publishes no ports")
            if new.get("ports"):
                raise Conflict(f"container {container_id[:12]} already publishes ports")
            target_ep, target = None, None
            for ep in state.endpoints_of(new):
                if ep.get("ip"):
                    target = state.driver(state.networks[ep["network_id"]]).port_target(
                        state.networks[ep["network_id"]]
                    )
                    if target is not None:
                        target_ep = ep
                        break
            if target_ep is None or target is None:
                raise Conflict(f"container {container_id[:12]} is on no network that publishes ports")
            new["ports"] = [
                {**m, "container_ip": target_ep["ip"], "bridge": target.interface} for m in old["ports"]
            ]
            new["port_bindings"] = dict(old.get("port_bindings") or {})
            new["exposed"] = sorted(set(new.get("exposed") or []) | set(new["port_bindings"]))
            old["ports"], old["port_bindings"] = [], {}
        state.store_sandbox(old)
        state.store_sandbox(new)
        await asyncio.to_thread(state.sync)

    def _release_ports(self, sb: SandboxDoc) -> None:
        for m in sb.get("ports", []):
            self.ports.release(m["proto"], m["host_ip"], m["host_port"])
        sb["ports"] = []

    # ---- teardown --------------------------------------------------------------------------------

    async def teardown(self, container_id: str, *, announce: bool = True) -> Callable[[], None]:
        """Remove the container's DNS server, port mappings, endpoints and namespace. Idempotent; a
        container without a sandbox is fine.

        Returns once the sandbox is gone from the controller's view (names, rules, `network inspect`, held
        host ports); the kernel work (deleting a veth waits ~20 ms for RCU grace periods) runs in a
        background task, which releases each address only after its interface is gone, so a quick next
        `run` never meets a live copy of it. `settle()` waits for that task (setup of the same container,
        shutdown); a crash in between leaves records that the next start cleans up."""
        await self.dns.stop(container_id)
        state = self.state
        with state.lock:
            sb = state.sandboxes.pop(container_id, None)
            if sb is None:
                return _nothing
            eps = [state.endpoints.pop(e) for e in sb["endpoints"] if e in state.endpoints]
            events = [state.networks[ep["network_id"]] for ep in eps if ep["network_id"] in state.networks]
            had_ports = bool(sb.get("ports"))
            self._release_ports(sb)
        if had_ports:  # once stop/exit returns, the host port no longer forwards (and is free again)
            await asyncio.to_thread(state.sync)
        task = asyncio.get_running_loop().create_task(self._teardown_kernel(container_id, sb, eps))
        self._teardowns[container_id] = task
        task.add_done_callback(
            lambda t: (
                self._teardowns.pop(container_id, None) if self._teardowns.get(container_id) is t else None
            )
        )

        def publish() -> None:  # once, however often it is called
            while events:
                state.event("disconnect", events.pop(0), {"container": container_id})

        if announce:
            publish()
            return _nothing
        return publish

    async def _teardown_kernel(self, cid: str, sb: SandboxDoc, eps: Iterable[EndpointDoc]) -> None:
        try:
            await asyncio.to_thread(self._teardown_kernel_sync, cid, sb, eps)
        except Exception:  # noqa: BLE001 - background: log, never raise into nobody
            log.exception("network teardown of %s", cid[:12])

    def _teardown_kernel_sync(self, cid: str, sb: SandboxDoc, eps: Iterable[EndpointDoc]) -> None:
        """Kernel state first (interfaces, the namespace), then the records; a step that fails (a full disk
        refusing a record write) is logged and the others still run — the kernel is never left behind for a
        record, and records left are reconciled at the next start."""
        eps = list(eps)
        for ep in eps:
            self._step(f"interfaces of endpoint {ep['id'][:12]}", self._delete_interfaces, ep)
        if owns_namespace(sb):
            self._step(f"namespace of {cid[:12]}", netns.delete, sb["netns_path"])
        for ep in eps:
            if ep.get("ip"):
                self._step(f"address {ep['ip']}", self.ipam.release, ep["network_id"], ep["ip"], ep["id"])
            if ep.get("ip6"):
                self._step(f"address {ep['ip6']}", self.ipam.release, v6_pool(ep["network_id"]), ep["ip6"], ep["id"])
            self._step(f"endpoint {ep['id'][:12]}", self.state.delete_endpoint, ep["id"])
        with self.state.lock:
            if cid not in self.state.sandboxes:
                self._step(f"sandbox of {cid[:12]}", self.state.delete_sandbox, cid)

    @staticmethod
    def _step(what: str, fn: Callable[..., object], *args: object) -> None:
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - teardown goes on; the failure is reported
            log.error("teardown: %s: %s", what, e)

    def _delete_interfaces(self, ep: EndpointDoc) -> None:
        net = self.state.networks.get(ep["network_id"])
        if net is not None and net["Driver"] in self.state.drivers:
            self.state.driver(net).delete_endpoint(net, ep)

    async def settle(self, container_id: str | None = None) -> None:
        """Wait for the background teardown of one container (or of all)."""
        if container_id is None:
            tasks = list(self._teardowns.values())
        else:
            tasks = [t for t in (self._teardowns.get(container_id),) if t is not None]
        for t in tasks:
            await asyncio.shield(t)

    def drop_sandbox_sync(self, cid: str) -> None:
        """Remove a sandbox at once, in the calling thread (start-up recovery)."""
        with self.state.lock:
            sb = self.state.sandboxes.get(cid)
            if sb is None:
                return
            self._release_ports(sb)
        for e in list(sb["endpoints"]):
            self.drop_endpoint(sb, e)
        if owns_namespace(sb):
            netns.delete(sb["netns_path"])
        with self.state.lock:
            self.state.sandboxes.pop(cid, None)
            self.state.delete_sandbox(cid)

    def release_endpoint(self, ep: EndpointDoc) -> None:
        """Give back an endpoint's kernel and address resources: its driver's interfaces, then its IP."""
        self._delete_interfaces(ep)
        if ep.get("ip"):
            self.ipam.release(ep["network_id"], ep["ip"], ep["id"])
        if ep.get("ip6"):
            self.ipam.release(v6_pool(ep["network_id"]), ep["ip6"], ep["id"])

    def drop_endpoint(self, sb: SandboxDoc, ep_id: str) -> None:
        with self.state.lock:
            ep = self.state.endpoints.get(ep_id)
        if ep is not None:
            self.release_endpoint(ep)
        with self.state.lock:
            self.state.endpoints.pop(ep_id, None)
            if ep_id in sb["endpoints"]:
                sb["endpoints"].remove(ep_id)
            self.state.delete_endpoint(ep_id)

    # ---- connect, disconnect ---------------------------------------------------------------------

    async def connect(
        self,
        network: str,
        container_id: str,
        *,
        ipv4_address: str | None = None,
        ipv6_address: str | None = None,
        aliases: Iterable[str] = (),
        links: Iterable[str] = (),
        driver_opts: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """docker network connect for a container with a live sandbox; returns its NetworkSettings."""
        state = self.state
        net = state.find_network(network)
        sb = state.sandbox(container_id)
        caps = state.driver(net).capabilities
        if sb["mode"] == SANDBOX_HOST or caps.host_namespace:
            raise Forbidden("container cannot be disconnected from host network or connected to host network")
        if sb["mode"] == SANDBOX_ISOLATED or caps.exclusive:
            raise Forbidden(
                "container cannot be connected to multiple networks with one of the networks in private (none) mode"
            )
        if sb["mode"] == SANDBOX_SHARED:
            raise Forbidden(
                "container sharing network namespace with another container or host cannot be connected to any other network"
            )
        for e in sb["endpoints"]:
            if state.endpoints.get(e, {}).get("network_id") == net["Id"]:
                raise Forbidden(f"endpoint with name {sb['name']} already exists in network {net['Name']}")
        cfg: dict[str, Any] = {"Aliases": list(aliases), "DriverOpts": dict(driver_opts or {})}
        ipam_cfg = {k: v for k, v in (("IPv4Address", ipv4_address), ("IPv6Address", ipv6_address)) if v}
        if ipam_cfg:
            cfg["IPAMConfig"] = ipam_cfg
        self.check_endpoint_configs([net], [cfg])
        used = {ep["ifname"] for ep in state.endpoints_of(sb)}
        ifname = next(f"eth{i}" for i in range(1000) if f"eth{i}" not in used)
        had_dns = needs_dns(state, sb)
        try:
            routed = any(self._routes(state.networks[n]) for n in self._endpoint_networks(sb))
            await self.attach(sb, net, cfg, ifname=ifname, default_route=self._routes(net) and not routed)
        except BaseException:
            # attach registers the endpoint before plugging; undo what exists
            for e in list(sb["endpoints"]):
                if state.endpoints.get(e, {}).get("network_id") == net["Id"]:
                    await asyncio.to_thread(self.drop_endpoint, sb, e)
            state.store_sandbox(sb)
            raise
        state.store_sandbox(sb)
        await asyncio.to_thread(state.sync)
        if not had_dns and needs_dns(state, sb):
            await self.dns.start(container_id)
        state.event("connect", net, {"container": container_id})
        return network_settings(state, container_id)

    async def disconnect(self, network: str, container_id: str, *, force: bool = False) -> dict[str, Any]:
        state = self.state
        net = state.find_network(network)
        sb = state.sandbox(container_id)
        driver = state.driver(net)
        if driver.capabilities.host_namespace or sb["mode"] == SANDBOX_HOST:
            raise Forbidden("container cannot be disconnected from host network or connected to host network")
        mine = [e for e in sb["endpoints"] if state.endpoints.get(e, {}).get("network_id") == net["Id"]]
        if not mine:
            raise Forbidden(f"container {container_id} is not connected to network {net['Name']}")
        carrier = self._route_carrier(sb)
        for e in mine:
            ep = state.endpoints[e]
            if ep.get("ifname") and sb.get("netns_path"):
                sandbox = SandboxInfo(container_id, sb["netns_path"])
                try:
                    await asyncio.to_thread(driver.leave, net, ep, sandbox)
                except OSError as err:
                    log.warning("removing %s from %s: %s", ep["ifname"], container_id[:12], err)
            if any(m["container_ip"] == ep.get("ip") for m in sb.get("ports", [])):
                self._release_ports(sb)
            await asyncio.to_thread(self.drop_endpoint, sb, e)
        if carrier in mine and sb.get("netns_path"):
            # the default route went with it: the next network that can give one takes over (libnetwork)
            successor = self._route_carrier(sb)
            if successor is not None:
                await asyncio.to_thread(self._route_through, sb, state.endpoints[successor])
        state.store_sandbox(sb)
        await asyncio.to_thread(state.sync)
        if not needs_dns(state, sb):
            await self.dns.stop(container_id)
        state.event("disconnect", net, {"container": container_id})
        return network_settings(state, container_id)
