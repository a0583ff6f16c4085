"""The common part of drivers whose networks have no kernel state of their own (host, null): every hook is
a no-op and their endpoints carry no address or interface."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence

from gorae.network.types import EndpointDoc, NetworkDoc, NetworkSpec, PortMappingDoc, SandboxInfo


class InterfacelessDriver:
    def predefined_network(self, pick_subnet: Callable[[], ipaddress.IPv4Network]) -> NetworkSpec:
        return NetworkSpec()

    def network_interface(
        self, network_id: str, options: Mapping[str, str], networks: Sequence[NetworkDoc]
    ) -> str | None:
        return None

    def create_network(self, net: NetworkDoc) -> None:
        pass

    def delete_network(self, net: NetworkDoc) -> None:
        pass

    def restore(self, networks: Sequence[NetworkDoc]) -> None:
        pass

    def purge(self, networks: Sequence[NetworkDoc]) -> None:
        pass

    def create_endpoint(self, net: NetworkDoc, ep: EndpointDoc) -> None:
        pass

    def delete_endpoint(self, net: NetworkDoc, ep: EndpointDoc) -> None:
        pass

    def join(self, net: NetworkDoc, ep: EndpointDoc, sandbox: SandboxInfo, *, default_route: bool) -> None:
        pass

    def leave(self, net: NetworkDoc, ep: EndpointDoc, sandbox: SandboxInfo) -> None:
        pass

    def port_target(self, net: NetworkDoc) -> None:
        return None

    def sync(self, networks: Sequence[NetworkDoc], ports: Sequence[PortMappingDoc]) -> None:
        pass
