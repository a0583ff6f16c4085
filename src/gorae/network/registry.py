"""The network driver registry: the controller chooses a network's driver by its type name here, and the
composition root registers further drivers (overlay, ingress) before the controller starts."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from gorae.errors import Conflict, NotFound
from gorae.network.types import NetworkDoc, NetworkDriver


class DriverRegistry:
    def __init__(self, drivers: Iterable[NetworkDriver] = ()) -> None:
        self._drivers: dict[str, NetworkDriver] = {}
        for d in drivers:
            self.register(d)

    def register(self, driver: NetworkDriver) -> None:
        if driver.type in self._drivers:
            raise Conflict(f"network driver {driver.type!r} is already registered")
        self._drivers[driver.type] = driver

    def get(self, type_name: str) -> NetworkDriver:
        """The driver of that type; NotFound as docker words it for a missing plugin."""
        try:
            return self._drivers[type_name]
        except KeyError:
            raise NotFound(f'plugin "{type_name}" not found') from None

    def of(self, net: NetworkDoc) -> NetworkDriver:
        """The driver of a network record."""
        return self.get(net["Driver"])

    def __contains__(self, type_name: object) -> bool:
        return type_name in self._drivers

    def __iter__(self) -> Iterator[NetworkDriver]:
        return iter(list(self._drivers.values()))
