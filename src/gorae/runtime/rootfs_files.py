"""Reading files of a container's rootfs as the container would see them.

Owns symlink resolution confined to the rootfs (absolute links and ".." are clamped at the root,
as chroot would), so a hostile image can never make gorae read a host file. Never writes.
"""

from __future__ import annotations

import errno
import os
import stat

MAX_SYMLINKS = 40


def resolve_in_root(root: str, path: str) -> str:
    """Host path of `path` inside `root`, resolving symlinks as if `root` were "/".

    The final component is resolved too. Missing components are kept as they are.
    """
    root = os.path.abspath(root)
    todo = [p for p in path.split("/") if p]
    todo.reverse()
    done: list[str] = []
    links = 0
    while todo:
        part = todo.pop()
        if part == ".":
            continue
        if part == "..":
            if done:
                done.pop()
            continue
        host = os.path.join(root, *done, part)
        try:
            st = os.lstat(host)
        except FileNotFoundError:
            done.append(part)
            continue
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > MAX_SYMLINKS:
                raise OSError(errno.ELOOP, "too many levels of symbolic links", path)
            target = os.readlink(host)
            if target.startswith("/"):
                done = []
            rest = [p for p in target.split("/") if p]
            rest.reverse()
            todo.extend(rest)
            continue
        done.append(part)
    return os.path.join(root, *done)


def read_in_root(root: str, path: str, max_bytes: int = 16 << 20) -> bytes | None:
    """Contents of regular file `path` in `root`, or None if it does not exist or is not a file."""
    try:
        host = resolve_in_root(root, path)
        fd = os.open(host, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks: list[bytes] = []
        total = 0
        while total < max_bytes:
            b = os.read(fd, min(1 << 16, max_bytes - total))
            if not b:
                break
            chunks.append(b)
            total += len(b)
        return b"".join(chunks)
    finally:
        os.close(fd)
