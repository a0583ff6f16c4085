"""The `--dashboard-addr` listener (part of the composition root): the page's assets (`gorae.dashboard`), the
Engine API under `/api/` and the metrics at `/metrics`, on one origin.

`/api/...` is handed in-process to the Engine API's application (`gorae.api.server.EngineApp`): the same
routes, checks and errors as the unix socket, no private interface. Guards, since a browser is a confused
deputy: on a loopback address the `Host` header must name the listener (DNS rebinding); a request whose
`Origin` is another site is refused (cross-site WebSockets to `attach/ws` included); a request that
changes something must carry `X-Gorae-Dashboard: 1`, which a cross-site form or a simple cross-origin
request cannot send (CSRF); with a token (`--dashboard-token-file`) every request needs it, as
`Authorization: Bearer <token>` or the HttpOnly cookie `/?token=<token>` sets. Off loopback the daemon
refuses to serve the dashboard unless `--tlsverify` (the API's mutual TLS, same certificates) or a token is
configured (`check_dashboard_flags`). Responses carry a strict Content-Security-Policy (same-origin only).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
from urllib.parse import quote

from prometheus_client import CollectorRegistry

from gorae import dashboard
from gorae.api.server import EngineApp
from gorae.errors import Forbidden, InvalidParameter, NotFound, Unauthorized
from gorae.httpserver.heads import Heads
from gorae.httpserver.message import Request, Response
from gorae.metrics.exposition import text_format

COOKIE = "gorae_dashboard"
CSRF_HEADER = "x-gorae-dashboard"
_SAFE = ("GET", "HEAD")
_HEADS = Heads(
    [
        (
            b"Content-Security-Policy",
            b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            b"frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
        (b"X-Content-Type-Options", b"nosniff"),
        (b"X-Frame-Options", b"DENY"),
        (b"Referrer-Policy", b"no-referrer"),
        (b"Cache-Control", b"no-store"),
    ]
)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_dashboard_flags(host: str, *, tlsverify: bool, token: str | None) -> None:
    """Refuse a non-loopback dashboard without mutual TLS or a token."""
    if not is_loopback(host) and not tlsverify and not token:
        raise InvalidParameter(
            f"refusing to serve the dashboard on {host}: not a loopback address; use --tlsverify (with "
            "--tlscacert, --tlscert, --tlskey) or --dashboard-token-file"
        )


def loopback_hosts(host: str, port: int) -> frozenset[str]:
    """The `Host` header values a browser sends for a loopback listener."""
    names = {host if ":" not in host else f"[{host}]", "localhost", "127.0.0.1", "[::1]"}
    return frozenset(f"{n}:{port}" for n in names) | (frozenset(names) if port == 80 else frozenset())


def host_allowed(header: str | None, allowed: frozenset[str] | None) -> bool:
    if allowed is None:
        return True
    return header is not None and header.strip().lower() in allowed


def origin_allowed(origin: str | None, host: str | None) -> bool:
    """A request a browser sends from another origin (it names it in `Origin`: fetches, form posts and, above
    all, WebSockets — `attach/ws` writes to a container's stdin — which no same-origin policy stops) is
    refused; a request without `Origin` (curl, a top-level navigation) passes."""
    if origin is None:
        return True
    _, sep, rest = origin.strip().partition("://")
    return bool(sep) and host is not None and rest.rstrip("/").lower() == host.strip().lower()


def token_of(headers: dict[str, str]) -> str | None:
    """The token a request carries: `Authorization: Bearer ...` or the dashboard cookie."""
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    for part in headers.get("cookie", "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name == COOKIE:
            return value.strip()
    return None


class DashboardApp:
    """An `httpserver` Application: the page, `/api/` into the Engine API, `/metrics`."""

    heads = _HEADS

    def __init__(
        self,
        engine: EngineApp,
        registry: CollectorRegistry,
        *,
        token: str | None = None,
        allowed_hosts: frozenset[str] | None = None,
        secure_cookie: bool = False,
    ) -> None:
        self.engine = engine
        self.registry = registry
        self.token = token
        self.allowed_hosts = allowed_hosts
        self.secure_cookie = secure_cookie

    def _authorized(self, req: Request) -> bool:
        if self.token is None:
            return True
        given = token_of(req.headers)
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    async def handle(self, req: Request) -> Response | None:
        if not host_allowed(req.headers.get("host"), self.allowed_hosts):
            raise Forbidden("the dashboard answers only to its own address (Host header)")
        if not origin_allowed(req.headers.get("origin"), req.headers.get("host")):
            raise Forbidden("cross-origin requests are refused")
        path = req.path
        if self.token is not None and path == "/" and req.q("token") is not None:
            given = req.q("token") or ""
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                raise Unauthorized("wrong dashboard token")
            cookie = f"{COOKIE}={quote(given, safe='')}; Path=/; HttpOnly; SameSite=Strict"
            if self.secure_cookie:
                cookie += "; Secure"
            return Response(status=303, headers=[("Location", "/"), ("Set-Cookie", cookie)])
        if not self._authorized(req):
            raise Unauthorized("the dashboard needs its token: open /?token=<token>")
        if path.startswith("/api/"):
            if req.method not in _SAFE and req.headers.get(CSRF_HEADER) != "1":
                raise Forbidden(f"a request that changes something needs the {CSRF_HEADER} header")
            req.path = path[len("/api") :]
            return await self.engine.handle(req)
        if req.method not in _SAFE:
            raise NotFound("page not found")
        if path == "/metrics":
            body = await asyncio.to_thread(text_format, self.registry)
            return Response(body=body, content_type="text/plain; version=0.0.4; charset=utf-8")
        name = "index.html" if path in ("/", "/index.html") else path.removeprefix("/static/")
        if name != "index.html" and not path.startswith("/static/"):
            raise NotFound("page not found")
        found = dashboard.asset(name)
        if found is None:
            raise NotFound("page not found")
        body, ctype = found
        return Response(body=body, content_type=ctype)

    def error_response(self, exc: BaseException, *, context: str = "") -> Response:
        return self.engine.error_response(exc, context=context)

    def bad_request(self, detail: str) -> Response:
        return self.engine.bad_request(detail)
