"""The Go types of the JSON bodies the Engine API decodes (container create and update, volume and network
create), and the check dockerd's JSON decoder makes against them.

Owns `check_body`: a wrongly typed field at any depth, an integer out of its Go type's range or a fraction
where an integer belongs is an InvalidParameter (400) worded as Go's `json.UnmarshalTypeError` is
("json: cannot unmarshal bool into Go struct field LogConfig.HostConfig.LogConfig.Config of type
map[string]string"), so no later code sees a value of a type it does not expect. Unknown fields are
ignored and `null` leaves the zero value, as in Go. Pure: the schemas are data, the walk is bounded by them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gorae.errors import InvalidParameter


@dataclass(frozen=True)
class Struct:
    """A Go struct: `name` as the decoder names it in errors, `go` as its type prints."""

    name: str
    go: str
    fields: dict[str, GoType]


@dataclass(frozen=True)
class Slice:
    elem: GoType
    size: int | None = None  # a Go array [n]T


@dataclass(frozen=True)
class Map:
    elem: GoType
    key: str = "string"


GoType = str | Struct | Slice | Map
"""A scalar is its Go name: string, bool, int, int64, uint16, uint32, uint64, float64; "any" is
interface{} (not checked), "strslice" a string or a list of strings, "struct {}" any object."""

_RANGES = {
    "int": (-(2**63), 2**63 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint": (0, 2**64 - 1),
    "uint16": (0, 2**16 - 1),
    "uint32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1),
}

S, B, INT, I64 = "string", "bool", "int", "int64"
STRINGS = Slice(S)
STRMAP = Map(S)

_DEVICE = Struct(
    "DeviceMapping",
    "container.DeviceMapping",
    {"PathOnHost": S, "PathInContainer": S, "CgroupPermissions": S},
)
_WEIGHT_DEVICE = Struct("WeightDevice", "blkiodev.WeightDevice", {"Path": S, "Weight": "uint16"})
_THROTTLE_DEVICE = Struct("ThrottleDevice", "blkiodev.ThrottleDevice", {"Path": S, "Rate": "uint64"})
_ULIMIT = Struct("Ulimit", "units.Ulimit", {"Name": S, "Hard": I64, "Soft": I64})
_DEVICE_REQUEST = Struct(
    "DeviceRequest",
    "container.DeviceRequest",
    {"Driver": S, "Count": INT, "DeviceIDs": STRINGS, "Capabilities": Slice(STRINGS), "Options": STRMAP},
)
_MOUNT = Struct(
    "Mount",
    "mount.Mount",
    {
        "Type": S,
        "Source": S,
        "Target": S,
        "ReadOnly": B,
        "Consistency": S,
        "BindOptions": Struct(
            "BindOptions",
            "mount.BindOptions",
            {
                "Propagation": S,
                "NonRecursive": B,
                "CreateMountpoint": B,
                "ReadOnlyNonRecursive": B,
                "ReadOnlyForceRecursive": B,
            },
        ),
        "VolumeOptions": Struct(
            "VolumeOptions",
            "mount.VolumeOptions",
            {
                "NoCopy": B,
                "Labels": STRMAP,
                "Subpath": S,
                "DriverConfig": Struct("Driver", "mount.Driver", {"Name": S, "Options": STRMAP}),
            },
        ),
        "TmpfsOptions": Struct(
            "TmpfsOptions",
            "mount.TmpfsOptions",
            {"SizeBytes": I64, "Mode": "uint32", "Options": Slice(STRINGS)},
        ),
    },
)
_PORT_BINDING = Struct("PortBinding", "nat.PortBinding", {"HostIp": S, "HostPort": S})

RESOURCES: dict[str, GoType] = {
    "CpuShares": I64,
    "Memory": I64,
    "NanoCpus": I64,
    "CgroupParent": S,
    "BlkioWeight": "uint16",
    "BlkioWeightDevice": Slice(_WEIGHT_DEVICE),
    "BlkioDeviceReadBps": Slice(_THROTTLE_DEVICE),
    "BlkioDeviceWriteBps": Slice(_THROTTLE_DEVICE),
    "BlkioDeviceReadIOps": Slice(_THROTTLE_DEVICE),
    "BlkioDeviceWriteIOps": Slice(_THROTTLE_DEVICE),
    "CpuPeriod": I64,
    "CpuQuota": I64,
    "CpuRealtimePeriod": I64,
    "CpuRealtimeRuntime": I64,
    "CpusetCpus": S,
    "CpusetMems": S,
    "Devices": Slice(_DEVICE),
    "DeviceCgroupRules": STRINGS,
    "DeviceRequests": Slice(_DEVICE_REQUEST),
    "KernelMemory": I64,
    "KernelMemoryTCP": I64,
    "MemoryReservation": I64,
    "MemorySwap": I64,
    "MemorySwappiness": I64,
    "OomKillDisable": B,
    "PidsLimit": I64,
    "Ulimits": Slice(_ULIMIT),
    "CpuCount": I64,
    "CpuPercent": I64,
    "IOMaximumIOps": "uint64",
    "IOMaximumBandwidth": "uint64",
}
RESTART_POLICY = Struct("RestartPolicy", "container.RestartPolicy", {"Name": S, "MaximumRetryCount": INT})

HOST_CONFIG = Struct(
    "HostConfig",
    "container.HostConfig",
    {
        "Binds": STRINGS,
        "ContainerIDFile": S,
        "LogConfig": Struct("LogConfig", "container.LogConfig", {"Type": S, "Config": STRMAP}),
        "NetworkMode": S,
        "PortBindings": Map(Slice(_PORT_BINDING), key="nat.Port"),
        "RestartPolicy": RESTART_POLICY,
        "AutoRemove": B,
        "VolumeDriver": S,
        "VolumesFrom": STRINGS,
        "ConsoleSize": Slice("uint", size=2),
        "Annotations": STRMAP,
        "CapAdd": "strslice",
        "CapDrop": "strslice",
        "CgroupnsMode": S,
        "Dns": STRINGS,
        "DnsOptions": STRINGS,
        "DnsSearch": STRINGS,
        "ExtraHosts": STRINGS,
        "GroupAdd": STRINGS,
        "IpcMode": S,
        "Cgroup": S,
        "Links": STRINGS,
        "OomScoreAdj": INT,
        "PidMode": S,
        "Privileged": B,
        "PublishAllPorts": B,
        "ReadonlyRootfs": B,
        "SecurityOpt": STRINGS,
        "StorageOpt": STRMAP,
        "Tmpfs": STRMAP,
        "UTSMode": S,
        "UsernsMode": S,
        "ShmSize": I64,
        "Sysctls": STRMAP,
        "Runtime": S,
        "Isolation": S,
        **RESOURCES,
        "Mounts": Slice(_MOUNT),
        "MaskedPaths": STRINGS,
        "ReadonlyPaths": STRINGS,
        "Init": B,
    },
)
UPDATE_CONFIG = Struct(
    "UpdateConfig", "container.UpdateConfig", {**RESOURCES, "RestartPolicy": RESTART_POLICY}
)

_ENDPOINT = Struct(
    "EndpointSettings",
    "network.EndpointSettings",
    {
        "IPAMConfig": Struct(
            "EndpointIPAMConfig",
            "network.EndpointIPAMConfig",
            {"IPv4Address": S, "IPv6Address": S, "LinkLocalIPs": STRINGS},
        ),
        "Links": STRINGS,
        "Aliases": STRINGS,
        "MacAddress": S,
        "DriverOpts": STRMAP,
        "NetworkID": S,
        "EndpointID": S,
        "Gateway": S,
        "IPAddress": S,
        "IPPrefixLen": INT,
        "IPv6Gateway": S,
        "GlobalIPv6Address": S,
        "GlobalIPv6PrefixLen": INT,
        "DNSNames": STRINGS,
    },
)
NETWORKING_CONFIG = Struct(
    "NetworkingConfig", "network.NetworkingConfig", {"EndpointsConfig": Map(_ENDPOINT)}
)
HEALTHCHECK = Struct(
    "HealthConfig",
    "container.HealthConfig",
    {
        "Test": STRINGS,
        "Interval": I64,
        "Timeout": I64,
        "StartPeriod": I64,
        "StartInterval": I64,
        "Retries": INT,
    },
)
CONFIG_FIELDS: dict[str, GoType] = {
    "Hostname": S,
    "Domainname": S,
    "User": S,
    "AttachStdin": B,
    "AttachStdout": B,
    "AttachStderr": B,
    "ExposedPorts": Map("struct {}", key="nat.Port"),
    "Tty": B,
    "OpenStdin": B,
    "StdinOnce": B,
    "Env": STRINGS,
    "Cmd": "strslice",
    "Healthcheck": HEALTHCHECK,
    "ArgsEscaped": B,
    "Image": S,
    "Volumes": Map("struct {}"),
    "WorkingDir": S,
    "Entrypoint": "strslice",
    "NetworkDisabled": B,
    "MacAddress": S,
    "OnBuild": STRINGS,
    "Labels": STRMAP,
    "StopSignal": S,
    "StopTimeout": INT,
    "Shell": STRINGS,
}
CREATE_BODY = Struct(
    "ContainerConfigWrapper",
    "container.CreateRequest",
    {**CONFIG_FIELDS, "HostConfig": HOST_CONFIG, "NetworkingConfig": NETWORKING_CONFIG},
)

VOLUME_CREATE = Struct(
    "CreateOptions",
    "volume.CreateOptions",
    {"Name": S, "Driver": S, "DriverOpts": STRMAP, "Labels": STRMAP, "ClusterVolumeSpec": "any"},
)
_IPAM_CONFIG = Struct(
    "IPAMConfig",
    "network.IPAMConfig",
    {"Subnet": S, "IPRange": S, "Gateway": S, "AuxiliaryAddresses": STRMAP},
)
NETWORK_CREATE = Struct(
    "NetworkCreateRequest",
    "types.NetworkCreateRequest",
    {
        "Name": S,
        "CheckDuplicate": B,
        "Driver": S,
        "Scope": S,
        "EnableIPv4": B,
        "EnableIPv6": B,
        "IPAM": Struct(
            "IPAM", "network.IPAM", {"Driver": S, "Options": STRMAP, "Config": Slice(_IPAM_CONFIG)}
        ),
        "Internal": B,
        "Attachable": B,
        "Ingress": B,
        "ConfigOnly": B,
        "ConfigFrom": Struct("ConfigReference", "network.ConfigReference", {"Network": S}),
        "Options": STRMAP,
        "Labels": STRMAP,
    },
)
NETWORK_CONNECT = Struct(
    "NetworkConnect", "types.NetworkConnect", {"Container": S, "EndpointConfig": _ENDPOINT}
)


def go_name(t: GoType) -> str:
    """How Go prints the type in a decoding error."""
    if isinstance(t, str):
        return {"strslice": "strslice.StrSlice", "any": "interface {}"}.get(t, t)
    if isinstance(t, Struct):
        return t.go
    if isinstance(t, Slice):
        return f"[{t.size if t.size is not None else ''}]{go_name(t.elem)}"
    return f"map[{t.key}]{go_name(t.elem)}"


def json_kind(value: Any) -> str:
    """The JSON kind of a value, as Go's decoder words it."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "null"


