"""NetworkController: the one entry point the daemon uses for networking. It owns the networks
(create/inspect/list/remove/prune), chooses each network's driver by type from its `DriverRegistry`, and
recovers at start-up; container sandboxes are its `SandboxManager`'s (sandboxes.py), the embedded DNS its
`DnsServers`' (dns/resolver.py), the shapes docker shows `settings.py`'s and `model.py`'s.

The kernel state (bridges, iptables chains, held host ports, DNS sockets) is derived from the records in
the metadata store, so `init()` after a restart (also after kill -9) rebuilds it idempotently.
"""

from __future__ import annotations

import asyncio
import builtins
import ipaddress
import logging
import os
import re
from collections.abc import Callable, Iterable
from typing import Any

from gorae.errors import (
    Conflict,
    Forbidden,
    GoraeError,
    InvalidParameter,
    NotFound,
    SystemError_,
    Unavailable,
)
from gorae.network import model
from gorae.network.clusternets import ClusterAttachments, is_cluster
from gorae.network.dns.resolver import DnsServers, resolve_name, reverse_name
from gorae.network.drivers.builtin import builtin_drivers
from gorae.network.ipam import (
    DEFAULT_POOLS,
    Ipam,
    choose_subnet,
    parse_any_subnet,
    parse_ip,
    parse_ip6,
    parse_subnet,
    v6_pool,
)
from gorae.network.kernel import netlink, netns
from gorae.network.names import NetworkNames
from gorae.network.portmap.ports import PortReserver
from gorae.network.registry import DriverRegistry
from gorae.network.sandboxes import SandboxManager
from gorae.network.settings import network_settings, port_map
from gorae.network.state import NET, NetworkState, new_id
from gorae.network.types import (
    SANDBOX_ATTACHED,
    SANDBOX_ISOLATED,
    ClusterNetworks,
    ContainerNet,
    EndpointRequest,
    MetaStore,
    NetworkDoc,
    NetworkDriver,
    NetworkOptions,
    NetworkSpec,
    Publish,
)

log = logging.getLogger(__name__)


