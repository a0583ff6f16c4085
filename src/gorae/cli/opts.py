"""Converting docker's flag values into Engine API fields: sizes, cpus, ports, volumes, mounts, ulimits,
env and label files, restart policies, filters, durations and timestamps."""

from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}


class OptError(ValueError):
    """A flag value that does not parse; the message is docker's."""


class FlagValueError(OptError):
    """A value pflag itself refuses (a typed flag's Set failed): docker prints it bare, then the usage line."""


def ram_in_bytes(s: str) -> int:
    """docker's RAMInBytes: "512m", "1g", "100k", "1024", "1.5GiB" (binary units); go-units' errors: a
    number followed by an unknown unit is "invalid suffix", anything else "invalid size"."""
    import re

    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtTpP]?)(?:[iI]?[bB])?\s*", s)
    if not m:
        num = re.match(r"\s*\d+(?:\.\d+)?", s)
        if num and s[num.end() :].strip():
            raise OptError(f"invalid suffix: '{s[num.end():].strip()}'")
        raise OptError(f"invalid size: '{s}'")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def flag_bytes(s: str, shown: str) -> int:
    """A MemBytes flag's value (`-m`, `--shm-size`, ...): pflag's wording around RAMInBytes' error."""
    try:
        return ram_in_bytes(s)
    except OptError as e:
        raise FlagValueError(f'invalid argument "{s}" for "{shown}" flag: {e}') from None


def nano_cpus(s: str) -> int:
    try:
        v = float(s)
    except ValueError:
        raise FlagValueError(
            f'invalid argument "{s}" for "--cpus" flag: failed to parse {s} as a rational number'
        ) from None
    return int(round(v * 1e9))


def parse_env_list(values: list[str], environ: Mapping[str, str] | None = None) -> list[str]:
    """`K=V` kept; bare `K` takes the local value, or is dropped when unset (docker's rule)."""
    if environ is None:
        import os

        environ = os.environ
    env = environ
    out = []
    for v in values:
        if "=" in v:
            if v.startswith("="):
                raise OptError(f"invalid environment variable: {v}")
            out.append(v)
        elif v in env:
            out.append(f"{v}={env[v]}")
    return out


def read_kv_file(path: str, *, env: bool) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise OptError(f"open {path}: {e.strerror.lower() if e.strerror else e}") from None
    out = []
    for line in lines:
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        if env and "=" not in line:
            import os

            if line in os.environ:
                out.append(f"{line}={os.environ[line]}")
            continue
        out.append(line)
    return out


def labels_map(values: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        k, _, val = v.partition("=")
        out[k] = val
    return out


def parse_ulimit(s: str) -> dict[str, Any]:
    name, eq, limits = s.partition("=")
    if not eq:
        raise OptError(f"invalid ulimit argument: {s}")
    soft, _, hard = limits.partition(":")
    try:
        return {"Name": name, "Soft": int(soft), "Hard": int(hard or soft)}
    except ValueError:
        raise OptError(f"invalid ulimit argument: {s}") from None


def parse_restart(s: str) -> dict[str, Any]:
    name, _, count = s.partition(":")
    if name not in ("", "no", "always", "unless-stopped", "on-failure"):
        raise OptError(f"invalid restart policy format: {s}")
    if count and name != "on-failure":
        raise OptError(
            "invalid restart policy format: maximum retry count can only be used with 'on-failure'"
        )
    try:
        n = int(count) if count else 0
    except ValueError:
        raise OptError("invalid restart policy format: maximum retry count must be an integer") from None
    return {"Name": "" if name == "" else name, "MaximumRetryCount": n}


def _port_range(s: str, what: str = "containerPort") -> list[int]:
    """go-connections' ParsePortRange: numbers of 16 bits ("invalid hostPort: 99999" as docker words it)."""
    if not s:
        return []
    a, _, b = s.partition("-")
    try:
        lo, hi = int(a), int(b or a)
    except ValueError:
        raise OptError(f"invalid {what}: {s}") from None
    if not (0 <= lo <= 65535 and 0 <= hi <= 65535):
        raise OptError(f"invalid {what}: {s}")
    if lo > hi:
        raise OptError(f"invalid port range: {s}")
    return list(range(lo, hi + 1))


def parse_ports(
    values: list[str], expose: list[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, str]]]]:
    """-p [ip:][hostPort:]containerPort[/proto] and --expose → (ExposedPorts, PortBindings)."""
    exposed: dict[str, dict[str, Any]] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for v in values:
        spec, _, proto = v.partition("/")
        proto = proto or "tcp"
        if spec.startswith("["):  # [v6]:host:ctr
            ip, _, rest = spec[1:].partition("]")
            rest = rest.lstrip(":")
            parts = [ip] + rest.split(":")
        else:
            parts = spec.split(":")
        if len(parts) == 1:
            ip, host, ctr = "", "", parts[0]
        elif len(parts) == 2:
            ip, host, ctr = "", parts[0], parts[1]
        elif len(parts) == 3:
            ip, host, ctr = parts
        else:
            raise OptError(f"invalid port format for --publish: {v}")
        if not ctr:
            raise OptError(f"no port specified: {v}<empty>")
        cports = _port_range(ctr)
        hports = _port_range(host, "hostPort")
        if hports and len(hports) != len(cports) and len(cports) != 1:
            raise OptError(f"invalid ranges specified for container and host Ports: {ctr} and {host}")
        for i, cp in enumerate(cports):
            key = f"{cp}/{proto}"
            exposed[key] = {}
            hp = (str(hports[i]) if len(hports) == len(cports) else host) if hports else ""
            bindings.setdefault(key, []).append({"HostIp": ip, "HostPort": hp})
    for e in expose:
        spec, _, proto = e.partition("/")
        for cp in _port_range(spec):
            exposed[f"{cp}/{proto or 'tcp'}"] = {}
    return exposed, bindings


