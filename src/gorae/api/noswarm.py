"""Swarm routes of a node that is not part of a swarm: dockerd's answers outside a swarm.

Owns the `/swarm*`, `/nodes*`, `/services*`, `/tasks*`, `/secrets*` and `/configs*` routes while gorae runs no
swarm: each answers 503 "This node is not part of a swarm" as dockerd does, so clients' tear-downs (which call
`POST /swarm/leave?force=1` unconditionally) see what they expect. `init`/`join` answer 501: joining a swarm is
not something gorae does.
"""

from __future__ import annotations

from gorae.api.http import Handler, Request, Response
from gorae.errors import NotImplementedYet, Unavailable

NOT_IN_SWARM = (
    "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this "
    "node to swarm and try again."
)
_LEAVE = "This node is not part of a swarm"

_ROUTES: list[tuple[str, str]] = [
    ("GET", "/swarm"),
    ("POST", "/swarm/update"),
    ("GET", "/swarm/unlockkey"),
    ("POST", "/swarm/unlock"),
    ("GET", "/nodes"),
    ("GET", "/nodes/{id}"),
    ("DELETE", "/nodes/{id}"),
    ("POST", "/nodes/{id}/update"),
    ("GET", "/services"),
    ("POST", "/services/create"),
    ("GET", "/services/{id}"),
    ("DELETE", "/services/{id}"),
    ("POST", "/services/{id}/update"),
    ("GET", "/services/{id}/logs"),
    ("GET", "/tasks"),
    ("GET", "/tasks/{id}"),
    ("GET", "/tasks/{id}/logs"),
    ("GET", "/secrets"),
    ("POST", "/secrets/create"),
    ("GET", "/secrets/{id}"),
    ("DELETE", "/secrets/{id}"),
    ("POST", "/secrets/{id}/update"),
    ("GET", "/configs"),
    ("POST", "/configs/create"),
    ("GET", "/configs/{id}"),
    ("DELETE", "/configs/{id}"),
    ("POST", "/configs/{id}/update"),
]


class NoSwarmRouter:
    """Every swarm route, answered as a node outside a swarm."""

    def routes(self) -> list[tuple[str, str, Handler]]:
        table: list[tuple[str, str, Handler]] = [(m, p, self.not_in_swarm) for m, p in _ROUTES]
        table += [
            ("POST", "/swarm/leave", self.leave),
            ("POST", "/swarm/init", self.unsupported),
            ("POST", "/swarm/join", self.unsupported),
        ]
        return table

    async def not_in_swarm(self, req: Request) -> Response:
        raise Unavailable(NOT_IN_SWARM)

    async def leave(self, req: Request) -> Response:
        raise Unavailable(_LEAVE)

    async def unsupported(self, req: Request) -> Response:
        raise NotImplementedYet("swarm mode is not supported by gorae")
