"""The build context on disk: extracted safely from the uploaded tar (symlinks stay links inside it), paths
resolved inside a root the way a container would see them (a link never leads out), sources matched by
wildcards, and content checksums for the cache. Blocking: call from a thread."""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import stat
from collections.abc import Callable
from typing import Any, BinaryIO, cast

from gorae.archive import extract_to
from gorae.archive.streams import decompressed
from gorae.dockerignore import compile_pattern
from gorae.errors import InvalidParameter, NotFound

MAX_LINKS = 255


class _Terminated(io.RawIOBase):
    """The uncompressed context, its last entry padded and the end-of-archive blocks added when the sender
    left them out (the docker CLI's `-f` outside the context does; dockerd accepts it)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._n = 0
        self._tail: bytes | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self._tail is None:
            data = self._raw.read(len(b))
            if data:
                self._n += len(data)
                b[: len(data)] = data
                return len(data)
            self._tail = b"\0" * ((-self._n) % 512 + 1024)
        k = min(len(b), len(self._tail))
        b[:k] = self._tail[:k]
        self._tail = self._tail[k:]
        return k


def extract_context(stream: BinaryIO, into: str) -> None:
    """The context tar (plain, gzip, bzip2, xz) under the directory `into`."""
    try:
        plain, _ = decompressed(stream)
        extract_to(into, "/", cast(BinaryIO, io.BufferedReader(_Terminated(plain), 1 << 16)))
    except OSError as e:
        raise InvalidParameter(f"failed to extract the build context: {e.strerror or e}") from None


def walk_links(path: str, link_target: Callable[[list[str], bool], str | None]) -> list[str]:
    """The components `path` leads to: `..` stops at the root, a symlink (absolute or relative) is followed
    inside it. `link_target(components, last)` is the target of the link at `components` (`last`: nothing
    of `path` follows it), or None where there is no link to follow. InvalidParameter past MAX_LINKS links."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    done: list[str] = []
    links = 0
    while parts:
        p = parts.pop(0)
        if p == "..":
            if done:
                done.pop()
            continue
        target = link_target([*done, p], not parts)
        if target is not None:
            links += 1
            if links > MAX_LINKS:
                raise InvalidParameter(f"too many links in {path}")
            if target.startswith("/"):
                done = []
            parts = [x for x in target.split("/") if x not in ("", ".")] + parts
            continue
        done.append(p)
    return done


def resolve_in(root: str, path: str, *, follow_last: bool = True) -> str:
    """The host path of `path` inside `root`: `..` stops at the root, symlinks (absolute or relative) are
    followed inside it. The result may not exist; it is always below `root`."""

    def link_target(components: list[str], last: bool) -> str | None:
        cand = os.path.join(root, *components)
        if (not last or follow_last) and os.path.islink(cand):
            return os.readlink(cand)
        return None

    return os.path.join(root, *walk_links(path, link_target))


def rel_of(root: str, host: str) -> str:
    return os.path.relpath(host, root).replace(os.sep, "/")


def match_sources(root: str, pattern: str) -> list[str]:
    """Context-relative paths matching `pattern` (a plain path, or with `*`, `?`, `[...]`)."""
    clean = posixpath.normpath("/" + pattern).lstrip("/") or "."
    if not any(ch in clean for ch in "*?["):
        host = resolve_in(root, clean)
        if not os.path.lexists(host):
            raise NotFound(
                f"COPY failed: file not found in build context or excluded by .dockerignore: stat {clean}: file does not exist"
            )
        return [rel_of(root, host) if host != root else "."]
    rx = compile_pattern(clean)
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            rel = rel_of(root, os.path.join(dirpath, name))
            if rx.match(rel):
                found.append(rel)
    if not found:
        raise NotFound("COPY failed: no source files were specified")
    return found


def checksum(host: str) -> str:
    """`file:<sha256>` / `dir:<sha256>` of a source's names, modes, link targets and content."""
    st = os.lstat(host)
    if not stat.S_ISDIR(st.st_mode):
        return "file:" + _entry_hash(host, st).hexdigest()
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(host):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            p = os.path.join(dirpath, name)
            h.update(os.path.relpath(p, host).encode(errors="surrogateescape") + b"\0")
            h.update(_entry_hash(p, os.lstat(p)).digest())
    return "dir:" + h.hexdigest()


def _entry_hash(p: str, st: os.stat_result) -> hashlib._Hash:
    h = hashlib.sha256(f"{stat.S_IMODE(st.st_mode):o}:{stat.S_IFMT(st.st_mode)}\0".encode())
    if stat.S_ISLNK(st.st_mode):
        h.update(os.readlink(p).encode(errors="surrogateescape"))
    elif stat.S_ISREG(st.st_mode):
        with open(p, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    return h
