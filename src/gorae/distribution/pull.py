"""Pull: a reference's manifest (through a list/index to the platform's), config and layers from a registry
into the image store, with dockerd's progress messages in dockerd's order.

Runs in a worker thread (see `gorae.distribution.service`). Layers are downloaded three at a time
(dockerd's max-concurrent-downloads) into the content store (`blobs.fetch_blob`: verified, resumable) and
applied in order through `LayerStore.register` (decompression, diff_id check, the archive guards);
a layer whose chain is present is "Already exists". The image is registered (`ImageStore.register`) and
tagged only when every layer is in place, so an interrupted pull leaves no image, while its committed
layers and the bytes of a half-done download are what the next attempt starts from. A layer's compressed
blob is kept as its tar (`register(..., tar_blob=)`: the uncompressed tar is not written a second time;
`docker save` and push decompress it) and deleted with the last layer naming it; a blob no layer took is
deleted once applied. Where each came from is kept (`LayerSources`) for push.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import logging
import threading
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

import httpx

from gorae.distribution import manifest as mf
from gorae.distribution import progress
from gorae.distribution.auth import AuthConfig
from gorae.distribution.blobs import Cancelled, EitherEvent, Inflight, fetch_blob, read_small_blob
from gorae.distribution.hosts import RegistryHosts
from gorae.distribution.metadata import LayerSources
from gorae.distribution.transport import Clients, RegistryError, Session, Unreachable, open_session, scope
from gorae.errors import GoraeError, InvalidParameter, NotFound
from gorae.image.models import chain_ids, image_id, parse_config
from gorae.image.reference import Reference
from gorae.image.store import ImageStore
from gorae.store.content import ContentStore

log = logging.getLogger("gorae.distribution")
MAX_CONCURRENT_DOWNLOADS = 3
MAX_TAGS = 10_000


class PullNotFound(NotFound):
    pass


def translate(err: RegistryError, ref: Reference) -> GoraeError:
    """dockerd's translatePullError."""
    if err.code == "DENIED":
        return PullNotFound(
            f"pull access denied for {ref.familiar_name}, repository does not exist or may require "
            f"'docker login': {err.message}"
        )
    if err.code == "MANIFEST_UNKNOWN":
        return PullNotFound(f"manifest for {ref.familiar()} not found: {err.message}")
    if err.code == "NAME_UNKNOWN":
        return PullNotFound(f"repository {ref.familiar_name} not found: {err.message}")
    return GoraeError(err.message)


@dataclass
class Registries:
    """What pull and push share: endpoints, HTTP clients and tokens, stores."""

    hosts: RegistryHosts
    clients: Clients
    store: ImageStore
    content: ContentStore
    sources: LayerSources
    inflight: Inflight


@dataclass
class Result:
    updated: bool
    image_id: str


def get_manifest(session: Session, path: str, reference: str) -> tuple[bytes, str, str]:
    """(body, content type, digest) of a manifest by tag or digest; the body capped and its digest checked
    against the digest asked for and the registry's Docker-Content-Digest. A tag is first asked for with
    HEAD, as dockerd does (its credentials errors then name that request, "Head \"...\": no basic auth
    credentials"; any answer of the registry to it is ignored)."""
    if not reference.startswith(("sha256:", "sha384:", "sha512:")):
        try:
            session.request("HEAD", f"/v2/{path}/manifests/{reference}", headers={"Accept": mf.ACCEPT})
        except RegistryError:
            pass
    resp = session.request(
        "GET", f"/v2/{path}/manifests/{reference}", headers={"Accept": mf.ACCEPT}, stream=True
    )
    try:
        buf = bytearray()
        for chunk in resp.iter_raw(1 << 16):
            buf += chunk
            if len(buf) > mf.MAX_MANIFEST:
                raise InvalidParameter(f"manifest {reference} too large: more than {mf.MAX_MANIFEST} bytes")
    except httpx.HTTPError as e:
        raise Unreachable(f"read manifest {reference}: {e}") from None
    finally:
        resp.close()
    body = bytes(buf)
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    if reference.startswith("sha256:") and reference != digest:
        raise InvalidParameter(f"manifest verification failed for digest {reference}")
    header = resp.headers.get("docker-content-digest", "")
    if header.startswith("sha256:") and header != digest and not reference.startswith("sha256:"):
        raise InvalidParameter(f"manifest verification failed for digest {header}")
    return body, resp.headers.get("content-type", ""), digest


