"""Content digests: the one place a digest string is validated before it is used (as a path, a key, a name)."""

from __future__ import annotations

import hashlib
import re

from gorae.errors import InvalidParameter

_SHA256 = re.compile(r"sha256:([0-9a-f]{64})")
_ANY = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")


def parse_digest(digest: str) -> str:
    """The hex part of a well-formed "sha256:<64 lowercase hex>" digest; InvalidParameter otherwise."""
    if not isinstance(digest, str):
        raise InvalidParameter(f"invalid digest: {digest!r}")
    m = _SHA256.fullmatch(digest)
    if m:
        return m.group(1)
    if _ANY.fullmatch(digest) and not digest.startswith("sha256:"):
        raise InvalidParameter(f"unsupported digest algorithm: {digest.split(':', 1)[0]}")
    raise InvalidParameter(f"invalid checksum digest format: {digest[:100]!r}")


def is_digest(value: str) -> bool:
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
