"""The network seam's types: the driver protocol (libnetwork's driver model), the request the container
service sends to build a container's sandbox (`EndpointRequest`), what it gets back (`ContainerNet`), and the
slice of the daemon configuration networking reads (`NetworkOptions`).

Records stay in docker's inspect shape where they are stored (`NetworkDoc`, see `model.network_doc`;
`EndpointDoc`, one per container per network), so the metadata written by earlier versions keeps loading.
This module imports nothing of gorae: drivers, the controller and tests all depend on it, never the reverse.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

NetworkDoc = dict[str, Any]  # a network record: docker's inspect shape plus `_gorae` {"bridge", "default"}
EndpointDoc = dict[str, Any]  # an endpoint record: id, container_id, network_id, ip, mac, ifname, veth, ...
SandboxDoc = dict[str, Any]  # a container's sandbox record: mode, netns_path, endpoints, ports, dns, links
PortMappingDoc = dict[str, Any]  # proto, container_port, host_ip, host_port, container_ip, bridge

Publish = Callable[[str, str, str, dict[str, str]], Any]  # (type, action, id, attributes): the event bus

# What a sandbox is made of (its record's "mode"; the stored values predate the driver seam):
SANDBOX_ATTACHED = "bridge"  # its own namespace with endpoints plugged in by the networks' drivers
SANDBOX_HOST = "host"  # the host's namespace (a host-namespace driver's network)
SANDBOX_ISOLATED = "none"  # its own namespace with only lo (an exclusive driver without interfaces)
SANDBOX_SHARED = "container"  # another container's sandbox (`--network container:X`)


class MetaStore(Protocol):
    def put(self, kind: str, id: str, doc: dict[str, Any], *, name: str | None = None) -> None: ...
    def get(self, kind: str, id: str) -> dict[str, Any]: ...
    def find(self, kind: str, id_or_name_or_prefix: str) -> dict[str, Any]: ...
    def list(self, kind: str) -> list[dict[str, Any]]: ...
    def delete(self, kind: str, id: str) -> None: ...


@dataclass(frozen=True)
class NetworkOptions:
    """The daemon options networking depends on (dockerd's --bip, --fixed-cidr, --default-address-pool,
    --ipv6, --fixed-cidr-v6, --iptables, --ip6tables, --ip-forward, --ip-masq)."""

    bip: str | None = None
    fixed_cidr: str | None = None
    ipv6: bool = False  # --ipv6: the default bridge gets IPv6 addresses from --fixed-cidr-v6
    fixed_cidr_v6: str | None = None
    ip6tables: bool = False  # --ip6tables: rules for IPv6 networks too (dockerd 20.10's default: off)
    default_address_pools: Sequence[Mapping[str, Any]] = ()
    iptables: bool = True
    ip_forward: bool = True
    ip_masq: bool = True


@dataclass(frozen=True)
class EndpointRequest:
    """What the container service asks for when a container starts: its sandbox (namespace, hosts and
    resolv.conf content) and one endpoint per network, from its HostConfig, Config and NetworkingConfig."""

    container_id: str
    name: str  # with or without the leading "/"
    hostname: str
    network_mode: str = "default"  # default, bridge, host, none, container:<id>, or a network name/ID
    endpoints_config: Mapping[str, Any] = field(default_factory=dict)  # NetworkingConfig.EndpointsConfig
    port_bindings: Mapping[str, Any] = field(default_factory=dict)  # HostConfig.PortBindings
    publish_all: bool = False  # HostConfig.PublishAllPorts (-P)
    exposed_ports: Sequence[str] = ()  # Config.ExposedPorts keys ("80/tcp")
    links: Sequence[str] = ()  # HostConfig.Links
    dns: Sequence[str] = ()
    dns_search: Sequence[str] = ()
    dns_options: Sequence[str] = ()
    extra_hosts: Sequence[str] = ()
    mac_address: str = ""
    aliases: Sequence[str] = ()  # extra aliases on the first network
    domainname: str = ""
    env: Sequence[str] = ()  # the container's Env (legacy link variables of containers linking to it)


@dataclass
class ContainerNet:
    """What the container service needs to start a container."""

    netns_path: str | None  # the OCI spec's network namespace path; None = host networking
    settings: dict[str, Any]  # NetworkSettings
    hosts: str  # /etc/hosts content
    resolv_conf: str  # /etc/resolv.conf content
    link_env: list[str] = field(default_factory=list)  # legacy link variables for the container's Env


@dataclass(frozen=True)
class DriverCapabilities:
    """How the controller treats the networks of a driver."""

    user_networks: bool  # `network create -d <type>` may make networks (False: only the predefined one)
    host_namespace: bool = False  # its containers use the host's network namespace
    exclusive: bool = False  # a container on it is on no other network and cannot connect/disconnect
    addresses: bool = False  # its endpoints get addresses from the network's IPAM pool
    cluster: bool = False  # swarm-scoped: its networks live in the cluster store (`ClusterNetworks`)


@dataclass(frozen=True)
class NetworkSpec:
    """A driver's predefined network beyond the common fields: its address pool and driver options."""

    subnet: str | None = None
    gateway: str | None = None
    ip_range: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)
    interface: str | None = None  # the kernel interface its endpoints hang off (stored as `_gorae.bridge`)
    enable_ipv6: bool = False  # EnableIPv6 (the default bridge with --ipv6)
    ipv6_subnet: str | None = None  # its IPv6 pool (--fixed-cidr-v6); without one, link-local addresses only


