"""The context index read straight from an in-memory tar's buffer agrees with the stream reader (the path a
compressed or file-spooled context takes) on any tar: files, directories, symlinks, hard links, long names,
a missing end-of-archive marker (the docker CLI's), a tar cut short, junk."""

from __future__ import annotations

import hashlib
import io
import tarfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gorae.builder.ctxindex import ContextIndex
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
    assert idx.entries["big/x"].digest == hashlib.sha256(b"x" * 100000).hexdigest()
    assert idx.entries["big"].kind == "dir" and idx.entries["big/x"].mode == 0o600


def test_a_bad_archive_is_refused_alike() -> None:
    with pytest.raises(InvalidParameter, match="invalid archive"):
        ContextIndex.read(io.BytesIO(b"x" * 512 + b"\0" * 1024), set())
