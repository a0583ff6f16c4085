"""`docker load`: docker-save tarballs (manifest.json + layer tars) and OCI image layouts (index.json).

The upload (maybe compressed) is read once, as it arrives, into an archive of named members: small members
(the JSON documents) are kept in memory, large ones (the layers) are written straight into content-store
ingests, hashed on the way, except compressed ones (gzip/zstd layers, never a diff_id), which go to
unhashed temp files in the store's scratch directory. manifest.json may come after the layers (docker 25+ writes it last), so
nothing is applied before the whole upload is read. Then a layer member whose digest is its diff_id (an
uncompressed layer tar) is committed as that blob as it is, without a copy, and applied from it; any other
(gzip/zstd) goes through `LayerStore.register`, which decompresses, stores and applies it in one pass.
The ingests nobody committed are deleted when the load ends, whatever way it ends.

Paths in manifest.json or index.json are looked up as member names, never joined to the filesystem. Member
names with "..", absolute names, link loops or links to non-files are refused. Layers go through
`LayerStore` (and so `gorae.archive`) and must match the config's diff_ids.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import posixpath
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, BinaryIO, cast

from gorae.archive import streams
from gorae.archive.apply import forget_members
from gorae.archive.chunks import ChunkReader
from gorae.errors import GoraeError, InvalidParameter, NotFound, no_space
from gorae.image import reference as refs
from gorae.image.ingest import CHUNK, BlobSpool
from gorae.image.models import chain_ids, parse_config
from gorae.image.store import ImageStore
from gorae.platform import host_arch
from gorae.store.content import ContentStore, ContentWriter
from gorae.store.digest import parse_digest, sha256_digest

MAX_MEMBERS = 200_000
MAX_JSON = 16 << 20
MAX_LINK_DEPTH = 16
IN_MEMORY = 1 << 20  # members up to this size are kept in memory ...
IN_MEMORY_TOTAL = 64 << 20  # ... up to this much in all; the rest goes to content-store ingests
OPEN_INGESTS = 256  # ingests kept open (more are closed and resumed, re-hashed, when used)
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


@dataclass
class _Compressed:
    """A large member that is compressed (a gzip/zstd layer): in an unhashed temp file under the store's
    scratch directory, read back by `LayerStore.register`, deleted by `Archive.close`."""

    path: str


@dataclass
class _Spooled:
    """A large member's body in a content-store ingest (`writer` None while closed), or, once committed,
    the blob `digest`."""

    ref: str
    digest: str
    writer: ContentWriter | None
    committed: bool = False


class Archive:
    """The members of an uploaded tar by name, read once from the stream (see the module docstring).
    `close()` deletes the ingests of the members nobody committed."""

    def __init__(self, content: ContentStore, tmp: str) -> None:
        self._content = content
        self._tmp = tmp
        self._compressed: dict[str, _Compressed] = {}
        self.members: dict[str, tarfile.TarInfo] = {}
        self._small: dict[str, bytes] = {}
        self._spooled: dict[str, _Spooled] = {}
        self._in_memory = 0
        self._open = 0

    @classmethod
    def from_stream(cls, content: ContentStore, tmp: str, stream: BinaryIO) -> Archive:
        arc = cls(content, tmp)
        try:
            arc._read_all(stream)
        except BaseException:
            arc.close()
            raise
        return arc

    def _read_all(self, stream: BinaryIO) -> None:
        src, _ = streams.decompressed(stream)
        total = 0

        def next_chunk() -> bytes:
            nonlocal total
            chunk = src.read(CHUNK)
            total += len(chunk)
            if total > streams.DEFAULT_MAX:
                raise InvalidParameter(f"archive larger than {streams.DEFAULT_MAX} bytes uncompressed")
            return chunk

        reader = ChunkReader(next_chunk)
        archive_errors: tuple[type[BaseException], ...] = (tarfile.TarError, UnicodeError)
        archive_errors += streams.decompress_errors()
        try:
            tf = tarfile.open(fileobj=reader, mode="r:")  # type: ignore[call-overload]
            with tf:
                for n in range(MAX_MEMBERS + 1):
                    ti = tf.next()
                    if ti is None:
                        break
                    forget_members(tf)
                    if n >= MAX_MEMBERS:
                        raise InvalidParameter("invalid archive: too many entries")
                    self._member(reader, ti)
            reader.drain()
        except GoraeError:
            raise
        except OSError as e:
            full = no_space(e, self._content.root)
            if full is not None:  # the disk, not the archive
                raise full from None
            raise InvalidParameter(f"invalid archive: {e}") from None
        except archive_errors as e:
            raise InvalidParameter(f"invalid archive: {e}") from None

    def _member(self, reader: ChunkReader, ti: tarfile.TarInfo) -> None:
        name = _clean(ti.name)
        if name is None or name == ".":
            return
        self.members[name] = ti
        self._small.pop(name, None)
        old = self._spooled.pop(name, None)
        if old is not None:  # a later member of the same name wins
            self._drop(old)
        gone = self._compressed.pop(name, None)
        if gone is not None:
            with contextlib.suppress(OSError):
                os.unlink(gone.path)
        if not ti.isreg():
            return
        if ti.sparse is not None:
            raise InvalidParameter(f"invalid archive: {ti.name!r} is a sparse file")
        if reader.tell() != ti.offset_data:
            reader.seek(ti.offset_data)
        if ti.size <= IN_MEMORY and self._in_memory + ti.size <= IN_MEMORY_TOTAL:
            data = reader.read(ti.size)
            if len(data) != ti.size:
                raise InvalidParameter(f"invalid archive: {ti.name!r} is truncated")
            self._small[name] = data
            self._in_memory += ti.size
            return
        if streams.is_compressed(reader.peek(8)):  # never a diff_id: not hashed, not an ingest
            self._spool_compressed(reader, name, ti)
            return
        ref = f"load-{uuid.uuid4().hex}"
        w = self._content.writer(ref)
        entry = _Spooled(ref, "", w)
        self._spooled[name] = entry
        self._open += 1
        spool = BlobSpool(w)  # hashed and written in a thread while the next chunks are read
        try:
            got = reader.feed(spool.put, ti.size)
            spool.finish()
        except BaseException:
            spool.cancel()
            raise
        if got != ti.size:
            raise InvalidParameter(f"invalid archive: {ti.name!r} is truncated")
        entry.digest = w.digest()
        if self._open > OPEN_INGESTS:  # keep the fds bounded: resumed (and re-hashed) when used
            w.close()
            entry.writer = None
            self._open -= 1

    def _spool_compressed(self, reader: ChunkReader, name: str, ti: tarfile.TarInfo) -> None:
        fd, path = tempfile.mkstemp(dir=self._tmp, prefix="load-")
        self._compressed[name] = _Compressed(path)
        try:
            got = reader.copy_to(fd, ti.size)
        finally:
            os.close(fd)
        if got != ti.size:
            raise InvalidParameter(f"invalid archive: {ti.name!r} is truncated")

    def _drop(self, entry: _Spooled) -> None:
        if entry.committed:
            return
        if entry.writer is not None:
            entry.writer.abort()
            entry.writer = None
            self._open -= 1
        else:
            with contextlib.suppress(NotFound, GoraeError, OSError):
                self._content.abort(entry.ref)

    def close(self) -> None:
        for c in self._compressed.values():
            with contextlib.suppress(OSError):
                os.unlink(c.path)
        for entry in self._spooled.values():
            with contextlib.suppress(GoraeError, OSError):
                self._drop(entry)

    def has(self, name: str) -> bool:
        n = _clean(name)
        return n is not None and n in self.members

    def _resolve(self, name: str) -> str:
        """The canonical name of the regular member `name` is or links to."""
        n = _clean(name)
        if n is None:
            raise InvalidParameter(f"invalid path in archive manifest: {name!r}")
        for _ in range(MAX_LINK_DEPTH):
            ti = self.members.get(n)
            if ti is None:
                raise InvalidParameter(f"invalid archive: {name!r} not found")
            if ti.isreg():
                return n
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

    def _writer(self, entry: _Spooled) -> ContentWriter:
        if entry.writer is None:
            entry.writer = self._content.writer(entry.ref)
            self._open += 1
        return entry.writer

    def open(self, name: str) -> IO[bytes]:
        n = self._resolve(name)
        if n in self._small:
            return io.BytesIO(self._small[n])
        if n in self._compressed:
            return open(self._compressed[n].path, "rb")
        entry = self._spooled[n]
        if entry.committed:
            return self._content.open(entry.digest)
        return self._writer(entry).reader()

    def commit_as(self, name: str, digest: str) -> bool:
        """Commit the spooled member `name` as the blob `digest` when that is its digest (no copy: the
        ingest is renamed into place); False when it is not, or is kept in memory."""
        n = self._resolve(name)
        entry = self._spooled.get(n)
        if entry is None or entry.digest != digest:
            return False
        if not entry.committed:
            self._writer(entry).commit(0, digest)
            entry.writer = None
            entry.committed = True
            self._open -= 1
        return True

    def read(self, name: str, limit: int = MAX_JSON) -> bytes:
        n = self._resolve(name)
        if self.members[n].size > limit:
            raise InvalidParameter(f"invalid archive: {name!r} is too large")
        with self.open(name) as f:
            return f.read()

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.read(name))
        except ValueError as e:
            raise InvalidParameter(f"invalid {name}: {e}") from None


def load_archive(store: ImageStore, stream: BinaryIO) -> Iterator[str]:
    arc = Archive.from_stream(store.layers.content, store.tmp, stream)
    try:
        if arc.has("manifest.json"):
            yield from _load_docker(store, arc)
        elif arc.has("index.json"):
            yield from _load_oci(store, arc)
        else:
            raise InvalidParameter("invalid archive: neither manifest.json nor index.json found")
    finally:
        arc.close()


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
            had_tar = store.layers.has_tar(diff_id)
            if arc.commit_as(name, diff_id):  # an uncompressed layer tar: now its blob, applied from there
                try:
                    layer = store.layers.register_blob(diff_id, parent)
                except BaseException:
                    if not had_tar:  # nothing of a layer that failed stays
                        with contextlib.suppress(NotFound, OSError):
                            store.layers.content.delete(diff_id)
                    raise
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
