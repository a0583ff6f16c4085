"""Swarm routes: `/swarm` (init, join, leave, update, unlockkey, unlock), `/nodes`, and the list and inspect
routes of `/secrets`, `/configs` — `SwarmRouter` over a `SwarmBackend` (`gorae.swarm.manager.SwarmService`).
`/services` and `/tasks` are `gorae.api.services`'.

Outside a swarm every route answers dockerd's 503s ("This node is not part of a swarm" for leave, "This node
is not a swarm manager..." for the rest): clients such as docker-py's tear-down call them on any daemon.
Secrets and configs cannot be created yet: their lists are empty (truthfully) and a create
answers 501.
"""

from __future__ import annotations

from typing import Any, Protocol

from gorae.api.http import Handler, Request, Response, empty_response, json_response
from gorae.errors import InvalidParameter, NotFound, NotImplementedYet, Unavailable
from gorae.filters import Filters
from gorae.swarm.autolock import LOCKED
from gorae.swarm.docs import NOT_MANAGER, WORKER_NOT_MANAGER


class SwarmBackend(Protocol):
    def ping_state(self) -> str: ...
    def info(self) -> dict[str, Any]: ...
    async def init(self, body: dict[str, Any]) -> str: ...
    async def join(self, body: dict[str, Any]) -> None: ...
    async def leave(self, force: bool) -> None: ...
    async def inspect(self) -> dict[str, Any]: ...
    async def unlock_key(self) -> dict[str, str]: ...
    async def unlock(self, body: dict[str, Any]) -> None: ...
    async def update(
        self,
        raw_version: str | None,
        spec: dict[str, Any],
        rotate_worker: bool,
        rotate_manager: bool,
        rotate_unlock: bool = False,
    ) -> None: ...
    async def nodes(self, filters: Filters) -> list[dict[str, Any]]: ...
    async def node(self, ref: str) -> dict[str, Any]: ...
    async def update_node(self, ref: str, raw_version: str | None, spec: dict[str, Any]) -> None: ...
    async def remove_node(self, ref: str, force: bool) -> None: ...


_KINDS: dict[str, str] = {}


class SwarmRouter:
    def __init__(self, backend: SwarmBackend) -> None:
        self.swarm = backend

    def routes(self) -> list[tuple[str, str, Handler]]:
        table: list[tuple[str, str, Handler]] = [
            ("POST", "/swarm/init", self.init),
            ("POST", "/swarm/join", self.join),
            ("POST", "/swarm/leave", self.leave),
            ("GET", "/swarm", self.inspect),
            ("GET", "/swarm/unlockkey", self.unlock_key),
            ("POST", "/swarm/unlock", self.unlock),
            ("POST", "/swarm/update", self.update),
            ("GET", "/nodes", self.list_nodes),
            ("GET", "/nodes/{id}", self.inspect_node),
            ("POST", "/nodes/{id}/update", self.update_node),
            ("DELETE", "/nodes/{id}", self.remove_node),
        ]
        for plural, kind in _KINDS.items():
            missing = self._missing(kind)
            table += [("GET", f"/{plural}", self.list_objects), ("GET", f"/{plural}/{{id}}", missing)]
            table += [
                ("POST", f"/{plural}/create", self._not_yet(plural)),
                ("POST", f"/{plural}/{{id}}/update", missing),
                ("DELETE", f"/{plural}/{{id}}", missing),
            ]
        return table

    def _manager(self) -> None:
        state = self.swarm.ping_state()
        if state == "locked":
            raise Unavailable(LOCKED)
        if state == "active/worker":
            raise Unavailable(WORKER_NOT_MANAGER)
        if not state.endswith("/manager"):
            raise Unavailable(NOT_MANAGER)

    async def _body(self, req: Request, go_type: str) -> dict[str, Any]:
        """The JSON object body; anything else is dockerd's decoder error."""
        body = await req.json()
        if body is None:
            return {}
        if not isinstance(body, dict):
            kind = {bool: "bool", int: "number", float: "number", str: "string", list: "array"}[type(body)]
            raise InvalidParameter(f"json: cannot unmarshal {kind} into Go value of type {go_type}")
        return body

    async def init(self, req: Request) -> Response:
        node_id = await self.swarm.init(await self._body(req, "swarm.InitRequest"))
        return json_response(node_id)

    async def join(self, req: Request) -> Response:
        await self.swarm.join(await self._body(req, "swarm.JoinRequest"))
        return empty_response(200)

    async def leave(self, req: Request) -> Response:
        await self.swarm.leave(req.qbool("force"))
        return empty_response(200)

    async def inspect(self, req: Request) -> Response:
        return json_response(await self.swarm.inspect())

    async def unlock_key(self, req: Request) -> Response:
        return json_response(await self.swarm.unlock_key())

    async def unlock(self, req: Request) -> Response:
        await self.swarm.unlock(await self._body(req, "swarm.UnlockRequest"))
        return empty_response(200)

    async def update(self, req: Request) -> Response:
        spec = await self._body(req, "swarm.Spec")
        self._manager()
        await self.swarm.update(
            req.q("version"),
            spec,
            req.qbool("rotateWorkerToken"),
            req.qbool("rotateManagerToken"),
            req.qbool("rotateManagerUnlockKey"),
        )
        return empty_response(200)

    async def list_nodes(self, req: Request) -> Response:
        self._manager()
        return json_response(await self.swarm.nodes(req.qfilters("filters")))

    async def inspect_node(self, req: Request) -> Response:
        return json_response(await self.swarm.node(req.params["id"]))

    async def update_node(self, req: Request) -> Response:
        spec = await self._body(req, "swarm.NodeSpec")
        self._manager()
        await self.swarm.update_node(req.params["id"], req.q("version"), spec)
        return empty_response(200)

    async def remove_node(self, req: Request) -> Response:
        self._manager()
        await self.swarm.remove_node(req.params["id"], req.qbool("force"))
        return empty_response(200)

    # services, tasks, secrets, configs: none can exist yet

    async def list_objects(self, req: Request) -> Response:
        self._manager()
        req.qfilters("filters")
        return json_response([])

    def _missing(self, kind: str) -> Handler:
        async def handler(req: Request) -> Response:
            self._manager()
            raise NotFound(f"{kind} {req.params['id']} not found")

        return handler

    def _not_yet(self, plural: str) -> Handler:
        async def handler(req: Request) -> Response:
            self._manager()
            raise NotImplementedYet(f"swarm {plural} are not supported by gorae yet")

        return handler
