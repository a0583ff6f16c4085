"""`gorae daemon` (part of the composition root): parse dockerd-style flags, build the services, start the API
listeners, stop on SIGTERM.

SIGTERM/SIGINT stop the listeners and the watchers but leave containers running (conmon holds them);
the next start re-attaches. Run as `gorae daemon ...` or `python -m gorae.cmd.daemon ...`.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import logging
import os
import resource
import signal
import ssl
import sys
import time
from collections.abc import Coroutine
from typing import Any
from urllib.parse import urlparse

import uvloop

from gorae.api.router import Router
from gorae.api.server import ApiServer, EngineApp
from gorae.api.tls import server_context
from gorae.cmd import malloc
from gorae.cmd.dashboard import DashboardApp, check_dashboard_flags, is_loopback, loopback_hosts
from gorae.cmd.wiring import Services, api_metrics_hook, build_api, build_services
from gorae.daemon import roots
from gorae.daemon.config import DaemonConfig, build_parser, load_config
from gorae.errors import GoraeError, InvalidParameter
from gorae.httpserver.server import HttpServer
from gorae.metrics.graphite import GraphitePusher, parse_duration, parse_hostport
from gorae.metrics.http import MetricsApp
from gorae.network.names import network_names

log = logging.getLogger("gorae.daemon")

_INSECURE_TCP_WARNING = (
    "Binding to IP address without --tlsverify is insecure and gives root access on this machine to "
    "everyone who has access to your network."
)
_TLS_WITHOUT_VERIFY_WARNING = (
    "--tls without --tlsverify encrypts but does not authenticate clients: anyone who can reach the port "
    "gets root access on this machine; use --tlsverify with --tlscacert."
)
DEFAULT_GROUP = "docker"


def _socket_group(cfg: DaemonConfig) -> str | None:
    """The unix socket's group: one asked for must exist (as dockerd); the default only if it exists."""
    if cfg.group is None:
        return DEFAULT_GROUP
    try:
        grp.getgrnam(cfg.group)
    except KeyError:
        raise InvalidParameter(f"can't create unix socket: group {cfg.group} not found") from None
    return cfg.group


def _tls_context(cfg: DaemonConfig) -> ssl.SSLContext | None:
    if not (cfg.tls or cfg.tlsverify):
        return None
    if not cfg.tlscert or not cfg.tlskey:
        raise InvalidParameter("--tls needs --tlscert and --tlskey")
    if cfg.tlsverify and not cfg.tlscacert:
        raise InvalidParameter("--tlsverify needs --tlscacert")
    return server_context(cfg.tlscert, cfg.tlskey, client_ca=cfg.tlscacert if cfg.tlsverify else None)


def _write_pidfile(path: str) -> None:
    if os.path.exists(path):
        try:
            with open(path, encoding="ascii") as f:
                old = int(f.read().strip() or 0)
            if old and os.path.exists(f"/proc/{old}"):
                raise InvalidParameter(f"pid file found, ensure docker is not running or delete {path}")
        except ValueError:
            pass
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="ascii") as f:
        f.write(str(os.getpid()))


def _raise_fd_limit() -> None:
    """As dockerd: the soft fd limit up to the hard one (connections, containers' pipes and sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class _QuietLoopErrors:
    """The event loop's error handler, at most one report of a kind per 10 s: when fds run out asyncio
    reports every failed accept, and a log flood then fills the disk (security review F9)."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._dropped: dict[str, int] = {}

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        key = str(context.get("message", ""))
        now = time.monotonic()
        if now - self._last.get(key, -1e9) < 10.0:
            self._dropped[key] = self._dropped.get(key, 0) + 1
            return
        self._last[key] = now
        dropped = self._dropped.pop(key, 0)
        if dropped:
            context = {**context, "message": f"{key} (and {dropped} more like it in the last 10 s)"}
        loop.default_exception_handler(context)


async def serve(cfg: DaemonConfig) -> None:
    asyncio.get_running_loop().set_exception_handler(_QuietLoopErrors())
    _tls_context(cfg)  # bad flags are refused before anything is touched
    _check_monitoring_flags(cfg)
    _socket_group(cfg)
    held = roots.claim(cfg.data_root, cfg.exec_root, network_names(cfg).bridge)
    try:
        roots.prepare(cfg.data_root, cfg.exec_root)
        await _serve(cfg, build_services(cfg))
    finally:
        held.release()


def _check_monitoring_flags(cfg: DaemonConfig) -> None:
    if cfg.metrics_addr:
        parse_hostport(cfg.metrics_addr)
    if cfg.metrics_graphite:
        parse_hostport(cfg.metrics_graphite, default_port=2003)
    parse_duration(cfg.metrics_interval)
    if cfg.dashboard_addr:
        host, _ = parse_hostport(cfg.dashboard_addr)
        check_dashboard_flags(host, tlsverify=cfg.tlsverify, token=_dashboard_token(cfg))


def _listen_error(flag: str, addr: str, e: OSError) -> InvalidParameter:
    """dockerd's wording for a listener that cannot bind: "listen tcp ADDR: bind: address already in use"."""
    why = os.strerror(e.errno).lower() if e.errno else str(e)
    return InvalidParameter(f"{flag} {addr}: listen tcp {addr}: bind: {why}")


def _dashboard_token(cfg: DaemonConfig) -> str | None:
    if not cfg.dashboard_token_file:
        return None
    try:
        with open(cfg.dashboard_token_file, encoding="utf-8") as f:
            token = f.read().strip()
    except OSError as e:
        raise InvalidParameter(f"--dashboard-token-file: {e}") from e
    if len(token) < 16:
        raise InvalidParameter("--dashboard-token-file: the token must be at least 16 characters")
    return token


