"""The context index read straight from an in-memory tar's buffer agrees with the stream reader (the path a
compressed or file-spooled context takes) on any tar: files, directories, symlinks, hard links, long names,
a missing end-of-archive marker (the docker CLI's), a tar cut short, junk."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest
from blake3 import blake3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gorae.builder.ctxindex import ContextIndex, Entry, StreamIndex, content_hash
from gorae.errors import InvalidParameter

names = st.sampled_from(
    [
        "Dockerfile",
        "dockerfile",
        ".dockerignore",
        "a",
        "a/b",
        "a/b/c.txt",
        "./x",
        "d/",
        "l" * 120 + "/f",
        "../up",
    ]
)
members = st.tuples(
    st.sampled_from(["file", "dir", "sym", "hard"]), names, st.binary(max_size=3000), st.integers(0, 0o7777)
)


def make_tar(entries: list[tuple[str, str, bytes, int]], fmt: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for kind, name, data, mode in entries:
            ti = tarfile.TarInfo(name)
            ti.mode = mode
            if kind == "file":
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
            else:
                ti.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE}[kind]
                ti.linkname = data[:20].decode("latin-1")
                tf.addfile(ti)
    return buf.getvalue()


def both(data: bytes) -> tuple[object, object]:
    keep = {"Dockerfile", "dockerfile", ".dockerignore", "a/b/c.txt"}

    def run(fn: object) -> object:
        try:
            idx = fn(io.BytesIO(data), keep)  # type: ignore[operator]
        except InvalidParameter as e:
            return ("invalid", str(e).split(":")[0])
        return (idx.entries, idx.texts)

    return run(ContextIndex.read), run(ContextIndex._read_stream)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    entries=st.lists(members, max_size=6),
    fmt=st.sampled_from([tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT]),
    cut=st.one_of(st.none(), st.integers(0, 1024), st.integers(512, 20000)),
    junk=st.binary(max_size=600),
)
def test_buffer_reader_agrees_with_the_stream_reader(
    entries: list[tuple[str, str, bytes, int]], fmt: int, cut: int | None, junk: bytes
) -> None:
    try:
        data = make_tar(entries, fmt)
    except ValueError:  # a name the format cannot hold
        return
    if cut is not None:
        data = data[: len(data) - cut] if cut < 1024 else data[:cut]
    fast, slow = both(data)
    assert fast == slow
    fast, slow = both(data.rstrip(b"\0") + junk)  # unterminated, then junk
    assert fast == slow


def test_the_buffer_path_is_taken_and_exact() -> None:
    data = make_tar(
        [("file", "Dockerfile", b"FROM scratch\n", 0o644), ("file", "big/x", b"x" * 100000, 0o600)], 1
    )
    stream = io.BytesIO(data)
    idx = ContextIndex.read(stream, {"Dockerfile"})
    assert stream.tell() == 0
    assert idx.texts == {"Dockerfile": b"FROM scratch\n"}
    assert idx.entries["big/x"].digest == blake3(b"x" * 100000).hexdigest()
    assert idx.entries["big"].kind == "dir" and idx.entries["big/x"].mode == 0o600


def test_a_bad_archive_is_refused_alike() -> None:
    with pytest.raises(InvalidParameter, match="invalid archive"):
        ContextIndex.read(io.BytesIO(b"x" * 512 + b"\0" * 1024), set())


def streamed(data: bytes, cuts: list[int]) -> StreamIndex:
    """`data` fed to a StreamIndex in the pieces `cuts` split it into."""
    s = StreamIndex({"Dockerfile", "dockerfile", ".dockerignore", "a/b/c.txt"})
    pos = 0
    for c in sorted(set(cuts)) + [len(data)]:
        if c > pos:
            s.feed(data[pos:c])
            pos = c
    return s


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    entries=st.lists(members, max_size=6),
    fmt=st.sampled_from([tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT]),
    cut=st.one_of(st.none(), st.integers(0, 1024), st.integers(512, 20000)),
    junk=st.binary(max_size=600),
    pieces=st.lists(st.integers(0, 30000), max_size=12),
    global_pax=st.booleans(),
)
def test_the_index_built_while_receiving_is_the_index_read_after(
    entries: list[tuple[str, str, bytes, int]],
    fmt: int,
    cut: int | None,
    junk: bytes,
    pieces: list[int],
    global_pax: bool,
) -> None:
    """Any tar, fed in any pieces: the stream index either gives up (None: the caller reads the whole context)
    or equals ContextIndex.read's, entry for entry and text for text."""
    try:
        data = make_tar(entries, fmt)
    except ValueError:
        return
    if global_pax and fmt == tarfile.PAX_FORMAT:  # a global header renames nothing but must carry over
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=fmt, pax_headers={"comment": "g"}) as tf:
            for m in tarfile.open(fileobj=io.BytesIO(data)):
                tf.addfile(m, io.BytesIO(data[m.offset_data : m.offset_data + m.size]) if m.isreg() else None)
        data = buf.getvalue()
    for variant in (
        data,
        data[: len(data) - cut] if cut is not None and cut < 1024 else data[: cut or len(data)],
        data.rstrip(b"\0") + junk,
    ):
        got = streamed(variant, pieces).finish()
        if got is None:
            assert variant is not data or not entries, "an intact tar is indexed while it arrives"
            continue
        want = ContextIndex.read(
            io.BytesIO(variant), {"Dockerfile", "dockerfile", ".dockerignore", "a/b/c.txt"}
        )
        assert (got.entries, got.texts) == (want.entries, want.texts)


