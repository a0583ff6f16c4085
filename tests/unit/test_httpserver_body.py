"""Request bodies read past h11: large pieces to the handler, pipelining and keep-alive after them,
100-continue, malformed chunk framing (400, closed), a client gone mid-body, the drain of unread bodies."""

from __future__ import annotations

import json
import os
import socket
import tempfile
from collections.abc import Iterator

import pytest
from test_api_server_harness import Recorder, ServerThread, make_router, read_all, read_head, unix_connect

MiB = 1024 * 1024
PING = b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def sock_path(rec: Recorder) -> Iterator[str]:
    tmp = tempfile.mkdtemp(prefix="gorae-body-")
    path = os.path.join(tmp, "api.sock")
    srv = ServerThread(make_router(rec), rec)
    srv.call(srv.server.listen_unix(path))
    try:
        yield path
    finally:
        srv.stop()
        os.rmdir(tmp)


def chunked(data: bytes, size: int) -> bytes:
    out = b"".join(
        b"%x\r\n%s\r\n" % (len(data[i : i + size]), data[i : i + size]) for i in range(0, len(data), size)
    )
    return out + b"0\r\n\r\n"


def read_response(s: socket.socket, buf: bytes = b"") -> tuple[bytes, dict[str, str], bytes, bytes]:
    """(status line, headers, body, bytes after it) of one Content-Length response."""
    while b"\r\n\r\n" not in buf:
        data = s.recv(65536)
        assert data, buf
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    n = int(headers["content-length"])
    while len(rest) < n:
        data = s.recv(65536)
        assert data
        rest += data
    return lines[0], headers, rest[:n], rest[n:]


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_big_body_arrives_in_large_pieces_then_a_pipelined_request(sock_path: str, framing: str) -> None:
    data = os.urandom(5 * MiB)
    if framing == "chunked":
        req = b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(data, 32768)
    else:
        req = b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(data) + data
    s = unix_connect(sock_path)
    try:
        s.sendall(req + PING)
        line, _, body, rest = read_response(s)
        assert line == b"HTTP/1.1 200 OK"
        got = json.loads(body)
        assert got["size"] == 5 * MiB
        assert 1 <= got["chunks"] <= 5  # each piece but the last at least BODY_BATCH (1 MiB)
        line, _, body, rest = read_response(s, rest)
        assert (line, body, rest) == (b"HTTP/1.1 200 OK", b"OK", b"")
    finally:
        s.close()


def test_malformed_chunk_framing_is_400_and_closes(sock_path: str) -> None:
    s = unix_connect(sock_path)
    try:
        s.sendall(
            b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX" + PING
        )
        data = read_all(s)  # the server closes
    finally:
        s.close()
    assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"\r\nConnection: close\r\n" in data
    assert b"malformed chunk footer" in data
    assert data.count(b"HTTP/1.1") == 1


def test_100_continue_is_sent_when_the_handler_reads(sock_path: str) -> None:
    s = unix_connect(sock_path)
    try:
        s.sendall(
            b"POST /upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3000000\r\n\r\n"
        )
        line, _, _ = read_head(s)
        assert line == b"HTTP/1.1 100 Continue"
        s.sendall(b"z" * 3000000)
        line, headers, body, _ = read_response(s)
        assert line == b"HTTP/1.1 200 OK" and json.loads(body)["size"] == 3000000
        assert "connection" not in headers
        s.sendall(PING)
        assert read_response(s)[2] == b"OK"
    finally:
        s.close()


def test_100_continue_unread_body_answers_and_closes(sock_path: str) -> None:
    s = unix_connect(sock_path)
    try:
        s.sendall(b"POST /ignore HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n")
        data = read_all(s)
    finally:
        s.close()
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") and b"\r\nConnection: close\r\n" in data
    assert b"100 Continue" not in data


def test_small_unread_chunked_body_is_drained_and_the_connection_kept(sock_path: str, rec: Recorder) -> None:
    s = unix_connect(sock_path)
    try:
        s.sendall(
            b"POST /ignore HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + chunked(b"q" * 100_000, 4096)
            + PING
        )
        line, headers, body, rest = read_response(s)
        assert (line, body) == (b"HTTP/1.1 200 OK", b'{"ignored":true}\n') and "connection" not in headers
        assert read_response(s, rest)[2] == b"OK"
    finally:
        s.close()
    assert ("POST", "/ignore", 200) in rec.access  # logged before the next request was read


def test_client_gone_mid_body_gets_no_answer_and_the_server_goes_on(sock_path: str, rec: Recorder) -> None:
    s = unix_connect(sock_path)
    try:
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"a" * 5000)
        s.shutdown(socket.SHUT_WR)
        assert read_all(s) == b""
    finally:
        s.close()
    s = unix_connect(sock_path)
    try:
        s.sendall(PING)
        assert read_response(s)[2] == b"OK"
    finally:
        s.close()
    assert ("POST", "/upload", 200) not in rec.access
