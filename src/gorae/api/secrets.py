"""`/secrets` and `/configs` routes: create, list, inspect, update (labels only), delete, as dockerd answers
them — `SecretsRouter` over one `SecretsBackend` per kind (`gorae.swarm.secrets.SecretStore`).

Outside a swarm and on workers they answer dockerd's 503s (the backend's store lookup raises them)."""

from __future__ import annotations

from typing import Any, Protocol

from gorae.api.http import Handler, Request, Response, empty_response, json_response
from gorae.filters import Filters


class SecretsBackend(Protocol):
    async def create(self, body: Any) -> str: ...
    async def list_objects(self, filters: Filters) -> list[dict[str, Any]]: ...
    async def inspect(self, ref: str) -> dict[str, Any]: ...
    async def update(self, ref: str, raw_version: str | None, body: Any) -> None: ...
    async def remove(self, ref: str) -> None: ...


class SecretsRouter:
    def __init__(self, secrets: SecretsBackend, configs: SecretsBackend) -> None:
        self.backends = {"secrets": secrets, "configs": configs}

    def routes(self) -> list[tuple[str, str, Handler]]:
        table: list[tuple[str, str, Handler]] = []
        for plural, backend in self.backends.items():
            table += [
                ("GET", f"/{plural}", self._list(backend)),
                ("POST", f"/{plural}/create", self._create(backend)),
                ("GET", f"/{plural}/{{id}}", self._inspect(backend)),
                ("POST", f"/{plural}/{{id}}/update", self._update(backend)),
                ("DELETE", f"/{plural}/{{id}}", self._remove(backend)),
            ]
        return table

    @staticmethod
    def _list(b: SecretsBackend) -> Handler:
        async def handler(req: Request) -> Response:
            filters = req.qfilters("filters")
            return json_response(await b.list_objects(filters))

        return handler

    @staticmethod
    def _create(b: SecretsBackend) -> Handler:
        async def handler(req: Request) -> Response:
            body = await req.json()
            return json_response({"ID": await b.create(body if body is not None else {})}, 201)

        return handler

    @staticmethod
    def _inspect(b: SecretsBackend) -> Handler:
        async def handler(req: Request) -> Response:
            return json_response(await b.inspect(req.params["id"]))

        return handler

    @staticmethod
    def _update(b: SecretsBackend) -> Handler:
        async def handler(req: Request) -> Response:
            body = await req.json()
            await b.update(req.params["id"], req.q("version"), body if body is not None else {})
            return empty_response(200)

        return handler

    @staticmethod
    def _remove(b: SecretsBackend) -> Handler:
        async def handler(req: Request) -> Response:
            await b.remove(req.params["id"])
            return empty_response(204)

        return handler
