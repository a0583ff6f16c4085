"""A ServiceSpec's JSON types checked as dockerd's Go decoder checks them (encoding/json into
`swarm.ServiceSpec`): the first mismatch is a 400 with Go's text, `json: cannot unmarshal <kind> into Go
struct field <Struct>.<path> of type <type>`. Only the fields gorae reads are typed; others pass through.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gorae.errors import InvalidParameter


@dataclass(frozen=True)
class T:
    """One Go type: `kind` is str, bool, int, uint, float, list, map, struct or any."""

    kind: str
    go: str = ""
    elem: T | None = None
    fields: dict[str, T] = field(default_factory=dict)
    bits: int = 64


STR = T("str", "string")
BOOL = T("bool", "bool")
I64 = T("int", "int64")
DURATION = T("int", "time.Duration")
U64 = T("uint", "uint64")
U32 = T("uint", "uint32", bits=32)
F32 = T("float", "float32")
ANY = T("any")
STRS = T("list", "[]string", elem=STR)
LABELS = T("map", "map[string]string", elem=STR)


def struct(go: str, **fields: T) -> T:
    return T("struct", go, fields=fields)


_RESOURCES = struct("swarm.Resources", NanoCPUs=I64, MemoryBytes=I64, GenericResources=ANY)
_LIMIT = struct("swarm.Limit", NanoCPUs=I64, MemoryBytes=I64, Pids=I64)
_UPDATE = struct(
    "swarm.UpdateConfig",
    Parallelism=U64,
    Delay=DURATION,
    FailureAction=STR,
    Monitor=DURATION,
    MaxFailureRatio=F32,
    Order=STR,
)
_PORT = struct("swarm.PortConfig", Name=STR, Protocol=STR, TargetPort=U32, PublishedPort=U32, PublishMode=STR)
_CONTAINER = struct(
    "swarm.ContainerSpec",
    Image=STR,
    Labels=LABELS,
    Command=STRS,
    Args=STRS,
    Hostname=STR,
    Env=STRS,
    Dir=STR,
    User=STR,
    Groups=STRS,
    Init=BOOL,
    StopSignal=STR,
    StopGracePeriod=DURATION,
    TTY=BOOL,
    OpenStdin=BOOL,
    ReadOnly=BOOL,
    Hosts=STRS,
    Isolation=STR,
    Mounts=ANY,
    Healthcheck=ANY,
    DNSConfig=ANY,
    Secrets=ANY,
    Configs=ANY,
    Privileges=ANY,
    Sysctls=ANY,
    CapabilityAdd=ANY,
    CapabilityDrop=ANY,
    Ulimits=ANY,
)
SERVICE_SPEC = struct(
    "swarm.ServiceSpec",
    Name=STR,
    Labels=LABELS,
    TaskTemplate=struct(
        "swarm.TaskSpec",
        ContainerSpec=_CONTAINER,
        Resources=struct("swarm.ResourceRequirements", Limits=_LIMIT, Reservations=_RESOURCES),
        RestartPolicy=struct(
            "swarm.RestartPolicy", Condition=STR, Delay=DURATION, MaxAttempts=U64, Window=DURATION
        ),
        Placement=struct(
            "swarm.Placement",
            Constraints=STRS,
            Preferences=T(
                "list",
                "[]swarm.PlacementPreference",
                elem=struct(
                    "swarm.PlacementPreference",
                    Spread=struct("swarm.SpreadOver", SpreadDescriptor=STR),
                ),
            ),
            MaxReplicas=U64,
            Platforms=T("list", "[]swarm.Platform", elem=struct("swarm.Platform", Architecture=STR, OS=STR)),
        ),
        ForceUpdate=U64,
        Runtime=STR,
        LogDriver=ANY,
        Networks=ANY,
        PluginSpec=ANY,
        NetworkAttachmentSpec=ANY,
    ),
    Mode=struct(
        "swarm.ServiceMode",
        Replicated=struct("swarm.ReplicatedService", Replicas=U64),
        Global=struct("swarm.GlobalService"),
        ReplicatedJob=struct("swarm.ReplicatedJob", MaxConcurrent=U64, TotalCompletions=U64),
        GlobalJob=struct("swarm.GlobalJob"),
    ),
    UpdateConfig=_UPDATE,
    RollbackConfig=_UPDATE,
    Networks=ANY,
    EndpointSpec=struct("swarm.EndpointSpec", Mode=STR, Ports=T("list", "[]swarm.PortConfig", elem=_PORT)),
)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "null"


def _short(go: str) -> str:
    return go.rsplit(".", 1)[-1]


class _Mismatch(Exception):
    def __init__(self, what: str, go: str) -> None:
        self.what, self.go = what, go


def _check(value: Any, t: T, path: list[str], owner: list[str]) -> None:
    if value is None or t.kind == "any":
        return
    if t.kind == "str" and not isinstance(value, str):
        raise _Mismatch(_kind(value), t.go)
    if t.kind == "bool" and not isinstance(value, bool):
        raise _Mismatch(_kind(value), t.go)
    if t.kind in ("int", "uint", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Mismatch(_kind(value), t.go)
        if t.kind != "float":
            bad = isinstance(value, float) and not value.is_integer()
            lo, hi = (0, 2**t.bits - 1) if t.kind == "uint" else (-(2**63), 2**63 - 1)
            if bad or not lo <= value <= hi:
                raise _Mismatch(f"number {value}", t.go)
    if t.kind == "list":
        if not isinstance(value, list):
            raise _Mismatch(_kind(value), t.go)
        assert t.elem is not None
        for item in value:
            _check(item, t.elem, path, owner)
    if t.kind == "map":
        if not isinstance(value, dict):
            raise _Mismatch(_kind(value), t.go)
        assert t.elem is not None
        for item in value.values():
            _check(item, t.elem, path, owner)
    if t.kind == "struct":
        if not isinstance(value, dict):
            raise _Mismatch(_kind(value), t.go)
        for key, sub in t.fields.items():
            if key in value:
                path.append(key)
                owner.append(t.go)
                _check(value[key], sub, path, owner)
                owner.pop()
                path.pop()


def _canonical(value: Any, t: T) -> Any:
    """Field names matched as Go matches them (an exact name, else any case: docker-py sends "replicated");
    a later key for the same field wins."""
    if t.kind == "struct" and isinstance(value, dict):
        by_lower = {name.lower(): name for name in t.fields}
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = str(key) if key in t.fields else by_lower.get(str(key).lower(), str(key))
            out[name] = _canonical(item, t.fields[name]) if name in t.fields else item
        return out
    if t.kind == "list" and isinstance(value, list) and t.elem is not None:
        return [_canonical(item, t.elem) for item in value]
    return value


def check_types(body: Any, root: T = SERVICE_SPEC) -> dict[str, Any]:
    """`body` decoded into `root` as Go would (answered with Go's field names); a type mismatch raises
    dockerd's 400."""
    if not isinstance(body, dict):
        raise InvalidParameter(f"json: cannot unmarshal {_kind(body)} into Go value of type {root.go}")
    canonical: dict[str, Any] = _canonical(body, root)
    path: list[str] = []
    owner: list[str] = []
    try:
        _check(canonical, root, path, owner)
    except _Mismatch as m:
        where = f"{_short(owner[-1])}.{'.'.join(path)}"
        raise InvalidParameter(
            f"json: cannot unmarshal {m.what} into Go struct field {where} of type {m.go}"
        ) from None
    return canonical
