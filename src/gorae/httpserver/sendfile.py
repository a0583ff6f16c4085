"""Sending a file's bytes to a client: os.sendfile (zero copy) on plain sockets, large reads over TLS.

Owns `send_file`. The transport's buffer is emptied first (its high-water mark set to 0 for the duration, so
`drain` returns only once everything written before is on the socket); then a worker thread runs sendfile
on a duplicate of the socket's fd, waiting with poll() when the socket is full, so the event loop never
blocks and the fd stays valid even if the transport closes it meanwhile. A client that takes no data for
`STALL_TIMEOUT` seconds, or hangs up, ends the send with ConnectionError; cancelling the send (the server
shutting down) shuts the socket down so the worker ends at once. Over TLS (no raw socket to send
to) the file is read in `TLS_CHUNK` pieces off the loop and written through the transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import select
import socket
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO

STALL_TIMEOUT = 120.0
TLS_CHUNK = 1024 * 1024
_SENDFILE_MAX = 1 << 30

_pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="sendfile")


def _sendfile_blocking(sock_fd: int, file_fd: int, offset: int, count: int) -> None:
    poller = select.poll()
    poller.register(sock_fd, select.POLLOUT)
    while count > 0:
        try:
            sent = os.sendfile(sock_fd, file_fd, offset, min(count, _SENDFILE_MAX))
        except BlockingIOError:
            events = poller.poll(STALL_TIMEOUT * 1000)
            if not events:
                raise ConnectionError(errno.ETIMEDOUT, "client takes no data") from None
            if any(ev & (select.POLLERR | select.POLLHUP | select.POLLNVAL) for _, ev in events):
                raise ConnectionError(errno.EPIPE, "client went away") from None
            continue
        except InterruptedError:
            continue
        if sent == 0:
            raise ConnectionError(errno.EPIPE, "file shorter than announced or client gone")
        offset += sent
        count -= sent


async def send_file(
    transport: Any, drain: Callable[[], Awaitable[None]], file: BinaryIO, offset: int, count: int
) -> None:
    """Write `count` bytes of `file` from `offset` to the connection under `transport`."""
    loop = asyncio.get_running_loop()
    sock = transport.get_extra_info("socket")
    if sock is None or transport.get_extra_info("sslcontext") is not None:
        await _copy(loop, transport, drain, file, offset, count)
        return
    low, high = transport.get_write_buffer_limits()
    transport.set_write_buffer_limits(high=0, low=0)
    try:
        await drain()
        if transport.is_closing():
            raise ConnectionError(errno.EPIPE, "client went away")
        # a duplicate of the socket: valid in the worker even if the transport closes its own fd meanwhile
        dup = socket.socket(fileno=os.dup(sock.fileno()))
        job = loop.run_in_executor(_pool, _sendfile_blocking, dup.fileno(), file.fileno(), offset, count)
        try:
            await asyncio.shield(job)
        except asyncio.CancelledError:
            # shutdown (the server closing): wake the worker out of poll/sendfile before the fd goes
            with contextlib.suppress(OSError):
                dup.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(job), STALL_TIMEOUT)
            raise
        finally:
            if job.done():
                dup.close()
            else:  # still running (never past the stall timeout): close once it ends
                job.add_done_callback(lambda _: dup.close())
    finally:
        if not transport.is_closing():
            transport.set_write_buffer_limits(high=high, low=low)


def _read_at(file: BinaryIO, offset: int, n: int) -> bytes:
    return os.pread(file.fileno(), n, offset)


async def _copy(
    loop: asyncio.AbstractEventLoop,
    transport: Any,
    drain: Callable[[], Awaitable[None]],
    file: BinaryIO,
    offset: int,
    count: int,
) -> None:
    while count > 0:
        data = await loop.run_in_executor(_pool, _read_at, file, offset, min(count, TLS_CHUNK))
        if not data:
            raise ConnectionError(errno.EPIPE, "file shorter than announced")
        if transport.is_closing():
            raise ConnectionError(errno.EPIPE, "client went away")
        transport.write(data)
        offset += len(data)
        count -= len(data)
        await drain()
