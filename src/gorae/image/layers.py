"""Image layers: a layer tar becomes a committed overlay snapshot named by its chain ID.

`register` reads the (maybe compressed) stream once: `ingest.LayerTee` decompresses it and stores the
uncompressed tar in the content store in one thread (its digest is the diff_id, and `save` writes exactly
those bytes back) while this thread applies the same chunks through `gorae.archive.apply_tar` into a
snapshot prepared under a temporary key ("extract-*"). Only when the whole stream was read, the diff_id
checked and the blob committed is the snapshot committed as the chain ID; on any failure both are removed
(and a crash leaves only an ingest and an extract- snapshot, which the next start collects). A layer
whose chain ID already exists is not applied again.
Records: kind "layer", id = chain ID, doc {ChainID, DiffID, Parent, Size} and, for a layer whose tar was
not stored uncompressed because its compressed blob is kept (a pull: `register(..., tar_blob=digest)`),
{TarBlob, TarCompression, TarSize}: `open_tar` then decompresses that blob through `ingest.VerifiedTar`
(checked against the diff_id and TarSize recorded at ingest). Records without them (older ones, loads,
commits, builds) have the uncompressed tar in the content store under the diff_id. A blob is deleted with
the last layer record naming it. `ImageStore` (store.py) owns the one LayerStore of a data root.
"""

from __future__ import annotations

import contextlib
import logging
import tarfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

from gorae.errors import Conflict, InvalidParameter, NotFound, no_space
from gorae.image.ingest import CHUNK, HashSink, LayerTee, Sink, VerifiedTar
from gorae.image.models import chain_ids
from gorae.snapshot.types import Kind, Snapshotter
from gorae.store.content import ContentStore, ContentWriter
from gorae.store.digest import parse_digest
from gorae.store.metadata import MetadataStore
from gorae.store.schema import LAYER

log = logging.getLogger("gorae.images")
EXTRACT_PREFIX = "extract-"  # the key of a layer being applied, until it is committed under its chain ID

# sha256 of 1024 zero bytes: the diff_id of a tar with no entries as Go's archive/tar writes it
EMPTY_TAR_DIFF_ID = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"


@dataclass
class Layer:
    chain_id: str
    diff_id: str
    parent: str | None
    size: int


def tar_is_empty(f: BinaryIO) -> bool:
    """True when a tar stream has no entries (an empty commit adds no layer, as in docker)."""
    try:
        with tarfile.open(fileobj=f, mode="r|") as t:
            return t.next() is None
    except tarfile.ReadError:
        return True


