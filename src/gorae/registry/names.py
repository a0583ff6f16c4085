"""Validation of what a client names in a registry URL: repository names, tags, digests, upload ids.

Owns distribution's reference grammar for repository paths (lowercase components `[a-z0-9]+` joined by `.`,
`_`, `__` or dashes, separated by `/`, at most 255 characters), the tag grammar, and the digests this
registry verifies (sha256, sha512). Each parser returns the value or raises the spec's RegistryError; none
returns None for "bad". Nothing that passes can leave the storage layout (no `..`, no empty component).
"""

from __future__ import annotations

import hashlib
import re

from gorae.registry.errors import RegistryError

MAX_NAME = 255
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_NAME = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_DIGEST = re.compile(r"([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)")
_UPLOAD_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
_HEX_LENGTH = {"sha256": 64, "sha512": 128}


def repository(name: str) -> str:
    if len(name) > MAX_NAME or _NAME.fullmatch(name) is None:
        raise RegistryError("NAME_INVALID", detail={"name": name[:300]})
    return name


def tag(value: str) -> str:
    if _TAG.fullmatch(value) is None:
        raise RegistryError("TAG_INVALID", "invalid tag", detail={"tag": value[:300]})
    return value


def is_digest(value: str) -> bool:
    return ":" in value


def digest(value: str) -> str:
    """A digest this registry can verify: `sha256:<64 hex>` or `sha512:<128 hex>` (lowercase)."""
    m = _DIGEST.fullmatch(value)
    if m is None:
        raise RegistryError("DIGEST_INVALID", "invalid digest", detail={"digest": value[:300]})
    alg, hexpart = m.groups()
    want = _HEX_LENGTH.get(alg)
    if want is None:
        raise RegistryError(
            "DIGEST_INVALID", f"unsupported digest algorithm {alg}", detail={"digest": value[:300]}
        )
    if len(hexpart) != want or re.fullmatch(r"[a-f0-9]+", hexpart) is None:
        raise RegistryError("DIGEST_INVALID", "invalid digest", detail={"digest": value[:300]})
    return value


def upload_id(value: str) -> str:
    if _UPLOAD_ID.fullmatch(value) is None:
        raise RegistryError("BLOB_UPLOAD_UNKNOWN", detail={"uuid": value[:100]})
    return value


def hasher(digest_value: str) -> hashlib._Hash:
    return hashlib.new(digest_value.partition(":")[0])


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"
