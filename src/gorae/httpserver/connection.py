"""One HTTP connection read and written by h11: the general HTTP/1.1 path.

Owns a connection that needs the full protocol: request bodies streamed into handlers (Content-Length
or chunked, 100-continue), pipelined requests, malformed requests (400/431/501 from h11's verdict),
chunked streaming responses that stop when the client hangs up, files sent with sendfile, draining unread
bodies to keep a connection alive, and attach/exec hijacking (101 UPGRADED or 200, then raw bytes, with the
bytes that arrived behind the request kept). Also the request-cycle helpers every connection uses:
`Application` (what an application plugs in: its routing, error bodies and fixed headers), `make_request`,
`dispatch` (the application's handling, its exceptions to error responses) and `log_access`.
Simple requests on a fresh connection never come here (see `gorae.httpserver.server`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from typing import Protocol, cast
from urllib.parse import parse_qs, unquote, urlsplit

import h11

from gorae.httpserver.bodyreader import DirectBody
from gorae.httpserver.chunked import ChunkedDecoder, ChunkedError
from gorae.httpserver.heads import Heads, reason
from gorae.httpserver.message import (
    BodySource,
    FileResponse,
    Hijacked,
    HijackSource,
    Request,
    Response,
    StreamResponse,
    empty_response,
)
from gorae.httpserver.sendfile import send_file

log = logging.getLogger("gorae.httpserver")

AccessHook = Callable[[Request, int, float], None]
"""Called after each request with (request, status, seconds)."""

READ_SIZE = 256 * 1024
MAX_HEADER_BYTES = 1024 * 1024  # X-Registry-Config can be large
DRAIN_LIMIT = 1024 * 1024  # unread request body we still drain to keep a connection alive
# A request body is read past h11 (big reads, `gorae.httpserver.chunked` for chunked framing) and handed to
# the handler in pieces of about this size: per-piece costs (the handler's loop, a thread hand-off) are then
# paid once a MiB, not once per 32 KiB chunk the client wrote.
BODY_BATCH = 1024 * 1024
# A client has this long to send a whole request head once it started one (a slow-header client holds a
# connection and an fd for nothing otherwise), and a connection between requests is closed after
# IDLE_TIMEOUT (clients with pools — docker-py, the Go client — reconnect transparently).
HEADER_TIMEOUT = 60.0
IDLE_TIMEOUT = 300.0


class ClientGone(ConnectionError):
    """The client closed the connection (mid-body, or while we were answering)."""


class BadRequestBody(ClientGone):
    """The request body's framing is malformed: answered 400 (if nothing was sent yet), connection closed."""


class Application(Protocol):
    """What an application (the Engine API, the registry) plugs into the server."""

    heads: Heads
    """Its fixed headers on every response."""

    async def handle(self, req: Request) -> Response | None:
        """Route and answer one request; exceptions become `error_response`s (None: 204 No Content)."""
        ...

    def error_response(self, exc: BaseException, *, context: str = "") -> Response:
        """The response for an exception a handler (or routing) raised."""
        ...

    def bad_request(self, detail: str) -> Response:
        """The response to a request the HTTP layer could not parse."""
        ...


class ServerSide(Protocol):
    """What a connection needs from its server."""

    app: Application
    on_request: AccessHook | None
    max_header_bytes: int
    header_timeout: float
    idle_timeout: float

    @property
    def closing(self) -> bool: ...


def make_request(
    method: bytes,
    raw_target: bytes,
    raw_headers: Iterable[tuple[bytes, bytes]],
    *,
    source: BodySource,
    hijacker: HijackSource,
) -> Request:
    """The handler's view of a request; `raw_headers` have lowercase names."""
    target = raw_target.decode("latin-1")
    if not target.startswith("/") and "://" in target:
        parts = urlsplit(target)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    raw_path, _, qs = target.partition("?")
    headers: dict[str, str] = {}
    for name, value in raw_headers:
        key = name.decode("latin-1")
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return Request(
        method=method.decode("latin-1"),
        path=unquote(raw_path, errors="replace"),
        query=parse_qs(qs, keep_blank_values=True) if qs else {},
        headers=headers,
        raw_target=target,
        _source=source,
        _hijacker=hijacker,
    )


