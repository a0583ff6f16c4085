"""Locating and describing one path inside a container root, as docker's archive API sees it.

Owns `PathStat` (the X-Docker-Container-Path-Stat header: base64 JSON {"name","size","mode","mtime",
"linkTarget"} with Go os.FileMode bits) and `locate`, docker's ResolvePath: the directory part of a
path is resolved inside the root (symlinks followed *within* it), the last element is not followed
unless the path ends in `/` or `/.`. Must never resolve anything against the host's `/`.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass

from gorae.archive.inroot import MountSpec, Root
from gorae.archive.names import clean_parts
from gorae.errors import NotFound
from gorae.timefmt import rfc3339nano

# Go's os.FileMode type bits
MODE_DIR = 1 << 31
MODE_SYMLINK = 1 << 27
MODE_DEVICE = 1 << 26
MODE_NAMED_PIPE = 1 << 25
MODE_SOCKET = 1 << 24
MODE_SETUID = 1 << 23
MODE_SETGID = 1 << 22
MODE_CHAR_DEVICE = 1 << 21
MODE_STICKY = 1 << 20
MODE_IRREGULAR = 1 << 19


def go_file_mode(st_mode: int) -> int:
    """A POSIX st_mode as Go's os.FileMode (permission bits + Go's own type and special bits)."""
    mode = st_mode & 0o777
    fmt = stat.S_IFMT(st_mode)
    if fmt == stat.S_IFDIR:
        mode |= MODE_DIR
    elif fmt == stat.S_IFLNK:
        mode |= MODE_SYMLINK
    elif fmt == stat.S_IFIFO:
        mode |= MODE_NAMED_PIPE
    elif fmt == stat.S_IFSOCK:
        mode |= MODE_SOCKET
    elif fmt == stat.S_IFBLK:
        mode |= MODE_DEVICE
    elif fmt == stat.S_IFCHR:
        mode |= MODE_DEVICE | MODE_CHAR_DEVICE
    elif fmt != stat.S_IFREG:
        mode |= MODE_IRREGULAR
    if st_mode & stat.S_ISUID:
        mode |= MODE_SETUID
    if st_mode & stat.S_ISGID:
        mode |= MODE_SETGID
    if st_mode & stat.S_ISVTX:
        mode |= MODE_STICKY
    return mode




@dataclass
class PathStat:
    name: str
    size: int
    mode: int  # Go os.FileMode bits
    mtime: str  # RFC 3339 with nanoseconds
    link_target: str = ""  # in-root absolute path a symlink resolves to

    @property
    def is_dir(self) -> bool:
        return bool(self.mode & MODE_DIR)

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "size": self.size,
            "mode": self.mode,
            "mtime": self.mtime,
            "linkTarget": self.link_target,
        }

    def to_header(self) -> str:
        """The value of docker's X-Docker-Container-Path-Stat header."""
        return base64.b64encode(json.dumps(self.to_json()).encode()).decode()


@dataclass
class Located:
    """A path found inside a root: the fd of its directory (caller closes), its name there (None for
    the root itself), its lstat, the base name docker reports, and its canonical in-root parts."""

    dir_fd: int
    name: str | None
    st: os.stat_result
    base: str
    parts: list[str]


def _base_name(path: str) -> str:
    """Go's filepath.Base of the absolute path docker builds (trailing `/.` kept as `.`)."""
    if path.endswith("/.") or path == ".":
        return "."
    parts = clean_parts(path)
    return parts[-1] if parts else "/"


def locate(root: Root, path: str) -> Located:
    """Find `path` inside `root`: NotFound when it does not exist."""
    parts = clean_parts(path)
    follow_last = path.endswith("/") or path.endswith("/.")  # "." and "": no parts, the root itself
    where = "/" + "/".join(parts)
    if follow_last or not parts:
        w = root.open_dir(parts)
        return Located(w.fd, None, os.fstat(w.fd), _base_name(path), w.parts)
    w = root.walk(parts[:-1])
    if w.rest:
        os.close(w.fd)
        raise NotFound(f"no such file or directory: {where}")
    m = root.mount_at([*w.parts, parts[-1]])
    if m is not None:  # a mount point: what is mounted there, never the root's own entry under it
        os.close(w.fd)
        dfd = os.dup(m.parent_fd)
        try:
            st = os.lstat(m.name, dir_fd=dfd)
        except BaseException:
            os.close(dfd)
            raise
        return Located(dfd, m.name, st, _base_name(path), [*w.parts, parts[-1]])
    try:
        st = os.lstat(parts[-1], dir_fd=w.fd)
    except FileNotFoundError:
        os.close(w.fd)
        raise NotFound(f"no such file or directory: {where}") from None
    return Located(w.fd, parts[-1], st, _base_name(path), w.parts + [parts[-1]])


def stat_path(root: str, path: str, mounts: Sequence[MountSpec] = ()) -> PathStat:
    """docker's container stat of `path` inside `root` and its `mounts` (HEAD /containers/{id}/archive)."""
    with Root(root, mounts) as r:
        loc = locate(r, path)
        try:
            link = ""
            if stat.S_ISLNK(loc.st.st_mode):
                link = "/" + "/".join(r.canonical(loc.parts))
            st = loc.st
            return PathStat(
                loc.base, st.st_size, go_file_mode(st.st_mode), rfc3339nano(st.st_mtime_ns), link
            )
        finally:
            os.close(loc.dir_fd)


def check_writable(root: str, path: str, mounts: Sequence[MountSpec] = (), readonly: bool = False) -> None:
    """InvalidParameter in docker's words when the directory `path` (inside `root` and its `mounts`) is
    on a read-only mount, or outside every mount of a `readonly` root; NotFound when it does not exist."""
    with Root(root, mounts, readonly=readonly) as r:
        w = r.open_dir(clean_parts(path))
        os.close(w.fd)
        r.check_writable(w.parts)
