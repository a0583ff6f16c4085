"""The build cache: which image a step produced from which parent and recorded config (the classic
builder's "children of the parent with the same config" probe, kept as an index in the metadata store so it
survives restarts). Entries whose image is gone are dropped when probed or pruned."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from gorae.builder.history import cache_key_of
from gorae.errors import NotFound
from gorae.store.metadata import MetadataStore

KIND = "buildcache"


def _key(parent: str, cc: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(cache_key_of(parent, cc), sort_keys=True).encode()).hexdigest()


class BuildCache:
    def __init__(self, meta: MetadataStore, exists: Any) -> None:
        self._meta = meta
        self._exists = exists  # image id -> bool

    def probe(self, parent: str, cc: dict[str, Any], only: set[str] | None = None) -> str | None:
        """The image a step with this parent and recorded config made before (within `only` when given)."""
        key = _key(parent, cc)
        try:
            doc = self._meta.get(KIND, key)
        except NotFound:
            return None
        iid = str(doc.get("Image") or "")
        if not iid or not self._exists(iid):
            self._meta.delete(KIND, key)
            return None
        if only is not None and iid not in only:
            return None
        return iid

    def record(self, parent: str, cc: dict[str, Any], iid: str) -> None:
        self._meta.put(KIND, _key(parent, cc), {"Image": iid, "Parent": parent, "Created": time.time()})

    def entries(self) -> list[tuple[str, dict[str, Any]]]:
        return self._meta.items(KIND)

    def forget(self, key: str) -> None:
        self._meta.delete(KIND, key)