def check_body(doc: Any, schema: Struct, prefix: str = "") -> None:
    """InvalidParameter if `doc` does not decode into `schema` (a JSON object is required at the top)."""
    if not isinstance(doc, dict):
        raise InvalidParameter(f"json: cannot unmarshal {json_kind(doc)} into Go value of type {schema.go}")
    _struct(doc, schema, prefix)


def _struct(doc: dict[str, Any], schema: Struct, path: str) -> None:
    for key, kind in schema.fields.items():
        if key in doc:
            _value(doc[key], kind, schema.name, f"{path}.{key}" if path else key)


def _fail(value: Any, kind: GoType, struct: str, path: str, number: bool = False) -> InvalidParameter:
    what = f"number {_number_text(value)}" if number else json_kind(value)
    return InvalidParameter(
        f"json: cannot unmarshal {what} into Go struct field {struct}.{path} of type {go_name(kind)}"
    )


def _number_text(value: Any) -> str:
    return str(value) if isinstance(value, int) else repr(value)


def _value(value: Any, kind: GoType, struct: str, path: str) -> None:
    if value is None or kind == "any":
        return
    if isinstance(kind, str):
        _scalar(value, kind, struct, path)
    elif isinstance(kind, Struct):
        if not isinstance(value, dict):
            raise _fail(value, kind, struct, path)
        _struct(value, kind, path)
    elif isinstance(kind, Slice):
        if not isinstance(value, list) or (kind.size is not None and len(value) > kind.size):
            raise _fail(value, kind, struct, path)
        for item in value:
            _value(item, kind.elem, struct, path)
    else:
        if not isinstance(value, dict):
            raise _fail(value, kind, struct, path)
        for item in value.values():
            _value(item, kind.elem, struct, path)


def _scalar(value: Any, kind: str, struct: str, path: str) -> None:
    if kind == "strslice":
        if isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            return
        raise _fail(value, kind, struct, path)
    if kind == "struct {}":
        if not isinstance(value, dict):
            raise _fail(value, kind, struct, path)
        return
    if kind == "string":
        ok = isinstance(value, str)
    elif kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "float64":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(value, kind, struct, path)
        low, high = _RANGES[kind]
        if not isinstance(value, int) or not low <= value <= high:
            raise _fail(value, kind, struct, path, number=True)
        return
    if not ok:
        raise _fail(value, kind, struct, path)
