"""Resolving paths inside a root directory without ever leaving it.

Owns the one primitive every archive operation stands on: an fd-relative walk from an `O_DIRECTORY` fd
of the root, one component at a time, each opened with `O_NOFOLLOW` relative to its parent's fd.
Symlinks met on the way are read with `readlinkat` and interpreted *by us* as if the root were `/`
(absolute targets restart at the root, `..` is clamped at the root): the semantics of openat2's
`RESOLVE_IN_ROOT`, done in userspace so that missing directories can be created on the way as layer
application needs (containerd's `fs.RootPath` + MkdirAll, but race-free). `..` never reaches the
kernel: it pops our own list of names and the directory is reopened from the root.

Must never: join root + name into a host path and hand it to a path-based syscall, let the kernel
follow a symlink, or return an fd of a directory outside the root.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import deque
from dataclasses import dataclass

from gorae.archive.names import clean_parts
from gorae.errors import InvalidParameter, NotFound

MAX_SYMLINKS = 40  # as the kernel's ELOOP limit
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class Walked:
    """Where a walk stopped: `fd` is an O_DIRECTORY fd (the caller closes it), `parts` its canonical path
    inside the root, `rest` the components that could not be walked as directories (missing or not a
    directory; empty when the walk reached its end)."""

    fd: int
    parts: list[str]
    rest: list[str]


class Root:
    """An open root directory; paths are resolved inside it. Use as a context manager."""

    def __init__(self, path: str) -> None:
        try:
            self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NotFound(f"root directory {path} does not exist") from None
        except NotADirectoryError:
            raise InvalidParameter(f"root {path} is not a directory") from None
        self.path = path

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Root:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- walking ---------------------------------------------------------------------------------

    def _reopen(self, parts: list[str]) -> int:
        """An fd of the already-resolved directory `parts`, walked again from the root (no symlinks)."""
        fd = os.dup(self.fd)
        try:
            for name in parts:
                nfd = os.open(name, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = nfd
        except BaseException:
            os.close(fd)
            raise
        return fd

    def walk(self, parts: list[str], *, create: bool = False, mode: int = 0o755) -> Walked:
        """Walk `parts` as directories, following symlinks inside the root.

        With `create`, missing directories are made (`mode`, owned by the caller), also where a
        dangling symlink points to. Otherwise the walk stops at the first missing or non-directory
        component and reports the remainder in `Walked.rest`.
        """
        queue = deque(parts)
        names: list[str] = []
        missing: list[str] = []  # components that do not exist (yet): a later `..` pops them lexically
        fd = os.dup(self.fd)
        links = 0
        try:
            while queue:
                comp = queue.popleft()
                if comp in ("", "."):
                    continue
                if missing:
                    if comp == "..":
                        missing.pop()
                    else:
                        missing.append(comp)
                    continue
                if comp == "..":
                    if names:
                        names.pop()
                        os.close(fd)
                        fd = -1
                        fd = self._reopen(names)
                    continue
                try:
                    st = os.lstat(comp, dir_fd=fd)
                except FileNotFoundError:
                    missing.append(comp)
                    continue
                if stat.S_ISLNK(st.st_mode):
                    links += 1
                    if links > MAX_SYMLINKS:
                        raise InvalidParameter(
                            f"too many levels of symbolic links resolving {'/'.join(parts)!r}"
                        )
                    target = os.readlink(comp, dir_fd=fd)
                    if target.startswith("/"):
                        names = []
                        os.close(fd)
                        fd = -1
                        fd = os.dup(self.fd)
                    queue.extendleft(reversed(target.split("/")))
                    continue
                if not stat.S_ISDIR(st.st_mode):
                    queue.appendleft(comp)
                    break
                nfd = os.open(comp, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = nfd
                names.append(comp)
            if missing and create:
                for comp in missing:
                    try:
                        os.mkdir(comp, mode, dir_fd=fd)
                    except FileExistsError:
                        pass
                    nfd = os.open(comp, _DIR_FLAGS, dir_fd=fd)
                    os.close(fd)
                    fd = nfd
                    names.append(comp)
                missing = []
        except OSError as e:
            if fd >= 0:
                os.close(fd)
            if e.errno in (errno.ELOOP, errno.ENOTDIR):  # swapped under us between lstat and open
                raise InvalidParameter(f"path {'/'.join(parts)!r} changed while it was resolved") from None
            raise
        except BaseException:
            if fd >= 0:
                os.close(fd)
            raise
        return Walked(fd, names, missing + list(queue))

    def open_dir(self, parts: list[str], *, create: bool = False) -> Walked:
        """Like walk, but every component must end up a directory: NotFound / InvalidParameter otherwise."""
        w = self.walk(parts, create=create)
        if w.rest:
            try:
                st = os.lstat(w.rest[0], dir_fd=w.fd)
            except FileNotFoundError:
                st = None
            os.close(w.fd)
            where = "/" + "/".join(parts)
            if st is None:
                raise NotFound(f"no such file or directory: {where}")
            raise InvalidParameter(f"not a directory: {where}")
        return w

    def canonical(self, parts: list[str]) -> list[str]:
        """The in-root canonical form of `parts`: symlinks resolved inside the root as far as the path
        exists (a final symlink to a file ends at that file); a missing tail is kept as written."""
        w = self.walk(parts)
        os.close(w.fd)
        return clean_parts("/".join(w.parts + w.rest))