def test_a_plain_context_is_indexed_while_it_arrives() -> None:
    """What the docker CLI sends (pax headers, a long name, no end-of-archive blocks) is indexed in any
    pieces, byte by byte too; the texts asked for are kept."""
    data = make_tar(
        [
            ("file", "Dockerfile", b"FROM scratch\n", 0o644),
            ("dir", "big", b"", 0o755),
            ("file", "big/x", b"x" * 100000, 0o600),
            ("file", "l" * 120 + "/f", b"long", 0o640),
            ("sym", "link", b"big/x", 0o777),
            ("file", "empty", b"", 0o644),
            ("file", "tail", b"end", 0o644),
        ],
        tarfile.PAX_FORMAT,
    )
    data = data[: -(-len(data.rstrip(b"\0")) // 512) * 512]  # without the end-of-archive blocks
    want = ContextIndex.read(io.BytesIO(data), {"Dockerfile"})
    for cuts in ([], list(range(0, len(data), 1)), list(range(0, len(data), 511)), [1000, 1001, 70000]):
        s = StreamIndex({"Dockerfile"})
        pos = 0
        for c in cuts + [len(data)]:
            s.feed(data[pos:c])
            pos = max(pos, c)
        got = s.finish()
        assert got is not None
        assert got.entries == want.entries and got.texts == {"Dockerfile": b"FROM scratch\n"}
    assert got.entries["big/x"].digest == blake3(b"x" * 100000).hexdigest()
    assert got.entries["l" * 120 + "/f"] == Entry("file", 0o640, digest=blake3(b"long").hexdigest())
    assert got.entries["link"] == Entry("link", 0o777, target="big/x")


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (gzip.compress(make_tar([("file", "Dockerfile", b"FROM scratch\n", 0o644)], 1)), "compressed"),
        (b"", "empty"),
        (b"\0" * 1024, "no member"),
        (make_tar([("file", "a", b"x" * 2000, 0o644)], 1)[:1100], "cut inside a file"),
        (b"x" * 512 + b"\0" * 1024, "not a tar"),
    ],
)
def test_the_stream_index_gives_up_where_the_reader_decides(data: bytes, why: str) -> None:
    assert streamed(data, [7, 600]).finish() is None, why


def _longname_chain(n: int, name_len: int) -> bytes:
    """`n` GNU long-name headers in a row, then a small file."""
    out = b""
    for i in range(n):
        name = (f"{i}-" + "n" * name_len).encode()[:name_len] + b"\0"
        ti = tarfile.TarInfo("././@LongLink")
        ti.type, ti.size = tarfile.GNUTYPE_LONGNAME, len(name)
        out += ti.tobuf(tarfile.GNU_FORMAT) + name + b"\0" * (-len(name) % 512)
    f = tarfile.TarInfo("short")
    f.size = 3
    return out + f.tobuf(tarfile.GNU_FORMAT) + b"abc" + b"\0" * 509 + b"\0" * 1024


def test_a_chain_of_extended_headers_is_walked_once_and_bounded() -> None:
    """A member's extended headers are walked as they arrive (not again per piece), as tarfile reads them;
    a chain longer than MAX_TEXT is left to the reader after the upload."""
    data = _longname_chain(300, 600)
    got = streamed(data, list(range(0, len(data), 512))).finish()
    want = ContextIndex.read(io.BytesIO(data), set())
    assert got is not None and (got.entries, got.texts) == (want.entries, want.texts)
    assert list(got.entries) == ["0-" + "n" * 598]  # tarfile takes the first of the chain
    assert streamed(_longname_chain(11, 1 << 20), [4096, 8192]).finish() is None


def test_many_members_are_left_to_the_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past STREAM_MEMBERS members the loop stops indexing (the rest costs headers more than hashing)."""
    import gorae.builder.ctxindex as ctxindex

    monkeypatch.setattr(ctxindex, "STREAM_MEMBERS", 5)
    five = make_tar([("file", f"f{i}", b"x", 0o644) for i in range(5)], tarfile.PAX_FORMAT)
    six = make_tar([("file", f"f{i}", b"x", 0o644) for i in range(6)], tarfile.PAX_FORMAT)
    assert streamed(five, []).finish() is not None
    assert streamed(six, []).finish() is None


def test_content_digests_are_blake3() -> None:
    # the BLAKE3 reference test vectors (empty input; one of 1 byte 0x00), 256-bit output
    assert content_hash().hexdigest() == "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    assert content_hash(b"\0").hexdigest() == "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"
    data = make_tar([("file", "f", b"", 0o644), ("file", "g", b"\0", 0o644)], 1)
    idx = ContextIndex.read(io.BytesIO(data), set())
    assert idx.entries["f"].digest == "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    assert idx.entries["g"].digest == "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"
