"""`DirectBody`: a request body read straight into buffers the server owns, past asyncio's StreamReader.

While `connection.Connection` reads a body past h11, it switches its transport to this BufferedProtocol: the
kernel copies the bytes into a buffer of ours (the loop's `recv_into`) and the body's framing is undone on
the spot (a Content-Length count, or `chunked.ChunkedDecoder`), leaving the payload as views of those
buffers. Through StreamReader every byte was copied three more times (uvloop's fresh bytes object,
StreamReader's bytearray, the bytes `read()` cuts from it) and once more when the pieces were joined; for a
50 MiB build context that was about half of the daemon's CPU per fully cached build.

A buffer is never written again once a view of it was handed out (a new one is taken when little room is
left), so the views stay valid for as long as anyone keeps them (the builder keeps the context as these
views). The protocol it stands in for (the connection's StreamReaderProtocol) is told of everything that
matters to it meanwhile: write flow control and the loss of the connection at once, an EOF when it is put
back (`restore`).
"""

from __future__ import annotations

import asyncio
from typing import cast

from gorae.httpserver.chunked import ChunkedDecoder, ChunkedError

BUFFER_SIZE = 1 << 20  # each buffer the transport reads into (one read(2) may fill up to what is left)
MIN_ROOM = 64 << 10  # a buffer with less room left than this is retired (its views stay valid)


class DirectBody(asyncio.BufferedProtocol):
    """Reads one request body (the rest of it) for `connection.Connection._read_body`: `install`, wait for
    `wait(n)` (at least `n` payload bytes, the end of the body, an error or the end of the connection), take
    `parts`, and `restore` the connection's own protocol before anything else reads the transport.

    `left` is the Content-Length still to come (when `decoder` is None); `high` the payload held unread at
    which reading pauses (the handler is slower than the client)."""

    def __init__(
        self, transport: asyncio.Transport, *, left: int, decoder: ChunkedDecoder | None, high: int
    ) -> None:
        self.transport = transport
        self.inner = cast(asyncio.Protocol, transport.get_protocol())
        self.left = left
        self.decoder = decoder
        self.high = high
        self.parts: list[memoryview] = []  # payload received and not yet taken
        self.size = 0  # bytes in `parts`
        self.leftover = bytearray()  # what followed the body (a pipelined request)
        self.done = False  # the whole body arrived
        self.error: str | None = None  # its framing was bad (nothing more is read)
        self.eof = False  # the client half-closed
        self.lost = False  # the connection is gone
        self._buf = bytearray()
        self._filled = 0
        self._want = 0
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._installed = False

    # -- driving it ------------------------------------------------------------------------------

    def install(self) -> None:
        self.transport.set_protocol(self)
        self._installed = True

    def restore(self) -> None:
        """Give the transport back to the connection's protocol (reading resumed if this paused it; an
        EOF seen meanwhile passed on)."""
        if not self._installed:
            return
        self._installed = False
        if self.lost:
            return  # the inner protocol was told at once (connection_lost)
        if self._paused:
            self._paused = False
            self.transport.resume_reading()
        self.transport.set_protocol(self.inner)
        if self.eof:
            self.inner.eof_received()

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Payload framing undone on `data` (bytes that came before this was installed, or a read)."""
        if self.error is not None or not data:
            return
        view = memoryview(data).cast("B")
        if self.done:
            self.leftover += view
            return
        if self.decoder is None:
            take = min(self.left, len(view))
            if take:
                self.parts.append(view[:take])
                self.size += take
                self.left -= take
            if not self.left:
                self.done = True
                self.leftover += view[take:]
            return
        try:
            views = self.decoder.feed(view)
        except ChunkedError as e:
            self.error = f"request body: {e}"
            return
        for v in views:
            self.parts.append(v)
            self.size += len(v)
        if self.decoder.done:
            self.done = True
            self.leftover += self.decoder.leftover

    def take(self) -> list[memoryview]:
        parts, self.parts, self.size = self.parts, [], 0
        return parts

    def finished(self) -> bool:
        return self.done or self.error is not None or self.eof or self.lost

    async def wait(self, want: int) -> None:
        """Until `want` payload bytes are held, or the body (or the connection) ended."""
        self._want = want
        if self._paused and self.size < self.high and not self.finished():
            self._paused = False
            self.transport.resume_reading()
        while self.size < want and not self.finished():
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # -- asyncio.BufferedProtocol ------------------------------------------------------------------

    def get_buffer(self, sizehint: int) -> memoryview:
        if len(self._buf) - self._filled < MIN_ROOM:
            self._buf = bytearray(max(BUFFER_SIZE, sizehint))
            self._filled = 0
        return memoryview(self._buf)[self._filled :]

    def buffer_updated(self, nbytes: int) -> None:
        start = self._filled
        self._filled += nbytes
        self.feed(memoryview(self._buf)[start : start + nbytes])
        if self.size >= self._want or self.finished():
            self._wake()
        # hold off the client while the handler catches up, and read nothing past the body meanwhile
        if (self.size >= self.high or self.finished()) and not self._paused and not self.lost:
            self._paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return True  # keep the transport open: the answer still goes out (as StreamReaderProtocol does)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._wake()
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()
