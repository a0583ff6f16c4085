"""Image layers: a layer tar becomes a committed overlay snapshot named by its chain ID.

`register` reads the (maybe compressed) stream once: `ingest.LayerTee` decompresses it and stores the
uncompressed tar in the content store in one thread (its digest is the diff_id, and `save` writes exactly
those bytes back) while this thread applies the same chunks through `gorae.archive.apply_tar` into a
snapshot prepared under a temporary key ("extract-*"). Only when the whole stream was read, the diff_id
checked and the blob committed is the snapshot committed as the chain ID; on any failure both are removed
(and a crash leaves only an ingest and an extract- snapshot, which the next start collects). A layer
whose chain ID already exists is not applied again.
Records: kind "layer", id = chain ID, doc {ChainID, DiffID, Parent, Size}; `ImageStore` (store.py) owns
the one LayerStore of a data root.
"""

from __future__ import annotations

import contextlib
import logging
import tarfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from gorae.errors import Conflict, InvalidParameter, NotFound, no_space
from gorae.image.ingest import CHUNK, LayerTee
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

    def has_tar(self, diff_id: str) -> bool:
        """Whether the uncompressed tar of a layer is stored (`docker save` writes it back)."""
        return self.content.exists(diff_id)

    def tar_size(self, diff_id: str) -> int:
        return self.content.size(diff_id)

    def open_tar(self, diff_id: str) -> BinaryIO:
        return self.content.open(diff_id)

    def register(self, stream: BinaryIO, parent: str | None, expected_diff_id: str | None = None) -> Layer:
        """The layer of a (gzip/zstd/uncompressed) tar stream on top of `parent` (a chain ID), applied while
        it is stored (see the module docstring). InvalidParameter for a broken or hostile stream or one
        whose digest is not `expected_diff_id`: then nothing of it is left (no blob, no snapshot).

        `stream.read(n)` is called from a thread of its own (not the caller's), up to 1 MiB at a time, until
        it returns b""; on a failure this returns only once that thread's pending read has returned, so a
        stream fed from the network should time out rather than block forever. A layer whose chain is
        already applied is still read to its end, verified and stored (when its tar is missing)."""
        if expected_diff_id is not None:
            parse_digest(expected_diff_id)
            chain = _chain_of(parent, expected_diff_id)
            if self.snap.exists(chain):  # applied before: the stream is still read, verified and stored
                self._store_stream(stream, None, expected_diff_id)
                return self._record(chain, expected_diff_id, parent)
        chain, diff_id = self._new_snapshot(parent, lambda key: self._store_stream(stream, key, expected_diff_id))
        return self._record(chain, diff_id, parent)

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

    def _store_stream(self, stream: BinaryIO, key: str | None, expected: str | None) -> str:
        """Store `stream` as a layer blob, applying it into snapshot `key` on the way unless `key` is None;
        returns the committed blob's diff_id."""
        from gorae.archive import apply_tar

        writer = self.content.writer(f"layer-{uuid.uuid4().hex}")
        tee = LayerTee(stream, writer, forward=key is not None)
        try:
            tee.start()
            if key is not None:
                apply_tar(self.snap.upper_dir(key), tee.next_chunk, whiteouts="overlay")
            tee.finish()
            return self._commit_blob(writer, expected)
        except BaseException:
            tee.cancel()
            writer.abort()
            raise

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

    def _record(self, chain: str, diff_id: str, parent: str | None) -> Layer:
        if self.meta.exists(LAYER, chain):
            return self.get(chain)
        size = self.snap.usage(chain)
        self.meta.put(LAYER, chain, {"ChainID": chain, "DiffID": diff_id, "Parent": parent, "Size": size})
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
            diff_id = None
            with contextlib.suppress(NotFound):
                diff_id = self.meta.get(LAYER, chain).get("DiffID")
                self.meta.delete(LAYER, chain)
            removed.append(chain)
            if diff_id and not any(d.get("DiffID") == diff_id for d in self.meta.list(LAYER)):
                with contextlib.suppress(NotFound):
                    self.content.delete(diff_id)
        return removed

    def all(self) -> list[dict[str, Any]]:
        return self.meta.list(LAYER)


def _chain_of(parent: str | None, diff_id: str) -> str:
    """The chain ID of layer `diff_id` on the layer whose chain ID is `parent` (None: a base layer)."""
    return chain_ids([parent, diff_id])[-1] if parent else diff_id
