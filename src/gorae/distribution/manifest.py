"""Image manifests and indexes on the wire: Docker schema 2 and OCI, their media types, typed parsing,
platform selection in a list/index, and the schema 2 manifest dockerd pushes (3-space indented JSON).

Every parser takes the raw bytes of something a registry sent and returns typed values or raises
InvalidParameter; sizes and digests are checked before anything is fetched with them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from gorae.errors import InvalidParameter
from gorae.platform import host_arch, host_os
from gorae.store.digest import parse_digest

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_ND = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_ND_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"

MANIFEST_TYPES = (DOCKER_MANIFEST, OCI_MANIFEST)
INDEX_TYPES = (DOCKER_LIST, OCI_INDEX)
LAYER_TYPES = (
    DOCKER_LAYER_GZIP,
    DOCKER_FOREIGN_LAYER,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    OCI_LAYER_ND,
    OCI_LAYER_ND_GZIP,
    "application/vnd.docker.image.rootfs.diff.tar",
)
ACCEPT = ", ".join((DOCKER_MANIFEST, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX))
MAX_MANIFEST = 4 << 20  # distribution's client reads at most 4 MiB of a manifest
MAX_CONFIG = 8 << 20


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: dict[str, Any] | None = None
    urls: tuple[str, ...] = ()

    def doc(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class Manifest:
    media_type: str
    config: Descriptor
    layers: list[Descriptor]


@dataclass(frozen=True)
class Index:
    media_type: str
    manifests: list[Descriptor] = field(default_factory=list)


def _descriptor(d: Any, what: str) -> Descriptor:
    if not isinstance(d, dict):
        raise InvalidParameter(f"invalid {what} descriptor")
    mt, digest, size = d.get("mediaType"), d.get("digest"), d.get("size")
    if not isinstance(digest, str):
        raise InvalidParameter(f"invalid {what} descriptor: no digest")
    parse_digest(digest)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidParameter(f"invalid {what} descriptor: bad size")
    plat = d.get("platform")
    urls = d.get("urls") or []
    return Descriptor(
        mt if isinstance(mt, str) else "",
        digest,
        size,
        plat if isinstance(plat, dict) else None,
        tuple(u for u in urls if isinstance(u, str)) if isinstance(urls, list) else (),
    )


def parse(body: bytes, content_type: str) -> Manifest | Index:
    """A manifest or index from its bytes; the media type from the body, else the Content-Type."""
    try:
        doc = json.loads(body)
    except ValueError as e:
        raise InvalidParameter(f"invalid manifest: {e}") from None
    if not isinstance(doc, dict):
        raise InvalidParameter("invalid manifest: not an object")
    mt = doc.get("mediaType") if isinstance(doc.get("mediaType"), str) else ""
    ct = content_type.split(";", 1)[0].strip()
    kind = mt or ct
    if doc.get("schemaVersion") == 1 or kind in (DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED):
        raise InvalidParameter(
            "[DEPRECATION NOTICE] Docker Image Format v1 and Docker Image manifest version 2, schema 1 "
            "support has been removed. Suggest the author of the image to upgrade the image to the OCI "
            "Format or Docker Image manifest v2, schema 2."
        )
    if kind in INDEX_TYPES or (not kind and "manifests" in doc):
        ms = doc.get("manifests")
        if not isinstance(ms, list):
            raise InvalidParameter("invalid manifest list: no manifests")
        return Index(kind or OCI_INDEX, [_descriptor(m, "manifest") for m in ms])
    if kind in MANIFEST_TYPES or (not kind and "layers" in doc):
        layers = doc.get("layers")
        if not isinstance(layers, list):
            raise InvalidParameter("invalid manifest: no layers")
        return Manifest(
            kind or OCI_MANIFEST,
            _descriptor(doc.get("config"), "config"),
            [_descriptor(layer, "layer") for layer in layers],
        )
    raise InvalidParameter(f"unsupported manifest media type and no default available: {kind}")


# ---- platforms -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm", "armel": "arm"}


def parse_platform(s: str | None) -> Platform | None:
    """containerd's platforms.Parse for "os[/arch[/variant]]" (or just an arch); None for empty."""
    if not s:
        return None
    parts = s.strip().lower().split("/")
    if len(parts) > 3 or not all(parts):
        raise InvalidParameter(f'"{s}": unknown operating system or architecture: invalid argument')
    if len(parts) == 1:
        if parts[0] in ("linux", "windows", "darwin", "freebsd"):
            return Platform(parts[0], host_arch())
        return Platform(host_os(), _ARCH_ALIASES.get(parts[0], parts[0]))
    arch = _ARCH_ALIASES.get(parts[1], parts[1])
    variant = parts[2] if len(parts) == 3 else ""
    if arch == "arm64" and variant == "v8":
        variant = ""
    return Platform(parts[0], arch, variant)


def default_platform() -> Platform:
    return Platform(host_os(), host_arch())


def matches(want: Platform, plat: dict[str, Any] | None) -> bool:
    if plat is None:
        return False
    os_, arch = str(plat.get("os") or ""), str(plat.get("architecture") or "")
    variant = str(plat.get("variant") or "")
    if arch == "arm64" and variant == "v8":
        variant = ""
    if os_ != want.os or _ARCH_ALIASES.get(arch, arch) != want.architecture:
        return False
    return not want.variant or variant == want.variant or (want.architecture == "arm" and not variant)


def select(index: Index, want: Platform) -> Descriptor:
    """The first manifest of the index for the platform (an exact variant preferred); docker's error
    when none matches."""
    candidates = [
        d for d in index.manifests if matches(want, d.platform) and d.media_type not in INDEX_TYPES
    ]
    exact = [d for d in candidates if str((d.platform or {}).get("variant") or "") == want.variant]
    chosen = (exact or candidates)[:1]
    if not chosen:
        raise NotFoundPlatform(f"no matching manifest for {want} in the manifest list entries")
    return chosen[0]


class NotFoundPlatform(InvalidParameter):
    status = 404


# ---- what push sends -----------------------------------------------------------------------------


def docker_manifest(config: Descriptor, layers: list[Descriptor]) -> bytes:
    """A schema 2 manifest as dockerd's distribution library marshals it (3-space indent, no newline)."""
    doc = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "size": config.size, "digest": config.digest},
        "layers": [
            {"mediaType": d.media_type or DOCKER_LAYER_GZIP, "size": d.size, "digest": d.digest}
            for d in layers
        ],
    }
    return json.dumps(doc, indent=3).encode()
