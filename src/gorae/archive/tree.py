"""Directory trees the daemon walks, removes, measures and copies: iteratively, fd-relative, at any depth.

Image layers and containers decide how deep a tree is, so nothing here recurses, and no walk holds more than two
directory fds at a time (Python 3.11's `os.walk`, `shutil.rmtree` and `shutil.copytree` recurse, and a tree
1,000 levels deep — which any container can make with `mkdir` in a loop — raises RecursionError in them).
The walk goes down with `openat(O_NOFOLLOW)` and back up through `..`, checking at every step up that it came
back to the directory it left (device and inode), so a tree moved during the walk stops it with an error
instead of leading it outside its root.

Must never: follow a symlink, open a special file (a device node copied by opening it reads the *host's*
device: `copy_tree` recreates device nodes and fifos with mknod), or descend into another file system while
removing (a mount left inside a tree is refused with EBUSY, never emptied).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_SKIP_XATTRS = ("trusted.overlay.",)  # overlayfs bookkeeping: never copied into a volume


class Step(Enum):
    FILE = "file"  # a non-directory entry of the current directory
    ENTER = "enter"  # descended into a directory (fd is the directory itself)
    LEAVE = "leave"  # came back from a directory (fd is its parent, name is its name)


@dataclass
class Visit:
    step: Step
    fd: int  # the directory the entry lives in (ENTER: the directory entered); valid until the next step
    name: str
    st: os.stat_result
    depth: int  # 0 for the root's entries


@dataclass
class _Level:
    fd_stat: os.stat_result  # identity of the directory at this level
    names: list[str]
    name: str = ""  # this directory's name in its parent ("" for the root)
    i: int = 0


def _list(fd: int) -> list[str]:
    with os.scandir(fd) as it:
        return sorted(e.name for e in it)


def _same(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _up(fd: int, expected: os.stat_result) -> int:
    parent = os.open("..", _DIR_FLAGS, dir_fd=fd)
    if not _same(os.fstat(parent), expected):
        os.close(parent)
        raise OSError(errno.ESTALE, "directory tree changed during the walk")
    return parent


def walk(
    root: str,
    *,
    dir_fd: int | None = None,
    descend: Callable[[os.stat_result, os.stat_result], bool] | None = None,
) -> Iterator[Visit]:
    """Every entry under `root` (not `root` itself), depth first: a directory is ENTERed before its entries and
    LEFT after them. `descend(root_st, dir_st)` may refuse to go into a directory; it is then reported as a
    FILE step with its directory stat, so the caller decides what that means."""
    fd = os.open(root, _DIR_FLAGS, dir_fd=dir_fd)
    root_st = os.fstat(fd)
    stack = [_Level(root_st, _list(fd))]
    try:
        while stack:
            level = stack[-1]
            if level.i >= len(level.names):
                stack.pop()
                if not stack:
                    break
                parent = _up(fd, stack[-1].fd_stat)
                os.close(fd)
                fd = parent
                yield Visit(Step.LEAVE, fd, level.name, level.fd_stat, len(stack) - 1)
                continue
            name = level.names[level.i]
            level.i += 1
            try:
                st = os.lstat(name, dir_fd=fd)
            except FileNotFoundError:
                continue  # gone meanwhile
            if stat.S_ISDIR(st.st_mode) and (descend is None or descend(root_st, st)):
                try:
                    child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError as e:
                    if e.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
                        continue  # replaced meanwhile
                    raise
                child_st = os.fstat(child)
                if not _same(child_st, st):
                    os.close(child)
                    continue  # replaced between lstat and open
                os.close(fd)
                fd = child
                stack.append(_Level(child_st, _list(fd), name))
                yield Visit(Step.ENTER, fd, name, child_st, len(stack) - 2)
                continue
            yield Visit(Step.FILE, fd, name, st, len(stack) - 1)
    finally:
        os.close(fd)


def remove_tree(path: str, *, dir_fd: int | None = None, missing_ok: bool = True) -> None:
    """`rm -rf path` (relative to `dir_fd` if given) at any depth, never following a symlink and never crossing
    into another file system (a mount inside → EBUSY)."""
    try:
        st = os.lstat(path, dir_fd=dir_fd)
    except FileNotFoundError:
        if missing_ok:
            return
        raise
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path, dir_fd=dir_fd)
        return
    for v in walk(path, dir_fd=dir_fd, descend=lambda root, d: d.st_dev == root.st_dev):
        if v.step is Step.FILE:
            if stat.S_ISDIR(v.st.st_mode):  # another file system's mount point: refuse, never empty it
                raise OSError(errno.EBUSY, f"a mount is still inside {path}", v.name)
            _ignore_missing(os.unlink, v.name, dir_fd=v.fd)
        elif v.step is Step.LEAVE:
            _ignore_missing(os.rmdir, v.name, dir_fd=v.fd)
    os.rmdir(path, dir_fd=dir_fd)


def _ignore_missing(fn: Callable[..., None], *args: object, **kw: object) -> None:
    try:
        fn(*args, **kw)
    except FileNotFoundError:
        pass


def tree_usage(path: str, *, blocks: bool = False) -> int:
    """Bytes of the non-directory entries under `path`, each hardlinked inode counted once (docker's size);
    with `blocks`, the space allocated instead of the apparent size."""
    seen: set[tuple[int, int]] = set()
    total = 0
    try:
        visits = walk(path)
        for v in visits:
            if v.step is not Step.FILE:
                continue
            st = v.st
            if st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                if key in seen:
                    continue
                seen.add(key)
            total += st.st_blocks * 512 if blocks and st.st_blocks else st.st_size
    except FileNotFoundError:
        return total
    return total


def copy_tree(src: str, dst: str) -> None:
    """Copy the contents of directory `src` into the existing directory `dst` (docker's volume copy-up):
    owners, modes, times and xattrs kept, symlinks copied as links, hardlinks kept where the path allows,
    device nodes and fifos recreated with mknod (never opened), sockets skipped."""
    dst_fd = os.open(dst, _DIR_FLAGS)
    dst_stack: list[os.stat_result] = [os.fstat(dst_fd)]
    links: dict[tuple[int, int], list[str]] = {}
    path: list[str] = []
    dir_meta: list[tuple[str, os.stat_result]] = []
    try:
        for v in walk(src):
            if v.step is Step.ENTER:
                os.mkdir(v.name, 0o700, dir_fd=dst_fd)
                child = os.open(v.name, _DIR_FLAGS, dir_fd=dst_fd)
                os.close(dst_fd)
                dst_fd = child
                dst_stack.append(os.fstat(dst_fd))
                path.append(v.name)
                dir_meta.append((v.name, v.st))
                _copy_xattrs(v.fd, dst_fd)
            elif v.step is Step.LEAVE:
                parent = _up(dst_fd, dst_stack[-2])
                os.close(dst_fd)
                dst_fd = parent
                dst_stack.pop()
                path.pop()
                name, st = dir_meta.pop()
                _set_meta(dst_fd, name, st)
            else:
                _copy_entry(v, dst_fd, path, links, dst)
    finally:
        os.close(dst_fd)


def _copy_entry(v: Visit, dst_fd: int, path: list[str], links: dict[tuple[int, int], list[str]], dst: str) -> None:
    st, name = v.st, v.name
    mode = st.st_mode
    key = (st.st_dev, st.st_ino)
    if st.st_nlink > 1 and not stat.S_ISDIR(mode) and key in links:
        try:
            os.link(os.path.join(dst, *links[key]), name, dst_dir_fd=dst_fd, follow_symlinks=False)
            return
        except OSError as e:
            if e.errno not in (errno.ENAMETOOLONG, errno.EXDEV, errno.EMLINK):
                raise  # else fall through: a copy of its own
    if stat.S_ISREG(mode):
        _copy_file(v.fd, name, dst_fd, st)
        if st.st_nlink > 1:
            links[key] = [*path, name]
        return
    if stat.S_ISLNK(mode):
        os.symlink(os.readlink(name, dir_fd=v.fd), name, dir_fd=dst_fd)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
        os.mknod(name, stat.S_IFMT(mode) | 0o600, st.st_rdev, dir_fd=dst_fd)
    else:
        return  # sockets: nothing to copy, as docker
    if st.st_nlink > 1:
        links[key] = [*path, name]
    _set_meta(dst_fd, name, st)


def _copy_file(src_dir: int, name: str, dst_dir: int, st: os.stat_result) -> None:
    sfd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=src_dir)
    try:
        if not stat.S_ISREG(os.fstat(sfd).st_mode):
            return  # replaced by something else since the walk looked: never read a special file
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        dfd = os.open(name, flags, 0o600, dir_fd=dst_dir)
        try:
            left = st.st_size
            while True:
                n = os.sendfile(dfd, sfd, None, max(left, 1 << 20))
                if n == 0:
                    break
                left -= n
            # owner first (chown drops setuid bits and file capabilities), then xattrs and mode, times last
            os.fchown(dfd, st.st_uid, st.st_gid)
            _copy_xattrs(sfd, dfd)
            os.fchmod(dfd, stat.S_IMODE(st.st_mode))
            os.utime(dfd, ns=(st.st_atime_ns, st.st_mtime_ns))
        finally:
            os.close(dfd)
    finally:
        os.close(sfd)


def _copy_xattrs(src_fd: int, dst_fd: int) -> None:
    try:
        names = os.listxattr(src_fd)
    except OSError:
        return
    for attr in names:
        if attr.startswith(_SKIP_XATTRS):
            continue
        try:
            os.setxattr(dst_fd, attr, os.getxattr(src_fd, attr))
        except OSError:
            pass  # a namespace this file system does not take (as cp -a does, best effort)


def _set_meta(dir_fd: int, name: str, st: os.stat_result) -> None:
    os.chown(name, st.st_uid, st.st_gid, dir_fd=dir_fd, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(name, stat.S_IMODE(st.st_mode), dir_fd=dir_fd)  # after chown: chown clears setuid bits
    os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dir_fd, follow_symlinks=False)
