"""The seam between a node's swarm membership (`SwarmService`) and the parts that run on it: components
(orchestrator, scheduler, dispatcher, agent, ...) and the operations they add to the swarm port.

A component is started when this node is part of a swarm (after `init`, `join`, or a daemon restart inside
one) and stopped when it leaves or the daemon stops. It is given a `NodeContext`: who this node is, the
cluster store when it is a manager, and a way to call its manager over the swarm port (mutual TLS). Components
never call each other: they read and watch the store (swarmkit's design), or, on a worker, ask the manager.

A remote operation is a handler for one `op` on the swarm port; it runs on a manager, after the caller's node
certificate has been checked (its node ID is passed in) and the node is known to the store.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from gorae.swarm.store.types import ClusterStore

CallManager = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
RemoteOp = Callable[[dict[str, Any], str, str], Awaitable[dict[str, Any]]]  # (request, node ID, peer IP)


@dataclass(frozen=True)
class NodeContext:
    node_id: str
    cluster_id: str
    role: str  # "manager" | "worker"
    addr: str  # this node's advertised IP
    store: ClusterStore | None  # managers only
    call_manager: CallManager  # one request to the manager over the swarm port (workers)
    # one request to the manager at "host:port" over the swarm port (mutual TLS), e.g. another manager
    call_at: Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]] | None = None


class SwarmComponent(Protocol):
    async def start(self, node: NodeContext) -> None:
        """Begin work for this node (spawn its own tasks and return)."""

    async def stop(self) -> None:
        """End all work started by `start` (the node left the swarm or the daemon stops)."""

    # optional: `async def left(self, node_id: str) -> None` — called after `stop` when the node leaves the
    # swarm (not when the daemon stops): drop what belonged to node `node_id` (dockerd removes the node's
    # task containers on leave).
