"""An in-memory ClusterStore for unit tests of components (one process, no etcd); passes the same
conformance suite as the etcd store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from gorae.swarm.store.types import (
    Action,
    Change,
    CheckedWrites,
    Kind,
    ReadTx,
    StoredObject,
    WriteTx,
)

T = TypeVar("T")
Obj = TypeVar("Obj", bound=StoredObject)


class _Tx(CheckedWrites):
    def __init__(self, data: dict[tuple[Kind, str], StoredObject]) -> None:
        self.data = data
        self.writes: dict[tuple[Kind, str], StoredObject | None] = {}

    async def get(self, cls: type[Obj], obj_id: str) -> Obj | None:
        key = (cls.KIND, obj_id)
        obj = self.writes[key] if key in self.writes else self.data.get(key)
        return obj if isinstance(obj, cls) else None

    async def find(self, cls: type[Obj]) -> list[Obj]:
        keys = {k for k in self.data if k[0] == cls.KIND} | {k for k in self.writes if k[0] == cls.KIND}
        found = [await self.get(cls, k[1]) for k in sorted(keys)]
        return [o for o in found if o is not None]

    def _buffer(self, kind: Kind, obj_id: str, obj: StoredObject | None) -> None:
        self.writes[(kind, obj_id)] = obj


class MemoryStore:
    def __init__(self) -> None:
        self._data: dict[tuple[Kind, str], StoredObject] = {}
        self._rev = 0
        self._log: list[Change] = []
        self._lock = asyncio.Lock()
        self._changed = asyncio.Condition()

    async def view(self, fn: Callable[[ReadTx], Awaitable[T]]) -> T:
        return await fn(_Tx(dict(self._data)))

    async def update(self, fn: Callable[[WriteTx], Awaitable[T]]) -> T:
        async with self._lock:
            tx = _Tx(self._data)
            result = await fn(tx)
            if tx.writes:
                self._rev += 1
                for key, obj in tx.writes.items():
                    if obj is None:
                        gone = self._data.pop(key)
                        self._log.append(
                            Change("delete", type(gone)(gone.id, gone.doc, self._rev), self._rev)
                        )
                    else:
                        action: Action = "update" if key in self._data else "create"
                        stored = type(obj)(obj.id, obj.doc, self._rev)
                        self._data[key] = stored
                        self._log.append(Change(action, stored, self._rev))
                async with self._changed:
                    self._changed.notify_all()
            return result

    async def revision(self) -> int:
        return self._rev

    async def watch(self, after: int = 0) -> AsyncIterator[Change]:
        seen = 0
        while True:
            while seen < len(self._log):
                change = self._log[seen]
                seen += 1
                if change.revision > after:
                    yield change
            async with self._changed:
                await self._changed.wait_for(lambda upto=seen: upto < len(self._log))  # type: ignore[misc]

    async def close(self) -> None:
        return None
