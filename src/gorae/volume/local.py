"""The `local` volume driver: `<data-root>/volumes/<name>/_data`, with dockerd's names, texts and options.

Options follow docker's local driver: `type`, `device`, `o` make the volume a mount (tmpfs, bind, nfs, ...)
mounted at `_data` while a container uses it; without options it is a plain directory. Records live in the
metadata store (kind "volume"); the directory is the data. A volume used by a container cannot be removed.
The service publishes the `volume` events (create, destroy, prune) through the `Publisher` it is given,
for volumes made by the API and for those made and removed along with containers alike, as dockerd does.
"""

from __future__ import annotations

import builtins
import logging
import os
import re
import secrets
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from gorae.archive.tree import remove_tree, tree_usage
from gorae.errors import CommandFailed, Conflict, InvalidParameter, NotFound
from gorae.events import Publisher
from gorae.filters import Filters
from gorae.store.schema import VOLUME
from gorae.timefmt import rfc3339_seconds

log = logging.getLogger("gorae.volume")

_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_LOCAL_OPTS = {"type", "device", "o", "size"}


class Meta(Protocol):
    def put(self, kind: str, id: str, doc: dict[str, Any], *, name: str | None = None) -> None: ...
    def get(self, kind: str, id: str) -> dict[str, Any]: ...
    def list(self, kind: str) -> list[dict[str, Any]]: ...
    def delete(self, kind: str, id: str) -> None: ...


MAX_NAME = 255  # a volume is a directory named after it: NAME_MAX


def validate_name(name: str) -> None:
    if len(name) > MAX_NAME:
        raise InvalidParameter(
            f"create {name[:64]}...: volume name is too long, names should be at most {MAX_NAME} characters"
        )
    if len(name) < 2:
        raise InvalidParameter(
            f"create {name}: volume name is too short, names should be at least two alphanumeric characters"
        )
    if not _NAME.match(name):
        raise InvalidParameter(
            f'create {name}: "{name}" includes invalid characters for a local volume name, only '
            '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path'
        )


