"""Per-container metrics under cAdvisor's names, labels and types, read at scrape time.

`ContainerCollector` is a prometheus-client collector: each `collect()` lists the running containers and
reads their cgroup counters (`gorae.runtime.stats.lean_counters`, the code `docker stats` uses) and their
network namespace's /proc/<pid>/net/dev (read through /proc, never by entering the namespace). Nothing is
sampled in the background, so a container's series exist from its first second and are never stale.

Names and labels mirror what cAdvisor exports for a Docker container: `id` is the cgroup path (cAdvisor:
`/docker/<id>`; gorae: the container's cgroups path, `/gorae/<id>` by default), `name` the container name,
`image` the image as given at create, and `container_label_<key>` for the container labels asked for
(`--metrics-container-labels`, `*` for all; keys sanitised as cAdvisor does). CPU totals carry `cpu="total"`,
network series `interface`, disk series `device` (as /dev/<name>).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gorae.runtime import stats


@dataclass(frozen=True)
class ContainerInfo:
    """What the collector needs to know about one running container."""

    id: str
    name: str
    image: str
    cgroups_path: str
    pid: int
    started_at: float  # unix seconds
    labels: dict[str, str] = field(default_factory=dict)


Counters = Callable[[str], dict[str, Any]]
NetDev = Callable[[int], dict[str, dict[str, int]]]

_LABEL_BAD = re.compile(r"[^a-zA-Z0-9_]")


def label_name(key: str) -> str:
    """A container label key as a Prometheus label name (cAdvisor: `container_label_` + key, other
    characters than [a-zA-Z0-9_] as `_`)."""
    return "container_label_" + _LABEL_BAD.sub("_", key)


class _Devices:
    """major:minor -> /dev/<name>, from /sys/dev/block (cached: devices rarely come and go)."""

    def __init__(self) -> None:
        self._names: dict[tuple[int, int], str] = {}

    def name(self, major: int, minor: int) -> str:
        key = (major, minor)
        name = self._names.get(key)
        if name is None:
            name = f"{major}:{minor}"
            try:
                with open(f"/sys/dev/block/{major}:{minor}/uevent") as f:
                    for line in f:
                        if line.startswith("DEVNAME="):
                            name = "/dev/" + line.split("=", 1)[1].strip()
            except OSError:
                pass
            self._names[key] = name
        return name


class ContainerCollector(Collector):
    """cAdvisor's container_* families for the containers `source()` lists, read when scraped."""

    def __init__(
        self,
        source: Callable[[], Iterable[ContainerInfo]],
        *,
        labels: Sequence[str] = (),
        counters: Counters = stats.lean_counters,
        net_dev: NetDev = stats.net_dev_of,
    ) -> None:
        self._source = source
        self._want = list(labels)
        self._counters = counters
        self._net_dev = net_dev
        # the stats reader reports an unlimited container's limit as the host's RAM (as `docker stats`)
        self._host_memory = stats.host_memory()
        self._devices = _Devices()

    def describe(self) -> list[Metric]:
        return []  # families are created per scrape; nothing to check at registration

    def _label_keys(self, infos: list[ContainerInfo]) -> list[str]:
        if not self._want:
            return []
        if "*" in self._want:
            keys = {k for i in infos for k in i.labels}
        else:
            keys = {k for i in infos for k in i.labels if k in self._want}
        # two keys that sanitise to one label name: the first (sorted) wins
        out: dict[str, str] = {}
        for k in sorted(keys):
            out.setdefault(label_name(k), k)
        return sorted(out.values())

    def collect(self) -> Iterator[Metric]:
        infos = list(self._source())
        keys = self._label_keys(infos)
        base = ["id", "name", "image", *(label_name(k) for k in keys)]

        def counter(name: str, doc: str, extra: Sequence[str] = ()) -> CounterMetricFamily:
            return CounterMetricFamily(name, doc, labels=[*base, *extra])

        def gauge(name: str, doc: str, extra: Sequence[str] = ()) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=[*base, *extra])

        cpu_total = counter("container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", ["cpu"])
        cpu_user = counter("container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.")
        cpu_sys = counter("container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.")
        throttled = counter(
            "container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals."
        )
        mem_usage = gauge(
            "container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of "
            "when it was accessed"
        )
        mem_ws = gauge("container_memory_working_set_bytes", "Current working set in bytes.")
        mem_rss = gauge("container_memory_rss", "Size of RSS in bytes.")
        mem_cache = gauge("container_memory_cache", "Number of bytes of page cache memory.")
        mem_limit = gauge("container_spec_memory_limit_bytes", "Memory limit for the container.")
        net = {
            (d, what): counter(
                f"container_network_{d}_{what}_total",
                f"Cumulative count of {what.replace('_', ' ')} {'received' if d == 'receive' else 'transmitted'}",
                ["interface"],
            )
            for d in ("receive", "transmit")
            for what in ("bytes", "packets", "errors", "packets_dropped")
        }
        fs_reads = counter("container_fs_reads_bytes_total", "Cumulative count of bytes read", ["device"])
        fs_writes = counter("container_fs_writes_bytes_total", "Cumulative count of bytes written", ["device"])
        fs_rio = counter("container_fs_reads_total", "Cumulative count of reads completed", ["device"])
        fs_wio = counter("container_fs_writes_total", "Cumulative count of writes completed", ["device"])
        tasks = gauge("container_processes", "Number of processes running inside the container.")
        last_seen = gauge("container_last_seen", "Last time a container was seen by the exporter")
        start_time = gauge("container_start_time_seconds", "Start time of the container since unix epoch in seconds.")
        now = float(int(time.time()))  # whole seconds, as cAdvisor
        for info in infos:
            try:
                c = self._counters(info.cgroups_path)
            except OSError:
                continue
            lv = [info.cgroups_path, info.name, info.image, *(info.labels.get(k, "") for k in keys)]
            cpu = c["cpu_stats"]["cpu_usage"]
            cpu_total.add_metric([*lv, "total"], cpu["total_usage"] / 1e9)
            cpu_user.add_metric(lv, cpu["usage_in_usermode"] / 1e9)
            cpu_sys.add_metric(lv, cpu["usage_in_kernelmode"] / 1e9)
            throttled.add_metric(lv, c["cpu_stats"]["throttling_data"]["throttled_periods"])
            mem = c["memory_stats"]
            st = mem.get("stats", {})
            v1 = "total_rss" in st
            usage = mem["usage"]
            inactive = st.get("total_inactive_file" if v1 else "inactive_file", 0)
            mem_usage.add_metric(lv, usage)
            mem_ws.add_metric(lv, max(0, usage - inactive))
            mem_rss.add_metric(lv, st.get("total_rss" if v1 else "anon", 0))
            mem_cache.add_metric(lv, st.get("total_cache" if v1 else "file", 0))
            limit = mem["limit"]
            mem_limit.add_metric(lv, 0 if limit == self._host_memory else limit)
            if info.pid > 0:
                for ifname, d in sorted(self._net_dev(info.pid).items()):
                    if ifname == "lo":
                        continue  # cAdvisor leaves loopback out
                    for (direction, what), fam in net.items():
                        pre = "rx" if direction == "receive" else "tx"
                        key = f"{pre}_dropped" if what == "packets_dropped" else f"{pre}_{what}"
                        fam.add_metric([*lv, ifname], d[key])
            blk = c.get("blkio_stats", {})
            for entries, read_fam, write_fam in (
                (blk.get("io_service_bytes_recursive") or [], fs_reads, fs_writes),
                (blk.get("io_serviced_recursive") or [], fs_rio, fs_wio),
            ):
                per_dev: dict[str, dict[str, int]] = {}
                for e in entries:
                    op = str(e["op"]).lower()
                    if op in ("read", "write"):
                        dev = self._devices.name(e["major"], e["minor"])
                        slot = per_dev.setdefault(dev, {"read": 0, "write": 0})
                        slot[op] += int(e["value"])
                for dev, rw in sorted(per_dev.items()):
                    read_fam.add_metric([*lv, dev], rw["read"])
                    write_fam.add_metric([*lv, dev], rw["write"])
            tasks.add_metric(lv, c.get("pids_stats", {}).get("current", 0))
            last_seen.add_metric(lv, now)
            start_time.add_metric(lv, info.started_at)
        yield from (cpu_total, cpu_user, cpu_sys, throttled)
        yield from (mem_usage, mem_ws, mem_rss, mem_cache, mem_limit)
        yield from net.values()
        yield from (fs_reads, fs_writes, fs_rio, fs_wio, tasks, last_seen, start_time)

