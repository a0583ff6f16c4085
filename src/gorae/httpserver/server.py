"""The HTTP/1.1 server (the Engine API's and the registry's): listeners, and each connection's fast path.

Owns the unix-socket (mode 0660, optional group), plain TCP and TCP+TLS listeners, the set of live
connections (capped: the longest-idle one makes room), header and idle timeouts, graceful shutdown, and the
per-connection protocol. A connection starts on the fast path: a request that arrives whole and simple
(`gorae.httpserver.heads.parse_simple_request`) is answered here without h11 or stream objects, and a plain
response (or a file, by sendfile) is written as the bytes h11 would write. The first request that is not
simple, a response that streams, or a hijack hands the connection (with the bytes already received) to an h11
`gorae.httpserver.connection.Connection` for good. Keep-alive, the application's fixed headers on every
response and the access-log hook are the same on both paths. What to answer is the `Application`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import grp
import logging
import os
import resource
import socket
import ssl
import stat
import time
import types
from collections.abc import Coroutine, Generator
from typing import Any, cast

from gorae.httpserver.connection import (
    HEADER_TIMEOUT,
    IDLE_TIMEOUT,
    MAX_HEADER_BYTES,
    READ_SIZE,
    AccessHook,
    Application,
    ClientGone,
    Connection,
    _close_file,
    dispatch,
    log_access,
    make_request,
)
from gorae.httpserver.heads import SimpleRequest, parse_simple_request
from gorae.httpserver.message import FileResponse, Hijacked, Request, empty_response
from gorae.httpserver.sendfile import send_file

log = logging.getLogger("gorae.httpserver")

__all__ = ["AccessHook", "Application", "ClientGone", "HttpServer"]


class HttpServer:
    """Serves an `Application` on any number of listeners until `close()`."""

    def __init__(
        self,
        app: Application,
        *,
        on_request: AccessHook | None = None,
        max_header_bytes: int = MAX_HEADER_BYTES,
        header_timeout: float = HEADER_TIMEOUT,
        idle_timeout: float = IDLE_TIMEOUT,
        max_connections: int | None = None,
    ) -> None:
        self.app = app
        self.on_request = on_request
        self.max_header_bytes = max_header_bytes
        self.header_timeout = header_timeout
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections if max_connections is not None else default_max_connections()
        self._servers: list[asyncio.Server] = []
        self._unix_paths: list[str] = []
        self._conns: set[_HttpProtocol] = set()
        # fast-path connections between requests, longest idle first (a dict keeps insertion order)
        self._idle: dict[_HttpProtocol, None] = {}
        self._closing = False

    @property
    def closing(self) -> bool:
        return self._closing

    async def listen_unix(self, path: str, *, mode: int = 0o660, group: str | None = None) -> None:
        """Listen on a unix socket; a stale socket file is replaced; `group` applies if it exists."""
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                if _socket_is_live(path):
                    raise OSError(errno.EADDRINUSE, f"another daemon is listening on {path}")
                os.unlink(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)
            # permissions are fixed before listen(): nobody can connect in between
            os.chmod(path, mode)
            if group:
                try:
                    gid = grp.getgrnam(group).gr_gid
                except KeyError:
                    log.debug("group %s does not exist; socket %s keeps its group", group, path)
                else:
                    os.chown(path, -1, gid)
            sock.listen(512)
            sock.setblocking(False)
            loop = asyncio.get_running_loop()
            server = await loop.create_unix_server(lambda: _HttpProtocol(self), sock=sock)
        except BaseException:
            sock.close()
            raise
        self._servers.append(server)
        self._unix_paths.append(path)

    async def listen_tcp(
        self, host: str, port: int, *, ssl_context: ssl.SSLContext | None = None
    ) -> tuple[str, int]:
        """Listen on TCP (TLS when `ssl_context` is given); returns the bound address (port 0 picks one)."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _HttpProtocol(self),
            host,
            port,
            ssl=ssl_context,
            ssl_handshake_timeout=30 if ssl_context else None,
            reuse_address=True,
        )
        self._servers.append(server)
        addr = server.sockets[0].getsockname()
        return str(addr[0]), int(addr[1])

    @property
    def connection_count(self) -> int:
        return len(self._conns)

    def _admit(self, new: _HttpProtocol) -> bool:
        """Make room for a new connection: at the cap the longest-idle connection is closed; when every
        connection is busy the new one is refused. So a flood of idle connections never takes the fds the
        daemon needs, and a new client (a `_ping`) is still served."""
        if len(self._conns) < self.max_connections:
            self._conns.add(new)
            return True
        victim = next(iter(self._idle), None)
        if victim is None:
            return False
        del self._idle[victim]
        self._conns.discard(victim)
        victim.close()
        self._conns.add(new)
        return True

    async def close(self, grace: float = 0.0) -> None:
        """Stop listening, let busy connections finish for up to `grace` seconds, cancel the rest."""
        self._closing = True
        for server in self._servers:
            server.close()
        for path in self._unix_paths:
            with contextlib.suppress(OSError):
                os.unlink(path)
        deadline = time.monotonic() + grace
        while any(c.busy for c in self._conns) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        tasks = []
        for conn in list(self._conns):
            if conn.task is not None:
                conn.task.cancel()
                tasks.append(conn.task)
            else:
                conn.close()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)
        self._servers.clear()
        self._unix_paths.clear()