@dataclass(frozen=True)
class SandboxInfo:
    """Where a driver plugs an endpoint in: the container's namespace, and during setup an open
    rtnetlink socket inside it (`kernel.rtnl.Rtnl`; None: the driver enters the namespace itself)."""

    container_id: str
    netns_path: str
    rtnl: Any = None


@dataclass(frozen=True)
class PortTarget:
    """Where a network forwards published ports: the host address used when a binding names none, and the
    interface the forwarding rules match."""

    default_host_ip: str
    interface: str


class NetworkDriver(Protocol):
    """A network type (bridge, host, null; overlay and ingress later), on libnetwork's driver model.

    The controller owns the records, IPAM, sandboxes (namespaces), published host ports, DNS and events;
    a driver owns the kernel state of its networks and endpoints. Driver methods run in worker threads,
    never on the event loop, and may be called again for a network or endpoint that already exists
    (start-up after a crash), so they are idempotent.
    """

    @property
    def type(self) -> str: ...  # the `Driver` field of its networks

    @property
    def capabilities(self) -> DriverCapabilities: ...

    @property
    def predefined_name(self) -> str | None: ...  # the network every daemon has of this type ("bridge")

    def predefined_network(self, pick_subnet: Callable[[], ipaddress.IPv4Network]) -> NetworkSpec:
        """The predefined network's pool and options (pick_subnet: a free subnet from the address pools)."""
        ...

    def network_interface(
        self, network_id: str, options: Mapping[str, str], networks: Sequence[NetworkDoc]
    ) -> str | None:
        """Validate a new network's driver options; the interface it will use (no kernel work)."""
        ...

    def create_network(self, net: NetworkDoc) -> None:
        """Build the network's kernel state (a bridge). On failure leaves nothing behind."""
        ...

    def delete_network(self, net: NetworkDoc) -> None: ...

    def restore(self, networks: Sequence[NetworkDoc]) -> None:
        """Daemon start: rebuild the kernel state of the driver's existing networks."""
        ...

    def purge(self, networks: Sequence[NetworkDoc]) -> None:
        """Remove everything the driver put in the kernel (tests, uninstall)."""
        ...

    def create_endpoint(self, net: NetworkDoc, ep: EndpointDoc) -> None:
        """Fill in the endpoint's driver fields (interface names, MAC); no kernel work."""
        ...

    def delete_endpoint(self, net: NetworkDoc, ep: EndpointDoc) -> None: ...

    def join(self, net: NetworkDoc, ep: EndpointDoc, sandbox: SandboxInfo, *, default_route: bool) -> None:
        """Plug the endpoint into the sandbox's namespace (address, routes)."""
        ...

    def leave(self, net: NetworkDoc, ep: EndpointDoc, sandbox: SandboxInfo) -> None: ...

    def port_target(self, net: NetworkDoc) -> PortTarget | None:
        """Where ports published towards an endpoint on net are forwarded (None: the driver cannot)."""
        ...

    def sync(self, networks: Sequence[NetworkDoc], ports: Sequence[PortMappingDoc]) -> None:
        """Bring the driver's host-wide state (firewall rules) in line with its networks and the published
        ports; cheap when nothing changed."""
        ...


@dataclass(frozen=True)
class Attachment:
    """A cluster network granted to a container on this node: the network's record (docker's inspect shape,
    Scope "swarm") and the address the cluster allocated for the container on it."""

    network: NetworkDoc
    ip: str


class ClusterNetworks(Protocol):
    """The swarm's networks as this node sees them (gorae.swarm.networks implements it; None outside a swarm).

    `find`/`list` answer from what this node knows of the cluster (synchronous: the API's list and inspect
    are); `attach`/`detach` ask the manager for an address (and the right to use the network) and give it
    back; `create`/`remove` change the cluster (managers only) and run in worker threads."""

    def find(self, name_or_id: str) -> NetworkDoc | None: ...

    async def attach(
        self,
        network_id: str,
        container_id: str,
        container_name: str,
        ip: str | None,
        aliases: Sequence[str] = (),
    ) -> Attachment: ...

    async def detach(self, network_id: str, container_id: str) -> None: ...

    async def instantiated(self, network_id: str) -> None:
        """The network's kernel state was just built here (program its peers)."""

    async def container_started(self, container_id: str) -> None:
        """A container on swarm networks got its sandbox here (program its load balancer)."""

    async def task_networks(self, container_name: str) -> list[str]:
        """For a container named as a swarm task's: the IDs of the swarm networks it joins (none when it is
        no task of this node)."""
        ...

    def resolve(self, network_ids: set[str], name: str) -> list[str] | None:
        """The embedded DNS's answer from the cluster for a container on those networks (services,
        `tasks.<service>`, containers on other nodes); None when the cluster knows no such name."""

    def create(self, name: str, body: dict[str, Any]) -> dict[str, str]: ...

    def remove(self, network_id: str) -> None: ...

    def list(self) -> list[NetworkDoc]: ...  # last: the name shadows `list` below it
