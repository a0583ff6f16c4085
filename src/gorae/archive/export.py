"""Tar streams out of directories: `tar_dir` (export), `tar_overlay_diff` (commit), `tar_path` (docker cp out).

Owns choosing what goes into each archive and under which names; the walking and writing is
`tarwriter`'s, the path resolution inside a container root `pathstat.locate`'s. Must never follow a
symlink out of the tree it archives nor write anything to disk.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Collection, Sequence
from typing import BinaryIO

from gorae.archive.inroot import MountSpec, Root
from gorae.archive.pathstat import PathStat, go_file_mode, locate
from gorae.archive.tarwriter import TarWriter, TreeWriter
from gorae.timefmt import rfc3339nano


def tar_dir(root: str, out: BinaryIO) -> None:
    """The whole tree under `root` (not `root` itself), numeric owners, symlinks archived as links."""
    with Root(root) as r:
        w = TarWriter(out)
        TreeWriter(w).children(r.fd)
        w.close()


def tar_overlay_diff(upper: str, out: BinaryIO, *, exclude: Collection[str] = ()) -> None:
    """A layer tar of an overlay upper dir: 0:0 char devices become `.wh.NAME`, opaque directories get
    a `.wh..wh..opq` entry, overlayfs' own xattrs are left out; `exclude` ("/etc/hosts", ...) with what
    is below them."""
    with Root(upper) as r:
        w = TarWriter(out)
        TreeWriter(w, overlay=True, skip={p.strip("/") for p in exclude}).children(r.fd)
        w.close()


def tar_path(
    root: str,
    path: str,
    out: BinaryIO,
    *,
    rename_to: str | None = None,
    mounts: Sequence[MountSpec] = (),
) -> PathStat:
    """`docker cp` out of a container: a tar of `path` resolved inside `root` (symlinks followed within
    the root for all but the last element, which is followed only when `path` ends in `/` or `/.`).

    Entries are named after the base name of `path` (or `rename_to`): `name`, `name/child`, ...
    `mounts` are archived where they are mounted, as the container sees them.
    Returns the stat of what was archived. NotFound when `path` does not exist.
    """
    with Root(root, mounts) as r:
        loc = locate(r, path)
        try:
            arc = (rename_to if rename_to is not None else loc.base).strip("/") or "."
            w = TarWriter(out)
            tree = TreeWriter(w, root=r, owner_names=True)
            if loc.name is None:  # a directory reached by following everything
                st = os.fstat(loc.dir_fd)
                tree.entry(loc.dir_fd, ".", arc, parts=loc.parts)
            else:
                st = loc.st
                tree.entry(loc.dir_fd, loc.name, arc, parts=loc.parts)
            w.close()
            link = ""
            if stat.S_ISLNK(st.st_mode):
                link = "/" + "/".join(r.canonical(loc.parts))
            return PathStat(
                loc.base, st.st_size, go_file_mode(st.st_mode), rfc3339nano(st.st_mtime_ns), link
            )
        finally:
            os.close(loc.dir_fd)
