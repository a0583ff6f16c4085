"""Container attach over a websocket (`GET /containers/{id}/attach/ws`), as dockerd serves it.

Owns the server side of the RFC 6455 handshake (`handshake_headers`: checks `Upgrade: websocket`,
`Connection: upgrade`, `Sec-WebSocket-Key`/`-Version`, answers `Sec-WebSocket-Accept`), the
`WebSocketStream` that turns a hijacked connection into the byte stream `attach_stream.pump` expects
(client messages are stdin bytes; container output goes out as one binary message per chunk, raw — no
8-byte multiplex headers, tty or not), and `pump_ws`, where a close frame from the client detaches.
Framing is wsproto's (sans-IO); the container side is the caller's `OutputSource`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Event, Message, Ping, TextMessage
from wsproto.utilities import LocalProtocolError, RemoteProtocolError, generate_accept_token

from gorae.api.attach_stream import OutputSource, pump
from gorae.api.http import Hijacked, Request
from gorae.errors import InvalidParameter

WS_VERSION = "13"


def _tokens(value: str | None) -> set[str]:
    return {t.strip().lower() for t in (value or "").split(",") if t.strip()}


def handshake_headers(req: Request) -> list[tuple[bytes, bytes]]:
    """The 101 response headers for a valid websocket upgrade request; InvalidParameter (400) if not."""
    if "websocket" not in _tokens(req.headers.get("upgrade")):
        raise InvalidParameter(
            "websocket: the client is not using the websocket protocol: 'upgrade' token not found"
        )
    if "upgrade" not in _tokens(req.headers.get("connection")):
        raise InvalidParameter(
            "websocket: the client is not using the websocket protocol: 'upgrade' token not found in 'Connection' header"
        )
    key = (req.headers.get("sec-websocket-key") or "").strip()
    if not key:
        raise InvalidParameter("websocket: not a websocket handshake: 'Sec-WebSocket-Key' header is missing")
    if (req.headers.get("sec-websocket-version") or WS_VERSION).strip() != WS_VERSION:
        raise InvalidParameter(
            "websocket: unsupported version: 13 not found in 'Sec-Websocket-Version' header"
        )
    return [
        (b"Upgrade", b"websocket"),
        (b"Connection", b"Upgrade"),
        (b"Sec-WebSocket-Accept", generate_accept_token(key.encode("latin-1"))),
    ]


class WebSocketStream:
    """A `ClientStream` over a hijacked connection that speaks websocket (server side).

    `read` returns the payload of client messages (text or binary) as bytes, answers pings, and
    returns b"" when the connection ends without a close frame (setting `ended`). On a close frame it
    answers the close, sets `closed` and `ended` and then blocks (a detach: stdin is left open).
    """

    def __init__(self, hj: Hijacked) -> None:
        self._hj = hj
        self._ws = Connection(ConnectionType.SERVER)
        self._buf = bytearray()
        self.closed = asyncio.Event()
        self.ended = asyncio.Event()

    async def _send(self, event: Event) -> None:
        data = self._ws.send(event)
        await self._hj.write(data)

    async def read(self, n: int = 65536) -> bytes:
        while not self._buf:
            if self.closed.is_set():
                await asyncio.Event().wait()  # detached: never more input
            raw = await self._hj.read(65536)
            try:
                self._ws.receive_data(raw or None)
                events = list(self._ws.events())
            except RemoteProtocolError:
                self.ended.set()
                return b""
            for ev in events:
                if isinstance(ev, Message):
                    self._buf += ev.data.encode() if isinstance(ev, TextMessage) else ev.data
                elif isinstance(ev, Ping):
                    with contextlib.suppress(LocalProtocolError, OSError):
                        await self._send(ev.response())
                elif isinstance(ev, CloseConnection):
                    if self._ws.state == ConnectionState.REMOTE_CLOSING:
                        with contextlib.suppress(LocalProtocolError, OSError):
                            await self._send(ev.response())
                    self.closed.set()
                    self.ended.set()
            if not raw and not self._buf:
                self.ended.set()
                return b""  # the connection went away without a close frame
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    async def write(self, data: bytes) -> None:
        if not data:
            return
        if self._ws.state != ConnectionState.OPEN:
            raise ConnectionResetError("websocket closed")
        await self._send(BytesMessage(data=data))

    async def close(self, code: int = 1000) -> None:
        """Send our close frame if the connection is still open (the container's output ended)."""
        if self._ws.state == ConnectionState.OPEN:
            with contextlib.suppress(LocalProtocolError, OSError, ConnectionError):
                await self._send(CloseConnection(code=code))


async def pump_ws(
    ws: WebSocketStream,
    source: OutputSource,
    *,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    detach_keys: bytes,
    prefix: AsyncIterator[bytes] | None = None,
) -> str:
    """`pump` with raw output; a close frame from the client ends it as "detached"."""
    task = asyncio.ensure_future(
        pump(
            ws,
            source,
            tty=True,  # raw bytes, no multiplex headers, whatever the container's tty
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            detach_keys=detach_keys,
            prefix=prefix,
        )
    )
    ended = asyncio.ensure_future(ws.ended.wait())
    drain = None if stdin else asyncio.ensure_future(_drain(ws))  # still notice the client's close
    try:
        done, _ = await asyncio.wait({task, ended}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            return task.result()
        return "detached" if ws.closed.is_set() else "gone"
    finally:
        for t in (task, ended, drain):
            if t is None:
                continue
            if not t.done():
                t.cancel()
            with contextlib.suppress(BaseException):
                await t


async def _drain(ws: WebSocketStream) -> None:
    """Read and drop client messages (attach without stdin) until the client goes away."""
    with contextlib.suppress(ConnectionError, OSError):
        while await ws.read():
            pass
