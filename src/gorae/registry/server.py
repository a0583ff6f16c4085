"""`gorae registry serve` and `gorae registry token-server` at run time: the parts put together and served.

Owns `RegistryConfig` (what the command line decided), building the storage driver, store, authorizer and
application from it, serving on one TCP listener (TLS when a certificate is given) with the generic HTTP
server, and a clean stop on SIGINT/SIGTERM. No engine daemon is involved.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gorae.httpserver.message import Request
from gorae.httpserver.server import HttpServer
from gorae.httpserver.tls import server_context
from gorae.registry.app import Authorizer, RegistryApp
from gorae.registry.storage.driver import StorageDriver

log = logging.getLogger("gorae.registry")


@dataclass
class RegistryConfig:
    host: str = "0.0.0.0"
    port: int = 5000
    root: str = "/var/lib/gorae-registry"
    storage: str = "filesystem"
    storage_options: dict[str, str] = field(default_factory=dict)
    tls_cert: str | None = None
    tls_key: str | None = None
    htpasswd: str | None = None
    realm: str = "gorae-registry"
    token_realm: str | None = None
    token_service: str | None = None
    token_issuer: str | None = None
    token_cert: str | None = None
    token_key: str | None = None
    token_issue: bool = False
    token_only: bool = False
    read_only: bool = False
    max_blob_size: int | None = None
    access_log: bool = False


def make_driver(config: RegistryConfig) -> StorageDriver:
    if config.storage == "filesystem":
        from gorae.registry.storage.filesystem import FilesystemDriver

        return FilesystemDriver(config.root)
    if config.storage == "s3":
        try:
            from gorae.registry.storage import s3  # type: ignore[attr-defined,unused-ignore]
        except ImportError:
            raise SystemExit("gorae registry: the s3 storage driver is not available in this build") from None
        factory: Callable[..., StorageDriver] = s3.driver_from_options
        return factory(config.storage_options)
    raise SystemExit(f"gorae registry: unknown storage driver {config.storage!r} (filesystem, s3)")


def build_app(config: RegistryConfig) -> RegistryApp:
    from gorae.registry.store import RegistryStore

    authorizer: Authorizer | None = None
    public: list[tuple[str, str, Any]] = []
    if config.token_realm or config.token_issue or config.token_only:
        from gorae.registry.auth import Htpasswd, TokenAuthorizer, TokenIssuer
        from gorae.registry.token import load_private_key, load_public_key

        service = config.token_service or "gorae-registry"
        issuer = config.token_issuer or "gorae-registry-token-issuer"
        if config.token_issue or config.token_only:
            if not (config.token_key and config.htpasswd):
                raise SystemExit("gorae registry: issuing tokens needs --auth-token-key and --htpasswd")
            issuer_app = TokenIssuer(
                Htpasswd(config.htpasswd), load_private_key(config.token_key), issuer=issuer, service=service
            )
            public = issuer_app.routes()
        if not config.token_only:
            if not config.token_realm:
                raise SystemExit("gorae registry: token auth needs --auth-token-realm")
            verify_with = config.token_cert or config.token_key
            if not verify_with:
                raise SystemExit("gorae registry: token auth needs --auth-token-cert (or --auth-token-key)")
            authorizer = TokenAuthorizer(config.token_realm, service, issuer, load_public_key(verify_with))
    elif config.htpasswd:
        from gorae.registry.auth import BasicAuthorizer, Htpasswd

        authorizer = BasicAuthorizer(Htpasswd(config.htpasswd), config.realm)
    return RegistryApp(
        RegistryStore(make_driver(config)),
        authorizer=authorizer,
        read_only=config.read_only,
        max_blob_size=config.max_blob_size,
        public_routes=public,
    )


def _access_log(req: Request, status: int, seconds: float) -> None:
    log.info("%s %s %d %.1fms", req.method, req.path, status, seconds * 1000)


async def serve(config: RegistryConfig, ready: Callable[[str, int], None] | None = None) -> None:
    """Serve until SIGINT/SIGTERM; `ready` is told the bound address once listening."""
    app = build_app(config)
    ssl_ctx = server_context(config.tls_cert, config.tls_key) if config.tls_cert and config.tls_key else None
    server = HttpServer(app, on_request=_access_log if config.access_log else None)
    host, port = await server.listen_tcp(config.host, config.port, ssl_context=ssl_ctx)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("gorae registry listening on %s:%d (%s)", host, port, "https" if ssl_ctx else "http")
    if ready is not None:
        ready(host, port)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
        await server.close(grace=5)
        app.close()
