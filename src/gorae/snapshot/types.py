"""The snapshotter interface: mount specs, snapshot records and the `Snapshotter` protocol."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


@dataclass
class Mount:
    """One mount(2) call: `type` ("overlay", "bind"), `source`, and fstab-style `options`."""

    type: str
    source: str
    options: list[str] = field(default_factory=list)


class Kind(StrEnum):
    ACTIVE = "active"  # writable, from prepare()
    VIEW = "view"  # read-only, from view()
    COMMITTED = "committed"  # immutable, a parent for others


@dataclass
class SnapshotInfo:
    name: str
    parent: str | None
    kind: Kind
    created: int  # unix nanoseconds


class Snapshotter(Protocol):
    def prepare(self, key: str, parent: str | None) -> list[Mount]: ...
    def view(self, key: str, parent: str | None) -> list[Mount]: ...
    def commit(self, name: str, key: str) -> None: ...
    def mounts(self, key: str) -> list[Mount]: ...
    def remove(self, key: str) -> None: ...
    def stat(self, key: str) -> SnapshotInfo: ...
    def exists(self, key: str) -> bool: ...
    def upper_dir(self, key: str) -> str: ...
    def lower_dirs(self, key: str) -> list[str]: ...
    def usage(self, key: str) -> int: ...
    def list(self) -> list[SnapshotInfo]: ...
