"""Request and response objects of the HTTP server, independent of the wire.

Owns `Request` (query helpers with docker's boolean/filters conventions, body access with a size cap,
hijacking), the response types handlers return (`Response`, `StreamResponse`, `FileResponse`, and the
`json_response`, `empty_response`, `raw_response`, `json_stream` helpers) and `Hijacked`, the raw two-way
byte stream of an attach/exec connection. `gorae.httpserver.server` puts them on the wire; an application
(the Engine API, the registry) decides routes, error bodies and the headers on every response.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

from gorae.errors import InvalidParameter, PayloadTooLarge
from gorae.filters import Filters

RAW_STREAM = "application/vnd.docker.raw-stream"
MULTIPLEXED_STREAM = "application/vnd.docker.multiplexed-stream"

_FALSE_WORDS = frozenset({"", "0", "no", "false", "none"})

MAX_BODY = 16 * 1024 * 1024
"""The default largest request body read whole (a JSON document); uploads are streamed and not bounded by it.
An application may lower or raise it per request (`Request.max_body`)."""
MAX_DISCARD = 16 * MAX_BODY  # past this much the connection is closed instead


def _no_constant(name: str) -> Any:
    raise ValueError(f"invalid character '{name[0]}' looking for beginning of value")


def _deepest_opener(data: bytes) -> str:
    """The bracket that took a JSON document past the decoder's depth (strings skipped)."""
    depth, limit, in_string, escaped = 0, 900, False, False
    for byte in data:
        c = chr(byte)
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
            if depth > limit:
                return c
        elif c in "]}":
            depth -= 1
    return "["


class BodySource(Protocol):
    """How a `Request` pulls its body from the connection (implemented by the server)."""

    async def next_chunk(self) -> bytes:
        """The next piece of the request body; b"" once the body is complete."""
        ...


class PieceSource(Protocol):
    """A BodySource that can also hand the body over without joining it (`Request.stream_pieces`)."""

    async def next_pieces(self) -> list[bytes | memoryview]:
        """The next pieces of the request body, as received (views: no copy); [] once it is complete."""
        ...


class HijackSource(Protocol):
    """How a `Request` takes over its connection (implemented by the server)."""

    async def hijack(
        self, request: Request, content_type: str, upgrade: list[tuple[bytes, bytes]] | None = None
    ) -> Hijacked: ...


class _NoBody:
    async def next_chunk(self) -> bytes:
        return b""


