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


# The types Go's json.Unmarshal enforces on an image config (moby's image.Image / container.Config): a
# value of another type fails `docker load` there, and must not reach `images`/`inspect` here.
_STR, _BOOL, _INT, _OBJ = "string", "boolean", "integer", "object"
_STRS = "list of strings"
_CMD = "command"  # strslice: a list of strings, or one string
_STR_MAP = "map of strings"
_TOP: dict[str, str] = {
    "architecture": _STR,
    "os": _STR,
    "variant": _STR,
    "created": _STR,
    "author": _STR,
    "comment": _STR,
    "docker_version": _STR,
    "container": _STR,
    "os.version": _STR,
    "os.features": _STRS,
    "config": _OBJ,
    "container_config": _OBJ,
    "history": "list of objects",
    "rootfs": _OBJ,
}
_CONTAINER_CONFIG: dict[str, str] = {
    "Hostname": _STR,
    "Domainname": _STR,
    "User": _STR,
    "AttachStdin": _BOOL,
    "AttachStdout": _BOOL,
    "AttachStderr": _BOOL,
    "ExposedPorts": _OBJ,
    "Tty": _BOOL,
    "OpenStdin": _BOOL,
    "StdinOnce": _BOOL,
    "Env": _STRS,
    "Cmd": _CMD,
    "Healthcheck": _OBJ,
    "ArgsEscaped": _BOOL,
    "Image": _STR,
    "Volumes": _OBJ,
    "WorkingDir": _STR,
    "Entrypoint": _CMD,
    "NetworkDisabled": _BOOL,
    "MacAddress": _STR,
    "OnBuild": _STRS,
    "Labels": _STR_MAP,
    "StopSignal": _STR,
    "StopTimeout": _INT,
    "Shell": _STRS,
}
_HEALTHCHECK: dict[str, str] = {
    "Test": _STRS,
    "Interval": _INT,
    "Timeout": _INT,
    "StartPeriod": _INT,
    "StartInterval": _INT,
    "Retries": _INT,
}
_HISTORY: dict[str, str] = {
    "created": _STR,
    "created_by": _STR,
    "author": _STR,
    "comment": _STR,
    "empty_layer": _BOOL,
}
_INT64 = 1 << 63


def _is(kind: str, v: Any) -> bool:
    if v is None:
        return True  # JSON null: Go leaves the zero value
    if kind == _STR:
        return isinstance(v, str)
    if kind == _BOOL:
        return isinstance(v, bool)
    if kind == _INT:
        return isinstance(v, int) and not isinstance(v, bool) and -_INT64 <= v < _INT64
    if kind == _OBJ:
        return isinstance(v, dict)
    if kind == _STRS:
        return isinstance(v, list) and all(isinstance(x, str) for x in v)
    if kind == _CMD:
        return isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))
    if kind == _STR_MAP:
        return isinstance(v, dict) and all(isinstance(x, str) for x in v.values())
    if kind == "list of objects":
        return isinstance(v, list) and all(isinstance(x, dict) for x in v)
    raise AssertionError(kind)


def _check(doc: dict[str, Any], schema: dict[str, str], where: str, repair: bool) -> list[str]:
    """Type errors of `doc` against `schema`; with `repair`, the offending keys are dropped."""
    bad = []
    for key, kind in schema.items():
        if key in doc and not _is(kind, doc[key]):
            bad.append(f"{where}{key} must be a {kind}")
            if repair:
                del doc[key]
    return bad


def _finite(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text} is out of range")
    return value


def _no_constants(name: str) -> Any:
    raise ValueError(f"invalid JSON value {name}")


def parse_config(data: bytes, *, repair: bool = False) -> dict[str, Any]:
    """Parse and check image config bytes: JSON without NaN/Infinity, rootfs.type "layers", well-formed
    diff_ids, and every field of the types Go's decoder enforces (so one hostile image cannot break `images`
    for all). `repair` is for configs already stored by an older gorae: ill-typed fields are dropped rather
    than refused; rootfs errors are refused either way."""
    from gorae.store.digest import is_digest

    try:
        cfg = json.loads(data, parse_float=_finite, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise InvalidParameter(f"invalid image config: {e}") from None
    if not isinstance(cfg, dict):
        raise InvalidParameter("invalid image config: not a JSON object")
    rootfs = cfg.get("rootfs")
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers":
        raise InvalidParameter('invalid image config: rootfs type must be "layers"')
    diff_ids = rootfs.get("diff_ids") or []
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) and is_digest(d) for d in diff_ids):
        raise InvalidParameter("invalid image config: bad rootfs.diff_ids")
    bad = _check(cfg, _TOP, "", repair)
    for section in ("config", "container_config"):
        sub = cfg.get(section)
        if isinstance(sub, dict):
            bad += _check(sub, _CONTAINER_CONFIG, f"{section}.", repair)
            if isinstance(sub.get("Healthcheck"), dict):
                bad += _check(sub["Healthcheck"], _HEALTHCHECK, f"{section}.Healthcheck.", repair)
            for key in ("Cmd", "Entrypoint"):  # strslice: one string is a one-element command
                if isinstance(sub.get(key), str):
                    sub[key] = [sub[key]]
    history = cfg.get("history")
    for i, h in enumerate(history if isinstance(history, list) else []):
        bad += _check(h, _HISTORY, f"history[{i}].", repair)
    if bad and not repair:
        raise InvalidParameter(f"invalid image config: {bad[0]}")
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
