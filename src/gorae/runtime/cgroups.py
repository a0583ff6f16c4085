"""Locating a container's cgroup directories on cgroup v1 (incl. hybrid) and v2 hosts.

Owns path arithmetic over /proc/self/mountinfo and /proc/<pid>/cgroup; reads only. runc creates the
cgroups (cgroupfs driver); this module never creates, writes or removes one.
"""

from __future__ import annotations

import functools
import os

CGROUP_ROOT = "/sys/fs/cgroup"


@functools.lru_cache(maxsize=1)
def is_unified() -> bool:
    """True on a pure cgroup v2 host (then every controller lives in one hierarchy); a host property, looked
    up once (the metrics collector asks for every controller of every container at each scrape)."""
    return os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers"))


@functools.lru_cache(maxsize=1)
def _mounts() -> tuple[dict[str, tuple[str, str]], tuple[str, str] | None]:
    """v1 controller -> (mountpoint, mount root); and the v2 (mountpoint, root) if any."""
    v1: dict[str, tuple[str, str]] = {}
    v2: tuple[str, str] | None = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fields = pre.split()
            fstype, _src, *rest = post.split()
            root, mountpoint = fields[3], fields[4]
            if fstype == "cgroup2":
                if v2 is None or mountpoint == CGROUP_ROOT:
                    v2 = (mountpoint, root)
            elif fstype == "cgroup":
                opts = rest[0].split(",") if rest else []
                for o in opts:
                    name = o[len("name=") :] if o.startswith("name=") else o
                    if name not in v1:
                        v1[name] = (mountpoint, root)
    return v1, v2


def _self_cgroup(controller: str) -> str:
    """This process's cgroup path in the hierarchy of `controller` ("" = v2)."""
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if (controller == "" and ctrls == "") or controller in ctrls.split(","):
                return path
    return "/"


def _join(mount: tuple[str, str], path: str) -> str:
    mountpoint, root = mount
    rel = os.path.relpath(path, root) if path.startswith(root) and root != "/" else path.lstrip("/")
    return os.path.normpath(os.path.join(mountpoint, rel))


def controller_dir(controller: str, cgroups_path: str) -> str | None:
    """Directory of `cgroups_path` (as given to runc) for a v1 controller, or the v2 dir when
    controller is "" or the host is unified. A relative path is under the daemon's own cgroup, as runc
    resolves it."""
    v1, v2 = _mounts()
    if controller == "" or is_unified() or controller not in v1:
        if v2 is None:
            return None
        mount, ctl = v2, ""
    else:
        mount, ctl = v1[controller], controller
    path = cgroups_path if cgroups_path.startswith("/") else os.path.join(_self_cgroup(ctl), cgroups_path)
    return _join(mount, path)


def use_v2() -> bool:
    """Stats come from v2 files when the memory controller is not on a v1 hierarchy."""
    v1, _ = _mounts()
    return is_unified() or "memory" not in v1


def pids_of(cgroups_path: str) -> list[int]:
    """All pids in the container's cgroup."""
    d = controller_dir("", cgroups_path) if use_v2() else controller_dir("pids", cgroups_path)
    if d is None:
        return []
    try:
        with open(os.path.join(d, "cgroup.procs")) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def cgroup_path_of_pid(pid: int) -> str | None:
    """The cgroup path (as runc's cgroupsPath) of a process: its memory controller's (v1) or v2 path."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    want = "" if use_v2() else "memory"
    for line in lines:
        _, ctrls, path = line.split(":", 2)
        if (want == "" and ctrls == "") or want in ctrls.split(","):
            return path
    return None
