"""Writing tar streams from a directory tree, read through fds only.

Owns the tar *output* side: headers (PAX where needed, numeric owners, whole-second mtimes, xattrs as
SCHILY.xattr.*), file data copied in 1 MiB chunks, hardlink detection by inode, Go-style end of archive
(exactly two zero blocks, so an empty tar is the well-known 1024 zero bytes), and an fd-relative,
non-following walk of a tree (`TreeWriter`), optionally translating overlayfs upper-dir whiteouts
(0:0 char devices, opaque xattrs) into `.wh.` entries. Must never follow a symlink, open a non-regular
file for reading (a fifo would block), or emit overlayfs' own xattrs.
"""

from __future__ import annotations

import errno
import functools
import grp
import os
import pwd
import stat
import tarfile
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, BinaryIO

from gorae.archive.names import OVERLAY_OPAQUE_XATTR, OVERLAY_XATTR_PREFIXES, WHITEOUT_OPAQUE, WHITEOUT_PREFIX
from gorae.archive.streams import BUF

if TYPE_CHECKING:
    from gorae.archive.inroot import Root

_BLOCK = 512
_SKIP_XATTRS = (*OVERLAY_XATTR_PREFIXES, "security.selinux", "system.")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class TarWriter:
    """A minimal streaming tar writer onto any object with `write`; small writes (headers, padding,
    small files) are gathered into chunks of up to 1 MiB so a socket or queue sees few large writes."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self._buf = bytearray()

    def _write(self, data: bytes) -> None:
        if len(data) >= BUF:
            self._flush_buf()
            self.out.write(data)
            return
        self._buf += data
        if len(self._buf) >= BUF:
            self._flush_buf()

    def _flush_buf(self) -> None:
        if self._buf:
            self.out.write(bytes(self._buf))
            self._buf.clear()

    def header(self, info: tarfile.TarInfo) -> None:
        self._write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))

    def data_from_fd(self, fd: int, size: int) -> None:
        """`size` bytes of file data; a file that shrank meanwhile is padded with zeros."""
        left = size
        while left > 0:
            chunk = os.read(fd, min(BUF, left))
            if not chunk:
                break
            self._write(chunk)
            left -= len(chunk)
        while left > 0:
            n = min(BUF, left)
            self._write(bytes(n))
            left -= n
        self.pad(size)

    def pad(self, size: int) -> None:
        rem = size % _BLOCK
        if rem:
            self._write(bytes(_BLOCK - rem))

    def close(self) -> None:
        """End of archive: two zero blocks (as Go's archive/tar), then flush."""
        self._write(bytes(2 * _BLOCK))
        self._flush_buf()
        flush = getattr(self.out, "flush", None)
        if flush is not None:
            flush()


def _xattrs(target: int | str) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        names = os.listxattr(target)
    except OSError:
        return out
    for name in sorted(names):
        if name.startswith(_SKIP_XATTRS):
            continue
        try:
            value = os.getxattr(target, name)
        except OSError:
            continue
        out["SCHILY.xattr." + name] = value.decode("utf-8", "surrogateescape")
    return out


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(fd: int) -> bool:
    try:
        return os.getxattr(fd, OVERLAY_OPAQUE_XATTR) == b"y"
    except OSError:
        return False


@functools.lru_cache(maxsize=256)
def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except (KeyError, OverflowError):
        return ""


@functools.lru_cache(maxsize=256)
def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except (KeyError, OverflowError):
        return ""


class TreeWriter:
    """Emits entries of a tree into a TarWriter, walking by fd without following symlinks."""

    def __init__(
        self,
        w: TarWriter,
        *,
        overlay: bool = False,
        root: Root | None = None,
        skip: Collection[str] = (),
        owner_names: bool = False,
    ) -> None:
        self.w = w
        # `docker cp` out of a container: user and group names as Go's tar.FileInfoHeader looks them up (on
        # the daemon's host, by number); layers stay numeric only, as moby writes them
        self.owner_names = owner_names
        self.overlay = overlay
        self.skip = frozenset(skip)  # arc names left out, with what is below them
        self.root = root  # entries at its mount points are taken from the mounts (`entry(parts=...)`)
        self._links: dict[tuple[int, int], str] = {}

    def _info(self, arc: str, st: os.stat_result, kind: bytes) -> tarfile.TarInfo:
        info = tarfile.TarInfo(arc)
        info.type = kind
        info.mode = stat.S_IMODE(st.st_mode)
        info.uid, info.gid = st.st_uid, st.st_gid
        info.uname, info.gname = (_user_name(st.st_uid), _group_name(st.st_gid)) if self.owner_names else ("", "")
        info.mtime = int(st.st_mtime)
        info.size = 0
        return info

    def _simple(self, arc: str, kind: bytes, mode: int = 0o644, mtime: int = 0) -> None:
        info = tarfile.TarInfo(arc)
        info.type, info.mode, info.mtime, info.size = kind, mode, mtime, 0
        info.uname = info.gname = ""
        self.w.header(info)

    def entry(self, dfd: int, name: str, arc: str, *, parts: Sequence[str] = ()) -> None:
        """Emit `name` (in directory fd `dfd`) as `arc`, and everything below it when it is a directory.
        With a `root`, `parts` is the entry's canonical path in it: mounts met below are followed."""
        # (dir fd, names left, next index, arc prefix, in-root parts)
        stack: list[tuple[int, list[str], int, str, tuple[str, ...]]] = []
        fd = self._one(dfd, name, arc)
        if fd is not None:
            stack.append((fd, self._names(fd), 0, arc, tuple(parts)))
        try:
            while stack:
                fd, names, i, prefix, where = stack[-1]
                if i >= len(names):
                    os.close(fd)
                    stack.pop()
                    continue
                stack[-1] = (fd, names, i + 1, prefix, where)
                child = names[i]
                child_arc = f"{prefix}/{child}" if prefix else child
                m = self.root.mount_at((*where, child)) if self.root is not None else None
                if m is not None:
                    cfd = self._one(m.parent_fd, m.name, child_arc)
                else:
                    cfd = self._one(fd, child, child_arc)
                if cfd is not None:
                    stack.append((cfd, self._names(cfd), 0, child_arc, (*where, child)))
        finally:
            for fd, *_ in stack:
                os.close(fd)

    def children(self, dfd: int, prefix: str = "") -> None:
        """Emit everything below the directory fd `dfd` (not the directory itself)."""
        for child in self._names(dfd):
            self.entry(dfd, child, f"{prefix}/{child}" if prefix else child)

    @staticmethod
    def _names(fd: int) -> list[str]:
        with os.scandir(fd) as it:
            return sorted(e.name for e in it)

    def _one(self, dfd: int, name: str, arc: str) -> int | None:
        """Emit one entry; returns an open fd when it is a directory to descend into."""
        if arc in self.skip:
            return None
        try:
            st = os.lstat(name, dir_fd=dfd)
        except FileNotFoundError:
            return None  # gone meanwhile (a running container)
        mode = st.st_mode
        if self.overlay and _is_whiteout(st):
            parent, _, base = arc.rpartition("/")
            wh = f"{parent}/{WHITEOUT_PREFIX}{base}" if parent else WHITEOUT_PREFIX + base
            self._simple(wh, tarfile.REGTYPE, 0o644, int(st.st_mtime))
            return None
        if stat.S_ISDIR(mode):
            try:
                fd = os.open(name, _DIR_FLAGS, dir_fd=dfd)
            except OSError as e:
                if e.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
                    return None
                raise
            info = self._info(arc, st, tarfile.DIRTYPE)
            info.pax_headers = _xattrs(fd)
            self.w.header(info)
            if self.overlay and _is_opaque(fd):
                self._simple(f"{arc}/{WHITEOUT_OPAQUE}" if arc else WHITEOUT_OPAQUE, tarfile.REGTYPE, 0o644)
            return fd
        if stat.S_ISLNK(mode):
            info = self._info(arc, st, tarfile.SYMTYPE)
            info.linkname = os.readlink(name, dir_fd=dfd)
            self.w.header(info)
            return None
        if stat.S_ISSOCK(mode):
            return None  # sockets are not archived (as docker)
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in self._links:
            info = self._info(arc, st, tarfile.LNKTYPE)
            info.linkname = self._links[key]
            self.w.header(info)
            return None
        if stat.S_ISREG(mode):
            self._regular(dfd, name, arc, st)
        else:
            self._special(dfd, name, arc, st)
        if st.st_nlink > 1:
            self._links[key] = arc
        return None

    def _regular(self, dfd: int, name: str, arc: str, st: os.stat_result) -> None:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ELOOP):
                return
            raise
        try:
            fst = os.fstat(fd)
            if not stat.S_ISREG(fst.st_mode):
                return  # swapped for something else meanwhile
            info = self._info(arc, fst, tarfile.REGTYPE)
            info.size = fst.st_size
            info.pax_headers = _xattrs(fd)
            self.w.header(info)
            self.w.data_from_fd(fd, fst.st_size)
        finally:
            os.close(fd)

    def _special(self, dfd: int, name: str, arc: str, st: os.stat_result) -> None:
        mode = st.st_mode
        kind = (
            tarfile.CHRTYPE
            if stat.S_ISCHR(mode)
            else tarfile.BLKTYPE
            if stat.S_ISBLK(mode)
            else tarfile.FIFOTYPE
        )
        info = self._info(arc, st, kind)
        if kind != tarfile.FIFOTYPE:
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        try:
            pfd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        except OSError:
            pfd = -1
        if pfd >= 0:
            try:
                if not stat.S_ISLNK(os.fstat(pfd).st_mode):
                    info.pax_headers = _xattrs(f"/proc/self/fd/{pfd}")
            finally:
                os.close(pfd)
        self.w.header(info)
