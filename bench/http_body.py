"""HTTP request-body micro-benchmark: POST a large body (chunked, and with Content-Length) over a unix socket
to a real `ApiServer` whose handler drains it (`req.stream()`, and through `AsyncToSyncReader` into a thread
as `docker load` does). Prints MiB/s per mode (median of --runs).

    python bench/http_body.py [--mib 50] [--chunk 32768] [--runs 5]

The client is a child process (its own GIL) sending the body pre-encoded as the docker CLI frames it
(`--chunk`-sized chunks, ~32 KiB for the CLI) in 1 MiB writes; the wall time runs from the first byte sent
to the answer, and the server's CPU seconds per request (this process, every thread) are printed beside it:
on a shared machine the CPU figure is the steadier one. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import socket
import statistics
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from typing import cast

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "src"))

from gorae.api.http import Request, Response, json_response  # noqa: E402
from gorae.api.router import Router  # noqa: E402
from gorae.api.server import ApiServer  # noqa: E402
from gorae.api.streams import AsyncToSyncReader  # noqa: E402


def make_router() -> Router:
    routes = Router()

    async def drain(req: Request) -> Response:
        n = 0
        async for chunk in req.stream():
            n += len(chunk)
        return json_response({"n": n})

    async def drain_pieces(req: Request) -> Response:
        n = 0
        async for pieces in req.stream_pieces():
            n += sum(len(p) for p in pieces)
        return json_response({"n": n})

    async def drain_thread(req: Request) -> Response:
        reader = AsyncToSyncReader(req.stream(), asyncio.get_running_loop())
        feeder = asyncio.ensure_future(reader.pump())

        def work() -> int:
            n = 0
            while True:
                data = reader.read(1 << 20)
                if not data:
                    return n
                n += len(data)

        n = await asyncio.to_thread(work)
        await feeder
        return json_response({"n": n})

    routes.add("POST", "/drain", drain)
    routes.add("POST", "/drain-pieces", drain_pieces)
    routes.add("POST", "/drain-thread", drain_thread)
    return routes


def encode(payload: bytes, chunk: int, chunked: bool) -> tuple[bytes, bytes]:
    """(head, body) as they go on the wire."""
    if not chunked:
        return b"Content-Length: %d\r\n\r\n" % len(payload), payload
    view = memoryview(payload)
    body = b"".join(
        b"%x\r\n" % len(view[i : i + chunk]) + view[i : i + chunk] + b"\r\n"
        for i in range(0, len(view), chunk)
    )
    return b"Transfer-Encoding: chunked\r\n\r\n", body + b"0\r\n\r\n"


def client(path: str, target: str, head: bytes, body: bytes, size: int, runs: int, out: Connection) -> None:
    """In a child process (its own GIL): send the request `runs` times, report the wall times."""
    times = []
    for _ in range(runs):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        view = memoryview(body)
        t = time.perf_counter()
        s.sendall(f"POST {target} HTTP/1.1\r\nHost: d\r\n".encode() + head)
        for i in range(0, len(view), 1 << 20):
            s.sendall(view[i : i + (1 << 20)])
        buf = b""
        while b"}" not in buf:
            data = s.recv(65536)
            if not data:
                break
            buf += data
        times.append(time.perf_counter() - t)
        s.close()
        assert f'{{"n":{size}}}'.encode() in buf, buf[-200:]
    out.send(times)


def measure(
    path: str, target: str, payload: bytes, chunk: int, chunked: bool, runs: int
) -> tuple[float, float]:
    """(median wall seconds, server CPU seconds per request)."""
    head, body = encode(payload, chunk, chunked)
    ctx = multiprocessing.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    child = ctx.Process(target=client, args=(path, target, head, body, len(payload), runs, send))
    child.start()
    times = recv.recv()
    child.join()
    used = resource.getrusage(resource.RUSAGE_SELF)
    seconds = (used.ru_utime - cpu.ru_utime) + (used.ru_stime - cpu.ru_stime)
    return statistics.median(times), seconds / runs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=50)
    ap.add_argument("--chunk", type=int, default=32768)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    payload = os.urandom(args.mib << 20)
    loop = asyncio.new_event_loop()
    try:
        import uvloop

        loop = cast(asyncio.AbstractEventLoop, uvloop.new_event_loop())
    except ImportError:
        pass
    server = ApiServer(make_router())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    with tempfile.TemporaryDirectory() as tmp:
        sock = os.path.join(tmp, "api.sock")
        asyncio.run_coroutine_threadsafe(server.listen_unix(sock), loop).result(10)
        try:
            for target in ("/drain", "/drain-pieces", "/drain-thread"):
                for chunked in (True, False):
                    med, cpu = measure(sock, target, payload, args.chunk, chunked, args.runs)
                    mode = f"chunked/{args.chunk // 1024}KiB" if chunked else "content-length"
                    print(
                        f"{target:14} {mode:18} {med:6.3f} s  {args.mib / med:8.1f} MiB/s"
                        f"  server CPU {cpu:6.3f} s ({args.mib / cpu:7.1f} MiB per CPU-s)"
                    )
        finally:
            asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)


if __name__ == "__main__":
    main()
