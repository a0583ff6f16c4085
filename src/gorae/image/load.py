"""`docker load`: docker-save tarballs (manifest.json + layer tars) and OCI image layouts (index.json).

The tarball (maybe compressed) is spooled to a temp file and read as an archive of named members: paths in
manifest.json or index.json are looked up as member names, never joined to the filesystem. Member names
with "..", absolute names, link loops or links to non-files are refused. Layers go through `LayerStore`
(and so `gorae.archive.apply_layer`) and must match the config's diff_ids.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import tarfile
import tempfile
from collections.abc import Iterator
from typing import IO, Any, BinaryIO, cast

from gorae.errors import GoraeError, InvalidParameter, no_space
from gorae.image import reference as refs
from gorae.image.compression import decompressed
from gorae.image.models import chain_ids, parse_config
from gorae.image.store import ImageStore
from gorae.platform import host_arch
from gorae.store.digest import parse_digest, sha256_digest

MAX_MEMBERS = 200_000
MAX_JSON = 16 << 20
MAX_LINK_DEPTH = 16
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


def _clean(name: str) -> str | None:
    """A member name in canonical form, or None when it could point outside the archive's namespace."""
    if not name or "\x00" in name or name.startswith("/"):
        return None
    norm = posixpath.normpath(name)
    if norm == ".." or norm.startswith("../") or norm.startswith("/"):
        return None
    return norm


class Archive:
    """Read-only access to the members of a tar by name."""

    def __init__(self, path: str) -> None:
        try:
            self._tar = tarfile.open(path, mode="r:")
            members: dict[str, tarfile.TarInfo] = {}
            for n, ti in enumerate(self._tar):
                if n >= MAX_MEMBERS:
                    raise InvalidParameter("invalid archive: too many entries")
                name = _clean(ti.name)
                if name is not None and name != ".":
                    members[name] = ti
        except (tarfile.TarError, EOFError, OSError) as e:
            raise InvalidParameter(f"invalid archive: {e}") from None
        self.members = members

    def close(self) -> None:
        self._tar.close()

    def has(self, name: str) -> bool:
        n = _clean(name)
        return n is not None and n in self.members

    def _resolve(self, name: str) -> tarfile.TarInfo:
        n = _clean(name)
        if n is None:
            raise InvalidParameter(f"invalid path in archive manifest: {name!r}")
        for _ in range(MAX_LINK_DEPTH):
            ti = self.members.get(n)
            if ti is None:
                raise InvalidParameter(f"invalid archive: {name!r} not found")
            if ti.isreg():
                return ti
            if ti.issym():
                target = posixpath.join(posixpath.dirname(n), ti.linkname)
            elif ti.islnk():
                target = ti.linkname
            else:
                raise InvalidParameter(f"invalid archive: {name!r} is not a file")
            t = _clean(target)
            if t is None:
                raise InvalidParameter(f"invalid archive: {name!r} links outside the archive")
            n = t
        raise InvalidParameter(f"invalid archive: too many links at {name!r}")

    def open(self, name: str) -> IO[bytes]:
        f = self._tar.extractfile(self._resolve(name))
        if f is None:
            raise InvalidParameter(f"invalid archive: {name!r} is not a file")
        return f

    def read(self, name: str, limit: int = MAX_JSON) -> bytes:
        ti = self._resolve(name)
        if ti.size > limit:
            raise InvalidParameter(f"invalid archive: {name!r} is too large")
        with self.open(name) as f:
            return f.read()

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.read(name))
        except ValueError as e:
            raise InvalidParameter(f"invalid {name}: {e}") from None


def _spool(store: ImageStore, stream: BinaryIO) -> str:
    fd, path = tempfile.mkstemp(dir=store.tmp, prefix="load-")
    try:
        with os.fdopen(fd, "wb") as f:
            src = decompressed(stream)
            while True:
                chunk = src.read(1 << 20)
                if not chunk:
                    break
                f.write(chunk)
    except BaseException:
        os.unlink(path)
        raise
    return path


