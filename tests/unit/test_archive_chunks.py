"""archive.chunks.ChunkReader exactly: every method's bytes, position, return value and source calls.

The reader is what `apply` and `image/load.py` read tars through; these tests pin each method on chunk
boundaries, at the end of the stream and past it (docs/mutation.md: written for the mutants that
survived the suite). The source fails the test if it is called again after it returned b"".
"""

from __future__ import annotations

import errno
import io
import os
import resource
import signal
import tarfile

import pytest

from gorae.archive.chunks import ChunkReader


class Source:
    """The chunks in order, then b""; a call after the b"" fails (the reader must remember the end)."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = list(chunks)
        self.calls = 0
        self.ended = False

    def __call__(self) -> bytes:
        assert not self.ended, "the source was read again after its end"
        self.calls += 1
        if not self.chunks:
            self.ended = True
            return b""
        return self.chunks.pop(0)


def reader(*chunks: bytes) -> tuple[ChunkReader, Source]:
    src = Source(*chunks)
    return ChunkReader(src), src


def test_file_methods() -> None:
    r, _ = reader(b"x")
    assert r.readable() is True
    assert r.seekable() is False
    assert r.tell() == 0


@pytest.mark.parametrize("args", [(), (-1,), (None,), (-2,)])
def test_read_all(args: tuple[int | None, ...]) -> None:
    r, src = reader(b"abc", b"de", b"f")
    assert r.read(*args) == b"abcdef"  # type: ignore[arg-type]
    assert r.tell() == 6
    assert src.calls == 4 and src.ended
    assert r.read() == b""
    assert r.read(5) == b""
    assert r.tell() == 6


def test_read_all_after_a_partial_read() -> None:
    r, _ = reader(b"abc", b"def")
    assert r.read(2) == b"ab"
    assert r.read() == b"cdef"
    assert r.tell() == 6


def test_read_zero_consumes_nothing() -> None:
    r, src = reader(b"abc")
    assert r.read(0) == b""
    assert r.tell() == 0
    assert src.calls == 0
    assert r.read(3) == b"abc"


def test_read_one() -> None:
    r, _ = reader(b"abc")
    assert r.read(1) == b"a"
    assert r.read(1) == b"b"
    assert r.tell() == 2


def test_read_exactly_the_chunk_then_the_next() -> None:
    r, src = reader(b"abcd", b"efgh")
    assert r.read(4) == b"abcd"
    assert src.calls == 1
    assert r.tell() == 4
    assert r.read(4) == b"efgh"
    assert src.calls == 2
    assert r.tell() == 8
    assert r.read(1) == b""
    assert r.tell() == 8


def test_read_across_chunks() -> None:
    r, src = reader(b"ab", b"cde", b"fgh")
    assert r.read(1) == b"a"
    assert r.read(5) == b"bcdef"
    assert r.tell() == 6
    assert src.calls == 3
    assert r.read(2) == b"gh"
    assert r.tell() == 8


def test_read_past_the_end_returns_what_there_is() -> None:
    r, src = reader(b"ab", b"cd")
    assert r.read(1) == b"a"
    assert r.read(10) == b"bcd"
    assert r.tell() == 4
    assert src.ended
    assert r.read(10) == b""
    assert r.tell() == 4


def test_empty_stream() -> None:
    r, src = reader()
    assert r.read(512) == b""
    assert r.read() == b""
    assert r.peek(8) == b""
    assert r.skip(3) == 0
    assert r.drain() == 0
    assert r.tell() == 0
    assert src.calls == 1


def test_chunks_of_any_buffer_type() -> None:
    r, _ = reader(bytearray(b"ab"), memoryview(b"cd"))  # type: ignore[arg-type]
    assert r.read(3) == b"abc"
    assert r.read(1) == b"d"


def test_peek_inside_a_chunk() -> None:
    r, src = reader(b"abcd", b"efgh")
    assert r.peek(2) == b"ab"
    assert r.peek(4) == b"abcd"
    assert src.calls == 1  # exactly the chunk's length: no second chunk fetched
    assert r.tell() == 0
    assert r.read(4) == b"abcd"


def test_peek_across_a_chunk_boundary_consumes_nothing() -> None:
    r, src = reader(b"ab", b"cd", b"efgh")
    assert r.read(1) == b"a"
    assert r.peek(4) == b"bcde"
    assert src.calls == 3
    assert r.tell() == 1
    assert r.read(7) == b"bcdefgh"
    assert r.tell() == 8
    assert r.read() == b""


def test_peek_past_the_end() -> None:
    r, src = reader(b"ab", b"c")
    assert r.peek(8) == b"abc"
    assert src.ended
    assert r.peek(8) == b"abc"  # the end is remembered: the source is not called again
    assert r.tell() == 0
    assert r.read() == b"abc"
    assert r.tell() == 3


def test_skip() -> None:
    r, _ = reader(b"abc", b"defg")
    assert r.skip(0) == 0
    assert r.skip(2) == 2
    assert r.tell() == 2
    assert r.skip(3) == 3
    assert r.tell() == 5
    assert r.read(1) == b"f"
    assert r.skip(10) == 1
    assert r.tell() == 7
    assert r.skip(1) == 0
    assert r.tell() == 7


def test_seek_forward() -> None:
    r, _ = reader(b"abc", b"defg")
    assert r.seek(2) == 2
    assert r.seek(2, io.SEEK_SET) == 2
    assert r.read(1) == b"c"
    assert r.seek(2, io.SEEK_CUR) == 5
    assert r.tell() == 5
    assert r.seek(0, io.SEEK_CUR) == 5
    assert r.read() == b"fg"


def test_seek_past_the_end_stays_at_the_end() -> None:
    r, _ = reader(b"abc")
    assert r.seek(10) == 3
    assert r.tell() == 3
    assert r.read(1) == b""


def test_seek_from_the_end_is_refused() -> None:
    r, _ = reader(b"abc")
    with pytest.raises(io.UnsupportedOperation) as e:
        r.seek(0, io.SEEK_END)
    assert str(e.value) == "a chunk stream cannot seek from its end"
    assert r.tell() == 0


def test_seek_backwards_is_refused() -> None:
    r, _ = reader(b"abc")
    assert r.read(2) == b"ab"
    with pytest.raises(io.UnsupportedOperation) as e:
        r.seek(1)
    assert str(e.value) == "a chunk stream cannot seek backwards"
    with pytest.raises(io.UnsupportedOperation) as e:
        r.seek(-1, io.SEEK_CUR)
    assert str(e.value) == "a chunk stream cannot seek backwards"
    assert r.tell() == 2
    assert r.read() == b"c"


def _file_bytes(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 1 << 16)


def test_copy_to(tmp_path: os.PathLike[str]) -> None:
    r, _ = reader(b"abc", b"defg", b"hi")
    fd = os.open(os.path.join(tmp_path, "out"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        assert r.read(1) == b"a"
        assert r.copy_to(fd, 0) == 0
        assert r.copy_to(fd, 5) == 5
        assert _file_bytes(fd) == b"bcdef"
        assert r.tell() == 6
        assert r.read(1) == b"g"
        os.lseek(fd, 0, os.SEEK_END)
        assert r.copy_to(fd, 10) == 2  # fewer at the end
        assert r.tell() == 9
        assert _file_bytes(fd) == b"bcdefhi"
        assert r.copy_to(fd, 1) == 0
    finally:
        os.close(fd)


def test_copy_to_after_a_short_write(tmp_path: os.PathLike[str]) -> None:
    """A short write (the file size limit is reached mid-chunk): the reader stands exactly after the bytes
    written, and the next write's error comes out of copy_to."""
    body = bytes(range(256)) * 12  # 3072 bytes, one chunk
    r, _ = reader(body)
    fd = os.open(os.path.join(tmp_path, "out"), os.O_RDWR | os.O_CREAT, 0o600)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, hard))
        try:
            with pytest.raises(OSError) as e:
                r.copy_to(fd, 3072)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        assert e.value.errno == errno.EFBIG
        assert _file_bytes(fd) == body[:1000]
        assert r.tell() == 1000
        assert r.read() == body[1000:]
    finally:
        signal.signal(signal.SIGXFSZ, old)
        os.close(fd)


