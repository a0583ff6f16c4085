"""Push: an image's layers, config and schema 2 manifest to a registry, with dockerd's progress wording.

Per layer, as dockerd: a blob this repository is known to hold (`LayerSources`, checked with a HEAD) is
"Layer already exists"; one known in another repository of the same registry is mounted
(`POST .../blobs/uploads/?mount=&from=`, "Mounted from x"); otherwise the layer tar is gzip-compressed
and streamed in one chunked PATCH, then closed with `PUT ?digest=` ("Pushing" counts uncompressed bytes,
then "Pushed"). Layers are pushed five at a time (dockerd's max-concurrent-uploads), each compressing in
its own thread (zlib releases the GIL). The compression level is chosen per layer from a sample of its
first MiB: data that does not shrink (already compressed, random) is stored in deflate's stored blocks
instead of being squeezed for nothing — a valid gzip stream all the same. The config goes up in one
monolithic POST+PUT; then the manifest, and "<tag>: digest: sha256:… size: N" with the aux result.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from gorae.distribution import manifest as mf
from gorae.distribution import progress
from gorae.distribution.auth import AuthConfig
from gorae.distribution.blobs import Cancelled, EitherEvent
from gorae.distribution.metadata import Source
from gorae.distribution.pull import Registries
from gorae.distribution.transport import RegistryError, Session, open_session, scope
from gorae.errors import GoraeError, InvalidParameter, NotFound
from gorae.image.models import Image
from gorae.image.reference import Reference

MAX_CONCURRENT_UPLOADS = 5
CHUNK = 1 << 20
SAMPLE = 1 << 20
STORE_RATIO = 0.97  # a sample compressed to more than this fraction of its size is stored, not deflated


def choose_level(sample: bytes) -> int:
    """gzip level 1 for data that compresses, 0 (stored blocks) for data that does not."""
    if not sample:
        return 1
    out = zlib.compressobj(1, zlib.DEFLATED, 31)
    n = len(out.compress(sample)) + len(out.flush())
    return 0 if n > len(sample) * STORE_RATIO else 1


class GzipStream:
    """The gzip of a file's bytes as an iterator of chunks; digest and size known once it is exhausted."""

    def __init__(self, f: object, meter: progress.Meter | None, cancel: threading.Event) -> None:
        self._f = f
        self._meter = meter
        self._cancel = cancel
        self.sha = hashlib.sha256()
        self.size = 0

    def _out(self, data: bytes) -> bytes:
        self.sha.update(data)
        self.size += len(data)
        return data

    def __iter__(self) -> Iterator[bytes]:
        read = self._f.read  # type: ignore[attr-defined]
        first: bytes = read(SAMPLE)
        comp = zlib.compressobj(choose_level(first), zlib.DEFLATED, 31)
        chunk = first
        while chunk:
            if self._cancel.is_set():
                raise Cancelled()
            if self._meter is not None:
                self._meter.add(len(chunk))
            data = comp.compress(chunk)
            if data:
                yield self._out(data)
            chunk = read(CHUNK)
        tail = comp.flush()
        if self._meter is not None:
            self._meter.tick(final=True)
        yield self._out(tail)

    @property
    def digest(self) -> str:
        return "sha256:" + self.sha.hexdigest()


@dataclass
class PushedTag:
    tag: str
    digest: str
    size: int


