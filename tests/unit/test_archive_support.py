"""Helpers for the archive tests (no tests here): building tars entry by entry, scratch directories
with an outside witness, and snapshots of a tree to prove nothing outside the target changed."""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class E:
    """One tar entry to write: kind is one of dir, file, sym, link, chr, blk, fifo."""

    kind: str
    name: str
    data: bytes = b""
    mode: int = 0o644
    target: str = ""
    uid: int = 0
    gid: int = 0
    mtime: int = 1_600_000_000
    xattrs: dict[str, bytes] | None = None
    major: int = 0
    minor: int = 0


def d(name: str, mode: int = 0o755, **kw: object) -> E:
    return E("dir", name, mode=mode, **kw)  # type: ignore[arg-type]


def f(name: str, data: bytes = b"", mode: int = 0o644, **kw: object) -> E:
    return E("file", name, data=data, mode=mode, **kw)  # type: ignore[arg-type]


def sym(target: str, name: str) -> E:
    return E("sym", name, target=target, mode=0o777)


def link(target: str, name: str) -> E:
    return E("link", name, target=target)


_KINDS = {
    "dir": tarfile.DIRTYPE,
    "file": tarfile.REGTYPE,
    "sym": tarfile.SYMTYPE,
    "link": tarfile.LNKTYPE,
    "chr": tarfile.CHRTYPE,
    "blk": tarfile.BLKTYPE,
    "fifo": tarfile.FIFOTYPE,
}


def tar_bytes(*entries: E) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.type = _KINDS[e.kind]
            info.mode, info.uid, info.gid, info.mtime = e.mode, e.uid, e.gid, e.mtime
            info.linkname = e.target
            info.devmajor, info.devminor = e.major, e.minor
            if e.xattrs:
                info.pax_headers = {
                    "SCHILY.xattr." + k: v.decode("utf-8", "surrogateescape") for k, v in e.xattrs.items()
                }
            if e.kind == "file":
                info.size = len(e.data)
                tf.addfile(info, io.BytesIO(e.data))
            else:
                tf.addfile(info)
    return buf.getvalue()


@dataclass
class Scratch:
    base: str  # the temp dir: holds `root` and the outside witnesses
    root: str  # the extraction target

    def path(self, rel: str) -> str:
        return os.path.join(self.root, rel.lstrip("/"))

    def read(self, rel: str) -> bytes:
        with open(self.path(rel), "rb") as fh:
            return fh.read()


@contextmanager
def scratch() -> Iterator[Scratch]:
    """A temp dir with `root/` to extract into and siblings that must never change."""
    base = tempfile.mkdtemp(prefix="gorae-archive-test-")
    try:
        root = os.path.join(base, "root")
        os.mkdir(root)
        outside = os.path.join(base, "outside")
        os.makedirs(os.path.join(outside, "etc"))
        with open(os.path.join(outside, "etc", "passwd"), "w") as fh:
            fh.write("outside")
        with open(os.path.join(base, "witness"), "w") as fh:
            fh.write("witness")
        os.chmod(os.path.join(base, "witness"), 0o400)
        yield Scratch(base, root)
    finally:
        subprocess.run(["chattr", "-R", "-i", base], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


Snap = dict[str, tuple[int, int, int, bytes | str | None]]


def snapshot(top: str, *, skip: str | None = None, nlink: bool = False) -> Snap:
    """(mode, uid, size, content-or-link) of every path under top, not following symlinks; with
    `nlink`, the size slot carries the link count too (a hardlink made to an outside file shows)."""
    out: Snap = {}
    for dirpath, dirnames, filenames in os.walk(top):
        if skip is not None:
            dirnames[:] = [n for n in dirnames if os.path.join(dirpath, n) != skip]
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            if p == skip:
                continue
            st = os.lstat(p)
            content: bytes | str | None = None
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as fh:
                    content = fh.read()
            elif stat.S_ISLNK(st.st_mode):
                content = os.readlink(p)
            size = st.st_size if not nlink or stat.S_ISDIR(st.st_mode) else st.st_size * 1000 + st.st_nlink
            out[os.path.relpath(p, top)] = (st.st_mode, st.st_uid, size, content)
    return out


def outside_state(s: Scratch) -> Snap:
    return snapshot(s.base, skip=s.root, nlink=True)
