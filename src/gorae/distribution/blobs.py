"""Blob downloads into the content store: streamed, verified against their digest while they arrive,
resumable, and shared between concurrent pulls of one daemon.

A blob is written through the content store's ingest `pull-<digest>` (`ContentStore.writer`), so the
bytes of an interrupted download — client gone, connection lost, daemon killed — stay in the ingest and
the next attempt asks the registry only for the rest (`Range: bytes=<offset>-`; a registry that answers
200 instead of 206 makes it start over). As in dockerd, a blob is as long as the registry says (the
descriptor's size is not enforced) and its digest decides, checked at commit: a blob whose bytes do not
match is discarded whole ("filesystem layer verification failed for digest ...") and nothing of it stays,
nor of a blob the registry failed to send whole three times running.
`Inflight` counts the pulls using a blob so one pull does not delete what another still applies.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import httpx

from gorae.distribution import progress
from gorae.distribution.manifest import Descriptor
from gorae.distribution.transport import Session, Unreachable
from gorae.errors import Conflict, GoraeError, InvalidParameter, NotFound
from gorae.store.content import ContentStore, ContentWriter

CHUNK = 1 << 20
ATTEMPTS = 3  # a broken connection is resumed this many times before the pull fails
MAX_BLOB = 1 << 36  # 64 GiB: past this a registry is streaming garbage (the layers' decompressed cap too)


class Cancelled(GoraeError):
    """The client went away (dockerd: the request's context is cancelled)."""

    def __init__(self) -> None:
        super().__init__("context canceled")


class VerificationFailed(GoraeError):
    pass


class EitherEvent(threading.Event):
    """Set when either of two events is: what the download and upload loops poll (the pull's or push's own
    stop and the client's cancel)."""

    def __init__(self, a: threading.Event, b: threading.Event) -> None:
        super().__init__()
        self._a, self._b = a, b

    def is_set(self) -> bool:
        return self._a.is_set() or self._b.is_set()


class Inflight:
    """Per-digest locks and use counts of blobs being downloaded or applied, across the pulls of a daemon."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._users: dict[str, int] = {}

    @contextlib.contextmanager
    def using(self, digest: str) -> Iterator[None]:
        with self._lock:
            self._users[digest] = self._users.get(digest, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._users[digest] -= 1
                if not self._users[digest]:
                    del self._users[digest]
                    self._locks.pop(digest, None)

    def lock(self, digest: str) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(digest, threading.Lock())

    def last_user(self, digest: str) -> bool:
        with self._lock:
            return self._users.get(digest, 0) <= 1


def ingest_ref(digest: str) -> str:
    return f"pull-{digest}"


def fetch_blob(
    session: Session,
    path: str,
    desc: Descriptor,
    content: ContentStore,
    inflight: Inflight,
    cancel: threading.Event,
    emit: progress.Emit | None = None,
    id: str = "",
) -> None:
    """Make blob `desc` exist in the content store, downloading what is missing (see the module doc)."""
    with inflight.lock(desc.digest):
        if content.exists(desc.digest):
            return
        last: GoraeError | None = None
        for _ in range(ATTEMPTS):
            if cancel.is_set():
                raise Cancelled()
            try:
                _download(session, path, desc, content, cancel, emit, id)
                return
            except (Unreachable, _Truncated) as e:
                last = e if isinstance(e, GoraeError) else GoraeError(str(e))
                continue
        assert last is not None
        # the registry keeps failing: what it sent is not kept either (a cancelled pull keeps its bytes)
        with contextlib.suppress(NotFound, Conflict):
            content.abort(ingest_ref(desc.digest))
        raise last


class _Truncated(GoraeError):
    pass


def _writer(content: ContentStore, desc: Descriptor) -> ContentWriter:
    try:
        return content.writer(ingest_ref(desc.digest), expected=desc.digest)
    except Conflict:
        raise GoraeError(f"blob {desc.digest} is being downloaded by another process") from None


def _length(resp: httpx.Response, offset: int) -> int | None:
    """The blob's full length as the registry states it (Content-Range's total, or the offset plus
    Content-Length); None when it does not say."""
    cr = resp.headers.get("content-range", "")
    if resp.status_code == 206 and "/" in cr and cr.rsplit("/", 1)[1].isdigit():
        return int(cr.rsplit("/", 1)[1])
    cl = resp.headers.get("content-length", "")
    return offset + int(cl) if cl.isdigit() else None


def _download(
    session: Session,
    path: str,
    desc: Descriptor,
    content: ContentStore,
    cancel: threading.Event,
    emit: progress.Emit | None,
    id: str,
) -> None:
    """One attempt. The blob is as long as the registry says, not as the descriptor declares (dockerd reads
    to the end and checks only the digest); its digest decides."""
    w = _writer(content, desc)
    committed = False
    try:
        offset = w.status().offset
        if not (offset and w.digest() == desc.digest):  # not complete already (a kill after the last byte)
            headers = {"Range": f"bytes={offset}-"} if offset else {}
            resp = session.request(
                "GET", f"/v2/{path}/blobs/{desc.digest}", headers=headers, stream=True, ok=(200, 206)
            )
            try:
                if offset and (resp.status_code == 200 or not resp.headers.get("content-range", "").startswith(
                    f"bytes {offset}-"
                )):  # no (or another) range: start over
                    w.abort()
                    w = _writer(content, desc)
                    offset = 0
                length = _length(resp, offset)
                reporter = (
                    progress.Meter(emit, id, "Downloading", length or desc.size, offset) if emit is not None else None
                )
                try:
                    for chunk in resp.iter_raw(CHUNK):
                        if cancel.is_set():
                            raise Cancelled()
                        if offset + len(chunk) > MAX_BLOB:
                            raise VerificationFailed(f"blob {desc.digest}: larger than {MAX_BLOB} bytes")
                        w.write(chunk)
                        offset += len(chunk)
                        if reporter is not None:
                            reporter.current = offset
                            reporter.tick()
                except httpx.HTTPError as e:
                    raise _Truncated(f"read {desc.digest}: {e}") from None
                if reporter is not None:
                    reporter.tick(final=True)
            finally:
                resp.close()
            if length is not None and offset < length:
                raise _Truncated(f"blob {desc.digest}: unexpected EOF")
        if emit is not None:
            emit(progress.update(id, "Verifying Checksum"))
        try:
            w.commit(0, desc.digest)
            committed = True
        except InvalidParameter:
            raise VerificationFailed(f"filesystem layer verification failed for digest {desc.digest}") from None
        if emit is not None:
            emit(progress.update(id, "Download complete"))
    except VerificationFailed:
        w.abort()  # nothing of a lying blob stays
        raise
    finally:
        if not committed:
            w.close()  # what arrived stays in the ingest for the next attempt


def read_small_blob(session: Session, path: str, desc: Descriptor, limit: int) -> bytes:
    """A config blob, fetched whole into memory (at most `limit` bytes) and verified."""
    import hashlib

    if desc.size > limit:
        raise InvalidParameter(f"blob {desc.digest} too large: {desc.size} bytes (at most {limit})")
    resp = session.request("GET", f"/v2/{path}/blobs/{desc.digest}", stream=True)
    try:
        buf = bytearray()
        for chunk in resp.iter_raw(CHUNK):
            buf += chunk
            if len(buf) > desc.size:
                break
    except httpx.HTTPError as e:
        raise Unreachable(f"read {desc.digest}: {e}") from None
    finally:
        resp.close()
    data = bytes(buf)
    if len(data) != desc.size or "sha256:" + hashlib.sha256(data).hexdigest() != desc.digest:
        raise VerificationFailed(f"image config verification failed for digest {desc.digest}")
    return data
