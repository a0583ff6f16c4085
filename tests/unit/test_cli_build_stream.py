"""`gorae build DIR` streams its context: the tar written into the request as it is made
(`streamed_context`) is byte for byte the tar `context_tar` writes to a file, goes out in bounded pieces,
reports its size once sent; the client transport frames a writer body as chunks."""

from __future__ import annotations

import io
import os
import socket
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gorae.cli.commands.build import STREAM_PIECE, context_tar, streamed_context
from gorae.client.host import parse_host
from gorae.client.transport import Connection


def make_tree(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sizes=st.lists(st.integers(0, 700_000), min_size=1, max_size=6),
    ignore=st.sampled_from(["", "f1\n", "d\n!d/keep\n"]),
    gz=st.booleans(),
)
def test_the_streamed_tar_is_the_file_tar(tmp_path_factory: pytest.TempPathFactory, sizes: list[int], ignore: str, gz: bool) -> None:
    root = tmp_path_factory.mktemp("ctx")
    files = {f"f{i}": os.urandom(n) for i, n in enumerate(sizes)}
    files.update({"Dockerfile": b"FROM scratch\n", "d/keep": b"k", "d/drop": b"x", ".dockerignore": ignore.encode()})
    make_tree(root, files)
    want = io.BytesIO()
    context_tar(str(root), None, (".dockerfile.x", b"FROM a\n"), want, gz)
    pieces: list[bytes] = []
    sizes_sent: list[int] = []
    streamed_context(str(root), None, (".dockerfile.x", b"FROM a\n"), gz, sizes_sent.append)(pieces.append)
    got = b"".join(pieces)
    if gz:  # gzip headers carry a time stamp: compare what they hold
        assert tarfile.open(fileobj=io.BytesIO(got)).getnames() == tarfile.open(fileobj=io.BytesIO(want.getvalue())).getnames()
    else:
        assert got == want.getvalue()
    assert sizes_sent == [len(got)]
    assert all(len(p) < STREAM_PIECE + (1 << 20) for p in pieces)  # a piece at most one write past the mark


def test_pieces_are_sent_while_the_tar_is_made(tmp_path: Path) -> None:
    make_tree(tmp_path, {"Dockerfile": b"FROM scratch\n", **{f"big{i}": os.urandom(1 << 20) for i in range(4)}})
    pieces: list[bytes] = []
    done: list[int] = []

    def send(p: bytes) -> None:
        assert not done  # before the end of the tar
        pieces.append(p)

    streamed_context(str(tmp_path), None, None, False, done.append)(send)
    assert len(pieces) >= 16 and done == [sum(map(len, pieces))]
    names = tarfile.open(fileobj=io.BytesIO(b"".join(pieces))).getnames()
    assert names == ["Dockerfile", "big0", "big1", "big2", "big3"]


def test_a_writer_body_goes_out_chunked() -> None:
    a, b = socket.socketpair()
    try:
        conn = Connection(parse_host("unix:///nonexistent.sock"))
        conn.sock = a
        conn.send_request("POST", "/build", {}, lambda send: [send(b"abc"), send(b""), send(b"de")] and None)
        b.settimeout(5)
        got = b""
        while not got.endswith(b"0\r\n\r\n"):
            got += b.recv(65536)
        head, _, body = got.partition(b"\r\n\r\n")
        assert b"Transfer-Encoding: chunked" in head
        assert body == b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    finally:
        a.close()
        b.close()
