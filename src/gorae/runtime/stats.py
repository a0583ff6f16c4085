"""`docker stats` JSON for one container, read from its cgroup (v1 or v2) and /proc/stat.

Owns the mapping of cgroup files to Docker's StatsJSON fields (`docker stats`; the metrics collector reads
the same files through descriptors it keeps open, `gorae.metrics.cgread`, and tests/unit/test_metrics.py holds
its values equal to `cgroup_counters(..., lean=True)`'s), and the parsing of a network namespace's
/proc/<pid>/net/dev. Reads only, never changes limits.
"""

from __future__ import annotations

import os
import time
from typing import Any

from gorae.runtime import cgroups
from gorae.timefmt import rfc3339nano_fixed

NS_PER_TICK = 10**9 // os.sysconf("SC_CLK_TCK")
NO_LIMIT = 0x7FFFFFFFFFFFF000  # what v1 reports for "no limit" (page-rounded max int64)


def _read(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _int(path: str | None, default: int = 0) -> int:
    s = _read(path)
    if s is None:
        return default
    s = s.strip()
    if s == "max":
        return default
    try:
        return int(s.split()[0])
    except (ValueError, IndexError):
        return default


def _kv(path: str | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in (_read(path) or "").splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                pass
    return out


def _join(d: str | None, name: str) -> str | None:
    return os.path.join(d, name) if d else None


def system_cpu_usage() -> int:
    """Host CPU time in ns since boot (sum of /proc/stat's cpu line), as dockerd reports it."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu "):
                return sum(int(x) for x in line.split()[1:8]) * NS_PER_TICK
    return 0


def host_memory() -> int:
    """The host's RAM in bytes: the memory limit `docker stats` shows for an unlimited container."""
    return _host_memory()


def _host_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _blkio_v1(d: str | None) -> dict[str, list[dict[str, Any]]]:
    def entries(name: str) -> list[dict[str, Any]]:
        out = []
        for line in (_read(_join(d, name)) or "").splitlines():
            parts = line.split()
            if len(parts) == 3 and ":" in parts[0]:
                major, minor = parts[0].split(":")
                out.append({"major": int(major), "minor": int(minor), "op": parts[1], "value": int(parts[2])})
        return out

    return {
        "io_service_bytes_recursive": entries("blkio.throttle.io_service_bytes_recursive")
        or entries("blkio.io_service_bytes_recursive"),
        "io_serviced_recursive": entries("blkio.throttle.io_serviced_recursive")
        or entries("blkio.io_serviced_recursive"),
    }


def _blkio_v2(d: str | None) -> dict[str, list[dict[str, Any]]]:
    b: list[dict[str, Any]] = []
    n: list[dict[str, Any]] = []
    for line in (_read(_join(d, "io.stat")) or "").splitlines():
        parts = line.split()
        if not parts or ":" not in parts[0]:
            continue
        major, minor = (int(x) for x in parts[0].split(":"))
        kv = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        for key, op, target in (
            ("rbytes", "read", b),
            ("wbytes", "write", b),
            ("rios", "read", n),
            ("wios", "write", n),
        ):
            if key in kv:
                target.append({"major": major, "minor": minor, "op": op, "value": int(kv[key])})
    return {"io_service_bytes_recursive": b, "io_serviced_recursive": n}


def _v1(cg: str, lean: bool = False) -> dict[str, Any]:
    cpuacct = cgroups.controller_dir("cpuacct", cg)
    cpu = cgroups.controller_dir("cpu", cg)
    mem = cgroups.controller_dir("memory", cg)
    pids = cgroups.controller_dir("pids", cg)
    blkio = cgroups.controller_dir("blkio", cg)
    percpu = [] if lean else [int(x) for x in (_read(_join(cpuacct, "cpuacct.usage_percpu")) or "").split()]
    ticks = _kv(_join(cpuacct, "cpuacct.stat"))
    throttle = _kv(_join(cpu, "cpu.stat"))
    limit = _int(_join(mem, "memory.limit_in_bytes"), NO_LIMIT)
    if limit >= NO_LIMIT:
        limit = _host_memory()
    pids_max = 0 if lean else _int(_join(pids, "pids.max"), 0)
    return {
        "cpu_stats": {
            "cpu_usage": {
                "total_usage": _int(_join(cpuacct, "cpuacct.usage")),
                "percpu_usage": percpu,
                "usage_in_kernelmode": ticks.get("system", 0) * NS_PER_TICK,
                "usage_in_usermode": ticks.get("user", 0) * NS_PER_TICK,
            },
            "throttling_data": {
                "periods": throttle.get("nr_periods", 0),
                "throttled_periods": throttle.get("nr_throttled", 0),
                "throttled_time": throttle.get("throttled_time", 0),
            },
        },
        "memory_stats": {
            "usage": _int(_join(mem, "memory.usage_in_bytes")),
            "max_usage": 0 if lean else _int(_join(mem, "memory.max_usage_in_bytes")),
            "failcnt": 0 if lean else _int(_join(mem, "memory.failcnt")),
            "limit": limit,
            "stats": _kv(_join(mem, "memory.stat")),
        },
        "pids_stats": {
            "current": _int(_join(pids, "pids.current")),
            **({"limit": pids_max} if pids_max else {}),
        },
        "blkio_stats": _blkio_v1(blkio),
    }


def _v2(cg: str) -> dict[str, Any]:
    return v2_counters(cgroups.controller_dir("", cg))


def v2_counters(d: str | None) -> dict[str, Any]:
    """The cgroup part of a StatsJSON sample from one cgroup v2 directory (no limit: the host's RAM)."""
    cpu = _kv(_join(d, "cpu.stat"))
    limit = _int(_join(d, "memory.max"), 0) or _host_memory()
    pids_max = _int(_join(d, "pids.max"), 0)
    return {
        "cpu_stats": {
            "cpu_usage": {
                "total_usage": cpu.get("usage_usec", 0) * 1000,
                "usage_in_kernelmode": cpu.get("system_usec", 0) * 1000,
                "usage_in_usermode": cpu.get("user_usec", 0) * 1000,
            },
            "throttling_data": {
                "periods": cpu.get("nr_periods", 0),
                "throttled_periods": cpu.get("nr_throttled", 0),
                "throttled_time": cpu.get("throttled_usec", 0) * 1000,
            },
        },
        "memory_stats": {
            "usage": _int(_join(d, "memory.current")),
            "limit": limit,
            "stats": _kv(_join(d, "memory.stat")),
        },
        "pids_stats": {
            "current": _int(_join(d, "pids.current")),
            **({"limit": pids_max} if pids_max else {}),
        },
        "blkio_stats": _blkio_v2(d),
    }


def cgroup_counters(cgroups_path: str, *, lean: bool = False) -> dict[str, Any]:
    """The cgroup part of a StatsJSON sample (cpu_stats without the system fields, memory_stats,
    pids_stats, blkio_stats) for a container's cgroups path, from v2 or v1 files. `lean` leaves out what the
    metrics collector does not export and v1 keeps in separate files: per-CPU usage, the memory high-water
    mark and fail count, the pids limit (zeros / empty instead)."""
    return _v2(cgroups_path) if cgroups.use_v2() else _v1(cgroups_path, lean)


NET_DEV_FIELDS = (
    "rx_bytes", "rx_packets", "rx_errors", "rx_dropped", "rx_fifo", "rx_frame", "rx_compressed", "rx_multicast",
    "tx_bytes", "tx_packets", "tx_errors", "tx_dropped", "tx_fifo", "tx_colls", "tx_carrier", "tx_compressed",
)


def parse_net_dev(text: str) -> dict[str, dict[str, int]]:
    """/proc/net/dev: interface -> its 16 counters (rx_bytes, ..., tx_compressed); malformed lines skipped."""
    out: dict[str, dict[str, int]] = {}
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        fields = rest.split()
        if not sep or len(fields) < len(NET_DEV_FIELDS) or not name.strip():
            continue
        try:
            values = [int(x) for x in fields[: len(NET_DEV_FIELDS)]]
        except ValueError:
            continue
        out[name.strip()] = dict(zip(NET_DEV_FIELDS, values, strict=True))
    return out


def net_dev_of(pid: int) -> dict[str, dict[str, int]]:
    """The interfaces of the network namespace `pid` lives in (read through /proc, no setns)."""
    return parse_net_dev(_read(f"/proc/{pid}/net/dev") or "")


_DOCKER_NET = ("rx_bytes", "rx_packets", "rx_errors", "rx_dropped", "tx_bytes", "tx_packets", "tx_errors", "tx_dropped")


def docker_networks(counters: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """docker's `networks` section of a stats sample from `parse_net_dev` counters: per interface but lo,
    rx_/tx_ bytes, packets, errors, dropped."""
    return {name: {k: c[k] for k in _DOCKER_NET} for name, c in counters.items() if name != "lo"}


def network_stats(pid: int) -> dict[str, dict[str, int]]:
    """The `networks` section for the network namespace of process `pid` (empty when unreadable)."""
    return docker_networks(net_dev_of(pid))


def _now() -> str:
    return rfc3339nano_fixed(time.time_ns())


def container_stats(
    cgroups_path: str, *, id: str = "", name: str = "", prev: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One StatsJSON sample. `prev` (an earlier sample) fills precpu_stats/preread as dockerd does."""
    body = cgroup_counters(cgroups_path)
    body["cpu_stats"]["system_cpu_usage"] = system_cpu_usage()
    body["cpu_stats"]["online_cpus"] = os.cpu_count() or 1
    zero_cpu = {
        "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    }
    return {
        "read": _now(),
        "preread": prev["read"] if prev else "0001-01-01T00:00:00Z",
        "id": id,
        "name": name,
        **body,
        "precpu_stats": prev["cpu_stats"] if prev else zero_cpu,
        "num_procs": 0,
        "storage_stats": {},
    }
