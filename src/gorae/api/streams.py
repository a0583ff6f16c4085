"""Bridges between the event loop and worker threads for streamed bodies.

Tar and hashing work runs in threads (it blocks); request bodies and responses are async. These two
adapters carry bytes across with bounded queues, so a slow side applies back-pressure and memory stays flat.
Only the worker thread ever blocks on a queue: the loop's side never parks a pool thread on one (a pool
thread waiting for a worker that is itself queued behind such waiters deadlocked the daemon's whole
thread pool once a few copies overlapped); it waits on an asyncio.Event the thread sets through the loop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import queue
import threading
from collections.abc import AsyncIterator


class AsyncToSyncReader:
    """A file-like `read(n)` for a worker thread, fed from an async chunk iterator by `pump()` on the loop."""

    def __init__(
        self, chunks: AsyncIterator[bytes], loop: asyncio.AbstractEventLoop, depth: int = 16
    ) -> None:
        self._chunks = chunks
        self._loop = loop
        self._q: queue.Queue[bytes | None | BaseException] = queue.Queue(maxsize=depth)
        self._parts: collections.deque[bytes | memoryview] = collections.deque()  # read, not handed out
        self._size = 0  # bytes in _parts
        self._eof = False
        self._space = asyncio.Event()  # set (through the loop) by the reader thread after each get

    async def _put(self, item: bytes | None) -> None:
        while True:
            self._space.clear()
            try:
                self._q.put_nowait(item)
                return
            except queue.Full:
                await self._space.wait()

    def _took(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting any more
            self._loop.call_soon_threadsafe(self._space.set)

    async def pump(self) -> None:
        try:
            async for chunk in self._chunks:
                if chunk:
                    await self._put(chunk)
            await self._put(None)
        except asyncio.CancelledError:
            self._force_put(ConnectionAbortedError("request body stream cancelled"))
            raise
        except BaseException as e:  # a broken client connection reaches the reader as an error
            self._force_put(e)

    def _force_put(self, item: bytes | None | BaseException) -> None:
        while True:
            try:
                self._q.put_nowait(item)
                return
            except queue.Full:
                try:
                    self._q.get_nowait()
                except queue.Empty:
                    pass

    def read(self, n: int = -1) -> bytes:
        """Up to `n` bytes (all the rest when n < 0), fewer only at the end of the body. The queued chunks
        are joined once (a chunk split by `n` keeps its tail as a view): each byte is copied once."""
        while not self._eof and (n < 0 or self._size < n):
            item = self._q.get()
            self._took()
            if item is None:
                self._eof = True
            elif isinstance(item, BaseException):
                self._eof = True
                raise OSError(f"reading request body: {item}")
            else:
                self._parts.append(item)
                self._size += len(item)
        if n == 0:
            return b""
        if n < 0 or n >= self._size:
            parts, self._parts, self._size = self._parts, collections.deque(), 0
            return parts[0] if len(parts) == 1 and isinstance(parts[0], bytes) else b"".join(parts)
        out: list[bytes | memoryview] = []
        need = n
        while need:
            part = self._parts[0]
            if len(part) <= need:
                out.append(self._parts.popleft())
                need -= len(part)
            else:
                view = memoryview(part)
                out.append(view[:need])
                self._parts[0] = view[need:]
                need = 0
        self._size -= n
        return out[0] if len(out) == 1 and isinstance(out[0], bytes) else b"".join(out)

    def readable(self) -> bool:
        return True


class SyncToAsyncWriter:
    """A file-like `write()` for a worker thread whose bytes come out of `chunks()` on the loop."""

    def __init__(self, depth: int = 16, chunk_size: int = 256 * 1024) -> None:
        self._q: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._buf = bytearray()
        self._chunk = chunk_size
        self._closed = threading.Event()
        self._cancelled = False
        self._loop: asyncio.AbstractEventLoop | None = None  # the consumer's, known once `chunks()` runs
        self._ready = asyncio.Event()  # set (through the loop) after each put

    def write(self, data: bytes) -> int:
        if self._cancelled:
            raise BrokenPipeError("client went away")
        self._buf += data
        if len(self._buf) >= self._chunk:
            self._flush()
        return len(data)

    def _put(self, item: bytes | None) -> None:
        while True:  # blocks while the queue is full; a consumer that went away ends the wait
            try:
                self._q.put(item, timeout=0.1)
                break
            except queue.Full:
                if self._cancelled:
                    return
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting any more
                loop.call_soon_threadsafe(self._ready.set)

    def _flush(self) -> None:
        if self._buf:
            self._put(bytes(self._buf))
            self._buf.clear()

    def flush(self) -> None:
        pass

    def writable(self) -> bool:
        return True

    def close(self) -> None:
        if not self._closed.is_set():
            self._closed.set()
            if not self._cancelled:
                self._flush()
            self._put(None)

    async def chunks(self) -> AsyncIterator[bytes]:
        self._loop = asyncio.get_running_loop()
        try:
            while True:
                self._ready.clear()
                try:
                    item = self._q.get_nowait()
                except queue.Empty:
                    await self._ready.wait()  # a put after the clear above sets it
                    continue
                if item is None:
                    return
                yield item
        finally:
            self._cancelled = True
            while not self._closed.is_set():  # unblock a writer stuck on a full queue
                try:
                    self._q.get_nowait()
                except queue.Empty:
                    await asyncio.sleep(0.01)
