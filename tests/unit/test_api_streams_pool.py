"""The stream bridges never park a pool thread on the loop's side: with every default-executor thread busy
(here: 2), concurrent response streams and request bodies still flow. Before, each stream's consumer took a
pool thread (`to_thread(queue.get)`) while its producer waited for one: a few overlapping `docker cp` out of
a container wedged every `to_thread` in the daemon (issue 15, the review's overlapping-cp failures)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from gorae.api.streams import AsyncToSyncReader, SyncToAsyncWriter


def _run(coro_factory) -> object:  # type: ignore[no-untyped-def]
    async def main() -> object:
        loop = asyncio.get_running_loop()
        pool = ThreadPoolExecutor(2)
        loop.set_default_executor(pool)
        try:
            return await asyncio.wait_for(coro_factory(), 20)
        finally:  # a wedged pool (the old bug) must not also hang asyncio.run's executor shutdown
            pool.shutdown(wait=False, cancel_futures=True)
            loop.set_default_executor(ThreadPoolExecutor(1))

    return asyncio.run(main())


def test_many_response_streams_share_a_small_pool() -> None:
    async def one(i: int) -> bytes:
        w = SyncToAsyncWriter(depth=2, chunk_size=10)

        async def consume() -> bytes:
            return b"".join([c async for c in w.chunks()])

        consumer = asyncio.ensure_future(consume())
        await asyncio.sleep(0.01)  # the consumers wait first, as a response does

        def work() -> None:
            try:
                for _ in range(100):
                    w.write(bytes([65 + i]) * 10)
            finally:
                w.close()

        await asyncio.to_thread(work)
        return await consumer

    async def all_of_them() -> list[bytes]:
        return list(await asyncio.gather(*(one(i) for i in range(6))))

    out = _run(all_of_them)
    assert out == [bytes([65 + i]) * 1000 for i in range(6)]


def test_many_request_bodies_share_a_small_pool() -> None:
    async def one(i: int) -> bytes:
        async def body() -> AsyncIterator[bytes]:
            for _ in range(100):
                yield bytes([65 + i]) * 10

        r = AsyncToSyncReader(body(), asyncio.get_running_loop(), depth=2)
        pump = asyncio.ensure_future(r.pump())
        await asyncio.sleep(0.01)  # the pumps fill their queues first
        data = await asyncio.to_thread(r.read)
        await pump
        return data

    async def all_of_them() -> list[bytes]:
        return list(await asyncio.gather(*(one(i) for i in range(6))))

    assert _run(all_of_them) == [bytes([65 + i]) * 1000 for i in range(6)]
