"""ImageService: the local image store — resolve, list, inspect, history, tag, remove, prune, import, commit.

Images are kind "image" docs (`Image.doc()`) whose config bytes live in the content store under the image
ID; references are kind "ref" docs keyed by docker's display form ("busybox:latest") with
{"image": id, "name": full name}. Layers are `LayerStore` snapshots named by chain ID. Answers have the
exact JSON shapes of Docker's image routes. Save/load are in `save.py`/`load.py`.
"""

from __future__ import annotations

import contextlib
import os
import platform
import tempfile
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from gorae.errors import Conflict, InvalidParameter, NotFound
from gorae.image import reference as refs
from gorae.image.changes import apply_changes
from gorae.image.layers import EMPTY_TAR_DIFF_ID, LayerStore, tar_is_empty
from gorae.image.models import (
    ZERO_TIME,
    Image,
    docker_config,
    dump_config,
    image_id,
    now_rfc3339nano,
    parse_config,
    unix_time,
)
from gorae.snapshot.types import Snapshotter
from gorae.store.content import ContentStore
from gorae.store.digest import is_digest
from gorae.store.metadata import MetadataStore

IMAGE = "image"
REF = "ref"

InUse = Callable[[str], Any]  # image id -> bool, or the ids of the containers using it


def host_arch() -> str:
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(m, m)


def _users(in_use: InUse | None, image: str) -> list[str]:
    """Container ids using `image` per the caller's callback (a bool answer gives [""])."""
    if in_use is None:
        return []
    res = in_use(image)
    if not res:
        return []
    if isinstance(res, str):
        return [res]
    if isinstance(res, list | tuple | set):
        return [str(x) for x in res] or [""]
    return [""]


def _short(s: str) -> str:
    return s.split(":", 1)[-1][:12]


