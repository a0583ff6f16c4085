"""Assembles the Engine API: one route table from the resource routers.

Each resource is a router class over a narrow backend protocol (moby's router/backend split): its `routes()`
is a flat table of (method, pattern, handler). The composition root (`gorae.cmd.daemon`) builds the backends
and the routers; this module only joins their tables.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from gorae.api.http import Handler
from gorae.api.router import Router


class ResourceRouter(Protocol):
    """A resource's handlers over its backend."""

    def routes(self) -> list[tuple[str, str, Handler]]: ...


def build_routes(resources: Iterable[ResourceRouter]) -> Router:
    """One route table from every resource's routes (a method and pattern given twice is a programming
    error the router reports)."""
    routes = Router()
    for resource in resources:
        for method, pattern, handler in resource.routes():
            routes.add(method, pattern, handler)
    return routes
