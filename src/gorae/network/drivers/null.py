"""The null driver: containers on the `none` network get a namespace of their own with only lo."""

from __future__ import annotations

from gorae.network.drivers.base import InterfacelessDriver
from gorae.network.types import DriverCapabilities


class NullDriver(InterfacelessDriver):
    type = "null"
    capabilities = DriverCapabilities(user_networks=False, exclusive=True)
    predefined_name = "none"
