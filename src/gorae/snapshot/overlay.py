"""The overlayfs snapshotter: snapshots as numbered directories `<root>/<n>/{diff,work}` chained by parent.

Records (key, number, parent, kind, usage) live in `<root>/snapshots.db` (a `MetadataStore`). Directory
names are short numbers so that mount option strings stay short. A writable snapshot without a parent and
a read-only view of a single layer are bind mounts, as in containerd; everything else is an overlay mount
whose lowerdirs are the parents' `diff` directories, nearest first. Directories without a record (left by
a crash between the two steps of prepare or remove) are deleted when the snapshotter opens. Trees are removed
and measured by `archive.tree`, at any depth.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import os
import threading
import time
from typing import Any

from gorae.archive.tree import remove_tree, tree_usage
from gorae.errors import Conflict, DiskFull, InvalidParameter, NotFound
from gorae.snapshot.types import Kind, Mount, SnapshotInfo
from gorae.store.metadata import MetadataStore, OnFull

_KIND = "snapshot"
# As dockerd's overlay2 root: only root may traverse to the layers (setuid files in them must not be reachable
# by other local users, CVE-2021-41091).
ROOT_MODE = 0o710

log = logging.getLogger("gorae.snapshot")


class OverlaySnapshotter:
    def __init__(self, root: str, *, on_full: OnFull | None = None) -> None:
        self.root = os.path.abspath(root)
        if any(c in self.root for c in ",:"):
            raise InvalidParameter(f"overlay root {self.root!r} must not contain ',' or ':'")
        os.makedirs(self.root, mode=ROOT_MODE, exist_ok=True)
        os.chmod(self.root, ROOT_MODE)  # also on a root made by an older gorae
        self._meta = MetadataStore(os.path.join(self.root, "snapshots.db"), on_full=on_full)
        self._lock = threading.RLock()
        self._cleanup()

    def close(self) -> None:
        self._meta.close()

    # ---- records -------------------------------------------------------------------------------

    def _get(self, key: str) -> dict[str, Any]:
        try:
            return self._meta.get(_KIND, key)
        except NotFound:
            raise NotFound(f"snapshot {key} does not exist") from None

    def _dir(self, rec: dict[str, Any]) -> str:
        return os.path.join(self.root, str(int(rec["id"])))

    def _cleanup(self) -> None:
        known = {str(int(doc["id"])) for _, doc in self._meta.items(_KIND)}
        for name in os.listdir(self.root):
            path = os.path.join(self.root, name)
            orphan = name.isdigit() and name not in known
            if (orphan or name.startswith("rm-")) and os.path.isdir(path):
                try:
                    remove_tree(path)
                except OSError as e:  # debris never stops a start: logged, tried again at the next one
                    log.warning("could not remove %s: %s", path, e)

    def _next_id(self) -> int:
        with self._meta.transaction():
            try:
                n = int(self._meta.get("counter", "next")["n"])
            except NotFound:
                n = 1
            self._meta.put("counter", "next", {"n": n + 1})
        return n

    def _chain(self, key: str | None) -> list[dict[str, Any]]:
        """Records of key and its ancestors, nearest first."""
        out: list[dict[str, Any]] = []
        while key is not None:
            rec = self._get(key)
            out.append(rec)
            key = rec.get("parent")
        return out

    # ---- Snapshotter ---------------------------------------------------------------------------

    def exists(self, key: str) -> bool:
        return self._meta.exists(_KIND, key)

    def _create(self, key: str, parent: str | None, kind: Kind) -> list[Mount]:
        if not key:
            raise InvalidParameter("snapshot key must not be empty")
        with self._lock:
            if self._meta.exists(_KIND, key):
                raise Conflict(f"snapshot {key} already exists")
            if parent is not None:
                prec = self._get(parent)
                if prec["kind"] != Kind.COMMITTED.value:
                    raise InvalidParameter(f"parent snapshot {parent} is not committed")
            n = self._next_id()
            d = os.path.join(self.root, str(n))
            os.makedirs(os.path.join(d, "diff"), mode=0o755)
            if kind == Kind.ACTIVE:
                os.makedirs(os.path.join(d, "work"), mode=0o700)
            rec = {"id": n, "parent": parent, "kind": kind.value, "created": time.time_ns(), "usage": None}
            try:
                self._meta.put(_KIND, key, rec)
            except BaseException:
                with contextlib.suppress(OSError):
                    remove_tree(d)
                raise
            return self._mounts(rec)

    def prepare(self, key: str, parent: str | None) -> list[Mount]:
        return self._create(key, parent, Kind.ACTIVE)

    def view(self, key: str, parent: str | None) -> list[Mount]:
        return self._create(key, parent, Kind.VIEW)

    def mounts(self, key: str) -> list[Mount]:
        rec = self._get(key)
        if rec["kind"] == Kind.COMMITTED.value:
            raise InvalidParameter(f"snapshot {key} is committed: mount a view of it instead")
        return self._mounts(rec)

    def _mounts(self, rec: dict[str, Any]) -> list[Mount]:
        d = self._dir(rec)
        lowers = [os.path.join(self._dir(r), "diff") for r in self._chain(rec.get("parent"))]
        if rec["kind"] == Kind.VIEW.value:
            if not lowers:
                return [Mount("bind", os.path.join(d, "diff"), ["ro", "rbind"])]
            if len(lowers) == 1:
                return [Mount("bind", lowers[0], ["ro", "rbind"])]
            return [Mount("overlay", "overlay", ["ro", "lowerdir=" + ":".join(lowers)])]
        if not lowers:
            return [Mount("bind", os.path.join(d, "diff"), ["rw", "rbind"])]
        return [
            Mount(
                "overlay",
                "overlay",
                [
                    "index=off",
                    f"workdir={os.path.join(d, 'work')}",
                    f"upperdir={os.path.join(d, 'diff')}",
                    "lowerdir=" + ":".join(lowers),
                ],
            )
        ]

    def commit(self, name: str, key: str) -> None:
        if not name:
            raise InvalidParameter("snapshot name must not be empty")
        with self._lock:
            rec = self._get(key)
            if rec["kind"] != Kind.ACTIVE.value:
                raise InvalidParameter(f"snapshot {key} is not active")
            if self._meta.exists(_KIND, name):
                raise Conflict(f"snapshot {name} already exists")
            rec = {
                **rec,
                "kind": Kind.COMMITTED.value,
                "usage": tree_usage(os.path.join(self._dir(rec), "diff")),
            }
            with self._meta.transaction():
                self._meta.delete(_KIND, key)
                self._meta.put(_KIND, name, rec)

    def _children(self, key: str) -> list[str]:
        return [k for k, doc in self._meta.items(_KIND) if doc.get("parent") == key]

    def remove(self, key: str) -> None:
        with self._lock:
            rec = self._get(key)
            children = self._children(key)
            if children:
                raise Conflict(f"cannot remove snapshot {key}: it has {len(children)} child snapshot(s)")
            try:
                self._meta.delete(_KIND, key)
            except DiskFull:
                # even the reserve is gone (something ate it): free the snapshot's own space first, then
                # the record can go (a crash in between leaves a record whose directory is gone, which a
                # later remove of the same key finishes)
                self._remove_dir(rec)
                self._meta.delete(_KIND, key)
                return
            self._remove_dir(rec)

    def _remove_dir(self, rec: dict[str, Any]) -> None:
        d = self._dir(rec)
        # a directory left behind by a failure here is collected at the next start
        trash = os.path.join(self.root, f"rm-{int(rec['id'])}")
        with contextlib.suppress(OSError):
            os.rename(d, trash)
            d = trash
        if not os.path.lexists(d):
            return
        try:
            remove_tree(d)
        except OSError as e:
            log.warning("could not remove %s (collected at the next start): %s", d, e)

    def stat(self, key: str) -> SnapshotInfo:
        rec = self._get(key)
        return SnapshotInfo(
            name=key, parent=rec.get("parent"), kind=Kind(rec["kind"]), created=int(rec["created"])
        )

    def list(self) -> list[SnapshotInfo]:
        return [
            SnapshotInfo(name=k, parent=r.get("parent"), kind=Kind(r["kind"]), created=int(r["created"]))
            for k, r in self._meta.items(_KIND)
        ]

    def upper_dir(self, key: str) -> str:
        """The `diff` directory of the snapshot (the writable one of an active snapshot)."""
        return os.path.join(self._dir(self._get(key)), "diff")

    def work_dir(self, key: str) -> str:
        return os.path.join(self._dir(self._get(key)), "work")

    def lower_dirs(self, key: str) -> builtins.list[str]:
        rec = self._get(key)
        return [os.path.join(self._dir(r), "diff") for r in self._chain(rec.get("parent"))]

    def usage(self, key: str) -> int:
        rec = self._get(key)
        if rec.get("usage") is not None:
            return int(rec["usage"])
        return tree_usage(os.path.join(self._dir(rec), "diff"))
