"""Resolving paths inside a root directory without ever leaving it.

Owns the one primitive every archive operation stands on: an fd-relative walk from an `O_DIRECTORY` fd
of the root, one component at a time, each opened with `O_NOFOLLOW` relative to its parent's fd.
Symlinks met on the way are read with `readlinkat` and interpreted *by us* as if the root were `/`
(absolute targets restart at the root, `..` is clamped at the root): the semantics of openat2's
`RESOLVE_IN_ROOT`, done in userspace so that missing directories can be created on the way as layer
application needs (containerd's `fs.RootPath` + MkdirAll, but race-free). `..` never reaches the
kernel: it pops our own list of names and the directory is reopened from the root.

A root may carry the file systems mounted inside it (`MountSpec`: a container's volumes and bind mounts):
the walk then enters a mount's source wherever its in-root destination is reached, as the container's
mount namespace would, and goes on with the same guard there (a symlink inside a volume still resolves
against the root, `..` at a mount's top leaves it to the parent inside the root). The mount points are
made in the root when missing, as runc (and dockerd's `docker cp`) does.

Must never: join root + name into a host path and hand it to a path-based syscall, let the kernel
follow a symlink, or return an fd of a directory outside the root or its mounts.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from gorae.archive.names import clean_parts
from gorae.errors import InvalidParameter, NotFound

MAX_SYMLINKS = 40  # as the kernel's ELOOP limit
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
RO_ROOT = "container rootfs is marked read-only"
RO_MOUNT = "mounted volume is marked read-only"


@dataclass(frozen=True)
class MountSpec:
    """A file system mounted at `dest` inside a root; `source` is its host path (a directory or a file)."""

    dest: str
    source: str
    readonly: bool = False


@dataclass
class Mounted:
    """A mount placed in a root: `name` in the directory fd `parent_fd` is its source on the host."""

    parent_fd: int
    name: str
    is_dir: bool
    readonly: bool


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

    def __init__(self, path: str, mounts: Sequence[MountSpec] = (), *, readonly: bool = False) -> None:
        try:
            self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NotFound(f"root directory {path} does not exist") from None
        except NotADirectoryError:
            raise InvalidParameter(f"root {path} is not a directory") from None
        self.readonly = readonly
        self._mounts: dict[tuple[str, ...], Mounted] = {}
        try:
            for spec in sorted(mounts, key=lambda m: (len(clean_parts(m.dest)), clean_parts(m.dest))):
                self._place(spec)
        except BaseException:
            self.close()
            raise

    def _place(self, spec: MountSpec) -> None:
        """Put `spec` at its destination, resolved inside the root (and the mounts placed before it), as
        runc does; the mount point is made when missing. A source that is gone is left out."""
        src = os.path.realpath(spec.source)
        parent, name = os.path.split(src)
        if not name:
            parent, name = "/", "."
        try:
            pfd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return
        try:
            st = os.lstat(name, dir_fd=pfd)
        except OSError:
            os.close(pfd)
            return
        is_dir = stat.S_ISDIR(st.st_mode)
        parts = clean_parts(spec.dest)
        if not parts:
            os.close(pfd)
            return
        try:
            w = self.walk(parts if is_dir else parts[:-1], create=True)
        except BaseException:
            os.close(pfd)
            raise
        try:
            if w.rest:  # a non-directory on the way: the runtime could not mount it there either
                os.close(pfd)
                return
            key = tuple(w.parts) if is_dir else (*w.parts, parts[-1])
            if not is_dir:
                with contextlib.suppress(FileExistsError):
                    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
                    os.close(os.open(parts[-1], flags, 0o755, dir_fd=w.fd))
        finally:
            os.close(w.fd)
        old = self._mounts.pop(key, None)
        if old is not None:
            os.close(old.parent_fd)
        self._mounts[key] = Mounted(pfd, name, is_dir, spec.readonly)

    def close(self) -> None:
        for m in self._mounts.values():
            os.close(m.parent_fd)
        self._mounts = {}
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    # ---- mounts ------------------------------------------------------------------------------------

    @property
    def has_mounts(self) -> bool:
        return bool(self._mounts)

    def mount_at(self, parts: Sequence[str]) -> Mounted | None:
        """The mount whose destination is exactly the canonical in-root path `parts`."""
        return self._mounts.get(tuple(parts)) if self._mounts else None

    def check_writable(self, parts: Sequence[str]) -> None:
        """InvalidParameter in docker's words when the canonical path `parts` is on a read-only mount
        (the innermost directory mount holding it) or, outside every mount, on a read-only root."""
        for n in range(len(parts), 0, -1):
            m = self._mounts.get(tuple(parts[:n])) if self._mounts else None
            if m is not None and m.is_dir:
                if m.readonly:
                    raise InvalidParameter(RO_MOUNT)
                return
        if self.readonly:
            raise InvalidParameter(RO_ROOT)

    def _enter(self, m: Mounted) -> int:
        return os.open(m.name, _DIR_FLAGS, dir_fd=m.parent_fd)

    def __enter__(self) -> Root:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- walking ---------------------------------------------------------------------------------

    def _reopen(self, parts: list[str]) -> int:
        """An fd of the already-resolved directory `parts`, walked again from the root (no symlinks)."""
        fd = os.dup(self.fd)
        try:
            for i, name in enumerate(parts):
                m = self.mount_at(parts[: i + 1])
                nfd = self._enter(m) if m is not None and m.is_dir else os.open(name, _DIR_FLAGS, dir_fd=fd)
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
                m = self.mount_at((*names, comp)) if self._mounts else None
                if m is not None:  # the mounted file system hides what the root has there
                    if not m.is_dir:
                        queue.appendleft(comp)
                        break
                    nfd = self._enter(m)
                    os.close(fd)
                    fd = nfd
                    names.append(comp)
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
