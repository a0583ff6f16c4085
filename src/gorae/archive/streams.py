"""Input streams of archives: compression sniffing, decompression, digest and size cap in one pass.

Owns turning "some bytes that are a tar, maybe gzip/zstd/bzip2/xz-compressed" into a reader of the
uncompressed tar that hashes (sha256) and counts every byte handed out, refusing to go past a byte cap
(decompression bombs). Must never seek the input (it may be a socket) nor buffer it whole.
"""

from __future__ import annotations

import bz2
import functools
import gzip
import hashlib
import lzma
import zlib
from typing import BinaryIO, cast

from gorae.errors import InvalidParameter

BUF = 1 << 20
DEFAULT_MAX = 1 << 36  # 64 GiB of uncompressed tar per layer

_GZIP = b"\x1f\x8b"
_ZSTD = b"\x28\xb5\x2f\xfd"
_BZIP2 = b"BZh"
_XZ = b"\xfd7zXZ\x00"


class _Prefixed:
    """A reader giving back `head` (already read to sniff the format) before the rest of `raw`."""

    def __init__(self, head: bytes, raw: BinaryIO) -> None:
        self._head = head
        self._raw = raw

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n is None or n < 0:
                data, self._head = self._head + self._raw.read(), b""
                return data
            data, self._head = self._head[:n], self._head[n:]
            return data
        return self._raw.read(n)

    def readable(self) -> bool:
        return True


def _read_head(raw: BinaryIO, n: int) -> bytes:
    head = b""
    while len(head) < n:
        chunk = raw.read(n - len(head))
        if not chunk:
            break
        head += chunk
    return head


class GzipReader:
    """gzip decompression (RFC 1952, members one after another, zero padding between them allowed as GNU
    gzip does) with one `zlib` object per member and input read `BUF` at a time: about twice as fast as
    `gzip.GzipFile`, which reads its input 8 KiB at a time. zlib checks each member's CRC-32 and length.
    EOFError when the input ends inside a member; gzip.BadGzipFile for bytes after a member that are not
    another member."""

    def __init__(self, src: BinaryIO) -> None:
        self._src = src
        self._z = zlib.decompressobj(31)
        self._in = b""  # input not yet given to zlib
        self._src_eof = False
        self._member = True  # inside a member (the first starts at once)

    def readable(self) -> bool:
        return True

    def _more(self) -> bool:
        if self._src_eof:
            return False
        data = self._src.read(BUF)
        if not data:
            self._src_eof = True
            return False
        self._in += data
        return True

    def _next_member(self) -> bool:
        """After a member: skip zero padding; True when another member starts, False at the end."""
        while True:
            self._in = self._in.lstrip(b"\x00")
            if self._in or not self._more():
                break
        if not self._in:
            return False
        while len(self._in) < 2 and self._more():
            pass
        if not self._in.startswith(_GZIP):
            raise gzip.BadGzipFile(f"Not a gzipped file ({self._in[:2]!r})")
        self._z = zlib.decompressobj(31)
        self._member = True
        return True

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = BUF
        elif n == 0:  # zlib would take a max_length of 0 as "no limit"
            return b""
        while True:
            if not self._member and not self._next_member():
                return b""
            tail = self._z.unconsumed_tail
            if tail:
                data = self._z.decompress(tail, n)
            else:
                if not self._in and not self._more():
                    raise EOFError("Compressed file ended before the end-of-stream marker was reached")
                data = self._z.decompress(self._in, n)
                self._in = b""
            if self._z.eof:
                self._in = self._z.unused_data
                self._member = False
            if data:
                return data


def _zstd_reader(src: BinaryIO) -> BinaryIO:
    try:
        import zstandard
    except ImportError:
        raise InvalidParameter(
            "archive is zstd-compressed but zstd support is not installed (pip install zstandard)"
        ) from None
    return zstandard.ZstdDecompressor().stream_reader(src, read_size=BUF, read_across_frames=True)


def is_compressed(head: bytes) -> bool:
    """Whether a stream starting with `head` (its first 6 bytes or more) would be decompressed."""
    return head.startswith((_GZIP, _ZSTD, _BZIP2, _XZ))


def decompressed(raw: BinaryIO) -> tuple[BinaryIO, str]:
    """A reader of the uncompressed bytes of `raw`, and the compression found ("", gzip, zstd, ...)."""
    head = _read_head(raw, 6)
    src = cast(BinaryIO, _Prefixed(head, raw))  # reads like the file it wraps
    if head.startswith(_GZIP):
        return cast(BinaryIO, GzipReader(src)), "gzip"
    if head.startswith(_ZSTD):
        return _zstd_reader(src), "zstd"
    if head.startswith(_BZIP2):
        return cast(BinaryIO, bz2.BZ2File(src)), "bzip2"
    if head.startswith(_XZ):
        return cast(BinaryIO, lzma.LZMAFile(src)), "xz"
    return src, ""


@functools.cache
def decompress_errors() -> tuple[type[BaseException], ...]:
    """What the decoders raise for corrupt input (OSError included: a broken source stream)."""
    errs: list[type[BaseException]] = [OSError, EOFError, zlib.error, lzma.LZMAError, ValueError]
    try:
        import zstandard

        errs.append(zstandard.ZstdError)
    except ImportError:
        pass
    return tuple(errs)


class DigestingReader:
    """Reads the uncompressed tar, hashing and counting every byte; InvalidParameter past `max_bytes`."""

    def __init__(self, raw: BinaryIO, max_bytes: int = DEFAULT_MAX) -> None:
        self._inner, self.compression = decompressed(raw)
        self._errors = decompress_errors()
        self._sha = hashlib.sha256()
        self.count = 0
        self.max_bytes = max_bytes

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = BUF
        try:
            data = self._inner.read(n)
        except InvalidParameter:
            raise
        except self._errors as e:
            what = self.compression or "tar"
            raise InvalidParameter(f"invalid archive: corrupt {what} stream: {e}") from e
        if data:
            self.count += len(data)
            if self.count > self.max_bytes:
                raise InvalidParameter(
                    f"archive exceeds the maximum uncompressed size of {self.max_bytes} bytes"
                )
            self._sha.update(data)
        return data

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        """Read (and hash) whatever follows the end-of-archive marker, as the digest covers it all."""
        while self.read(BUF):
            pass

    def digest(self) -> str:
        return "sha256:" + self._sha.hexdigest()
