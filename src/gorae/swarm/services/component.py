"""The loop every leader-only services component runs (swarmkit's design: watch the store, reconcile).

A `Reconciler` runs `reconcile(tx, now)` in one store update transaction whenever the store changes (its
own writes included: a pass that finds nothing to do writes nothing, so the loop settles), or when the time
the last pass asked to be woken at comes (restart delays, update delays and monitors). A pass that fails is
logged and retried a second later. Components never call each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from gorae.errors import GoraeError
from gorae.swarm.component import NodeContext
from gorae.swarm.store.types import ClusterStore, WriteTx

log = logging.getLogger("gorae.swarm.services")


class Reconciler:
    def __init__(self, clock: Callable[[], int] = time.time_ns) -> None:
        self.clock = clock
        self._tasks: list[asyncio.Task[None]] = []
        self._changed = asyncio.Event()
        self._stopping = False

    async def reconcile(self, tx: WriteTx, now: int) -> int | None:
        """One pass; answers the time (ns, the clock's) to run again at even without a change."""
        raise NotImplementedError

    async def run_once(self, store: ClusterStore) -> int | None:
        async def work(tx: WriteTx) -> int | None:
            return await self.reconcile(tx, self.clock())

        return await store.update(work)

    async def start(self, node: NodeContext) -> None:
        store = node.store
        if store is None:
            return
        self._changed = asyncio.Event()
        self._stopping = False
        revision = await store.revision()
        self._tasks = [
            asyncio.ensure_future(self._follow(store, revision)),
            asyncio.ensure_future(self._loop(store)),
        ]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        self._stopping = True
        for task in tasks:
            task.cancel()
        if tasks:  # a store client that swallows the cancellation must not hold up `swarm leave`
            _, stuck = await asyncio.wait(tasks, timeout=5)
            if stuck:
                log.warning("%s: %d of its tasks did not stop", type(self).__name__, len(stuck))

    async def _follow(self, store: ClusterStore, revision: int) -> None:
        while not self._stopping:
            try:
                async for change in store.watch(after=revision):
                    revision = change.revision
                    self._changed.set()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the store restarted: follow again from where we were
                current = asyncio.current_task()
                if self._stopping or (current is not None and current.cancelling()):
                    raise asyncio.CancelledError() from e
                log.warning("%s: watch ended (%s); following again", type(self).__name__, e)
                await asyncio.sleep(1)

    async def _loop(self, store: ClusterStore) -> None:
        while not self._stopping:
            self._changed.clear()
            try:
                wake = await self.run_once(store)
            except asyncio.CancelledError:
                raise
            except GoraeError as e:  # the store unavailable, or a write lost to others too often
                log.warning("%s pass: %s", type(self).__name__, e.message)
                wake = self.clock() + 1_000_000_000
            except Exception:
                log.exception("%s pass failed", type(self).__name__)
                wake = self.clock() + 1_000_000_000
            timeout = None if wake is None else max((wake - self.clock()) / 1e9, 0.0)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)
