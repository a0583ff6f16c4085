"""The layer-ingest path (`LayerStore.register`, `docker load`'s streamed archive) and the readers under it:
one pass that stores and applies, nothing left behind when a stream fails, a digest differs or a tar is
hostile, and chunk boundaries anywhere (hypothesis) changing nothing."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import threading
import uuid
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
import zstandard
from conftest import wait_for
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gorae.archive import apply_tar
from gorae.archive.chunks import ChunkReader
from gorae.archive.streams import GzipReader
from gorae.errors import InvalidParameter, NotFound
from gorae.image import load as load_mod
from gorae.image.ingest import BlobSpool, LayerTee, VerifiedTar
from gorae.image.layers import EXTRACT_PREFIX, LayerStore
from gorae.image.load import load_archive
from gorae.image.store import ImageStore
from gorae.snapshot.overlay import OverlaySnapshotter
from gorae.store.content import ContentStore
from gorae.store.metadata import MetadataStore

# ---- helpers -------------------------------------------------------------------------------------------


def _tar(files: dict[str, bytes], dirs: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for d in dirs:
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 1_600_000_000
            t.addfile(ti)
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), 0o640, 1_600_000_000
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _tree(path: str) -> dict[str, bytes | None]:
    """Every entry under `path`: file contents, None for a directory."""
    out: dict[str, bytes | None] = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), path)] = None
        for f in filenames:
            with open(os.path.join(dirpath, f), "rb") as fh:
                out[os.path.relpath(os.path.join(dirpath, f), path)] = fh.read()
    return out


@dataclass
class Stores:
    root: str
    meta: MetadataStore
    content: ContentStore
    snap: OverlaySnapshotter
    layers: LayerStore
    images: ImageStore

    def leftovers(self) -> tuple[list[str], list[str], list[str]]:
        """(blobs, ingests, snapshots) that exist now."""
        return (
            sorted(self.content.list()),
            [s.ref for s in self.content.list_statuses()],
            sorted(i.name for i in self.snap.list()),
        )


@pytest.fixture
def stores() -> Iterator[Stores]:
    d = tempfile.mkdtemp(prefix=f"gorae-ingest-{uuid.uuid4().hex[:6]}-")
    meta = MetadataStore(os.path.join(d, "gorae.db"))
    content = ContentStore(os.path.join(d, "content"))
    snap = OverlaySnapshotter(os.path.join(d, "overlay"))
    images = ImageStore(meta, content, snap, os.path.join(d, "tmp"))
    try:
        yield Stores(d, meta, content, snap, images.layers, images)
    finally:
        meta.close()
        snap.close()
        shutil.rmtree(d, ignore_errors=True)


class FailingStream(io.RawIOBase):
    """`data`, then OSError after `fail_at` bytes (a connection that broke mid-download)."""

    def __init__(self, data: bytes, fail_at: int) -> None:
        self._data = data
        self._fail_at = fail_at
        self.pos = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self.pos >= self._fail_at:
            raise OSError("connection reset by peer")
        n = self._fail_at - self.pos if n is None or n < 0 else min(n, self._fail_at - self.pos)
        out = self._data[self.pos : self.pos + n]
        self.pos += len(out)
        return out


LAYER_FILES = {
    "etc/hello": b"hello\n",
    "big/blob.bin": os.urandom(3 * (1 << 20) + 123),  # spans chunks
    **{f"many/f{i:03d}": os.urandom(100 + i) for i in range(150)},
}
LAYER = _tar(LAYER_FILES, dirs=("etc", "big", "many"))


# ---- LayerStore.register ---------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_register_applies_and_stores_the_uncompressed_tar_in_one_pass(
    stores: Stores, compression: str
) -> None:
    blob = {
        "none": LAYER,
        "gzip": gzip.compress(LAYER),
        "zstd": zstandard.ZstdCompressor().compress(LAYER),
    }[compression]
    layer = stores.layers.register(io.BytesIO(blob), None, expected_diff_id=_digest(LAYER))
    assert layer.diff_id == _digest(LAYER) and layer.chain_id == _digest(LAYER) and layer.parent is None
    assert stores.content.read_bytes(layer.diff_id) == LAYER  # `save` writes exactly these bytes back
    tree = _tree(stores.snap.upper_dir(layer.chain_id))
    assert {k: v for k, v in tree.items() if v is not None} == LAYER_FILES
    blobs, ingests, snaps = stores.leftovers()
    assert blobs == [_digest(LAYER)] and ingests == [] and snaps == [layer.chain_id]
    assert layer.size == sum(len(v) for v in LAYER_FILES.values())


def test_register_on_a_parent_names_the_layer_by_its_chain_id(stores: Stores) -> None:
    base = stores.layers.register(io.BytesIO(_tar({"a": b"1"})), None)
    top_tar = _tar({".wh.a": b"", "b": b"2"})
    top = stores.layers.register(io.BytesIO(gzip.compress(top_tar)), base.chain_id)
    want = _digest(f"{base.chain_id} {_digest(top_tar)}".encode())
    assert top.chain_id == want and top.parent == base.chain_id and top.diff_id == _digest(top_tar)
    assert os.listdir(stores.snap.upper_dir(top.chain_id)) in (["a", "b"], ["b", "a"])  # a: the whiteout


@pytest.mark.parametrize("compression", ["none", "gzip"])
@pytest.mark.parametrize("fail_at", [0, 700, 2 * (1 << 20) + 5])
def test_a_stream_failing_midway_leaves_no_blob_no_ingest_no_snapshot(
    stores: Stores, compression: str, fail_at: int
) -> None:
    blob = gzip.compress(LAYER) if compression == "gzip" else LAYER
    with pytest.raises(InvalidParameter, match="connection reset by peer"):
        stores.layers.register(FailingStream(blob, fail_at), None, expected_diff_id=_digest(LAYER))
    assert stores.leftovers() == ([], [], [])
    assert stores.layers.all() == []


def test_a_diff_id_mismatch_leaves_nothing(stores: Stores) -> None:
    wrong = _digest(b"something else")
    with pytest.raises(InvalidParameter, match=f"layer {wrong}: content does not match its diff_id"):
        stores.layers.register(io.BytesIO(gzip.compress(LAYER)), None, expected_diff_id=wrong)
    assert stores.leftovers() == ([], [], [])


def test_a_corrupt_gzip_stream_leaves_nothing(stores: Stores) -> None:
    gz = bytearray(gzip.compress(LAYER))
    gz[len(gz) // 2] ^= 0xFF
    with pytest.raises(InvalidParameter, match="invalid layer stream: gzip"):
        stores.layers.register(io.BytesIO(bytes(gz)), None)
    assert stores.leftovers() == ([], [], [])


def test_a_hostile_layer_leaves_nothing(stores: Stores) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        link = tarfile.TarInfo("escape")
        link.type, link.linkname = tarfile.LNKTYPE, "../../../../etc/passwd"
        t.addfile(link)
    with pytest.raises(InvalidParameter, match="hardlink 'escape' to missing"):
        stores.layers.register(io.BytesIO(buf.getvalue()), None)
    assert stores.leftovers() == ([], [], [])


def test_a_layer_over_the_size_cap_leaves_nothing(stores: Stores) -> None:
    writer = stores.content.writer("capped")
    tee = LayerTee(io.BytesIO(gzip.compress(LAYER)), writer, max_bytes=1 << 20)
    tee.start()
    with pytest.raises(InvalidParameter, match=f"layer larger than {1 << 20} bytes uncompressed"):
        while tee.next_chunk():
            pass
    tee.cancel()
    writer.abort()
    assert stores.leftovers() == ([], [], [])


def test_register_of_an_applied_layer_still_reads_and_verifies_the_stream(stores: Stores) -> None:
    first = stores.layers.register(io.BytesIO(LAYER), None, expected_diff_id=_digest(LAYER))
    stores.content.delete(first.diff_id)  # e.g. a tar lost: the snapshot exists, the blob does not
    again = stores.layers.register(io.BytesIO(gzip.compress(LAYER)), None, expected_diff_id=_digest(LAYER))
    assert again == first and stores.content.read_bytes(first.diff_id) == LAYER
    with pytest.raises(InvalidParameter, match="content does not match its diff_id"):
        stores.layers.register(io.BytesIO(b"x" * 1024), None, expected_diff_id=_digest(LAYER))
    assert stores.leftovers() == ([_digest(LAYER)], [], [first.chain_id])


def test_apply_failure_stops_the_decompressing_thread(stores: Stores) -> None:
    """The applying side gives up after one chunk (as when a tar is hostile); the tee thread, blocked on its
    full channel, must end and stop reading the stream."""
    stream = FailingStream(_tar({"../../x": b"y" * 10}) + LAYER * 4, 1 << 40)
    writer = stores.content.writer("stopped")
    tee = LayerTee(stream, writer, depth=1)
    tee.start()
    assert tee.next_chunk()  # one chunk taken, the thread goes on and blocks on the channel
    tee.cancel()
    assert not any(t.name == "layer-ingest" and t.is_alive() for t in threading.enumerate())
    writer.abort()
    assert stream.pos < len(LAYER) * 4  # it stopped reading: nothing was buffered whole


def test_the_tee_reads_no_more_than_its_channel_holds_ahead(stores: Stores) -> None:
    """Memory stays flat: with nobody consuming, the thread stops after `depth` chunks (+1 in hand)."""
    big = os.urandom(20 << 20)
    stream = FailingStream(big, len(big))
    writer = stores.content.writer("bounded")
    tee = LayerTee(stream, writer, depth=2)
    tee.start()
    try:
        wait_for(lambda: len(tee._chan._items) == 2)  # noqa: SLF001 - the channel's fill is the point
        assert stream.pos <= 3 * (1 << 20)
    finally:
        tee.cancel()
        writer.abort()


def test_blob_spool_reports_a_write_failure_to_the_caller(stores: Stores) -> None:
    writer = stores.content.writer("spool", total=10)  # a blob larger than its announced size fails
    spool = BlobSpool(writer)
    with pytest.raises(InvalidParameter, match="blob larger than the expected 10 bytes"):
        for _ in range(100):
            spool.put(b"0123456789ab")
        spool.finish()
    spool.cancel()
    writer.abort()
    assert stores.leftovers() == ([], [], [])


# ---- docker load, streamed -----------------------------------------------------------------------------


def _save_tarball(layers: list[bytes], *, manifest_last: bool, tag: str = "ingest/test:1") -> bytes:
    diff_ids = [_digest(gzip.decompress(b) if b.startswith(b"\x1f\x8b") else b) for b in layers]
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": diff_ids}, "config": {}}).encode()
    names = [f"blobs/sha256/{_digest(b)[7:]}" for b in layers]
    manifest = json.dumps([{"Config": "config.json", "RepoTags": [tag], "Layers": names}]).encode()
    members = [(n, b) for n, b in zip(names, layers, strict=True)] + [("config.json", config)]
    members.insert(len(members) if manifest_last else 0, ("manifest.json", manifest))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


BIG_LAYER = _tar({"payload": os.urandom(load_mod.IN_MEMORY + 4096)})  # spooled to an ingest, not memory


@pytest.mark.parametrize("manifest_last", [True, False])
@pytest.mark.parametrize("gzipped", [False, True])
def test_load_streams_layers_before_and_after_the_manifest(
    stores: Stores, manifest_last: bool, gzipped: bool
) -> None:
    layers = [BIG_LAYER, _tar({"small": b"s"})]
    blobs = [gzip.compress(x) for x in layers] if gzipped else layers
    out = list(load_archive(stores.images, io.BytesIO(_save_tarball(blobs, manifest_last=manifest_last))))
    assert out == ["Loaded image: ingest/test:1"]
    blobs_now, ingests, snaps = stores.leftovers()
    assert ingests == []  # the spooled members were committed or deleted
    assert {_digest(x) for x in layers} <= set(blobs_now)
    assert len(snaps) == 2 and not any(s.startswith(EXTRACT_PREFIX) for s in snaps)
    for x in layers:
        assert stores.content.read_bytes(_digest(x)) == x
    if gzipped:  # the compressed members are not kept
        assert not {_digest(b) for b in blobs} & set(blobs_now)
    assert os.listdir(stores.images.tmp) == []  # nor their temp files


@pytest.mark.parametrize("gzipped", [False, True])
def test_load_of_a_truncated_upload_leaves_no_ingest_no_temp_file(stores: Stores, gzipped: bool) -> None:
    big = _tar({"payload": os.urandom(3 * load_mod.IN_MEMORY)})
    data = _save_tarball([gzip.compress(big) if gzipped else big, BIG_LAYER], manifest_last=True)
    with pytest.raises(InvalidParameter, match="invalid archive"):
        list(load_archive(stores.images, io.BytesIO(data[: len(data) * 3 // 4])))
    assert stores.leftovers() == ([], [], [])
    assert os.listdir(stores.images.tmp) == []


def test_load_of_a_layer_with_a_wrong_diff_id_leaves_nothing(stores: Stores) -> None:
    good = _save_tarball([BIG_LAYER], manifest_last=True)
    other = _tar({"payload": os.urandom(load_mod.IN_MEMORY + 4096)})
    bad = good.replace(BIG_LAYER, other)  # same size, same member name: the config's diff_id is wrong now
    with pytest.raises(InvalidParameter, match="content does not match its diff_id"):
        list(load_archive(stores.images, io.BytesIO(bad)))
    assert stores.leftovers() == ([], [], [])


def test_load_of_a_hostile_layer_removes_the_blob_it_committed(stores: Stores) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        ti = tarfile.TarInfo("pad")
        ti.size = load_mod.IN_MEMORY + 10
        t.addfile(ti, io.BytesIO(b"p" * ti.size))
        link = tarfile.TarInfo("escape")
        link.type, link.linkname = tarfile.LNKTYPE, "../../../etc/shadow"
        t.addfile(link)
    with pytest.raises(InvalidParameter, match="hardlink 'escape' to missing"):
        list(load_archive(stores.images, io.BytesIO(_save_tarball([buf.getvalue()], manifest_last=True))))
    assert stores.leftovers() == ([], [], [])


# ---- readers under it, over any chunking (hypothesis) ---------------------------------------------------


def _chunks(data: bytes, cuts: list[int]) -> Iterator[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    for a, b in zip(points, points[1:], strict=False):
        yield data[a:b]


def _source(data: bytes, cuts: list[int]):  # type: ignore[no-untyped-def]
    it = _chunks(data, cuts)
    return lambda: next(it, b"")


@settings(max_examples=150, deadline=None)
@given(
    data=st.binary(max_size=3000),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=20),
    ops=st.lists(
        st.tuples(st.sampled_from(["read", "skip", "seek", "copy", "feed", "peek"]), st.integers(0, 900))
    ),
)
def test_chunk_reader_reads_as_a_file_whatever_the_chunking(
    data: bytes, cuts: list[int], ops: list[tuple[str, int]]
) -> None:
    r = ChunkReader(_source(data, cuts))
    model = io.BytesIO(data)
    for op, n in ops:
        if op == "read":
            assert r.read(n) == model.read(n)
        elif op == "peek":
            here = model.tell()
            assert r.peek(n) == data[here : here + n]
        elif op == "skip":
            got = r.skip(n)
            assert got == len(model.read(n))
        elif op == "seek":
            target = r.tell() + n
            assert r.seek(target) == min(target, len(data))
            model.seek(min(target, len(data)))
        elif op == "copy":
            rfd, wfd = os.pipe()
            try:
                want = model.read(n)
                assert r.copy_to(wfd, n) == len(want)
                os.close(wfd)
                wfd = -1
                assert os.read(rfd, 4096) == want
            finally:
                os.close(rfd)
                if wfd >= 0:
                    os.close(wfd)
        else:
            parts: list[bytes] = []
            sink = parts.append
            assert r.feed(lambda v, sink=sink: sink(bytes(v)), n) == len(model.read(n))  # type: ignore[misc]
            assert b"".join(parts) == data[model.tell() - sum(map(len, parts)) : model.tell()]
        assert r.tell() == model.tell()
    rest = model.read()
    assert r.drain() == len(rest)
    assert r.read(10) == b""
    with pytest.raises(io.UnsupportedOperation):
        r.seek(r.tell() - 1) if r.tell() else r.seek(0, io.SEEK_END)


TREE_TAR = _tar(
    {"a/one": b"1" * 513, "a/two": b"", "b/three": os.urandom(5000), "c": b"x" * 1024},
    dirs=("a", "b"),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(min_value=0, max_value=len(TREE_TAR)), max_size=40))
def test_apply_tar_gives_the_same_tree_whatever_the_chunk_boundaries(cuts: list[int]) -> None:
    d = tempfile.mkdtemp(prefix="gorae-chunks-")
    try:
        size = apply_tar(d, _source(TREE_TAR, cuts))
        assert size == 513 + 5000 + 1024
        tree = _tree(d)
        with tarfile.open(fileobj=io.BytesIO(TREE_TAR)) as t:
            want = {m.name: (t.extractfile(m).read() if m.isreg() else None) for m in t}  # type: ignore[union-attr]
        assert tree == want
    finally:
        shutil.rmtree(d)


@settings(max_examples=150, deadline=None)
@given(
    members=st.lists(st.binary(max_size=5000), min_size=1, max_size=4),
    padding=st.integers(0, 600),
    cuts=st.lists(st.integers(min_value=0, max_value=30000), max_size=12),
    read_size=st.integers(1, 70000),
)
def test_gzip_reader_matches_gzip_whatever_the_chunking(
    members: list[bytes], padding: int, cuts: list[int], read_size: int
) -> None:
    data = b"".join(gzip.compress(m) for m in members) + b"\x00" * padding

    class Src:
        def __init__(self) -> None:
            self.next = _source(data, cuts)

        def read(self, n: int = -1) -> bytes:
            return bytes(self.next())

    r = GzipReader(Src())  # type: ignore[arg-type]
    out = []
    while chunk := r.read(read_size):
        assert len(chunk) <= read_size
        out.append(chunk)
    assert b"".join(out) == b"".join(members)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(min_size=1, max_size=4000), cut=st.integers(1, 10_000), junk=st.binary(min_size=1))
def test_gzip_reader_refuses_truncated_corrupt_and_trailing_garbage(
    data: bytes, cut: int, junk: bytes
) -> None:
    gz = gzip.compress(data)

    def read_all(b: bytes) -> bytes:
        r = GzipReader(io.BytesIO(b))  # type: ignore[arg-type]
        out = []
        while chunk := r.read(1 << 16):
            out.append(chunk)
        return b"".join(out)

    with pytest.raises(EOFError):
        read_all(gz[: cut % len(gz)])
    if junk.lstrip(b"\x00") and not junk.lstrip(b"\x00").startswith(b"\x1f\x8b"):
        with pytest.raises(gzip.BadGzipFile):
            read_all(gz + junk)
    crc_broken = bytearray(gz)
    crc_broken[-8] ^= 0x01
    with pytest.raises(zlib.error):
        read_all(bytes(crc_broken))


# ---- the request-body reader `docker load` reads the upload through ---------------------------------------


@settings(max_examples=100, deadline=None)
@example(data=b"0123456789", cuts=[], sizes=[3, 0, 2])  # read(0) with bytes buffered
@given(
    data=st.binary(max_size=5000),
    cuts=st.lists(st.integers(min_value=0, max_value=6000), max_size=15),
    sizes=st.lists(st.integers(min_value=-1, max_value=1500), min_size=1, max_size=30),
)
def test_request_body_reader_gives_the_bytes_in_order_whatever_the_chunking(
    data: bytes, cuts: list[int], sizes: list[int]
) -> None:
    import asyncio

    from gorae.api.streams import AsyncToSyncReader

    async def chunks() -> AsyncIterator[bytes]:
        for c in _chunks(data, cuts):
            if c:
                yield c

    async def main() -> list[bytes]:
        reader = AsyncToSyncReader(chunks(), asyncio.get_running_loop(), depth=2)
        pump = asyncio.ensure_future(reader.pump())

        def consume() -> list[bytes]:
            got = []
            for n in sizes:
                out = reader.read(n)
                if n >= 0:
                    assert len(out) <= n
                got.append(out)
            got.append(reader.read(-1))
            return got

        got = await asyncio.to_thread(consume)
        await pump
        return got

    got = asyncio.run(main())
    assert b"".join(got) == data
    pos = 0
    for n, out in zip(sizes, got, strict=False):  # short reads only at the end of the body
        want = data[pos:] if n < 0 else data[pos : pos + n]
        assert out == want
        pos += len(out)


def test_load_of_a_gzipped_tarball_streams_it_too(stores: Stores) -> None:
    data = gzip.compress(_save_tarball([BIG_LAYER], manifest_last=True))
    assert list(load_archive(stores.images, io.BytesIO(data))) == ["Loaded image: ingest/test:1"]
    assert stores.content.read_bytes(_digest(BIG_LAYER)) == BIG_LAYER
    assert stores.leftovers()[1] == [] and os.listdir(stores.images.tmp) == []


# ---- a layer whose tar is kept as its compressed blob (a pull) ------------------------------------------


def _kept(stores: Stores, tar: bytes, compress: str, parent: str | None = None) -> tuple[str, str]:
    """Store `tar` compressed as a blob (as a pull's download does) and register it from there."""
    blob = gzip.compress(tar) if compress == "gzip" else zstandard.ZstdCompressor().compress(tar)
    bdigest = stores.content.put_bytes(blob)
    with stores.content.open(bdigest) as f:
        layer = stores.layers.register(f, parent, expected_diff_id=_digest(tar), tar_blob=bdigest)
    return layer.chain_id, bdigest


@pytest.mark.parametrize("compress", ["gzip", "zstd"])
def test_kept_blob_is_the_tar_and_goes_with_the_layer(stores: Stores, compress: str) -> None:
    tar = _tar({"a": b"x" * 70_000, "b": os.urandom(3000)})
    chain, bdigest = _kept(stores, tar, compress)
    # the uncompressed tar was not written: the compressed blob is the only blob
    assert stores.leftovers() == ([bdigest], [], [chain])
    doc = stores.meta.get("layer", chain)
    assert (doc["TarBlob"], doc["TarCompression"], doc["TarSize"]) == (bdigest, compress, len(tar))
    assert stores.layers.has_tar(_digest(tar))
    assert stores.layers.tar_size(_digest(tar)) == len(tar)
    with stores.layers.open_tar(_digest(tar)) as f:
        assert f.read() == tar
    with stores.layers.open_tar(_digest(tar)) as f:  # read in pieces up to its size, as tarfile does
        assert b"".join(iter(lambda: f.read(4096), b"")) == tar
    assert stores.layers.release([chain], set()) == [chain]
    assert stores.leftovers() == ([], [], [])
    assert not stores.layers.has_tar(_digest(tar))
    with pytest.raises(NotFound):
        stores.layers.tar_size(_digest(tar))


def test_kept_blob_shared_by_two_chains_goes_with_the_last(stores: Stores) -> None:
    base = _tar({"base": b"1"})
    top = _tar({"top": b"2"})
    base_chain, base_blob = _kept(stores, base, "gzip")
    other = stores.layers.register(io.BytesIO(_tar({"other": b"3"})), None)
    top_chain, top_blob = _kept(stores, top, "gzip", base_chain)
    # the same top layer on another parent: a second chain naming the same kept blob
    with stores.content.open(top_blob) as f:
        top2 = stores.layers.register(f, other.chain_id, expected_diff_id=_digest(top), tar_blob=top_blob)
    assert stores.layers.uses_blob(top_blob)
    assert stores.layers.release([top_chain], set()) == [top_chain]
    assert stores.content.exists(top_blob)  # the other chain still reads its tar from it
    with stores.layers.open_tar(_digest(top)) as f:
        assert f.read() == top
    assert stores.layers.release([top2.chain_id, other.chain_id], set()) == [top2.chain_id, other.chain_id]
    assert not stores.content.exists(top_blob)
    assert not stores.layers.uses_blob(top_blob)
    assert stores.content.exists(base_blob)
    stores.layers.release([base_chain], set())
    assert stores.leftovers() == ([], [], [])


def test_old_records_without_a_kept_blob_read_their_uncompressed_tar(stores: Stores) -> None:
    tar = _tar({"old": b"record"})
    layer = stores.layers.register(io.BytesIO(gzip.compress(tar)), None)
    assert set(stores.meta.get("layer", layer.chain_id)) == {"ChainID", "DiffID", "Parent", "Size"}
    assert stores.layers.tar_size(layer.diff_id) == len(tar)
    with stores.layers.open_tar(layer.diff_id) as f:
        assert f.read() == tar


def test_kept_blob_that_changed_on_disk_is_refused_when_read(stores: Stores) -> None:
    tar = _tar({"a": b"good" * 1000})
    _, bdigest = _kept(stores, tar, "gzip")
    bad = _tar({"a": b"evil" * 1000})
    assert len(bad) == len(tar)
    path = stores.content.path(bdigest)
    os.chmod(path, 0o644)
    with open(path, "wb") as f:
        f.write(gzip.compress(bad))
    with stores.layers.open_tar(_digest(tar)) as f, pytest.raises(InvalidParameter, match="does not match"):
        f.read()
    with open(path, "wb") as f:
        f.write(gzip.compress(tar[:-512]))
    with stores.layers.open_tar(_digest(tar)) as f, pytest.raises(InvalidParameter, match="shorter"):
        f.read()


@settings(max_examples=80, deadline=None)
@given(data=st.binary(max_size=2000), size=st.integers(min_value=0, max_value=3000), n=st.integers(1, 700))
@example(data=gzip.compress(b"abc"), size=3, n=1)
def test_verified_tar_hostile_blobs(data: bytes, size: int, n: int) -> None:
    """Whatever bytes a kept blob holds, VerifiedTar yields exactly the recorded tar or raises
    InvalidParameter."""
    try:
        plain = gzip.decompress(data)
    except Exception:  # noqa: BLE001 - not a gzip stream: only its own bytes are "the tar"
        plain = None
    want = _digest(plain if plain is not None else data)
    chunks: list[bytes] = []
    try:
        with VerifiedTar(io.BytesIO(data), want, size) as f:
            while chunk := f.read(n):
                chunks.append(chunk)
    except InvalidParameter:
        return
    got = b"".join(chunks)
    assert len(got) == size and _digest(got) == want
    assert all(len(c) == n for c in chunks[:-1])  # full reads but the last, as from a file


class Dribble(io.RawIOBase):
    """A file that gives at most 7 bytes a read: the decompressor above it returns short reads."""

    def __init__(self, data: bytes) -> None:
        self._f = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        return self._f.read(min(7, n if n is not None and n >= 0 else 7))


@pytest.mark.parametrize("compress", ["gzip", "zstd"])
def test_verified_tar_reads_are_full_as_tarfile_needs(compress: str) -> None:
    """tarfile.addfile (docker save) takes a short read for the end of the data: every read is full."""
    tar = _tar({"a": os.urandom(100_000)})
    blob = gzip.compress(tar) if compress == "gzip" else zstandard.ZstdCompressor().compress(tar)
    out = io.BytesIO()
    with VerifiedTar(Dribble(blob), _digest(tar), len(tar)) as f, tarfile.open(fileobj=out, mode="w") as t:
        ti = tarfile.TarInfo("layer.tar")
        ti.size = len(tar)
        t.addfile(ti, f)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as t:
        assert t.extractfile("layer.tar").read() == tar  # type: ignore[union-attr]
