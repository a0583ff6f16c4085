"""The Engine API's server: the generic HTTP server (`gorae.httpserver`) with docker's specifics plugged in.

Owns `EngineApp` — the `/v1.NN` prefix (stripped and checked; no prefix means the newest version), routing
through the resource routers' table, docker's error bodies (`gorae.api.errors`) and headers
(`gorae.api.heads`) — and `ApiServer`, the HTTP server serving it (listeners, fast path, timeouts, connection
cap and TLS are all `gorae.httpserver.server`'s).
"""

from __future__ import annotations

from gorae.api.errors import bad_request, error_response
from gorae.api.heads import ENGINE_HEADS
from gorae.api.http import API_VERSION, Request, Response
from gorae.api.router import Router, check_version, split_version
from gorae.httpserver.connection import (
    HEADER_TIMEOUT,
    IDLE_TIMEOUT,
    MAX_HEADER_BYTES,
    AccessHook,
    ClientGone,
)
from gorae.httpserver.server import HttpServer, default_max_connections

__all__ = ["AccessHook", "ApiServer", "ClientGone", "EngineApp", "default_max_connections"]


class EngineApp:
    """The Engine API as an `Application`: version prefix, routes, docker's errors and headers."""

    heads = ENGINE_HEADS

    def __init__(self, router: Router) -> None:
        self.router = router

    async def handle(self, req: Request) -> Response | None:
        path, version = split_version(req.path)
        if version is not None:
            check_version(version)
            req.version = version
            req.path = path
        else:
            req.version = API_VERSION
        handler, params = self.router.resolve(req.method, path)
        req.params = params
        return await handler(req)

    def error_response(self, exc: BaseException, *, context: str = "") -> Response:
        return error_response(exc, context=context)

    def bad_request(self, detail: str) -> Response:
        return bad_request(detail)


class ApiServer(HttpServer):
    """Serves the Engine API's `Router` on any number of listeners until `close()`."""

    def __init__(
        self,
        router: Router,
        *,
        on_request: AccessHook | None = None,
        max_header_bytes: int = MAX_HEADER_BYTES,
        header_timeout: float = HEADER_TIMEOUT,
        idle_timeout: float = IDLE_TIMEOUT,
        max_connections: int | None = None,
    ) -> None:
        super().__init__(
            EngineApp(router),
            on_request=on_request,
            max_header_bytes=max_header_bytes,
            header_timeout=header_timeout,
            idle_timeout=idle_timeout,
            max_connections=max_connections,
        )
        self.router = router
