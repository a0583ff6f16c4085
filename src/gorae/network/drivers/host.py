"""The host driver: containers on the `host` network use the host's network namespace."""

from __future__ import annotations

from gorae.network.drivers.base import InterfacelessDriver
from gorae.network.types import DriverCapabilities


class HostDriver(InterfacelessDriver):
    type = "host"
    capabilities = DriverCapabilities(user_networks=False, host_namespace=True, exclusive=True)
    predefined_name = "host"
