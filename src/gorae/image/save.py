"""`docker save`: images as a tarball both docker's loader and OCI tools read (the docker 25+ layout).

Contents: `oci-layout`, `index.json`, `blobs/sha256/<hex>` (uncompressed layer tars under their diff_id,
image configs, OCI manifests), `manifest.json` ([{Config, RepoTags, Layers}] with blob paths) and
`repositories`. Layers are written from the content store byte for byte, so diff_ids and image IDs survive.
"""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any, BinaryIO

from gorae.errors import NotFound, SystemError_
from gorae.image import reference as refs
from gorae.image.store import ImageStore
from gorae.store.digest import is_digest, sha256_digest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def _blob_name(digest: str) -> str:
    return "blobs/sha256/" + digest.split(":", 1)[1]


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _selection(store: ImageStore, names: list[str]) -> list[tuple[str, list[refs.Reference]]]:
    """(image id, tags to record) per image, in first-mention order, as moby's tarexport picks them."""
    order: list[str] = []
    tags: dict[str, list[refs.Reference]] = {}

    def add(iid: str, ref: refs.Reference | None) -> None:
        if iid not in tags:
            order.append(iid)
            tags[iid] = []
        if ref is not None and ref.tag is not None and ref not in tags[iid]:
            tags[iid].append(ref)

    for name in names:
        if is_digest(name) or refs.ID_RE.fullmatch(name):
            add(store.resolve(name).id, None)
            continue
        try:
            ref = refs.parse(name)
        except Exception:
            add(store.resolve(name).id, None)
            continue
        if ref.tag is None and ref.digest is None:
            found = False
            for key, iid in store.all_refs():
                r = refs.parse(key)
                if r.name == ref.name and r.tag is not None:
                    add(iid, r)
                    found = True
            if not found:
                add(store.resolve(name).id, None)
            continue
        img = store.resolve(name)
        add(img.id, ref if ref.tag is not None else None)
    return [(i, tags[i]) for i in order]


def save_images(store: ImageStore, names: list[str], out: BinaryIO) -> None:
    selection = _selection(store, names)
    written: set[str] = set()
    manifest_json: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    index: list[dict[str, Any]] = []
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:

        def add_bytes(name: str, data: bytes) -> None:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            tar.addfile(ti, io.BytesIO(data))

        def add_blob_bytes(data: bytes) -> str:
            digest = sha256_digest(data)
            if digest not in written:
                add_bytes(_blob_name(digest), data)
                written.add(digest)
            return digest

        add_bytes("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        for iid, tags in selection:
            img = store.get(iid)
            layer_descs: list[dict[str, Any]] = []
            for diff_id in img.diff_ids:
                try:
                    size = store.layers.tar_size(diff_id)
                except NotFound:
                    raise SystemError_(f"layer {diff_id} of image {iid} has no stored tar") from None
                if diff_id not in written:
                    ti = tarfile.TarInfo(_blob_name(diff_id))
                    ti.size = size
                    ti.mode = 0o644
                    with store.layers.open_tar(diff_id) as f:
                        tar.addfile(ti, f)
                    written.add(diff_id)
                layer_descs.append({"mediaType": OCI_LAYER, "digest": diff_id, "size": size})
            config = store.config_bytes(iid)
            add_blob_bytes(config)
            manifest = _json(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": OCI_CONFIG, "digest": iid, "size": len(config)},
                    "layers": layer_descs,
                }
            )
            mdigest = add_blob_bytes(manifest)
            desc = {"mediaType": OCI_MANIFEST, "digest": mdigest, "size": len(manifest)}
            if tags:
                for t in tags:
                    index.append(
                        {
                            **desc,
                            "annotations": {
                                "io.containerd.image.name": str(t),
                                "org.opencontainers.image.ref.name": t.tag or "latest",
                            },
                        }
                    )
                    repositories.setdefault(t.familiar_name, {})[t.tag or "latest"] = iid.split(":", 1)[1]
            else:
                index.append(desc)
            manifest_json.append(
                {
                    "Config": _blob_name(iid),
                    "RepoTags": [t.familiar() for t in tags] or None,
                    "Layers": [_blob_name(d) for d in img.diff_ids],
                }
            )
        add_bytes("index.json", _json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index}))
        add_bytes("manifest.json", _json(manifest_json))
        if repositories:
            add_bytes("repositories", _json(repositories))
