"""The filesystem storage driver: driver paths are files under one root directory.

Owns the mapping of driver paths onto `<root>/<path>`, atomic whole-file writes (a temp file in `<root>/#tmp`,
fsync, rename — `#` is not a valid path character, so the temp directory is never part of the namespace),
appendable writers for uploads, and the guard that no path leaves the root (validated components, and no
symlink inside the root may lead out). Offers `local_path` so blob GETs can be sent with os.sendfile.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from typing import BinaryIO

from gorae.registry.storage.driver import (
    FileInfo,
    InvalidOffset,
    InvalidPath,
    PathNotFound,
    StorageError,
    TypedErrors,
    check_path,
)

_TMP = "#tmp"


class _Errors(TypedErrors):
    """OS errors of one operation as the driver's typed errors."""

    def translate(self, exc: BaseException) -> None:
        if isinstance(exc, FileNotFoundError | NotADirectoryError | IsADirectoryError):
            raise PathNotFound(self.path) from exc
        if isinstance(exc, OSError):
            raise StorageError(self.path, exc.strerror or str(exc)) from exc


class FilesystemWriter:
    """An appendable file of the filesystem driver (see `driver.FileWriter`)."""

    def __init__(self, path: str, full: str, append: bool) -> None:
        self._path = path
        self._full = full
        os.makedirs(os.path.dirname(full), exist_ok=True)
        self._file: BinaryIO = open(full, "ab" if append else "wb")  # noqa: SIM115  # closed by close()
        self._size = self._file.tell()
        self._done = False

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes, /) -> int:
        if self._done:
            raise StorageError(self._path, "writer already committed, cancelled or closed")
        with _Errors(self._path):
            n = self._file.write(data)
        self._size += n
        return n

    def commit(self) -> None:
        if self._done:
            raise StorageError(self._path, "writer already committed, cancelled or closed")
        with _Errors(self._path):
            self._file.flush()
            os.fsync(self._file.fileno())
        self._done = True
        self._file.close()

    def cancel(self) -> None:
        self._done = True
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._full)

    def close(self) -> None:
        if not self._file.closed:
            with _Errors(self._path):
                self._file.flush()
            self._file.close()
        self._done = True


class FilesystemDriver:
    """Driver paths as files under `root` (created if missing)."""

    name = "filesystem"

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)
        os.makedirs(os.path.join(self.root, _TMP), exist_ok=True)

    # -- paths ------------------------------------------------------------------------------------

    def _full(self, path: str, *, allow_root: bool = False) -> str:
        check_path(path, allow_root=allow_root)
        full = self.root if path == "/" else os.path.join(self.root, path[1:])
        # a symlink planted inside the root must not lead out of it
        real = os.path.realpath(full)
        if real != self.root and not real.startswith(self.root + os.sep):
            raise InvalidPath(path, "leads outside the storage root")
        return full

    def local_path(self, path: str) -> str | None:
        return self._full(path)

    # -- whole files ------------------------------------------------------------------------------

    def get_content(self, path: str) -> bytes:
        full = self._full(path)
        with _Errors(path), open(full, "rb") as f:
            return f.read()

    def put_content(self, path: str, content: bytes) -> None:
        full = self._full(path)
        tmp = os.path.join(self.root, _TMP, uuid.uuid4().hex)
        with _Errors(path):
            try:
                with open(tmp, "wb") as f:
                    f.write(content)
                    f.flush()
                    os.fsync(f.fileno())
                os.makedirs(os.path.dirname(full), exist_ok=True)
                os.replace(tmp, full)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)

    # -- streams ----------------------------------------------------------------------------------

    def reader(self, path: str, offset: int = 0) -> BinaryIO:
        full = self._full(path)
        if offset < 0:
            raise InvalidOffset(path, offset)
        with _Errors(path):
            f = open(full, "rb")  # noqa: SIM115  # the caller closes it
            size = os.fstat(f.fileno()).st_size
            if offset > size:
                f.close()
                raise InvalidOffset(path, offset)
            f.seek(offset)
            return f

    def writer(self, path: str, append: bool = False) -> FilesystemWriter:
        full = self._full(path)
        with _Errors(path):
            if os.path.isdir(full):
                raise StorageError(path, "is a directory")
            return FilesystemWriter(path, full, append)

    # -- the tree ---------------------------------------------------------------------------------

    def stat(self, path: str) -> FileInfo:
        full = self._full(path, allow_root=True)
        with _Errors(path):
            st = os.stat(full)
        is_dir = os.path.isdir(full)
        return FileInfo(path, 0 if is_dir else st.st_size, st.st_mtime, is_dir)

    def list(self, path: str) -> list[str]:
        full = self._full(path, allow_root=True)
        with _Errors(path):
            names = sorted(n for n in os.listdir(full) if n != _TMP)
        prefix = "" if path == "/" else path
        return [f"{prefix}/{n}" for n in names]

    def move(self, source: str, dest: str) -> None:
        src_full, dest_full = self._full(source), self._full(dest)
        if not os.path.isfile(src_full):
            raise PathNotFound(source)
        with _Errors(dest):
            os.makedirs(os.path.dirname(dest_full), exist_ok=True)
            os.replace(src_full, dest_full)

    def delete(self, path: str) -> None:
        full = self._full(path)
        with _Errors(path):
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full)
            else:
                os.unlink(full)

    def walk(self, path: str) -> Iterator[FileInfo]:
        full = self._full(path, allow_root=True)
        if not os.path.isdir(full):
            raise PathNotFound(path)
        return self._walk(path, full)

    def _walk(self, path: str, full: str) -> Iterator[FileInfo]:
        prefix = "" if path == "/" else path
        try:
            entries = sorted(os.scandir(full), key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            if entry.name == _TMP and path == "/":
                continue
            child = f"{prefix}/{entry.name}"
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            is_dir = entry.is_dir(follow_symlinks=False)
            yield FileInfo(child, 0 if is_dir else st.st_size, st.st_mtime, is_dir)
            if is_dir:
                yield from self._walk(child, entry.path)
