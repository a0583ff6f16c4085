"""Image models: the image config JSON (OCI/Docker image spec), image IDs, chain IDs and time formats.

Times are `gorae.timefmt`'s. An image ID is "sha256:" + sha256 of the exact config bytes; those bytes are kept in the content store and
never re-serialised, so save/load/push reproduce the ID. `Image` is the record `ImageService` hands out.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from gorae.errors import InvalidParameter
from gorae.timefmt import ZERO_TIME, parse_timestamp

# Docker's container.Config as image inspect prints it: these keys always, the rest only when set.
CONFIG_ALWAYS: dict[str, Any] = {
    "Hostname": "",
    "Domainname": "",
    "User": "",
    "AttachStdin": False,
    "AttachStdout": False,
    "AttachStderr": False,
    "Tty": False,
    "OpenStdin": False,
    "StdinOnce": False,
    "Env": None,
    "Cmd": None,
    "Image": "",
    "Volumes": None,
    "WorkingDir": "",
    "Entrypoint": None,
    "OnBuild": None,
    "Labels": None,
}
CONFIG_OPTIONAL = (
    "ExposedPorts",
    "Healthcheck",
    "ArgsEscaped",
    "NetworkDisabled",
    "MacAddress",
    "StopSignal",
    "StopTimeout",
    "Shell",
)


@dataclass
class Image:
    """A stored image: its ID, parsed config, and the local facts docker keeps beside it."""

    id: str
    config: dict[str, Any]
    parent: str = ""
    last_tag_time: str = ZERO_TIME
    layer_sizes: list[int] = field(default_factory=list)

    @property
    def short_id(self) -> str:
        return self.id.split(":", 1)[-1][:12]

    @property
    def diff_ids(self) -> list[str]:
        return list((self.config.get("rootfs") or {}).get("diff_ids") or [])

    @property
    def chain_ids(self) -> list[str]:
        return chain_ids(self.diff_ids)

    @property
    def size(self) -> int:
        return sum(self.layer_sizes)

    @property
    def container_config(self) -> dict[str, Any]:
        return dict(self.config.get("config") or {})

    def doc(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "Parent": self.parent,
            "LastTagTime": self.last_tag_time,
            "LayerSizes": self.layer_sizes,
        }


def image_id(config_bytes: bytes) -> str:
    return "sha256:" + hashlib.sha256(config_bytes).hexdigest()


def chain_ids(diff_ids: list[str]) -> list[str]:
    """ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))."""
    out: list[str] = []
    for d in diff_ids:
        if not out:
            out.append(d)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {d}".encode()).hexdigest())
    return out


def parse_config(data: bytes) -> dict[str, Any]:
    """Parse and sanity-check image config bytes (rootfs.type "layers", diff_ids well formed)."""
    from gorae.store.digest import is_digest

    try:
        cfg = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidParameter(f"invalid image config: {e}") from None
    if not isinstance(cfg, dict):
        raise InvalidParameter("invalid image config: not a JSON object")
    rootfs = cfg.get("rootfs")
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers":
        raise InvalidParameter('invalid image config: rootfs type must be "layers"')
    diff_ids = rootfs.get("diff_ids") or []
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) and is_digest(d) for d in diff_ids):
        raise InvalidParameter("invalid image config: bad rootfs.diff_ids")
    if cfg.get("config") is not None and not isinstance(cfg["config"], dict):
        raise InvalidParameter("invalid image config: config must be an object")
    return cfg


def dump_config(cfg: dict[str, Any]) -> bytes:
    """Canonical bytes for a config gorae creates (compact, as Go's json.Marshal)."""
    return json.dumps(cfg, separators=(",", ":"), ensure_ascii=False).encode()


def docker_config(cfg: dict[str, Any] | None) -> dict[str, Any]:
    """An image's `Config` in Docker's inspect shape (all always-present keys, optional ones when set)."""
    cfg = cfg or {}
    out: dict[str, Any] = {}
    for k, default in CONFIG_ALWAYS.items():
        out[k] = cfg.get(k, default)
    for k in CONFIG_OPTIONAL:
        if cfg.get(k) not in (None, "", False, {}, []):
            out[k] = cfg[k]
    return out


def unix_time(s: str | None) -> int:
    """Seconds since the epoch of an RFC 3339 time in an image config (`created`); 0 if absent or bad."""
    if not s or not isinstance(s, str):
        return 0
    try:
        return parse_timestamp(s) // 1_000_000_000
    except InvalidParameter:
        return 0
