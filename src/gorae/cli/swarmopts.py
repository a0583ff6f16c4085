"""Parsing the swarm commands' flag values as the docker CLI does (opts/mount.go, opts/swarmopts/*.go,
service/opts.go): `--mount`, `--publish`, `--secret`, `--config`, `--placement-pref`, Go durations,
unsigned integers, CPU counts and byte sizes. Each parser returns the Engine API JSON (Go field names) or
raises `OptError` with the docker CLI's message (shown after `invalid argument "V" for "--flag" flag: `)."""

from __future__ import annotations

import csv
import re
from typing import Any

from gorae.cli.opts import OptError

_NUM = re.compile(r"[0-9]*(?:\.[0-9]*)?")
_UNIT = re.compile(r"[^0-9.]*")
_DUR_NS = {
    "ns": 1,
    "us": 1000,
    "µs": 1000,
    "μs": 1000,
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}


def go_duration_ns(s: str) -> int:
    """Go's time.ParseDuration in nanoseconds ("1h30m", "250ms", "-5s", "0"), Go's error texts."""
    orig, neg = s, False
    if s and s[0] in "+-":
        neg, s = s[0] == "-", s[1:]
    if s == "0":
        return 0
    if not s:
        raise OptError(f'time: invalid duration "{orig}"')
    total = 0.0
    while s:
        num = _NUM.match(s).group(0)  # type: ignore[union-attr]
        if num in ("", "."):
            raise OptError(f'time: invalid duration "{orig}"')
        s = s[len(num) :]
        unit = _UNIT.match(s).group(0)  # type: ignore[union-attr]
        if not unit:
            raise OptError(f'time: missing unit in duration "{orig}"')
        if unit not in _DUR_NS:
            raise OptError(f'time: unknown unit "{unit}" in duration "{orig}"')
        total += float(num) * _DUR_NS[unit]
        s = s[len(unit) :]
    ns = int(round(total))
    return -ns if neg else ns


def format_go_duration(ns: int) -> str:
    """Go's time.Duration.String(): "1h30m0s", "5s", "250ms", "1.5s", "0s"."""
    if ns == 0:
        return "0s"
    neg = ns < 0
    u = -ns if neg else ns
    if u < 10**9:
        for unit, div in (("ns", 1), ("µs", 1000), ("ms", 10**6)):
            if u < div * 1000:
                out = _frac(u, div) + unit
                break
    else:
        h, rem = divmod(u, 3600 * 10**9)
        m, rem = divmod(rem, 60 * 10**9)
        out = _frac(rem, 10**9) + "s"
        if h or m:
            out = f"{m}m" + out
        if h:
            out = f"{h}h" + out
    return ("-" if neg else "") + out


