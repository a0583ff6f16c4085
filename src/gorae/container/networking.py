"""`ContainerNetworking`: the container side of networking, and the ONLY module that calls the network service.

Owns the checks of -p/-P/--network/--network-alias at create (nothing is allocated then), the
NetworkSettings of a container that has not run, building the sandbox at start (hosts/resolv.conf
content written into the container's files) and tearing it down at exit and removal, and
`docker network connect/disconnect` for running and stopped containers (the record follows the sandbox).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from gorae.container import state as cs
from gorae.container.config import network_settings
from gorae.container.files import write_network_files
from gorae.container.record import Container
from gorae.container.repository import ContainerRepository
from gorae.container.state import Op
from gorae.container.types import NetworkAttacher
from gorae.errors import Conflict, Forbidden, InvalidParameter, NotFound
from gorae.network.model import endpoint_settings
from gorae.network.portmap.ports import parse_port_range, split_proto_port, validate_port_bindings
from gorae.network.types import EndpointRequest

log = logging.getLogger("gorae.containers")


def _nothing() -> None:
    """Nothing left to announce."""


class ContainerNetworking:
    def __init__(self, networks: NetworkAttacher, repo: ContainerRepository, default_dns: list[str]) -> None:
        self._nets = networks
        self._repo = repo
        self._default_dns = list(default_dns)

    # ---- create --------------------------------------------------------------------------------

    def check_input(
        self, config: dict[str, Any], host_config: dict[str, Any], networking: Any
    ) -> dict[str, Any]:
        """Validate -p/-P/--network/--network-alias at create; the endpoints config to keep. Errors are
        docker's: "network X not found", "invalid port specification", ..."""
        validate_port_bindings(host_config.get("PortBindings"))
        for key in config.get("ExposedPorts") or {}:
            proto, port = split_proto_port(key)
            try:
                parse_port_range(port)
            except ValueError:
                raise InvalidParameter(f'invalid port specification: "{key}"') from None
            if proto not in ("tcp", "udp", "sctp"):
                raise InvalidParameter(f'invalid port specification: "{key}"')
        endpoints = (networking or {}).get("EndpointsConfig") if isinstance(networking, dict) else None
        if endpoints is not None and not isinstance(endpoints, dict):
            raise InvalidParameter("NetworkingConfig.EndpointsConfig must be an object")
        endpoints = dict(endpoints or {})
        mode = str(host_config.get("NetworkMode") or "bridge")
        if "default" in endpoints:  # the CLI keys the endpoint by the mode it sent ("default")
            endpoints.setdefault(
                "bridge" if mode in ("default", "bridge") else mode, endpoints.pop("default")
            )
        if mode.startswith("container:"):
            ref = mode.partition(":")[2]
            if not ref:
                raise InvalidParameter("no container specified to join network")
            self._repo.get(ref)
            if host_config.get("PortBindings") or host_config.get("PublishAllPorts"):
                raise InvalidParameter(
                    "conflicting options: port publishing and the container type network mode"
                )
            if host_config.get("Links"):
                raise InvalidParameter("conflicting options: container type network can't be used with links")
            if endpoints:
                raise InvalidParameter(
                    "container sharing network namespace with another container or host cannot "
                    "be connected to any other network"
                )
            return {}
        if mode not in ("default", "bridge", "host", "none"):
            _must_exist(self._nets.inspect, mode)
        else:  # dockerd's registerLinks: legacy links name existing containers (400, not 404: no pull)
            for link in host_config.get("Links") or []:
                name = str(link).partition(":")[0].lstrip("/")
                try:
                    self._repo.get(name)
                except NotFound as e:
                    raise InvalidParameter(f"could not get container for {name}: {e.message}") from None
        for key in endpoints:
            _must_exist(self._nets.inspect, key)
        return endpoints

    def stored_link(self, link: str, parent_name: str) -> str:
        """A legacy link as dockerd shows it in HostConfig.Links: "/child:/parent/alias" (a link on a user
        network, whose child is not looked up, stays as given)."""
        child_ref, _, alias = link.partition(":")
        try:
            child = self._repo.get(child_ref.lstrip("/"))
        except NotFound:
            return link
        alias = (alias or child.name).rsplit("/", 1)[-1].lstrip("/")
        return f"/{child.name.lstrip('/')}:/{parent_name.lstrip('/')}/{alias}"

    @staticmethod
    def created_settings(host_config: dict[str, Any], endpoints: dict[str, Any]) -> dict[str, Any]:
        """NetworkSettings of a container that has not run: its networks with empty endpoints."""
        st = network_settings()
        mode = str(host_config.get("NetworkMode") or "bridge")
        if mode.startswith("container:"):
            return st
        names = [mode if mode != "default" else "bridge", *[k for k in endpoints if k != mode]]
        for name in names:
            entry = endpoint_settings(None, "")
            cfg = endpoints.get(name) or {}
            entry["Aliases"] = list(cfg.get("Aliases") or []) or None
            entry["IPAMConfig"] = cfg.get("IPAMConfig") or None
            entry["Links"] = cfg.get("Links") or None
            entry["DriverOpts"] = dict(cfg.get("DriverOpts") or {}) or None
            entry["MacAddress"] = cfg.get("MacAddress") or ""
            st["Networks"][name] = entry
        return st

    # ---- start / exit --------------------------------------------------------------------------

    async def setup(self, ct: Container) -> None:
        """Build the network sandbox, write hosts/resolv.conf, record NetworkSettings (before the spec)."""
        nets = self._nets
        await nets.teardown_container(ct.id)  # a stale sandbox (crash between exit and record)
        hc = ct.host_config
        cfg = ct.config
        mode = str(hc.get("NetworkMode") or "bridge")
        if mode.startswith("container:"):
            other = self._repo.get(mode.partition(":")[2])
            cs.require(other.status, Op.JOIN_NETWORK, other.id)
            mode = "container:" + other.id
        cnet = await nets.setup_container(
            EndpointRequest(
                container_id=ct.id,
                name=ct.name,
                hostname=str(cfg.get("Hostname") or ct.id[:12]),
                network_mode=mode,
                endpoints_config=ct.book.endpoints_config,
                port_bindings=hc.get("PortBindings") or {},
                publish_all=bool(hc.get("PublishAllPorts")),
                exposed_ports=list((cfg.get("ExposedPorts") or {}).keys()),
                links=list(hc.get("Links") or []),
                dns=list(hc.get("Dns") or []) or self._default_dns,
                dns_search=list(hc.get("DnsSearch") or []),
                dns_options=list(hc.get("DnsOptions") or []),
                extra_hosts=list(hc.get("ExtraHosts") or []),
                mac_address=str(cfg.get("MacAddress") or ""),
                domainname=str(cfg.get("Domainname") or ""),
                env=list(cfg.get("Env") or []),
            )
        )
        try:
            await asyncio.to_thread(
                write_network_files,
                ct.doc.get("HostsPath"),
                ct.doc.get("ResolvConfPath"),
                cnet.hosts,
                cnet.resolv_conf,
            )
        except BaseException:
            await nets.teardown_container(ct.id)
            raise
        ct.book.netns_path = cnet.netns_path
        ct.book.link_env = list(cnet.link_env or [])
        ct.doc["NetworkSettings"] = cnet.settings

    async def teardown(self, ct: Container, *, announce: bool = True) -> Callable[[], None]:
        """Release the sandbox (veths, rules, ports, namespace); NetworkSettings keep the networks, emptied.
        With announce=False the `disconnect` events wait for the returned call (after the exit's `die`)."""
        publish: Callable[[], None] = _nothing
        try:
            publish = await self._nets.teardown_container(ct.id, announce=announce)
        except Exception as e:  # never blocks an exit or a removal
            log.warning("network teardown of %s: %s", ct.id[:12], e)
        ct.book.netns_path = None
        ct.book.link_env = []
        old = ct.doc.get("NetworkSettings") or {}
        st = network_settings()
        for name, entry in (old.get("Networks") or {}).items():
            new = endpoint_settings(None, (entry or {}).get("NetworkID") or "")
            for key in ("IPAMConfig", "Links", "Aliases"):
                new[key] = (entry or {}).get(key)
            st["Networks"][name] = new
        ct.doc["NetworkSettings"] = st
        return publish

    def live_settings(self, ct: Container) -> dict[str, Any] | None:
        """The sandbox's NetworkSettings while it exists (inspect of a live container)."""
        if ct.status not in cs.ALIVE:
            return None
        with contextlib.suppress(NotFound):
            return self._nets.network_settings(ct.id)
        return None

    def _has_sandbox(self, cid: str) -> bool:
        try:
            self._nets.network_settings(cid)
            return True
        except NotFound:
            return False

    # ---- connect / disconnect --------------------------------------------------------------------

    async def connect(self, network: str, ref: str, endpoint_config: dict[str, Any]) -> None:
        """docker network connect: live for a container with a sandbox (its /etc/hosts and resolv.conf
        rewritten), else remembered for its next start."""
        ct = self._repo.get(ref)
        net = self._nets.inspect(network)
        cfg = endpoint_config
        if self._has_sandbox(ct.id):
            ipam_cfg = cfg.get("IPAMConfig") or {}
            await self._nets.connect(
                net["Id"],
                ct.id,
                ipv4_address=ipam_cfg.get("IPv4Address") or None,
                ipv6_address=ipam_cfg.get("IPv6Address") or None,
                aliases=list(cfg.get("Aliases") or []),
                links=list(cfg.get("Links") or []),
                driver_opts=dict(cfg.get("DriverOpts") or {}),
            )
            async with ct.lock:
                ct.doc["NetworkSettings"] = self._nets.network_settings(ct.id)
                ct.book.endpoints_config[net["Name"]] = cfg
                self._repo.save(ct)
            await self._rewrite_files(ct)
            return
        mode = str(ct.host_config.get("NetworkMode") or "bridge")
        if mode.startswith("container:") or (mode == "host" and net["Name"] != "host"):
            raise Forbidden(
                "container sharing network namespace with another container or host cannot be "
                "connected to any other network"
            )
        if mode == "none" and net["Name"] != "none":
            raise Forbidden(
                "container cannot be connected to multiple networks with one of the networks in private (none) mode"
            )
        # dockerd (updateNetworkSettings): a container that is not running records the endpoint
        # configuration for its next start (compose disconnects and reconnects each created container)
        async with ct.lock:
            networks = ct.doc["NetworkSettings"].setdefault("Networks", {})
            if net["Name"] in networks:  # already on it: dockerd keeps the first configuration ("duplicate")
                return
            ct.book.endpoints_config[net["Name"]] = cfg
            entry = endpoint_settings(None, "")
            entry["Aliases"] = list(cfg.get("Aliases") or []) or None
            entry["IPAMConfig"] = cfg.get("IPAMConfig") or None
            entry["Links"] = list(cfg.get("Links") or []) or None
            entry["DriverOpts"] = dict(cfg.get("DriverOpts") or {}) or None
            entry["MacAddress"] = str(cfg.get("MacAddress") or "")
            networks[net["Name"]] = entry
            self._repo.save(ct)
        self._repo.publish(
            "network", "connect", net["Id"], {"container": ct.id, "name": net["Name"], "type": net["Driver"]}
        )

    async def take_ports(self, ref: str, from_ref: str) -> None:
        """gorae's port handover: the published ports of running container `from_ref` move to running
        container `ref` with no moment closed (the network service keeps the host ports held and switches the
        forwarding rules at once). The bindings move in the records too: a restart of the new container
        publishes them again, the old one (still running) publishes nothing."""
        new, old = self._repo.get(ref), self._repo.get(from_ref)
        if new.id == old.id:
            raise InvalidParameter("a container cannot take its own ports")
        for ct in (new, old):
            if ct.status != cs.S.RUNNING:
                raise Conflict(f"Container {ct.id} is not running")
        first, second = sorted((new, old), key=lambda c: c.id)
        async with first.lock, second.lock:
            await self._nets.take_ports(new.id, old.id)
            new_hc, old_hc = dict(new.host_config), dict(old.host_config)
            new_hc["PortBindings"] = old_hc.get("PortBindings") or {}
            new_hc["PublishAllPorts"] = bool(old_hc.get("PublishAllPorts"))
            old_hc["PortBindings"], old_hc["PublishAllPorts"] = {}, False
            new.doc["HostConfig"], old.doc["HostConfig"] = new_hc, old_hc
            for ct in (new, old):
                ct.doc["NetworkSettings"] = self._nets.network_settings(ct.id)
                self._repo.save(ct)

    async def _rewrite_files(self, ct: Container) -> None:
        """/etc/hosts and /etc/resolv.conf after a live connect or disconnect (libnetwork updates both)."""
        try:
            hosts, resolv = self._nets.container_files(ct.id)
        except NotFound:  # the sandbox went away meanwhile (the container exited)
            return
        await asyncio.to_thread(
            write_network_files, ct.doc.get("HostsPath"), ct.doc.get("ResolvConfPath"), hosts, resolv
        )

    async def disconnect(self, network: str, ref: str, *, force: bool) -> None:
        """docker network disconnect; a missing container is fine with `force`."""
        net = self._nets.inspect(network)
        try:
            ct = self._repo.get(ref)
        except NotFound:
            if force:
                return
            raise
        if self._has_sandbox(ct.id):
            await self._nets.disconnect(net["Id"], ct.id, force=force)
            async with ct.lock:
                ct.doc["NetworkSettings"] = self._nets.network_settings(ct.id)
                ct.book.endpoints_config.pop(net["Name"], None)
                ct.book.endpoints_config.pop(net["Id"], None)
                self._repo.save(ct)
            await self._rewrite_files(ct)
            return
        async with ct.lock:
            networks = ct.doc["NetworkSettings"].get("Networks") or {}
            if net["Name"] not in networks:
                raise Forbidden(f"container {ct.id} is not connected to the network {net['Name']}")
            networks.pop(net["Name"], None)
            ct.book.endpoints_config.pop(net["Name"], None)
            ct.book.endpoints_config.pop(net["Id"], None)
            self._repo.save(ct)
        self._repo.publish(
            "network",
            "disconnect",
            net["Id"],
            {"container": ct.id, "name": net["Name"], "type": net["Driver"]},
        )


def _must_exist(inspect: Any, network: str) -> None:
    """A create naming a missing network: dockerd's "network X not found" as an invalid parameter (400), so
    that the docker CLI does not take it for a missing image and try a pull."""
    try:
        inspect(network)
    except NotFound as e:
        raise InvalidParameter(e.message) from None
