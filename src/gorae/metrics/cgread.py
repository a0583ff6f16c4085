"""Reading a container's counters at scrape time, cheaply: cgroup files (v1 or v2) and its network
namespace's /proc/<pid>/net/dev, read whole with one `pread` (the cgroup files through descriptors kept open
between scrapes: no path walk, no file object) and parsed from bytes without building dicts.

The values are those `gorae.runtime.stats.cgroup_counters` gives `docker stats` (same files, same fallbacks:
a missing file reads as 0, v1's unlimited memory as "no limit"); tests/unit/test_metrics.py checks them
against it. Open descriptors stay within a budget (half the soft RLIMIT_NOFILE); past it a file is opened,
read and closed each time.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gorae.runtime.stats import NET_DEV_FIELDS, NO_LIMIT, NS_PER_TICK

DirOf = Callable[[str, str], "str | None"]

_CHUNK = 65536


class Files:
    """Small kernel files read whole through cached descriptors; counts what it does (for the tests)."""

    def __init__(self, budget: int | None = None) -> None:
        if budget is None:
            soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
            budget = soft // 2 if soft != resource.RLIM_INFINITY else 1 << 16
        self.budget = budget
        self.held = 0
        self.opened = 0  # open() calls, ever
        self.reads = 0  # read/pread calls, ever

    def read(self, f: File) -> bytes | None:
        """The whole content of `f` (None: it does not exist or cannot be read)."""
        if f.path is None:
            return None
        try:
            if f.fd < 0:
                self.opened += 1
                try:
                    fd = os.open(f.path, os.O_RDONLY | os.O_CLOEXEC)
                except FileNotFoundError:
                    if f.absent_ok:
                        f.path = None  # a file this kernel does not have (v1 blkio without CFQ): never again
                    raise
                if not f.keep or self.held >= self.budget:
                    try:
                        self.reads += 1
                        return self._all(fd)
                    finally:
                        os.close(fd)
                f.fd = fd
                self.held += 1
            self.reads += 1
            return self._all(f.fd)
        except OSError:
            self.close(f)
            return None

    @staticmethod
    def _all(fd: int) -> bytes:
        data = os.pread(fd, _CHUNK, 0)
        while len(data) % _CHUNK == 0 and data:  # a big file (many devices): the rest
            more = os.pread(fd, _CHUNK, len(data))
            if not more:
                break
            data += more
        return data

    def close(self, f: File) -> None:
        if f.fd >= 0:
            try:
                os.close(f.fd)
            except OSError:
                pass
            f.fd = -1
            self.held -= 1


class File:
    """One file's path and, once read, its open descriptor (-1: none). `absent_ok`: a file the kernel may not
    provide at all, not looked for again once found missing (the container's own files are: a container
    gone and back keeps its id and gets a new `CgroupFiles`). `keep=False`: opened for each read (an open
    /proc/<pid>/net/dev holds the network namespace, with its interfaces, alive after the container ends;
    an open cgroup file does not keep the cgroup: it reads ENODEV once removed)."""

    __slots__ = ("path", "fd", "absent_ok", "keep")

    def __init__(self, path: str | None, *, absent_ok: bool = False, keep: bool = True) -> None:
        self.path = path
        self.fd = -1
        self.absent_ok = absent_ok
        self.keep = keep


def _join(d: str | None, name: str) -> str | None:
    return None if d is None else d + "/" + name


def _int(data: bytes | None, default: int = 0) -> int:
    """A one-value file (as stats._int: "max" and garbage read as `default`)."""
    if not data:
        return default
    first = data.split(None, 1)
    if not first or first[0] == b"max":
        return default
    try:
        return int(first[0])
    except ValueError:
        return default


def _key(data: bytes | None, key: bytes) -> int:
    """The value of "key value" line `key` of a flat-keyed file (0 when absent or malformed)."""
    if not data:
        return 0
    if data.startswith(key + b" "):
        start = len(key) + 1
    else:
        i = data.find(b"\n" + key + b" ")
        if i < 0:
            return 0
        start = i + len(key) + 2
    end = data.find(b"\n", start)
    text = data[start:] if end < 0 else data[start:end]
    try:
        return int(text)
    except ValueError:
        return 0


Blkio = list[tuple[int, int, int, int]]  # (major, minor, read, write) per line group, summed later


def _blkio_v1(data: bytes | None) -> Blkio:
    out: Blkio = []
    for line in (data or b"").splitlines():
        parts = line.split()
        if len(parts) != 3 or b":" not in parts[0]:
            continue
        op = parts[1].lower()
        if op != b"read" and op != b"write":
            continue
        try:
            major, minor = (int(x) for x in parts[0].split(b":"))
            value = int(parts[2])
        except ValueError:
            continue
        out.append((major, minor, value, 0) if op == b"read" else (major, minor, 0, value))
    return out


def _has_entries_v1(data: bytes | None) -> bool:
    """Whether a v1 blkio file has any "maj:min op value" line (stats._blkio_v1's fallback test)."""
    for line in (data or b"").splitlines():
        parts = line.split()
        if len(parts) == 3 and b":" in parts[0]:
            return True
    return False


def _blkio_v2(data: bytes | None) -> tuple[Blkio, Blkio]:
    nbytes: Blkio = []
    nios: Blkio = []
    for line in (data or b"").splitlines():
        parts = line.split()
        if not parts or b":" not in parts[0]:
            continue
        try:
            major, minor = (int(x) for x in parts[0].split(b":"))
        except ValueError:
            continue
        kv = dict(p.split(b"=", 1) for p in parts[1:] if b"=" in p)
        try:
            if b"rbytes" in kv or b"wbytes" in kv:
                nbytes.append((major, minor, int(kv.get(b"rbytes", 0)), int(kv.get(b"wbytes", 0))))
            if b"rios" in kv or b"wios" in kv:
                nios.append((major, minor, int(kv.get(b"rios", 0)), int(kv.get(b"wios", 0))))
        except ValueError:
            continue
    return nbytes, nios


@dataclass
class Sample:
    """One container's counters, as the collector exports them."""

    cpu_total: float = 0.0  # seconds
    cpu_user: float = 0.0
    cpu_system: float = 0.0
    throttled: int = 0
    mem_usage: int = 0
    mem_working_set: int = 0
    mem_rss: int = 0
    mem_cache: int = 0
    mem_limit: int = 0  # 0: no limit
    pids: int = 0
    io_bytes: Blkio | None = None
    io_ops: Blkio | None = None


class CgroupFiles:
    """The cgroup files of one container, held open between scrapes."""

    V1 = (
        ("cpuacct", "cpuacct.usage"), ("cpuacct", "cpuacct.stat"), ("cpu", "cpu.stat"),
        ("memory", "memory.usage_in_bytes"), ("memory", "memory.limit_in_bytes"), ("memory", "memory.stat"),
        ("pids", "pids.current"),
        ("blkio", "blkio.throttle.io_service_bytes_recursive"), ("blkio", "blkio.io_service_bytes_recursive"),
        ("blkio", "blkio.throttle.io_serviced_recursive"), ("blkio", "blkio.io_serviced_recursive"),
    )
    V2 = ("cpu.stat", "memory.current", "memory.max", "memory.stat", "pids.current", "io.stat")

    def __init__(self, cgroups_path: str, *, v2: bool, dir_of: DirOf) -> None:
        self.v2 = v2
        if v2:
            d = dir_of("", cgroups_path)
            self.files = [File(_join(d, name)) for name in self.V2]
        else:
            dirs: dict[str, str | None] = {}
            for ctl, _ in self.V1:
                if ctl not in dirs:
                    dirs[ctl] = dir_of(ctl, cgroups_path)
            self.files = [File(_join(dirs[ctl], name), absent_ok=name.startswith("blkio."))
                          for ctl, name in self.V1]

    def close(self, files: Files) -> None:
        for f in self.files:
            files.close(f)

    def sample(self, files: Files, host_memory: int) -> Sample:
        r = files.read
        fs = self.files
        s = Sample()
        if self.v2:
            cpu = r(fs[0])
            s.cpu_total = _key(cpu, b"usage_usec") * 1000 / 1e9
            s.cpu_user = _key(cpu, b"user_usec") * 1000 / 1e9
            s.cpu_system = _key(cpu, b"system_usec") * 1000 / 1e9
            s.throttled = _key(cpu, b"nr_throttled")
            s.mem_usage = _int(r(fs[1]))
            limit = _int(r(fs[2]), 0) or host_memory
            mstat = r(fs[3])
            s.mem_rss, s.mem_cache = _key(mstat, b"anon"), _key(mstat, b"file")
            inactive = _key(mstat, b"inactive_file")
            s.pids = _int(r(fs[4]))
            s.io_bytes, s.io_ops = _blkio_v2(r(fs[5]))
        else:
            s.cpu_total = _int(r(fs[0])) / 1e9
            ticks = r(fs[1])
            s.cpu_user = _key(ticks, b"user") * NS_PER_TICK / 1e9
            s.cpu_system = _key(ticks, b"system") * NS_PER_TICK / 1e9
            s.throttled = _key(r(fs[2]), b"nr_throttled")
            s.mem_usage = _int(r(fs[3]))
            limit = _int(r(fs[4]), NO_LIMIT)
            if limit >= NO_LIMIT:
                limit = host_memory
            mstat = r(fs[5])
            s.mem_rss, s.mem_cache = _key(mstat, b"total_rss"), _key(mstat, b"total_cache")
            inactive = _key(mstat, b"total_inactive_file")
            s.pids = _int(r(fs[6]))
            data = r(fs[7])
            s.io_bytes = _blkio_v1(data if _has_entries_v1(data) else r(fs[8]))
            data = r(fs[9])
            s.io_ops = _blkio_v1(data if _has_entries_v1(data) else r(fs[10]))
        s.mem_working_set = max(0, s.mem_usage - inactive)
        s.mem_limit = 0 if limit == host_memory else limit
        return s


NET_USED = (0, 1, 2, 3, 8, 9, 10, 11)  # rx bytes packets errs drop, tx bytes packets errs drop
_NFIELDS = len(NET_DEV_FIELDS)


def parse_net_dev(data: bytes) -> list[tuple[str, Sequence[int]]]:
    """/proc/net/dev as (interface, its 8 exported counters) sorted by name, loopback left out (as
    cAdvisor); lines `stats.parse_net_dev` skips are skipped."""
    out: dict[str, Sequence[int]] = {}
    for line in data.splitlines()[2:]:
        name, sep, rest = line.partition(b":")
        fields = rest.split()
        ifname = name.strip()
        if not sep or len(fields) < _NFIELDS or not ifname:
            continue
        try:
            values = [int(x) for x in fields[:_NFIELDS]]
        except ValueError:
            continue
        try:
            text = ifname.decode()
        except UnicodeDecodeError:
            continue
        out[text] = [values[i] for i in NET_USED]
    return sorted((k, v) for k, v in out.items() if k != "lo")
