"""Image models: the image config JSON (OCI/Docker image spec), image IDs, chain IDs and time formats.

An image ID is "sha256:" + sha256 of the exact config bytes; those bytes are kept in the content store and
never re-serialised, so save/load/push reproduce the ID. `Image` is the record `ImageService` hands out.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gorae.errors import InvalidParameter

ZERO_TIME = "0001-01-01T00:00:00Z"

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


def now_rfc3339nano() -> str:
    return format_rfc3339nano(datetime.now(UTC))


def format_rfc3339nano(t: datetime, nanos: int | None = None) -> str:
    """Go's RFC3339Nano: fractional seconds without trailing zeros, "Z" for UTC."""
    t = t.astimezone(UTC)
    ns = nanos if nanos is not None else t.microsecond * 1000
    base = t.strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{ns:09d}".rstrip("0")
    return base + ("." + frac if frac else "") + "Z"


def parse_time(s: str | None) -> datetime | None:
    """An RFC3339(Nano) timestamp as a datetime (fraction truncated to microseconds); None if absent/bad."""
    if not s or not isinstance(s, str):
        return None
    try:
        main, dot, rest = s.partition(".")
        if dot:
            i = 0
            while i < len(rest) and rest[i].isdigit():
                i += 1
            frac, tz = rest[:i], rest[i:]
            s = f"{main}.{(frac + '000000')[:6]}{tz}"
        s = s.replace("Z", "+00:00").replace("z", "+00:00")
        t = datetime.fromisoformat(s)
        if t.tzinfo is None:
            t = t.replace(tzinfo=UTC)
        return t
    except ValueError:
        return None


def unix_time(s: str | None) -> int:
    t = parse_time(s)
    return int(t.timestamp()) if t is not None else 0
