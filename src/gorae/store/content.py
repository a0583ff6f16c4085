"""The content store: blobs addressed by sha256 digest under `<root>/blobs/sha256/<hex>`.

A blob is written to a temp file in `<root>/ingest/` (same filesystem), hashed while streaming, fsynced,
then renamed into place and the directory fsynced, so a blob either exists whole or not at all.
A path is only ever built from a digest that `parse_digest` accepted.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from typing import BinaryIO

from gorae.errors import InvalidParameter, NotFound
from gorae.store.digest import parse_digest

CHUNK = 1 << 20


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ContentStore:
    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self._blobs = os.path.join(self.root, "blobs", "sha256")
        self._ingest = os.path.join(self.root, "ingest")
        os.makedirs(self._blobs, mode=0o700, exist_ok=True)
        os.makedirs(self._ingest, mode=0o700, exist_ok=True)
        self._clean_ingest()

    def _clean_ingest(self) -> None:
        """Temp files left by a crash are garbage: nothing refers to them."""
        for name in os.listdir(self._ingest):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(self._ingest, name))

    def path(self, digest: str) -> str:
        return os.path.join(self._blobs, parse_digest(digest))

    def exists(self, digest: str) -> bool:
        return os.path.exists(self.path(digest))

    def size(self, digest: str) -> int:
        try:
            return os.stat(self.path(digest)).st_size
        except FileNotFoundError:
            raise NotFound(f"content {digest}: not found") from None

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

    def put_bytes(self, data: bytes) -> str:
        import io

        digest, _ = self.ingest(io.BytesIO(data))
        return digest

    def ingest(
        self, stream: BinaryIO, expected: str | None = None, size: int | None = None
    ) -> tuple[str, int]:
        """Store the whole stream; returns (digest, size). `expected`/`size` are verified when given."""
        if expected is not None:
            parse_digest(expected)
        if size is not None and size < 0:
            raise InvalidParameter(f"invalid blob size {size}")
        h = hashlib.sha256()
        total = 0
        fd, tmp = tempfile.mkstemp(dir=self._ingest, prefix="in-")
        try:
            with os.fdopen(fd, "wb") as f:
                while True:
                    chunk = stream.read(CHUNK)
                    if not chunk:
                        break
                    total += len(chunk)
                    if size is not None and total > size:
                        raise InvalidParameter(f"blob larger than the expected {size} bytes")
                    h.update(chunk)
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            if size is not None and total != size:
                raise InvalidParameter(f"blob has {total} bytes, expected {size}")
            digest = "sha256:" + h.hexdigest()
            if expected is not None and expected != digest:
                raise InvalidParameter(f"digest mismatch: expected {expected}, got {digest}")
            final = self.path(digest)
            if os.path.exists(final):
                os.unlink(tmp)
            else:
                os.chmod(tmp, 0o644)
                os.rename(tmp, final)
                _fsync_dir(self._blobs)
            return digest, total
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def list(self) -> list[str]:
        return ["sha256:" + n for n in os.listdir(self._blobs) if len(n) == 64]
