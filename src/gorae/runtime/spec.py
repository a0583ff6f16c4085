"""Building a container's OCI runtime spec (config.json) from Docker API `Config` and `HostConfig`.

Owns Docker's defaults (capabilities, masked/read-only paths, /dev and friends, rlimits, seccomp)
and the mapping of every HostConfig knob gorae supports. A pure function of its inputs and of the
files it reads (the rootfs's /etc/passwd and /etc/group, the seccomp profile); it never writes,
mounts or starts anything.
"""

from __future__ import annotations

import functools
import os
import re
import resource
import stat
from typing import Any

from gorae.errors import InvalidParameter
from gorae.runtime import seccomp
from gorae.runtime.caps import compute_caps
from gorae.runtime.users import resolve_user

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHM_SIZE = 64 * 1024 * 1024
DEFAULT_NOFILE = 1048576
INIT_BINARY = "/usr/bin/tini-static"
INIT_PATH = "/sbin/docker-init"
CPU_PERIOD = 100000

MASKED_PATHS = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

# moby's default device cgroup rules: deny all, then these.
DEFAULT_DEVICE_RULES: list[dict[str, Any]] = [
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "access": "m"},
    {"allow": True, "type": "b", "access": "m"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},  # null
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},  # random
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},  # full
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},  # tty
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},  # zero
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},  # urandom
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},  # /dev/pts/*
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},  # ptmx
    {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},  # tun
]

RLIMITS = {
    "as",
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
}


@functools.lru_cache(maxsize=4)
def _default_profile(path: str, mtime: float) -> dict[str, Any]:
    return seccomp.load_profile(path)


def combine_args(config: dict[str, Any]) -> list[str]:
    """Entrypoint + Cmd as Docker combines them."""
    ep = config.get("Entrypoint") or []
    cmd = config.get("Cmd") or []
    if isinstance(ep, str):
        ep = [ep]
    if isinstance(cmd, str):
        cmd = [cmd]
    args = [*ep, *cmd]
    if not args:
        raise InvalidParameter("No command specified")
    return [str(a) for a in args]


def build_env(config: dict[str, Any], home: str) -> list[str]:
    """PATH and HOSTNAME defaults (TERM=xterm with a tty), overridden in place by Config.Env; HOME last."""
    env: list[str] = [f"PATH={DEFAULT_PATH}"]
    if config.get("Hostname"):
        env.append(f"HOSTNAME={config['Hostname']}")
    if config.get("Tty"):
        env.append("TERM=xterm")
    index = {e.split("=", 1)[0]: i for i, e in enumerate(env)}
    for e in config.get("Env") or []:
        key = e.split("=", 1)[0]
        if "=" not in e:
            continue  # "VAR" alone means "take it from the client's env"; the CLI resolves it
        if key in index:
            env[index[key]] = e
        else:
            index[key] = len(env)
            env.append(e)
    if "HOME" not in index:
        env.append(f"HOME={home}")
    return env


def _security_opts(opts: list[str]) -> tuple[bool, str | None]:
    """(no_new_privileges, seccomp: None=default, "unconfined", or JSON text)."""
    nnp = False
    sec: str | None = None
    for opt in opts or []:
        if opt == "no-new-privileges":
            nnp = True
            continue
        key, sep, val = opt.partition("=")
        if not sep:
            key, sep, val = opt.partition(":")
        if not sep:
            raise InvalidParameter(f"Invalid --security-opt: {opt!r}")
        if key == "no-new-privileges":
            if val.lower() not in ("true", "false"):
                raise InvalidParameter(f"invalid --security-opt 2: {opt!r}")
            nnp = val.lower() == "true"
        elif key == "seccomp":
            sec = val
        elif key in ("apparmor", "label", "systempaths"):
            pass  # no AppArmor/SELinux on this host; accepted and ignored
        else:
            raise InvalidParameter(f"invalid --security-opt 1: {opt!r}")
    return nnp, sec


def _memory(hc: dict[str, Any]) -> dict[str, Any]:
    mem: dict[str, Any] = {}
    limit = int(hc.get("Memory") or 0)
    swap = int(hc.get("MemorySwap") or 0)
    if limit < 0:
        raise InvalidParameter("invalid memory limit")
    if 0 < limit < 6 * 1024 * 1024:
        raise InvalidParameter("Minimum memory limit allowed is 6MB")
    if limit:
        mem["limit"] = limit
        if swap == -1:
            mem["swap"] = -1
        elif swap > 0:
            if swap < limit:
                raise InvalidParameter("Minimum memoryswap limit should be larger than memory limit")
            mem["swap"] = swap
        else:
            mem["swap"] = 2 * limit
    elif swap > 0:
        raise InvalidParameter("You should always set the Memory limit when using Memoryswap limit")
    if hc.get("MemoryReservation"):
        mem["reservation"] = int(hc["MemoryReservation"])
    if hc.get("OomKillDisable"):
        mem["disableOOMKiller"] = True
    if hc.get("MemorySwappiness") is not None and int(hc["MemorySwappiness"]) >= 0:
        mem["swappiness"] = int(hc["MemorySwappiness"])
    return mem