@dataclass(eq=False)
class Request:
    """One API request as a handler sees it. Header names are lowercase."""

    method: str
    path: str
    query: dict[str, list[str]] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    version: str = ""  # the API version the client asked for (the Engine API's /v1.NN prefix); "" if none
    raw_target: str = ""
    max_body: int = MAX_BODY
    _source: BodySource = field(default_factory=_NoBody, repr=False)
    _hijacker: HijackSource | None = field(default=None, repr=False)
    _body_started: bool = field(default=False, repr=False)
    _body_cache: bytes | None = field(default=None, repr=False)
    hijacked: Hijacked | None = field(default=None, repr=False)

    # -- query parameters ----------------------------------------------------------------------

    def q(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter `name`, or `default` when absent."""
        values = self.query.get(name)
        return values[0] if values else default

    def qall(self, name: str) -> list[str]:
        """Every value of a repeated query parameter."""
        return list(self.query.get(name, []))

    def qbool(self, name: str, default: bool = False) -> bool:
        """Docker's boolean: absent -> default; "", 0, no, false, none (any case) -> False; else True."""
        value = self.q(name)
        if value is None:
            return default
        return value.strip().lower() not in _FALSE_WORDS

    def qint(self, name: str, default: int | None = None) -> int | None:
        """An integer parameter; absent or empty -> default; not a number -> InvalidParameter."""
        value = self.q(name)
        if value is None or value.strip() == "":
            return default
        try:
            return int(value.strip())
        except ValueError:
            raise InvalidParameter(f"invalid value for {name}: {value!r}: not an integer") from None

    def qjson(self, name: str, default: Any = None) -> Any:
        """A JSON-encoded parameter; absent or empty -> default; bad JSON -> InvalidParameter."""
        value = self.q(name)
        if value is None or value.strip() == "":
            return default
        try:
            return json.loads(value)
        except ValueError as e:
            raise InvalidParameter(f"invalid JSON in query parameter {name}: {e}") from None

    def qfilters(self, name: str = "filters") -> Filters:
        """`filters` parsed (either of docker's encodings); bad JSON → InvalidParameter."""
        return Filters.parse(self.q(name))

    # -- body ----------------------------------------------------------------------------------

    async def stream(self) -> AsyncIterator[bytes]:
        """The request body chunk by chunk, as it arrives (chunked or content-length)."""
        if self._body_cache is not None:
            if self._body_cache:
                yield self._body_cache
            return
        if self._body_started:
            raise RuntimeError("request body already consumed")
        self._body_started = True
        while True:
            chunk = await self._source.next_chunk()
            if not chunk:
                return
            yield chunk

    async def stream_pieces(self) -> AsyncIterator[list[bytes | memoryview]]:
        """The request body as `stream` gives it, but each batch (~1 MiB) as the pieces it arrived in (views
        of the server's read buffers where it can: no byte is copied on the way), for a handler that keeps
        or hashes a large body and never needs it in one piece."""
        pieces: Callable[[], Awaitable[list[bytes | memoryview]]] | None = getattr(
            self._source, "next_pieces", None
        )
        if pieces is None or self._body_cache is not None:
            async for chunk in self.stream():
                yield [chunk]
            return
        if self._body_started:
            raise RuntimeError("request body already consumed")
        self._body_started = True
        while batch := await pieces():
            yield batch

    async def body(self) -> bytes:
        """The whole request body (read once, then cached); one larger than `max_body` is refused (413) —
        routes that take uploads (image load/import, archive PUT, blob uploads) read `stream()` instead."""
        if self._body_cache is None:
            parts: list[bytes] = []
            size = 0
            limit = self.max_body
            async for chunk in self.stream():
                size += len(chunk)
                if size > limit:
                    parts.clear()  # read on without keeping it, so the client gets the answer
                    if size > max(MAX_DISCARD, limit):
                        break
                else:
                    parts.append(chunk)
            if size > limit:
                raise PayloadTooLarge(
                    f"request body too large: the limit is {limit // (1024 * 1024)} MiB"
                    if limit >= 1024 * 1024
                    else f"request body too large: the limit is {limit} bytes"
                )
            self._body_cache = b"".join(parts)
        return self._body_cache

    async def json(self) -> Any:
        """The body parsed as JSON; an empty body is None; bad JSON (NaN and Infinity included, as in
        Go) or nesting deeper than Python can decode -> InvalidParameter."""
        data = await self.body()
        if not data.strip():
            return None
        try:
            return json.loads(data, parse_constant=_no_constant)
        except RecursionError:
            raise InvalidParameter(
                f"invalid character '{_deepest_opener(data)}' exceeded max depth"
            ) from None
        except (ValueError, UnicodeDecodeError) as e:
            raise InvalidParameter(f"invalid JSON: {e}") from None

    # -- hijacking -----------------------------------------------------------------------------

    @property
    def wants_upgrade(self) -> bool:
        """The client asked for `Upgrade: tcp` (answer 101) rather than a plain 200 hijack."""
        return "upgrade" in self.headers

    async def hijack(
        self, content_type: str = RAW_STREAM, upgrade: list[tuple[bytes, bytes]] | None = None
    ) -> Hijacked:
        """Answer 101 UPGRADED (with Upgrade) or 200 OK (without), then hand over the raw stream.

        With `upgrade` (e.g. a websocket handshake) the answer is 101 Switching Protocols carrying
        exactly those headers.

        The request body is drained first; bytes the client sent after it are kept for `read`.
        After this the handler's return value is ignored and the connection closes when it returns.
        """
        if self._hijacker is None:
            raise RuntimeError("this request cannot be hijacked")
        if self.hijacked is not None:
            raise RuntimeError("request already hijacked")
        self.hijacked = await self._hijacker.hijack(self, content_type, upgrade)
        return self.hijacked


# -- responses ---------------------------------------------------------------------------------


@dataclass(eq=False)
class Response:
    """A complete response: status, extra headers and a body sent with Content-Length.

    `content_length` announces a length without sending a body: the answer to a HEAD request for something
    whose GET would send that many bytes (a registry blob). It is ignored when a body is given.
    """

    status: int = 200
    body: bytes = b""
    content_type: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_length: int | None = None

    def body_length(self) -> int:
        """The Content-Length this response announces."""
        if self.content_length is not None and not self.body:
            return self.content_length
        return len(self.body)


@dataclass(eq=False)
class FileResponse(Response):
    """`length` bytes of an open file from `offset`, sent with Content-Length: by os.sendfile (zero copy)
    on a plain TCP or unix connection, read in large pieces off the event loop over TLS.

    The server closes `file` when the response is done (or the client went away)."""

    file: BinaryIO | None = None
    offset: int = 0
    length: int = 0

    def __init__(
        self,
        file: BinaryIO,
        offset: int,
        length: int,
        content_type: str = "application/octet-stream",
        status: int = 200,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(status=status, body=b"", content_type=content_type, headers=list(headers or []))
        self.file = file
        self.offset = offset
        self.length = length

    def body_length(self) -> int:
        return self.length


@dataclass(eq=False)
class StreamResponse(Response):
    """A chunked response: headers go out at once, then each item of `chunks` as one flushed chunk.

    `chunks` is an async iterable of bytes; it is closed (aclose) if the client goes away. With
    `content_length` set the body is sent with that Content-Length instead of chunked (the chunks must add
    up to exactly that many bytes).
    """

    chunks: AsyncIterable[bytes] | None = None

    def __init__(
        self,
        chunks: AsyncIterable[bytes],
        content_type: str = "application/json",
        status: int = 200,
        headers: list[tuple[str, str]] | None = None,
        content_length: int | None = None,
    ) -> None:
        super().__init__(
            status=status,
            body=b"",
            content_type=content_type,
            headers=list(headers or []),
            content_length=content_length,
        )
        self.chunks = chunks

    def body_length(self) -> int:
        return self.content_length or 0


def json_bytes(obj: Any) -> bytes:
    """JSON as docker's encoder writes it: compact, newline-terminated."""
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def json_response(obj: Any, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(
        status=status, body=json_bytes(obj), content_type="application/json", headers=list(headers or [])
    )


def empty_response(status: int = 204, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status=status, headers=list(headers or []))


empty = empty_response


def text_response(text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8") -> Response:
    return Response(status=status, body=text.encode(), content_type=content_type)


def raw_response(
    data: bytes | AsyncIterable[bytes],
    content_type: str = "application/octet-stream",
    headers: list[tuple[str, str]] | None = None,
    status: int = 200,
) -> Response:
    """Raw bytes (Content-Length) or an async iterable of bytes (chunked), e.g. a tar download."""
    if isinstance(data, bytes | bytearray | memoryview):
        return Response(
            status=status, body=bytes(data), content_type=content_type, headers=list(headers or [])
        )
    return StreamResponse(data, content_type=content_type, status=status, headers=headers)


def json_stream(
    objects: AsyncIterable[Any], status: int = 200, headers: list[tuple[str, str]] | None = None
) -> StreamResponse:
    """A JSON progress/event stream: each object one newline-terminated chunk."""

    async def encode() -> AsyncIterator[bytes]:
        async for obj in objects:
            yield json_bytes(obj)

    return StreamResponse(encode(), content_type="application/json", status=status, headers=headers)


Handler = Callable[[Request], Awaitable[Response | None]]


# -- hijacked streams --------------------------------------------------------------------------


class RawTransport(Protocol):
    """The connection under a hijacked stream (implemented by the server)."""

    async def recv(self, n: int) -> bytes: ...
    async def send(self, data: bytes) -> None: ...
    async def shutdown_write(self) -> None: ...
    async def close(self) -> None: ...


class Hijacked:
    """Raw bytes both ways after 101 UPGRADED / 200 OK on attach and exec start.

    `read` returns b"" at the client's EOF, including a half-close (shutdown(SHUT_WR)); the
    server can keep writing until `close_write` or `close`.
    """

    def __init__(self, transport: RawTransport, pending: bytes, content_type: str, upgraded: bool) -> None:
        self._transport = transport
        self._pending = pending
        self.content_type = content_type
        self.upgraded = upgraded
        self.closed = False

    async def read(self, n: int = 65536) -> bytes:
        if n <= 0:
            return b""
        if self._pending:
            data, self._pending = self._pending[:n], self._pending[n:]
            return data
        return await self._transport.recv(n)

    async def write(self, data: bytes) -> None:
        if data:
            await self._transport.send(data)

    async def close_write(self) -> None:
        """Half-close: the client sees EOF, and can still send."""
        await self._transport.shutdown_write()

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            await self._transport.close()
