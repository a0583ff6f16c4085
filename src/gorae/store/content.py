"""The content store: blobs addressed by sha256 digest under `<root>/blobs/sha256/<hex>`, and their ingests.

A blob is written through a `ContentWriter` (containerd's content.Writer) into its ingest directory
`<root>/ingest/<sha256 of the ref>/` (same filesystem): `data` (the bytes so far) and `meta.json`
({ref, total, expected, started_at}). `commit(size, expected)` verifies the size and the digest, fsyncs the
data, renames it into place and fsyncs the directory, so a blob either exists whole or not at all.
An ingest is held by one writer at a time (an flock on its `data`, released by a crash too, plus a
process lock around the renames); a second `writer(ref)` while it is held is a Conflict. A writer closed
without commit (or a daemon killed mid-ingest) leaves the ingest to be resumed by `writer(ref)`: it
re-hashes what is there and continues at `status().offset`. At start, ingests untouched for
`max_ingest_age` seconds and stray files of older versions are deleted.
A path is only ever built from a digest that `parse_digest` accepted, or from the hash of a ref.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import hashlib
import io
import json
import os
import shutil
import threading
import time
import uuid
from types import TracebackType
from typing import Any, BinaryIO

from gorae.errors import Conflict, InvalidParameter, NotFound
from gorae.store.digest import parse_digest
from gorae.store.types import Info, Status

CHUNK = 1 << 20
INGEST_MAX_AGE = 24 * 3600.0

# Serialises the directory operations of ingests (claim, commit, abort) across the ContentStore objects
# of this process; the flock on `data` keeps out other processes and writers of the same process.
_DIRS = threading.Lock()


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _ref_dir_name(ref: str) -> str:
    return hashlib.sha256(ref.encode()).hexdigest()


class ContentWriter:
    """The exclusive writer of one ingest (see the module docstring). Not thread-safe: one user at a time."""

    def __init__(self, store: ContentStore, ref: str, path: str, fd: int, meta: dict[str, Any]) -> None:
        self._store = store
        self._ref = ref
        self._dir = path
        self._fd: int | None = fd
        self._total = int(meta.get("total") or 0)
        self._expected = str(meta.get("expected") or "")
        self._started = float(meta.get("started_at") or time.time())
        self._hash = hashlib.sha256()
        self._offset = 0
        os.lseek(fd, 0, os.SEEK_SET)
        while True:  # resume: hash what an earlier writer left
            chunk = os.read(fd, CHUNK)
            if not chunk:
                break
            self._hash.update(chunk)
            self._offset += len(chunk)
        self._updated = os.fstat(fd).st_mtime

    @property
    def ref(self) -> str:
        return self._ref

    def _live_fd(self) -> int:
        if self._fd is None:
            raise InvalidParameter(f"ingest {self._ref}: writer is closed")
        return self._fd

    def write(self, data: bytes | bytearray | memoryview) -> int:
        fd = self._live_fd()
        if self._total and self._offset + len(data) > self._total:
            raise InvalidParameter(f"blob larger than the expected {self._total} bytes")
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        self._hash.update(data)
        self._offset += len(data)
        self._updated = time.time()
        return len(data)

    def digest(self) -> str:
        """The digest of the bytes written so far."""
        return "sha256:" + self._hash.hexdigest()

    def status(self) -> Status:
        return Status(self._ref, self._offset, self._total, self._expected, self._started, self._updated)

    def reader(self) -> BinaryIO:
        """A reader of the bytes written so far, from the start (the caller closes it; writes after this
        may or may not show in it)."""
        self._live_fd()
        return open(os.path.join(self._dir, "data"), "rb")

    def commit(self, size: int = 0, expected: str = "") -> str:
        """Verify (`size` 0 and `expected` "" are unchecked; the ingest's own total/expected are checked
        too) and move the blob into place; returns its digest. On a failed check the ingest is left as it
        is and the writer stays open: `abort()` it or write on. An existing blob makes this a no-op."""
        fd = self._live_fd()
        want = expected or self._expected
        if want:
            parse_digest(want)
        if size < 0:
            raise InvalidParameter(f"invalid blob size {size}")
        for limit in (size, self._total):
            if limit and self._offset != limit:
                raise InvalidParameter(f"blob has {self._offset} bytes, expected {limit}")
        digest = self.digest()
        if want and want != digest:
            raise InvalidParameter(f"digest mismatch: expected {want}, got {digest}")
        os.fsync(fd)
        final = self._store.path(digest)
        with _DIRS:
            if not os.path.exists(final):
                data = os.path.join(self._dir, "data")
                os.chmod(data, 0o644)
                os.rename(data, final)
                _fsync_dir(self._store.blobs_dir)
            self._release()
            shutil.rmtree(self._dir, ignore_errors=True)
        return digest

    def abort(self) -> None:
        """Delete the ingest and release the ref."""
        with _DIRS:
            self._release()
            shutil.rmtree(self._dir, ignore_errors=True)

    def close(self) -> None:
        """Release the ref and keep what was written for a later writer to resume."""
        self._release()

    def _release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # drops the flock
            self._fd = None

    def __enter__(self) -> ContentWriter:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class ContentStore:
    """Blobs by digest and their ingests; implements `gorae.store.types.Store`."""

    def __init__(self, root: str, *, max_ingest_age: float = INGEST_MAX_AGE) -> None:
        self.root = os.path.abspath(root)
        self.blobs_dir = os.path.join(self.root, "blobs", "sha256")
        self._ingest = os.path.join(self.root, "ingest")
        os.makedirs(self.blobs_dir, mode=0o700, exist_ok=True)
        os.makedirs(self._ingest, mode=0o700, exist_ok=True)
        self._clean_ingests(max_ingest_age)

    def _clean_ingests(self, max_age: float) -> None:
        """Delete ingests nobody touched for `max_age` seconds and nobody holds, and loose temp files
        (older gorae versions wrote `in-*` files that nothing can resume)."""
        cutoff = time.time() - max_age
        for name in os.listdir(self._ingest):
            path = os.path.join(self._ingest, name)
            if not os.path.isdir(path):
                with contextlib.suppress(OSError):
                    os.unlink(path)
                continue
            try:
                updated = os.stat(os.path.join(path, "data")).st_mtime
            except OSError:
                updated = 0.0
            if updated >= cutoff:
                continue
            if not os.path.exists(os.path.join(path, "meta.json")):  # never finished being created
                with _DIRS:
                    shutil.rmtree(path, ignore_errors=True)
                continue
            with contextlib.suppress(Conflict, NotFound, InvalidParameter, OSError):
                self._claim_dir(path, None).abort()

    # ---- blobs ---------------------------------------------------------------------------------

    def path(self, digest: str) -> str:
        return os.path.join(self.blobs_dir, parse_digest(digest))

    def exists(self, digest: str) -> bool:
        return os.path.exists(self.path(digest))

    def size(self, digest: str) -> int:
        try:
            return os.stat(self.path(digest)).st_size
        except FileNotFoundError:
            raise NotFound(f"content {digest}: not found") from None

    def info(self, digest: str) -> Info:
        try:
            st = os.stat(self.path(digest))
        except FileNotFoundError:
            raise NotFound(f"content {digest}: not found") from None
        return Info(digest, st.st_size, st.st_mtime)

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"content {digest}: not found") from None

    def read_bytes(self, digest: str) -> bytes:
        with self.open(digest) as f:
            return f.read()

    def delete(self, digest: str) -> None:
        try:
            os.unlink(self.path(digest))
        except FileNotFoundError:
            raise NotFound(f"content {digest}: not found") from None

    def list(self) -> list[str]:
        return ["sha256:" + n for n in os.listdir(self.blobs_dir) if len(n) == 64]

    # ---- ingests -------------------------------------------------------------------------------

    def _ref_path(self, ref: str) -> str:
        if not ref:
            raise InvalidParameter("ingest ref must not be empty")
        return os.path.join(self._ingest, _ref_dir_name(ref))

    def _claim_dir(self, path: str, new_meta: dict[str, Any] | None) -> ContentWriter:
        """Lock the ingest at `path` (creating it with `new_meta` when it does not exist and `new_meta`
        is given) and return its writer; Conflict when another writer holds it."""
        with _DIRS:
            data = os.path.join(path, "data")
            meta_path = os.path.join(path, "meta.json")
            if not os.path.exists(meta_path):
                if new_meta is None:
                    raise NotFound(f"ingest {os.path.basename(path)}: not found")
                os.makedirs(path, mode=0o700, exist_ok=True)
                tmp = meta_path + ".tmp"
                with open(tmp, "w", encoding="utf-8") as f:
                    json.dump(new_meta, f)
                os.replace(tmp, meta_path)
            fd = os.open(data, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                with open(meta_path, encoding="utf-8") as f:
                    ref = json.load(f).get("ref", "")
                raise Conflict(f"ref {ref} locked: unavailable") from None
            try:
                with open(meta_path, encoding="utf-8") as f:
                    meta = json.load(f)
            except (OSError, ValueError):
                os.close(fd)
                raise
            return ContentWriter(self, str(meta.get("ref") or ""), path, fd, meta)

    def writer(self, ref: str, total: int = 0, expected: str = "") -> ContentWriter:
        """The writer of ingest `ref`, resuming it when it exists. `total` (bytes, 0 = unknown) and
        `expected` (digest) are recorded with a new ingest and must agree with an existing one's."""
        if total < 0:
            raise InvalidParameter(f"invalid blob size {total}")
        if expected:
            parse_digest(expected)
        meta = {"ref": ref, "total": total, "expected": expected, "started_at": time.time()}
        w = self._claim_dir(self._ref_path(ref), meta)
        st = w.status()
        if (total and st.total and total != st.total) or (
            expected and st.expected and expected != st.expected
        ):
            w.close()
            raise InvalidParameter(f"ingest {ref}: total or expected digest differs from the ingest's")
        return w

    def status(self, ref: str) -> Status:
        """Where ingest `ref` stands (without holding it)."""
        path = self._ref_path(ref)
        try:
            with open(os.path.join(path, "meta.json"), encoding="utf-8") as f:
                meta = json.load(f)
            st = os.stat(os.path.join(path, "data"))
        except FileNotFoundError:
            raise NotFound(f"ingest {ref}: not found") from None
        return Status(
            ref,
            st.st_size,
            int(meta.get("total") or 0),
            str(meta.get("expected") or ""),
            float(meta.get("started_at") or 0.0),
            st.st_mtime,
        )

    def list_statuses(self) -> builtins.list[Status]:
        out: list[Status] = []
        for name in sorted(os.listdir(self._ingest)):
            try:
                with open(os.path.join(self._ingest, name, "meta.json"), encoding="utf-8") as f:
                    ref = str(json.load(f).get("ref") or "")
                out.append(self.status(ref))
            except (OSError, ValueError, NotFound):
                continue
        return out

    def abort(self, ref: str) -> None:
        """Delete ingest `ref`; NotFound when there is none, Conflict while a writer holds it."""
        self._claim_dir(self._ref_path(ref), None).abort()

    # ---- one-shot ------------------------------------------------------------------------------

    def put_bytes(self, data: bytes) -> str:
        digest, _ = self.ingest(io.BytesIO(data))
        return digest

    def ingest(
        self, stream: BinaryIO, expected: str | None = None, size: int | None = None
    ) -> tuple[str, int]:
        """Store the whole stream; returns (digest, size). `expected`/`size` are verified when given.
        A one-shot ingest has a private ref and is deleted when it fails."""
        if expected is not None:
            parse_digest(expected)
        if size is not None and size < 0:
            raise InvalidParameter(f"invalid blob size {size}")
        w = self.writer(f"one-shot-{uuid.uuid4().hex}")
        try:
            total = 0
            while True:
                chunk = stream.read(CHUNK)
                if not chunk:
                    break
                total += len(chunk)
                if size is not None and total > size:
                    raise InvalidParameter(f"blob larger than the expected {size} bytes")
                w.write(chunk)
            if size is not None and total != size:
                raise InvalidParameter(f"blob has {total} bytes, expected {size}")
            return w.commit(0, expected or ""), total
        except BaseException:
            w.abort()
            raise