async def dispatch(app: Application, req: Request) -> Response | None:
    """Let the application answer; its exceptions become its error responses."""
    try:
        return await app.handle(req)
    except (ClientGone, asyncio.CancelledError):
        raise
    except Exception as e:
        if req.hijacked is not None:
            if not isinstance(e, ConnectionError):
                log.error("hijacked %s %s failed", req.method, req.path, exc_info=e)
            return None
        return app.error_response(e, context=f"{req.method} {req.path}")


def log_access(server: ServerSide, req: Request, status: int, started: float) -> None:
    hook = server.on_request
    if hook is not None:
        try:
            hook(req, status, time.perf_counter() - started)
        except Exception:
            log.exception("access log hook failed")


class Connection:
    """One client connection: an h11 state machine over an asyncio stream pair."""

    def __init__(
        self, server: ServerSide, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=server.max_header_bytes)
        self.busy = False
        self.eof = False
        self.hijacked = False
        # per request
        self._body_done = asyncio.Event()
        self._peeked: bytes | None = None
        self._declared_length: int | None = 0
        # a body read past h11: bytes of it left (Content-Length) or its decoder (chunked); what came after
        # it (a pipelined request) waits in `_after` for the next cycle's h11
        self._bypass = False
        self._left = 0
        self._chunked: ChunkedDecoder | None = None
        self._after = bytearray()
        self._body_error: str | None = None
        self._direct: DirectBody | None = None  # reads the current body past StreamReader (`_read_direct`)

    # -- reading ---------------------------------------------------------------------------------

    async def _recv(self, n: int = READ_SIZE) -> bytes:
        if self.eof:
            return b""
        try:
            data = await self.reader.read(n)
        except (ConnectionError, ssl.SSLError):
            data = b""
        if not data:
            self.eof = True
        return data

    async def _next_event(self) -> h11.Event | type[h11.PAUSED]:
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                self.h11.receive_data(await self._recv())
            elif event is h11.PAUSED:
                return h11.PAUSED
            else:
                assert isinstance(event, h11.Event)
                return event

    async def _next_request(self) -> h11.Event | type[h11.PAUSED]:
        """The next request head, within the idle timeout (nothing sent yet) and the header timeout (once a
        head has begun); a client that takes longer is disconnected (ClientGone)."""
        loop = asyncio.get_running_loop()
        idle_deadline = loop.time() + self.server.idle_timeout
        head_deadline: float | None = None
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                if event is h11.PAUSED:
                    return h11.PAUSED
                assert isinstance(event, h11.Event)
                return event
            if head_deadline is None and self.h11.trailing_data[0]:
                head_deadline = loop.time() + self.server.header_timeout
            left = (head_deadline if head_deadline is not None else idle_deadline) - loop.time()
            try:
                data = await asyncio.wait_for(self._recv(), max(left, 0.0))
            except TimeoutError:
                raise ClientGone("no request in time") from None
            if head_deadline is None and data:
                head_deadline = loop.time() + self.server.header_timeout
            self.h11.receive_data(data)

    async def next_chunk(self) -> bytes:
        """BodySource for the current request."""
        if self._bypass:
            return await self._read_body()
        if self._peeked is not None:
            data, self._peeked = self._peeked, None
            return data
        while not self._body_done.is_set():
            if self.h11.client_is_waiting_for_100_continue:
                await self._write(self.h11.send(h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")))
            try:
                event = await self._next_event()
            except h11.RemoteProtocolError as e:
                raise ClientGone(f"request body: {e}") from None
            if isinstance(event, h11.Data):
                if event.data:
                    return bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self._body_done.set()
            else:
                raise ClientGone(f"unexpected {event!r} in request body")
        return b""

    async def _read_body(self, batch: int = BODY_BATCH) -> bytes:
        """The next piece of a body read past h11: at least `batch` bytes unless the body ends first."""
        parts = await self._read_body_parts(batch)
        if len(parts) == 1 and isinstance(parts[0], bytes):
            return parts[0]
        return b"".join(parts)

    async def next_pieces(self) -> list[bytes | memoryview]:
        """PieceSource for the current request: the next ~BODY_BATCH bytes of the body as the pieces they
        came in (views of the buffers read into: no copy), [] once it is complete."""
        if self._bypass:
            return await self._read_body_parts(BODY_BATCH)
        chunk = await self.next_chunk()
        return [chunk] if chunk else []

    async def _read_body_parts(self, batch: int) -> list[bytes | memoryview]:
        if self._body_error is not None:
            raise BadRequestBody(self._body_error)
        if self._body_done.is_set():
            return []
        if self.h11.client_is_waiting_for_100_continue:
            await self._write(self.h11.send(h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")))
        if self._direct_ok():
            return await self._read_direct(batch)
        parts: list[bytes | memoryview] = []
        size = 0
        decoder = self._chunked
        while size < batch:
            if self._after:
                data: bytes = bytes(self._after)
                self._after.clear()
            else:
                data = await self._recv(max(batch - size, READ_SIZE))
                if not data:
                    raise ClientGone("peer closed connection without sending complete message body")
            if decoder is None:
                if len(data) >= self._left:
                    view = memoryview(data)
                    parts.append(view[: self._left])
                    self._after += view[self._left :]
                    size += self._left
                    self._left = 0
                    self._body_done.set()
                    break
                parts.append(data)
                size += len(data)
                self._left -= len(data)
            else:
                try:
                    views = decoder.feed(data)
                except ChunkedError as e:
                    self._body_error = f"request body: {e}"
                    raise BadRequestBody(self._body_error) from None
                for view in views:
                    parts.append(view)
                    size += len(view)
                if decoder.done:
                    self._after += decoder.leftover
                    self._body_done.set()
                    break
        return parts

    def _direct_ok(self) -> bool:
        """Whether the body can be read by `DirectBody`: a plain (not TLS) transport whose StreamReader holds
        nothing yet unread (it stays the reader of everything else)."""
        transport = self.writer.transport
        return (
            all(hasattr(transport, m) for m in ("get_protocol", "set_protocol", "pause_reading", "resume_reading"))
            and transport.get_extra_info("sslcontext") is None
            and not transport.is_closing()
            and not self.eof
            and _unread(self.reader) == 0
            and not self.reader.at_eof()
            and self.reader.exception() is None
        )

    async def _read_direct(self, batch: int) -> list[bytes | memoryview]:
        direct = self._direct
        if direct is None:  # one per body: its read buffer is filled on from one batch to the next
            transport = cast(asyncio.Transport, self.writer.transport)  # uvloop's are not registered as one
            direct = DirectBody(transport, left=self._left, decoder=self._chunked, high=4 * batch)
            self._direct = direct
        direct.left = self._left  # (a batch between may have been read through the StreamReader)
        if self._after:
            direct.feed(bytes(self._after))
            self._after.clear()
        if direct.size < batch and not direct.finished():
            direct.install()
            try:
                await direct.wait(batch)
            finally:
                direct.restore()
        self._left = direct.left
        self._after += direct.leftover
        direct.leftover.clear()
        if direct.error is not None:
            self._body_error = direct.error
            raise BadRequestBody(direct.error)
        parts: list[bytes | memoryview] = list(direct.take())
        if direct.done:
            self._body_done.set()
            self._direct = None
        elif direct.eof or direct.lost:
            self.eof = True
            raise ClientGone("peer closed connection without sending complete message body")
        return parts

    def _start_body(self) -> None:
        """Right after a request head with a body: read that body past h11 from here on."""
        self._bypass = True
        self._direct = None
        self._after = bytearray(self.h11.trailing_data[0])
        self._body_error = None
        length = self._declared_length
        if length is None:
            self._chunked = ChunkedDecoder(self.server.max_header_bytes)
        else:
            self._chunked = None
            self._left = length

    def _feed_after(self, data: bytes) -> None:
        """Bytes that arrived after the current request's body (b"": the client's EOF)."""
        if self._bypass:
            if data:
                self._after += data
            else:
                self.eof = True
        else:
            self.h11.receive_data(data)

    def _peek_body(self) -> None:
        """Right after the request head: note an empty body at once (needed to watch for EOF)."""
        try:
            event = self.h11.next_event()
        except h11.RemoteProtocolError:
            return  # reading the body will report it
        if isinstance(event, h11.EndOfMessage):
            self._body_done.set()
        elif isinstance(event, h11.Data):
            self._peeked = bytes(event.data)
        # NEED_DATA: the body is still on its way

    # -- writing ---------------------------------------------------------------------------------

    async def _write(self, data: bytes) -> None:
        if not data:
            return
        try:
            self.writer.write(data)
            await self.writer.drain()
        except (ConnectionError, ssl.SSLError) as e:
            raise ClientGone(str(e)) from None

    # -- the connection loop ---------------------------------------------------------------------

    async def run(self, first: Awaitable[bool] | None = None) -> None:
        """Serve requests until the connection ends; `first` answers one already read (see `replay`)."""
        try:
            if first is not None:
                self.busy = True
                try:
                    keep = await first
                finally:
                    self.busy = False
                if not keep or self.server.closing:
                    return
            while True:
                try:
                    event = await self._next_request()
                except h11.RemoteProtocolError as e:
                    await self._protocol_error(e)
                    return
                if isinstance(event, h11.Request):
                    self.busy = True
                    try:
                        keep = await self._serve(event)
                    finally:
                        self.busy = False
                    if not keep or self.server.closing:
                        return
                elif event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
                    return
                # Data/EndOfMessage outside a request cannot happen: bodies are consumed in _serve
        except ClientGone:
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("connection failed")
        finally:
            self._abort_or_close()

    def _abort_or_close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()

    async def _protocol_error(self, e: h11.RemoteProtocolError) -> None:
        if self.h11.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        resp = self.server.app.bad_request(str(e))
        resp.status = e.error_status_hint if 400 <= e.error_status_hint < 500 else 400
        resp.headers.append(("Connection", "close"))
        with contextlib.suppress(ClientGone, h11.LocalProtocolError):
            await self._send(resp, b"GET")

    async def _serve(self, event: h11.Request) -> bool:
        """Handle one request read by h11; True if the connection can carry another."""
        started = time.perf_counter()
        self._body_done = asyncio.Event()
        self._peeked = None
        self._declared_length = _declared_length(event)
        self._bypass = False
        if self._declared_length != 0 and self.h11.their_state is h11.SEND_BODY:
            self._start_body()
        else:
            self._peek_body()
        req = make_request(event.method, event.target, event.headers, source=self, hijacker=self)
        return await self._answer(req, event.method, started)

    def replay(self, raw: bytes) -> None:
        """Let h11 read a whole request that was read (and handled) without it, so h11 can answer it."""
        self.h11.receive_data(raw)
        while self.h11.their_state is not h11.DONE:
            event = self.h11.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                raise RuntimeError("a simple request did not parse the same in h11")
        self.request_read()

    def request_read(self) -> None:
        """The current request, body included, was read without h11 (before a hijack or `replay`)."""
        self._body_done.set()
        self._peeked = None
        self._declared_length = 0
        self._bypass = False

    async def _answer(self, req: Request, method: bytes, started: float) -> bool:
        resp: Response | None
        try:
            resp = await dispatch(self.server.app, req)
        except BadRequestBody as e:
            if req.hijacked is None and self.h11.our_state is h11.SEND_RESPONSE:
                await self._protocol_error(h11.RemoteProtocolError(str(e), error_status_hint=400))
                log_access(self.server, req, 400, started)
            return False
        except ClientGone:
            return False
        if req.hijacked is not None:
            return await self.end_hijack(req, started)
        if resp is None:
            resp = empty_response(204)
        return await self.respond(req, resp, method, started)

    async def end_hijack(self, req: Request, started: float) -> bool:
        assert req.hijacked is not None
        log_access(self.server, req, 101 if req.hijacked.upgraded else 200, started)
        with contextlib.suppress(Exception):
            await req.hijacked.close()
        return False

    async def respond(self, req: Request, resp: Response, method: bytes, started: float) -> bool:
        status = resp.status
        try:
            await self._send(resp, method, req)
        except ClientGone:
            log_access(self.server, req, status, started)
            return False
        log_access(self.server, req, status, started)
        return await self._finish_cycle()

    # -- responses -------------------------------------------------------------------------------

    def _head(self, resp: Response, *, chunked: bool, body_len: int | None) -> h11.Response:
        headers = self.server.app.heads.response_headers(resp, chunked=chunked, body_len=body_len)
        return h11.Response(status_code=resp.status, headers=headers, reason=reason(resp.status))

    async def _send(self, resp: Response, method: bytes, req: Request | None = None) -> None:
        if not self._body_done.is_set() and (
            self.h11.client_is_waiting_for_100_continue or not self._unread_body_is_small()
        ):
            resp.headers.append(("Connection", "close"))
        no_body = method == b"HEAD" or resp.status in (204, 304) or resp.status < 200
        is_stream = isinstance(resp, StreamResponse)
        try:
            head = self._head(
                resp,
                chunked=is_stream and resp.content_length is None,
                body_len=None if (resp.status in (204, 304) or resp.status < 200) else resp.body_length(),
            )
        except h11.LocalProtocolError as e:
            if is_stream:
                await _aclose(resp.chunks)  # type: ignore[attr-defined]
            _close_file(resp)
            log.error("bad response headers from handler: %s", e)
            resp = self.server.app.error_response(RuntimeError(f"bad response headers: {e}"))
            is_stream = False
            head = self._head(resp, chunked=False, body_len=len(resp.body))
        if isinstance(resp, FileResponse):
            await self._send_file(resp, head, no_body)
            return
        if not is_stream:
            out = self.h11.send(head) or b""
            if resp.body and not no_body:
                out += self.h11.send(h11.Data(data=resp.body)) or b""
            out += self.h11.send(h11.EndOfMessage()) or b""
            await self._write(out)
            return
        chunks = resp.chunks  # type: ignore[attr-defined]
        if no_body:
            await _aclose(chunks)
            await self._write((self.h11.send(head) or b"") + (self.h11.send(h11.EndOfMessage()) or b""))
            return
        await self._write(self.h11.send(head) or b"")
        await self._stream(chunks)

    async def _send_file(self, resp: FileResponse, head: h11.Response, no_body: bool) -> None:
        """The head through h11, the file's bytes beside it (h11's documented sendfile pass-through)."""
        try:
            await self._write(self.h11.send(head) or b"")
            if not no_body and resp.length:
                assert resp.file is not None
                self.h11.send_with_data_passthrough(h11.Data(data=_Placeholder(resp.length)))  # type: ignore[arg-type]
                try:
                    await send_file(
                        self.writer.transport, self.writer.drain, resp.file, resp.offset, resp.length
                    )
                except (ConnectionError, OSError) as e:
                    raise ClientGone(str(e)) from None
            await self._write(self.h11.send(h11.EndOfMessage()) or b"")
        finally:
            _close_file(resp)

    def _unread_body_is_small(self) -> bool:
        """An unread body we may drain after answering: small, or chunked (drained up to DRAIN_LIMIT, as Go's
        server does: closing on unread bytes resets the connection and the client loses the answer)."""
        return self._declared_length is None or self._declared_length <= DRAIN_LIMIT

    async def _stream(self, chunks: AsyncIterable[bytes]) -> None:
        """Send each chunk as it comes; stop (and close the iterator) if the client goes away."""
        pump = asyncio.ensure_future(self._pump(chunks))
        watch = asyncio.ensure_future(self._watch_eof())
        try:
            pending = {pump, watch}
            while pump in pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if watch in done and watch.result():
                    raise ClientGone("client closed the connection during a stream")
            pump.result()
        finally:
            for task in (pump, watch):
                if not task.done():
                    task.cancel()
            await asyncio.gather(pump, watch, return_exceptions=True)

    async def _pump(self, chunks: AsyncIterable[bytes]) -> None:
        it = chunks.__aiter__()
        try:
            async for chunk in it:
                if chunk:
                    await self._write(self.h11.send(h11.Data(data=chunk)) or b"")
        except (ClientGone, asyncio.CancelledError):
            raise
        except Exception as e:
            # headers are gone already: end the stream early (errors in-band are the handler's job)
            log.error("stream failed", exc_info=e)
            raise ClientGone("stream failed") from e
        finally:
            await _aclose(it)
        await self._write(self.h11.send(h11.EndOfMessage()) or b"")

    async def _watch_eof(self) -> bool:
        """True when the client hangs up while a stream is being sent (after its request body)."""
        await self._body_done.wait()
        data = await self._recv()
        if data:  # a pipelined next request: keep it for the next cycle, stop watching
            self._feed_after(data)
            return False
        self._feed_after(b"")
        return True

    async def _finish_cycle(self) -> bool:
        if self.eof or self.h11.our_state is not h11.DONE:
            return False
        if self._bypass:
            return await self._finish_bypassed_cycle()
        drained = 0
        while self.h11.their_state is h11.SEND_BODY:
            try:
                event = await asyncio.wait_for(self._next_event(), 30)
            except (h11.RemoteProtocolError, TimeoutError):
                return False
            if isinstance(event, h11.Data):
                drained += len(event.data)
                if drained > DRAIN_LIMIT:
                    return False
            elif not isinstance(event, h11.EndOfMessage):
                return False
        if self.h11.their_state is not h11.DONE:
            return False
        self.h11.start_next_cycle()
        return True

    async def _finish_bypassed_cycle(self) -> bool:
        """Drain what is left of a body read past h11 (up to DRAIN_LIMIT), then a fresh h11 state machine
        (h11 never saw the body) reads the next request from the bytes that followed it."""
        drained = 0
        while not self._body_done.is_set():
            try:
                drained += len(await asyncio.wait_for(self._read_body(READ_SIZE), 30))
            except (ClientGone, TimeoutError):
                return False
            if drained > DRAIN_LIMIT:
                return False
        if self.eof:
            return False
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=self.server.max_header_bytes)
        if self._after:  # (b"" would tell h11 the client closed)
            self.h11.receive_data(bytes(self._after))
            self._after.clear()
        self._bypass = False
        return True

    # -- hijacking (HijackSource) ----------------------------------------------------------------

    async def hijack(
        self, request: Request, content_type: str, upgrade: list[tuple[bytes, bytes]] | None = None
    ) -> Hijacked:
        while await self.next_chunk():
            pass
        if self._bypass:
            pending, closed = bytes(self._after), self.eof
        else:
            pending, closed = self.h11.trailing_data
        upgraded = upgrade is not None or request.wants_upgrade
        if upgrade is not None:  # another protocol (websocket): 101 with exactly the given headers
            lines = [b"HTTP/1.1 101 Switching Protocols"] + [name + b": " + value for name, value in upgrade]
        elif upgraded:
            lines = [
                b"HTTP/1.1 101 UPGRADED",
                b"Content-Type: " + content_type.encode("latin-1"),
                b"Connection: Upgrade",
                b"Upgrade: tcp",
            ]
        else:
            lines = [b"HTTP/1.1 200 OK", b"Content-Type: " + content_type.encode("latin-1")]
        lines += [name + b": " + value for name, value in self.server.app.heads.base_headers()]
        self.hijacked = True
        await self._write(b"\r\n".join(lines) + b"\r\n\r\n")
        if closed:
            self.eof = True
        return Hijacked(_RawTransport(self), pending, content_type, upgraded)


class _RawTransport:
    """The connection under a Hijacked stream."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def recv(self, n: int) -> bytes:
        return await self._conn._recv(n)

    async def send(self, data: bytes) -> None:
        await self._conn._write(data)

    async def shutdown_write(self) -> None:
        writer = self._conn.writer
        with contextlib.suppress(OSError, RuntimeError):
            await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()

    async def close(self) -> None:
        writer = self._conn.writer
        with contextlib.suppress(Exception):
            await writer.drain()
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 5)


def _declared_length(event: h11.Request) -> int | None:
    """The request body's Content-Length; None when chunked."""
    length: int | None = 0
    for name, value in event.headers:
        if name == b"transfer-encoding":
            return None
        if name == b"content-length":
            length = int(value)
    return length


def _unread(reader: asyncio.StreamReader) -> int:
    """Bytes a StreamReader holds unread (its buffer: no public way to ask without waiting); an unknown
    StreamReader counts as holding some, so the body is then read through it as before."""
    buffer = getattr(reader, "_buffer", None)
    return len(buffer) if isinstance(buffer, bytearray) else 1


class _Placeholder:
    """Stands for a file's bytes in h11's Content-Length accounting; the bytes go by sendfile."""

    def __init__(self, length: int) -> None:
        self._length = length

    def __len__(self) -> int:
        return self._length


def _close_file(resp: Response) -> None:
    if isinstance(resp, FileResponse) and resp.file is not None:
        with contextlib.suppress(OSError):
            resp.file.close()


async def _aclose(it: object) -> None:
    aclose = getattr(it, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()