def parse_volumes(values: list[str]) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """-v → (Binds, anonymous Volumes) as docker splits them."""
    binds: list[str] = []
    vols: dict[str, dict[str, Any]] = {}
    for v in values:
        # the docker CLI's own checks (loader.ParseVolume); the rest is the daemon's to judge
        if not v:
            raise OptError("invalid empty volume spec")
        parts = v.split(":")
        if parts[0] == "" and len(parts) > 1:
            raise OptError(f"invalid spec: {v}: empty section between colons")
        if len(parts) > 3:
            raise OptError(f"invalid spec: {v}: too many colons")
        if len(parts) == 1:
            vols[v] = {}
        else:
            binds.append(v)
    return binds, vols


def parse_mount(s: str) -> dict[str, Any]:
    """--mount type=bind,source=/a,target=/b,readonly → a Mounts entry."""
    m: dict[str, Any] = {"Type": "volume"}
    for field in s.split(","):
        k, eq, v = field.partition("=")
        k = k.strip().lower()
        if k == "type":
            m["Type"] = v
        elif k in ("source", "src"):
            m["Source"] = v
        elif k in ("target", "destination", "dst"):
            m["Target"] = v
        elif k in ("readonly", "ro"):
            m["ReadOnly"] = (v or "true").lower() in ("1", "true")
        elif k == "consistency":
            m["Consistency"] = v
        elif k == "bind-propagation":
            m.setdefault("BindOptions", {})["Propagation"] = v
        elif k == "volume-nocopy":
            m.setdefault("VolumeOptions", {})["NoCopy"] = (v or "true").lower() in ("1", "true")
        elif k == "volume-label":
            lk, _, lv = v.partition("=")
            m.setdefault("VolumeOptions", {}).setdefault("Labels", {})[lk] = lv
        elif k == "volume-driver":
            m.setdefault("VolumeOptions", {}).setdefault("DriverConfig", {})["Name"] = v
        elif k == "tmpfs-size":
            m.setdefault("TmpfsOptions", {})["SizeBytes"] = ram_in_bytes(v)
        elif k == "tmpfs-mode":
            m.setdefault("TmpfsOptions", {})["Mode"] = int(v, 8)
        else:
            raise OptError(
                f"invalid argument \"{s}\" for \"--mount\" flag: unexpected key '{k}' in '{field}'"
            )
    if "Target" not in m:
        raise OptError(f'invalid argument "{s}" for "--mount" flag: target is required')
    return m


def parse_filters(values: list[str]) -> dict[str, dict[str, bool]]:
    """-f key=value (repeatable) → the API's filters JSON."""
    out: dict[str, dict[str, bool]] = {}
    for v in values:
        k, eq, val = v.partition("=")
        if not eq:
            raise OptError("bad format of filter (expected name=value)")
        out.setdefault(k.strip().lower() if k.strip().lower() in ("status", "id", "name") else k.strip(), {})[
            val
        ] = True
    return out


_DUR_RE = r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)"
_DUR_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def parse_duration(s: str) -> float:
    """Go duration ("10s", "1h30m", "250ms") → seconds."""
    s = s.strip()
    if not s:
        raise OptError("invalid duration")
    pos, total = 0, 0.0
    import re

    for m in re.finditer(_DUR_RE, s):
        if m.start() != pos:
            raise OptError(f'time: invalid duration "{s}"')
        total += float(m.group(1)) * _DUR_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s):
        if s == "0":
            return 0.0
        raise OptError(f'time: invalid duration "{s}"')
    return total


def parse_timestamp(s: str, now: float | None = None) -> str:
    """docker's --since/--until: a unix timestamp, an RFC 3339 date, or a duration before now → "secs.nanos"."""
    now = time.time() if now is None else now
    import re

    if re.fullmatch(r"\d+(\.\d+)?", s):
        return s
    try:
        return f"{now - parse_duration(s):.9f}"
    except OptError:
        pass
    from datetime import UTC, datetime

    txt = s.replace("Z", "+00:00")
    for fmt in (None, "%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"):
        try:
            dt = datetime.fromisoformat(txt) if fmt is None else datetime.strptime(txt, fmt)
        except ValueError:
            continue
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC) if fmt is None and "+" in txt else dt.astimezone()
        return f"{dt.timestamp():.9f}"
    raise OptError(f'failed to parse value as time or duration: "{s}"')