def _cpu(hc: dict[str, Any]) -> dict[str, Any]:
    cpu: dict[str, Any] = {}
    nano = int(hc.get("NanoCpus") or 0)
    if nano and (hc.get("CpuQuota") or hc.get("CpuPeriod")):
        raise InvalidParameter("Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set")
    if nano:
        if nano < 0 or nano > (os.cpu_count() or 1) * 10**9:
            raise InvalidParameter(
                f"Range of CPUs is from 0.01 to {float(os.cpu_count() or 1):.2f}, as there are only "
                f"{os.cpu_count()} CPUs available"
            )
        cpu["period"] = CPU_PERIOD
        cpu["quota"] = nano * CPU_PERIOD // 10**9
    if hc.get("CpuShares"):
        cpu["shares"] = int(hc["CpuShares"])
    if hc.get("CpuQuota"):
        cpu["quota"] = int(hc["CpuQuota"])
    if hc.get("CpuPeriod"):
        cpu["period"] = int(hc["CpuPeriod"])
    if hc.get("CpusetCpus"):
        cpu["cpus"] = str(hc["CpusetCpus"])
    if hc.get("CpusetMems"):
        cpu["mems"] = str(hc["CpusetMems"])
    return cpu


def default_nofile() -> int:
    """dockerd's 1048576, clamped to what this daemon may grant (raising a hard limit needs
    CAP_SYS_RESOURCE in the init user namespace, which a sandboxed daemon may lack)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        return DEFAULT_NOFILE
    return min(DEFAULT_NOFILE, hard)


def _rlimits(hc: dict[str, Any]) -> list[dict[str, Any]]:
    limits: dict[str, tuple[int, int]] = {"nofile": (default_nofile(), default_nofile())}
    for u in hc.get("Ulimits") or []:
        name = str(u.get("Name", "")).lower()
        if name not in RLIMITS:
            raise InvalidParameter(f"invalid ulimit type: {name}")
        soft, hard = int(u.get("Soft", 0)), int(u.get("Hard", 0))
        if soft > hard and hard != -1:
            raise InvalidParameter(
                f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
            )
        limits[name] = (soft, hard)
    return [
        {"type": f"RLIMIT_{k.upper()}", "soft": s & 0xFFFFFFFFFFFFFFFF, "hard": h & 0xFFFFFFFFFFFFFFFF}
        for k, (s, h) in limits.items()
    ]


def _host_devices() -> list[dict[str, Any]]:
    """All char/block devices of the host's /dev (for Privileged), skipping ptys and the console."""
    out: list[dict[str, Any]] = []
    for dirpath, dirnames, filenames in os.walk("/dev"):
        dirnames[:] = [
            d for d in dirnames if os.path.join(dirpath, d) not in ("/dev/pts", "/dev/shm", "/dev/mqueue")
        ]
        for fn in sorted(filenames):
            p = os.path.join(dirpath, fn)
            if p in ("/dev/console", "/dev/ptmx", "/dev/tty"):
                continue
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode):
                t = "c"
            elif stat.S_ISBLK(st.st_mode):
                t = "b"
            else:
                continue
            out.append(
                {
                    "path": p,
                    "type": t,
                    "major": os.major(st.st_rdev),
                    "minor": os.minor(st.st_rdev),
                    "fileMode": stat.S_IMODE(st.st_mode),
                    "uid": st.st_uid,
                    "gid": st.st_gid,
                }
            )
    return out


_CGROUP_RULE = re.compile(r"([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})")