class Puller:
    def __init__(
        self,
        reg: Registries,
        auth: AuthConfig,
        emit: progress.Emit,
        cancel: threading.Event,
        platform: mf.Platform | None = None,
    ) -> None:
        self.reg = reg
        self.auth = auth
        self.emit = emit
        self.cancel = cancel
        self.platform = platform
        self.pulled: list[tuple[Reference, str]] = []  # (reference, image ID) of each image pulled

    def pull(self, ref: Reference) -> None:
        """Pull `ref` (tagged, by digest, or every tag of a bare name) and write dockerd's status line.
        Endpoints are tried in order: one that cannot be reached, or a mirror that fails in any way
        (dockerd's continueOnError for mirrors), passes the pull on to the next."""
        endpoints = self.reg.hosts.endpoints(ref.domain)
        last: GoraeError | None = None
        for n, ep in enumerate(endpoints):
            session = Session(self.reg.clients, ep, self.auth, [scope(ref.path, "pull")])
            try:
                session.ping()
            except Unreachable as e:
                last = e
                continue
            try:
                updated = self._pull_on(session, ref)
            except Cancelled:
                raise
            except GoraeError as e:
                if ep.mirror and n < len(endpoints) - 1:
                    log.info("pull of %s from mirror %s failed, trying the next endpoint: %s", ref, ep.url, e.message)
                    last = e
                    continue
                raise
            shown = ref.familiar()
            self.emit(
                progress.status(
                    f"Status: Downloaded newer image for {shown}"
                    if updated
                    else f"Status: Image is up to date for {shown}"
                )
            )
            return
        assert last is not None
        raise last

    def _pull_on(self, session: Session, ref: Reference) -> bool:
        if ref.tag is None and ref.digest is None:
            updated = False
            for t in self.list_tags(session, ref):
                updated |= self.pull_one(session, ref.with_tag(t)).updated
            return updated
        return self.pull_one(session, ref).updated

    def list_tags(self, session: Session, ref: Reference) -> list[str]:
        tags: list[str] = []
        url: str | None = f"/v2/{ref.path}/tags/list"
        while url and len(tags) < MAX_TAGS:
            try:
                resp = session.request("GET", url)
            except RegistryError as e:
                raise translate(e, ref) from None
            try:
                doc = resp.json()
            except ValueError:
                raise InvalidParameter("invalid tags list from the registry") from None
            page = doc.get("tags") if isinstance(doc, dict) else None
            tags.extend(t for t in page or [] if isinstance(t, str))
            link = resp.headers.get("link", "")
            url = None
            if link.startswith("<") and 'rel="next"' in link:
                nxt = link[1 : link.index(">")]
                url = nxt if nxt.startswith("/") or "://" in nxt else None
        return sorted(set(tags))

    def pull_one(self, session: Session, ref: Reference) -> Result:
        path = ref.path
        wanted = ref.digest or ref.tag or "latest"
        try:
            body, ctype, top_digest = get_manifest(session, path, wanted)
        except RegistryError as e:
            raise translate(e, ref) from None
        self.emit(progress.status(f"Pulling from {path}", ref.digest or ref.tag or "latest"))
        m = mf.parse(body, ctype)
        if isinstance(m, mf.Index):
            d = mf.select(m, self.platform or mf.default_platform())
            try:
                body, ctype, _ = get_manifest(session, path, d.digest)
            except RegistryError as e:
                raise translate(e, ref) from None
            m = mf.parse(body, ctype)
            if not isinstance(m, mf.Manifest):
                raise InvalidParameter("invalid manifest list: an entry is itself a list")
        config = read_small_blob(session, path, m.config, mf.MAX_CONFIG)
        cfg = parse_config(config)
        # a single-platform image of another platform than asked for is pulled all the same, without a
        # word, as the reference dockerd (20.10) does
        diff_ids = list((cfg.get("rootfs") or {}).get("diff_ids") or [])
        if len(diff_ids) != len(m.layers):
            raise InvalidParameter("layers from manifest don't match image configuration")
        iid = image_id(config)
        store = self.reg.store
        chains = chain_ids(diff_ids)
        if not (store.exists(iid) and all(store.layers.exists(c) for c in chains)):
            sizes = self._layers(session, ref, m.layers, diff_ids, chains)
            store.register(config, sizes)
        self.emit(progress.status(f"Digest: {top_digest}"))
        if ref.digest is not None:
            tags = [ref]
        else:
            tags = [ref, Reference(ref.domain, ref.path, None, top_digest)]
        old = store.ref_target(ref.familiar())
        for t in tags:
            store.set_ref(t, iid)
        self.pulled.append((ref, iid))
        return Result(old != iid, iid)

    def _layers(
        self,
        session: Session,
        ref: Reference,
        layers: list[mf.Descriptor],
        diff_ids: list[str],
        chains: list[str],
    ) -> list[int]:
        store, content, inflight = self.reg.store, self.reg.content, self.reg.inflight
        todo: list[int] = []
        for i, desc in enumerate(layers):
            lid = progress.short(desc.digest)
            if store.layers.exists(chains[i]):
                self.emit(progress.update(lid, "Already exists"))
            else:
                self.emit(progress.update(lid, "Pulling fs layer"))
                if len(todo) >= MAX_CONCURRENT_DOWNLOADS:
                    self.emit(progress.update(lid, "Waiting"))
                todo.append(i)
        sizes: list[int] = [0] * len(layers)
        for i, c in enumerate(chains):
            if i not in todo:
                sizes[i] = store.layers.get(c).size
        if not todo:
            return sizes
        stop = threading.Event()

        def download(i: int) -> None:
            desc = layers[i]
            if stop.is_set() or self.cancel.is_set():
                raise Cancelled()
            fetch_blob(
                session, ref.path, desc, content, inflight, EitherEvent(stop, self.cancel), self.emit,
                progress.short(desc.digest),
            )

        with contextlib.ExitStack() as uses:
            for i in todo:
                uses.enter_context(inflight.using(layers[i].digest))
            pool = concurrent.futures.ThreadPoolExecutor(MAX_CONCURRENT_DOWNLOADS, thread_name_prefix="pull")
            try:
                futures = {i: pool.submit(download, i) for i in todo}
                for i in todo:
                    futures[i].result()
                    self._apply(ref, layers[i], diff_ids[i], chains[i - 1] if i else None, sizes, i)
            except BaseException as e:
                stop.set()
                pool.shutdown(wait=True, cancel_futures=True)
                if isinstance(e, InvalidParameter):  # bad content: none of it is worth keeping
                    self._drop([layers[i].digest for i in todo])
                raise
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
            self._drop([layers[i].digest for i in todo])
        return sizes

    def _drop(self, digests: list[str]) -> None:
        """Delete downloaded compressed blobs nobody else is using (their layers are applied, or bad) and
        no layer record keeps as its tar."""
        for d in digests:
            if self.reg.inflight.last_user(d) and not self.reg.store.layers.uses_blob(d):
                with contextlib.suppress(NotFound, OSError):
                    self.reg.content.delete(d)

    def _apply(
        self, ref: Reference, desc: mf.Descriptor, diff_id: str, parent: str | None, sizes: list[int], i: int
    ) -> None:
        if self.cancel.is_set():
            raise Cancelled()
        lid = progress.short(desc.digest)
        meter = progress.Meter(self.emit, lid, "Extracting", desc.size)
        with self.reg.content.open(desc.digest) as f:
            reader = progress.MeteredReader(f, meter)
            try:
                layer = self.reg.store.layers.register(
                    cast(BinaryIO, reader), parent, expected_diff_id=diff_id, tar_blob=desc.digest
                )
            except InvalidParameter as e:  # dockerd's prefix (the rest is our archive code's words)
                raise InvalidParameter(f"failed to register layer: {e.message}") from None
        meter.tick(final=True)
        sizes[i] = layer.size
        self.reg.sources.add(diff_id, desc.digest, ref.name)
        self.emit(progress.update(lid, "Pull complete"))




