"""ImageStore: the image records, references and layers on one data root — the only writer of the kinds
`image`, `ref` and `layer` (see gorae.store.schema).

An image is a config blob in the content store (its digest is the image ID) plus an `image` record
{Id, Parent, LastTagTime, LayerSizes}; a reference is a `ref` record keyed by docker's familiar form
("busybox:latest") pointing at an image ID; layers are `LayerStore` snapshots named by chain ID (the
`layer` records). Everything that makes images — import, commit, `docker load`, and the registry client and
builder to come — goes through `register` and `layers`; everything that reads them through `get`,
`resolve`, `refs_of`. It knows nothing of containers, events or Docker's answer shapes (image/service.py).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from gorae.errors import InvalidParameter, NotFound
from gorae.image import reference as refs
from gorae.image.layers import LayerStore
from gorae.image.models import Image, image_id, parse_config
from gorae.snapshot.types import Snapshotter
from gorae.store.content import ContentStore
from gorae.store.digest import is_digest
from gorae.store.metadata import MetadataStore
from gorae.store.schema import IMAGE, REF
from gorae.timefmt import ZERO_TIME, now_rfc3339nano


class ImageStore:
    def __init__(self, meta: MetadataStore, content: ContentStore, snap: Snapshotter, tmp: str) -> None:
        self._meta = meta
        self._content = content
        self.tmp = tmp  # scratch space on the data root's filesystem (spooled archives, commit diffs)
        os.makedirs(tmp, mode=0o700, exist_ok=True)
        self.layers = LayerStore(meta, content, snap)
        self._configs: dict[str, dict[str, Any]] = {}

    # ---- images --------------------------------------------------------------------------------

    def _config(self, iid: str) -> dict[str, Any]:
        cfg = self._configs.get(iid)
        if cfg is None:
            # stored by an older gorae perhaps: ill-typed fields are dropped, never break a listing
            cfg = parse_config(self._content.read_bytes(iid), repair=True)
            self._configs[iid] = cfg
        return cfg

    def get(self, iid: str) -> Image:
        """The image with this full ID; NotFound ("No such image: <id>") otherwise."""
        doc = self._meta.get(IMAGE, iid)
        return Image(
            id=iid,
            config=self._config(iid),
            parent=doc.get("Parent") or "",
            last_tag_time=doc.get("LastTagTime") or ZERO_TIME,
            layer_sizes=[int(x) for x in doc.get("LayerSizes") or []],
        )

    def exists(self, iid: str) -> bool:
        return self._meta.exists(IMAGE, iid)

    def all(self) -> list[Image]:
        return [self.get(d["Id"]) for d in self._meta.list(IMAGE)]

    def children(self, iid: str) -> list[str]:
        return [d["Id"] for d in self._meta.list(IMAGE) if d.get("Parent") == iid]

    def config_bytes(self, iid: str) -> bytes:
        """The exact config bytes (their digest is the ID)."""
        return self._content.read_bytes(iid)

    def register(
        self,
        config: bytes,
        layer_sizes: list[int],
        *,
        parent: str = "",
        tags: list[refs.Reference] | None = None,
    ) -> str:
        """Record an image whose layers are registered (`layers.register*`) and tag it; returns its ID.
        An existing record is kept (its parent and sizes do not change)."""
        cfg = parse_config(config)
        iid = image_id(config)
        self._content.put_bytes(config)
        self._configs[iid] = cfg
        with self._meta.transaction():
            if not self._meta.exists(IMAGE, iid):
                img = Image(id=iid, config=cfg, parent=parent, layer_sizes=layer_sizes)
                self._meta.put(IMAGE, iid, img.doc())
            for ref in tags or []:
                self._point(ref, iid)
        return iid

    def delete(self, iid: str) -> list[str]:
        """Remove the image record, its config and every reference to it; returns the refs removed.
        Its layers stay: `release_layers` after deciding which are unused."""
        with self._meta.transaction():
            removed = self.refs_of(iid)
            for r in removed:
                self._meta.delete(REF, r)
            self._meta.delete(IMAGE, iid)
        self._configs.pop(iid, None)
        with contextlib.suppress(NotFound):
            self._content.delete(iid)
        return removed

    def release_layers(self, img: Image) -> list[str]:
        """Remove the layers of a deleted image that no remaining image uses; returns their chain IDs."""
        used = {c for other in self.all() for c in other.chain_ids}
        return self.layers.release(list(reversed(img.chain_ids)), used)

    # ---- references ----------------------------------------------------------------------------

    def refs_of(self, iid: str) -> list[str]:
        return [k for k, d in self._meta.items(REF) if d.get("image") == iid]

    def refs_by_image(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for k, d in self._meta.items(REF):
            out.setdefault(d.get("image", ""), []).append(k)
        return out

    def all_refs(self) -> Iterator[tuple[str, str]]:
        """(familiar reference, image ID) pairs, oldest first."""
        for k, d in self._meta.items(REF):
            yield k, str(d.get("image") or "")

    def ref_target(self, key: str) -> str | None:
        """The image a familiar reference ("busybox:latest") points at, or None."""
        try:
            return str(self._meta.get(REF, key)["image"])
        except NotFound:
            return None

    def _point(self, ref: refs.Reference, iid: str) -> str | None:
        key = ref.familiar()
        old = self.ref_target(key)
        self._meta.put(REF, key, {"image": iid, "name": str(ref)})
        doc = self._meta.get(IMAGE, iid)
        doc["LastTagTime"] = now_rfc3339nano()
        self._meta.put(IMAGE, iid, doc)
        return old if old != iid else None

    def set_ref(self, ref: refs.Reference, iid: str) -> str | None:
        """Point `ref` at image `iid` (stamping its LastTagTime); returns the image it pointed at before
        (None when it is new or the same)."""
        with self._meta.transaction():
            return self._point(ref, iid)

    def delete_refs(self, keys: list[str]) -> None:
        """Remove familiar references, all or none; NotFound when one does not exist."""
        with self._meta.transaction():
            for key in keys:
                self._meta.delete(REF, key)

    # ---- resolve -------------------------------------------------------------------------------

    def resolve(self, ref_or_id: str) -> Image:
        """An image by full or short ID, "sha256:" digest, or reference (":latest" by default), as docker
        looks one up; NotFound ("No such image: busybox:latest") or InvalidParameter otherwise."""
        s = ref_or_id
        if not isinstance(s, str) or not s:
            raise InvalidParameter("invalid reference format")
        if is_digest(s) or refs.ID_RE.fullmatch(s):
            iid = s if s.startswith("sha256:") else "sha256:" + s
            if self.exists(iid):
                return self.get(iid)
            raise NotFound(f"No such image: {s}")
        try:
            ref: refs.Reference | None = refs.parse(s)
        except InvalidParameter:
            if not refs.is_short_id(s):
                raise
            ref = None
        if ref is not None:
            target = self.ref_target(ref.with_default_tag().familiar())
            if target is not None:
                with contextlib.suppress(NotFound):
                    return self.get(target)
        if refs.is_short_id(s):
            prefix = s if s.startswith("sha256:") else "sha256:" + s
            with contextlib.suppress(NotFound, InvalidParameter):
                return self.get(self._meta.find_id(IMAGE, prefix))
        shown = ref.with_default_tag().familiar() if ref is not None else s
        raise NotFound(f"No such image: {shown}")
