"""The event bus (a leaf): Docker's `/events` stream, published by the services and kept in the metadata store.

An event is Docker's shape: `Type`, `Action`, `Actor{ID, Attributes}`, `scope`, `time`, `timeNano`, plus the
legacy `status`/`id`/`from` keys for containers and images that old clients read. Subscribers get an
asyncio queue each; a slow subscriber loses nothing until its queue holds 10 000 events, then it is dropped.

`publish` may be called from any thread (services do blocking work in worker threads): the event is numbered
and stored at once, and handed to the subscribers on the event loop they listen on, in publishing order,
without the publisher ever waiting for the loop.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol


class EventLog(Protocol):
    def add_event(self, ev: dict[str, Any]) -> None: ...
    def events_since(self, since_nano: int, until_nano: int | None) -> list[dict[str, Any]]: ...


class Subscription:
    """One `/events` listener. Iterate it; `close()` ends the iteration."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=10_000)

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            ev = await self.queue.get()
            if ev is None:
                return
            yield ev

    def close(self) -> None:
        self._bus._subs.discard(self)
        try:
            self.queue.put_nowait(None)
        except asyncio.QueueFull:
            pass


class EventBus:
    def __init__(self, log: EventLog | None = None) -> None:
        self._log = log
        self._subs: set[Subscription] = set()
        self._last_nano = 0
        self._clock = threading.Lock()  # timeNano strictly increasing across threads
        self._loop: asyncio.AbstractEventLoop | None = None  # where the subscribers' queues live
        # called with each event as it is published (the metrics count events); must not raise or block
        self.observers: list[Callable[[dict[str, Any]], None]] = []

    def publish(
        self,
        type_: str,
        action: str,
        actor_id: str,
        attributes: dict[str, str] | None = None,
        *,
        scope: str = "local",
    ) -> dict[str, Any]:
        with self._clock:
            now = time.time_ns()
            if now <= self._last_nano:  # keep timeNano strictly increasing so `since` is exact
                now = self._last_nano + 1
            self._last_nano = now
        ev: dict[str, Any] = {
            "Type": type_,
            "Action": action,
            "Actor": {"ID": actor_id, "Attributes": dict(attributes or {})},
            "scope": scope,
            "time": now // 1_000_000_000,
            "timeNano": now,
        }
        if type_ in ("container", "image"):
            ev["status"] = action
            ev["id"] = actor_id
            if type_ == "container" and attributes and "image" in attributes:
                ev["from"] = attributes["image"]
        if self._log is not None:
            try:
                self._log.add_event(ev)
            except Exception:  # an event that cannot be stored must not break the action that caused it
                pass
        for observe in self.observers:
            try:
                observe(ev)
            except Exception:
                pass
        self._deliver(ev)
        return ev

    def _deliver(self, ev: dict[str, Any]) -> None:
        loop = self._loop
        if not self._subs:
            return
        if loop is None:  # subscribed outside any loop: one thread, deliver at once
            self._fan_out(ev)
            return
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            self._fan_out(ev)
            return
        try:
            loop.call_soon_threadsafe(self._fan_out, ev)
        except RuntimeError:
            pass  # the loop is closed: nobody is listening any more

    def _fan_out(self, ev: dict[str, Any]) -> None:
        for sub in list(self._subs):
            try:
                sub.queue.put_nowait(ev)
            except asyncio.QueueFull:
                sub.close()

    def subscribe(self) -> Subscription:
        """A new listener, on the running event loop (if any)."""
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            pass
        sub = Subscription(self)
        self._subs.add(sub)
        return sub

    def listener_count(self) -> int:
        return len(self._subs)

    def history(self, since_nano: int, until_nano: int | None) -> list[dict[str, Any]]:
        if self._log is None:
            return []
        return self._log.events_since(since_nano, until_nano)


class Publisher(Protocol):
    """What a service needs to publish an event: `EventBus.publish`'s signature. Services take one of these
    (never the bus or the daemon), so the service packages stay below the composition root."""

    def __call__(
        self,
        type_: str,
        action: str,
        actor_id: str,
        attributes: dict[str, str] | None = None,
        *,
        scope: str = "local",
    ) -> dict[str, Any]: ...
