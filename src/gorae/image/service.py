"""ImageService: the image use cases Docker's image routes need — list, inspect, history, tag, remove, prune,
import, commit, save, load — with their events and Docker's answer shapes.

Records, references and layers belong to `ImageStore` (store.py), which this service, `load.py`,
`save.py` and `importer.py` share; this module adds the policy (what may be untagged or deleted, which
images are dangling) and the events (`image` tag/untag/delete/prune/import/load/save, published through
the `Publisher` it is given). Which containers use an image is the caller's knowledge: an `ImageUsage`.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import re
from collections.abc import Callable, Collection, Iterator
from typing import Any, BinaryIO

from gorae.errors import Conflict, InvalidParameter, NotFound
from gorae.events import Publisher
from gorae.filters import Filters, label_matches
from gorae.image import importer
from gorae.image import reference as refs
from gorae.image.load import load_archive
from gorae.image.models import Image, docker_config, unix_time
from gorae.image.save import save_images
from gorae.image.store import ImageStore
from gorae.snapshot.types import Snapshotter
from gorae.store.content import ContentStore
from gorae.store.metadata import MetadataStore
from gorae.timefmt import ZERO_TIME, parse_timestamp

ImageUsage = Callable[[str], list[str]]
"""image ID -> the IDs of the containers using it."""


def _users(usage: ImageUsage | None, image: str) -> list[str]:
    if usage is None:
        return []
    res = usage(image)
    return [str(x) for x in res] if res else []


def _short(s: str) -> str:
    return s.split(":", 1)[-1][:12]


class ImageService:
    def __init__(
        self,
        meta: MetadataStore,
        content: ContentStore,
        snap: Snapshotter,
        tmp: str,
        *,
        publish: Publisher | None = None,
        usage: ImageUsage | None = None,
        running: ImageUsage | None = None,
    ) -> None:
        self.store = ImageStore(meta, content, snap, tmp)
        self.content = content
        self.snap = snap
        self.tmp = tmp
        self.layers = self.store.layers
        self._publish = publish
        self._usage = usage
        self._running = running  # the running subset of `usage`: a conflict even forcing cannot override

    def _event(self, action: str, actor: str, attributes: dict[str, str]) -> None:
        if self._publish is not None:
            self._publish("image", action, actor, attributes)

    # ---- records -------------------------------------------------------------------------------

    def get(self, id: str) -> Image:
        try:
            return self.store.get(id)
        except NotFound:
            raise NotFound(f"No such image: {id}") from None

    def all_images(self) -> list[Image]:
        return self.store.all()

    def config_bytes(self, id: str) -> bytes:
        return self.store.config_bytes(id)

    def refs_of(self, id: str) -> list[str]:
        return self.store.refs_of(id)

    def containers_using(self, image_id: str) -> list[str]:
        """IDs of the containers that use the image (per the `usage` this service was given)."""
        return _users(self._usage, image_id)

    # ---- resolve -------------------------------------------------------------------------------

    def resolve(self, ref_or_id: str) -> Image:
        return self.store.resolve(ref_or_id)

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
        filters = Filters(filters)
        filters.validate(("dangling", "label", "before", "since", "reference", "until"))
        dangling_only = _bool_filter(filters, "dangling")
        by_image = self.store.refs_by_image()
        images = self.store.all()
        parents = {i.parent for i in images if i.parent}
        before = [created_ns(self.resolve(r).config.get("created")) for r in filters.get("before", [])]
        since = [created_ns(self.resolve(r).config.get("created")) for r in filters.get("since", [])]
        untils = [_until(u) for u in filters.get("until", [])]
        out: list[dict[str, Any]] = []
        for img in images:
            tags = by_image.get(img.id, [])
            dangling = not tags
            if dangling and img.id in parents and (not all or dangling_only):
                continue  # an intermediate image: shown by -a, never as dangling (dockerd lists heads)
            if dangling_only is not None and dangling_only != dangling:
                continue
            created = created_ns(img.config.get("created"))
            if before and not builtins.all(created < b for b in before):
                continue
            if since and not builtins.all(created > s for s in since):
                continue
            if untils and not builtins.all(created <= u for u in untils):
                continue
            if not filters.match_labels((img.config.get("config") or {}).get("Labels")):
                continue
            if "reference" in filters:
                tags = [t for t in tags if any(ref_match(t, p) for p in filters["reference"])]
                if not tags:
                    continue
            out.append(self._summary(img, tags))
        out.sort(key=lambda e: e["Created"], reverse=True)
        return out

    def disk_usage(self) -> tuple[builtins.list[dict[str, Any]], int]:
        """`GET /system/df`'s images and LayersSize as dockerd: the listed images with `SharedSize` (their
        layers another listed image also uses) and the size of every layer stored, each counted once."""
        summaries = self.list(all=False)
        refcount: dict[str, int] = {}
        chains: dict[str, builtins.list[str]] = {}
        for item in summaries:
            with contextlib.suppress(NotFound):
                chains[item["Id"]] = self.store.get(item["Id"]).chain_ids
            for c in chains.get(item["Id"], []):
                refcount[c] = refcount.get(c, 0) + 1
        sizes = {str(d.get("ChainID")): int(d.get("Size") or 0) for d in self.layers.all()}
        for item in summaries:
            item["SharedSize"] = sum(sizes.get(c, 0) for c in chains.get(item["Id"], []) if refcount[c] > 1)
        return summaries, sum(sizes.values())

    def inspect(self, ref_or_id: str) -> dict[str, Any]:
        img = self.resolve(ref_or_id)
        cfg = img.config
        tags = self.store.refs_of(img.id)
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

    def history(self, ref_or_id: str) -> builtins.list[dict[str, Any]]:
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
            tags = [t for t in self.store.refs_of(cur.id) if "@" not in t]
            item["Tags"] = sorted(tags) or None
            cur = self.store.get(cur.parent) if cur.parent and self.store.exists(cur.parent) else None
        return items

    # ---- tag / remove / prune ------------------------------------------------------------------

    def tag(self, ref_or_id: str, repo: str, tag: str | None = None) -> None:
        img = self.resolve(ref_or_id)
        ref = refs.parse_repository(repo, tag)
        if ref.digest is not None:
            raise InvalidParameter("refusing to create a tag with a digest reference")
        self.store.set_ref(ref, img.id)
        self._event("tag", img.id, {"name": ref.with_default_tag().familiar()})

    def remove(
        self, ref_or_id: str, force: bool = False, noprune: bool = False, in_use: ImageUsage | None = None
    ) -> builtins.list[dict[str, Any]]:
        """`docker rmi`: the Untagged/Deleted records, each published as an untag/delete event. `in_use`
        overrides the service's `usage`."""
        iid = self.resolve(ref_or_id).id
        records = self._remove(ref_or_id, force, noprune, in_use or self._usage)
        for item in records:  # dockerd: untag and delete events name the image by its ID
            if "Untagged" in item:
                self._event("untag", iid, {"name": iid})
            if item.pop("_image", None):
                self._event("delete", item["Deleted"], {"name": item["Deleted"]})
        return records

    def _remove(
        self, ref_or_id: str, force: bool, noprune: bool, in_use: ImageUsage | None
    ) -> builtins.list[dict[str, Any]]:
        img = self.resolve(ref_or_id)
        iid = img.id
        records: list[dict[str, Any]] = []
        repo_refs = self.store.refs_of(iid)
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
            self.store.delete_refs([key])
            records.append({"Untagged": key})
            if "@" not in key:  # dockerd: the repository's last tag gone, its digest references go too
                repo = key.rsplit(":", 1)[0]
                left = self.store.refs_of(iid)
                if not any("@" not in r and r.rsplit(":", 1)[0] == repo for r in left):
                    digests = [r for r in left if "@" in r and r.split("@", 1)[0] == repo]
                    if digests:
                        self.store.delete_refs(digests)
                        records.extend({"Untagged": r} for r in digests)
            if self.store.refs_of(iid):
                return records
            removed_ref = True
        elif _single_reference(repo_refs):
            self._check_conflict(iid, force, in_use, ignore_refs=True)
            self.store.delete_refs(repo_refs)
            records.extend({"Untagged": r} for r in repo_refs)
        self._delete_helper(iid, records, force, not noprune, removed_ref, in_use)
        return records

    def _check_conflict(
        self, iid: str, force: bool, in_use: ImageUsage | None, *, ignore_refs: bool = False
    ) -> None:
        if self.store.children(iid):
            raise Conflict(
                f"conflict: unable to delete {_short(iid)} (cannot be forced) - image has dependent child images"
            )
        running = _users(self._running, iid) if in_use is self._usage else []
        if running:
            raise Conflict(
                f"conflict: unable to delete {_short(iid)} (cannot be forced) - image is being used by running "
                f"container {_short(running[0])}"
            )
        if force:
            return
        if not ignore_refs and self.store.refs_of(iid):
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
        records: builtins.list[dict[str, Any]],
        force: bool,
        prune: bool,
        quiet: bool,
        in_use: ImageUsage | None,
    ) -> None:
        try:
            self._check_conflict(iid, force, in_use)
        except Conflict:
            if quiet:
                return
            raise
        img = self.store.get(iid)
        for r in self.store.delete(iid):  # forced removal untags the rest
            records.append({"Untagged": r})
        records.append({"Deleted": iid, "_image": True})  # "_image": the record of an image, not a layer
        for chain in self.store.release_layers(img):
            records.append({"Deleted": chain})
        if prune and img.parent and self.store.exists(img.parent):
            self._delete_helper(img.parent, records, False, True, True, in_use)

    def prune(
        self,
        dangling_only: bool = True,
        filters: dict[str, builtins.list[str]] | None = None,
        in_use: ImageUsage | None = None,
    ) -> dict[str, Any]:
        """`docker image prune`; one `prune` event (untag/delete are not announced, as in dockerd).
        `SpaceReclaimed` counts the layers really removed (a layer another image keeps is not freed)."""
        in_use = in_use or self._usage
        filters = Filters(filters)
        filters.validate(("until", "label", "label!", "dangling"))
        wanted = _bool_filter(filters, "dangling")
        if wanted is not None:
            dangling_only = wanted
        untils = [_until(u) for u in filters.get("until", [])]
        deleted: list[dict[str, Any]] = []
        reclaimed = 0
        by_image = self.store.refs_by_image()
        for img in sorted(self.store.all(), key=lambda i: created_ns(i.config.get("created")), reverse=True):
            if not self.store.exists(img.id):
                continue
            if dangling_only and by_image.get(img.id):
                continue
            if _users(in_use, img.id) or self.store.children(img.id):
                continue
            created = created_ns(img.config.get("created"))
            if untils and not all(created < u for u in untils):
                continue
            labels = (img.config.get("config") or {}).get("Labels") or {}
            if not filters.match_labels(labels):
                continue
            if any(label_matches(labels, f) for f in filters.get("label!")):
                continue
            sizes = self._layer_sizes(img)
            records: list[dict[str, Any]] = []
            try:
                for r in self.store.refs_of(img.id):
                    self.store.delete_refs([r])
                    records.append({"Untagged": r})
                self._delete_helper(img.id, records, False, True, False, in_use)
            except Conflict:
                continue
            finally:
                for rec in records:
                    rec.pop("_image", None)
                deleted.extend(records)
            reclaimed += sum(sizes.get(r.get("Deleted", ""), 0) for r in records)
        self._event("prune", "", {"reclaimed": str(reclaimed)})
        return {"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    def _layer_sizes(self, img: Image) -> dict[str, int]:
        """Chain ID -> size of the image's layers (its parents' are a prefix of its own)."""
        out: dict[str, int] = {}
        for chain in img.chain_ids:
            with contextlib.suppress(NotFound, KeyError):
                out[chain] = self.layers.get(chain).size
        return out

    # ---- import / commit / save / load ---------------------------------------------------------

    def import_tar(
        self,
        stream: BinaryIO,
        repo_tag: str | None = None,
        changes: builtins.list[str] | None = None,
        message: str = "",
        *,
        created: str | None = None,
    ) -> str:
        """POST /images/create?fromSrc=-: a rootfs tarball (maybe compressed) becomes a one-layer image."""
        iid = importer.import_tar(self.store, stream, repo_tag, changes, message, created=created)
        self._event("import", iid, {"name": repo_tag or iid})
        return iid

    def commit(
        self,
        container: dict[str, Any],
        upper_dir: str,
        repo_tag: str | None = None,
        author: str = "",
        comment: str = "",
        changes: builtins.list[str] | None = None,
        pause: bool = True,
        exclude: Collection[str] = (),
    ) -> str:
        """A new image from a container's writable layer on top of its image (pausing is the caller's)."""
        return importer.commit(self.store, container, upper_dir, repo_tag, author, comment, changes, exclude)

    def load(self, stream: BinaryIO) -> Iterator[str]:
        """`docker load`: the progress lines, each announced as a `load` event once reported."""
        for line in load_archive(self.store, stream):
            yield line
            name = line.split(":", 1)[1].strip() if ":" in line else line
            self._event("load", name, {"name": name})

    def save(self, names: builtins.list[str], out: BinaryIO) -> None:
        for n in names:
            self._event("save", n, {"name": n})
        save_images(self.store, names, out)


def created_ns(s: str | None) -> int:
    """Nanoseconds since the epoch of an image config's `created` (0 if absent or bad): `since`/`before`
    compare at full precision, as dockerd does."""
    if not s or not isinstance(s, str):
        return 0
    try:
        return parse_timestamp(s)
    except InvalidParameter:
        return 0


_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def _bool_filter(filters: Filters, key: str) -> bool | None:
    """A boolean filter as dockerd's GetBoolOrDefault: None when absent, Go's ParseBool spellings, else
    "invalid filter 'key=[values]'"."""
    values = filters.get(key)
    if not values:
        return None
    parsed = {True if v in _TRUE else False if v in _FALSE else None for v in values}
    if None in parsed or len(parsed) != 1:
        raise InvalidParameter(f"invalid filter '{key}=[{' '.join(values)}]'")
    return parsed.pop()


def _until(value: str) -> int:
    try:
        return parse_timestamp(value)
    except InvalidParameter:
        raise InvalidParameter(f"invalid filter 'until={value}'") from None


def _path_match(pattern: str, name: str) -> bool:
    """Go's path.Match: `*` and `?` never match "/"."""
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
