"""Assembles the Engine API: one route table from the resource modules, bound to a Daemon.

Each resource module exposes `register(routes, daemon)`; adding a resource is one line here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gorae.api.router import Router

if TYPE_CHECKING:
    from gorae.daemon.daemon import Daemon


def build_router(d: Daemon) -> Router:
    from gorae.api import containers, exec, images, networks, system, volumes

    routes = Router()
    for module in (system, containers, exec, images, volumes, networks):
        module.register(routes, d)
    return routes
