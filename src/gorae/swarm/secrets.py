"""Secrets and configs in the cluster store: create, list, inspect, update (labels only), remove — the
operations behind `/secrets` and `/configs`, with dockerd's (swarmkit's) checks, shapes and texts.

Payloads are sealed with the cluster data key (`gorae.swarm.datakey`) under the object's private bag
(`_gorae.Sealed`); the stored Spec never holds `Data`. A secret's inspect never shows its data; a config's
shows it (as dockerd). Removing one a service uses is refused with swarmkit's "is in use" text.
`payloads` opens them for the dispatcher, which hands them only to nodes running a task that uses them.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gorae.errors import Conflict, InvalidParameter, NotFound, NotImplementedYet
from gorae.filters import Filters
from gorae.swarm.datakey import DataKey
from gorae.swarm.ids import new_id
from gorae.swarm.store.types import (
    ClusterStore,
    Config,
    ReadTx,
    Secret,
    SequenceConflict,
    Service,
    StoredObject,
    WriteTx,
)
from gorae.timefmt import rfc3339nano

FILTERS = ("id", "label", "name", "names")
_NAME = re.compile(r"^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$")


@dataclass(frozen=True)
class Kind:
    """What differs between secrets and configs."""

    name: str  # "secret" | "config"
    cls: type[StoredObject]
    go_spec: str  # "SecretSpec" | "ConfigSpec"
    max_size: int
    shows_data: bool
    ref_key: str  # the ContainerSpec list that references them: "Secrets" | "Configs"
    id_key: str  # "SecretID" | "ConfigID"


SECRETS = Kind("secret", Secret, "SecretSpec", 500 * 1024, False, "Secrets", "SecretID")
CONFIGS = Kind("config", Config, "ConfigSpec", 1000 * 1024, True, "Configs", "ConfigID")


def _json_type(value: Any) -> str:
    return {bool: "bool", int: "number", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), "null"
    )


def _unmarshal(kind: Kind, value: Any, field: str, go_type: str) -> InvalidParameter:
    return InvalidParameter(
        f"json: cannot unmarshal {_json_type(value)} into Go struct field {kind.go_spec}.{field} of type {go_type}"
    )


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_DECODE = {ord(c): i for i, c in enumerate(_ALPHABET)}


def _bad(pos: int) -> InvalidParameter:
    return InvalidParameter(f"illegal base64 data at input byte {pos}")


def decode_data(raw: str) -> bytes:
    """Go's []byte JSON field (encoding/base64's StdEncoding: padded, CR and LF skipped, not strict), with
    its error at the byte Go names."""
    src = raw.encode()
    out = bytearray()
    si = 0
    while True:
        quantum: list[int] = []
        while len(quantum) < 4:
            if si == len(src):
                if not quantum:
                    return bytes(out)
                raise _bad(si - len(quantum))
            byte = src[si]
            si += 1
            if byte in _DECODE:
                quantum.append(_DECODE[byte])
                continue
            if byte in (0x0A, 0x0D):
                continue
            if byte != ord("=") or len(quantum) < 2:
                raise _bad(si - 1)
            if len(quantum) == 2:  # "==": the second one must follow (newlines skipped)
                while si < len(src) and src[si] in (0x0A, 0x0D):
                    si += 1
                if si == len(src):
                    raise _bad(len(src))
                if src[si] != ord("="):
                    raise _bad(si - 1)
                si += 1
            while si < len(src) and src[si] in (0x0A, 0x0D):
                si += 1
            if si < len(src):
                raise _bad(si)  # trailing garbage
            val = 0
            for i, q in enumerate(quantum):
                val |= q << (18 - 6 * i)
            out += val.to_bytes(3, "big")[: len(quantum) - 1]
            return bytes(out)
        val = quantum[0] << 18 | quantum[1] << 12 | quantum[2] << 6 | quantum[3]
        out += val.to_bytes(3, "big")


def check_spec(kind: Kind, spec: Any) -> tuple[dict[str, Any], bytes | None]:
    """A Spec body's JSON types (dockerd's decoder) → (spec without Data, the decoded Data or None)."""
    if not isinstance(spec, dict):
        raise InvalidParameter(
            f"json: cannot unmarshal {_json_type(spec)} into Go value of type swarm.{kind.go_spec}"
        )
    name = spec.get("Name")
    if name is not None and not isinstance(name, str):
        raise _unmarshal(kind, name, "Name", "string")
    labels = spec.get("Labels")
    if labels is not None and (
        not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values())
    ):
        raise _unmarshal(kind, labels, "Labels", "map[string]string")
    raw = spec.get("Data")
    if raw is not None and not isinstance(raw, str):
        raise _unmarshal(kind, raw, "Data", "[]uint8")
    for key in ("Driver", "Templating"):
        if spec.get(key) is not None and not isinstance(spec[key], dict):
            raise _unmarshal(kind, spec[key], key, "swarm.Driver")
    data = decode_data(raw) if raw is not None else None
    out = {k: v for k, v in spec.items() if k != "Data" and v is not None}
    out["Name"] = name or ""
    out["Labels"] = dict(labels or {})
    return out, data


def check_name(name: str) -> None:
    if not name:
        raise InvalidParameter("rpc error: code = InvalidArgument desc = name must be provided")
    if len(name) > 64 or not _NAME.match(name):
        raise InvalidParameter(
            "rpc error: code = InvalidArgument desc = invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, "
            "and the start and end character must be [a-zA-Z0-9]"
        )


def parse_version(raw: str | None, kind: Kind) -> int:
    if raw is None or not (raw.isascii() and raw.isdigit()):  # "²" is a digit to str.isdigit
        raise InvalidParameter(f"invalid {kind.name} version")
    return int(raw)


def _now() -> str:
    return rfc3339nano(time.time_ns())


def _aad(kind: Kind, obj_id: str) -> str:
    return f"{kind.name}/{obj_id}"


class SecretStore:
    """`/secrets` or `/configs` over the cluster store (one instance per kind)."""

    def __init__(self, kind: Kind, store: Callable[[], ClusterStore], key: DataKey) -> None:
        self.kind = kind
        self._store = store  # the manager's store (dockerd's 503s elsewhere)
        self.key = key

    def _public(self, obj: StoredObject) -> dict[str, Any]:
        doc = obj.doc
        spec = dict(doc.get("Spec") or {})
        if self.kind.shows_data:
            sealed = (doc.get("_gorae") or {}).get("Sealed", "")
            spec["Data"] = base64.b64encode(self.key.open(sealed, _aad(self.kind, obj.id))).decode()
        return {
            "ID": obj.id,
            "Version": {"Index": obj.version},
            "CreatedAt": doc.get("CreatedAt", ""),
            "UpdatedAt": doc.get("UpdatedAt", ""),
            "Spec": spec,
        }

    async def _find(self, tx: ReadTx, ref: str) -> StoredObject:
        cls = self.kind.cls
        obj = await tx.get(cls, ref)
        if obj is not None:
            return obj
        everything = await tx.find(cls)
        for o in everything:
            if (o.doc.get("Spec") or {}).get("Name") == ref:
                return o
        prefixed = [o for o in everything if ref and o.id.startswith(ref)]
        if len(prefixed) == 1:
            return prefixed[0]
        raise NotFound(f"{self.kind.name} {ref} not found")

    async def create(self, body: Any) -> str:
        spec, data = check_spec(self.kind, body)
        store = self._store()
        check_name(spec["Name"])
        if spec.get("Driver"):
            raise NotImplementedYet(f"{self.kind.name} drivers are not supported by gorae yet")
        if data is None or not 0 < len(data) < self.kind.max_size:
            raise InvalidParameter(
                f"rpc error: code = InvalidArgument desc = {self.kind.name} data must be larger than 0 and "
                f"less than {self.kind.max_size} bytes"
            )
        obj_id = new_id()
        now = _now()
        doc = {
            "ID": obj_id,
            "CreatedAt": now,
            "UpdatedAt": now,
            "Spec": spec,
            "_gorae": {"Sealed": self.key.seal(data, _aad(self.kind, obj_id))},
        }

        async def write(tx: WriteTx) -> None:
            for other in await tx.find(self.kind.cls):
                if (other.doc.get("Spec") or {}).get("Name") == spec["Name"]:
                    raise Conflict(
                        f"rpc error: code = AlreadyExists desc = {self.kind.name} {spec['Name']} already exists"
                    )
            await tx.create(self.kind.cls(obj_id, doc))

        await store.update(write)
        return obj_id

    async def list_objects(self, filters: Filters) -> list[dict[str, Any]]:
        store = self._store()
        for key in filters:
            if key not in FILTERS:
                raise InvalidParameter(f"Invalid filter '{key}'")

        async def read(tx: ReadTx) -> list[StoredObject]:
            return list(await tx.find(self.kind.cls))

        out = []
        for obj in await store.view(read):
            spec = obj.doc.get("Spec") or {}
            name = str(spec.get("Name", ""))
            if filters.contains("id") and not any(obj.id.startswith(v) for v in filters.get("id")):
                continue
            if filters.contains("name") and not any(name.startswith(v) for v in filters.get("name")):
                continue
            if filters.contains("names") and name not in filters.get("names"):
                continue
            if not filters.match_labels(spec.get("Labels")):
                continue
            out.append(self._public(obj))
        return out

    async def inspect(self, ref: str) -> dict[str, Any]:
        async def read(tx: ReadTx) -> StoredObject:
            return await self._find(tx, ref)

        return self._public(await self._store().view(read))

    async def update(self, ref: str, raw_version: str | None, body: Any) -> None:
        version = parse_version(raw_version, self.kind)
        spec, data = check_spec(self.kind, body)
        store = self._store()

        async def write(tx: WriteTx) -> None:
            obj = await self._find(tx, ref)
            current = obj.doc.get("Spec") or {}
            same_data = data is None or data == self.key.open(
                (obj.doc.get("_gorae") or {}).get("Sealed", ""), _aad(self.kind, obj.id)
            )
            if spec["Name"] != current.get("Name") or not same_data:
                raise InvalidParameter(
                    "rpc error: code = InvalidArgument desc = only updates to Labels are allowed"
                )
            if obj.version != version:
                raise SequenceConflict()
            doc = dict(obj.doc)
            doc["Spec"] = {**current, "Labels": spec["Labels"]}
            doc["UpdatedAt"] = _now()
            await tx.update(obj.with_doc(doc))

        await store.update(write)

    async def remove(self, ref: str) -> None:
        store = self._store()

        async def write(tx: WriteTx) -> None:
            obj = await self._find(tx, ref)
            users = sorted(
                str((s.doc.get("Spec") or {}).get("Name", s.id))
                for s in await tx.find(Service)
                if obj.id in referenced(s.doc.get("Spec") or {}, self.kind)
            )
            if users:
                name = (obj.doc.get("Spec") or {}).get("Name", obj.id)
                what = "services" if len(users) > 1 else "service"
                raise InvalidParameter(
                    f"rpc error: code = InvalidArgument desc = {self.kind.name} '{name}' is in use by the "
                    f"following {what}: {', '.join(users)}"
                )
            await tx.delete(self.kind.cls, obj.id)

        await store.update(write)

    async def payloads(self, tx: ReadTx, ids: set[str]) -> list[dict[str, Any]]:
        """The objects `ids` with their data opened (base64), for the dispatcher's assignments."""
        out = []
        for obj_id in sorted(ids):
            obj = await tx.get(self.kind.cls, obj_id)
            if obj is None:
                continue
            plain = self.key.open((obj.doc.get("_gorae") or {}).get("Sealed", ""), _aad(self.kind, obj.id))
            out.append(
                {
                    "ID": obj.id,
                    "Version": obj.version,
                    "Name": (obj.doc.get("Spec") or {}).get("Name", ""),
                    "Data": base64.b64encode(plain).decode(),
                }
            )
            templating = (obj.doc.get("Spec") or {}).get("Templating")
            if templating:  # expanded by the agent for each task (gorae.swarm.templates)
                out[-1]["Templating"] = templating
        return out


def referenced(spec: dict[str, Any], kind: Kind) -> set[str]:
    """IDs of the secrets (or configs) a service or task Spec's ContainerSpec uses."""
    task_template = spec.get("TaskTemplate") if "TaskTemplate" in spec else spec
    container = (task_template or {}).get("ContainerSpec") or {}
    refs = container.get(kind.ref_key) or []
    return {str(r.get(kind.id_key)) for r in refs if isinstance(r, dict) and r.get(kind.id_key)}
