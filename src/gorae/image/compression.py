"""Decompression of layer and tarball streams, capped: the uncompressed bytes of gzip/bzip2/xz/zstd or plain input.

Used to store a layer's *uncompressed* tar (whose digest is the diff_id) whatever the input was, with a
cap on the decompressed size so a small bomb cannot fill the disk. Sniffing the compression and picking
the decoder is `gorae.archive.streams`'s; this module only adds the cap and the buffering.
"""

from __future__ import annotations

import io
from typing import BinaryIO

from gorae.archive import streams
from gorae.errors import InvalidParameter

DEFAULT_MAX = streams.DEFAULT_MAX  # 64 GiB uncompressed
_BUF = 1 << 20


class _Limited(io.RawIOBase):
    def __init__(self, stream: BinaryIO, limit: int) -> None:
        self._stream = stream
        self._left = limit
        self._limit = limit

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(b).cast("B")
        data = self._stream.read(len(view))
        if not data:
            return 0
        self._left -= len(data)
        if self._left < 0:
            raise InvalidParameter(f"layer larger than {self._limit} bytes uncompressed")
        view[: len(data)] = data
        return len(data)


def decompressed(stream: BinaryIO, max_bytes: int = DEFAULT_MAX) -> BinaryIO:
    """The uncompressed bytes of `stream`, whatever its compression, capped at max_bytes."""
    out, _ = streams.decompressed(stream)
    return io.BufferedReader(_Limited(out, max_bytes), _BUF)
