"""dockerd's create-time checks of the `HostConfig` values that are well typed but out of range or meaningless:
cpusets, ulimits, SHM size, OOM score, namespace modes, runtime, --tmpfs, sysctls, devices, --add-host and --dns.

Owns refusing them at create (InvalidParameter, 400, with dockerd's texts where it has one), so that no
such value reaches the runtime and fails at start with a runc error. Pure functions of the host config,
apart from reading the host's online CPUs / memory nodes and stat()ing device paths.
"""

from __future__ import annotations

import ipaddress
import os
import posixpath
import re
import stat
from collections.abc import Callable
from typing import Any

from gorae.errors import InvalidParameter, NotFound
from gorae.runtime.spec import RLIMITS

MAX_CPU_SHARES = 262144  # the kernel's (and dockerd's) maximum
MAX_CPUSET = 8192  # docker's parsers.ParseUintList bound for cpusets
_RLIM_INFINITY = -1
_RUNTIMES = ("runc", "io.containerd.runc.v2", "")
_SIZE = re.compile(r"^[0-9]+(\.[0-9]+)?[kKmMgGtTpPeE%]?$")


def _parse_uint_list(value: str) -> set[int]:
    """docker's parsers.ParseUintList ("0-3,5"), with its error texts."""
    out: set[int] = set()
    if value == "":
        return out
    for part in value.split(","):
        low, dash, high = part.partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise ValueError(f"invalid format: {value}")
        start, end = int(low), int(high) if dash else int(low)
        if end > MAX_CPUSET:
            raise ValueError(f"value of out range, maximum is {MAX_CPUSET}")
        if start > end:
            raise ValueError(f"invalid range format: {part}")
        out.update(range(start, end + 1))
    return out


def _online(what: str) -> set[int] | None:
    path = "/sys/devices/system/cpu/online" if what == "cpus" else "/sys/devices/system/node/online"
    try:
        with open(path, encoding="ascii") as f:
            return _parse_uint_list(f.read().strip())
    except (OSError, ValueError):
        return None


def check_cpuset(value: str, what: str) -> None:
    """CpusetCpus / CpusetMems: well formed and available on this host."""
    if not value:
        return
    try:
        wanted = _parse_uint_list(value)
    except ValueError as e:
        raise InvalidParameter(f"Invalid value {value} for cpuset {what}: {e}") from None
    online = _online(what)
    if online is not None and not wanted <= online:
        available = _format_list(online)
        if what == "cpus":
            raise InvalidParameter(
                f"Requested CPUs are not available - requested {value}, available: {available}"
            )
        raise InvalidParameter(
            f"Requested memory nodes are not available - requested {value}, available: {available}"
        )


def _format_list(values: set[int]) -> str:
    return ",".join(str(v) for v in sorted(values))


def check_ulimits(ulimits: list[dict[str, Any]]) -> None:
    """Ulimits: a known name, limits >= -1 (unlimited), soft <= hard (go-units' texts)."""
    for u in ulimits:
        name = str(u.get("Name") or "").lower()
        if name not in RLIMITS:
            raise InvalidParameter(f"invalid ulimit type: {u.get('Name') or ''}")
        soft, hard = int(u.get("Soft") or 0), int(u.get("Hard") or 0)
        for v in (soft, hard):
            if v < _RLIM_INFINITY:
                raise InvalidParameter(f"invalid ulimit argument: {name}={soft}:{hard}")
        if hard != _RLIM_INFINITY and (soft == _RLIM_INFINITY or soft > hard):
            raise InvalidParameter(
                f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
            )
        nr_open = _nr_open() if name == "nofile" else None
        if nr_open is not None and (hard == _RLIM_INFINITY or hard > nr_open):
            raise InvalidParameter(
                f"invalid ulimit nofile: {hard} is above the kernel's maximum (fs.nr_open = {nr_open})"
            )


def _nr_open() -> int | None:
    try:
        with open("/proc/sys/fs/nr_open", encoding="ascii") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def validate_host_config(hc: dict[str, Any]) -> None:
    """dockerd's verifyPlatformContainerSettings / validateHostConfig checks, and the ones runc would fail at."""
    if int(hc.get("ShmSize") or 0) < 0:
        raise InvalidParameter("SHM size can not be less than 0")
    oom = int(hc.get("OomScoreAdj") or 0)
    if not -1000 <= oom <= 1000:
        raise InvalidParameter(f"Invalid value {oom}, range for oom score adj is [-1000, 1000]")
    _check_modes(hc)
    runtime = str(hc.get("Runtime") or "")
    if runtime not in _RUNTIMES:
        raise InvalidParameter(f"Unknown runtime specified {runtime}")
    for dest, options in (hc.get("Tmpfs") or {}).items():
        _check_tmpfs(dest, options or "")
    for key in hc.get("Sysctls") or {}:
        _check_sysctl(key, hc)
    for dev in hc.get("Devices") or []:
        _check_device(str(dev.get("PathOnHost") or ""))
    for entry in hc.get("ExtraHosts") or []:
        _check_extra_host(entry)
    for server in hc.get("Dns") or []:
        if not _is_ip(server):
            raise InvalidParameter(f"IP address is not correctly formatted: {server}")