def test_feed_hands_over_per_chunk_slices() -> None:
    r, _ = reader(b"abc", b"defg", b"h")
    seen: list[bytes] = []

    def sink(view: memoryview) -> None:
        assert isinstance(view, memoryview)
        seen.append(bytes(view))

    assert r.read(1) == b"a"
    assert r.feed(sink, 0) == 0
    assert seen == []
    assert r.feed(sink, 4) == 4
    assert seen == [b"bc", b"de"]
    assert r.tell() == 5
    assert r.read(1) == b"f"
    seen.clear()
    assert r.feed(sink, 10) == 2
    assert seen == [b"g", b"h"]
    assert r.tell() == 8
    assert r.feed(sink, 1) == 0


def test_drain() -> None:
    r, src = reader(b"abc", b"defg", b"hi")
    assert r.read(2) == b"ab"
    assert r.drain() == 7
    assert r.tell() == 9
    assert src.ended
    assert r.drain() == 0
    assert r.read() == b""
    assert r.read(1) == b""
    assert r.peek(1) == b""
    assert r.tell() == 9


def test_tarfile_reads_members_over_it(tmp_path: os.PathLike[str]) -> None:
    """What `apply` does: tarfile's random-access mode over the chunks, bodies skipped by seek."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, body in (("a", b"1" * 700), ("b", b""), ("c", b"xyz")):
            ti = tarfile.TarInfo(name)
            ti.size = len(body)
            tf.addfile(ti, io.BytesIO(body))
    data = buf.getvalue()
    chunks = [data[i : i + 333] for i in range(0, len(data), 333)]
    r, _ = reader(*chunks)
    tf = tarfile.open(fileobj=r, mode="r:")  # type: ignore[call-overload]
    names = []
    while (m := tf.next()) is not None:
        names.append((m.name, m.size))
    assert names == [("a", 700), ("b", 0), ("c", 3)]
    pos = r.tell()
    assert 0 < pos < len(data)  # the end-of-archive blocks and the record's padding are left unread
    assert r.drain() == len(data) - pos
    assert r.tell() == len(data)
