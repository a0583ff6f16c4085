"""Hostile HTTP input: the server never crashes or hangs; it answers with a status or closes."""

from __future__ import annotations

import logging
import os
import socket
import tempfile
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_api_server_harness import Recorder, ServerThread, make_router, read_all, unix_connect

OK_STATUSES = {b"101", b"200", b"204", b"304", b"400", b"404", b"405", b"413", b"414", b"431", b"501"}


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "GET /boom" not in record.getMessage():  # the test route that raises on purpose
            self.records.append(record)


@pytest.fixture(scope="module")
def fuzz_sock() -> Iterator[str]:
    tmp = tempfile.mkdtemp(prefix="gorae-fuzz-")
    path = os.path.join(tmp, "f.sock")
    rec = Recorder()
    errors = _Errors()
    for name in ("gorae", "asyncio"):
        logging.getLogger(name).addHandler(errors)
    srv = ServerThread(make_router(rec), rec)
    srv.call(srv.server.listen_unix(path))
    try:
        yield path
    finally:
        srv.stop()
        os.rmdir(tmp)
        for name in ("gorae", "asyncio"):
            logging.getLogger(name).removeHandler(errors)
    assert not errors.records, [r.getMessage() for r in errors.records]


def _exchange(path: str, payload: bytes) -> bytes:
    s = unix_connect(path, timeout=5)
    try:
        try:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            return read_all(s)
        except ConnectionResetError:
            return b""
    finally:
        s.close()


def _check(path: str, payload: bytes) -> None:
    data = _exchange(path, payload)  # socket.timeout here means the server hung
    if data:
        assert data.startswith(b"HTTP/1.1 "), data[:80]
        status = data[9:12]
        assert status in OK_STATUSES or (status == b"500" and b"boom" in payload), data[:200]
    assert _exchange(path, b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n").endswith(b"OK")


methods = st.sampled_from(["GET", "POST", "HEAD", "DELETE", "PUT", "OPTIONS", "G ET", "", "get", "X" * 50])
segments = st.sampled_from(
    ["_ping", "v1.45", "v1.99", "v0", "v1..2", "containers", "c1", "attach", "exec", "start", "images", "a%2Fb",
     "json", "echo", "stream", "upload", "%", "%zz", "..", "", "é", "a b", "?x=%", "?filters=%7B", "\x00", "*"]
)  # fmt: skip
targets = st.lists(segments, max_size=6).map(lambda parts: "/" + "/".join(parts)) | st.text(max_size=40)
header_names = st.sampled_from(
    [
        "Host",
        "Content-Length",
        "Transfer-Encoding",
        "Connection",
        "Upgrade",
        "Expect",
        "X-A",
        "",
        "Bad Name",
        ":",
    ]
)
header_values = st.sampled_from(
    ["0", "5", "-1", "99999999999999999999", "chunked", "gzip, chunked", "Upgrade", "tcp", "close", "100-continue",
     "x\x00y", "é", ""]
) | st.text(max_size=20)  # fmt: skip
versions = st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.1 extra", "", "http/1.1"])


@settings(
    max_examples=600,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    method=methods,
    target=targets,
    version=versions,
    headers=st.lists(st.tuples(header_names, header_values), max_size=5),
    body=st.binary(max_size=64),
)
def test_fuzz_request_head(
    fuzz_sock: str, method: str, target: str, version: str, headers: list[tuple[str, str]], body: bytes
) -> None:
    head = f"{method} {target} {version}\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers) + "\r\n"
    _check(fuzz_sock, head.encode("utf-8", "surrogateescape") + body)


@settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(payload=st.binary(max_size=300))
def test_fuzz_raw_bytes(fuzz_sock: str, payload: bytes) -> None:
    _check(fuzz_sock, payload)


@settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(chunks=st.lists(st.binary(max_size=20), max_size=4), junk=st.binary(max_size=12))
def test_fuzz_chunked_bodies(fuzz_sock: str, chunks: list[bytes], junk: bytes) -> None:
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + junk
    head = b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    _check(fuzz_sock, head + body)


def test_huge_header_is_rejected(fuzz_sock: str) -> None:
    data = _exchange(
        fuzz_sock, b"GET /_ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (2 * 1024 * 1024) + b"\r\n\r\n"
    )
    assert data == b"" or data.startswith(b"HTTP/1.1 431") or data.startswith(b"HTTP/1.1 400")