def _device_node(host: str, in_ctr: str, perms: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(linux.devices entry, cgroup rule) for one host device node; None if `host` is not one."""
    try:
        st = os.stat(host)
    except OSError:
        return None
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        return None
    major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
    node = {
        "path": in_ctr,
        "type": kind,
        "major": major,
        "minor": minor,
        "fileMode": stat.S_IMODE(st.st_mode),
        "uid": st.st_uid,
        "gid": st.st_gid,
    }
    return node, {"allow": True, "type": kind, "major": major, "minor": minor, "access": perms}


def user_devices(devices: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """moby's devicesFromPath for `--device HOST[:CTR][:PERMS]`: the host path's symlinks resolved, a
    device node or a directory of them (walked, the prefix swapped for the container path)."""
    nodes: list[dict[str, Any]] = []
    rules: list[dict[str, Any]] = []
    for dev in devices or []:
        host = str(dev.get("PathOnHost") or "")
        in_ctr = str(dev.get("PathInContainer") or "") or host
        perms = str(dev.get("CgroupPermissions") or "") or "rwm"
        if not host.startswith("/"):
            raise InvalidParameter(f'error gathering device information while adding custom device "{host}": '
                                   "no such file or directory")
        if any(c not in "rwm" for c in perms):
            raise InvalidParameter(f"invalid device permissions {perms!r} for {host}")
        resolved = os.path.realpath(host)
        one = _device_node(resolved, in_ctr, perms)
        if one is not None:
            nodes.append(one[0])
            rules.append(one[1])
            continue
        if not os.path.isdir(resolved):
            raise InvalidParameter(
                f'error gathering device information while adding custom device "{host}": not a device node'
            )
        for dirpath, dirnames, filenames in os.walk(resolved):
            dirnames.sort()
            for fn in sorted(filenames):
                p = os.path.join(dirpath, fn)
                sub = _device_node(p, in_ctr.rstrip("/") + p[len(resolved):], perms)
                if sub is not None:
                    nodes.append(sub[0])
                    rules.append(sub[1])
    return nodes, rules


def cgroup_rules(rules: list[str]) -> list[dict[str, Any]]:
    """`--device-cgroup-rule 'c 1:3 mr'` as OCI device rules ('*' = any major/minor)."""
    out: list[dict[str, Any]] = []
    for rule in rules or []:
        m = _CGROUP_RULE.fullmatch(str(rule))
        if m is None:
            raise InvalidParameter(f"invalid device cgroup rule format: '{rule}'")
        entry: dict[str, Any] = {"allow": True, "type": m.group(1), "access": m.group(4)}
        if m.group(2) != "*":
            entry["major"] = int(m.group(2))
        if m.group(3) != "*":
            entry["minor"] = int(m.group(3))
        out.append(entry)
    return out


def _default_mounts(shm_size: int, privileged: bool) -> list[dict[str, Any]]:
    ro = [] if privileged else ["ro"]
    return [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", *ro],
        },
        {
            "destination": "/sys/fs/cgroup",
            "type": "cgroup",
            "source": "cgroup",
            "options": ["nosuid", "noexec", "nodev", "relatime", *(ro or ["rw"])],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={shm_size}"],
        },
    ]


def _tmpfs_mounts(tmpfs: dict[str, str]) -> list[dict[str, Any]]:
    out = []
    for dest, opts in (tmpfs or {}).items():
        if not dest.startswith("/"):
            raise InvalidParameter(f"invalid mount path for tmpfs: {dest!r} (must be absolute)")
        user_opts = [o for o in (opts or "").split(",") if o]
        base = ["noexec", "nosuid", "nodev"]
        # user options override the defaults (exec beats noexec, ...)
        for o in user_opts:
            opposite = {"exec": "noexec", "suid": "nosuid", "dev": "nodev"}.get(o)
            if opposite in base:
                base.remove(opposite)
        out.append({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": base + user_opts})
    return out


def _bind(src: str, dest: str, ro: bool = False) -> dict[str, Any]:
    return {
        "destination": dest,
        "type": "bind",
        "source": src,
        "options": ["rbind", "rprivate", *(["ro"] if ro else [])],
    }


def build_spec(
    config: dict[str, Any],
    host_config: dict[str, Any],
    *,
    rootfs: str,
    hostname_path: str | None,
    hosts_path: str | None,
    resolv_path: str | None,
    cgroups_path: str,
    netns_path: str | None,
    extra_mounts: list[dict[str, Any]],
    seccomp_profile_path: str = seccomp.DEFAULT_PROFILE,
) -> dict[str, Any]:
    """The OCI runtime spec for a container. Raises InvalidParameter for a bad Config/HostConfig."""
    hc = host_config or {}
    privileged = bool(hc.get("Privileged"))
    args = combine_args(config)
    if hc.get("Init"):
        args = [INIT_PATH, "--", *args]

    user = resolve_user(rootfs, config.get("User"), hc.get("GroupAdd"))
    caps = compute_caps(hc.get("CapAdd"), hc.get("CapDrop"), privileged)
    nnp, seccomp_opt = _security_opts(hc.get("SecurityOpt") or [])
    cwd = config.get("WorkingDir") or "/"
    if not cwd.startswith("/"):
        raise InvalidParameter(f"the working directory '{cwd}' is invalid, it needs to be an absolute path")

    process: dict[str, Any] = {
        "terminal": bool(config.get("Tty")),
        "user": {
            "uid": user.uid,
            "gid": user.gid,
            **({"additionalGids": user.additional_gids} if user.additional_gids else {}),
        },
        "args": args,
        "env": build_env(config, user.home),
        "cwd": cwd,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "rlimits": _rlimits(hc),
        "noNewPrivileges": nnp,
    }
    if hc.get("OomScoreAdj"):
        process["oomScoreAdj"] = int(hc["OomScoreAdj"])

    # namespaces
    network_mode = str(hc.get("NetworkMode") or "")
    namespaces: list[dict[str, Any]] = []
    if str(hc.get("PidMode") or "") != "host":
        namespaces.append({"type": "pid"})
    if str(hc.get("IpcMode") or "") != "host":
        namespaces.append({"type": "ipc"})
    uts_host = str(hc.get("UTSMode") or "") == "host"
    if not uts_host:
        namespaces.append({"type": "uts"})
    namespaces.append({"type": "mount"})
    if network_mode != "host":
        namespaces.append({"type": "network", **({"path": netns_path} if netns_path else {})})
    if str(hc.get("CgroupnsMode") or "") == "private":
        namespaces.append({"type": "cgroup"})

    # mounts: defaults, minus any a user mount replaces; then user mounts, parents before children
    shm_size = int(hc.get("ShmSize") or 0) or DEFAULT_SHM_SIZE
    user_mounts: list[dict[str, Any]] = []
    if hc.get("Init"):
        user_mounts.append(_bind(INIT_BINARY, INIT_PATH, ro=True))
    for path, dest in (
        (hostname_path, "/etc/hostname"),
        (hosts_path, "/etc/hosts"),
        (resolv_path, "/etc/resolv.conf"),
    ):
        if path:
            user_mounts.append(_bind(path, dest))
    user_mounts.extend(extra_mounts or [])
    user_mounts.extend(_tmpfs_mounts(hc.get("Tmpfs") or {}))
    taken = {os.path.normpath(m["destination"]) for m in user_mounts}
    mounts = [m for m in _default_mounts(shm_size, privileged) if m["destination"] not in taken]
    if str(hc.get("IpcMode") or "") == "host":
        mounts = [m for m in mounts if m["destination"] not in ("/dev/shm", "/dev/mqueue")]
    user_mounts_sorted = sorted(user_mounts, key=lambda m: os.path.normpath(m["destination"]).count("/"))
    mounts.extend(user_mounts_sorted)

    resources: dict[str, Any] = {}
    dev_nodes, dev_rules = user_devices(hc.get("Devices") or [])
    if privileged:
        resources["devices"] = [{"allow": True, "access": "rwm"}]
    else:
        resources["devices"] = [dict(r) for r in DEFAULT_DEVICE_RULES] + dev_rules
        resources["devices"] += cgroup_rules(hc.get("DeviceCgroupRules") or [])
    mem = _memory(hc)
    if mem:
        resources["memory"] = mem
    cpu = _cpu(hc)
    if cpu:
        resources["cpu"] = cpu
    pids = int(hc.get("PidsLimit") or 0)
    if pids > 0:
        resources["pids"] = {"limit": pids}
    if hc.get("BlkioWeight"):
        resources["blockIO"] = {"weight": int(hc["BlkioWeight"])}

    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "resources": resources,
        "cgroupsPath": cgroups_path,
    }
    if hc.get("Sysctls"):
        linux["sysctl"] = {str(k): str(v) for k, v in hc["Sysctls"].items()}
    if privileged:
        linux["devices"] = _host_devices()
    elif dev_nodes:
        linux["devices"] = dev_nodes
    if not privileged:
        linux["maskedPaths"] = list(MASKED_PATHS)
        linux["readonlyPaths"] = list(READONLY_PATHS)
        if seccomp_opt != "unconfined":
            if seccomp_opt:
                profile = seccomp.parse_profile(seccomp_opt)
            else:
                st = os.stat(seccomp_profile_path)
                profile = _default_profile(seccomp_profile_path, st.st_mtime)
            linux["seccomp"] = seccomp.to_oci(profile, caps)

    spec: dict[str, Any] = {
        "ociVersion": "1.0.2-dev",
        "process": process,
        "root": {"path": rootfs, "readonly": bool(hc.get("ReadonlyRootfs"))},
        "mounts": mounts,
        "linux": linux,
    }
    if not uts_host:
        if config.get("Hostname"):
            spec["hostname"] = str(config["Hostname"])
        if config.get("Domainname"):
            spec["domainname"] = str(config["Domainname"])
    return spec