class ImageService:
    def __init__(self, meta: MetadataStore, content: ContentStore, snap: Snapshotter, tmp: str) -> None:
        self.meta = meta
        self.content = content
        self.snap = snap
        self.tmp = tmp
        os.makedirs(tmp, mode=0o700, exist_ok=True)
        self.layers = LayerStore(meta, content, snap)
        self._configs: dict[str, dict[str, Any]] = {}

    # ---- records -------------------------------------------------------------------------------

    def _config(self, id: str) -> dict[str, Any]:
        cfg = self._configs.get(id)
        if cfg is None:
            cfg = parse_config(self.content.read_bytes(id))
            self._configs[id] = cfg
        return cfg

    def _image(self, id: str) -> Image:
        doc = self.meta.get(IMAGE, id)
        return Image(
            id=id,
            config=self._config(id),
            parent=doc.get("Parent") or "",
            last_tag_time=doc.get("LastTagTime") or ZERO_TIME,
            layer_sizes=[int(x) for x in doc.get("LayerSizes") or []],
        )

    def get(self, id: str) -> Image:
        try:
            return self._image(id)
        except NotFound:
            raise NotFound(f"No such image: {id}") from None

    def all_images(self) -> list[Image]:
        return [self._image(d["Id"]) for d in self.meta.list(IMAGE)]

    def config_bytes(self, id: str) -> bytes:
        return self.content.read_bytes(id)

    def refs_of(self, id: str) -> list[str]:
        return [k for k, d in self.meta.items(REF) if d.get("image") == id]

    def _refs_by_image(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for k, d in self.meta.items(REF):
            out.setdefault(d.get("image", ""), []).append(k)
        return out

    def _children(self, id: str) -> list[str]:
        return [d["Id"] for d in self.meta.list(IMAGE) if d.get("Parent") == id]

    def store_image(
        self,
        config: bytes,
        layer_sizes: list[int],
        *,
        parent: str = "",
        tags: list[refs.Reference] | None = None,
    ) -> str:
        """Record an image whose layers are registered; returns its ID. Existing records are kept."""
        cfg = parse_config(config)
        iid = image_id(config)
        self.content.put_bytes(config)
        self._configs[iid] = cfg
        with self.meta.transaction():
            if not self.meta.exists(IMAGE, iid):
                img = Image(id=iid, config=cfg, parent=parent, layer_sizes=layer_sizes)
                self.meta.put(IMAGE, iid, img.doc())
            for ref in tags or []:
                self._set_ref(ref, iid)
        return iid

    def _set_ref(self, ref: refs.Reference, iid: str) -> str | None:
        """Point ref at iid; returns the image it pointed at before (None if new or same)."""
        key = ref.familiar()
        old = None
        with contextlib.suppress(NotFound):
            old = self.meta.get(REF, key).get("image")
        self.meta.put(REF, key, {"image": iid, "name": str(ref)})
        doc = self.meta.get(IMAGE, iid)
        doc["LastTagTime"] = now_rfc3339nano()
        self.meta.put(IMAGE, iid, doc)
        return old if old != iid else None

    # ---- resolve -------------------------------------------------------------------------------

    def resolve(self, ref_or_id: str) -> Image:
        s = ref_or_id
        if not isinstance(s, str) or not s:
            raise InvalidParameter("invalid reference format")
        if is_digest(s) or refs.ID_RE.fullmatch(s):
            iid = s if s.startswith("sha256:") else "sha256:" + s
            if self.meta.exists(IMAGE, iid):
                return self._image(iid)
            raise NotFound(f"No such image: {s}")
        try:
            ref: refs.Reference | None = refs.parse(s)
        except InvalidParameter:
            if not refs.is_short_id(s):
                raise
            ref = None
        if ref is not None:
            key = ref.with_default_tag().familiar()
            with contextlib.suppress(NotFound):
                return self._image(self.meta.get(REF, key)["image"])
        if refs.is_short_id(s):
            prefix = s if s.startswith("sha256:") else "sha256:" + s
            with contextlib.suppress(NotFound, InvalidParameter):
                return self._image(self.meta.find_id(IMAGE, prefix))
        shown = ref.with_default_tag().familiar() if ref is not None else s
        raise NotFound(f"No such image: {shown}")

    def top_layer_chain_id(self, image: Image | str) -> str | None:
        img = image if isinstance(image, Image) else self.resolve(image)
        chains = img.chain_ids
        return chains[-1] if chains else None

    # ---- list / inspect / history ------------------------------------------------------------

    def _summary(self, img: Image, tags: list[str]) -> dict[str, Any]:
        cfg = img.config
        return {
            "Containers": -1,
            "Created": unix_time(cfg.get("created")),
            "Id": img.id,
            "Labels": (cfg.get("config") or {}).get("Labels"),
            "ParentId": img.parent,
            "RepoDigests": sorted(t for t in tags if "@" in t),
            "RepoTags": sorted(t for t in tags if "@" not in t),
            "SharedSize": -1,
            "Size": img.size,
            "VirtualSize": img.size,
        }

    def list(self, all: bool = False, filters: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
        filters = dict(filters or {})
        for key in filters:
            if key not in ("dangling", "label", "before", "since", "reference", "until"):
                raise InvalidParameter(f"invalid filter '{key}'")
        by_image = self._refs_by_image()
        images = self.all_images()
        parents = {i.parent for i in images if i.parent}
        before = [unix_time(self.resolve(r).config.get("created")) for r in filters.get("before", [])]
        since = [unix_time(self.resolve(r).config.get("created")) for r in filters.get("since", [])]
        out: list[dict[str, Any]] = []
        for img in images:
            tags = by_image.get(img.id, [])
            dangling = not tags
            if not all and dangling and img.id in parents and "dangling" not in filters:
                continue
            if filters.get("dangling"):
                want = filters["dangling"][-1].lower() in ("true", "1")
                if want != dangling:
                    continue
            created = unix_time(img.config.get("created"))
            if before and not all_(created < b for b in before):
                continue
            if since and not all_(created > s for s in since):
                continue
            if "until" in filters and not all_(created <= _until(u) for u in filters["until"]):
                continue
            labels = (img.config.get("config") or {}).get("Labels") or {}
            if not all_(label_match(labels, f) for f in filters.get("label", [])):
                continue
            if "reference" in filters:
                tags = [t for t in tags if any(ref_match(t, p) for p in filters["reference"])]
                if not tags:
                    continue
            out.append(self._summary(img, tags))
        out.sort(key=lambda e: e["Created"], reverse=True)
        return out

    def inspect(self, ref_or_id: str) -> dict[str, Any]:
        img = self.resolve(ref_or_id)
        cfg = img.config
        tags = self.refs_of(img.id)
        out: dict[str, Any] = {
            "Id": img.id,
            "RepoTags": sorted(t for t in tags if "@" not in t),
            "RepoDigests": sorted(t for t in tags if "@" in t),
            "Parent": img.parent,
            "Comment": cfg.get("comment") or "",
            "Created": cfg.get("created") or ZERO_TIME,
            "Container": cfg.get("container") or "",
            "ContainerConfig": docker_config(cfg.get("container_config")),
            "DockerVersion": cfg.get("docker_version") or "",
            "Author": cfg.get("author") or "",
            "Config": docker_config(cfg.get("config")),
            "Architecture": cfg.get("architecture") or "",
        }
        if cfg.get("variant"):
            out["Variant"] = cfg["variant"]
        out.update(
            {
                "Os": cfg.get("os") or "",
                "Size": img.size,
                "VirtualSize": img.size,
                "GraphDriver": {"Data": self._graph_data(img), "Name": "overlay2"},
                "RootFS": {"Type": "layers", "Layers": img.diff_ids},
                "Metadata": {"LastTagTime": img.last_tag_time},
            }
        )
        return out

    def _graph_data(self, img: Image) -> dict[str, str] | None:
        top = self.top_layer_chain_id(img)
        if top is None:
            return None
        try:
            upper = self.snap.upper_dir(top)
            lowers = self.snap.lower_dirs(top)
        except NotFound:
            return None
        base = os.path.dirname(upper)
        data = {
            "MergedDir": os.path.join(base, "merged"),
            "UpperDir": upper,
            "WorkDir": os.path.join(base, "work"),
        }
        if lowers:
            data = {"LowerDir": ":".join(lowers), **data}
        return data

    def history(self, ref_or_id: str) -> list[dict[str, Any]]:
        img = self.resolve(ref_or_id)
        diff_ids = img.diff_ids
        sizes = img.layer_sizes
        items: list[dict[str, Any]] = []
        n = 0
        for h in img.config.get("history") or []:
            size = 0
            if not h.get("empty_layer"):
                if n < len(sizes):
                    size = sizes[n]
                n += 1
            items.insert(
                0,
                {
                    "Comment": h.get("comment") or "",
                    "Created": unix_time(h.get("created")),
                    "CreatedBy": h.get("created_by") or "",
                    "Id": "<missing>",
                    "Size": size,
                    "Tags": None,
                },
            )
        if not items:  # no history recorded: one line per layer
            for i, _ in enumerate(diff_ids):
                items.insert(
                    0,
                    {
                        "Comment": "",
                        "Created": unix_time(img.config.get("created")),
                        "CreatedBy": "",
                        "Id": "<missing>",
                        "Size": sizes[i] if i < len(sizes) else 0,
                        "Tags": None,
                    },
                )
        cur: Image | None = img
        for item in items:
            if cur is None:
                break
            item["Id"] = cur.id
            tags = [t for t in self.refs_of(cur.id) if "@" not in t]
            item["Tags"] = sorted(tags) or None
            cur = self._image(cur.parent) if cur.parent and self.meta.exists(IMAGE, cur.parent) else None
        return items

    # ---- tag / remove / prune ------------------------------------------------------------------

    def tag(self, ref_or_id: str, repo: str, tag: str | None = None) -> None:
        img = self.resolve(ref_or_id)
        ref = refs.parse_repository(repo, tag)
        if ref.digest is not None:
            raise InvalidParameter("refusing to create a tag with a digest reference")
        with self.meta.transaction():
            self._set_ref(ref, img.id)

    def remove(
        self, ref_or_id: str, force: bool = False, noprune: bool = False, in_use: InUse | None = None
    ) -> list[dict[str, Any]]:
        img = self.resolve(ref_or_id)
        iid = img.id
        records: list[dict[str, Any]] = []
        repo_refs = self.refs_of(iid)
        by_id = _is_id_prefix(iid, ref_or_id)
        removed_ref = False
        if not by_id:
            key = refs.parse(ref_or_id).with_default_tag().familiar()
            if not force and _single_reference(repo_refs):
                users = _users(in_use, iid)
                if users:
                    raise Conflict(
                        f'conflict: unable to remove repository reference "{ref_or_id}" (must force) - '
                        f"container {_short(users[0])} is using its referenced image {_short(iid)}"
                    )
            with self.meta.transaction():
                self.meta.delete(REF, key)
            records.append({"Untagged": key})
            if self.refs_of(iid):
                return records
            removed_ref = True
        elif _single_reference(repo_refs):
            self._check_conflict(iid, force, in_use, ignore_refs=True)
            with self.meta.transaction():
                for r in repo_refs:
                    self.meta.delete(REF, r)
            records.extend({"Untagged": r} for r in repo_refs)
        self._delete_helper(iid, records, force, not noprune, removed_ref, in_use)
        return records

    def _check_conflict(
        self, iid: str, force: bool, in_use: InUse | None, *, ignore_refs: bool = False
    ) -> None:
        if self._children(iid):
            raise Conflict(
                f"conflict: unable to delete {_short(iid)} (cannot be forced) - image has dependent child images"
            )
        if force:
            return
        if not ignore_refs and self.refs_of(iid):
            raise Conflict(
                f"conflict: unable to delete {_short(iid)} (must be forced) - image is referenced in multiple repositories"
            )
        users = _users(in_use, iid)
        if users:
            raise Conflict(
                f"conflict: unable to delete {_short(iid)} (must be forced) - image is being used by stopped "
                f"container {_short(users[0])}"
            )

    def _delete_helper(
        self,
        iid: str,
        records: list[dict[str, Any]],
        force: bool,
        prune: bool,
        quiet: bool,
        in_use: InUse | None,
    ) -> None:
        try:
            self._check_conflict(iid, force, in_use)
        except Conflict:
            if quiet:
                return
            raise
        img = self._image(iid)
        with self.meta.transaction():
            for r in self.refs_of(iid):  # forced removal untags the rest
                self.meta.delete(REF, r)
                records.append({"Untagged": r})
            self.meta.delete(IMAGE, iid)
        self._configs.pop(iid, None)
        with contextlib.suppress(NotFound):
            self.content.delete(iid)
        records.append({"Deleted": iid})
        used = {c for other in self.all_images() for c in other.chain_ids}
        for chain in self.layers.release(list(reversed(img.chain_ids)), used):
            records.append({"Deleted": chain})
        if prune and img.parent and self.meta.exists(IMAGE, img.parent):
            self._delete_helper(img.parent, records, False, True, True, in_use)

    def prune(
        self,
        dangling_only: bool = True,
        filters: dict[str, list[str]] | None = None,
        in_use: InUse | None = None,
    ) -> dict[str, Any]:
        filters = dict(filters or {})
        for key in filters:
            if key not in ("until", "label", "label!"):
                raise InvalidParameter(f"invalid filter '{key}'")
        deleted: list[dict[str, Any]] = []
        reclaimed = 0
        by_image = self._refs_by_image()
        for img in sorted(self.all_images(), key=lambda i: unix_time(i.config.get("created")), reverse=True):
            if not self.meta.exists(IMAGE, img.id):
                continue
            if dangling_only and by_image.get(img.id):
                continue
            if _users(in_use, img.id) or self._children(img.id):
                continue
            created = unix_time(img.config.get("created"))
            if "until" in filters and not all_(created < _until(u) for u in filters["until"]):
                continue
            labels = (img.config.get("config") or {}).get("Labels") or {}
            if not all_(label_match(labels, f) for f in filters.get("label", [])):
                continue
            if any(label_match(labels, f) for f in filters.get("label!", [])):
                continue
            records: list[dict[str, Any]] = []
            try:
                for r in self.refs_of(img.id):
                    with self.meta.transaction():
                        self.meta.delete(REF, r)
                    records.append({"Untagged": r})
                self._delete_helper(img.id, records, False, True, False, in_use)
            except Conflict:
                continue
            finally:
                deleted.extend(records)
            reclaimed += img.size
        return {"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    # ---- import / commit -----------------------------------------------------------------------

    def import_tar(
        self,
        stream: BinaryIO,
        repo_tag: str | None = None,
        changes: list[str] | None = None,
        message: str = "",
        *,
        created: str | None = None,
    ) -> str:
        """POST /images/create?fromSrc=-: a rootfs tarball (maybe compressed) becomes a one-layer image."""
        ref = refs.parse_tagged(repo_tag) if repo_tag else None
        if ref is not None and ref.digest is not None:
            raise InvalidParameter("cannot import digest reference")
        config = apply_changes({}, list(changes or []))
        layer = self.layers.register(stream, None)
        when = created or now_rfc3339nano()
        msg = message or "Imported from -"
        cfg: dict[str, Any] = {
            "comment": msg,
            "created": when,
            "docker_version": "",
            "config": docker_config(config),
            "architecture": host_arch(),
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
            "history": [{"created": when, "comment": msg}],
        }
        return self.store_image(dump_config(cfg), [layer.size], tags=[ref] if ref else None)

    def commit(
        self,
        container: dict[str, Any],
        upper_dir: str,
        repo_tag: str | None = None,
        author: str = "",
        comment: str = "",
        changes: list[str] | None = None,
        pause: bool = True,
    ) -> str:
        """A new image from a container's writable layer on top of its image (pausing is the caller's)."""
        from gorae.archive import tar_overlay_diff

        ref = refs.parse_tagged(repo_tag) if repo_tag else None
        base = self.resolve(str(container.get("Image") or ""))
        ct_config = dict(container.get("Config") or {})
        new_config = apply_changes(ct_config, list(changes or []))
        new_config["Image"] = base.id if ct_config.get("Image") else new_config.get("Image", "")
        diff_ids = list(base.diff_ids)
        sizes = list(base.layer_sizes)
        fd, tmp = tempfile.mkstemp(dir=self.tmp, prefix="commit-")
        try:
            with os.fdopen(fd, "w+b") as f:
                tar_overlay_diff(upper_dir, f)
                f.seek(0)
                empty = tar_is_empty(f)
                f.seek(0)
                if not empty:
                    layer = self.layers.register(f, self.top_layer_chain_id(base))
                    empty = layer.diff_id == EMPTY_TAR_DIFF_ID
                    diff_ids.append(layer.diff_id)
                    sizes.append(layer.size)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        when = now_rfc3339nano()
        cmd = ct_config.get("Cmd") or []
        hist: dict[str, Any] = {"created": when}
        if author:
            hist["author"] = author
        hist["created_by"] = " ".join(cmd) if isinstance(cmd, list) else str(cmd)
        if comment:
            hist["comment"] = comment
        if empty:
            hist["empty_layer"] = True
        cfg: dict[str, Any] = {}
        if comment:
            cfg["comment"] = comment
        cfg["created"] = when
        cfg["container"] = str(container.get("Id") or "")
        cfg["container_config"] = docker_config(ct_config)
        cfg["docker_version"] = ""
        if author:
            cfg["author"] = author
        cfg["config"] = docker_config(new_config)
        cfg["architecture"] = base.config.get("architecture") or host_arch()
        if base.config.get("variant"):
            cfg["variant"] = base.config["variant"]
        cfg["os"] = base.config.get("os") or "linux"
        cfg["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
        cfg["history"] = list(base.config.get("history") or []) + [hist]
        return self.store_image(dump_config(cfg), sizes, parent=base.id, tags=[ref] if ref else None)

    # ---- save / load ---------------------------------------------------------------------------

    def load(self, stream: BinaryIO) -> Iterator[str]:
        from gorae.image.load import load_archive

        return load_archive(self, stream)

    def save(self, names: list[str], out: BinaryIO) -> None:
        from gorae.image.save import save_images

        save_images(self, names, out)


def all_(it: Any) -> bool:
    return all(it)


def _until(value: str) -> int:
    from gorae.image.models import parse_time

    try:
        return int(float(value))
    except ValueError:
        pass
    t = parse_time(value)
    if t is None:
        raise InvalidParameter(f"invalid filter 'until={value}'")
    return int(t.timestamp())


def label_match(labels: dict[str, str], f: str) -> bool:
    k, eq, v = f.partition("=")
    if k not in labels:
        return False
    return not eq or labels[k] == v


def _path_match(pattern: str, name: str) -> bool:
    """Go's path.Match: `*` and `?` never match "/"."""
    import re

    rx = "".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, name) is not None


def ref_match(tag: str, pattern: str) -> bool:
    """docker's reference filter: the pattern against "repo:tag", then against the repository name."""
    name = tag.split("@", 1)[0]
    colon = name.rfind(":")
    repo = name[:colon] if colon > name.rfind("/") else name
    return _path_match(pattern, name) or _path_match(pattern, repo)


def _is_id_prefix(iid: str, s: str) -> bool:
    hexpart = iid.split(":", 1)[1]
    t = s[7:] if s.startswith("sha256:") else s
    return bool(t) and hexpart.startswith(t) and refs.is_short_id(s)


def _single_reference(repo_refs: list[str]) -> bool:
    tags = [r for r in repo_refs if "@" not in r]
    digests = {r.split("@", 1)[0] for r in repo_refs if "@" in r}
    if len(repo_refs) <= 1:
        return len(repo_refs) == 1
    if len(tags) > 1:
        return False
    if not tags:
        return len(digests) == 1
    repo = tags[0].rsplit(":", 1)[0]
    return digests == {repo}
