"""Per-container metrics under cAdvisor's names, labels and types, read at scrape time.

`ContainerCollector` is a prometheus-client collector: each `collect()` lists the running containers and
reads their cgroup counters and their network namespace's /proc/<pid>/net/dev (read through /proc, never by
entering the namespace; containers sharing a namespace read it once) through `gorae.metrics.cgread`, which
keeps the cgroup files open between scrapes. Nothing is sampled in the background, so a container's series
exist from its first second and are never stale.

A scrape of 200 containers must stay well under 100 ms, so each container's label text is rendered once
(until its name, image, labels or process change) with the line prefix of every series, and the families
it yields (`RenderedFamily`) carry their text lines for `exposition.text_format`; prometheus-client's
samples are built only when asked for (OpenMetrics, Graphite).

Names and labels mirror what cAdvisor exports for a Docker container: `id` is the cgroup path (cAdvisor:
`/docker/<id>`; gorae: the container's cgroups path, `/gorae/<id>` by default), `name` the container name,
`image` the image as given at create, and `container_label_<key>` for the container labels asked for
(`--metrics-container-labels`, `*` for all; keys sanitised as cAdvisor does). CPU totals carry `cpu="total"`,
network series `interface`, disk series `device` (as /dev/<name>).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from gorae.metrics.cgread import CgroupFiles, File, Files, parse_net_dev
from gorae.runtime import cgroups, stats


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


def _escape(value: str) -> str:
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


def _label_text(labels: dict[str, str]) -> str:
    """`{k="v",...}` with the keys sorted, as prometheus-client writes a sample's labels."""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items())) + "}"


_TEXT: dict[float, str] = {}  # value -> Go's text for it: zeros, limits, start times repeat scrape after scrape


def _go_text(value: float) -> str:
    text = _TEXT.get(value)
    if text is None:
        if len(_TEXT) > 50_000:
            _TEXT.clear()
        text = _TEXT[value] = floatToGoString(value)  # type: ignore[no-untyped-call]
    return text


class RenderedFamily(Metric):
    """A metric family whose text lines are written as it is collected. `rows` holds, per sample, its
    line prefix (name and labels), value, labels: `text()` is the exposition, `samples` (built when read)
    what prometheus-client's encoders and the Graphite sink see."""

    def __init__(self, name: str, documentation: str, typ: str, extra: str = "") -> None:
        # Metric.__init__ would validate the name and set `samples`, a property here
        self.name = name[: -len("_total")] if typ == "counter" and name.endswith("_total") else name
        self.documentation = documentation
        self.unit = ""
        self.type = typ
        self.sample_name = name
        self.extra = extra  # the one label beyond the container's, "" for none
        self.rows: list[tuple[str, float, dict[str, str], str]] = []  # prefix, value, base labels, extra value

    @property
    def samples(self) -> list[Sample]:  # type: ignore[override]
        name, extra = self.sample_name, self.extra
        return [
            Sample(name, {**base, extra: ev} if extra else dict(base), value, None, None)
            for _, value, base, ev in self.rows
        ]

    def text(self) -> str:
        doc = self.documentation.replace("\\", r"\\").replace("\n", r"\n")
        get = _TEXT.get
        lines = [f"# HELP {self.sample_name} {doc}\n# TYPE {self.sample_name} {self.type}\n"]
        lines.extend([f"{prefix}{get(value) or _go_text(value)}\n" for prefix, value, _, _ in self.rows])
        return "".join(lines)


# (series name, help, type, extra label) in the order cAdvisor's families are yielded
_FAMILIES: tuple[tuple[str, str, str, str], ...] = (
    ("container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", "counter", "cpu"),
    ("container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", "counter", ""),
    ("container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.", "counter", ""),
    ("container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.", "counter", ""),
    ("container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of "
     "when it was accessed", "gauge", ""),
    ("container_memory_working_set_bytes", "Current working set in bytes.", "gauge", ""),
    ("container_memory_rss", "Size of RSS in bytes.", "gauge", ""),
    ("container_memory_cache", "Number of bytes of page cache memory.", "gauge", ""),
    ("container_spec_memory_limit_bytes", "Memory limit for the container.", "gauge", ""),
    *(
        (f"container_network_{d}_{what}_total",
         f"Cumulative count of {what.replace('_', ' ')} {'received' if d == 'receive' else 'transmitted'}",
         "counter", "interface")
        for d in ("receive", "transmit")
        for what in ("bytes", "packets", "errors", "packets_dropped")
    ),
    ("container_fs_reads_bytes_total", "Cumulative count of bytes read", "counter", "device"),
    ("container_fs_writes_bytes_total", "Cumulative count of bytes written", "counter", "device"),
    ("container_fs_reads_total", "Cumulative count of reads completed", "counter", "device"),
    ("container_fs_writes_total", "Cumulative count of writes completed", "counter", "device"),
    ("container_processes", "Number of processes running inside the container.", "gauge", ""),
    ("container_last_seen", "Last time a container was seen by the exporter", "gauge", ""),
    ("container_start_time_seconds", "Start time of the container since unix epoch in seconds.", "gauge", ""),
)
_NET = range(9, 17)
_FS = range(17, 21)
_TASKS, _LAST_SEEN, _START = 21, 22, 23