async def _start_dashboard(cfg: DaemonConfig, services: Services, router: Router, extra: list[HttpServer]) -> None:
    """The `--dashboard-addr` listener: the page, the Engine API under /api/ and the metrics."""
    if not cfg.dashboard_addr:
        return
    host, port = parse_hostport(cfg.dashboard_addr)
    token = _dashboard_token(cfg)
    tls = _tls_context(cfg) if cfg.tlsverify else None
    app = DashboardApp(
        EngineApp(router),
        services.metrics.registry,
        token=token,
        secure_cookie=tls is not None,
    )
    server = HttpServer(app)
    extra.append(server)
    try:
        bound = await server.listen_tcp(host, port, ssl_context=tls)
    except OSError as e:
        raise _listen_error("--dashboard-addr", cfg.dashboard_addr, e) from e
    if is_loopback(host):
        app.allowed_hosts = loopback_hosts(host, bound[1])
    if tls is None and token is not None and not is_loopback(host):
        log.warning("the dashboard on %s:%d is plain HTTP: its token crosses the network in clear", *bound)
    log.info("dashboard on %s://%s:%d/", "https" if tls else "http", *bound)


async def _start_monitoring(cfg: DaemonConfig, services: Services, extra: list[HttpServer]) -> None:
    """The `--metrics-addr` listener and the Graphite sink, when asked for."""
    if cfg.metrics_addr:
        host, port = parse_hostport(cfg.metrics_addr)
        metrics_server = HttpServer(MetricsApp(services.metrics.registry))
        extra.append(metrics_server)
        try:
            bound = await metrics_server.listen_tcp(host, port)
        except OSError as e:
            raise _listen_error("--metrics-addr", cfg.metrics_addr, e) from e
        log.info("metrics listen on %s:%d", *bound)
    if cfg.metrics_graphite:
        pusher = GraphitePusher(
            services.metrics.registry,
            parse_hostport(cfg.metrics_graphite, default_port=2003),
            parse_duration(cfg.metrics_interval),
        )
        services.background.append(asyncio.ensure_future(pusher.run()))
        log.info("pushing metrics to graphite at %s every %s", cfg.metrics_graphite, cfg.metrics_interval)


async def _serve(cfg: DaemonConfig, services: Services) -> None:
    await services.start()
    router = build_api(services)
    server = ApiServer(router, on_request=api_metrics_hook(services, router))
    extra: list[HttpServer] = []  # the metrics and dashboard listeners
    tls = _tls_context(cfg)
    stop = asyncio.Event()
    try:
        # before the API: once `_ping` answers, the metrics and the dashboard answer too
        await _start_monitoring(cfg, services, extra)
        await _start_dashboard(cfg, services, router, extra)
        for host in cfg.effective_hosts():
            u = urlparse(host if "://" in host else "tcp://" + host)
            if u.scheme in ("unix", ""):
                await server.listen_unix(u.path, group=_socket_group(cfg))
                log.info("API listen on %s", u.path)
            elif u.scheme in ("tcp", "http", "https"):
                if tls is None:
                    log.warning(_INSECURE_TCP_WARNING)
                elif not cfg.tlsverify:
                    log.warning(_TLS_WITHOUT_VERIFY_WARNING)
                port = u.port or (2376 if tls else 2375)
                await server.listen_tcp(u.hostname or "0.0.0.0", port, ssl_context=tls)
                log.info("API listen on %s:%d", u.hostname or "0.0.0.0", port)
            else:
                raise InvalidParameter(f"invalid host {host!r}: only unix:// and tcp:// are supported")
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info("gorae daemon ready: data root %s", cfg.data_root)
        await stop.wait()
    finally:
        log.info("stopping: containers keep running")
        await server.close()
        for other in extra:
            await other.close()
        await services.shutdown()


def run_event_loop(main: Coroutine[Any, Any, None]) -> None:
    """The daemon's event loop is uvloop (libuv): accepting a connection and moving its bytes cost a third
    of the default loop's, which is most of a short API request (bench/api.py). `GORAE_EVENT_LOOP=asyncio`
    selects the standard loop."""
    if os.environ.get("GORAE_EVENT_LOOP", "uvloop") == "asyncio":
        asyncio.run(main)
    else:
        uvloop.run(main)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "-h" in args or "--help" in args:
        sys.stdout.write(build_parser().format_help())
        return 0
    try:
        cfg = load_config(args)
    except GoraeError as e:
        print(f"gorae daemon: {e.message}", file=sys.stderr)
        return 1
    level = {
        "debug": logging.DEBUG,
        "info": logging.INFO,
        "warn": logging.WARNING,
        "error": logging.ERROR,
        "fatal": logging.CRITICAL,
    }.get(cfg.log_level, logging.INFO)
    logging.basicConfig(
        level=level, format="time=%(asctime)s level=%(levelname)s msg=%(message)s", stream=sys.stderr
    )
    if os.geteuid() != 0:
        print("gorae daemon: must be run as root", file=sys.stderr)
        return 1
    try:
        if cfg.pidfile:
            _write_pidfile(cfg.pidfile)
        _raise_fd_limit()
        malloc.tune()
        run_event_loop(serve(cfg))
    except GoraeError as e:
        log.error("%s", e.message)
        return 1
    finally:
        if cfg.pidfile:
            try:
                os.unlink(cfg.pidfile)
            except OSError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