def load_archive(store: ImageStore, stream: BinaryIO) -> Iterator[str]:
    try:
        path = _spool(store, stream)
    except GoraeError:
        raise
    except (OSError, EOFError, ValueError) as e:
        full = no_space(e, store.tmp) if isinstance(e, OSError) else None
        if full is not None:  # the disk, not the archive
            raise full from None
        raise InvalidParameter(f"invalid archive: {e}") from None
    try:
        arc = Archive(path)
        try:
            if arc.has("manifest.json"):
                yield from _load_docker(store, arc)
            elif arc.has("index.json"):
                yield from _load_oci(store, arc)
            else:
                raise InvalidParameter("invalid archive: neither manifest.json nor index.json found")
        finally:
            arc.close()
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _load_image(
    store: ImageStore, arc: Archive, config: bytes, layer_names: list[str]
) -> tuple[str, list[int]]:
    cfg = parse_config(config)
    diff_ids = cfg["rootfs"].get("diff_ids") or []
    if len(diff_ids) != len(layer_names):
        raise InvalidParameter("invalid manifest: layers length mismatch")
    sizes: list[int] = []
    parent: str | None = None
    for diff_id, name, chain in zip(diff_ids, layer_names, chain_ids(diff_ids), strict=True):
        if store.layers.exists(chain) and store.layers.has_tar(diff_id):
            layer = store.layers.get(chain)
        else:
            with arc.open(name) as f:
                layer = store.layers.register(cast(BinaryIO, f), parent, expected_diff_id=diff_id)
        sizes.append(layer.size)
        parent = chain
    return sha256_digest(config), sizes


def _announce(store: ImageStore, iid: str, tags: list[refs.Reference]) -> Iterator[str]:
    if not tags:
        yield f"Loaded image ID: {iid}"
        return
    for t in tags:
        key = t.familiar()
        old = store.ref_target(key)
        if old and old != iid:
            yield f"The image {key} already exists, renaming the old one with ID {old} to empty string"
        store.set_ref(t, iid)
        yield f"Loaded image: {key}"


def _load_docker(store: ImageStore, arc: Archive) -> Iterator[str]:
    manifest = arc.json("manifest.json")
    if not isinstance(manifest, list):
        raise InvalidParameter("invalid manifest.json: not a list")
    for entry in manifest:
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
            raise InvalidParameter("invalid manifest.json entry")
        layers = entry.get("Layers") or []
        if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
            raise InvalidParameter("invalid manifest.json: Layers must be a list of paths")
        tags = [refs.parse_tagged(t) for t in entry.get("RepoTags") or []]
        config = arc.read(entry["Config"])
        iid, sizes = _load_image(store, arc, config, layers)
        store.register(config, sizes)
        yield from _announce(store, iid, tags)


def _blob(digest: Any) -> str:
    if not isinstance(digest, str):
        raise InvalidParameter("invalid descriptor digest")
    return "blobs/sha256/" + parse_digest(digest)


def _verified(arc: Archive, desc: dict[str, Any]) -> bytes:
    data = arc.read(_blob(desc.get("digest")))
    if sha256_digest(data) != desc.get("digest"):
        raise InvalidParameter(f"invalid archive: blob {desc.get('digest')} does not match its digest")
    return data


def _manifests(
    arc: Archive, index: dict[str, Any], depth: int = 0
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(descriptor from the top index, manifest) pairs, choosing linux/<host arch> in nested indexes."""
    if depth > 4:
        raise InvalidParameter("invalid archive: index nesting too deep")
    for desc in index.get("manifests") or []:
        if not isinstance(desc, dict):
            raise InvalidParameter("invalid index.json")
        body = json.loads(_verified(arc, desc))
        mt = desc.get("mediaType") or body.get("mediaType")
        if mt in INDEX_TYPES or "manifests" in body:
            chosen = [
                d
                for d in body.get("manifests") or []
                if (d.get("platform") or {}).get("os", "linux") == "linux"
                and (d.get("platform") or {}).get("architecture", host_arch()) == host_arch()
                and arc.has(_blob(d.get("digest")))
            ]
            if chosen:
                for _, m in _manifests(arc, {"manifests": chosen[:1]}, depth + 1):
                    yield desc, m
        elif mt in MANIFEST_TYPES or "layers" in body:
            yield desc, body


def _load_oci(store: ImageStore, arc: Archive) -> Iterator[str]:
    index = arc.json("index.json")
    if not isinstance(index, dict):
        raise InvalidParameter("invalid index.json")
    for desc, manifest in _manifests(arc, index):
        config = _verified(arc, manifest.get("config") or {})
        layer_names = [_blob((d or {}).get("digest")) for d in manifest.get("layers") or []]
        iid, sizes = _load_image(store, arc, config, layer_names)
        store.register(config, sizes)
        ann = desc.get("annotations") or {}
        tags: list[refs.Reference] = []
        for key in ("io.containerd.image.name", "org.opencontainers.image.ref.name"):
            name = ann.get(key)
            if not name:
                continue
            try:
                r = refs.parse(name)
            except InvalidParameter:
                continue
            if r.tag is not None or key == "io.containerd.image.name":
                tags.append(r.with_default_tag())
                break
        yield from _announce(store, iid, tags)
