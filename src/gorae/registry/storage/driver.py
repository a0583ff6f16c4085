"""The storage driver protocol of the registry: a path-keyed blob filesystem, as distribution's.

A driver stores byte strings under absolute, slash-separated paths (`/docker/registry/v2/blobs/...`) and knows
nothing about blobs, manifests or repositories (that is `gorae.registry.storage.paths` and the layers above).
Every driver passes the same conformance suite (`gorae.registry.storage.testsuite`).

Semantics (what callers may rely on, whatever the backend):
  * Paths match `^(/[A-Za-z0-9._-]+)+$` with no `.` or `..` component; "/" is valid only where a directory is
    expected (list, walk, stat). Anything else raises InvalidPath before touching the backend.
  * Directories are implicit: writing `/a/b/c` makes `/a` and `/a/b` exist; deleting the last file of a
    directory may or may not leave it listed (callers must not rely on empty directories).
  * `put_content` is atomic: a reader sees the old content or the new, never a mix, never a truncated file.
  * `writer(path, append=True)` resumes an unfinished file (an upload appended across requests and across
    processes); `size` is what is stored so far. Data is durable only after `commit()`; `cancel()` removes it.
  * `reader(path, offset)` streams from `offset`; an offset past the end raises InvalidOffset (the end itself
    gives an empty stream).
  * `move` replaces the destination atomically (whole files only; moving a directory is not supported).
  * `delete` removes a file or a whole directory tree; a missing path raises PathNotFound.
  * `list` gives the direct children (full paths, sorted) of a directory; `walk` every entry below it, files
    and directories, parents before children, in lexical order per directory. Both raise PathNotFound for a
    missing directory and for a file; `list("/")` of an empty store is [].
  * Errors are the `StorageError` tree below, never a backend's own exceptions.
  * Methods are blocking: async callers run them off the event loop.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

_COMPONENT = re.compile(r"[A-Za-z0-9._-]+")


class StorageError(Exception):
    """Base of every driver error; `path` is the driver path concerned."""

    def __init__(self, path: str, detail: str = "") -> None:
        super().__init__(f"{type(self).__name__}: {path}{': ' + detail if detail else ''}")
        self.path = path
        self.detail = detail


class PathNotFound(StorageError):
    """Nothing is stored at the path."""


class InvalidPath(StorageError):
    """The path is not a valid driver path (see the module docstring)."""


class InvalidOffset(StorageError):
    """A read or resume offset beyond the stored data."""

    def __init__(self, path: str, offset: int) -> None:
        super().__init__(path, f"invalid offset {offset}")
        self.offset = offset


class TypedErrors(contextlib.AbstractContextManager[None]):
    """Around one operation of a driver on `path`: its own errors (`translate`) raised as the typed ones above;
    a StorageError passes as it is."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if exc is None or isinstance(exc, StorageError):
            return
        self.translate(exc)

    def translate(self, exc: BaseException) -> None:
        """Raise (from `exc`) the StorageError it stands for; returning lets `exc` go on as it is."""


def check_path(path: str, *, allow_root: bool = False) -> str:
    """`path` if it is a valid driver path, else InvalidPath."""
    if path == "/":
        if allow_root:
            return path
        raise InvalidPath(path, "the root is not a file")
    if not isinstance(path, str) or not path.startswith("/") or path.endswith("/"):
        raise InvalidPath(str(path))
    for part in path[1:].split("/"):
        if part in ("", ".", "..") or _COMPONENT.fullmatch(part) is None:
            raise InvalidPath(path)
    return path


@dataclass(frozen=True, slots=True)
class FileInfo:
    """What `stat` and `walk` report: the path, its size (0 for directories), mtime (seconds) and kind."""

    path: str
    size: int
    mtime: float
    is_dir: bool


class FileReader(Protocol):
    """A stream of a stored file from some offset."""

    def read(self, n: int = -1, /) -> bytes: ...
    def close(self) -> None: ...


class FileWriter(Protocol):
    """An unfinished file: appended to, then committed (durable) or cancelled (removed).

    `close()` without `commit()` keeps what was written so far so another writer (`append=True`) can resume.
    """

    @property
    def size(self) -> int:
        """Bytes stored so far, including those of earlier writers of the same file."""
        ...

    def write(self, data: bytes, /) -> int: ...
    def commit(self) -> None: ...
    def cancel(self) -> None: ...
    def close(self) -> None: ...


@runtime_checkable
class StorageDriver(Protocol):
    """The operations the registry needs from a backend (see the module docstring for their semantics)."""

    name: str

    def get_content(self, path: str) -> bytes: ...
    def put_content(self, path: str, content: bytes) -> None: ...
    def reader(self, path: str, offset: int = 0) -> FileReader: ...
    def writer(self, path: str, append: bool = False) -> FileWriter: ...
    def stat(self, path: str) -> FileInfo: ...
    def list(self, path: str) -> list[str]: ...
    def move(self, source: str, dest: str) -> None: ...
    def delete(self, path: str) -> None: ...
    def walk(self, path: str) -> Iterator[FileInfo]: ...

    def local_path(self, path: str) -> str | None:
        """A filesystem path holding the file's bytes (for os.sendfile), or None when the driver has none."""
        ...
