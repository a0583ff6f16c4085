"""The generic HTTP server's file responses: sendfile on the fast path and on h11 connections, partial files,
HEAD announcing a length without a body, and a client that hangs up mid-file (gorae.httpserver)."""

from __future__ import annotations

import errno
import os
import socket
import tempfile
import threading
from collections.abc import Iterator

import pytest
import requests
from test_api_server_harness import ServerThread, read_head

from gorae.httpserver import sendfile
from gorae.httpserver.message import FileResponse, Request, Response
from gorae.httpserver.router import Router

DATA = os.urandom(5 * 1024 * 1024 + 123)


@pytest.fixture(scope="module")
def blob_file() -> Iterator[str]:
    fd, path = tempfile.mkstemp(prefix="gorae-sendfile-")
    with os.fdopen(fd, "wb") as f:
        f.write(DATA)
    try:
        yield path
    finally:
        os.unlink(path)


@pytest.fixture(scope="module", params=["copy to loopback", "sendfile"])
def server(blob_file: str, request: pytest.FixtureRequest) -> Iterator[int]:
    """The file server, once with the loopback copy (the default for a client on this host) and once with
    sendfile as a remote client gets it."""
    saved = sendfile.COPY_TO_LOOPBACK
    sendfile.COPY_TO_LOOPBACK = request.param == "copy to loopback"
    router = Router()

    async def whole(req: Request) -> Response:
        return FileResponse(open(blob_file, "rb"), 0, len(DATA))

    async def part(req: Request) -> Response:
        start, end = int(req.q("start") or 0), int(req.q("end") or 0)
        return FileResponse(open(blob_file, "rb"), start, end - start + 1, status=206)

    async def head_only(req: Request) -> Response:
        return Response(status=200, content_type="application/octet-stream", content_length=len(DATA))

    async def upload(req: Request) -> Response:
        n = 0
        async for chunk in req.stream():
            n += len(chunk)
        return Response(status=201, body=str(n).encode())

    router.add("GET", "/file", whole)
    router.add("GET", "/part", part)
    router.add("GET", "/size", head_only)
    router.add("PUT", "/upload", upload)
    st = ServerThread(router)
    try:
        _, port = st.call(st.server.listen_tcp("127.0.0.1", 0))
        yield port
    finally:
        st.stop()
        sendfile.COPY_TO_LOOPBACK = saved


def test_file_on_the_fast_path(server: int) -> None:
    r = requests.get(f"http://127.0.0.1:{server}/file", timeout=30)
    assert r.status_code == 200
    assert r.headers["Content-Length"] == str(len(DATA))
    assert r.content == DATA


def test_file_range(server: int) -> None:
    r = requests.get(f"http://127.0.0.1:{server}/part?start=1000&end=2000000", timeout=30)
    assert r.status_code == 206
    assert r.content == DATA[1000:2000001]


def test_file_after_the_connection_went_to_h11(server: int) -> None:
    """A chunked upload hands the connection to h11; the next GET on it still gets the file by sendfile."""
    with requests.Session() as s:
        r = s.put(f"http://127.0.0.1:{server}/upload", data=iter([b"a" * 70000, b"b" * 5]), timeout=30)
        assert (r.status_code, r.text) == (201, "70005")
        for _ in range(2):
            r = s.get(f"http://127.0.0.1:{server}/file", timeout=30)
            assert r.content == DATA
        r = s.head(f"http://127.0.0.1:{server}/file", timeout=30)
        assert (r.headers["Content-Length"], r.content) == (str(len(DATA)), b"")


def test_head_announces_length_without_body(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server), timeout=10) as s:
        s.sendall(
            b"HEAD /size HTTP/1.1\r\nHost: x\r\n\r\nGET /part?start=0&end=9 HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        status, headers, rest = read_head(s)
        assert status == b"HTTP/1.1 200 OK"
        assert headers["content-length"] == str(len(DATA))
        # the next response follows at once: the HEAD answer had no body
        while b"\r\n\r\n" not in rest or len(rest.partition(b"\r\n\r\n")[2]) < 10:
            rest += s.recv(65536)
        head2, _, body2 = rest.partition(b"\r\n\r\n")
        assert head2.startswith(b"HTTP/1.1 206 ")
        assert body2 == DATA[:10]


def test_client_gone_mid_file_leaves_server_serving(server: int) -> None:
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", server), timeout=10) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(b"GET /file HTTP/1.1\r\nHost: x\r\n\r\n")
            read_head(s)
    r = requests.get(f"http://127.0.0.1:{server}/file", timeout=30)
    assert r.content == DATA


def test_the_path_each_client_gets(server: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """sendfile moves the bytes unless the peer is on loopback and the copy is on."""
    calls: list[int] = []
    real = os.sendfile

    def counting(out_fd: int, in_fd: int, offset: int | None, count: int) -> int:
        calls.append(count)
        return real(out_fd, in_fd, offset, count)

    monkeypatch.setattr(os, "sendfile", counting)
    assert requests.get(f"http://127.0.0.1:{server}/file", timeout=30).content == DATA
    assert bool(calls) is not sendfile.COPY_TO_LOOPBACK


@pytest.mark.parametrize(
    ("peer", "loopback"),
    [
        (("127.0.0.1", 5000), True),
        (("127.3.4.5", 1), True),
        (("::1", 1, 0, 0), True),
        (("::ffff:127.0.0.1", 1, 0, 0), True),
        (("10.0.0.1", 1), False),
        (("::ffff:10.0.0.1", 1, 0, 0), False),
        (("fe80::1", 1, 0, 2), False),
        ("/run/x.sock", False),
        (None, False),
        ((), False),
    ],
)
def test_loopback_peers(peer: object, loopback: bool) -> None:
    assert sendfile._loopback(peer) is loopback


@pytest.mark.parametrize(
    "refusal", [BlockingIOError(errno.EAGAIN, "not cached"), OSError(errno.EOPNOTSUPP, "no")]
)
def test_the_loopback_copy_reads_uncached_pages_in_a_thread(
    server: int, monkeypatch: pytest.MonkeyPatch, refusal: OSError
) -> None:
    """Pages not in the cache (RWF_NOWAIT refused) or a file system without RWF_NOWAIT: the read goes to a
    worker thread and the client gets every byte."""
    monkeypatch.setattr(sendfile, "COPY_TO_LOOPBACK", True)
    real = os.preadv
    threads: list[str] = []

    def preadv(fd: int, buffers: list[memoryview], offset: int, flags: int = 0) -> int:
        if flags:
            raise refusal
        threads.append(threading.current_thread().name)
        return real(fd, buffers, offset)

    monkeypatch.setattr(os, "preadv", preadv)
    assert requests.get(f"http://127.0.0.1:{server}/file", timeout=30).content == DATA
    assert threads and all(t.startswith("sendfile") for t in threads)
