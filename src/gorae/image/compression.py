"""Decompression of layer and tarball streams by magic number: gzip, bzip2, xz, zstd (when available).

Used to store a layer's *uncompressed* tar (whose digest is the diff_id) whatever the input was, with a
cap on the decompressed size so a small bomb cannot fill the disk.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
from typing import BinaryIO

from gorae.errors import InvalidParameter

DEFAULT_MAX = 64 << 30  # 64 GiB uncompressed

_GZIP = b"\x1f\x8b"
_BZIP2 = b"BZh"
_XZ = b"\xfd7zXZ\x00"
_ZSTD = b"\x28\xb5\x2f\xfd"


class _Prefixed(io.RawIOBase):
    """A stream with some already-read bytes put back in front."""

    def __init__(self, prefix: bytes, stream: BinaryIO) -> None:
        self._prefix = prefix
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(b).cast("B")
        if self._prefix:
            n = min(len(view), len(self._prefix))
            view[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._stream.read(len(view))
        if not data:
            return 0
        view[: len(data)] = data
        return len(data)


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


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def sniff(stream: BinaryIO) -> tuple[str, BinaryIO]:
    """("gzip"|"bzip2"|"xz"|"zstd"|"none", the same stream with the peeked bytes put back)."""
    head = _read_exact(stream, 6)
    kind = "none"
    if head.startswith(_GZIP):
        kind = "gzip"
    elif head.startswith(_BZIP2):
        kind = "bzip2"
    elif head.startswith(_XZ):
        kind = "xz"
    elif head.startswith(_ZSTD):
        kind = "zstd"
    return kind, io.BufferedReader(_Prefixed(head, stream), 1 << 20)  # type: ignore[return-value]


def decompressed(stream: BinaryIO, max_bytes: int = DEFAULT_MAX) -> BinaryIO:
    """The uncompressed bytes of `stream`, whatever its compression, capped at max_bytes."""
    kind, s = sniff(stream)
    out: BinaryIO
    if kind == "gzip":
        out = gzip.GzipFile(fileobj=s, mode="rb")  # type: ignore[assignment]
    elif kind == "bzip2":
        out = bz2.BZ2File(s, mode="rb")  # type: ignore[assignment]
    elif kind == "xz":
        out = lzma.LZMAFile(s, mode="rb")  # type: ignore[assignment]
    elif kind == "zstd":
        try:
            import zstandard  # type: ignore[import-not-found]
        except ImportError:
            raise InvalidParameter("zstd-compressed layers are not supported on this host") from None
        out = zstandard.ZstdDecompressor().stream_reader(s)
    else:
        out = s
    return io.BufferedReader(_Limited(out, max_bytes), 1 << 20)  # type: ignore[return-value]