def distribution_inspect(reg: Registries, auth: AuthConfig, ref: Reference) -> dict[str, Any]:
    """GET /distribution/{name}/json: the top descriptor and the platforms it offers."""
    session = open_session(reg.clients, reg.hosts.endpoints(ref.domain), auth, [scope(ref.path, "pull")])
    wanted = ref.digest or ref.tag or "latest"
    try:
        body, ctype, digest = get_manifest(session, ref.path, wanted)
    except RegistryError as e:
        raise translate(e, ref) from None
    m = mf.parse(body, ctype)
    desc = {"mediaType": m.media_type, "digest": digest, "size": len(body)}
    platforms: list[dict[str, Any]] = []
    if isinstance(m, mf.Index):
        for d in m.manifests:
            if d.platform:
                p = {"architecture": d.platform.get("architecture", ""), "os": d.platform.get("os", "")}
                for k in ("os.version", "os.features", "variant", "features"):
                    if d.platform.get(k):
                        p[k] = d.platform[k]
                platforms.append(p)
    else:
        cfg = parse_config(read_small_blob(session, ref.path, m.config, mf.MAX_CONFIG))
        p = {"architecture": cfg.get("architecture") or "", "os": cfg.get("os") or ""}
        if cfg.get("variant"):
            p["variant"] = cfg["variant"]
        platforms.append(p)
    return {"Descriptor": desc, "Platforms": platforms}
