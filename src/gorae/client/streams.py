"""Raw and multiplexed byte streams: the 8-byte stdout/stderr frame demultiplexer and hijacked connections.

Without a tty the daemon frames output as `[stream, 0, 0, 0, size(4, big-endian)]` + payload, stream 0 stdin
(echoed), 1 stdout, 2 stderr (3 is docker's "systemErr"). A hijacked connection is a plain socket after the
HTTP response head: the bytes already buffered are delivered first, then reads go to the socket; writing side
half-closes with shutdown(SHUT_WR) so the container sees EOF on stdin.
"""

from __future__ import annotations

from _socket import SHUT_WR

TYPE_CHECKING = False
if TYPE_CHECKING:
    import _socket
    from collections.abc import Iterable, Iterator

STDIN, STDOUT, STDERR, SYSTEMERR = 0, 1, 2, 3


class Demuxer:
    """Incremental frame parser: feed bytes, get (stream, payload) pairs; partial frames stay buffered."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        self.buf += data
        while len(self.buf) >= 8:
            stream, size = self.buf[0], int.from_bytes(self.buf[4:8], "big")  # >BxxxL, without `struct`
            if len(self.buf) < 8 + size:
                return
            payload = bytes(self.buf[8 : 8 + size])
            del self.buf[: 8 + size]
            yield stream, payload

    @property
    def pending(self) -> int:
        return len(self.buf)


def demux(chunks: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """Demultiplex a whole stream of chunks."""
    d = Demuxer()
    for c in chunks:
        yield from d.feed(c)


def frame(stream: int, payload: bytes) -> bytes:
    """Build one multiplexed frame (used by tests and fakes)."""
    return bytes((stream, 0, 0, 0)) + len(payload).to_bytes(4, "big") + payload


class Hijacked:
    """A connection taken over after `101 UPGRADED` (or `200`): raw bytes both ways."""

    def __init__(self, sock: _socket.socket, early: bytes) -> None:
        self.sock = sock
        self._early = early
        self.write_closed = False

    def fileno(self) -> int:
        return self.sock.fileno()

    def recv(self, n: int = 65536) -> bytes:
        if self._early:
            out, self._early = self._early[:n], self._early[n:]
            return out
        try:
            return self.sock.recv(n)
        except ConnectionResetError:
            return b""

    def has_buffered(self) -> bool:
        return bool(self._early)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close_write(self) -> None:
        """Half-close: the daemon sees EOF on the container's stdin; output keeps flowing."""
        if not self.write_closed:
            self.write_closed = True
            try:
                self.sock.shutdown(SHUT_WR)
            except OSError:
                pass

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __iter__(self) -> Iterator[bytes]:
        while True:
            data = self.recv()
            if not data:
                return
            yield data
