"""The event bus: Docker's shape, strictly increasing times, and publishing from worker threads."""

from __future__ import annotations

import asyncio
import threading

from gorae.events import EventBus


def test_shape_and_order_from_the_loop_and_from_threads() -> None:
    async def scenario() -> list[dict]:
        bus = EventBus()
        sub = bus.subscribe()
        bus.publish("container", "create", "c1", {"image": "busybox"})
        # services publish from worker threads (asyncio.to_thread): never waiting for the loop
        await asyncio.to_thread(bus.publish, "image", "delete", "sha256:x")
        t = threading.Thread(target=lambda: [bus.publish("volume", "create", f"v{i}") for i in range(50)])
        t.start()
        await asyncio.to_thread(t.join)
        bus.publish("network", "create", "n1")
        assert bus.listener_count() == 1
        got = [await asyncio.wait_for(sub.queue.get(), 5) for _ in range(53)]
        sub.close()
        assert bus.listener_count() == 0
        return [e for e in got if e is not None]

    events = asyncio.run(scenario())
    assert [e["Actor"]["ID"] for e in events] == ["c1", "sha256:x", *[f"v{i}" for i in range(50)], "n1"]
    nanos = [e["timeNano"] for e in events]
    assert nanos == sorted(nanos) and len(set(nanos)) == len(nanos)
    first = events[0]
    assert first["status"] == "create" and first["id"] == "c1" and first["from"] == "busybox"
    assert first["time"] == first["timeNano"] // 1_000_000_000 and first["scope"] == "local"
    assert "status" not in events[-1]  # legacy keys only for containers and images


def test_publishing_after_the_loop_is_gone_does_not_fail() -> None:
    bus = EventBus()

    async def listen() -> None:
        bus.subscribe()

    asyncio.run(listen())
    assert bus.publish("image", "tag", "sha256:y")["Action"] == "tag"
