"""`docker diff` of an overlay container: what its upper dir changed relative to the lower layers.

Owns reading an overlay upper dir against its lower dirs (top first, each an applied layer whose own
whiteouts are 0:0 char devices and opaque xattrs) and classifying each path as Modified (0), Added (1)
or Deleted (2); and which upper entries are the engine's own (`init_artifacts`: moby's init layer). Lower dirs are probed component by component with lstat, so a symlink inside a layer
is never followed onto the host. Must never modify anything.
"""

from __future__ import annotations

import errno
import os
import stat

from gorae.archive.names import OVERLAY_OPAQUE_XATTR

MODIFIED, ADDED, DELETED = 0, 1, 2
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OVERLAY_OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _layer_state(lower: str, parts: list[str]) -> tuple[str, os.stat_result | None]:
    """What one layer says about `parts`: ("present", st), ("hidden", None) when it whites it (or an
    ancestor) out or shadows an ancestor with a non-directory, ("blocked", None) when absent here below
    an opaque directory, ("absent", None) when lower layers decide."""
    cur = lower
    blocked = False
    for i, comp in enumerate(parts):
        cur = os.path.join(cur, comp)
        try:
            st = os.lstat(cur)
        except (FileNotFoundError, NotADirectoryError):
            return ("blocked" if blocked else "absent"), None
        if _whiteout(st):
            return "hidden", None
        if i == len(parts) - 1:
            return "present", st
        if not stat.S_ISDIR(st.st_mode):
            return "hidden", None
        if _opaque(cur):
            blocked = True
    return "present", os.lstat(lower)


def _in_lowers(lowers: list[str], parts: list[str]) -> bool:
    for lower in lowers:
        state, _ = _layer_state(lower, parts)
        if state == "present":
            return True
        if state in ("hidden", "blocked"):
            return False
    return False


def _lower_children(lowers: list[str], parts: list[str]) -> set[str]:
    """Names the lower layers show in directory `parts` (their merged view)."""
    names: set[str] = set()
    gone: set[str] = set()
    for lower in lowers:
        state, st = _layer_state(lower, parts)
        if state in ("hidden", "blocked"):
            break
        if state == "absent" or st is None:
            continue
        if not stat.S_ISDIR(st.st_mode):
            break
        d = os.path.join(lower, *parts)
        with os.scandir(d) as it:
            for e in it:
                if e.name in gone or e.name in names:
                    continue
                est = e.stat(follow_symlinks=False)
                if _whiteout(est):
                    gone.add(e.name)
                else:
                    names.add(e.name)
        if _opaque(d):
            break
    return names


def _opaque_fd(fd: int) -> bool:
    try:
        return os.getxattr(fd, OVERLAY_OPAQUE_XATTR) == b"y"
    except OSError:
        return False


# moby's init layer: files and mount points the engine puts in every container, below its writable layer
# (so `diff` and `commit` never see them). gorae keeps them in the writable layer and leaves them out here.
INIT_FILES = ("/.dockerenv", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/dev/console")
INIT_DIRS = ("/proc", "/sys", "/dev/pts", "/dev/shm", "/dev")
_INIT_PARENTS = ("/etc", "/dev")


def _upper_lstat(upper: str, path: str) -> os.stat_result | None:
    """lstat of `path` in the upper dir, never through a symlink in it."""
    cur = upper
    parts = [p for p in path.split("/") if p]
    for i, comp in enumerate(parts):
        cur = os.path.join(cur, comp)
        try:
            st = os.lstat(cur)
        except OSError:
            return None
        if i < len(parts) - 1 and not stat.S_ISDIR(st.st_mode):
            return None
    return st if parts else None


def _lower_stat(lowers: list[str], parts: list[str]) -> os.stat_result | None:
    for lower in lowers:
        state, st = _layer_state(lower, parts)
        if state == "present":
            return st
        if state in ("hidden", "blocked"):
            return None
    return None


def init_artifacts(upper: str, lowers: list[str]) -> set[str]:
    """The init-layer entries of an upper dir ("/etc/hosts", ...): empty mount-point files, empty mount-point
    directories the image lacks, and their parents (/etc, /dev) when nothing else in them changed."""
    hidden: set[str] = set()
    for path in INIT_FILES:
        st = _upper_lstat(upper, path)
        if st is not None and stat.S_ISREG(st.st_mode) and st.st_size == 0:
            hidden.add(path)
    for path in INIT_DIRS:
        st = _upper_lstat(upper, path)
        parts = [p for p in path.split("/") if p]
        if st is None or not stat.S_ISDIR(st.st_mode) or _in_lowers(lowers, parts):
            continue
        if all(f"{path}/{n}" in hidden for n in os.listdir(os.path.join(upper, *parts))):
            hidden.add(path)
    for path in _INIT_PARENTS:
        st = _upper_lstat(upper, path)
        parts = [p for p in path.split("/") if p]
        if path in hidden or st is None or not stat.S_ISDIR(st.st_mode) or _opaque(os.path.join(upper, *parts)):
            continue
        if not all(f"{path}/{n}" in hidden for n in os.listdir(os.path.join(upper, *parts))):
            continue
        low = _lower_stat(lowers, parts)
        if low is None or (
            stat.S_ISDIR(low.st_mode)
            and (low.st_mode, low.st_uid, low.st_gid) == (st.st_mode, st.st_uid, st.st_gid)
        ):
            hidden.add(path)
    return hidden


def overlay_changes(upper: str, lowers: list[str]) -> list[tuple[int, str]]:
    """docker diff: sorted (kind, "/path") with kind 0=Modified (C), 1=Added (A), 2=Deleted (D).

    The upper dir belongs to a possibly running container, so it is walked by fd with O_NOFOLLOW, depth first,
    holding one fd per level of depth (never one per sibling: a wide directory must not exhaust fds)."""
    out: list[tuple[int, str]] = []
    # (dir fd, its entries, next index, its path parts)
    stack: list[tuple[int, list[tuple[str, os.stat_result]], int, list[str]]] = []

    def enter(fd: int, parts: list[str]) -> None:
        try:
            with os.scandir(fd) as it:
                entries = sorted((e.name, e.stat(follow_symlinks=False)) for e in it)
        except BaseException:
            os.close(fd)
            raise
        stack.append((fd, entries, 0, parts))
        if parts and _opaque_fd(fd) and _in_lowers(lowers, parts):
            present = {name for name, _ in entries}
            for name in _lower_children(lowers, parts) - present:
                out.append((DELETED, "/" + "/".join(parts + [name])))

    enter(os.open(upper, _DIR_FLAGS), [])
    try:
        while stack:
            fd, entries, i, parts = stack[-1]
            if i >= len(entries):
                os.close(fd)
                stack.pop()
                continue
            stack[-1] = (fd, entries, i + 1, parts)
            name, st = entries[i]
            child = parts + [name]
            path = "/" + "/".join(child)
            if _whiteout(st):
                if _in_lowers(lowers, child):
                    out.append((DELETED, path))
                continue
            out.append((MODIFIED if _in_lowers(lowers, child) else ADDED, path))
            if stat.S_ISDIR(st.st_mode):
                try:
                    cfd = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError as e:
                    if e.errno not in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
                        raise
                    continue
                enter(cfd, child)
    finally:
        for fd, *_ in stack:
            os.close(fd)
    hidden = init_artifacts(upper, lowers)
    out = [c for c in out if c[1] not in hidden]
    out.sort(key=lambda c: c[1])
    return out
