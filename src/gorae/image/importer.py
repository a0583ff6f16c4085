"""`docker import` and `docker commit`: a rootfs tarball, or a container's writable layer, becomes an image.

Both build a new image config (Docker's field order, compact JSON) and register it through `ImageStore`;
neither knows about containers beyond the inspect-shaped dict `commit` is given.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Collection
from typing import Any, BinaryIO

from gorae.archive import tar_overlay_diff
from gorae.errors import InvalidParameter
from gorae.image import reference as refs
from gorae.image.changes import apply_changes
from gorae.image.layers import EMPTY_TAR_DIFF_ID, tar_is_empty
from gorae.image.models import docker_config, dump_config
from gorae.image.store import ImageStore
from gorae.platform import host_arch, host_os
from gorae.timefmt import now_rfc3339nano


def import_tar(
    store: ImageStore,
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
    layer = store.layers.register(stream, None)
    when = created or now_rfc3339nano()
    msg = message or "Imported from -"
    cfg: dict[str, Any] = {
        "comment": msg,
        "created": when,
        "docker_version": "",
        "config": docker_config(config),
        "architecture": host_arch(),
        "os": host_os(),
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
        "history": [{"created": when, "comment": msg}],
    }
    return store.register(dump_config(cfg), [layer.size], tags=[ref] if ref else None)


def commit(
    store: ImageStore,
    container: dict[str, Any],
    upper_dir: str,
    repo_tag: str | None = None,
    author: str = "",
    comment: str = "",
    changes: list[str] | None = None,
    exclude: Collection[str] = (),
) -> str:
    """A new image from a container's writable layer on top of its image (pausing is the caller's);
    `exclude`: upper-dir paths left out of the layer (the engine's own mount points)."""
    ref = refs.parse_tagged(repo_tag) if repo_tag else None
    base = store.resolve(str(container.get("Image") or ""))
    ct_config = dict(container.get("Config") or {})
    new_config = apply_changes(ct_config, list(changes or []))
    new_config["Image"] = base.id if ct_config.get("Image") else new_config.get("Image", "")
    diff_ids = list(base.diff_ids)
    sizes = list(base.layer_sizes)
    chains = base.chain_ids
    fd, tmp = tempfile.mkstemp(dir=store.tmp, prefix="commit-")
    try:
        with os.fdopen(fd, "w+b") as f:
            tar_overlay_diff(upper_dir, f, exclude=exclude)
            f.seek(0)
            empty = tar_is_empty(f)
            f.seek(0)
            if not empty:
                layer = store.layers.register(f, chains[-1] if chains else None)
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
    cfg["os"] = base.config.get("os") or host_os()
    cfg["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
    cfg["history"] = list(base.config.get("history") or []) + [hist]
    return store.register(dump_config(cfg), sizes, parent=base.id, tags=[ref] if ref else None)