class _HttpProtocol(asyncio.Protocol):
    """One client connection: simple requests answered here, the rest handed to an h11 `Connection`.

    While a request is being handled, further bytes wait in `pending` (pipelining); at most one task
    runs per connection. Also the request's BodySource and HijackSource on the fast path.
    """

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.pending = bytearray()
        self.task: asyncio.Task[None] | None = None
        self.conn: Connection | None = None  # set once handed to h11, for the rest of the connection
        self.eof = False
        self.lost = False
        self._busy = False
        self._body = b""
        self._read_paused = False
        self._write_paused = False
        self._writable: asyncio.Future[None] | None = None
        self._idle_timer: asyncio.TimerHandle | None = None

    @property
    def busy(self) -> bool:
        return self.conn.busy if self.conn is not None else self._busy

    def _arm_idle_timer(self) -> None:
        """Between requests: closed after the idle timeout, or earlier to make room (HttpServer._admit)."""
        self._idle_timer = asyncio.get_running_loop().call_later(self.server.idle_timeout, self._idle_expired)
        self.server._idle[self] = None

    def _disarm_idle_timer(self) -> None:
        self.server._idle.pop(self, None)
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _idle_expired(self) -> None:
        self._idle_timer = None
        self.server._idle.pop(self, None)
        if self.conn is None and not self._busy and self.task is None and not self.pending:
            self.close()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    # -- asyncio.Protocol (only until the connection is handed to h11) ------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses
        if self.server.closing or not self.server._admit(self):
            transport.close()
            return
        self._arm_idle_timer()

    def data_received(self, data: bytes) -> None:
        self._disarm_idle_timer()
        self.pending += data
        if self.task is None and not self._busy:
            self._start()
        elif len(self.pending) > READ_SIZE and not self._read_paused:
            assert self.transport is not None
            self._read_paused = True  # a client pipelining ahead of us: wait until it is read
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self.eof = True
        if self.task is None:
            return False  # idle: the transport closes
        # answer what was asked before the half-close (over TLS, returning True only earns a warning)
        return self.transport is not None and self.transport.get_extra_info("sslcontext") is None

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_idle_timer()
        self.lost = self.eof = True
        self.server._conns.discard(self)
        self._wake_writer()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_writer()

    def _resume_reading(self) -> None:
        if self._read_paused and self.transport is not None:
            self._read_paused = False
            self.transport.resume_reading()

    def _wake_writer(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    # -- serving -----------------------------------------------------------------------------------

    def _start(self) -> None:
        """Run `_run` at once, as Python 3.12's eager tasks do: most requests finish without waiting,
        and then no task is made at all; one that waits goes on in a task from where it stopped."""
        coro = self._run()
        self._busy = True
        try:
            waiting_on = coro.send(None)
        except StopIteration:
            return
        self.task = asyncio.get_running_loop().create_task(_carry_on(coro, waiting_on))

    async def _run(self) -> None:
        keep = False
        try:
            self._busy = True
            while self.pending and self.conn is None:
                raw = bytes(self.pending)
                self.pending.clear()
                self._resume_reading()
                simple = parse_simple_request(raw)
                if simple is None:
                    self.pending[:0] = raw
                    await self._hand_over().run()
                    return
                keep = await self._serve(simple, raw)
                if not keep or self.server.closing:
                    break
        except asyncio.CancelledError:
            keep = False  # shutdown: end quietly
        except Exception:
            keep = False
            log.exception("connection failed")
        finally:
            self.task = None
            self._busy = False
            if self.conn is not None:
                self.server._conns.discard(self)
            elif not keep or self.eof:
                self.close()
            elif not self.lost and not self.pending:
                self._arm_idle_timer()

    async def _serve(self, simple: SimpleRequest, raw: bytes) -> bool:
        """Answer one simple request; True if the connection can carry another on the fast path."""
        started = time.perf_counter()
        self._body = simple.body
        req = make_request(simple.method, simple.target, simple.headers, source=self, hijacker=self)
        try:
            resp = await dispatch(self.server.app, req)
        except ClientGone:
            return False
        if req.hijacked is not None:
            assert self.conn is not None
            return await self.conn.end_hijack(req, started)
        if resp is None:
            resp = empty_response(204)
        head = self.server.app.heads.simple_response_head(resp)
        if head is None:  # h11 answers (a stream, or headers h11 must judge); the connection is its
            conn = self._hand_over()
            conn.replay(raw)
            await conn.run(conn.respond(req, resp, simple.method, started))
            return False
        if self.lost:
            _close_file(resp)
            log_access(self.server, req, resp.status, started)
            return False
        assert self.transport is not None
        if isinstance(resp, FileResponse):
            return await self._send_file(req, resp, head, simple.method == b"HEAD", started)
        if simple.method == b"HEAD" or resp.status in (204, 304):
            self.transport.write(head)
        else:
            self.transport.write(head + resp.body)
        if self._write_paused and not self.lost:
            self._writable = asyncio.get_running_loop().create_future()
            await self._writable
        log_access(self.server, req, resp.status, started)
        return not self.lost

    async def _send_file(
        self, req: Request, resp: FileResponse, head: bytes, no_body: bool, started: float
    ) -> bool:
        assert self.transport is not None
        try:
            self.transport.write(head)
            if not no_body and resp.length:
                assert resp.file is not None
                await send_file(self.transport, self._drain, resp.file, resp.offset, resp.length)
        except (ConnectionError, OSError):
            self.close()
            return False
        finally:
            _close_file(resp)
            log_access(self.server, req, resp.status, started)
        return not self.lost

    async def _drain(self) -> None:
        if self._write_paused and not self.lost:
            self._writable = asyncio.get_running_loop().create_future()
            await self._writable

    def _hand_over(self) -> Connection:
        """From now on h11 serves this connection; bytes received and not yet read go with it."""
        assert self.transport is not None and self.conn is None
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=READ_SIZE, loop=loop)
        stream_protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        self.transport.set_protocol(stream_protocol)
        stream_protocol.connection_made(self.transport)
        if self._write_paused:
            stream_protocol.pause_writing()
        if self.pending:
            reader.feed_data(bytes(self.pending))
            self.pending.clear()
        if self.lost:
            stream_protocol.connection_lost(None)
        elif self.eof:
            reader.feed_eof()
        self._resume_reading()
        writer = asyncio.StreamWriter(self.transport, stream_protocol, reader, loop)
        self.conn = Connection(self.server, reader, writer)
        return self.conn

    # -- BodySource and HijackSource of a simple request --------------------------------------------

    async def next_chunk(self) -> bytes:
        data, self._body = self._body, b""
        return data

    async def hijack(
        self, request: Request, content_type: str, upgrade: list[tuple[bytes, bytes]] | None = None
    ) -> Hijacked:
        conn = self._hand_over()
        conn.request_read()
        return await conn.hijack(request, content_type, upgrade)


@types.coroutine
def _carry_on(coro: Coroutine[Any, Any, None], waiting_on: Any) -> Generator[Any, Any, None]:
    """Drive `coro`, started outside any task, from the future it waits on: what a Task does with it."""
    while True:
        try:
            sent = yield waiting_on
        except BaseException as e:  # noqa: BLE001  # cancellation thrown in by the task goes to coro
            try:
                waiting_on = coro.throw(e)
            except StopIteration:
                return
        else:
            try:
                waiting_on = coro.send(sent)
            except StopIteration:
                return


def default_max_connections() -> int:
    """Connections the API may hold: the fd limit less a reserve for everything else the daemon opens
    (containers' attach sockets and logs, the database, netlink, subprocess pipes)."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return 1 << 20
    return max(64, soft - max(512, soft // 10))


def _socket_is_live(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1)
    try:
        probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        probe.close()
