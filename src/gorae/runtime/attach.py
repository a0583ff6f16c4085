"""Client side of conmon's attach socket (SOCK_SEQPACKET) for asyncio.

Owns the framing: each packet from conmon is one byte of stream id (2 stdout, 3 stderr) followed by
data; input is raw bytes; half-closing our write side makes conmon close the container's stdin
(unless it was started with --leave-stdin-open). Connects through an O_PATH descriptor of the
socket's directory so socket paths longer than sun_path's 108 bytes work. Never spawns processes.
"""

from __future__ import annotations

import asyncio
import os
import socket

from gorae.errors import NotFound

STDOUT = 1
STDERR = 2
_CONMON_TO_DOCKER = {2: STDOUT, 3: STDERR}
PACKET_MAX = 65536


def connect_seqpacket(path: str) -> socket.socket:
    """A connected, non-blocking SOCK_SEQPACKET socket to `path` (any length)."""
    dirfd = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_CLOEXEC)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        sock.connect(f"/proc/self/fd/{dirfd}/{os.path.basename(path)}")
    except (FileNotFoundError, ConnectionRefusedError) as e:
        sock.close()
        raise NotFound(f"attach socket {path} is not available: {e.strerror}") from e
    except BaseException:
        sock.close()
        raise
    finally:
        os.close(dirfd)
    sock.setblocking(False)
    return sock


class Attachment:
    """One attach session: `read()` output packets, `write()` input, `close_stdin()`, `close()`."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._closed = False

    @classmethod
    def connect(cls, path: str) -> Attachment:
        return cls(connect_seqpacket(path))

    async def read(self) -> tuple[int, bytes] | None:
        """Next output chunk as (1=stdout | 2=stderr, data), or None at end of output."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                pkt = await loop.sock_recv(self.sock, PACKET_MAX)
            except (ConnectionResetError, OSError):
                return None
            if not pkt:
                return None
            stream = _CONMON_TO_DOCKER.get(pkt[0])
            if stream is None or len(pkt) == 1:
                continue
            return stream, pkt[1:]

    async def write(self, data: bytes) -> None:
        """Send input to the container's stdin (only meaningful when it was created with stdin)."""
        loop = asyncio.get_running_loop()
        view = memoryview(data)
        while view:
            chunk = view[: PACKET_MAX - 1]
            await loop.sock_sendall(self.sock, chunk)
            view = view[len(chunk) :]

    def close_stdin(self) -> None:
        """Half-close: conmon sees EOF and closes the container's stdin (unless --leave-stdin-open)."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.sock.close()

    async def __aenter__(self) -> Attachment:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