class Pusher:
    def __init__(self, reg: Registries, auth: AuthConfig, emit: progress.Emit, cancel: threading.Event) -> None:
        self.reg = reg
        self.auth = auth
        self.emit = emit
        self.cancel = cancel
        self.pushed: list[PushedTag] = []

    def push(self, ref: Reference) -> None:
        """Push the tag of `ref`, or every tag of its repository when it has none."""
        if ref.digest is not None:
            raise InvalidParameter("cannot push a digest reference")
        store = self.reg.store
        self.emit(progress.status(f"The push refers to repository [{ref.name}]"))
        prefix = ref.familiar_name + ":"
        tags = sorted(k[len(prefix) :] for k, _ in store.all_refs() if k.startswith(prefix))
        if not tags:
            raise NotFound(f"An image does not exist locally with the tag: {ref.familiar_name}")
        if ref.tag is not None:
            if ref.tag not in tags:
                raise NotFound(f"tag does not exist: {ref.familiar()}")
            tags = [ref.tag]
        sources = self._mount_sources(ref, tags)
        session = open_session(
            self.reg.clients,
            self.reg.hosts.endpoints(ref.domain, push=True),
            self.auth,
            [scope(ref.path, "pull,push"), *(scope(p, "pull") for p in sources)],
        )
        for t in tags:
            tagged = ref.with_tag(t)
            img = store.resolve(tagged.familiar())
            self._push_image(session, tagged, img)

    def _mount_sources(self, ref: Reference, tags: list[str]) -> list[str]:
        """Other repositories of this registry the layers are known in (scopes asked for up front)."""
        out: set[str] = set()
        for t in tags:
            img = self.reg.store.resolve(ref.with_tag(t).familiar())
            for d in img.diff_ids:
                for s in self.reg.sources.sources(d):
                    if s.registry == ref.domain and s.path != ref.path:
                        out.add(s.path)
        return sorted(out)[:8]

    def _push_image(self, session: Session, ref: Reference, img: Image) -> None:
        diff_ids = img.diff_ids
        for d in diff_ids:
            self.emit(progress.update(progress.short(d), "Preparing"))
        for n, d in enumerate(diff_ids):
            if n >= MAX_CONCURRENT_UPLOADS:
                self.emit(progress.update(progress.short(d), "Waiting"))
        stop = threading.Event()
        pool = concurrent.futures.ThreadPoolExecutor(MAX_CONCURRENT_UPLOADS, thread_name_prefix="push")
        try:
            sizes = dict(zip(diff_ids, img.layer_sizes, strict=False))
            futures = [
                pool.submit(self._push_layer, session, ref, d, sizes.get(d, 0), stop) for d in dict.fromkeys(diff_ids)
            ]
            results: dict[str, mf.Descriptor] = {}
            for f in futures:
                diff_id, desc = f.result()
                results[diff_id] = desc
        except BaseException:
            stop.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        config = self.reg.store.config_bytes(img.id)
        cdesc = mf.Descriptor(mf.DOCKER_CONFIG, img.id, len(config))
        if not self._exists(session, ref, img.id):
            self._upload_bytes(session, ref, config, img.id)
        body = mf.docker_manifest(cdesc, [results[d] for d in diff_ids])
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        session.request(
            "PUT",
            f"/v2/{ref.path}/manifests/{ref.tag}",
            headers={"Content-Type": mf.DOCKER_MANIFEST},
            content=body,
            ok=(200, 201, 202),
        )
        self.reg.store.set_ref(Reference(ref.domain, ref.path, None, digest), img.id)
        self.emit(progress.status(f"{ref.tag}: digest: {digest} size: {len(body)}"))
        self.emit(progress.aux({"Tag": ref.tag, "Digest": digest, "Size": len(body)}))
        self.pushed.append(PushedTag(ref.tag or "latest", digest, len(body)))

    # ---- layers --------------------------------------------------------------------------------

    def _exists(self, session: Session, ref: Reference, digest: str, path: str | None = None) -> int | None:
        """The size of blob `digest` in the repository, or None when it is not there."""
        try:
            resp = session.request("HEAD", f"/v2/{path or ref.path}/blobs/{digest}")
        except RegistryError as e:
            if e.http_status == 404:
                return None
            raise
        try:
            return int(resp.headers.get("content-length", "0"))
        except ValueError:
            return 0

    def _push_layer(
        self, session: Session, ref: Reference, diff_id: str, size: int, stop: threading.Event
    ) -> tuple[str, mf.Descriptor]:
        lid = progress.short(diff_id)
        if self.cancel.is_set() or stop.is_set():
            raise Cancelled()
        sources = self.reg.sources
        known = sources.sources(diff_id)
        here = [s for s in known if s.registry == ref.domain]
        # already in this repository?
        for s in here:
            if s.path == ref.path:
                have = self._exists(session, ref, s.digest)
                if have is not None:
                    self.emit(progress.update(lid, "Layer already exists"))
                    return diff_id, mf.Descriptor(mf.DOCKER_LAYER_GZIP, s.digest, have)
                sources.remove(diff_id, s.digest)
        # in another repository of this registry: mount
        for s in here:
            if s.path != ref.path:
                desc = self._mount(session, ref, s)
                if desc is not None:
                    sources.add(diff_id, s.digest, ref.name)
                    self.emit(progress.update(lid, f"Mounted from {s.path}"))
                    return diff_id, desc
        # known elsewhere by a digest: perhaps this repository has it anyway
        for s in known:
            if s.registry != ref.domain:
                have = self._exists(session, ref, s.digest)
                if have is not None:
                    sources.add(diff_id, s.digest, ref.name)
                    self.emit(progress.update(lid, "Layer already exists"))
                    return diff_id, mf.Descriptor(mf.DOCKER_LAYER_GZIP, s.digest, have)
        desc = self._upload_layer(session, ref, diff_id, lid, size, stop)
        sources.add(diff_id, desc.digest, ref.name)
        self.emit(progress.update(lid, "Pushed"))
        return diff_id, desc

    def _mount(self, session: Session, ref: Reference, s: Source) -> mf.Descriptor | None:
        try:
            resp = session.request(
                "POST",
                f"/v2/{ref.path}/blobs/uploads/",
                params={"mount": s.digest, "from": s.path},
                content=b"",
                ok=(201, 202),
            )
        except RegistryError:
            return None
        if resp.status_code != 201:
            loc = resp.headers.get("location", "")
            if loc:  # an upload was started instead: cancel it
                try:
                    session.request("DELETE", loc, ok=(200, 202, 204, 404))
                except GoraeError:
                    pass
            return None
        size = self._exists(session, ref, s.digest)
        if size is None:
            return None
        return mf.Descriptor(mf.DOCKER_LAYER_GZIP, s.digest, size)

    def _start_upload(self, session: Session, ref: Reference) -> str:
        resp = session.request("POST", f"/v2/{ref.path}/blobs/uploads/", content=b"", ok=(202,))
        loc = resp.headers.get("location", "")
        if not loc:
            raise GoraeError("registry did not return an upload location")
        return loc if "://" in loc else session.url(loc)

    def _upload_layer(
        self, session: Session, ref: Reference, diff_id: str, lid: str, size: int, stop: threading.Event
    ) -> mf.Descriptor:
        # dockerd's "Pushing" total is the layer's size (its files), its count the tar bytes read
        total = size or self.reg.store.layers.tar_size(diff_id)
        meter = progress.Meter(self.emit, lid, "Pushing", total)
        loc = self._start_upload(session, ref)
        with self.reg.store.layers.open_tar(diff_id) as f:
            gz = GzipStream(f, meter, EitherEvent(stop, self.cancel))
            resp = session.request(
                "PATCH",
                loc,
                headers={"Content-Type": "application/octet-stream"},
                content=iter(gz),
                ok=(202, 204),
            )
        loc = resp.headers.get("location", "") or loc
        loc = loc if "://" in loc else session.url(loc)
        digest = gz.digest
        session.request("PUT", with_query(loc, digest=digest), content=b"", ok=(201, 204))
        return mf.Descriptor(mf.DOCKER_LAYER_GZIP, digest, gz.size)

    def _upload_bytes(self, session: Session, ref: Reference, data: bytes, digest: str) -> None:
        loc = self._start_upload(session, ref)
        session.request(
            "PUT",
            with_query(loc, digest=digest),
            headers={"Content-Type": "application/octet-stream"},
            content=data,
            ok=(201, 204),
        )


def with_query(url: str, **params: str) -> str:
    """`url` with parameters added to its query (an upload location carries its own state there)."""
    from urllib.parse import urlencode

    return url + ("&" if "?" in url else "?") + urlencode(params)
