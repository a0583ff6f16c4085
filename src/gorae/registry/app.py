"""The registry's HTTP side: the distribution spec's routes over a `RegistryStore`, as an `Application` of
the generic HTTP server (`gorae.httpserver`).

Owns the handlers (`/v2/`, manifests, blobs, uploads, tags, `_catalog`, referrers), their headers
(`Docker-Content-Digest`, `Location`, `Docker-Upload-UUID`, `Range`, `OCI-Subject`, `Link`,
`Docker-Distribution-API-Version` on every response), the order checks of chunked uploads, streaming upload
bodies to the driver with incremental hashing off the event loop, blob GETs by sendfile when the driver has
local files, read-only mode and the hand-off to an `Authorizer`. Every storage call runs in a thread pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO, Protocol, TypeVar
from urllib.parse import quote

from gorae import __version__
from gorae.errors import PayloadTooLarge
from gorae.httpserver.heads import Heads
from gorae.httpserver.message import FileResponse, Request, Response, StreamResponse, json_response
from gorae.httpserver.router import Router
from gorae.registry import names
from gorae.registry.errors import RegistryError, bad_request, error_response
from gorae.registry.store import RegistryStore, UploadHash

T = TypeVar("T")

MAX_MANIFEST = 4 * 1024 * 1024
FLUSH = 4 * 1024 * 1024  # upload bytes gathered before one write+hash in a worker thread
STREAM_CHUNK = 1024 * 1024

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
_READS = frozenset({"GET", "HEAD"})

_CONTENT_RANGE = re.compile(r"(?:bytes[ =])?(\d{1,19})-(\d{1,19})(?:/(?:\d{1,19}|\*))?")
_RANGE = re.compile(r"bytes=(\d{0,19})-(\d{0,19})")

Access = tuple[str, str, str]  # ("repository", name, "pull"|"push"|"delete") or ("registry", "catalog", "*")


class Authorizer(Protocol):
    """Decides whether a request may do what it asks; raises RegistryError UNAUTHORIZED/DENIED if not."""

    async def authorize(self, req: Request, access: list[Access]) -> None: ...

    def allows(self, req: Request, access: Access) -> bool:
        """Whether the request's credentials also grant `access` (no challenge: for optional extras)."""
        ...


def _parse_content_range(value: str) -> tuple[int, int]:
    m = _CONTENT_RANGE.fullmatch(value.strip())
    if m is None:
        raise RegistryError("RANGE_INVALID", f"invalid Content-Range {value[:100]!r}")
    start, end = int(m.group(1)), int(m.group(2))
    if end < start:
        raise RegistryError("RANGE_INVALID", f"invalid Content-Range {value[:100]!r}")
    return start, end


def _parse_range(value: str | None, size: int) -> tuple[int, int] | None:
    """A single `bytes=` range as (start, end inclusive); None for the whole blob; 416 when unsatisfiable."""
    if value is None:
        return None
    m = _RANGE.fullmatch(value.strip())
    if m is None or (not m.group(1) and not m.group(2)):
        return None  # several ranges or another unit: answer with the whole blob, as Go's ServeContent may
    if not m.group(1):
        suffix = int(m.group(2))
        if suffix == 0 or size == 0:
            raise _unsatisfiable(size)
        return max(0, size - suffix), size - 1
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else size - 1
    if start >= size or end < start:
        raise _unsatisfiable(size)
    return start, min(end, size - 1)


def _unsatisfiable(size: int) -> RegistryError:
    return RegistryError(
        "RANGE_INVALID", "requested range not satisfiable", headers=[("Content-Range", f"bytes */{size}")]
    )


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


