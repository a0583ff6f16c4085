"""docker's Go types for `inspect --format`: docker fills the template from Go structs, so a field the daemon
left out prints its zero value (`""`, `0`, `false`, `[]`, `map[]`, `<nil>`), and a name that is not a field of
the type fails; only then does docker retry on the raw JSON with missingkey=error (cli/command/inspect).

SCHEMA maps a Go type to its fields in declaration order, each "GoName[:JSONName] kind": kind is `s`, `i`,
`b`, `[]`, `m`, `ms` (map[string]string: `index` of a missing key is ""), `any`, a struct type name, or
`*` + a struct type name (nil when absent). Field lists follow
moby's api/types (container.InspectResponse, container.Config, container.HostConfig, image.InspectResponse,
volume.Volume, network.Inspect) as of docker 28.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` and `collections.abc` stay off the import path
    from typing import Any


SCHEMA: dict[str, str] = {
    "container.InspectResponse": (
        "ID:Id s|Created s|Path s|Args []|State *container.State|Image s|ResolvConfPath s|HostnamePath s|"
        "HostsPath s|LogPath s|Node *swarm.Node|Name s|RestartCount i|Driver s|Platform s|MountLabel s|"
        "ProcessLabel s|AppArmorProfile s|ExecIDs []|HostConfig *container.HostConfig|"
        "GraphDriver storage.DriverData|SizeRw *int64|SizeRootFs *int64|Mounts []|Config *container.Config|"
        "NetworkSettings *container.NetworkSettings|ImageManifestDescriptor *v1.Descriptor"
    ),
    "container.State": (
        "Status s|Running b|Paused b|Restarting b|OOMKilled b|Dead b|Pid i|ExitCode i|Error s|StartedAt s|"
        "FinishedAt s|Health *container.Health"
    ),
    "container.Health": "Status s|FailingStreak i|Log []",
    "storage.DriverData": "Data m|Name s",
    "container.Config": (
        "Hostname s|Domainname s|User s|AttachStdin b|AttachStdout b|AttachStderr b|ExposedPorts m|Tty b|"
        "OpenStdin b|StdinOnce b|Env []|Cmd []|Healthcheck *container.HealthConfig|ArgsEscaped b|Image s|"
        "Volumes m|WorkingDir s|Entrypoint []|NetworkDisabled b|MacAddress s|OnBuild []|Labels ms|StopSignal s|"
        "StopTimeout *int|Shell []"
    ),
    "container.HealthConfig": "Test []|Interval i|Timeout i|StartPeriod i|StartInterval i|Retries i",
    "container.HostConfig": (
        "Binds []|ContainerIDFile s|LogConfig container.LogConfig|NetworkMode s|PortBindings m|"
        "RestartPolicy container.RestartPolicy|AutoRemove b|VolumeDriver s|VolumesFrom []|ConsoleSize []|"
        "Annotations ms|CapAdd []|CapDrop []|CgroupnsMode s|DNS:Dns []|DNSOptions:DnsOptions []|"
        "DNSSearch:DnsSearch []|ExtraHosts []|GroupAdd []|IpcMode s|Cgroup s|Links []|OomScoreAdj i|PidMode s|"
        "Privileged b|PublishAllPorts b|ReadonlyRootfs b|SecurityOpt []|StorageOpt ms|Tmpfs ms|UTSMode s|"
        "UsernsMode s|ShmSize i|Sysctls ms|Runtime s|Isolation s|CPUShares:CpuShares i|Memory i|"
        "NanoCPUs:NanoCpus i|CgroupParent s|BlkioWeight i|BlkioWeightDevice []|BlkioDeviceReadBps []|"
        "BlkioDeviceWriteBps []|BlkioDeviceReadIOps []|BlkioDeviceWriteIOps []|CPUPeriod:CpuPeriod i|"
        "CPUQuota:CpuQuota i|CPURealtimePeriod:CpuRealtimePeriod i|CPURealtimeRuntime:CpuRealtimeRuntime i|"
        "CpusetCpus s|CpusetMems s|Devices []|DeviceCgroupRules []|DeviceRequests []|KernelMemory i|"
        "KernelMemoryTCP i|MemoryReservation i|MemorySwap i|MemorySwappiness *int64|OomKillDisable *bool|"
        "PidsLimit *int64|Ulimits []|CPUCount:CpuCount i|CPUPercent:CpuPercent i|IOMaximumIOps i|"
        "IOMaximumBandwidth i|Mounts []|MaskedPaths []|ReadonlyPaths []|Init *bool"
    ),
    "container.LogConfig": "Type s|Config ms",
    "container.RestartPolicy": "Name s|MaximumRetryCount i",
    "container.NetworkSettings": (
        "Bridge s|SandboxID s|SandboxKey s|Ports m|HairpinMode b|LinkLocalIPv6Address s|"
        "LinkLocalIPv6PrefixLen i|SecondaryIPAddresses []|SecondaryIPv6Addresses []|EndpointID s|Gateway s|"
        "GlobalIPv6Address s|GlobalIPv6PrefixLen i|IPAddress s|IPPrefixLen i|IPv6Gateway s|MacAddress s|"
        "Networks m"
    ),
    "image.InspectResponse": (
        "ID:Id s|RepoTags []|RepoDigests []|Parent s|Comment s|Created s|Container s|"
        "ContainerConfig *container.Config|DockerVersion s|Author s|Config *dockerspec.DockerOCIImageConfig|Architecture s|"
        "Variant s|Os s|OsVersion s|Size i|VirtualSize i|GraphDriver storage.DriverData|RootFS image.RootFS|"
        "Metadata image.Metadata|Descriptor *v1.Descriptor|Manifests []"
    ),
    # ocispec.ImageConfig and DockerOCIImageConfigExt are embedded in Go (a bare {{.Config}} prints them as
    # two nested structs); gorae flattens them
    "dockerspec.DockerOCIImageConfig": (
        "User s|ExposedPorts m|Env []|Entrypoint []|Cmd []|Volumes m|WorkingDir s|Labels ms|StopSignal s|"
        "ArgsEscaped b|Healthcheck *container.HealthConfig|OnBuild []|Shell []"
    ),
    "image.RootFS": "Type s|Layers []",
    "image.Metadata": "LastTagTime t",
    "volume.Volume": (
        "ClusterVolume *volume.ClusterVolume|CreatedAt s|Driver s|Labels ms|Mountpoint s|Name s|Options ms|"
        "Scope s|Status m|UsageData *volume.UsageData"
    ),
    "network.Inspect": (
        "Name s|ID:Id s|Created t|Scope s|Driver s|EnableIPv4 b|EnableIPv6 b|IPAM network.IPAM|Internal b|"
        "Attachable b|Ingress b|ConfigFrom network.ConfigReference|ConfigOnly b|Containers m|Options ms|"
        "Labels ms|Peers []|Services m"
    ),
    "network.IPAM": "Driver s|Options ms|Config []",
    "network.ConfigReference": "Network s",
}

# structs whose every field is `omitempty` in Go: `json` shows only their fields that are set (docker 28's image
# Config is an OCI image config: {"Cmd":["sh"]}, not the daemon's full container.Config)
OMITEMPTY = frozenset({"dockerspec.DockerOCIImageConfig"})

ROOT = {
    "container": "*container.InspectResponse",
    "image": "*image.InspectResponse",
    "volume": "volume.Volume",  # a struct value (docker's volume inspect), not a pointer
    "network": "*network.Inspect",
}

_PARSED: dict[str, list[tuple[str, str, str]]] = {}


def _fields(go_type: str) -> list[tuple[str, str, str]]:
    got = _PARSED.get(go_type)
    if got is None:
        got = []
        for entry in SCHEMA[go_type].split("|"):
            names, kind = entry.split(" ")
            go_name, _, json_name = names.partition(":")
            got.append((go_name, json_name or go_name, kind))
        _PARSED[go_type] = got
    return got


def field_chain(fmt: str) -> list[str] | None:
    """The field names of a template that is exactly one field chain, `{{.State.Status}}` (ASCII identifiers,
    no spaces): what `typed_string` can answer without the template engine. None for any other template."""
    if not (fmt.startswith("{{.") and fmt.endswith("}}")) or len(fmt) < 6:
        return None
    names = fmt[3:-2].split(".")
    for n in names:
        if not (
            n.isascii()
            and (n[:1].isalpha() or n[:1] == "_")
            and (n.isalnum() or n.replace("_", "x").isalnum())
        ):
            return None
    return names


def typed_string(go_type: str, raw: Any, names: list[str]) -> str | None:
    """What `{{.N1.N2...}}` prints on `typed(go_type, raw)` when it ends on a string field (`s`) reached through
    structs that are there (a missing non-pointer struct is its zero value); None when anything else (a nil
    pointer, a map, a name that is not a field, a value of another kind) needs the template engine. Saves
    loading the engine (~3 ms) for the commonest `inspect -f` templates; a hypothesis test in
    tests/unit/test_gotemplate_golden.py holds it to the engine's answer."""
    t, val = go_type, raw
    last = len(names) - 1
    for i, name in enumerate(names):
        base = t[1:] if t.startswith("*") else t
        if base not in SCHEMA or not isinstance(val, dict):
            return None
        field = next((f for f in _fields(base) if f[0] == name), None)
        if field is None:
            return None
        _, json_name, kind = field
        v = val.get(json_name)
        if i == last:
            if kind != "s":
                return None
            return "" if v is None else v if isinstance(v, str) else None
        sub = kind[1:] if kind.startswith("*") else kind
        if sub not in SCHEMA:
            return None
        if v is None:
            if kind.startswith("*"):
                return None  # a nil pointer: Go's template fails, docker retries on the raw JSON
            v = {}
        t, val = sub, v
    return None


