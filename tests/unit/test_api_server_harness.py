"""Test harness for the API server tests: a server on its own event loop thread and a small route table.

No tests here; `test_api_server*.py` import `ServerThread`, `make_router` and the raw-socket helpers.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from gorae.api.http import (
    MULTIPLEXED_STREAM,
    Request,
    Response,
    StreamResponse,
    empty_response,
    json_response,
    raw_response,
)
from gorae.api.router import Router
from gorae.api.server import ApiServer
from gorae.errors import NotFound, NotModified


class Recorder:
    """What the test routes observed, shared with the test thread."""

    def __init__(self) -> None:
        self.produced: list[float] = []
        self.stream_closed = threading.Event()
        self.hijack_done = threading.Event()
        self.access: list[tuple[str, str, int]] = []


def make_router(rec: Recorder) -> Router:
    routes = Router()

    async def ping(req: Request) -> Response:
        return raw_response(b"OK", "text/plain; charset=utf-8", headers=[("Cache-Control", "no-cache")])

    async def version(req: Request) -> Response:
        return json_response(
            {
                "Version": "0.1.0",
                "ApiVersion": "1.45",
                "MinAPIVersion": "1.24",
                "Os": "linux",
                "Arch": "amd64",
                "GoVersion": "python",
                "GitCommit": "test",
                "KernelVersion": "6",
                "BuildTime": "2024-01-01T00:00:00.000000000+00:00",
                "Components": [{"Name": "Engine", "Version": "0.1.0", "Details": {"ApiVersion": "1.45"}}],
                "Platform": {"Name": "gorae"},
            }
        )

    async def echo(req: Request) -> Response:
        return json_response(
            {
                "method": req.method,
                "path": req.path,
                "params": req.params,
                "query": req.query,
                "version": req.version,
                "body": await req.json(),
                "all": req.qbool("all"),
                "filters": req.qfilters(),
            }
        )

    async def upload(req: Request) -> Response:
        size = 0
        chunks = 0
        async for chunk in req.stream():
            size += len(chunk)
            chunks += 1
        return json_response({"size": size, "chunks": chunks})

    async def ignore(req: Request) -> Response:
        return json_response({"ignored": True})

    async def stream(req: Request) -> Response:
        count = req.qint("n", 3) or 3
        delay = float(req.q("delay", "0.3") or 0.3)

        async def gen() -> AsyncIterator[bytes]:
            try:
                for i in range(count):
                    if i:
                        await asyncio.sleep(delay)
                    rec.produced.append(time.monotonic())
                    yield b'{"n":%d}\n' % i
            finally:
                rec.stream_closed.set()

        return StreamResponse(gen())

    async def forever(req: Request) -> Response:
        async def gen() -> AsyncIterator[bytes]:
            try:
                yield b'{"status":"started"}\n'
                while True:
                    await asyncio.sleep(3600)
                    yield b"{}\n"
            finally:
                rec.stream_closed.set()

        return StreamResponse(gen())

    async def hijack_echo(req: Request) -> Response | None:
        body = await req.json() if req.path.startswith("/exec/") else None
        h = await req.hijack(MULTIPLEXED_STREAM)
        try:
            while True:
                data = await h.read(4096)
                if not data:
                    break
                await h.write(frame(1, data))
            if body is not None:
                # after stdin's EOF: docker-py loses bytes that arrive together with the 101 head
                await h.write(frame(2, b"body:" + str(sorted(body)).encode()))
            await h.write(frame(1, b"bye"))
        finally:
            rec.hijack_done.set()
        return None

    async def boom(req: Request) -> Response:
        raise RuntimeError("kaboom")

    async def missing(req: Request) -> Response:
        if req.params["id"] == "c1":
            return json_response({"Id": "c1", "State": {"Running": True}, "Config": {"Tty": False}})
        raise NotFound("No such container: " + req.params["id"])

    async def notmod(req: Request) -> Response:
        raise NotModified("container already started")

    async def image(req: Request) -> Response:
        return json_response({"name": req.params["name"]})

    async def exec_create(req: Request) -> Response:
        await req.json()
        return json_response({"Id": "e1"}, status=201)

    async def exec_inspect(req: Request) -> Response:
        return json_response({"ID": req.params["id"], "Running": False, "ExitCode": 0, "Pid": 0})

    async def nothing(req: Request) -> Response:
        return empty_response(204)

    routes.add("GET", "/_ping", ping)
    routes.add("HEAD", "/_ping", ping)
    routes.add("GET", "/version", version)
    routes.add("POST", "/echo", echo)
    routes.add("GET", "/echo", echo)
    routes.add("POST", "/upload", upload)
    routes.add("POST", "/ignore", ignore)
    routes.add("GET", "/stream", stream)
    routes.add("GET", "/forever", forever)
    routes.add("POST", "/containers/{id}/attach", hijack_echo)
    routes.add("POST", "/exec/{id}/start", hijack_echo)
    routes.add("GET", "/boom", boom)
    routes.add("GET", "/containers/{id}/json", missing)
    routes.add("POST", "/containers/{id}/start", notmod)
    routes.add("GET", "/images/{name:.+}/json", image)
    routes.add("DELETE", "/images/{name:.+}", image)
    routes.add("POST", "/nothing", nothing)
    routes.add("POST", "/containers/{id}/exec", exec_create)
    routes.add("GET", "/exec/{id}/json", exec_inspect)
    return routes


def frame(stream: int, data: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(data)) + data


def parse_frames(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    while data:
        stream, size = struct.unpack(">BxxxL", data[:8])
        out.append((stream, data[8 : 8 + size]))
        data = data[8 + size :]
    return out


class ServerThread:
    """An ApiServer on a private event loop in a daemon thread."""

    def __init__(self, router: Router, rec: Recorder | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.rec = rec

        def hook(req: Request, status: int, seconds: float) -> None:
            if rec is not None:
                rec.access.append((req.method, req.path, status))

        self.server = ApiServer(router, on_request=hook)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        try:
            self.call(self.server.close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


def unix_connect(path: str, timeout: float = 10) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


def read_head(s: socket.socket) -> tuple[bytes, dict[str, str], bytes]:
    """(status line, headers lowercased, bytes read past the head)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = s.recv(65536)
        if not data:
            raise EOFError(f"closed before the end of the head: {buf!r}")
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers, rest


def read_all(s: socket.socket) -> bytes:
    out = b""
    while True:
        data = s.recv(65536)
        if not data:
            return out
        out += data
