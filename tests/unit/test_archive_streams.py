"""archive.streams exactly: sniffing, the prefixed reader, the gzip member loop, digest, count and cap.

Written for docs/mutation.md (mutants of streams.py the suite let through): each test pins bytes,
counts and the exact error texts on the edges (chunk sizes of 1, zero padding, the cap itself)."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import sys
import zlib
from collections.abc import Callable
from typing import BinaryIO, cast

import pytest
import zstandard

from gorae.archive import streams
from gorae.archive.streams import (
    BUF,
    DEFAULT_MAX,
    DigestingReader,
    GzipReader,
    decompress_errors,
    decompressed,
    is_compressed,
)
from gorae.errors import InvalidParameter


class Trickle(io.RawIOBase):
    """At most `step` bytes per read, counting the reads (a socket's short reads)."""

    def __init__(self, data: bytes, step: int = 1) -> None:
        self._data = data
        self._step = step
        self.reads = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        self.reads += 1
        k = len(self._data) if n is None or n < 0 else min(n, self._step)
        out, self._data = self._data[:k], self._data[k:]
        return out


def _bin(x: object) -> BinaryIO:
    return cast(BinaryIO, x)


def _read_all(r: BinaryIO, n: int = 7) -> bytes:
    out = b""
    while chunk := r.read(n):
        assert len(chunk) <= n
        out += chunk
    return out


def test_constants() -> None:
    assert BUF == 1 << 20
    assert DEFAULT_MAX == 1 << 36


@pytest.mark.parametrize(
    ("head", "want"),
    [
        (b"\x1f\x8b\x08", True),
        (b"\x28\xb5\x2f\xfd\x00", True),
        (b"BZh9", True),
        (b"\xfd7zXZ\x00", True),
        (b"\xfd7zXZ", False),
        (b"\x1f", False),
        (b"BZ", False),
        (b"ustar\x00", False),
        (b"", False),
    ],
)
def test_is_compressed(head: bytes, want: bool) -> None:
    assert is_compressed(head) is want


@pytest.mark.parametrize(
    ("pack", "name"),
    [
        (lambda b: b, ""),
        (gzip.compress, "gzip"),
        (lambda b: zstandard.ZstdCompressor().compress(b), "zstd"),
        (bz2.compress, "bzip2"),
        (lzma.compress, "xz"),
    ],
)
def test_decompressed_through_one_byte_reads(pack: object, name: str) -> None:
    body = bytes(range(256)) * 40
    reader, found = decompressed(_bin(Trickle(pack(body), step=1)))  # type: ignore[operator]
    assert found == name
    assert _read_all(reader, 4096) == body


def test_decompressed_of_short_input() -> None:
    r, found = decompressed(_bin(io.BytesIO(b"ab")))
    assert found == ""
    assert r.read() == b"ab"
    r, found = decompressed(_bin(io.BytesIO(b"")))
    assert found == ""
    assert r.read(10) == b""


def test_prefixed_reads_the_head_then_the_rest() -> None:
    raw = Trickle(b"ghijkl", step=100)
    r = streams._Prefixed(b"abcdef", _bin(raw))
    assert r.readable() is True
    assert r.read(0) == b""
    assert r.read(2) == b"ab"
    assert raw.reads == 0
    assert r.read(10) == b"cdef"  # never more than the head in one read
    assert raw.reads == 0
    assert r.read(3) == b"ghi"
    assert r.read(-1) == b"jkl"


@pytest.mark.parametrize("n", [-1, None])
def test_prefixed_read_all(n: int | None) -> None:
    r = streams._Prefixed(b"ab", _bin(io.BytesIO(b"cd")))
    assert r.read(1) == b"a"
    assert r.read(n) == b"bcd"  # type: ignore[arg-type]
    assert r.read(n) == b""  # type: ignore[arg-type]


def test_read_head_gathers_short_reads_and_stops_at_the_end() -> None:
    raw = Trickle(b"abcdefgh", step=2)
    assert streams._read_head(_bin(raw), 5) == b"abcde"
    assert raw.reads == 3
    assert streams._read_head(_bin(Trickle(b"xy", step=1)), 6) == b"xy"
    assert streams._read_head(_bin(io.BytesIO(b"")), 6) == b""


def test_gzip_members_with_zero_padding_between_and_after() -> None:
    data = gzip.compress(b"first ") + b"\x00" * 3 + gzip.compress(b"") + gzip.compress(b"second") + b"\x00" * 5
    r = GzipReader(_bin(io.BytesIO(data)))
    assert r.readable() is True
    assert _read_all(_bin(r), 4) == b"first second"
    assert r.read(4) == b""
    r = GzipReader(_bin(Trickle(data, step=1)))
    assert _read_all(_bin(r), 3) == b"first second"


def test_gzip_read_all_is_at_most_buf() -> None:
    body = os.urandom(1000) * (BUF // 1000 + 5)  # more than BUF uncompressed
    for n in (-1, None):
        r = GzipReader(_bin(io.BytesIO(gzip.compress(body, 1))))
        first = r.read(n)  # type: ignore[arg-type]
        assert len(first) == BUF
        assert first + _read_all(_bin(r), BUF) == body


def test_gzip_member_larger_than_one_read() -> None:
    body = bytes(range(256)) * 64  # 16 KiB; read 1000 at a time: zlib's unconsumed tail in use
    r = GzipReader(_bin(io.BytesIO(gzip.compress(body))))
    got = [r.read(1000) for _ in range(17)]
    assert [len(g) for g in got] == [1000] * 16 + [384]
    assert b"".join(got) == body
    assert r.read(1000) == b""


def test_gzip_garbage_after_a_member() -> None:
    r = GzipReader(_bin(io.BytesIO(gzip.compress(b"ok") + b"\x00\x00PK\x03\x04")))
    assert r.read(10) == b"ok"
    with pytest.raises(gzip.BadGzipFile) as e:
        r.read(10)
    assert str(e.value) == "Not a gzipped file (b'PK')"


def test_gzip_one_stray_byte_after_a_member() -> None:
    r = GzipReader(_bin(io.BytesIO(gzip.compress(b"ok") + b"\x1f")))
    assert _read_all_until_error(r) == b"ok"


def _read_all_until_error(r: GzipReader) -> bytes:
    out = r.read(10)
    with pytest.raises(gzip.BadGzipFile) as e:
        r.read(10)
    assert str(e.value) == "Not a gzipped file (b'\\x1f')"
    return out


def test_gzip_truncated_member() -> None:
    data = gzip.compress(bytes(range(256)) * 8)
    r = GzipReader(_bin(io.BytesIO(data[:-6])))
    with pytest.raises(EOFError) as e:
        _read_all(_bin(r), 100)
    assert str(e.value) == "Compressed file ended before the end-of-stream marker was reached"


def test_gzip_bad_crc_is_a_zlib_error() -> None:
    data = bytearray(gzip.compress(b"payload"))
    data[-8] ^= 0xFF  # the CRC-32
    r = GzipReader(_bin(io.BytesIO(bytes(data))))
    with pytest.raises(zlib.error):
        _read_all(_bin(r), 100)


def test_decompress_errors() -> None:
    assert decompress_errors() == (
        OSError, EOFError, zlib.error, lzma.LZMAError, ValueError, zstandard.ZstdError,
    )


def test_digesting_reader_counts_and_hashes_the_uncompressed_bytes() -> None:
    body = b"0123456789" * 100
    r = DigestingReader(_bin(io.BytesIO(gzip.compress(body))))
    assert r.readable() is True
    assert r.compression == "gzip"
    assert r.max_bytes == DEFAULT_MAX
    assert r.count == 0
    assert r.read(10) == b"0123456789"
    assert r.count == 10
    r.drain()
    assert r.count == 1000
    assert r.digest() == "sha256:" + hashlib.sha256(body).hexdigest()
    assert r.read(5) == b""
    assert r.count == 1000


@pytest.mark.parametrize("n", [-1, None])
def test_digesting_reader_read_all_is_at_most_buf(n: int | None) -> None:
    body = b"x" * (BUF + 10)
    r = DigestingReader(_bin(io.BytesIO(gzip.compress(body, 1))))
    assert len(r.read(n)) == BUF  # type: ignore[arg-type]
    assert r.read(n) == b"x" * 10  # type: ignore[arg-type]
    assert r.count == BUF + 10


def test_digesting_reader_cap_is_inclusive() -> None:
    r = DigestingReader(_bin(io.BytesIO(b"a" * 100)), max_bytes=100)
    r.drain()
    assert r.count == 100
    r = DigestingReader(_bin(io.BytesIO(gzip.compress(b"a" * 101))), max_bytes=100)
    assert r.read(100) == b"a" * 100
    with pytest.raises(InvalidParameter) as e:
        r.read(100)
    assert str(e.value) == "archive exceeds the maximum uncompressed size of 100 bytes"
    assert r.count == 101


def test_digesting_reader_corrupt_streams() -> None:
    r = DigestingReader(_bin(io.BytesIO(gzip.compress(b"abc")[:-3])))
    with pytest.raises(InvalidParameter) as e:
        r.drain()
    assert str(e.value) == (
        "invalid archive: corrupt gzip stream: Compressed file ended before the end-of-stream marker was reached"
    )

    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            raise OSError("connection reset")

    r = DigestingReader(_bin(io.BytesIO(b"plain tar")))
    r._inner = _bin(Broken())
    with pytest.raises(InvalidParameter) as e:
        r.read(4)
    assert str(e.value) == "invalid archive: corrupt tar stream: connection reset"


def test_digesting_reader_passes_invalid_parameter_through() -> None:
    class Refusing(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            raise InvalidParameter("refused as is")

    r = DigestingReader(_bin(io.BytesIO(b"x")))
    r._inner = _bin(Refusing())
    with pytest.raises(InvalidParameter) as e:
        r.read(1)
    assert str(e.value) == "refused as is"


def test_zstd_without_the_zstandard_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "zstandard", None)  # `import zstandard` raises ImportError
    with pytest.raises(InvalidParameter) as e:
        decompressed(_bin(io.BytesIO(zstandard.ZstdCompressor().compress(b"x"))))
    assert str(e.value) == (
        "archive is zstd-compressed but zstd support is not installed (pip install zstandard)"
    )
    assert decompress_errors.__wrapped__() == (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError)


def test_gzip_only_zero_bytes_are_padding() -> None:
    r = GzipReader(_bin(io.BytesIO(gzip.compress(b"ok") + b"\x00XX")))
    assert r.read(10) == b"ok"
    with pytest.raises(gzip.BadGzipFile) as e:
        r.read(10)
    assert str(e.value) == "Not a gzipped file (b'XX')"


def test_gzip_read_without_a_size_reads_up_to_buf() -> None:
    assert GzipReader(_bin(io.BytesIO(gzip.compress(b"abc")))).read() == b"abc"
    body = b"y" * (BUF + 3)
    r = GzipReader(_bin(io.BytesIO(gzip.compress(body, 1))))
    assert len(r.read()) == BUF
    assert r.read() == b"yyy"
    assert r.read() == b""


def test_gzip_read_of_zero_bytes_reads_nothing() -> None:
    # zlib's decompress(data, 0) means "no limit": read(0) must not hand out the whole member
    body = b"z" * (BUF + 3)
    r = GzipReader(_bin(io.BytesIO(gzip.compress(body, 1))))
    assert r.read(0) == b""
    assert len(r.read(BUF)) == BUF
    assert r.read(0) == b""
    assert r.read(10) == b"zzz"
    d = DigestingReader(_bin(io.BytesIO(gzip.compress(b"abc"))))
    assert d.read(0) == b""
    assert d.count == 0
    assert d.read(5) == b"abc"


def test_zstd_frames_one_after_another_are_read_as_one_stream() -> None:
    # as `zstd -c a b` or a parallel compressor writes them; one read goes on across the frame boundary
    c = zstandard.ZstdCompressor()
    data = c.compress(b"first ") + c.compress(b"second")
    r, name = decompressed(_bin(io.BytesIO(data)))
    assert name == "zstd"
    assert _read_all(r, 4) == b"first second"
    r, _ = decompressed(_bin(io.BytesIO(data)))
    assert r.read(100) == b"first second"
    assert r.read(100) == b""


@pytest.mark.parametrize("pack", [lambda b: b, lambda b: gzip.compress(b, 1)], ids=["plain", "gzip"])
def test_digesting_reader_read_without_a_size_reads_up_to_buf(pack: Callable[[bytes], bytes]) -> None:
    body = b"w" * (BUF + 10)
    for n in ((), (-1,)):
        r = DigestingReader(_bin(io.BytesIO(pack(body))))
        got = []
        while chunk := r.read(*n):
            got.append(len(chunk))
        assert max(got) == BUF
        assert sum(got) == r.count == BUF + 10


class Chunks(io.RawIOBase):
    """Hands out `chunks` one per read, then fails the read that comes after them (a connection reset)."""

    def __init__(self, *chunks: bytes) -> None:
        self._chunks = list(chunks)

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if not self._chunks:
            raise OSError("connection reset")
        chunk = self._chunks.pop(0)
        assert n is None or n < 0 or len(chunk) <= n
        return chunk


def test_a_gzip_member_start_is_judged_on_two_bytes_without_reading_further() -> None:
    # the input may be a socket: garbage after a member is refused before the next read
    r = GzipReader(_bin(Chunks(gzip.compress(b"ok"), b"PK")))
    assert r.read(10) == b"ok"
    with pytest.raises(gzip.BadGzipFile) as e:
        r.read(10)
    assert str(e.value) == "Not a gzipped file (b'PK')"


def test_the_sniffed_head_is_read_without_reading_further() -> None:
    # a connection broken right after the first 6 bytes is a corrupt archive when the reader gets there,
    # not an error of the sniffing
    r = DigestingReader(_bin(Chunks(b"abcdef")))
    assert r.compression == ""
    assert r.read(10) == b"abcdef"
    with pytest.raises(InvalidParameter) as e:
        r.read(10)
    assert str(e.value) == "invalid archive: corrupt tar stream: connection reset"