class VolumeService:
    """Create, list, inspect, remove and mount local volumes. `users(name)` tells which containers use one."""

    def __init__(
        self,
        meta: Meta,
        root: str,
        users: Callable[[str], list[str]] | None = None,
        *,
        publish: Publisher | None = None,
    ) -> None:
        self.meta = meta
        self._publish = publish
        self.root = root
        self.users = users or (lambda name: [])
        self._lock = threading.Lock()
        self._refs: dict[str, int] = {}
        os.makedirs(root, mode=0o701, exist_ok=True)

    def _event(self, action: str, actor: str, attributes: dict[str, str]) -> None:
        if self._publish is not None:
            self._publish("volume", action, actor, attributes)

    # -- records ---------------------------------------------------------------------------------
    def _doc(self, name: str) -> dict[str, Any]:
        try:
            return self.meta.get(VOLUME, name)
        except NotFound:
            raise NotFound(f"get {name}: no such volume") from None

    def _public(self, doc: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in doc.items() if not k.startswith("_")}
        if not out.get("Labels"):  # dockerd answers null for a volume without labels (older records kept {})
            out["Labels"] = None
        return out

    def path(self, name: str) -> str:
        return os.path.join(self.root, name, "_data")

    def create(
        self,
        name: str | None = None,
        driver: str | None = "local",
        labels: dict[str, str] | None = None,
        options: dict[str, str] | None = None,
        *,
        anonymous: bool = False,
    ) -> dict[str, Any]:
        driver = driver or "local"
        if not name:
            name = secrets.token_hex(32)
            anonymous = True
        if driver != "local":  # dockerd: "create NAME: ..." (the name it was asked for, or the one it made)
            raise NotFound(f'create {name}: error looking up volume plugin {driver}: plugin "{driver}" not found')
        validate_name(name)
        options = dict(options or {})
        bad = sorted(set(options) - _LOCAL_OPTS)
        if bad:
            raise InvalidParameter(f"invalid option key: {bad[0]!r}")
        if options and "type" not in options and "device" in options:
            raise InvalidParameter('missing required option: "type"')
        with self._lock:
            try:
                existing = self.meta.get(VOLUME, name)
            except NotFound:
                existing = None
            if existing is not None:
                doc = existing
            else:
                doc = self._new(name, labels, options, anonymous)
        self._event("create", doc["Name"], {"driver": doc["Driver"]})
        return self._public(doc)

    def _new(
        self, name: str, labels: dict[str, str] | None, options: dict[str, str], anonymous: bool
    ) -> dict[str, Any]:
        data = self.path(name)
        os.makedirs(data, mode=0o755, exist_ok=True)
        labels = dict(labels or {})
        if anonymous:
            labels.setdefault("com.docker.volume.anonymous", "")
        doc = {
            "CreatedAt": rfc3339_seconds(time.time()),
            "Driver": "local",
            "Labels": labels or None,
            "Mountpoint": data,
            "Name": name,
            "Options": options or None,
            "Scope": "local",
        }
        self.meta.put(VOLUME, name, doc, name=name)
        return doc

    def exists(self, name: str) -> bool:
        try:
            self.meta.get(VOLUME, name)
        except NotFound:
            return False
        return True

    def inspect(self, name: str) -> dict[str, Any]:
        return self._public(self._doc(name))

    def list(self, filters: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
        wanted = Filters(filters)
        wanted.validate(("dangling", "name", "label", "driver"))
        out = [self._public(doc) for doc in self.meta.list(VOLUME) if self._match(doc, wanted)]
        out.sort(key=lambda d: d["Name"])
        return out

    def _match(self, doc: dict[str, Any], wanted: Filters) -> bool:
        if "name" in wanted and not any(v in doc["Name"] for v in wanted["name"]):  # substring, as dockerd
            return False
        if not wanted.exact("driver", doc["Driver"]):
            return False
        if "dangling" in wanted:
            want = wanted["dangling"][-1].lower() in ("1", "true")
            if bool(self.users(doc["Name"])) == want:
                return False
        return wanted.match_labels(doc.get("Labels"))

    def remove(self, name: str, force: bool = False) -> None:
        with self._lock:
            try:
                doc = self.meta.get(VOLUME, name)
            except NotFound:
                if not force:
                    raise NotFound(f"get {name}: no such volume") from None
                doc = None
            if doc is not None:
                users = self.users(name)
                if users:
                    raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
                self._unmount(doc)
                try:  # at any depth; a mount still inside (an unmount that failed) is never emptied
                    remove_tree(os.path.join(self.root, name))
                except OSError as e:
                    log.warning("volume %s: could not remove its directory: %s", name, e)
                self.meta.delete(VOLUME, name)
        self._event("destroy", name, {"driver": "local"})

    def prune(self, filters: dict[str, builtins.list[str]] | None = None) -> dict[str, Any]:
        filters = dict(filters or {})
        everything = filters.pop("all", ["false"])[-1].lower() in ("1", "true")
        deleted: list[str] = []
        reclaimed = 0
        for doc in self.meta.list(VOLUME):
            name = doc["Name"]
            labels = doc.get("Labels") or {}
            if not everything and "com.docker.volume.anonymous" not in labels:
                continue
            if self.users(name) or not Filters(filters).match_labels(labels):
                continue
            size = tree_usage(os.path.join(self.root, name), blocks=True)
            try:
                self.remove(name)
            except (Conflict, NotFound):
                continue
            deleted.append(name)
            reclaimed += size
        self._event("prune", "", {"reclaimed": str(reclaimed)})
        return {"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed}

    def usage(self, name: str) -> int:
        return tree_usage(self.path(name), blocks=True)

    # -- mounting for containers -------------------------------------------------------------------
    def mount(self, name: str) -> str:
        """The host path to bind into a container; mounts a volume with driver options on first use."""
        doc = self._doc(name)
        opts = doc.get("Options") or {}
        data = self.path(name)
        with self._lock:
            n = self._refs.get(name, 0)
            if n == 0 and opts.get("type"):
                if not os.path.ismount(data):
                    self._mount_opts(opts, data)
            self._refs[name] = n + 1
        return data

    def unmount(self, name: str) -> None:
        with self._lock:
            n = self._refs.get(name, 0) - 1
            if n > 0:
                self._refs[name] = n
                return
            self._refs.pop(name, None)
            try:
                doc = self.meta.get(VOLUME, name)
            except NotFound:
                return
            self._unmount(doc)

    def _mount_opts(self, opts: dict[str, str], target: str) -> None:
        argv = ["mount", "-t", opts["type"]]
        o = opts.get("o", "")
        if opts.get("size") and opts["type"] == "tmpfs":
            o = ",".join(x for x in (o, f"size={opts['size']}") if x)
        if o:
            argv += ["-o", o]
        argv += [opts.get("device") or opts["type"], target]
        res = subprocess.run(argv, capture_output=True, text=True)
        if res.returncode != 0:
            raise CommandFailed(argv, res.returncode, res.stderr)

    def _unmount(self, doc: dict[str, Any]) -> None:
        data = doc.get("Mountpoint") or self.path(doc["Name"])
        if (doc.get("Options") or {}).get("type") and os.path.ismount(data):
            subprocess.run(["umount", data], capture_output=True)