class NetworkController:
    def __init__(
        self,
        meta: MetaStore,
        exec_root: str,
        options: NetworkOptions,
        names: NetworkNames,
        *,
        drivers: Iterable[NetworkDriver] | None = None,
        publish: Publish | None = None,
    ) -> None:
        """drivers: the network drivers (default: bridge, host and null); register more on `self.drivers`
        before `init()`."""
        self.options = options
        self.names = names
        self.drivers = DriverRegistry(builtin_drivers(names, options) if drivers is None else drivers)
        self.state = NetworkState(meta, self.drivers, publish)
        self.ipam = Ipam(meta)
        self.ports = PortReserver()
        self.dns = DnsServers(self.state)
        self.sandboxes = SandboxManager(
            self.state, self.ipam, self.ports, self.dns, os.path.join(exec_root, "netns")
        )
        self.swarm = ClusterAttachments(self.state, self.ipam)

    @property
    def cluster(self) -> ClusterNetworks | None:
        """The swarm's networks (set by the swarm's network component while this node is in a swarm)."""
        return self.swarm.cluster

    @cluster.setter
    def cluster(self, cluster: ClusterNetworks | None) -> None:
        self.swarm.cluster = cluster

    @property
    def publish(self) -> Publish | None:
        return self.state.publish

    @publish.setter
    def publish(self, publish: Publish | None) -> None:
        self.state.publish = publish

    # ---- start-up, shutdown, recovery ----------------------------------------------------------

    async def init(self) -> None:
        """Predefined networks, drivers' kernel state, held host ports and DNS servers from the store."""
        await asyncio.to_thread(self._init_sync)
        await self.dns.restart_all()

    def _init_sync(self) -> None:
        state = self.state
        with state.lock:
            state.load()
            names = {d["Name"] for d in state.networks.values()}
            for driver in self.drivers:
                if driver.predefined_name and driver.predefined_name not in names:
                    self._create_predefined(driver)
                elif driver.predefined_name:
                    self._refresh_predefined(driver)
            for driver in self.drivers:
                driver.restore(self._networks_of(driver))
            # endpoints without a sandbox: a crash in the middle of setup_container
            for ep in list(state.endpoints.values()):
                if ep["container_id"] not in state.sandboxes:
                    self.sandboxes.drop_endpoint({"endpoints": []}, ep["id"])
            # sandboxes whose namespace is gone (host reboot) are stale
            for cid, sb in list(state.sandboxes.items()):
                if sb.get("mode") in (SANDBOX_ATTACHED, SANDBOX_ISOLATED) and not netns.exists(
                    sb.get("netns_path") or ""
                ):
                    log.info("dropping stale network sandbox of %s", cid[:12])
                    self.sandboxes.drop_sandbox_sync(cid)
            for sb in state.sandboxes.values():
                for m in sb.get("ports", []):
                    try:
                        self.ports.reserve(m["proto"], m["host_ip"], m["host_port"])
                    except SystemError_ as e:
                        log.warning("host port %s of %s: %s", m["host_port"], sb["container_id"][:12], e)
            state.sync()

    def _networks_of(self, driver: NetworkDriver) -> list[NetworkDoc]:
        with self.state.lock:
            return [n for n in self.state.networks.values() if n["Driver"] == driver.type]

    def _refresh_predefined(self, driver: NetworkDriver) -> None:
        """A predefined network's IPv6 side follows the daemon's options when nothing is attached to it."""
        state = self.state
        doc = next(n for n in state.networks.values() if n["Name"] == driver.predefined_name)
        if any(ep["network_id"] == doc["Id"] for ep in state.endpoints.values()):
            return
        spec = driver.predefined_network(self._pick_subnet)
        before = (doc.get("EnableIPv6"), (doc["_gorae"].get("ipv6") or {}).get("subnet"))
        self._default_ipv6(doc, spec)
        if (doc.get("EnableIPv6"), (doc["_gorae"].get("ipv6") or {}).get("subnet")) != before:
            state.store_network(doc)

    def _create_predefined(self, driver: NetworkDriver) -> None:
        spec = driver.predefined_network(self._pick_subnet)
        doc = model.predefined_network_doc(str(driver.predefined_name), driver.type, new_id(), spec)
        if spec.subnet:
            self.ipam.add_pool(doc["Id"], spec.subnet, spec.gateway or "", spec.ip_range)
        self._default_ipv6(doc, spec)
        self.state.store_network(doc)

    def _default_ipv6(self, doc: NetworkDoc, spec: NetworkSpec) -> None:
        """The predefined network's IPv6 side as the daemon's options say now (--ipv6, --fixed-cidr-v6): set
        at creation, and again at each start for a network no container is on (dockerd rebuilds it)."""
        doc["EnableIPv6"] = spec.enable_ipv6
        want = spec.ipv6_subnet if spec.enable_ipv6 else None
        have = (doc["_gorae"].get("ipv6") or {}).get("subnet")
        if want == have:
            return
        if have:
            doc["IPAM"]["Config"] = [c for c in doc["IPAM"]["Config"] if ":" not in c.get("Subnet", "")]
            doc["_gorae"].pop("ipv6", None)
            self.ipam.remove_pool(v6_pool(doc["Id"]))
        if want:
            v6 = model.set_ipv6(doc, want, "", None, user_gateway=False)
            self.ipam.add_pool(v6_pool(doc["Id"]), v6["subnet"], v6["gateway"], v6["range"])

    def _pick_subnet(self) -> ipaddress.IPv4Network:
        """A subnet of the address pools that no network and no host route uses."""
        pools = [dict(p) for p in self.options.default_address_pools] or DEFAULT_POOLS
        return choose_subnet(pools, self._taken_subnets())

    def _taken_subnets(self) -> list[ipaddress.IPv4Network]:
        taken = [n for n in map(ipaddress.ip_network, self._our_subnets()) if isinstance(n, ipaddress.IPv4Network)]
        try:
            taken += netlink.host_ipv4_networks()
        except OSError as e:
            log.warning("cannot read host routes: %s", e)
        return taken

    def _our_subnets(self) -> list[str]:
        return [
            c["Subnet"] for n in self.state.networks.values() for c in n["IPAM"]["Config"] if c.get("Subnet")
        ]

    async def close(self) -> None:
        """Stop serving (daemon shutdown): DNS servers and held ports; kernel state stays for live restore."""
        await self.sandboxes.settle()
        await self.dns.stop_all()
        self.ports.close()

    async def purge(self) -> None:
        """Remove everything this controller put in the kernel (uninstall, tests): sandboxes, networks' kernel
        state, rules."""
        for cid in list(self.state.sandboxes):
            await self.sandboxes.teardown(cid)
        await self.close()
        for driver in self.drivers:
            await asyncio.to_thread(driver.purge, self._networks_of(driver))

    # ---- networks --------------------------------------------------------------------------------

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
        check_duplicate: bool = True,
        ipv6_subnet: str | None = None,
        ipv6_gateway: str | None = None,
        ipv6_range: str | None = None,
    ) -> dict[str, str]:
        """docker network create; returns {"Id", "Warning"}. An IPv6 pool (`ipv6_*`) gives the network's
        endpoints IPv6 addresses when `enable_ipv6`; without it dockerd only records it, and so does gorae."""
        driver = driver or "bridge"
        if not name:
            raise InvalidParameter("network name must not be empty")
        if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", name):
            raise InvalidParameter(
                f"invalid network name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )
        if name in model.PREDEFINED:
            raise Forbidden(f"{name} is a pre-defined network and cannot be created")
        drv = self.drivers.get(driver)  # NotFound: plugin "x" not found
        if drv.capabilities.cluster:
            return self._create_cluster_network(
                name,
                driver,
                subnet=subnet,
                gateway=gateway,
                ip_range=ip_range,
                internal=internal,
                attachable=attachable,
                labels=labels,
                options=options,
                ipam_driver=ipam_driver,
                enable_ipv6=enable_ipv6,
            )
        if not drv.capabilities.user_networks:
            raise Forbidden(f'only one instance of "{driver}" network is allowed')
        if ipam_driver not in ("", "default"):
            raise NotFound(f'plugin "{ipam_driver}" not found')
        if (gateway or ip_range) and not subnet or (ipv6_gateway or ipv6_range) and not ipv6_subnet:
            raise InvalidParameter("every ip-range or gateway must have a corresponding subnet")
        if enable_ipv6 and not ipv6_subnet:  # dockerd has no default IPv6 pools either
            raise Forbidden(
                "could not find an available, non-overlapping IPv6 address pool among the defaults to assign "
                "to the network"
            )
        options = dict(options or {})
        state = self.state
        with state.lock:
            if any(n["Name"] == name for n in state.networks.values()):
                raise Conflict(f"network with name {name} already exists")
            nid = new_id()
            ours = [ipaddress.ip_network(o) for o in self._our_subnets()]
            if subnet:
                try:
                    net = parse_subnet(subnet)
                except InvalidParameter as e:
                    raise InvalidParameter(f"Invalid subnet {subnet} : {e.message}") from None
                if any(o.version == 4 and net.overlaps(o) for o in ours):
                    raise Forbidden("Pool overlaps with other one on this address space")
            else:
                net = self._pick_subnet()  # no --ip on it (dockerd: only on user configured subnets)
            if gateway:
                gw = parse_ip(gateway, "gateway address")
                if gw not in net:
                    raise InvalidParameter(f"no matching subnet for gateway {gateway}")
                gw_s = str(gw)
            else:
                gw_s = str(next(net.hosts()))
            rng_s = None
            if ip_range:
                rng = parse_subnet(ip_range)
                if not rng.subnet_of(net):
                    raise InvalidParameter(f"no matching subnet for range {ip_range}")
                rng_s = str(rng)
            net6 = None
            if ipv6_subnet:
                try:
                    net6 = parse_any_subnet(ipv6_subnet)
                except InvalidParameter as e:
                    raise InvalidParameter(f"Invalid subnet {ipv6_subnet} : {e.message}") from None
                if net6.version != 6:
                    raise InvalidParameter("bridge driver doesn't support multiple subnets")
                if any(o.version == 6 and net6.overlaps(o) for o in ours):
                    raise Forbidden("Pool overlaps with other one on this address space")
                if ipv6_gateway and parse_ip6(ipv6_gateway, "gateway address") not in net6:
                    raise InvalidParameter(f"no matching subnet for gateway {ipv6_gateway}")
                if ipv6_range:
                    rng6 = parse_any_subnet(ipv6_range)
                    if rng6.version != 6 or not rng6.subnet_of(net6):
                        raise InvalidParameter(f"no matching subnet for range {ipv6_range}")
            interface = drv.network_interface(nid, options, list(state.networks.values()))
            doc = model.network_doc(
                name=name,
                id=nid,
                driver=driver,
                subnet=str(net),
                gateway=gw_s,
                ip_range=rng_s,
                internal=internal,
                attachable=attachable,
                labels=dict(labels or {}),
                options=options,
                bridge=interface,
                ipam_options={},
            )
            doc["EnableIPv6"] = enable_ipv6
            if not subnet:
                doc["_gorae"]["auto_subnet"] = True
            elif not gateway:
                doc["_gorae"]["implicit_gateway"] = True
            if net6 is not None:
                rng6_s = str(ipaddress.ip_network(ipv6_range, strict=False)) if ipv6_range else None
                v6 = model.set_ipv6(doc, str(net6), ipv6_gateway or "", rng6_s, user_gateway=bool(ipv6_gateway))
                if not enable_ipv6:
                    del doc["_gorae"]["ipv6"]  # recorded in IPAM.Config only, as dockerd: no addresses
            self.ipam.add_pool(nid, str(net), gw_s, rng_s)
            if model.ipv6_of(doc):
                self.ipam.add_pool(v6_pool(nid), v6["subnet"], v6["gateway"], v6["range"])
            try:
                drv.create_network(doc)
            except BaseException:
                self._remove_pools(nid)
                raise
            try:
                state.store_network(doc)
                state.sync()
            except BaseException:
                state.forget_network(nid)
                self._remove_pools(nid)
                drv.delete_network(doc)
                raise
        state.event("create", doc)
        return {"Id": nid, "Warning": ""}

    def _remove_pools(self, network_id: str) -> None:
        self.ipam.remove_pool(network_id)
        self.ipam.remove_pool(v6_pool(network_id))

    def _create_cluster_network(self, name: str, driver: str, **kw: Any) -> dict[str, str]:
        """`network create -d overlay`: a swarm-scoped network in the cluster store (managers only)."""
        cluster = self.cluster
        if cluster is None:
            raise Unavailable(
                'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect '
                "this node to swarm and try again."
            )
        if kw.get("enable_ipv6"):
            raise InvalidParameter("IPv6 networks are not supported by gorae yet")
        if "encrypted" in (kw.get("options") or {}):  # refused, never quietly made in the clear
            raise InvalidParameter(
                "encrypted overlay networks (--opt encrypted) are not supported by gorae yet: the VXLAN traffic "
                "between nodes would not be encrypted"
            )
        if kw.get("ipam_driver") not in ("", "default", None):
            raise NotFound(f'plugin "{kw["ipam_driver"]}" not found')
        if (kw.get("gateway") or kw.get("ip_range")) and not kw.get("subnet"):
            raise InvalidParameter("every ip-range or gateway must have a corresponding subnet")
        with self.state.lock:
            if any(n["Name"] == name for n in self.state.networks.values()):
                raise Conflict(f"network with name {name} already exists")
        return cluster.create(name, {"Driver": driver, **kw})

    def _find_any(self, name_or_id: str) -> dict[str, Any]:
        """A local network, else a swarm network this node knows of (NotFound as docker words it)."""
        try:
            return self.state.find_network(name_or_id)
        except NotFound:
            found = self.cluster.find(name_or_id) if self.cluster is not None else None
            if found is None:
                raise
            return found

    def inspect(self, name_or_id: str) -> dict[str, Any]:
        net = self._find_any(name_or_id)
        if is_cluster(net) and net["Id"] not in self.state.networks:
            return model.public(net, None)  # not instantiated here: dockerd shows "Containers": null
        return model.public(net, self.state.containers_of(net["Id"]))

    def list(self, filters: Any = None) -> list[dict[str, Any]]:
        f = model.as_filters(filters)
        model.check_list_filters(f)
        with self.state.lock:
            nets = list(self.state.networks.values())
        if self.cluster is not None:
            local = {n["Id"] for n in nets}
            nets += [n for n in self.cluster.list() if n["Id"] not in local]
        out = []
        for n in nets:
            containers = self.state.containers_of(n["Id"])
            if model.matches(n, f, bool(containers)):
                out.append(model.public(n, containers))
        return out

    def remove(self, name_or_id: str) -> None:
        state = self.state
        net = self._find_any(name_or_id)
        if is_cluster(net):
            if self.cluster is None:
                raise Unavailable(
                    'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to '
                    "connect this node to swarm and try again."
                )
            self.cluster.remove(net["Id"])
            return
        with state.lock:
            net = state.find_network(name_or_id)
            if net["_gorae"].get("default"):
                raise Forbidden(f"{net['Name']} is a pre-defined network and cannot be removed")
            if state.containers_of(net["Id"]):
                raise Forbidden(
                    f"error while removing network: network {net['Name']} id {net['Id']} has active endpoints"
                )
            state.networks.pop(net["Id"], None)
            state.meta.delete(NET, net["Id"])
            self._remove_pools(net["Id"])
        state.driver(net).delete_network(net)
        state.sync()
        state.event("destroy", net)

    def prune(self, filters: Any = None) -> dict[str, Any]:
        f = model.as_filters(filters)
        deleted = []
        with self.state.lock:
            nets = list(self.state.networks.values())
        for n in nets:
            if is_cluster(n):
                continue
            if (
                n["_gorae"].get("default")
                or self.state.containers_of(n["Id"])
                or not model.prune_matches(n, f)
            ):
                continue
            try:
                self.remove(n["Id"])
                deleted.append(n["Name"])
            except GoraeError as e:
                log.info("prune: %s not removed: %s", n["Name"], e)
        if self.state.publish is not None:
            self.state.publish("network", "prune", "", {})
        return {"NetworksDeleted": deleted}

    # ---- containers ------------------------------------------------------------------------------

    async def setup_container(self, request: EndpointRequest) -> ContainerNet:
        """Build the container's network sandbox and endpoints; on any failure nothing is left behind.
        Swarm networks: the manager grants the addresses first (see clusternets)."""
        request, granted = await self.swarm.attach(request)
        try:
            cnet = await self.sandboxes.setup(request)
        except BaseException:
            await self.swarm.detach(request.container_id, granted)
            raise
        if granted and self.cluster is not None:
            await self.cluster.container_started(request.container_id)
        return cnet

    async def teardown_container(self, container_id: str, *, announce: bool = True) -> Callable[[], None]:
        """Remove the container's sandbox (see `SandboxManager.teardown`); idempotent. With announce=False the
        networks' `disconnect` events are published by the returned call (dockerd's order on an exit: the
        container's `die`, then `disconnect`). Addresses on swarm networks go back to the cluster once the
        kernel state is gone."""
        cluster_nets = self.swarm.cluster_networks_of(container_id)
        publish = await self.sandboxes.teardown(container_id, announce=announce)
        if cluster_nets:
            await self.sandboxes.settle(container_id)
            await self.swarm.detach(container_id, cluster_nets)
        return publish

    async def settle(self, container_id: str | None = None) -> None:
        """Wait for the background kernel teardown of one container (or of all)."""
        await self.sandboxes.settle(container_id)

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
        """docker network connect for a container with a live sandbox; returns its NetworkSettings. On a swarm
        network the manager grants the address first (and takes it back when the connect fails)."""
        aliases = list(aliases)
        granted = await self.swarm.grant(network, container_id, ipv4_address, aliases)
        if granted is not None:
            network, ipv4_address = granted
        try:
            return await self.sandboxes.connect(
                network,
                container_id,
                ipv4_address=ipv4_address,
                ipv6_address=ipv6_address,
                aliases=aliases,
                links=links,
                driver_opts=driver_opts,
            )
        except BaseException:
            if granted is not None:
                await self.swarm.detach(container_id, [granted[0]])
            raise

    async def take_ports(self, container_id: str, from_id: str) -> None:
        """Move `from_id`'s published ports to `container_id`, never closed meanwhile (SandboxManager.take_ports)."""
        await self.sandboxes.take_ports(container_id, from_id)

    def container_files(self, container_id: str) -> tuple[str, str]:
        """/etc/hosts and /etc/resolv.conf for a container with a live sandbox (rewritten after connect and
        disconnect: each network's address is a hosts entry, as libnetwork keeps them)."""
        return self.sandboxes.container_files(container_id)

    async def disconnect(self, network: str, container_id: str, *, force: bool = False) -> dict[str, Any]:
        """docker network disconnect; returns the container's NetworkSettings (an address on a swarm network
        goes back to the cluster)."""
        net = self.state.find_network(network)
        settings = await self.sandboxes.disconnect(network, container_id, force=force)
        if is_cluster(net):
            await self.swarm.detach(container_id, [net["Id"]])
        return settings

    def network_settings(self, container_id: str) -> dict[str, Any]:
        """The current NetworkSettings of a container (after connect/disconnect too)."""
        return network_settings(self.state, container_id)

    def port_map(self, container_id: str) -> dict[str, Any]:
        """`docker port`: the published ports only ({"80/tcp": [{"HostIp", "HostPort"}]})."""
        return port_map(self.state, container_id)

    def container_networks(self, container_id: str) -> builtins.list[str]:
        """Names of the networks the container is attached to (for `ps --filter network=`)."""
        state = self.state
        sb = state.sandbox(container_id)
        return [
            state.networks[ep["network_id"]]["Name"]
            for ep in state.endpoints_of(sb)
            if ep["network_id"] in state.networks
        ]

    def resolve_name(self, container_id: str, name: str) -> builtins.list[str] | None:
        """Addresses of `name` as container_id's embedded DNS answers them (None: not ours)."""
        return resolve_name(self.state, container_id, name)

    def reverse_name(self, container_id: str, ip: str) -> str | None:
        return reverse_name(self.state, container_id, ip)