def go_time_string(value: str) -> str:
    """Go's time.Time.String() for an RFC 3339 timestamp from the daemon (UTC offsets shown as docker's
    client sees them: "+0000 UTC")."""
    import re

    m = re.fullmatch(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", value or "")
    if not m:
        return value
    frac = (m.group(3) or "").rstrip("0")
    frac = "" if frac == "." else frac
    zone = (
        "+0000 UTC"
        if m.group(4) in ("Z", "+00:00")
        else m.group(4).replace(":", "") + " " + m.group(4).replace(":", "")
    )
    return f"{m.group(1)} {m.group(2)}{frac} {zone}"


def _zero(kind: str) -> Any:
    from gorae.gotemplate.values import GoNil, NilMap, NilSlice, NilStringMap

    if kind == "s":
        return ""
    if kind == "t":
        return "0001-01-01 00:00:00 +0000 UTC"
    if kind == "i":
        return 0
    if kind == "b":
        return False
    if kind == "[]":  # nil: `[]` when printed, null in `json` (as Go's)
        return NilSlice()
    if kind == "m":
        return NilMap()
    if kind == "ms":
        return NilStringMap()
    if kind.startswith("*"):
        return GoNil(kind)
    if kind in SCHEMA:
        return typed(kind, {})
    return None


def typed(go_type: str, raw: Any) -> Any:
    """The Go value docker's template sees for `raw` (decoded JSON) of type `go_type`."""
    from gorae.gotemplate.values import GoNil, GoStruct, StringMap

    pointer = go_type.startswith("*")
    base = go_type[1:] if pointer else go_type
    if base not in SCHEMA:
        return raw
    if raw is None:
        return GoNil(go_type) if pointer else typed(base, {})
    if not isinstance(raw, dict):
        return raw
    fields: dict[str, Any] = {}
    view: dict[str, Any] = {}  # what `json` prints: the daemon's keys in Go's field order
    for go_name, json_name, kind in _fields(base):
        if json_name in raw and raw[json_name] is not None:
            val = raw[json_name]
            sub = kind[1:] if kind.startswith("*") else kind
            fields[go_name] = typed(kind, val) if sub in SCHEMA else val
            if kind == "ms" and isinstance(val, dict):
                fields[go_name] = StringMap(val)
            if kind == "t" and isinstance(val, str):
                fields[go_name] = go_time_string(val)
                view[json_name] = val
                continue
            view[json_name] = fields[go_name]
        else:
            fields[go_name] = _zero(kind)
            if json_name in raw:
                view[json_name] = None
    if base in OMITEMPTY:
        view = {j: raw[j] for _, j, _ in _fields(base) if raw.get(j) not in (None, "", [], {}, False, 0)}
        return GoStruct(go_type, fields, view)
    for k, val in raw.items():
        view.setdefault(k, val)
    return GoStruct(go_type, fields, view)