class LayerStore:
    def __init__(self, meta: MetadataStore, content: ContentStore, snap: Snapshotter) -> None:
        self.meta = meta
        self.content = content
        self.snap = snap

    def collect_transient(self) -> list[str]:
        """At daemon start: remove the extraction snapshots ("extract-*", never committed) a crash during a
        pull or load left behind; logged, never fatal. Returns the keys removed."""
        removed: list[str] = []
        for info in self.snap.list():
            if info.kind == Kind.ACTIVE and info.name.startswith(EXTRACT_PREFIX):
                try:
                    self.snap.remove(info.name)
                    removed.append(info.name)
                except Exception as e:  # noqa: BLE001 - tried again at the next start
                    log.warning("could not remove the extraction snapshot %s: %s", info.name, e)
        if removed:
            log.warning("removed %d extraction snapshots left by a crash", len(removed))
        return removed

    def get(self, chain_id: str) -> Layer:
        doc = self.meta.get(LAYER, chain_id)
        return Layer(doc["ChainID"], doc["DiffID"], doc.get("Parent"), int(doc.get("Size") or 0))

    def exists(self, chain_id: str) -> bool:
        return self.meta.exists(LAYER, chain_id) and self.snap.exists(chain_id)

    def _tar_source(self, diff_id: str) -> dict[str, Any] | None:
        """The record of a layer of `diff_id` whose tar is a stored compressed blob, if any."""
        for d in self.meta.list(LAYER):
            if d.get("DiffID") == diff_id and d.get("TarBlob") and self.content.exists(d["TarBlob"]):
                return d
        return None

    def has_tar(self, diff_id: str) -> bool:
        """Whether the tar of a layer can be read back (`docker save` writes it): stored uncompressed, or as
        a kept compressed blob."""
        return self.content.exists(diff_id) or self._tar_source(diff_id) is not None

    def tar_size(self, diff_id: str) -> int:
        """The size of the uncompressed tar (never decompresses: recorded at ingest). NotFound without it."""
        if self.content.exists(diff_id):
            return self.content.size(diff_id)
        src = self._tar_source(diff_id)
        if src is None:
            raise NotFound(f"layer {diff_id}: no stored tar")
        return int(src["TarSize"])

    def open_tar(self, diff_id: str) -> BinaryIO:
        """A reader of the uncompressed tar; one decompressing a kept compressed blob is verified as it is
        read (InvalidParameter when it is not what was recorded)."""
        if self.content.exists(diff_id):
            return self.content.open(diff_id)
        src = self._tar_source(diff_id)
        if src is None:
            raise NotFound(f"layer {diff_id}: no stored tar")
        raw = self.content.open(src["TarBlob"])
        try:
            return cast(BinaryIO, VerifiedTar(raw, diff_id, int(src["TarSize"])))
        except BaseException:
            raw.close()
            raise

    def uses_blob(self, digest: str) -> bool:
        """Whether a layer record keeps `digest` as its (compressed) tar."""
        return any(d.get("TarBlob") == digest for d in self.meta.list(LAYER))

    def register(
        self,
        stream: BinaryIO,
        parent: str | None,
        expected_diff_id: str | None = None,
        tar_blob: str | None = None,
    ) -> Layer:
        """The layer of a (gzip/zstd/uncompressed) tar stream on top of `parent` (a chain ID), applied while
        it is stored (see the module docstring). InvalidParameter for a broken or hostile stream or one
        whose digest is not `expected_diff_id`: then nothing of it is left (no blob, no snapshot).

        `stream.read(n)` is called from a thread of its own (not the caller's), up to 1 MiB at a time, until
        it returns b""; on a failure this returns only once that thread's pending read has returned, so a
        stream fed from the network should time out rather than block forever. A layer whose chain is
        already applied is still read to its end, verified and stored (when its tar is missing).

        `tar_blob`: `stream` is the content of this stored blob, which the caller keeps: the uncompressed
        tar is then only hashed and counted, and the record says to read it back from that blob."""
        tar: dict[str, Any] | None = None
        if expected_diff_id is not None:
            parse_digest(expected_diff_id)
            chain = _chain_of(parent, expected_diff_id)
            if self.snap.exists(chain):  # applied before: the stream is still read, verified and stored
                tar = self._store_stream(stream, None, expected_diff_id, tar_blob)[1]
                return self._record(chain, expected_diff_id, parent, tar)
        kept: list[dict[str, Any] | None] = [None]

        def fill(key: str) -> str:
            diff_id, kept[0] = self._store_stream(stream, key, expected_diff_id, tar_blob)
            return diff_id

        chain, diff_id = self._new_snapshot(parent, fill)
        return self._record(chain, diff_id, parent, kept[0])

    def _new_snapshot(self, parent: str | None, fill: Callable[[str], str]) -> tuple[str, str]:
        """A new snapshot on `parent`: `fill(key)` writes snapshot `key` and returns its diff_id; it is committed
        as its chain ID (one applied concurrently by someone else is as good) and removed on any failure.
        Returns (chain ID, diff_id)."""
        key = f"{EXTRACT_PREFIX}{uuid.uuid4().hex}"
        self.snap.prepare(key, parent)
        try:
            diff_id = fill(key)
            chain = _chain_of(parent, diff_id)
            try:
                self.snap.commit(chain, key)
            except Conflict:  # applied concurrently by someone else: theirs is as good
                self.snap.remove(key)
        except BaseException:
            with contextlib.suppress(Exception):
                self.snap.remove(key)
            raise
        return chain, diff_id

    def _sink(self, tar_blob: str | None) -> Sink:
        return HashSink() if tar_blob else self.content.writer(f"layer-{uuid.uuid4().hex}")

    def _store_stream(
        self, stream: BinaryIO, key: str | None, expected: str | None, tar_blob: str | None
    ) -> tuple[str, dict[str, Any] | None]:
        """Store `stream` as a layer blob (or, with `tar_blob`, only hash and count it), applying it into
        snapshot `key` on the way unless `key` is None; returns the diff_id and the record fields of a tar kept
        compressed."""
        from gorae.archive import apply_tar

        sink = self._sink(tar_blob)
        tee = LayerTee(stream, sink, forward=key is not None)
        try:
            tee.start()
            if key is not None:
                apply_tar(self.snap.upper_dir(key), tee.next_chunk, whiteouts="overlay")
            tee.finish()
            return self._finish_sink(sink, tee, expected, tar_blob)
        except BaseException:
            tee.cancel()
            if isinstance(sink, ContentWriter):
                sink.abort()
            raise

    def _finish_sink(
        self, sink: Sink, tee: LayerTee, expected: str | None, tar_blob: str | None
    ) -> tuple[str, dict[str, Any] | None]:
        if isinstance(sink, ContentWriter):
            return self._commit_blob(sink, expected), None
        diff_id = sink.digest()
        if expected is not None and diff_id != expected:
            raise InvalidParameter(f"layer {expected}: content does not match its diff_id")
        return diff_id, {"TarBlob": tar_blob, "TarCompression": tee.compression, "TarSize": tee.size}

    def _commit_blob(self, writer: ContentWriter, expected: str | None) -> str:
        diff_id = writer.digest()
        if expected is not None and diff_id != expected:
            raise InvalidParameter(f"layer {expected}: content does not match its diff_id")
        try:
            return writer.commit(0, diff_id)
        except OSError as e:
            full = no_space(e, self.content.root)
            if full is not None:
                raise full from None
            raise

    def _record(self, chain: str, diff_id: str, parent: str | None, tar: dict[str, Any] | None = None) -> Layer:
        if self.meta.exists(LAYER, chain):
            doc = self.meta.get(LAYER, chain)
            if tar is not None and not self.has_tar(diff_id):  # its tar was lost: now that blob
                self.meta.put(LAYER, chain, {**doc, **tar})
            return self.get(chain)
        size = self.snap.usage(chain)
        doc = {"ChainID": chain, "DiffID": diff_id, "Parent": parent, "Size": size, **(tar or {})}
        self.meta.put(LAYER, chain, doc)
        return Layer(chain, diff_id, parent, size)

    def register_blob(self, diff_id: str, parent: str | None) -> Layer:
        """Make the snapshot of a stored layer blob on top of `parent` (a chain ID) unless it exists."""
        chain = _chain_of(parent, diff_id)
        if self.meta.exists(LAYER, chain) and self.snap.exists(chain):
            return self.get(chain)
        if not self.snap.exists(chain):
            self._new_snapshot(parent, lambda key: self._apply_blob(diff_id, key))
        return self._record(chain, diff_id, parent)

    def _apply_blob(self, diff_id: str, key: str) -> str:
        """Apply a stored (verified, uncompressed) blob into snapshot `key`: no decompression, no hashing."""
        from gorae.archive import apply_tar

        with self.content.open(diff_id) as f:
            apply_tar(self.snap.upper_dir(key), lambda: f.read(CHUNK), whiteouts="overlay")
        return diff_id

    def release(self, chain_ids_top_down: list[str], in_use: set[str]) -> list[str]:
        """Remove the layers no longer used, from the top; returns the chain IDs removed."""
        removed: list[str] = []
        for chain in chain_ids_top_down:
            if chain in in_use:
                break
            try:
                self.snap.remove(chain)
            except Conflict:  # a container's or another image's snapshot still sits on it
                break
            except NotFound:
                pass
            diff_id = tar_blob = None
            with contextlib.suppress(NotFound):
                doc = self.meta.get(LAYER, chain)
                diff_id, tar_blob = doc.get("DiffID"), doc.get("TarBlob")
                self.meta.delete(LAYER, chain)
            removed.append(chain)
            rest = self.meta.list(LAYER)
            if diff_id and not any(d.get("DiffID") == diff_id for d in rest):
                with contextlib.suppress(NotFound):
                    self.content.delete(diff_id)
            if tar_blob and not any(d.get("TarBlob") == tar_blob for d in rest):
                with contextlib.suppress(NotFound):
                    self.content.delete(tar_blob)
        return removed

    def all(self) -> list[dict[str, Any]]:
        return self.meta.list(LAYER)


def _chain_of(parent: str | None, diff_id: str) -> str:
    """The chain ID of layer `diff_id` on the layer whose chain ID is `parent` (None: a base layer)."""
    return chain_ids([parent, diff_id])[-1] if parent else diff_id
