"""The API server's limits (security review F9): a slow request head and an idle connection are closed after
their timeouts, and at the connection cap the longest-idle connection makes room, so a flood of idle
connections never stops a new client from being answered."""

from __future__ import annotations

import os
import socket
import tempfile
import time
from collections.abc import Iterator

import pytest
from test_api_server_harness import Recorder, ServerThread, make_router, read_all, read_head, unix_connect

PING = b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture
def server() -> Iterator[tuple[ServerThread, str]]:
    tmp = tempfile.mkdtemp(prefix="gorae-api-")
    path = os.path.join(tmp, "api.sock")
    srv = ServerThread(make_router(Recorder()))
    srv.server.header_timeout = 0.5
    srv.server.idle_timeout = 1.0
    srv.server.max_connections = 20
    srv.call(srv.server.listen_unix(path))
    try:
        yield srv, path
    finally:
        srv.stop()
        os.rmdir(tmp)


def _closed_within(s: socket.socket, seconds: float) -> float:
    """Seconds until the server closed `s` (EOF); fails after `seconds`."""
    s.settimeout(seconds)
    start = time.monotonic()
    assert s.recv(100) == b""
    return time.monotonic() - start


def test_a_slow_request_head_is_cut_off(server: tuple[ServerThread, str]) -> None:
    _, path = server
    with unix_connect(path) as s:
        s.sendall(b"GET /_ping HTTP/1.1\r\nHo")  # and never the rest
        assert _closed_within(s, 5) < 3


def test_an_idle_connection_is_closed_after_the_idle_timeout(server: tuple[ServerThread, str]) -> None:
    _, path = server
    with unix_connect(path) as s:
        s.sendall(PING)
        status, _, _ = read_head(s)
        assert status == b"HTTP/1.1 200 OK"
        assert 0.5 < _closed_within(s, 5) < 4
    with unix_connect(path) as s:  # never sent anything
        assert 0.5 < _closed_within(s, 5) < 4


def test_a_streaming_response_outlives_the_idle_timeout(server: tuple[ServerThread, str]) -> None:
    """`/stream?n=4&delay=0.8` takes 2.4 s, longer than the idle timeout: a response in progress is not idle."""
    _, path = server
    with unix_connect(path) as s:
        s.sendall(b"GET /stream?n=4&delay=0.8 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        status, _, rest = read_head(s)
        assert status == b"HTTP/1.1 200 OK"
        body = rest + read_all(s)
        assert body.count(b'{"n":') == 4 and b'{"n":3}' in body


def test_at_the_cap_idle_connections_make_room_for_a_new_client(server: tuple[ServerThread, str]) -> None:
    srv, path = server
    idle = [unix_connect(path) for _ in range(60)]  # three times the cap
    try:
        with unix_connect(path) as s:
            s.sendall(PING)
            status, _, _ = read_head(s)
            assert status == b"HTTP/1.1 200 OK"
        assert srv.server.connection_count <= 20
        closed = 0
        for c in idle:
            c.settimeout(2)
            try:
                if c.recv(1) == b"":
                    closed += 1
            except TimeoutError:
                pass
        assert closed >= 60 - 20
    finally:
        for c in idle:
            c.close()
