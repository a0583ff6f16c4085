"""`Request.stream_pieces` over `httpserver.bodyreader.DirectBody`: the body read straight into the server's
buffers (no StreamReader), on the standard loop and on uvloop (the daemon's): every byte arrives, in order,
as views (nothing copied), whatever the framing and however the client's writes are cut; what follows the
body (a pipelined request) is answered; a slow handler pauses the client and loses nothing; a client gone
mid-body or bad chunk framing end the request as through the StreamReader."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import tempfile
import threading
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest
import uvloop
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_api_server_harness import read_all, unix_connect
from test_httpserver_body import PING, chunked, read_response

from gorae.api.http import Request, Response, json_response
from gorae.api.router import Router
from gorae.api.server import ApiServer

MiB = 1024 * 1024


def make_router(access: list[tuple[str, int]]) -> Router:
    routes = Router()

    async def pieces(req: Request) -> Response:
        h = hashlib.sha256()
        size = batches = views = 0
        slow = req.qbool("slow")
        async for batch in req.stream_pieces():
            batches += 1
            for p in batch:
                h.update(p)
                size += len(p)
                views += isinstance(p, memoryview)
            if slow:  # a handler slower than the client: the server must hold the client off, not buffer
                await asyncio.sleep(0.05)
        return json_response({"size": size, "sha256": h.hexdigest(), "batches": batches, "views": views})

    async def ping(req: Request) -> Response:
        return Response(status=200, body=b"OK", headers=[("Content-Type", "text/plain")])

    routes.add("POST", "/pieces", pieces)
    routes.add("GET", "/_ping", ping)
    return routes


class Server:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.access: list[tuple[str, int]] = []
        self.server = ApiServer(
            make_router(self.access), on_request=lambda req, status, s: self.access.append((req.path, status))
        )
        self.thread = threading.Thread(target=loop.run_forever, daemon=True)
        self.thread.start()
        self.tmp = tempfile.mkdtemp(prefix="gorae-pieces-")
        self.path = os.path.join(self.tmp, "api.sock")
        self.call(self.server.listen_unix(self.path))

    def call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def stop(self) -> None:
        try:
            self.call(self.server.close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()
            os.rmdir(self.tmp)


@pytest.fixture(scope="module", params=["asyncio", "uvloop"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    loop = uvloop.new_event_loop() if request.param == "uvloop" else asyncio.new_event_loop()
    srv = Server(loop)
    try:
        yield srv
    finally:
        srv.stop()


def head(framing: str, size: int, target: str = "/pieces") -> bytes:
    if framing == "chunked":
        return b"POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" % target.encode()
    return b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (target.encode(), size)


def framed(framing: str, data: bytes, chunk: int) -> bytes:
    return chunked(data, chunk) if framing == "chunked" else data


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_a_big_body_arrives_whole_as_views_then_a_pipelined_request(server: Server, framing: str) -> None:
    data = os.urandom(5 * MiB + 123)
    s = unix_connect(server.path)
    try:
        s.sendall(head(framing, len(data)) + framed(framing, data, 32768) + PING)
        line, _, body, rest = read_response(s)
        assert line == b"HTTP/1.1 200 OK"
        got = json.loads(body)
        assert (got["size"], got["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
        assert 1 <= got["batches"] <= 6  # ~1 MiB batches
        assert got["views"] >= 1  # read into the server's buffers: handed over as views, not copied
        line, _, body, rest = read_response(s, rest)
        assert (line, body, rest) == (b"HTTP/1.1 200 OK", b"OK", b"")
    finally:
        s.close()


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_a_slow_handler_holds_the_client_off_and_loses_nothing(server: Server, framing: str) -> None:
    data = os.urandom(9 * MiB)  # more than the 4 MiB held unread before reading pauses
    s = unix_connect(server.path)
    try:
        s.sendall(head(framing, len(data), "/pieces?slow=1") + framed(framing, data, 65536) + PING)
        line, _, body, rest = read_response(s)
        got = json.loads(body)
        assert (got["size"], got["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
        assert read_response(s, rest)[2] == b"OK"
    finally:
        s.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.binary(max_size=200_000),
    framing=st.sampled_from(["chunked", "content-length"]),
    chunk=st.integers(1, 70_000),
    cuts=st.lists(st.integers(0, 300_000), max_size=12),
)
def test_any_body_in_any_writes_arrives_exactly(
    server: Server, data: bytes, framing: str, chunk: int, cuts: list[int]
) -> None:
    wire = head(framing, len(data)) + framed(framing, data, chunk) + PING
    s = unix_connect(server.path)
    try:
        pos = 0
        for c in sorted(set(cuts)) + [len(wire)]:
            if c > pos:
                s.sendall(wire[pos:c])
                pos = c
        line, _, body, rest = read_response(s)
        assert line == b"HTTP/1.1 200 OK", body
        got = json.loads(body)
        assert (got["size"], got["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
        assert read_response(s, rest)[2] == b"OK"
    finally:
        s.close()


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_a_client_gone_mid_body_gets_no_answer_and_the_server_goes_on(server: Server, framing: str) -> None:
    data = os.urandom(3 * MiB)
    wire = head(framing, 2 * len(data)) + framed(framing, data, 32768)
    if framing == "chunked":
        wire = wire[: -len(b"0\r\n\r\n")]  # the body does not end
    seen = len(server.access)
    s = unix_connect(server.path)
    try:
        s.sendall(wire)
        s.shutdown(socket.SHUT_WR)
        assert read_all(s) == b""
    finally:
        s.close()
    s = unix_connect(server.path)
    try:
        s.sendall(PING)
        assert read_response(s)[2] == b"OK"
    finally:
        s.close()
    assert ("/pieces", 200) not in server.access[seen:]  # the cut-short upload was never answered


def test_bad_chunk_framing_mid_body_is_400_and_closes(server: Server) -> None:
    good = chunked(os.urandom(2 * MiB), 32768)[: -len(b"0\r\n\r\n")]
    s = unix_connect(server.path)
    try:
        s.sendall(head("chunked", 0) + good + b"zz\r\nxx\r\n0\r\n\r\n")
        reply = read_all(s)
        assert reply.startswith(b"HTTP/1.1 400 "), reply[:200]
        assert b"illegal chunk header" in reply
    finally:
        s.close()
