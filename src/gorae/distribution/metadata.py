"""Where layers came from and went to: dockerd's "v2 metadata", the only writer of the `v2meta` kind.

For a layer's diff_id: the compressed blob digests it is known by and the repository (full name,
"localhost:5000/app") each was pulled from or pushed to. Push asks it to skip uploads ("Layer already
exists"), to mount across repositories of one registry ("Mounted from x") and to avoid compressing a
layer again. Entries are hints: push checks each with the registry before relying on it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from gorae.errors import NotFound
from gorae.store.metadata import MetadataStore
from gorae.store.schema import V2META

MAX_SOURCES = 16


@dataclass(frozen=True)
class Source:
    digest: str
    repository: str  # full name: "docker.io/library/busybox", "localhost:5000/app"

    @property
    def registry(self) -> str:
        return self.repository.split("/", 1)[0]

    @property
    def path(self) -> str:
        return self.repository.split("/", 1)[1] if "/" in self.repository else self.repository


class LayerSources:
    def __init__(self, meta: MetadataStore) -> None:
        self._meta = meta
        self._lock = threading.Lock()

    def sources(self, diff_id: str) -> list[Source]:
        try:
            doc = self._meta.get(V2META, diff_id)
        except NotFound:
            return []
        out: list[Source] = []
        for s in doc.get("Sources") or []:
            if isinstance(s, dict) and isinstance(s.get("Digest"), str) and isinstance(
                s.get("SourceRepository"), str
            ):
                out.append(Source(s["Digest"], s["SourceRepository"]))
        return out

    def add(self, diff_id: str, digest: str, repository: str) -> None:
        """Remember (newest first) that `diff_id` is blob `digest` in `repository`."""
        with self._lock:
            cur = [s for s in self.sources(diff_id) if (s.digest, s.repository) != (digest, repository)]
            cur.insert(0, Source(digest, repository))
            self._meta.put(
                V2META,
                diff_id,
                {
                    "DiffID": diff_id,
                    "Sources": [
                        {"Digest": s.digest, "SourceRepository": s.repository} for s in cur[:MAX_SOURCES]
                    ],
                },
            )

    def remove(self, diff_id: str, digest: str) -> None:
        """Forget a digest (the registry no longer has it or it proved wrong)."""
        with self._lock:
            cur = self.sources(diff_id)
            keep = [s for s in cur if s.digest != digest]
            if len(keep) == len(cur):
                return
            self._meta.put(
                V2META,
                diff_id,
                {"DiffID": diff_id, "Sources": [{"Digest": s.digest, "SourceRepository": s.repository} for s in keep]},
            )
