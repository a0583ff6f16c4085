"""A forward-only file over a source of byte chunks: what the tar reader of `apply` reads from.

Owns turning "a function that returns the next chunk (b"" at the end)" into the few file methods
`tarfile`'s random-access mode uses (`read`, `tell`, forward `seek`), plus `copy_to(fd, n)`, which writes a
member's body straight from the chunks it arrived in (no copy in Python, one `write` per chunk slice), and
`drain()`. Using `tarfile`'s "r:" mode over this instead of its stream mode ("r|") avoids the stream
mode's buffer, which copies the rest of a 1 MiB buffer at each 512-byte header read (quadratic in the
number of small entries per buffer). Must never seek backwards (the source may be a socket or a pipe
from another thread) nor hold more than one chunk.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable

ChunkSource = Callable[[], bytes]  # the next chunk of the stream; b"" (and from then on only b"") at its end


class ChunkReader:
    """File-like, forward-only, over `next_chunk`. Not thread-safe: one reader."""

    def __init__(self, next_chunk: ChunkSource) -> None:
        self._next = next_chunk
        self._view = memoryview(b"")
        self._pos = 0
        self._eof = False

    def _fill(self) -> bool:
        """Make the current chunk non-empty; False at the end of the stream."""
        while not self._view:
            if self._eof:
                return False
            chunk = self._next()
            if not chunk:
                self._eof = True
                return False
            self._view = memoryview(chunk).cast("B")
        return True

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._pos

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            parts = []
            while self._fill():
                parts.append(bytes(self._view))
                self._pos += len(self._view)
                self._view = memoryview(b"")
            return b"".join(parts)
        if n <= len(self._view):  # the common case: a header inside the current chunk
            out = bytes(self._view[:n])
            self._view = self._view[n:]
            self._pos += n
            return out
        parts = []
        left = n
        while left and self._fill():
            take = self._view[:left]
            parts.append(bytes(take))
            self._view = self._view[len(take) :]
            left -= len(take)
        data = b"".join(parts)
        self._pos += len(data)
        return data

    def peek(self, n: int) -> bytes:
        """The next `n` bytes (fewer only at the end of the stream) without consuming them."""
        while len(self._view) < n and not self._eof:
            chunk = self._next()
            if not chunk:
                self._eof = True
                break
            self._view = memoryview(bytes(self._view) + bytes(chunk))  # rare: a chunk boundary inside
        return bytes(self._view[:n])

    def skip(self, n: int) -> int:
        """Drop the next `n` bytes; returns how many there were."""
        left = n
        while left and self._fill():
            k = min(left, len(self._view))
            self._view = self._view[k:]
            left -= k
        self._pos += n - left
        return n - left

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self._pos
        elif whence != io.SEEK_SET:
            raise io.UnsupportedOperation("a chunk stream cannot seek from its end")
        if offset < self._pos:
            raise io.UnsupportedOperation("a chunk stream cannot seek backwards")
        self.skip(offset - self._pos)  # past the end: stays at the end; the next read returns b""
        return self._pos

    def copy_to(self, fd: int, n: int) -> int:
        """Write the next `n` bytes to `fd`; returns how many there were (fewer at the end of the stream)."""
        left = n
        while left and self._fill():
            w = os.write(fd, self._view[:left])  # a short write: the rest is written on the next turn
            self._view = self._view[w:]
            left -= w
            self._pos += w
        return n - left

    def feed(self, sink: Callable[[memoryview], object], n: int) -> int:
        """Hand the next `n` bytes to `sink` slice by slice (each slice is valid only during the call);
        returns how many there were."""
        left = n
        while left and self._fill():
            take = self._view[:left]
            sink(take)
            self._view = self._view[len(take) :]
            left -= len(take)
            self._pos += len(take)
        return n - left

    def drain(self) -> int:
        """Read to the end of the stream; returns the bytes dropped."""
        total = 0
        while self._fill():
            total += len(self._view)
            self._pos += len(self._view)
            self._view = memoryview(b"")
        return total
