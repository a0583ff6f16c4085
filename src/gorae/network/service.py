"""NetworkService: networks (create/inspect/list/remove/prune), a container's network sandbox (namespace,
endpoints, published ports, embedded DNS, hosts/resolv.conf content), connect/disconnect, and recovery.

State lives in the metadata store under the kinds "network" (docker's inspect shape), "endpoint" (one per
container per network), "netsandbox" (one per container: namespace path, resolved port mappings, DNS
settings) and "ipam" (see `ipam`); an in-memory copy is kept for the DNS resolver and rule rendering.
The kernel state (bridges, iptables chains, held host ports, DNS sockets) is derived from it, so `init()`
after a restart (also after kill -9) rebuilds it idempotently.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import re
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from gorae.errors import Conflict, Forbidden, GoraeError, InvalidParameter, NotFound, SystemError_
from gorae.network import containerfiles, iptables, model, netlink, netns, publish
from gorae.network.dnsserver import EmbeddedDns
from gorae.network.ipam import DEFAULT_POOLS, Ipam, choose_subnet, parse_ip, parse_subnet
from gorae.network.ports import PortReserver, split_proto_port, validate_port_bindings

log = logging.getLogger(__name__)

NET, EP, SB = "network", "endpoint", "netsandbox"
MAC_RE = re.compile(r"^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$")
Publish = Callable[[str, str, str, dict[str, str]], Any]


class MetaStore(Protocol):
    def put(self, kind: str, id: str, doc: dict[str, Any], *, name: str | None = None) -> None: ...
    def get(self, kind: str, id: str) -> dict[str, Any]: ...
    def find(self, kind: str, id_or_name_or_prefix: str) -> dict[str, Any]: ...
    def list(self, kind: str) -> list[dict[str, Any]]: ...
    def delete(self, kind: str, id: str) -> None: ...


@dataclass
class ContainerNet:
    """What the container service needs to start a container."""

    netns_path: str | None  # the OCI spec's network namespace path; None = host networking
    settings: dict[str, Any]  # NetworkSettings
    hosts: str  # /etc/hosts content
    resolv_conf: str  # /etc/resolv.conf content
    link_env: list[str] = field(default_factory=list)  # legacy link variables for the container's Env


def _new_id() -> str:
    return secrets.token_hex(32)


class NetworkService:
    def __init__(
        self,
        meta: MetaStore,
        exec_root: str,
        config: Any,
        *,
        bridge_name: str = "gorae0",
        chain_prefix: str = "GORAE",
        user_bridge_prefix: str = "br-",
        veth_prefix: str = "veth",
        publish: Publish | None = None,
    ) -> None:
        self.meta = meta
        self.config = config
        self.netns_dir = os.path.join(exec_root, "netns")
        self.bridge_name = bridge_name
        self.user_bridge_prefix = user_bridge_prefix
        self.veth_prefix = veth_prefix
        self.chains = iptables.Chains(chain_prefix)
        self.publish = publish
        self.ipam = Ipam(meta)
        self.ports = PortReserver()
        self._lock = threading.RLock()
        self._rules_lock = threading.Lock()
        self._dns: dict[str, EmbeddedDns] = {}
        self._applied_rules: str | None = None  # last iptables-restore input applied (skip repeats)
        self._jumps_checked = False
        self._teardowns: dict[str, asyncio.Task[None]] = {}  # kernel teardown after the exit is recorded
        self.networks: dict[str, dict[str, Any]] = {}
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.sandboxes: dict[str, dict[str, Any]] = {}

    # ---- configuration -------------------------------------------------------------------------

    def _cfg(self, name: str, default: Any) -> Any:
        v = getattr(self.config, name, default)
        return default if v is None else v

    def _event(self, action: str, net: dict[str, Any], extra: dict[str, str] | None = None) -> None:
        if self.publish is None:
            return
        attrs = {"name": net["Name"], "type": net["Driver"], **(extra or {})}
        try:
            self.publish("network", action, net["Id"], attrs)
        except Exception:  # noqa: BLE001 - events never break the operation
            log.exception("publishing network event failed")

    # ---- start-up and recovery -----------------------------------------------------------------

    async def init(self) -> None:
        """Default networks, bridges, iptables rules, held host ports and DNS servers from the store."""
        await asyncio.to_thread(self._init_sync)
        for cid, sb in list(self.sandboxes.items()):
            if self._needs_dns(sb):
                try:
                    await self._start_dns(cid)
                except OSError as e:
                    log.warning("embedded DNS for %s could not be restarted: %s", cid[:12], e)

    def _init_sync(self) -> None:
        with self._lock:
            self.networks = {d["Id"]: d for d in self.meta.list(NET)}
            self.endpoints = {d["id"]: d for d in self.meta.list(EP)}
            self.sandboxes = {d["container_id"]: d for d in self.meta.list(SB)}
            by_name = {d["Name"]: d for d in self.networks.values()}
            if "bridge" not in by_name:
                self._create_default_bridge()
            if "host" not in by_name:
                self._store_network(self._predefined("host", "host"))
            if "none" not in by_name:
                self._store_network(self._predefined("none", "null"))
            if self._cfg("ip_forward", True):
                try:
                    iptables.set_ip_forward()
                except OSError as e:
                    log.warning("cannot enable ip_forward: %s", e)
            for net in self.networks.values():
                if net["Driver"] == "bridge":
                    self._ensure_bridge(net)
            # endpoints without a sandbox: a crash in the middle of setup_container
            for ep in list(self.endpoints.values()):
                if ep["container_id"] not in self.sandboxes:
                    self._drop_endpoint({"endpoints": []}, ep["id"])
            # sandboxes whose namespace is gone (host reboot) are stale
            for cid, sb in list(self.sandboxes.items()):
                if sb.get("mode") in ("bridge", "none") and not netns.exists(sb.get("netns_path") or ""):
                    log.info("dropping stale network sandbox of %s", cid[:12])
                    self._drop_sandbox_sync(cid)
            for sb in self.sandboxes.values():
                for m in sb.get("ports", []):
                    try:
                        self.ports.reserve(m["proto"], m["host_ip"], m["host_port"])
                    except SystemError_ as e:
                        log.warning("host port %s of %s: %s", m["host_port"], sb["container_id"][:12], e)
            self._sync_rules()

    def _predefined(self, name: str, driver: str) -> dict[str, Any]:
        return model.network_doc(
            name=name,
            id=_new_id(),
            driver=driver,
            subnet=None,
            gateway=None,
            ip_range=None,
            internal=False,
            attachable=False,
            labels={},
            options={},
            bridge=None,
            default=True,
        )

    def _create_default_bridge(self) -> None:
        bip = self._cfg("bip", "")
        fixed = self._cfg("fixed_cidr", "")
        if bip:
            iface = ipaddress.ip_interface(bip)
            subnet, gateway = iface.network, str(iface.ip)
        elif fixed:
            subnet = parse_subnet(fixed)
            gateway = str(next(subnet.hosts()))
        else:
            subnet = choose_subnet(
                self._cfg("default_address_pools", []) or DEFAULT_POOLS, self._taken_subnets()
            )
            gateway = str(next(subnet.hosts()))
        ip_range = str(parse_subnet(fixed)) if fixed else None
        if ip_range and not ipaddress.ip_network(ip_range).subnet_of(subnet):  # type: ignore[arg-type]
            raise InvalidParameter(f"fixed-cidr {fixed} is not inside the bridge subnet {subnet}")
        options = {
            model.BRIDGE_OPT_DEFAULT: "true",
            model.BRIDGE_OPT_ICC: "true",
            model.BRIDGE_OPT_MASQ: "true" if self._cfg("ip_masq", True) else "false",
            model.BRIDGE_OPT_HOST_IP: "0.0.0.0",
            model.BRIDGE_OPT_NAME: self.bridge_name,
            model.BRIDGE_OPT_MTU: "1500",
        }
        doc = model.network_doc(
            name="bridge",
            id=_new_id(),
            driver="bridge",
            subnet=str(subnet),
            gateway=gateway,
            ip_range=ip_range,
            internal=False,
            attachable=False,
            labels={},
            options=options,
            bridge=self.bridge_name,
            default=True,
        )
        self.ipam.add_pool(doc["Id"], str(subnet), gateway, ip_range)
        self._store_network(doc)

    def _store_network(self, doc: dict[str, Any]) -> None:
        self.meta.put(NET, doc["Id"], doc, name=doc["Name"])
        self.networks[doc["Id"]] = doc

    def _taken_subnets(self) -> list[ipaddress.IPv4Network]:
        taken = [ipaddress.IPv4Network(s) for s in self._our_subnets()]
        try:
            taken += netlink.host_ipv4_networks()
        except OSError as e:
            log.warning("cannot read host routes: %s", e)
        return taken

    def _our_subnets(self) -> list[str]:
        out = []
        for n in self.networks.values():
            for c in n["IPAM"]["Config"]:
                if c.get("Subnet"):
                    out.append(c["Subnet"])
        return out

    def _ensure_bridge(self, net: dict[str, Any]) -> None:
        cfg = net["IPAM"]["Config"][0]
        prefix = ipaddress.IPv4Network(cfg["Subnet"]).prefixlen
        mtu = int(net["Options"].get(model.BRIDGE_OPT_MTU) or 1500)
        netlink.ensure_bridge(
            net["_gorae"]["bridge"],
            cfg.get("Gateway", ""),
            prefix,
            mtu,
            with_address=bool(cfg.get("Gateway")),
        )

    def _sync_rules(self) -> None:
        """Render the rule set from the in-memory state and apply it (no-op when iptables is disabled)."""
        if not self._cfg("iptables", True):
            return
        with self._rules_lock:
            with self._lock:
                rules = iptables.RuleSet()
                for net in self.networks.values():
                    if net["Driver"] != "bridge":
                        continue
                    masq = (
                        self._cfg("ip_masq", True)
                        and net["Options"].get(model.BRIDGE_OPT_MASQ, "true") == "true"
                    )
                    rules.bridges.append(
                        iptables.BridgeRules(
                            bridge=net["_gorae"]["bridge"],
                            subnet=net["IPAM"]["Config"][0]["Subnet"],
                            internal=net["Internal"],
                            masquerade=masq,
                            icc=net["Options"].get(model.BRIDGE_OPT_ICC, "true") == "true",
                        )
                    )
                for sb in self.sandboxes.values():
                    for m in sb.get("ports", []):
                        rules.ports.append(
                            iptables.PortRule(
                                m["proto"],
                                m["host_ip"],
                                m["host_port"],
                                m["container_ip"],
                                m["container_port"],
                                m["bridge"],
                            )
                        )
            text = self.chains.render(rules)
            if text == self._applied_rules:
                return  # a container without published ports changes nothing: no subprocess at all
            self._applied_rules = None
            # the jumps from the built-in chains are checked once per daemon (as dockerd does)
            iptables.apply(self.chains, rules, jumps=not self._jumps_checked)
            self._applied_rules, self._jumps_checked = text, True

    async def close(self) -> None:
        """Stop serving (daemon shutdown): DNS servers and held ports; kernel state stays for live restore."""
        await self.settle()
        for cid in list(self._dns):
            await self._stop_dns(cid)
        self.ports.close()

    async def purge(self) -> None:
        """Remove everything this service put in the kernel (uninstall, tests): sandboxes, bridges, chains."""
        for cid in list(self.sandboxes):
            await self.teardown_container(cid)
        await self.close()
        with self._lock:
            bridges = [n["_gorae"]["bridge"] for n in self.networks.values() if n["Driver"] == "bridge"]
        for b in bridges:
            await asyncio.to_thread(netlink.delete_link, b)
        await asyncio.to_thread(iptables.purge, self.chains)
        self._applied_rules, self._jumps_checked = None, False

    # ---- networks --------------------------------------------------------------------------------

    def _find(self, name_or_id: str) -> dict[str, Any]:
        with self._lock:
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
    ) -> dict[str, str]:
        """docker network create; returns {"Id", "Warning"}."""
        driver = driver or "bridge"
        if not name:
            raise InvalidParameter("network name must not be empty")
        if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", name):
            raise InvalidParameter(
                f"invalid network name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )
        if name in model.PREDEFINED:
            raise Forbidden(f"{name} is a pre-defined network and cannot be created")
        if driver in ("host", "null"):
            raise Forbidden(f'only one instance of "{driver}" network is allowed')
        if driver != "bridge":
            raise NotFound(f'plugin "{driver}" not found')
        if ipam_driver not in ("", "default"):
            raise NotFound(f'plugin "{ipam_driver}" not found')
        if enable_ipv6:
            raise InvalidParameter("IPv6 networks are not supported by gorae yet")
        if (gateway or ip_range) and not subnet:
            raise InvalidParameter("every ip-range or gateway must have a corresponding subnet")
        options = dict(options or {})
        with self._lock:
            if any(n["Name"] == name for n in self.networks.values()):
                raise Conflict(f"network with name {name} already exists")
            nid = _new_id()
            if subnet:
                net = parse_subnet(subnet)
                for other in self._our_subnets():
                    if net.overlaps(ipaddress.IPv4Network(other)):
                        raise Forbidden("Pool overlaps with other one on this address space")
            else:
                net = choose_subnet(
                    self._cfg("default_address_pools", []) or DEFAULT_POOLS, self._taken_subnets()
                )
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
            bridge = options.get(model.BRIDGE_OPT_NAME) or (
                self.user_bridge_prefix + nid[: netlink.IFNAMSIZ - len(self.user_bridge_prefix)]
            )
            if len(bridge) > netlink.IFNAMSIZ:
                raise InvalidParameter(f"bridge name {bridge!r} is longer than {netlink.IFNAMSIZ} characters")
            if any(n["_gorae"].get("bridge") == bridge for n in self.networks.values()):
                raise Conflict(f"bridge name {bridge} is already in use by another network")
            mtu = options.get(model.BRIDGE_OPT_MTU)
            if mtu is not None and not (mtu.isdigit() and 68 <= int(mtu) <= 65535):
                raise InvalidParameter(f"invalid MTU {mtu}")
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
                bridge=bridge,
                ipam_options={},
            )
            self.ipam.add_pool(nid, str(net), gw_s, rng_s)
            try:
                self._ensure_bridge(doc)
                self._store_network(doc)
                self._sync_rules()
            except BaseException:
                self.networks.pop(nid, None)
                try:
                    self.meta.delete(NET, nid)
                except NotFound:
                    pass
                self.ipam.remove_pool(nid)
                netlink.delete_link(bridge)
                raise
        self._event("create", doc)
        return {"Id": nid, "Warning": ""}

    def _containers_of(self, net_id: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        with self._lock:
            for ep in self.endpoints.values():
                if ep["network_id"] != net_id:
                    continue
                out[ep["container_id"]] = {
                    "Name": ep["container_name"],
                    "EndpointID": ep["id"],
                    "MacAddress": ep.get("mac", ""),
                    "IPv4Address": f"{ep['ip']}/{ep['prefixlen']}" if ep.get("ip") else "",
                    "IPv6Address": "",
                }
        return out

    def inspect(self, name_or_id: str) -> dict[str, Any]:
        net = self._find(name_or_id)
        return model.public(net, self._containers_of(net["Id"]))

    def list(self, filters: Any = None) -> list[dict[str, Any]]:
        f = model.normalize_filters(filters)
        model.check_list_filters(f)
        with self._lock:
            nets = list(self.networks.values())
        out = []
        for n in nets:
            containers = self._containers_of(n["Id"])
            if model.matches(n, f, bool(containers)):
                out.append(model.public(n, containers))
        return out

    def remove(self, name_or_id: str) -> None:
        with self._lock:
            net = self._find(name_or_id)
            if net["_gorae"].get("default"):
                raise Forbidden(f"{net['Name']} is a pre-defined network and cannot be removed")
            if self._containers_of(net["Id"]):
                raise Forbidden(
                    f"error while removing network: network {net['Name']} id {net['Id']} has active endpoints"
                )
            self.networks.pop(net["Id"], None)
            self.meta.delete(NET, net["Id"])
            self.ipam.remove_pool(net["Id"])
        netlink.delete_link(net["_gorae"]["bridge"])
        self._sync_rules()
        self._event("destroy", net)

    def prune(self, filters: Any = None) -> dict[str, Any]:
        f = model.normalize_filters(filters)
        deleted = []
        with self._lock:
            nets = list(self.networks.values())
        for n in nets:
            if n["_gorae"].get("default") or self._containers_of(n["Id"]) or not model.prune_matches(n, f):
                continue
            try:
                self.remove(n["Id"])
                deleted.append(n["Name"])
            except GoraeError as e:
                log.info("prune: %s not removed: %s", n["Name"], e)
        return {"NetworksDeleted": deleted}

    # ---- containers ------------------------------------------------------------------------------

    def _netns_path(self, cid: str) -> str:
        return os.path.join(self.netns_dir, cid)

    def _sandbox(self, container_id: str) -> dict[str, Any]:
        with self._lock:
            sb = self.sandboxes.get(container_id)
        if sb is None:
            raise NotFound(f"No such container: {container_id}")
        return sb

    def _find_sandbox(self, name_or_id: str) -> dict[str, Any] | None:
        key = name_or_id.lstrip("/")
        with self._lock:
            for sb in self.sandboxes.values():
                if sb["container_id"] == key or sb["name"] == key:
                    return sb
            found = [sb for sb in self.sandboxes.values() if sb["container_id"].startswith(key)]
        return found[0] if len(found) == 1 else None

    async def setup_container(
        self,
        container_id: str,
        name: str,
        hostname: str,
        network_mode: str = "default",
        endpoints_config: dict[str, Any] | None = None,
        port_bindings: dict[str, Any] | None = None,
        publish_all: bool = False,
        exposed_ports: Iterable[str] | None = None,
        links: Iterable[str] = (),
        dns: Iterable[str] = (),
        dns_search: Iterable[str] = (),
        dns_options: Iterable[str] = (),
        extra_hosts: Iterable[str] = (),
        mac_address: str = "",
        aliases: Iterable[str] = (),
        *,
        domainname: str = "",
        env: Iterable[str] = (),
    ) -> ContainerNet:
        """Build the container's network sandbox; on any failure nothing is left behind."""
        name = name.lstrip("/")
        mode = network_mode or "default"
        if mode == "default":
            mode = "bridge"
        await self.settle(container_id)  # a restart reuses the namespace path of the last run
        if container_id in self.sandboxes:
            raise Conflict(f"container {container_id[:12]} already has a network sandbox")
        sb: dict[str, Any] = {
            "container_id": container_id,
            "name": name,
            "hostname": hostname,
            "domainname": domainname,
            "sandbox_id": _new_id(),
            "netns_path": None,
            "mode": "bridge",
            "endpoints": [],
            "ports": [],
            "exposed": sorted(set(exposed_ports or []) | set((port_bindings or {}).keys())),
            "port_bindings": port_bindings or {},
            "publish_all": publish_all,
            "dns": list(dns),
            "dns_search": list(dns_search),
            "dns_options": list(dns_options),
            "extra_hosts": list(extra_hosts),
            "env": list(env),
            "links": [],
            "link_aliases": {},
        }
        eps_cfg = dict(endpoints_config or {})
        validate_port_bindings(port_bindings)
        if mac_address and not MAC_RE.match(mac_address):
            raise InvalidParameter(f"{mac_address} is not a valid mac address")
        if mode.startswith("container:"):
            return await self._setup_shared(sb, mode.partition(":")[2])
        if mode == "host":
            sb["mode"] = "host"
            net = self._find("host")
            return await self._setup_simple(sb, net, eps_cfg)
        if mode == "none":
            sb["mode"] = "none"
            net = self._find("none")
            if len([k for k in eps_cfg if k != "none"]) > 0:
                raise InvalidParameter("Container cannot be connected to network endpoints: none and others")
            return await self._setup_simple(sb, net, eps_cfg)
        first = self._find(mode)
        if first["Driver"] in ("host", "null"):
            return await self.setup_container(
                container_id,
                name,
                hostname,
                "host" if first["Driver"] == "host" else "none",
                endpoints_config,
                port_bindings,
                publish_all,
                exposed_ports,
                links,
                dns,
                dns_search,
                dns_options,
                extra_hosts,
                mac_address,
                aliases,
                domainname=domainname,
                env=env,
            )
        nets = [first]
        first_cfg = eps_cfg.pop(first["Name"], None) or eps_cfg.pop(first["Id"], None) or {}
        cfgs = [first_cfg]
        for key, cfg in eps_cfg.items():
            other = self._find(key)
            if other["Id"] != first["Id"] and other["Driver"] == "bridge":
                nets.append(other)
                cfgs.append(cfg or {})
        cfgs[0] = {**cfgs[0], "Aliases": list(cfgs[0].get("Aliases") or []) + list(aliases)}
        if mac_address:
            cfgs[0] = {**cfgs[0], "MacAddress": mac_address}
        self._check_endpoint_configs(nets, cfgs)
        sb["netns_path"] = self._netns_path(container_id)
        with self._lock:
            self.sandboxes[container_id] = sb
        try:
            self.meta.put(SB, container_id, sb)
            ns_rtnl = await asyncio.to_thread(netns.create, sb["netns_path"], rtnl=True)
            try:
                for i, (net, cfg) in enumerate(zip(nets, cfgs, strict=True)):
                    await self._attach(
                        sb, net, cfg, ifname=f"eth{i}", default_route=(i == 0), ns_rtnl=ns_rtnl
                    )
            finally:
                ns_rtnl.close()
            self._resolve_links(sb, list(links))
            await asyncio.to_thread(self._publish_ports, sb)
            self.meta.put(SB, container_id, sb)
            await asyncio.to_thread(self._sync_rules)
            if self._needs_dns(sb):
                await self._start_dns(container_id)
        except BaseException:
            await self.teardown_container(container_id)
            await self.settle(container_id)  # nothing left behind when the call returns
            raise
        for ep_id in sb["endpoints"]:
            ep = self.endpoints[ep_id]
            self._event("connect", self.networks[ep["network_id"]], {"container": container_id})
        return self._container_net(sb)

    def _check_endpoint_configs(self, nets: list[dict[str, Any]], cfgs: list[dict[str, Any]]) -> None:
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

    async def _setup_simple(
        self, sb: dict[str, Any], net: dict[str, Any], eps_cfg: dict[str, Any]
    ) -> ContainerNet:
        """host and none: no veth; none gets its own namespace with only lo."""
        cid = sb["container_id"]
        if sb["mode"] == "none":
            sb["netns_path"] = self._netns_path(cid)
        with self._lock:
            self.sandboxes[cid] = sb
        try:
            if sb["mode"] == "none":
                await asyncio.to_thread(netns.create, sb["netns_path"])  # lo comes up there
            ep = {
                "id": _new_id(),
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
            with self._lock:
                self.endpoints[ep["id"]] = ep
                sb["endpoints"].append(ep["id"])
            self.meta.put(EP, ep["id"], ep)
            self.meta.put(SB, cid, sb)
        except BaseException:
            await self.teardown_container(cid)
            await self.settle(cid)
            raise
        self._event("connect", net, {"container": cid})
        return self._container_net(sb)

    async def _setup_shared(self, sb: dict[str, Any], other_ref: str) -> ContainerNet:
        other = self._find_sandbox(other_ref)
        if other is None:
            raise NotFound(f"No such container: {other_ref}")
        while other.get("mode") == "container":
            other = self._sandbox(other["shared_with"])
        if other["container_id"] == sb["container_id"]:
            raise InvalidParameter("cannot join own network namespace")
        sb.update(mode="container", shared_with=other["container_id"], netns_path=other["netns_path"])
        with self._lock:
            self.sandboxes[sb["container_id"]] = sb
        self.meta.put(SB, sb["container_id"], sb)
        base = self._container_net(other)
        return ContainerNet(
            netns_path=other["netns_path"],
            settings=model.empty_settings(),
            hosts=base.hosts,
            resolv_conf=base.resolv_conf,
            link_env=[],
        )

    async def _attach(
        self,
        sb: dict[str, Any],
        net: dict[str, Any],
        cfg: dict[str, Any],
        *,
        ifname: str,
        default_route: bool,
        ns_rtnl: Any = None,
    ) -> dict[str, Any]:
        """Allocate an address on net and plug a veth for it into the sandbox's namespace."""
        cid = sb["container_id"]
        ep_id = _new_id()
        ipam_cfg = cfg.get("IPAMConfig") or {}
        requested = ipam_cfg.get("IPv4Address") or None
        ip = self.ipam.allocate(net["Id"], ep_id, requested, label=f"{net['Name']} ({net['Id']})")
        pool = net["IPAM"]["Config"][0]
        subnet = ipaddress.IPv4Network(pool["Subnet"])
        gateway = pool.get("Gateway", "")
        mac = cfg.get("MacAddress") or netlink.mac_for_ip(ip)
        user = not net["_gorae"].get("default")
        aliases = list(dict.fromkeys(cfg.get("Aliases") or []))
        ep = {
            "id": ep_id,
            "container_id": cid,
            "container_name": sb["name"],
            "network_id": net["Id"],
            "ip": ip,
            "prefixlen": subnet.prefixlen,
            "mac": mac.lower().replace("-", ":"),
            "gateway": gateway,
            "aliases": aliases,
            "dns_names": ([sb["name"], cid[:12], *aliases] if user else []),
            "ifname": ifname,
            "veth": netlink.random_veth_name(self.veth_prefix),
            "ipam_config": ({"IPv4Address": requested} if requested else None),
            "links": cfg.get("Links") or None,
        }
        with self._lock:
            self.endpoints[ep_id] = ep
            sb["endpoints"].append(ep_id)
        self.meta.put(EP, ep_id, ep)
        await asyncio.to_thread(
            netlink.plug_veth,
            bridge=net["_gorae"]["bridge"],
            host_name=ep["veth"],
            netns_path=sb["netns_path"],
            ifname=ifname,
            ip=ip,
            prefixlen=subnet.prefixlen,
            mac=ep["mac"],
            gateway=(gateway if default_route and not net["Internal"] else None),
            mtu=int(net["Options"].get(model.BRIDGE_OPT_MTU) or 1500),
            ns_rtnl=ns_rtnl,
        )
        return ep

    def _resolve_links(self, sb: dict[str, Any], links: list[str]) -> None:
        """Legacy links: `child:alias` (or docker's stored `/child:/parent/alias`)."""
        for link in links:
            child_ref, _, alias = link.partition(":")
            alias = alias.rsplit("/", 1)[-1] if alias else child_ref.lstrip("/")
            child = self._find_sandbox(child_ref)
            if child is None or child.get("mode") != "bridge":
                raise InvalidParameter(
                    f"Cannot link to a non running container: /{child_ref.lstrip('/')} AS /{sb['name']}/{alias}"
                )
            shared = self._shared_network_ip(sb, child)
            if shared is None:
                raise InvalidParameter(
                    f"Cannot link to /{child['name']}, as it does not belong to the default network"
                )
            sb["links"].append({"child": child["container_id"], "alias": alias})
            sb["link_aliases"][alias.lower()] = child["container_id"]

    def _shared_network_ip(self, sb: dict[str, Any], child: dict[str, Any]) -> str | None:
        mine = {self.endpoints[e]["network_id"] for e in sb["endpoints"] if e in self.endpoints}
        for e in child["endpoints"]:
            ep = self.endpoints.get(e)
            if ep and ep["network_id"] in mine and ep.get("ip"):
                return str(ep["ip"])
        return None

    def _port_target(self, sb: dict[str, Any]) -> dict[str, Any] | None:
        """The endpoint published ports are forwarded to: the first bridge endpoint."""
        for e in sb["endpoints"]:
            ep = self.endpoints.get(e)
            if ep and ep.get("ip"):
                return ep
        return None

    def _publish_ports(self, sb: dict[str, Any]) -> None:
        """Reserve host ports for PortBindings (and -P) towards the first bridge endpoint; all or nothing."""
        target = self._port_target(sb)
        if target is None:
            return
        net = self.networks[target["network_id"]]
        try:
            sb["ports"] = publish.reserve_bindings(
                self.ports,
                sb["port_bindings"],
                sb["exposed"] if sb["publish_all"] else [],
                default_host_ip=net["Options"].get(model.BRIDGE_OPT_HOST_IP, ""),
                container_ip=target["ip"],
                bridge=net["_gorae"]["bridge"],
            )
        except SystemError_ as e:
            raise SystemError_(
                f"driver failed programming external connectivity on endpoint {sb['name']} ({target['id']}):"
                f" {e.message}"
            ) from None

    def _needs_dns(self, sb: dict[str, Any]) -> bool:
        if sb.get("mode") != "bridge" or not sb.get("netns_path"):
            return False
        for e in sb["endpoints"]:
            ep = self.endpoints.get(e)
            if ep and not self.networks.get(ep["network_id"], {}).get("_gorae", {}).get("default", True):
                return True
        return False

    async def _start_dns(self, cid: str) -> None:
        if cid in self._dns:
            return
        sb = self._sandbox(cid)
        server = EmbeddedDns(
            sb["netns_path"],
            lambda n: self.resolve_name(cid, n),
            lambda ip: self.reverse_name(cid, ip),
            lambda: self._upstreams(cid),
        )
        await server.start()
        self._dns[cid] = server

    async def _stop_dns(self, cid: str) -> None:
        server = self._dns.pop(cid, None)
        if server is not None:
            await server.close()

    def _upstreams(self, cid: str) -> list[str]:
        sb = self.sandboxes.get(cid)
        if sb is None:
            return []
        if all(
            self.networks.get(self.endpoints[e]["network_id"], {}).get("Internal")
            for e in sb["endpoints"]
            if e in self.endpoints
        ):
            return []
        return containerfiles.upstream_servers(containerfiles.read_host_resolv_conf(), sb.get("dns") or [])

    def resolve_name(self, cid: str, name: str) -> list[str] | None:
        """Addresses of `name` as seen by container cid on its user-defined networks (None: not ours)."""
        name = name.lower().rstrip(".")
        with self._lock:
            sb = self.sandboxes.get(cid)
            if sb is None:
                return None
            my_nets = {
                self.endpoints[e]["network_id"]: self.endpoints[e]
                for e in sb["endpoints"]
                if e in self.endpoints
            }
            user_nets = [
                n for n in my_nets if not self.networks.get(n, {}).get("_gorae", {}).get("default", True)
            ]
            child = sb.get("link_aliases", {}).get(name)
            if child is not None:
                ip = self._shared_network_ip(sb, self.sandboxes.get(child) or {"endpoints": []})
                if ip:
                    return [ip]
            out: list[str] = []
            for ep in self.endpoints.values():
                if ep["network_id"] not in user_nets or not ep.get("ip"):
                    continue
                names = {
                    ep["container_name"].lower(),
                    ep["container_id"][:12],
                    *(a.lower() for a in ep["aliases"]),
                }
                if name in names or name == ep["container_id"]:
                    out.append(ep["ip"])
                else:
                    net = self.networks[ep["network_id"]]
                    if name.endswith("." + net["Name"].lower()) and name.rsplit(".", 1)[0] in names:
                        out.append(ep["ip"])
        return out or None

    def reverse_name(self, cid: str, ip: str) -> str | None:
        with self._lock:
            sb = self.sandboxes.get(cid)
            if sb is None:
                return None
            mine = {self.endpoints[e]["network_id"] for e in sb["endpoints"] if e in self.endpoints}
            for ep in self.endpoints.values():
                if ep["network_id"] in mine and ep.get("ip") == ip:
                    net = self.networks[ep["network_id"]]
                    if net["_gorae"].get("default"):
                        return None
                    return f"{ep['container_name']}.{net['Name']}"
        return None

    # ---- results -------------------------------------------------------------------------------

    def _ports_view(self, sb: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if sb.get("mode") != "bridge":
            return out
        for key in sb.get("exposed", []):
            proto, port = split_proto_port(key)
            out[f"{port}/{proto}"] = None
        for m in sb.get("ports", []):
            key = f"{m['container_port']}/{m['proto']}"
            if out.get(key) is None:
                out[key] = []
            out[key].append({"HostIp": m["host_ip"] or "0.0.0.0", "HostPort": str(m["host_port"])})
        return out

    def network_settings(self, container_id: str) -> dict[str, Any]:
        """The current NetworkSettings of a container (after connect/disconnect too)."""
        sb = self._sandbox(container_id)
        if sb.get("mode") == "container":
            return model.empty_settings()
        st = model.empty_settings(sb.get("netns_path") or "", sb["sandbox_id"])
        st["Ports"] = self._ports_view(sb)
        with self._lock:
            for e in sb["endpoints"]:
                ep = self.endpoints.get(e)
                if ep is None:
                    continue
                net = self.networks.get(ep["network_id"])
                if net is None:
                    continue
                entry = model.endpoint_settings(ep, net["Id"])
                if sb.get("links") and net["Name"] == "bridge":
                    entry["Links"] = [
                        f"/{self.sandboxes[lk['child']]['name']}:/{sb['name']}/{lk['alias']}"
                        for lk in sb["links"]
                        if lk["child"] in self.sandboxes
                    ] or None
                st["Networks"][net["Name"]] = entry
                if net["Name"] == "bridge" and net["_gorae"].get("default"):
                    st.update(
                        EndpointID=ep["id"],
                        Gateway=ep["gateway"],
                        IPAddress=ep["ip"],
                        IPPrefixLen=ep["prefixlen"],
                        MacAddress=ep["mac"],
                    )
        return st

    def port_map(self, container_id: str) -> dict[str, Any]:
        """`docker port`: the published ports only ({"80/tcp": [{"HostIp", "HostPort"}]})."""
        sb = self._sandbox(container_id)
        if sb.get("mode") == "container":
            sb = self._sandbox(sb["shared_with"])
        return {k: v for k, v in self._ports_view(sb).items() if v}

    def _container_net(self, sb: dict[str, Any]) -> ContainerNet:
        host_text = containerfiles.read_host_resolv_conf()
        mode = sb.get("mode")
        if mode == "host":
            rmode = "host"
        elif self._needs_dns(sb):
            rmode = "user"
        else:
            rmode = "bridge"
        resolv = containerfiles.resolv_conf(
            host_text, dns=sb["dns"], dns_search=sb["dns_search"], dns_options=sb["dns_options"], mode=rmode
        )
        ips = [
            self.endpoints[e]["ip"]
            for e in sb["endpoints"]
            if e in self.endpoints and self.endpoints[e]["ip"]
        ]
        link_entries: list[tuple[str, list[str]]] = []
        env: list[str] = []
        for lk in sb.get("links", []):
            child = self.sandboxes.get(lk["child"])
            if child is None:
                continue
            ip = self._shared_network_ip(sb, child)
            if not ip:
                continue
            names = list(dict.fromkeys([lk["alias"], child["container_id"][:12], child["name"]]))
            link_entries.append((ip, names))
            env += containerfiles.link_env(
                sb["name"], lk["alias"], ip, child.get("exposed", []), child.get("env", [])
            )
        gw = ""
        for n in self.networks.values():
            if n["Name"] == "bridge" and n["IPAM"]["Config"]:
                gw = n["IPAM"]["Config"][0].get("Gateway", "")
        hosts = containerfiles.hosts_file(
            hostname=sb["hostname"],
            domainname=sb.get("domainname", ""),
            ips=ips,
            extra_hosts=sb["extra_hosts"],
            link_entries=link_entries,
            host_network=(mode == "host"),
            host_gateway=gw,
        )
        return ContainerNet(
            netns_path=sb.get("netns_path"),
            settings=self.network_settings(sb["container_id"]),
            hosts=hosts,
            resolv_conf=resolv,
            link_env=env,
        )

    # ---- teardown, connect, disconnect -----------------------------------------------------------

    async def teardown_container(self, container_id: str) -> None:
        """Remove the container's DNS server, port mappings, endpoints (veths, addresses) and namespace.
        Idempotent; a container without a sandbox is fine.

        Returns once the sandbox is gone from the service's view (names, rules, `network inspect`, held
        host ports); the kernel work (deleting a veth waits ~20 ms for RCU grace periods) runs in a
        background task, which releases each address only after its veth is gone, so a quick next `run`
        never meets a live copy of it. `settle()` waits for that task (setup of the same container,
        shutdown); a crash in between leaves records that `init()` and the next start clean up."""
        await self._stop_dns(container_id)
        with self._lock:
            sb = self.sandboxes.pop(container_id, None)
            if sb is None:
                return
            eps = [self.endpoints.pop(e) for e in sb["endpoints"] if e in self.endpoints]
            events = [self.networks[ep["network_id"]] for ep in eps if ep["network_id"] in self.networks]
            had_ports = bool(sb.get("ports"))
            for m in sb.get("ports", []):
                self.ports.release(m["proto"], m["host_ip"], m["host_port"])
            sb["ports"] = []
        if had_ports:  # once stop/exit returns, the host port no longer forwards (and is free again)
            await asyncio.to_thread(self._sync_rules)
        task = asyncio.get_running_loop().create_task(self._teardown_kernel(container_id, sb, eps))
        self._teardowns[container_id] = task
        task.add_done_callback(
            lambda t: (
                self._teardowns.pop(container_id, None) if self._teardowns.get(container_id) is t else None
            )
        )
        for net in events:
            self._event("disconnect", net, {"container": container_id})

    async def _teardown_kernel(self, cid: str, sb: dict[str, Any], eps: Iterable[dict[str, Any]]) -> None:
        try:
            await asyncio.to_thread(self._teardown_kernel_sync, cid, sb, eps)
        except Exception:  # noqa: BLE001 - background: log, never raise into nobody
            log.exception("network teardown of %s", cid[:12])

    def _teardown_kernel_sync(self, cid: str, sb: dict[str, Any], eps: Iterable[dict[str, Any]]) -> None:
        for ep in eps:
            self._release_endpoint(ep)
            try:
                self.meta.delete(EP, ep["id"])
            except NotFound:
                pass
        if sb.get("mode") in ("bridge", "none") and sb.get("netns_path"):
            netns.delete(sb["netns_path"])
        with self._lock:
            if cid not in self.sandboxes:
                try:
                    self.meta.delete(SB, cid)
                except NotFound:
                    pass

    async def settle(self, container_id: str | None = None) -> None:
        """Wait for the background teardown of one container (or of all)."""
        if container_id is None:
            tasks = list(self._teardowns.values())
        else:
            tasks = [t for t in (self._teardowns.get(container_id),) if t is not None]
        for t in tasks:
            await asyncio.shield(t)

    def _drop_sandbox_sync(self, cid: str) -> None:
        with self._lock:
            sb = self.sandboxes.get(cid)
            if sb is None:
                return
            for m in sb.get("ports", []):
                self.ports.release(m["proto"], m["host_ip"], m["host_port"])
            sb["ports"] = []
        for e in list(sb["endpoints"]):
            self._drop_endpoint(sb, e)
        if sb.get("mode") in ("bridge", "none") and sb.get("netns_path"):
            netns.delete(sb["netns_path"])
        with self._lock:
            self.sandboxes.pop(cid, None)
            try:
                self.meta.delete(SB, cid)
            except NotFound:
                pass

    def _release_endpoint(self, ep: dict[str, Any]) -> None:
        """Give back an endpoint's kernel and address resources: delete its veth, release its IP."""
        if ep.get("veth"):
            try:
                netlink.delete_link(ep["veth"])
            except OSError as e:
                log.warning("deleting %s: %s", ep["veth"], e)
        if ep.get("ip"):
            self.ipam.release(ep["network_id"], ep["ip"], ep["id"])

    def _drop_endpoint(self, sb: dict[str, Any], ep_id: str) -> None:
        with self._lock:
            ep = self.endpoints.get(ep_id)
        if ep is not None:
            self._release_endpoint(ep)
        with self._lock:
            self.endpoints.pop(ep_id, None)
            if ep_id in sb["endpoints"]:
                sb["endpoints"].remove(ep_id)
            try:
                self.meta.delete(EP, ep_id)
            except NotFound:
                pass

    async def connect(
        self,
        network: str,
        container_id: str,
        *,
        ipv4_address: str | None = None,
        aliases: Iterable[str] = (),
        links: Iterable[str] = (),
    ) -> dict[str, Any]:
        """docker network connect for a container with a live sandbox; returns its NetworkSettings."""
        net = self._find(network)
        sb = self._sandbox(container_id)
        if sb["mode"] == "host" or net["Driver"] == "host":
            raise Forbidden("container cannot be disconnected from host network or connected to host network")
        if sb["mode"] == "none" or net["Driver"] == "null":
            raise Forbidden(
                "container cannot be connected to multiple networks with one of the networks in private (none) mode"
            )
        if sb["mode"] == "container":
            raise Forbidden(
                "container sharing network namespace with another container or host cannot be connected to any other network"
            )
        for e in sb["endpoints"]:
            if self.endpoints.get(e, {}).get("network_id") == net["Id"]:
                raise Forbidden(f"endpoint with name {sb['name']} already exists in network {net['Name']}")
        cfg: dict[str, Any] = {"Aliases": list(aliases)}
        if ipv4_address:
            cfg["IPAMConfig"] = {"IPv4Address": ipv4_address}
        self._check_endpoint_configs([net], [cfg])
        used = {self.endpoints[e]["ifname"] for e in sb["endpoints"] if e in self.endpoints}
        ifname = next(f"eth{i}" for i in range(1000) if f"eth{i}" not in used)
        had_dns = self._needs_dns(sb)
        try:
            ep = await self._attach(sb, net, cfg, ifname=ifname, default_route=not sb["endpoints"])
        except BaseException:
            # _attach registers the endpoint before plugging; undo what exists
            for e in list(sb["endpoints"]):
                if self.endpoints.get(e, {}).get("network_id") == net["Id"]:
                    await asyncio.to_thread(self._drop_endpoint, sb, e)
            self.meta.put(SB, container_id, sb)
            raise
        del ep
        self.meta.put(SB, container_id, sb)
        await asyncio.to_thread(self._sync_rules)
        if not had_dns and self._needs_dns(sb):
            await self._start_dns(container_id)
        self._event("connect", net, {"container": container_id})
        return self.network_settings(container_id)

    async def disconnect(self, network: str, container_id: str, *, force: bool = False) -> dict[str, Any]:
        net = self._find(network)
        sb = self._sandbox(container_id)
        if net["Driver"] == "host" or sb["mode"] == "host":
            raise Forbidden("container cannot be disconnected from host network or connected to host network")
        mine = [e for e in sb["endpoints"] if self.endpoints.get(e, {}).get("network_id") == net["Id"]]
        if not mine:
            raise Forbidden(f"container {container_id} is not connected to network {net['Name']}")
        for e in mine:
            ep = self.endpoints[e]
            if ep.get("ifname") and sb.get("netns_path"):
                try:
                    await asyncio.to_thread(netlink.delete_in_netns, sb["netns_path"], ep["ifname"])
                except OSError as err:
                    log.warning("removing %s from %s: %s", ep["ifname"], container_id[:12], err)
            if any(m["container_ip"] == ep.get("ip") for m in sb.get("ports", [])):
                for m in sb["ports"]:
                    self.ports.release(m["proto"], m["host_ip"], m["host_port"])
                sb["ports"] = []
            await asyncio.to_thread(self._drop_endpoint, sb, e)
        self.meta.put(SB, container_id, sb)
        await asyncio.to_thread(self._sync_rules)
        if not self._needs_dns(sb):
            await self._stop_dns(container_id)
        self._event("disconnect", net, {"container": container_id})
        return self.network_settings(container_id)

    def container_networks(self, container_id: str) -> list[str]:
        """Names of the networks the container is attached to (for `ps --filter network=`)."""
        sb = self._sandbox(container_id)
        return [
            self.networks[self.endpoints[e]["network_id"]]["Name"]
            for e in sb["endpoints"]
            if e in self.endpoints and self.endpoints[e]["network_id"] in self.networks
        ]