def _check_modes(hc: dict[str, Any]) -> None:
    ipc = str(hc.get("IpcMode") or "")
    if not (ipc in ("", "none", "private", "shareable", "host") or _joins(ipc)):
        raise InvalidParameter(f"invalid IPC mode: {ipc}")
    pid = str(hc.get("PidMode") or "")
    if not (pid in ("", "host") or _joins(pid)):
        raise InvalidParameter(f"invalid PID mode: {pid}")
    uts = str(hc.get("UTSMode") or "")
    if uts not in ("", "host"):
        raise InvalidParameter(f"invalid UTS mode: {uts}")
    userns = str(hc.get("UsernsMode") or "")
    if userns not in ("", "host", "private"):
        raise InvalidParameter(f"invalid USER mode: {userns}")
    cgroupns = str(hc.get("CgroupnsMode") or "")
    if cgroupns not in ("", "host", "private"):
        raise InvalidParameter(f"invalid cgroup namespace mode: {cgroupns}")


def _joins(mode: str) -> bool:
    return mode.startswith("container:") and len(mode) > len("container:")


def check_joined_containers(hc: dict[str, Any], lookup: Callable[[str], object]) -> None:
    """`container:<name>` IPC and PID modes name an existing container (`lookup` raises NotFound:
    "No such container: nope", as dockerd answers at create)."""
    for key in ("IpcMode", "PidMode"):
        mode = str(hc.get(key) or "")
        if _joins(mode):
            try:
                lookup(mode.partition(":")[2])
            except NotFound as e:
                raise InvalidParameter(e.message) from None


def _check_tmpfs(dest: str, options: str) -> None:
    if not dest.startswith("/"):
        raise InvalidParameter(f"invalid mount path: '{dest}' mount path must be absolute")
    if posixpath.normpath(dest) == "/":
        raise InvalidParameter(f"invalid specification: destination can't be '/' in '{dest}'")
    for opt in options.split(","):
        key, _, value = opt.partition("=")
        if (key == "size" and not _SIZE.match(value)) or (
            key in ("mode", "nr_inodes", "uid", "gid") and not value.isdigit()
        ):
            raise InvalidParameter(f'invalid tmpfs option "{opt}" for {dest}')


_IPC_SYSCTLS = (
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
)


def _check_sysctl(key: str, hc: dict[str, Any]) -> None:
    """runc's rule: only sysctls of a namespace the container has of its own."""
    if key in _IPC_SYSCTLS or key.startswith("fs.mqueue."):
        if str(hc.get("IpcMode") or "") == "host":
            raise InvalidParameter(f'sysctl "{key}" not allowed in host IPC namespace')
        return
    if key.startswith("net."):
        if str(hc.get("NetworkMode") or "") == "host":
            raise InvalidParameter(f'sysctl "{key}" not allowed in host network namespace')
        return
    if key in ("kernel.hostname", "kernel.domainname"):
        raise InvalidParameter(
            f'sysctl "{key}" is not allowed as it conflicts with the Hostname/Domainname options'
        )
    raise InvalidParameter(f'sysctl "{key}" is not in a separate kernel namespace')


def _check_device(path: str) -> None:
    """The device dockerd would give the container at start: a device node (or a directory of them)."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise InvalidParameter(
            f'error gathering device information while adding custom device "{path}": {e.strerror.lower() if e.strerror else e}'
        ) from None
    if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        raise InvalidParameter(
            f'error gathering device information while adding custom device "{path}": not a device node'
        )


def _check_extra_host(entry: str) -> None:
    """docker's opts.ValidateExtraHost ("name:ip", "name=ip", ip may be "host-gateway" or "[v6]")."""
    sep = "=" if "=" in entry else ":"
    name, found, ip = entry.partition(sep)
    if not found or not name:
        raise InvalidParameter(f'bad format for add-host: "{entry}"')
    if ip == "host-gateway":
        return
    if ip.startswith("[") and ip.endswith("]"):
        ip = ip[1:-1]
    if not _is_ip(ip):
        raise InvalidParameter(f'invalid IP address in add-host: "{ip}"')


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
