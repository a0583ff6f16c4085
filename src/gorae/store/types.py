"""The content store's interfaces, split as containerd's core/content/content.go splits them (a leaf).

A consumer takes the smallest one it needs: a reader of blobs (`Provider`), facts about blobs
(`InfoProvider`), a writer of blobs by ingest reference (`Ingester`, its `Writer` and `Status`), or
deletion (`Deleter`). `ContentStore` (content.py) implements all of them; `testsuite.py` checks any
implementation against the same cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, Protocol


@dataclass(frozen=True)
class Info:
    """A committed blob."""

    digest: str
    size: int
    created_at: float  # seconds since the epoch


@dataclass(frozen=True)
class Status:
    """An ingest in progress: how far it got (`offset`), how much is announced (`total`, 0 = unknown) and
    the digest it must have (`expected`, "" = unknown)."""

    ref: str
    offset: int
    total: int
    expected: str
    started_at: float
    updated_at: float


class Provider(Protocol):
    """Reads committed blobs."""

    def open(self, digest: str) -> BinaryIO: ...
    def read_bytes(self, digest: str) -> bytes: ...
    def size(self, digest: str) -> int: ...


class InfoProvider(Protocol):
    def exists(self, digest: str) -> bool: ...
    def info(self, digest: str) -> Info: ...
    def list(self) -> list[str]: ...


class Writer(Protocol):
    """One ingest, held exclusively while open. `commit` verifies the size and digest and moves the data
    into place; `close` releases the ingest and keeps it for a later `writer(ref)` to resume; `abort`
    deletes it."""

    @property
    def ref(self) -> str: ...
    def write(self, data: bytes) -> int: ...
    def status(self) -> Status: ...
    def digest(self) -> str: ...
    def commit(self, size: int = 0, expected: str = "") -> str: ...
    def abort(self) -> None: ...
    def close(self) -> None: ...


class Ingester(Protocol):
    """Writes blobs by ingest reference (a caller-chosen name, e.g. a layer's digest during a pull)."""

    def writer(self, ref: str, total: int = 0, expected: str = "") -> Writer: ...
    def ingest(
        self, stream: BinaryIO, expected: str | None = None, size: int | None = None
    ) -> tuple[str, int]: ...
    def status(self, ref: str) -> Status: ...
    def list_statuses(self) -> list[Status]: ...
    def abort(self, ref: str) -> None: ...


class Deleter(Protocol):
    def delete(self, digest: str) -> None: ...


class Store(Provider, InfoProvider, Ingester, Deleter, Protocol):
    """All of the above: what `ContentStore` is."""
