"""Assembles the Engine API: one route table from the resource routers.

A resource is either a router object (`SystemRouter(backend)`: anything with `register(routes)`) or, until
every resource is converted, a module with the old `register(routes, daemon)`. `build_routes` takes both;
`build_router(daemon)` is today's wiring of every resource to one Daemon (the composition root will
build the backends itself and call `build_routes`).
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

from gorae.api.router import Router
from gorae.api.system import DaemonFacts, SystemRouter
from gorae.events import Subscription

if TYPE_CHECKING:
    from gorae.daemon.daemon import Daemon


class ResourceRouter(Protocol):
    """A resource's handlers over its backend; adds its routes to the table."""

    def register(self, routes: Router) -> None: ...


def build_routes(resources: Iterable[ResourceRouter | ModuleType], daemon: Any = None) -> Router:
    """One route table from router objects and not-yet-converted `register(routes, daemon)` modules."""
    routes = Router()
    for resource in resources:
        if isinstance(resource, ModuleType):
            if daemon is None:
                raise ValueError(f"{resource.__name__}.register needs the daemon")
            resource.register(routes, daemon)
        else:
            resource.register(routes)
    return routes


def build_router(d: Daemon) -> Router:
    from gorae.api import images, volumes
    from gorae.api.containers import ContainersRouter
    from gorae.api.exec import ExecRouter
    from gorae.api.networks import NetworksRouter

    return build_routes(
        [
            SystemRouter(DaemonSystemBackend(d)),
            ContainersRouter(d.containers),
            ExecRouter(d.execs),
            images,
            volumes,
            NetworksRouter(d.networks, d.containers, d.events.publish),
        ],
        daemon=d,
    )


class DaemonSystemBackend:
    """`SystemBackend` over today's Daemon object (moves to the composition root with the wiring)."""

    def __init__(self, d: Daemon) -> None:
        self._d = d

    def daemon_facts(self) -> DaemonFacts:
        d = self._d
        cfg = d.config
        return DaemonFacts(
            node_id=d.node_id,
            container_states=d.containers.count_states(),
            images=len(d.images.list(all=True)),
            event_listeners=d.events.listener_count(),
            debug=cfg.log_level == "debug",
            data_root=cfg.data_root,
            runtime_path=cfg.runtime,
            registry_mirrors=cfg.registry_mirrors,
        )

    def subscribe_events(self) -> Subscription:
        return self._d.events.subscribe()

    def event_history(self, since_ns: int, until_ns: int | None) -> list[dict[str, Any]]:
        return self._d.events.history(since_ns, until_ns)

    def disk_usage(self) -> dict[str, Any]:
        return self._d.system_df()
