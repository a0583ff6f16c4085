"""`/services` (create, list, inspect, update, remove) and `/tasks` (list, inspect): `ServicesRouter` over
a `ServicesBackend` (`gorae.swarm.services.control.ServiceControl`), with dockerd's query parsing and
errors. Off a manager every route answers dockerd's 503s (the backend's store lookup raises them).
"""

from __future__ import annotations

from typing import Any, Protocol

from gorae.api.http import Handler, Request, Response, empty_response, json_response
from gorae.errors import InvalidParameter
from gorae.filters import Filters

_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


class ServicesBackend(Protocol):
    async def create(self, body: Any, registry_auth: str | None = None) -> dict[str, Any]: ...
    async def list_services(self, filters: Filters, status: bool) -> list[dict[str, Any]]: ...
    async def inspect(self, ref: str, insert_defaults: bool) -> dict[str, Any]: ...
    async def update(
        self,
        ref: str,
        raw_version: str | None,
        body: Any,
        rollback: str | None,
        auth_from: str | None,
        registry_auth: str | None = None,
    ) -> dict[str, Any]: ...
    async def remove(self, ref: str) -> None: ...
    async def tasks(self, filters: Filters) -> list[dict[str, Any]]: ...
    async def task(self, ref: str) -> dict[str, Any]: ...


def go_bool(req: Request, name: str) -> bool:
    """A query flag parsed as Go's strconv.ParseBool (dockerd's 400 text for anything else)."""
    value = req.q(name)
    if value is None or value == "":
        return False
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InvalidParameter(
        f'invalid value for {name}: {value}: strconv.ParseBool: parsing "{value}": invalid syntax'
    )


class ServicesRouter:
    def __init__(self, backend: ServicesBackend) -> None:
        self.services = backend

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("GET", "/services", self.list_services),
            ("POST", "/services/create", self.create),
            ("GET", "/services/{id}", self.inspect),
            ("POST", "/services/{id}/update", self.update),
            ("DELETE", "/services/{id}", self.remove),
            ("GET", "/tasks", self.list_tasks),
            ("GET", "/tasks/{id}", self.inspect_task),
        ]

    @staticmethod
    async def _body(req: Request) -> Any:
        if not (await req.body()).strip():
            raise InvalidParameter("got EOF while reading request body")
        body = await req.json()
        return {} if body is None else body  # JSON null: Go's zero ServiceSpec

    async def create(self, req: Request) -> Response:
        body = await self._body(req)
        auth = req.headers.get("x-registry-auth")  # kept as sent for the nodes' pulls (dockerd's)
        return json_response(await self.services.create(body, auth), status=201)

    async def list_services(self, req: Request) -> Response:
        filters = req.qfilters("filters")
        status = go_bool(req, "status")
        return json_response(await self.services.list_services(filters, status))

    async def inspect(self, req: Request) -> Response:
        insert = go_bool(req, "insertDefaults")
        return json_response(await self.services.inspect(req.params["id"], insert))

    async def update(self, req: Request) -> Response:
        body = await self._body(req)
        answer = await self.services.update(
            req.params["id"],
            req.q("version"),
            body,
            req.q("rollback"),
            req.q("registryAuthFrom"),
            req.headers.get("x-registry-auth"),
        )
        return json_response(answer)

    async def remove(self, req: Request) -> Response:
        await self.services.remove(req.params["id"])
        return empty_response(200)

    async def list_tasks(self, req: Request) -> Response:
        return json_response(await self.services.tasks(req.qfilters("filters")))

    async def inspect_task(self, req: Request) -> Response:
        return json_response(await self.services.task(req.params["id"]))
