"""The drivers every daemon has: bridge, host and null."""

from __future__ import annotations

from gorae.network.drivers.bridge import BridgeDriver
from gorae.network.drivers.host import HostDriver
from gorae.network.drivers.null import NullDriver
from gorae.network.names import NetworkNames
from gorae.network.types import NetworkDriver, NetworkOptions


def builtin_drivers(names: NetworkNames, options: NetworkOptions) -> list[NetworkDriver]:
    return [BridgeDriver(names, options), HostDriver(), NullDriver()]