class _Slot:
    """One container between scrapes: its open cgroup files and its rendered line prefixes."""

    def __init__(self, ident: tuple[object, ...], info: ContainerInfo, base: dict[str, str],
                 cg: CgroupFiles, netns: tuple[int, int] | None, net: File | None) -> None:
        self.ident = ident
        self.info = info
        self.base = base
        self.cg = cg
        self.netns = netns
        self.net = net  # /proc/<pid>/net/dev (None: no process)
        plain = _label_text(base)
        self.prefix = [f"{name}{plain} " for name, _, _, _ in _FAMILIES]
        self.prefix[0] = f"{_FAMILIES[0][0]}{_label_text({**base, 'cpu': 'total'})} "
        self.net_prefix: dict[str, list[str]] = {}
        self.dev_prefix: dict[str, list[str]] = {}

    def extra_prefixes(self, cache: dict[str, list[str]], rng: range, label: str, value: str) -> list[str]:
        got = cache.get(value)
        if got is None:
            text = _label_text({**self.base, label: value})
            got = cache[value] = [f"{_FAMILIES[i][0]}{text} " for i in rng]
        return got


class ContainerCollector(Collector):
    """cAdvisor's container_* families for the containers `source()` lists, read when scraped.

    `v2` and `dir_of` (controller, cgroups path -> directory) say where the cgroup files are (default: this
    host's hierarchy), `proc` where /proc is (the tests give fake trees)."""

    def __init__(
        self,
        source: Callable[[], Iterable[ContainerInfo]],
        *,
        labels: Sequence[str] = (),
        v2: bool | None = None,
        dir_of: Callable[[str, str], str | None] = cgroups.controller_dir,
        proc: str = "/proc",
        files: Files | None = None,
    ) -> None:
        self._source = source
        self._want = list(labels)
        self._v2 = cgroups.use_v2() if v2 is None else v2
        self._dir_of = dir_of
        self._proc = proc
        self.files = Files() if files is None else files
        # the stats reader reports an unlimited container's limit as the host's RAM (as `docker stats`)
        self._host_memory = stats.host_memory()
        self._devices = _Devices()
        self._slots: dict[str, _Slot] = {}
        self._lock = threading.Lock()  # /metrics and the Graphite pusher may collect at once

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

    def _netns(self, pid: int) -> tuple[int, int] | None:
        try:
            st = os.stat(f"{self._proc}/{pid}/ns/net")
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def _slot(self, info: ContainerInfo, keys: list[str]) -> _Slot:
        label_values = tuple(info.labels.get(k, "") for k in keys)
        ident = (info.name, info.image, info.cgroups_path, info.pid, info.started_at, tuple(keys), label_values)
        slot = self._slots.get(info.id)
        if slot is not None and slot.ident == ident:
            return slot
        if slot is not None:
            self._close(slot)
        base = {"id": info.cgroups_path, "name": info.name, "image": info.image}
        base.update((label_name(k), v) for k, v in zip(keys, label_values, strict=True))
        cg = CgroupFiles(info.cgroups_path, v2=self._v2, dir_of=self._dir_of)
        net = File(f"{self._proc}/{info.pid}/net/dev", keep=False) if info.pid > 0 else None
        slot = self._slots[info.id] = _Slot(ident, info, base, cg, self._netns(info.pid) if net else None, net)
        return slot

    def _close(self, slot: _Slot) -> None:
        slot.cg.close(self.files)
        if slot.net is not None:
            self.files.close(slot.net)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            families = self._collect()
        yield from families

    def _collect(self) -> list[RenderedFamily]:
        infos = list(self._source())
        keys = self._label_keys(infos)
        fams = [RenderedFamily(*f) for f in _FAMILIES]
        rows = [f.rows for f in fams]
        now = float(int(time.time()))  # whole seconds, as cAdvisor
        seen: set[str] = set()
        netdevs: dict[tuple[int, int], list[tuple[str, Sequence[int]]]] = {}
        files, host_memory, device = self.files, self._host_memory, self._devices.name
        for info in infos:
            seen.add(info.id)
            slot = self._slot(info, keys)
            s = slot.cg.sample(files, host_memory)
            p, base = slot.prefix, slot.base
            for i, value in enumerate((s.cpu_total, s.cpu_user, s.cpu_system, s.throttled, s.mem_usage,
                                       s.mem_working_set, s.mem_rss, s.mem_cache, s.mem_limit)):
                rows[i].append((p[i], value, base, "total" if i == 0 else ""))
            if slot.net is not None:
                ifaces = netdevs.get(slot.netns) if slot.netns is not None else None
                if ifaces is None:
                    data = files.read(slot.net)
                    ifaces = parse_net_dev(data) if data else []
                    if slot.netns is not None:
                        netdevs[slot.netns] = ifaces
                for ifname, values in ifaces:
                    np = slot.extra_prefixes(slot.net_prefix, _NET, "interface", ifname)
                    for j, i in enumerate(_NET):
                        rows[i].append((np[j], values[j], base, ifname))
            for entries, first in ((s.io_bytes, 0), (s.io_ops, 2)):
                per_dev: dict[str, list[int]] = {}
                for major, minor, r, w in entries or ():
                    slot_rw = per_dev.setdefault(device(major, minor), [0, 0])
                    slot_rw[0] += r
                    slot_rw[1] += w
                for dev, (r, w) in sorted(per_dev.items()):
                    dp = slot.extra_prefixes(slot.dev_prefix, _FS, "device", dev)
                    rows[_FS[first]].append((dp[first], r, base, dev))
                    rows[_FS[first + 1]].append((dp[first + 1], w, base, dev))
            rows[_TASKS].append((p[_TASKS], s.pids, base, ""))
            rows[_LAST_SEEN].append((p[_LAST_SEEN], now, base, ""))
            rows[_START].append((p[_START], info.started_at, base, ""))
        for cid in [c for c in self._slots if c not in seen]:
            self._close(self._slots.pop(cid))
        return fams