class RegistryApp:
    """The distribution spec's HTTP API over `store`."""

    heads = Heads(
        [
            (b"Docker-Distribution-Api-Version", b"registry/2.0"),
            (b"Server", f"gorae-registry/{__version__}".encode()),
            (b"X-Content-Type-Options", b"nosniff"),
        ]
    )

    def __init__(
        self,
        store: RegistryStore,
        *,
        authorizer: Authorizer | None = None,
        read_only: bool = False,
        max_blob_size: int | None = None,
        workers: int = 32,
        public_routes: list[tuple[str, str, Callable[[Request], Any]]] | None = None,
    ) -> None:
        self.store = store
        self.authorizer = authorizer
        self.read_only = read_only
        self.max_blob_size = max_blob_size
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="registry")
        self._upload_locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}
        self.router = Router()
        self._public: set[str] = set()
        for method, pattern, handler in public_routes or []:
            self.router.add(method, pattern, handler)
            self._public.add(pattern)
        for method, pattern, handler in self.routes():
            self.router.add(method, pattern, handler)

    def routes(self) -> list[tuple[str, str, Callable[[Request], Any]]]:
        return [
            ("GET", "/v2/", self.base),
            ("GET", "/v2", self.base),
            ("GET", "/v2/_catalog", self.catalog),
            ("GET", "/v2/{name:.+}/tags/list", self.tags_list),
            ("GET", "/v2/{name:.+}/manifests/{reference}", self.get_manifest),
            ("PUT", "/v2/{name:.+}/manifests/{reference}", self.put_manifest),
            ("DELETE", "/v2/{name:.+}/manifests/{reference}", self.delete_manifest),
            ("POST", "/v2/{name:.+}/blobs/uploads/", self.start_upload),
            ("POST", "/v2/{name:.+}/blobs/uploads", self.start_upload),
            ("GET", "/v2/{name:.+}/blobs/uploads/{upload_id}", self.upload_status),
            ("PATCH", "/v2/{name:.+}/blobs/uploads/{upload_id}", self.patch_upload),
            ("PUT", "/v2/{name:.+}/blobs/uploads/{upload_id}", self.put_upload),
            ("DELETE", "/v2/{name:.+}/blobs/uploads/{upload_id}", self.cancel_upload),
            ("GET", "/v2/{name:.+}/blobs/{digest}", self.get_blob),
            ("DELETE", "/v2/{name:.+}/blobs/{digest}", self.delete_blob),
            ("GET", "/v2/{name:.+}/referrers/{digest}", self.referrers),
        ]

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    # -- Application ------------------------------------------------------------------------------

    async def handle(self, req: Request) -> Response | None:
        handler, params = self.router.resolve(req.method, req.path)
        req.params = params
        if req.path in self._public:  # the token realm served beside the registry: it checks its own
            resp: Response | None = await handler(req)
            return resp
        name = params.get("name")
        if name is not None:
            names.repository(name)
        if self.authorizer is not None:
            await self.authorizer.authorize(req, self._access(req, name))
        if self.read_only and req.method not in _READS:
            raise RegistryError("UNSUPPORTED")
        answer: Response | None = await handler(req)
        return answer

    def _access(self, req: Request, name: str | None) -> list[Access]:
        if name is None:
            return [("registry", "catalog", "*")] if req.path.endswith("/_catalog") else []
        if req.method in _READS:
            return [("repository", name, "pull")]
        if req.method == "DELETE":
            return [("repository", name, "delete")]
        return [("repository", name, "pull"), ("repository", name, "push")]

    def error_response(self, exc: BaseException, *, context: str = "") -> Response:
        return error_response(exc, context=context)

    def bad_request(self, detail: str) -> Response:
        return bad_request(detail)

    # -- base and listings ------------------------------------------------------------------------

    async def base(self, req: Request) -> Response:
        return json_response({})

    def _page(self, req: Request, items: list[str], url: str) -> tuple[list[str], list[tuple[str, str]]]:
        n_text, last = req.q("n"), req.q("last")
        if last:
            items = [i for i in items if i > last]
        if n_text is None or n_text == "":
            return items, []
        if not n_text.isdigit():
            raise RegistryError("UNSUPPORTED", "invalid n: not a non-negative integer", status=400)
        n = int(n_text)
        if n == 0:
            return [], []
        page = items[:n]
        headers = []
        if len(items) > n:
            headers.append(("Link", f'<{url}?last={quote(page[-1], safe="")}&n={n}>; rel="next"'))
        return page, headers

    async def catalog(self, req: Request) -> Response:
        repos = await self.run(self.store.repositories)
        page, headers = self._page(req, repos, "/v2/_catalog")
        return json_response({"repositories": page}, headers=headers)

    async def tags_list(self, req: Request) -> Response:
        name = req.params["name"]
        tags = await self.run(self.store.tags, name)
        if not tags and not await self.run(self.store.repository_exists, name):
            raise RegistryError("NAME_UNKNOWN", detail={"name": name})
        page, headers = self._page(req, tags, f"/v2/{name}/tags/list")
        return json_response({"name": name, "tags": page}, headers=headers)

    # -- manifests --------------------------------------------------------------------------------

    def _find_manifest(self, name: str, reference: str) -> tuple[str, tuple[bytes, str] | None]:
        """In a worker: the digest a reference (tag or digest) names and that manifest (None when the
        repository has none by it); MANIFEST_UNKNOWN for a tag that names nothing. One hand-off for both."""
        if names.is_digest(reference):
            digest = names.digest(reference)
        else:
            try:
                names.tag(reference)
            except RegistryError:
                raise RegistryError("MANIFEST_UNKNOWN", detail={"tag": reference[:200]}) from None
            found = self.store.resolve_tag(name, reference)
            if found is None:
                raise RegistryError("MANIFEST_UNKNOWN", detail={"tag": reference})
            digest = found
        return digest, self.store.manifest(name, digest)

    async def get_manifest(self, req: Request) -> Response:
        name, reference = req.params["name"], req.params["reference"]
        if names.is_digest(reference):
            names.digest(reference)  # a malformed digest: its error before any storage work
        digest, found = await self.run(self._find_manifest, name, reference)
        if found is None:
            raise RegistryError("MANIFEST_UNKNOWN", detail={"digest": digest})
        data, media = found
        accept = [_media_type(a) for a in req.headers.get("accept", "").split(",") if a.strip()]
        if accept and media in INDEX_TYPES and media not in accept and "*/*" not in accept:
            kind = "OCI index" if media == OCI_INDEX else "manifest list"
            raise RegistryError(
                "MANIFEST_UNKNOWN", f"{kind} found, but accept header does not support {kind}s"
            )
        headers = [("Docker-Content-Digest", digest), ("Etag", f'"{digest}"')]
        if req.method == "HEAD":
            return Response(status=200, content_type=media, headers=headers, content_length=len(data))
        return Response(status=200, body=data, content_type=media, headers=headers)

    async def put_manifest(self, req: Request) -> Response:
        name, reference = req.params["name"], req.params["reference"]
        tag: str | None = None
        if names.is_digest(reference):
            want = names.digest(reference)
        else:
            tag = names.tag(reference)
            want = None
        req.max_body = MAX_MANIFEST
        try:
            data = await req.body()
        except PayloadTooLarge:
            raise RegistryError(
                "SIZE_INVALID", f"manifest larger than {MAX_MANIFEST} bytes", status=413
            ) from None
        algorithm = want.partition(":")[0] if want else "sha256"
        digest = names.digest_of(data, algorithm)
        if want is not None and digest != want:
            raise RegistryError("DIGEST_INVALID", detail={"digest": want, "computed": digest})
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise RegistryError("MANIFEST_INVALID", f"manifest invalid: {e}") from None
        if not isinstance(doc, dict) or doc.get("schemaVersion") != 2:
            raise RegistryError("MANIFEST_INVALID", "manifest invalid: schemaVersion 2 required")
        content_type = _media_type(req.headers.get("content-type"))
        declared = doc.get("mediaType")
        if declared is not None and not isinstance(declared, str):
            raise RegistryError("MANIFEST_INVALID", "manifest invalid: mediaType is not a string")
        if (
            declared
            and content_type
            and content_type != declared.lower()
            and content_type != "application/json"
        ):
            raise RegistryError(
                "MANIFEST_INVALID",
                f"manifest invalid: mediaType {declared} does not match Content-Type {content_type}",
            )
        media = declared or content_type or (OCI_INDEX if "manifests" in doc else OCI_MANIFEST)
        is_index = media in INDEX_TYPES or (media not in IMAGE_TYPES and "manifests" in doc)
        await self._check_references(name, doc, is_index)
        subject = self._subject(doc)
        await self.run(self.store.put_manifest, name, digest, data, media, tag)
        headers = [("Location", f"/v2/{name}/manifests/{digest}"), ("Docker-Content-Digest", digest)]
        if subject is not None:
            await self.run(self.store.add_referrer, name, subject, digest)
            headers.append(("OCI-Subject", subject))
        return Response(status=201, headers=headers)

    @staticmethod
    def _descriptor_digest(desc: Any, what: str) -> str:
        if not isinstance(desc, dict) or not isinstance(desc.get("digest"), str):
            raise RegistryError("MANIFEST_INVALID", f"manifest invalid: {what} is not a descriptor")
        size = desc.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise RegistryError("MANIFEST_INVALID", f"manifest invalid: {what} has no valid size")
        try:
            return names.digest(desc["digest"])
        except RegistryError:
            raise RegistryError(
                "MANIFEST_INVALID", f"manifest invalid: {what} has an invalid digest"
            ) from None

    def _subject(self, doc: dict[str, Any]) -> str | None:
        if "subject" not in doc or doc["subject"] is None:
            return None
        return self._descriptor_digest(doc["subject"], "subject")

    async def _check_references(self, name: str, doc: dict[str, Any], is_index: bool) -> None:
        if is_index:
            children = doc.get("manifests")
            if not isinstance(children, list):
                raise RegistryError("MANIFEST_INVALID", "manifest invalid: manifests must be a list")
            for i, child in enumerate(children):
                digest = self._descriptor_digest(child, f"manifests[{i}]")
                if not await self.run(self.store.has_manifest, name, digest):
                    raise RegistryError("MANIFEST_BLOB_UNKNOWN", detail={"digest": digest})
            return
        config = doc.get("config")
        layers = doc.get("layers", [])
        if not isinstance(layers, list):
            raise RegistryError("MANIFEST_INVALID", "manifest invalid: layers must be a list")
        descriptors = [("config", config)] + [(f"layers[{i}]", layer) for i, layer in enumerate(layers)]
        for what, desc in descriptors:
            digest = self._descriptor_digest(desc, what)
            if isinstance(desc, dict) and desc.get("urls"):
                continue  # a foreign layer: fetched from its URLs, not from here
            if await self.run(self.store.repo_blob_size, name, digest) is None:
                raise RegistryError("MANIFEST_BLOB_UNKNOWN", detail={"digest": digest})

    async def delete_manifest(self, req: Request) -> Response:
        name, reference = req.params["name"], req.params["reference"]
        if names.is_digest(reference):
            ok = await self.run(self.store.delete_manifest, name, names.digest(reference))
        else:
            ok = await self.run(self.store.delete_tag, name, names.tag(reference))
        if not ok:
            raise RegistryError("MANIFEST_UNKNOWN", detail={"reference": reference})
        return Response(status=202)

    async def referrers(self, req: Request) -> Response:
        name = req.params["name"]
        subject = names.digest(req.params["digest"])
        wanted = req.q("artifactType")
        found = await self.run(self.store.referrers, name, subject)
        descriptors = []
        for digest in found:
            manifest = await self.run(self.store.manifest, name, digest)
            if manifest is None:
                continue
            data, media = manifest
            desc = _referrer_descriptor(digest, data, media)
            if wanted is not None and desc.get("artifactType") != wanted:
                continue
            descriptors.append(desc)
        headers = [("OCI-Filters-Applied", "artifactType")] if wanted is not None else []
        body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
        return Response(status=200, body=json.dumps(body).encode(), content_type=OCI_INDEX, headers=headers)

    # -- blobs ------------------------------------------------------------------------------------

    async def get_blob(self, req: Request) -> Response:
        name, digest = req.params["name"], names.digest(req.params["digest"])
        # one hand-off to the storage thread for the lookup and the open (each hand-off is a thread
        # wake-up, which on a loaded machine waits its turn for a CPU)
        found = await self.run(self._find_blob, name, digest, req.method != "HEAD")
        if found is None:
            raise RegistryError("BLOB_UNKNOWN", detail={"digest": digest})
        size, f = found
        headers = [
            ("Docker-Content-Digest", digest),
            ("Accept-Ranges", "bytes"),
            ("Etag", f'"{digest}"'),
            ("Cache-Control", "max-age=31536000"),
        ]
        ctype = "application/octet-stream"
        if req.method == "HEAD":
            return Response(status=200, content_type=ctype, headers=headers, content_length=size)
        start, length, status = 0, size, 200
        try:
            rng = _parse_range(req.headers.get("range"), size)
        except RegistryError:
            if f is not None:
                f.close()
            raise
        if rng is not None:
            start, length, status = rng[0], rng[1] - rng[0] + 1, 206
            headers.append(("Content-Range", f"bytes {rng[0]}-{rng[1]}/{size}"))
        if f is not None:
            return FileResponse(f, start, length, content_type=ctype, status=status, headers=headers)
        reader = await self.run(self.store.blob_reader, digest, start)
        return StreamResponse(
            self._stream(reader, length),
            content_type=ctype,
            status=status,
            headers=headers,
            content_length=length,
        )

    def _find_blob(self, name: str, digest: str, open_file: bool) -> tuple[int, BinaryIO | None] | None:
        """In a worker: the size of a blob `name` may serve, and (`open_file`, when the driver keeps it in a
        local file) that file opened for sendfile; None when the repository has no such blob."""
        size = self.store.repo_blob_size(name, digest)
        if size is None:
            return None
        local = self.store.blob_local_path(digest) if open_file else None
        return size, (_open_binary(local) if local is not None else None)

    async def _stream(self, reader: Any, length: int) -> AsyncIterator[bytes]:
        try:
            while length > 0:
                chunk = await self.run(reader.read, min(STREAM_CHUNK, length))
                if not chunk:
                    raise OSError("blob shorter than its stored size")
                length -= len(chunk)
                yield chunk
        finally:
            await self.run(reader.close)

    async def delete_blob(self, req: Request) -> Response:
        name, digest = req.params["name"], names.digest(req.params["digest"])
        if not await self.run(self.store.unlink_blob, name, digest):
            raise RegistryError("BLOB_UNKNOWN", detail={"digest": digest})
        return Response(status=202, headers=[("Docker-Content-Digest", digest)])

    # -- uploads ----------------------------------------------------------------------------------

    def _upload_headers(self, name: str, upload_id: str, size: int) -> list[tuple[str, str]]:
        return [
            ("Location", f"/v2/{name}/blobs/uploads/{upload_id}"),
            ("Range", f"0-{max(size - 1, 0)}"),
            ("Docker-Upload-UUID", upload_id),
        ]

    def _check_declared(self, req: Request, already: int) -> None:
        """Refuse a body whose declared length would pass the size limit before reading any of it."""
        declared = req.headers.get("content-length", "")
        if (
            self.max_blob_size is not None
            and declared.isdigit()
            and already + int(declared) > self.max_blob_size
        ):
            raise RegistryError(
                "SIZE_INVALID", f"blob larger than the limit of {self.max_blob_size} bytes", status=413
            )

    async def start_upload(self, req: Request) -> Response:
        name = req.params["name"]
        mount, source = req.q("mount"), req.q("from")
        if mount is not None:
            digest = names.digest(mount)
            if await self._mount(req, name, digest, source):
                return Response(
                    status=201,
                    headers=[("Location", f"/v2/{name}/blobs/{digest}"), ("Docker-Content-Digest", digest)],
                )
        want = req.q("digest")
        expected = names.digest(want) if want is not None else None
        if expected is not None:
            self._check_declared(req, 0)
        upload_id = await self.run(self.store.start_upload, name)
        if expected is None:
            return Response(status=202, headers=self._upload_headers(name, upload_id, 0))
        async with self._upload_lock(upload_id):
            await self._receive(req, name, upload_id, 0, final=True)
            return await self._commit(name, upload_id, expected)

    async def _mount(self, req: Request, name: str, digest: str, source: str | None) -> bool:
        """Link a blob the client may read into `name`: from `source`, or (without `from`, and only on a
        registry without auth, where every blob is readable anyway) from wherever it is stored."""
        if source is None:
            if self.authorizer is not None or await self.run(self.store.blob_size, digest) is None:
                return False
            await self.run(self.store.link_blob, name, digest)
            return True
        try:
            names.repository(source)
        except RegistryError:
            return False
        if self.authorizer is not None and not self.authorizer.allows(req, ("repository", source, "pull")):
            return False
        if await self.run(self.store.repo_blob_size, source, digest) is None:
            return False
        await self.run(self.store.link_blob, name, digest)
        return True

    @contextlib.asynccontextmanager
    async def _upload_lock(self, upload_id: str) -> AsyncIterator[None]:
        """One request at a time per upload (a client racing itself gets its chunks in turn)."""
        entry = self._upload_locks.setdefault(upload_id, (asyncio.Lock(), [0]))
        entry[1][0] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1][0] -= 1
            if entry[1][0] == 0:
                del self._upload_locks[upload_id]

    async def _current_size(self, name: str, upload_id: str) -> int:
        names.upload_id(upload_id)
        size = await self.run(self.store.upload_size, name, upload_id)
        if size is None:
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", detail={"uuid": upload_id})
        return size

    async def upload_status(self, req: Request) -> Response:
        name, upload_id = req.params["name"], req.params["upload_id"]
        size = await self._current_size(name, upload_id)
        return Response(status=204, headers=self._upload_headers(name, upload_id, size))

    async def cancel_upload(self, req: Request) -> Response:
        name, upload_id = req.params["name"], names.upload_id(req.params["upload_id"])
        if not await self.run(self.store.cancel_upload, name, upload_id):
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", detail={"uuid": upload_id})
        return Response(status=204)

    def _check_order(self, req: Request, name: str, upload_id: str, size: int) -> None:
        """A chunk must start where the upload ends and match its declared length (416 otherwise)."""
        value = req.headers.get("content-range")
        if value is None:
            return
        start, end = _parse_content_range(value)
        declared = req.headers.get("content-length")
        if start != size or (
            declared is not None and declared.isdigit() and int(declared) != end - start + 1
        ):
            raise RegistryError(
                "RANGE_INVALID",
                f"range {start}-{end} does not continue the upload at {size}",
                headers=self._upload_headers(name, upload_id, size),
            )

    async def patch_upload(self, req: Request) -> Response:
        name, upload_id = req.params["name"], req.params["upload_id"]
        async with self._upload_lock(upload_id):
            size = await self._current_size(name, upload_id)
            self._check_order(req, name, upload_id, size)
            self._check_declared(req, size)
            size += await self._receive(req, name, upload_id, size)
            return Response(status=202, headers=self._upload_headers(name, upload_id, size))

    async def put_upload(self, req: Request) -> Response:
        name, upload_id = req.params["name"], req.params["upload_id"]
        want = req.q("digest")
        if want is None:
            raise RegistryError("DIGEST_INVALID", "digest missing: the ?digest= parameter is required")
        digest = names.digest(want)
        async with self._upload_lock(upload_id):
            size = await self._current_size(name, upload_id)
            self._check_order(req, name, upload_id, size)
            self._check_declared(req, size)
            await self._receive(req, name, upload_id, size, final=True)
            return await self._commit(name, upload_id, digest)

    async def _commit(self, name: str, upload_id: str, digest: str) -> Response:
        computed, _ = await self.run(self.store.upload_digest, name, upload_id, digest.partition(":")[0])
        if computed != digest:
            await self.run(self.store.cancel_upload, name, upload_id)
            raise RegistryError("DIGEST_INVALID", detail={"digest": digest, "computed": computed})
        await self.run(self.store.commit_upload, name, upload_id, digest)
        return Response(
            status=201,
            headers=[("Location", f"/v2/{name}/blobs/{digest}"), ("Docker-Content-Digest", digest)],
        )

    async def _receive(
        self, req: Request, name: str, upload_id: str, size: int, *, final: bool = False
    ) -> int:
        """Append the request body to the upload, hashing it on the way; returns the bytes appended. With
        `final` (the request that completes the upload) the data is committed: durable before it is moved
        into place as a blob.

        Writes and hashing go to the thread pool in FLUSH-sized batches while the next batch arrives. A
        request that fails midway (client gone, truncated body, over the size limit) abandons the whole
        upload: nothing half-written stays behind."""
        state = self.store.upload_hash(upload_id, size)
        hasher = state.hasher if state is not None else None
        writer = await self.run(self.store.upload_writer, name, upload_id)
        received = 0
        parts: list[bytes] = []
        buffered = 0
        pending: asyncio.Future[None] | None = None
        loop = asyncio.get_running_loop()
        limit = self.max_blob_size
        try:
            async for chunk in req.stream():
                received += len(chunk)
                if limit is not None and size + received > limit:
                    raise RegistryError(
                        "SIZE_INVALID", f"blob larger than the limit of {limit} bytes", status=413
                    )
                parts.append(chunk)
                buffered += len(chunk)
                if buffered >= FLUSH:
                    if pending is not None:
                        await pending
                    batch, parts = parts, []
                    buffered = 0
                    pending = loop.run_in_executor(self._pool, _write_and_hash, writer, hasher, batch)
            if pending is not None:
                await pending
                pending = None
            if parts:
                await self.run(_write_and_hash, writer, hasher, parts)
            await self.run(writer.commit if final else writer.close)
        except BaseException:
            if pending is not None:
                with contextlib.suppress(BaseException):
                    await asyncio.shield(pending)
            with contextlib.suppress(Exception):
                await asyncio.shield(self.run(writer.cancel))
                await asyncio.shield(self.run(self.store.cancel_upload, name, upload_id))
            raise
        if hasher is not None:
            self.store.keep_hash(upload_id, UploadHash(hasher, size + received))
        return received


def _open_binary(path: str) -> BinaryIO:
    return open(path, "rb")  # noqa: SIM115  # the FileResponse closes it


def _write_and_hash(writer: Any, hasher: Any, parts: list[bytes]) -> None:
    """In a worker thread: the pieces as they came off the socket, not joined on the event loop's thread."""
    for data in parts:
        writer.write(data)
        if hasher is not None:
            hasher.update(data)


def _referrer_descriptor(digest: str, data: bytes, media: str) -> dict[str, Any]:
    desc: dict[str, Any] = {"mediaType": media, "digest": digest, "size": len(data)}
    try:
        doc = json.loads(data)
    except ValueError:
        return desc
    if not isinstance(doc, dict):
        return desc
    artifact = doc.get("artifactType")
    if not artifact and isinstance(doc.get("config"), dict):
        artifact = doc["config"].get("mediaType")
    if isinstance(artifact, str) and artifact:
        desc["artifactType"] = artifact
    if isinstance(doc.get("annotations"), dict):
        desc["annotations"] = doc["annotations"]
    return desc
