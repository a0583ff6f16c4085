"""The ClusterStore protocol: typed, versioned cluster objects; view and update transactions; a resumable watch.

Modelled on swarmkit's `manager/state/store`: components never call each other, they read the store in a
`view`, change it in an `update` (all or nothing), and follow a `watch` of its changes. Every object carries
the store revision of its last write as its `version` (Docker's `Version.Index`); writing an object whose
version is not the stored one fails with swarmkit's "update out of sequence", which dockerd answers with
`rpc error: code = Unknown desc = update out of sequence` (500). The store's revision only grows, so a watcher
resumes after a restart from the last revision it handled.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal, Protocol, TypeVar

from gorae.errors import Conflict, NotFound, SystemError_, Unavailable

Action = Literal["create", "update", "delete"]
Kind = Literal["node", "service", "task", "cluster", "secret", "config", "network"]
KINDS: tuple[Kind, ...] = ("node", "service", "task", "cluster", "secret", "config", "network")

T = TypeVar("T")
Obj = TypeVar("Obj", bound="StoredObject")


class SequenceConflict(SystemError_):
    """swarmkit's ErrSequenceConflict as dockerd reports it."""

    def __init__(self) -> None:
        super().__init__("rpc error: code = Unknown desc = update out of sequence")


class NoLeader(Unavailable):
    """The store cannot reach a quorum of managers (dockerd's errNoLeader text, 503)."""

    def __init__(self) -> None:
        super().__init__(
            "rpc error: code = Unknown desc = The swarm does not have a leader. It's possible that too few "
            "managers are online. Make sure more than half of the managers are online."
        )


class ObjectExists(Conflict):
    """A create of an ID the store already holds."""


class ObjectMissing(NotFound):
    """An update or delete of an ID the store does not hold."""


@dataclass(frozen=True)
class StoredObject:
    """One cluster object: its ID, its Docker-shaped document (Spec and the rest) and its version.

    `version` is 0 for an object not yet stored; the store sets it to the revision of each write.
    """

    KIND: ClassVar[Kind]
    id: str
    doc: dict[str, Any] = field(default_factory=dict)
    version: int = 0

    @property
    def kind(self) -> Kind:
        return self.KIND

    def with_doc(self: Obj, doc: dict[str, Any]) -> Obj:
        return replace(self, doc=doc)


@dataclass(frozen=True)
class Node(StoredObject):
    KIND: ClassVar[Kind] = "node"


@dataclass(frozen=True)
class Service(StoredObject):
    KIND: ClassVar[Kind] = "service"


@dataclass(frozen=True)
class Task(StoredObject):
    KIND: ClassVar[Kind] = "task"


@dataclass(frozen=True)
class Cluster(StoredObject):
    KIND: ClassVar[Kind] = "cluster"


@dataclass(frozen=True)
class Secret(StoredObject):
    KIND: ClassVar[Kind] = "secret"


@dataclass(frozen=True)
class Config(StoredObject):
    KIND: ClassVar[Kind] = "config"


@dataclass(frozen=True)
class Network(StoredObject):
    """A swarm-scoped network (overlay): Docker's network inspect shape with Scope "swarm"; its address
    allocations and endpoints under `_gorae` (see gorae.swarm.networks)."""

    KIND: ClassVar[Kind] = "network"


TYPES: dict[Kind, type[StoredObject]] = {
    t.KIND: t for t in (Node, Service, Task, Cluster, Secret, Config, Network)
}


@dataclass(frozen=True)
class Change:
    """One write seen by a watcher: `action` is create, update or delete; `obj` is the object after the write
    (for a delete: as it was, with the deletion's revision as version); `revision` the store revision."""

    action: Action
    obj: StoredObject
    revision: int


class ReadTx(Protocol):
    """A consistent read of the store (one revision)."""

    async def get(self, cls: type[Obj], obj_id: str) -> Obj | None: ...

    async def find(self, cls: type[Obj]) -> list[Obj]: ...


class WriteTx(ReadTx, Protocol):
    """Reads and writes committed together at the end of `ClusterStore.update`, or not at all."""

    async def create(self, obj: StoredObject) -> None:
        """Add `obj` (ObjectExists if its ID is taken)."""

    async def update(self, obj: StoredObject) -> None:
        """Replace the stored object; `obj.version` must be the stored version (SequenceConflict)."""

    async def delete(self, cls: type[StoredObject], obj_id: str) -> None:
        """Remove it (ObjectMissing if absent)."""


class CheckedWrites(ABC):
    """WriteTx's create/update/delete with their checks (exists, missing, out of sequence), for a store's
    transaction that supplies `get` (seeing its own buffered writes) and `_buffer` (a write, None deletes)."""

    @abstractmethod
    async def get(self, cls: type[Obj], obj_id: str) -> Obj | None: ...

    @abstractmethod
    def _buffer(self, kind: Kind, obj_id: str, obj: StoredObject | None) -> None: ...

    async def create(self, obj: StoredObject) -> None:
        if await self.get(type(obj), obj.id) is not None:
            raise ObjectExists(f"{obj.kind} {obj.id} already exists")
        self._buffer(obj.kind, obj.id, obj)

    async def update(self, obj: StoredObject) -> None:
        current = await self.get(type(obj), obj.id)
        if current is None:
            raise ObjectMissing(f"{obj.kind} {obj.id} not found")
        if current.version != obj.version:
            raise SequenceConflict()
        self._buffer(obj.kind, obj.id, obj)

    async def delete(self, cls: type[StoredObject], obj_id: str) -> None:
        if await self.get(cls, obj_id) is None:
            raise ObjectMissing(f"{cls.KIND} {obj_id} not found")
        self._buffer(cls.KIND, obj_id, None)


class ClusterStore(Protocol):
    async def view(self, fn: Callable[[ReadTx], Awaitable[T]]) -> T:
        """Run `fn` over a consistent read."""

    async def update(self, fn: Callable[[WriteTx], Awaitable[T]]) -> T:
        """Run `fn` and commit its writes atomically. When another writer changed what `fn` read, `fn` runs
        again on the new state; errors `fn` raises (SequenceConflict, ObjectExists...) abort with nothing written."""

    async def revision(self) -> int:
        """The store's current revision (grows with every committed update)."""

    def watch(self, after: int = 0) -> AsyncIterator[Change]:
        """Every change with a revision greater than `after`, in order, then new ones as they commit."""

    async def close(self) -> None: ...