def _frac(v: int, div: int) -> str:
    whole, frac = divmod(v, div)
    if not frac:
        return str(whole)
    digits = str(frac).rjust(len(str(div)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


class GoDuration:
    """A time.Duration inside a template: prints as Go does ("5s")."""

    def __init__(self, ns: int) -> None:
        self.ns = int(ns)

    def __str__(self) -> str:
        return format_go_duration(self.ns)

    __repr__ = __str__


def parse_uint(s: str, bits: int = 64, base: int = 0) -> int:
    """strconv.ParseUint, with its error texts (pflag's uint flags use base 0)."""
    t = s
    if base == 0:
        if re.fullmatch(r"0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO]?[0-7_]+|[1-9][0-9_]*|0", t):
            try:
                v = (
                    int(t.replace("_", ""), 0)
                    if not re.fullmatch(r"0[0-7_]+", t)
                    else int(t.replace("_", ""), 8)
                )
            except ValueError:
                raise OptError(f'strconv.ParseUint: parsing "{s}": invalid syntax') from None
        else:
            raise OptError(f'strconv.ParseUint: parsing "{s}": invalid syntax')
    else:
        if not t or not all(
            c in "0123456789abcdefABCDEF"[: base if base <= 10 else base + (base - 10)] for c in t
        ):
            raise OptError(f'strconv.ParseUint: parsing "{s}": invalid syntax')
        v = int(t, base)
    if v >= 1 << bits:
        raise OptError(f'strconv.ParseUint: parsing "{s}": value out of range')
    return v


def parse_int(s: str) -> int:
    """strconv.ParseInt(s, 0, 64) as pflag's int flags."""
    neg = s.startswith("-")
    body = s[1:] if s[:1] in "+-" else s
    try:
        v = parse_uint(body, 63)
    except OptError:
        raise OptError(f'strconv.ParseInt: parsing "{s}": invalid syntax') from None
    return -v if neg else v


def parse_nano_cpus(s: str) -> int:
    """opts.NanoCPUs: a decimal number of CPUs → nano CPUs."""
    from fractions import Fraction

    try:
        f = Fraction(s)
    except (ValueError, ZeroDivisionError):
        raise OptError(f"failed to parse {s} as a rational number") from None
    nano = f * 10**9
    if nano.denominator != 1:
        raise OptError("value is too precise")
    return int(nano)


def parse_mem_bytes(s: str) -> int:
    """opts.MemBytes: units.RAMInBytes."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kKmMgGtTpP]?)[iI]?[bB]?", s)
    if not m:
        raise OptError(f"invalid size: '{s}'")
    mult = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}[m.group(2).lower()]
    return int(float(m.group(1)) * mult)


def _csv_fields(value: str) -> list[str]:
    """encoding/csv's first record of `value` (quotes allowed)."""
    try:
        rows = list(csv.reader([value], strict=True))
    except csv.Error as e:
        raise OptError(f"parse error on line 1: {e}") from None
    return rows[0] if rows else []


def _parse_bool(v: str) -> bool | None:
    if v in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if v in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    return None


def parse_mount(value: str) -> dict[str, Any]:
    """`--mount type=…,source=…,target=…,…` → a mount.Mount (opts/mount.go)."""
    import os

    m: dict[str, Any] = {"Type": "volume"}
    vol: dict[str, Any] | None = None
    bind: dict[str, Any] | None = None
    tmpfs: dict[str, Any] | None = None

    def volume_opts() -> dict[str, Any]:
        nonlocal vol
        if vol is None:
            vol = {"Labels": {}, "DriverConfig": {}}
        return vol

    def bind_opts() -> dict[str, Any]:
        nonlocal bind
        if bind is None:
            bind = {}
        return bind

    def tmpfs_opts() -> dict[str, Any]:
        nonlocal tmpfs
        if tmpfs is None:
            tmpfs = {}
        return tmpfs

    for field in _csv_fields(value):
        key, eq, val = field.partition("=")
        key = key.lower()
        if not eq:
            if key in ("readonly", "ro"):
                m["ReadOnly"] = True
            elif key == "volume-nocopy":
                volume_opts()["NoCopy"] = True
            elif key == "bind-nonrecursive":
                bind_opts()["NonRecursive"] = True
            else:
                raise OptError(f"invalid field '{field}' must be a key=value pair")
            continue
        if key == "type":
            m["Type"] = val.lower()
        elif key in ("source", "src"):
            m["Source"] = os.path.abspath(val) if not val.startswith("/") and val.startswith(".") else val
        elif key in ("target", "dst", "destination"):
            m["Target"] = val
        elif key in ("readonly", "ro"):
            b = _parse_bool(val)
            if b is None:
                raise OptError(f"invalid value for {key}: {val}")
            m["ReadOnly"] = b
        elif key == "consistency":
            m["Consistency"] = val.lower()
        elif key == "bind-propagation":
            bind_opts()["Propagation"] = val.lower()
        elif key == "bind-nonrecursive":
            b = _parse_bool(val)
            if b is None:
                raise OptError(f"invalid value for {key}: {val}")
            bind_opts()["NonRecursive"] = b
        elif key == "bind-recursive":
            if val == "disabled":
                bind_opts()["NonRecursive"] = True
            elif val == "writable":
                bind_opts()["ReadOnlyNonRecursive"] = True
            elif val == "readonly":
                bind_opts()["ReadOnlyForceRecursive"] = True
            elif val != "enabled":
                raise OptError(
                    f'invalid value for {key}: {val} (must be "enabled", "disabled", "writable", or "readonly")'
                )
        elif key == "volume-subpath":
            volume_opts()["Subpath"] = val
        elif key == "volume-nocopy":
            b = _parse_bool(val)
            if b is None:
                raise OptError(f"invalid value for volume-nocopy: {val}")
            volume_opts()["NoCopy"] = b
        elif key == "volume-label":
            k, _, v = val.partition("=")
            if k:
                volume_opts()["Labels"][k] = v
        elif key == "volume-driver":
            volume_opts()["DriverConfig"]["Name"] = val
        elif key == "volume-opt":
            k, _, v = val.partition("=")
            o = volume_opts()["DriverConfig"].setdefault("Options", {})
            if k:
                o[k] = v
        elif key == "tmpfs-size":
            try:
                tmpfs_opts()["SizeBytes"] = parse_mem_bytes(val)
            except OptError:
                raise OptError(f"invalid value for {key}: {val}") from None
        elif key == "tmpfs-mode":
            try:
                tmpfs_opts()["Mode"] = parse_uint(val, 32, 8)
            except OptError:
                raise OptError(f"invalid value for {key}: {val}") from None
        else:
            raise OptError(f"unexpected key '{key}' in '{field}'")
    if not m["Type"]:
        raise OptError("type is required")
    if not m.get("Target"):
        raise OptError("target is required")
    for opts, typ, prefix in ((vol, "volume", "volume"), (bind, "bind", "bind"), (tmpfs, "tmpfs", "tmpfs")):
        if opts is not None and m["Type"] != typ:
            raise OptError(f"cannot mix '{prefix}-*' options with mount type '{m['Type']}'")
    if bind is not None:
        if bind.get("ReadOnlyNonRecursive") and not m.get("ReadOnly"):
            raise OptError(
                "option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction"
            )
        if bind.get("ReadOnlyForceRecursive"):
            if not m.get("ReadOnly"):
                raise OptError(
                    "option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction"
                )
            if bind.get("Propagation") != "rprivate":
                raise OptError(
                    "option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in conjunction"
                )
        m["BindOptions"] = bind
    if vol is not None:
        if not vol["DriverConfig"]:
            vol["DriverConfig"] = {}
        m["VolumeOptions"] = vol
    if tmpfs is not None:
        m["TmpfsOptions"] = tmpfs
    return m


_LONG_PORT = re.compile(r"\w+=\w+(,\w+=\w+)*")


def _port_num(kind: str, val: str) -> int:
    if not val.isdigit() or not val.isascii():
        raise OptError(f"invalid {kind} port ({val}): value must be an integer: invalid syntax")
    n = int(val)
    if n > 65535:
        raise OptError(f"invalid {kind} port ({val}): value must be an integer: value out of range")
    return n


def _nat_range(s: str, what: str) -> tuple[int, int]:
    """nat.ParsePortRange: "80" or "80-90"."""
    a, dash, b = s.partition("-")
    try:
        if not a.isdigit() or (dash and not b.isdigit()):
            raise ValueError
        lo, hi = int(a), int(b) if dash else int(a)
        if lo > 65535 or hi > 65535:
            raise ValueError
    except ValueError:
        raise OptError(f"invalid {what}: {s}") from None
    if hi < lo:
        raise OptError(f"invalid range specified for {what}: {s}")
    return lo, hi


def parse_publish(value: str) -> list[dict[str, Any]]:
    """`-p published:target[/proto]` or `-p mode=host,target=80,published=8080,protocol=udp` → PortConfigs."""
    if _LONG_PORT.search(value):
        pc: dict[str, Any] = {}
        for field in _csv_fields(value):
            key, eq, val = field.lower().partition("=")
            if not eq or not key:
                raise OptError(f"invalid field: {field}")
            if key == "protocol":
                if val not in ("tcp", "udp", "sctp"):
                    raise OptError(f"invalid protocol value '{val}'")
                pc["Protocol"] = val
            elif key == "mode":
                if val not in ("ingress", "host"):
                    raise OptError(f"invalid publish mode value ({val}): must be either 'ingress' or 'host'")
                pc["PublishMode"] = val
            elif key == "target":
                pc["TargetPort"] = _port_num("target", val)
            elif key == "published":
                pc["PublishedPort"] = _port_num("published", val)
            else:
                raise OptError(f"invalid field key: {key}")
        if not pc.get("TargetPort"):
            raise OptError("missing mandatory field 'target'")
        return [
            {
                "Protocol": pc.get("Protocol", "tcp"),
                "TargetPort": pc["TargetPort"],
                "PublishedPort": pc.get("PublishedPort", 0),
                "PublishMode": pc.get("PublishMode", "ingress"),
            }
        ]
    # nat.ParsePortSpec: [ip:][hostPort:]containerPort[/proto]
    raw, slash, proto = value.rpartition("/") if "/" in value else (value, "", "")
    proto = proto.lower() if slash else "tcp"
    if proto not in ("tcp", "udp", "sctp"):
        raise OptError(f"invalid proto: {proto}")
    parts = raw.split(":")
    if len(parts) == 1:
        ip, host, ctr = "", "", parts[0]
    elif len(parts) == 2:
        ip, host, ctr = "", parts[0], parts[1]
    elif len(parts) == 3:
        ip, host, ctr = parts
    else:
        ip = ":".join(parts[:-2])
        raise OptError(f"invalid IP address: {ip}")
    if ip:
        import ipaddress

        try:
            ipaddress.ip_address(ip.strip("[]"))
        except ValueError:
            raise OptError(f"invalid IP address: {ip}") from None
        raise OptError("hostip is not supported")
    if not ctr:
        raise OptError(f"no port specified: {value}<empty>")
    clo, chi = _nat_range(ctr, "containerPort")
    hlo = hhi = 0
    if host:
        hlo, hhi = _nat_range(host, "hostPort")
        if (chi - clo) != (hhi - hlo) and chi != clo:
            raise OptError(f"invalid ranges specified for container and host Ports: {ctr} and {host}")
    out: list[dict[str, Any]] = []
    for i, cport in enumerate(range(clo, chi + 1)):
        if host and chi == clo and hhi != hlo:
            published = list(range(hlo, hhi + 1))
        elif host:
            published = [hlo + i]
        else:
            published = [0]
        for p in published:
            out.append({"Protocol": proto, "TargetPort": cport, "PublishedPort": p, "PublishMode": "ingress"})
    return out


def parse_file_reference(value: str, kind: str) -> dict[str, Any]:
    """`--secret`/`--config` values: `name` or `source=…,target=…,uid=…,gid=…,mode=…`."""
    name_key = "SecretName" if kind == "secret" else "ConfigName"
    fields = _csv_fields(value)
    ref: dict[str, Any] = {"File": {"Name": "", "UID": "0", "GID": "0", "Mode": 0o444}, name_key: ""}
    if len(fields) == 1 and "=" not in fields[0]:
        ref["File"]["Name"] = ref[name_key] = fields[0]
        return ref
    for field in fields:
        key, eq, val = field.partition("=")
        if not eq or not key:
            raise OptError(f"invalid field '{field}' must be a key=value pair")
        k = key.lower()
        if k in ("source", "src"):
            ref[name_key] = val
        elif k == "target":
            ref["File"]["Name"] = val
        elif k == "uid":
            ref["File"]["UID"] = val
        elif k == "gid":
            ref["File"]["GID"] = val
        elif k == "mode":
            try:
                ref["File"]["Mode"] = parse_uint(val, 32)
            except OptError as e:
                raise OptError(f"invalid mode specified: {e}") from None
        elif kind == "secret":
            raise OptError(f"invalid field in secret request: {k}")
        else:
            raise OptError(f"invalid field in config request: {k}")
    if not ref[name_key]:
        raise OptError("source is required")
    if not ref["File"]["Name"]:
        ref["File"]["Name"] = ref[name_key]
    return ref


def parse_placement_pref(value: str) -> dict[str, Any]:
    strategy, eq, arg = value.partition("=")
    if not eq or not strategy:
        raise OptError('placement preference must be of the format "<strategy>=<arg>"')
    if strategy != "spread":
        raise OptError(f"unsupported placement preference {strategy} (only spread is supported)")
    return {"Spread": {"SpreadDescriptor": arg}}


def parse_network(value: str) -> dict[str, Any]:
    """opts.NetworkOpt: `name` or `name=…,alias=…,driver-opt=k=v`."""
    if "=" not in value:
        return {"Target": value}
    out: dict[str, Any] = {"Target": ""}
    for field in _csv_fields(value):
        key, eq, val = field.partition("=")
        if not eq:
            raise OptError(f"invalid field '{field}' must be a key=value pair")
        k = key.strip().lower()
        if k == "name":
            out["Target"] = val
        elif k == "alias":
            out.setdefault("Aliases", []).append(val)
        elif k == "driver-opt":
            dk, deq, dv = val.partition("=")
            if not deq or not dk:
                raise OptError(f"invalid key value pair format in driver options: {val}")
            out.setdefault("DriverOpts", {})[dk.strip().lower()] = dv.strip().lower()
        elif k in ("ip", "ip6", "link-local-ip", "mac-address", "gw-priority"):
            pass
        else:
            raise OptError(f"invalid field key {k}")
    if not out["Target"]:
        raise OptError("network name/id is not specified")
    return out


def shlex_split(value: str) -> list[str]:
    """github.com/google/shlex as `--entrypoint` uses it (POSIX-like words, quotes, backslashes)."""
    import shlex

    try:
        return shlex.split(value, comments=True, posix=True)
    except ValueError as e:
        raise OptError(str(e)) from None
