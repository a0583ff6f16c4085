"""The container flags shared by `run` and `create`, and their translation into the create request body
(Config, HostConfig, NetworkingConfig), passing through every field docker would send."""

from __future__ import annotations

from gorae.cli import opts as o
from gorae.cli.flags import O, Opt
from gorae.cli.opts import OptError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def container_opts() -> list[Opt]:
    return [
        O("add-host", None, "list", "Add a custom host-to-IP mapping (host:ip)"),
        O(
            "annotation",
            None,
            "list",
            "Add an annotation to the container (passed through to the OCI runtime)",
            type_name="map",
            default_text="map[]",
        ),
        O("attach", "a", "list", "Attach to STDIN, STDOUT or STDERR"),
        O(
            "blkio-weight",
            None,
            "int",
            "Block IO (relative weight), between 10 and 1000, or 0 to disable",
            type_name="uint16",
            default_text="0",
        ),
        O(
            "blkio-weight-device",
            None,
            "list",
            "Block IO weight (relative device weight)",
            default_text="[]",
        ),
        O("cap-add", None, "list", "Add Linux capabilities"),
        O("cap-drop", None, "list", "Drop Linux capabilities"),
        O("cgroup-parent", None, "string", "Optional parent cgroup for the container"),
        O(
            "cgroupns",
            None,
            "string",
            "Cgroup namespace to use (host|private)\n"
            "'host':    Run the container in the Docker host's cgroup namespace\n"
            "'private': Run the container in its own private cgroup namespace\n"
            "'':        Use the cgroup namespace as configured by the\n"
            "           default-cgroupns-mode option on the daemon (default)",
        ),
        O("cidfile", None, "string", "Write the container ID to the file"),
        O("cpu-count", None, "int", "CPU count (Windows only)"),
        O("cpu-percent", None, "int", "CPU percent (Windows only)"),
        O("cpu-period", None, "int", "Limit CPU CFS (Completely Fair Scheduler) period"),
        O("cpu-quota", None, "int", "Limit CPU CFS (Completely Fair Scheduler) quota"),
        O("cpu-rt-period", None, "int", "Limit CPU real-time period in microseconds"),
        O("cpu-rt-runtime", None, "int", "Limit CPU real-time runtime in microseconds"),
        O("cpu-shares", "c", "int", "CPU shares (relative weight)"),
        O("cpus", None, "string", "Number of CPUs", type_name="decimal"),
        O("cpuset-cpus", None, "string", "CPUs in which to allow execution (0-3, 0,1)"),
        O("cpuset-mems", None, "string", "MEMs in which to allow execution (0-3, 0,1)"),
        O("detach", "d", help="Run container in background and print container ID"),
        O("detach-keys", None, "string", "Override the key sequence for detaching a container"),
        O("device", None, "list", "Add a host device to the container"),
        O("device-cgroup-rule", None, "list", "Add a rule to the cgroup allowed devices list"),
        O(
            "device-read-bps",
            None,
            "list",
            "Limit read rate (bytes per second) from a device",
            default_text="[]",
        ),
        O(
            "device-read-iops",
            None,
            "list",
            "Limit read rate (IO per second) from a device",
            default_text="[]",
        ),
        O(
            "device-write-bps",
            None,
            "list",
            "Limit write rate (bytes per second) to a device",
            default_text="[]",
        ),
        O(
            "device-write-iops",
            None,
            "list",
            "Limit write rate (IO per second) to a device",
            default_text="[]",
        ),
        O("disable-content-trust", None, help="Skip image verification", default=True, default_text="true"),
        O("dns", None, "list", "Set custom DNS servers"),
        O("dns-option", None, "list", "Set DNS options"),
        O("dns-search", None, "list", "Set custom DNS search domains"),
        O("domainname", None, "string", "Container NIS domain name"),
        O("entrypoint", None, "string", "Overwrite the default ENTRYPOINT of the image"),
        O("env", "e", "list", "Set environment variables"),
        O("env-file", None, "list", "Read in a file of environment variables"),
        O("expose", None, "list", "Expose a port or a range of ports"),
        O(
            "gpus",
            None,
            "string",
            "GPU devices to add to the container ('all' to pass all GPUs)",
            type_name="gpu-request",
        ),
        O("group-add", None, "list", "Add additional groups to join"),
        O("health-cmd", None, "string", "Command to run to check health"),
        O(
            "health-interval",
            None,
            "string",
            "Time between running the check (ms|s|m|h) (default 0s)",
            type_name="duration",
        ),
        O("health-retries", None, "int", "Consecutive failures needed to report unhealthy"),
        O(
            "health-start-interval",
            None,
            "string",
            "Time between running the check during the start period (ms|s|m|h) (default 0s)",
            type_name="duration",
        ),
        O(
            "health-start-period",
            None,
            "string",
            "Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)",
            type_name="duration",
        ),
        O(
            "health-timeout",
            None,
            "string",
            "Maximum time to allow one check to run (ms|s|m|h) (default 0s)",
            type_name="duration",
        ),
        O("hostname", "h", "string", "Container host name"),
        O("init", None, help="Run an init inside the container that forwards signals and reaps processes"),
        O("interactive", "i", help="Keep STDIN open even if not attached"),
        O(
            "io-maxbandwidth",
            None,
            "string",
            "Maximum IO bandwidth limit for the system drive (Windows only)",
            type_name="bytes",
        ),
        O(
            "io-maxiops",
            None,
            "int",
            "Maximum IOps limit for the system drive (Windows only)",
            type_name="uint",
        ),
        O("ip", None, "string", "IPv4 address (e.g., 172.30.100.104)"),
        O("ip6", None, "string", "IPv6 address (e.g., 2001:db8::33)"),
        O("ipc", None, "string", "IPC mode to use"),
        O("isolation", None, "string", "Container isolation technology"),
        O("kernel-memory", None, "string", "Kernel memory limit", type_name="bytes"),
        O("label", "l", "list", "Set meta data on a container"),
        O("label-file", None, "list", "Read in a line delimited file of labels"),
        O("link", None, "list", "Add link to another container"),
        O("link-local-ip", None, "list", "Container IPv4/IPv6 link-local addresses"),
        O("log-driver", None, "string", "Logging driver for the container"),
        O("log-opt", None, "list", "Log driver options"),
        O("mac-address", None, "string", "Container MAC address (e.g., 92:d0:c6:0a:29:33)"),
        O("memory", "m", "string", "Memory limit", type_name="bytes"),
        O("memory-reservation", None, "string", "Memory soft limit", type_name="bytes"),
        O(
            "memory-swap",
            None,
            "string",
            "Swap limit equal to memory plus swap: '-1' to enable unlimited swap",
            type_name="bytes",
        ),
        O("memory-swappiness", None, "int", "Tune container memory swappiness (0 to 100)", default=-1),
        O("mount", None, "list", "Attach a filesystem mount to the container", type_name="mount"),
        O("name", None, "string", "Assign a name to the container"),
        O("network", None, "string", "Connect a container to a network", type_name="network"),
        O("network-alias", None, "list", "Add network-scoped alias for the container"),
        O("no-healthcheck", None, help="Disable any container-specified HEALTHCHECK"),
        O("oom-kill-disable", None, help="Disable OOM Killer"),
        O("oom-score-adj", None, "int", "Tune host's OOM preferences (-1000 to 1000)"),
        O("pid", None, "string", "PID namespace to use"),
        O("pids-limit", None, "int", "Tune container pids limit (set -1 for unlimited)"),
        O("platform", None, "string", "Set platform if server is multi-platform capable"),
        O("privileged", None, help="Give extended privileges to this container"),
        O("publish", "p", "list", "Publish a container's port(s) to the host"),
        O("publish-all", "P", help="Publish all exposed ports to random ports"),
        O(
            "pull",
            None,
            "string",
            'Pull image before running ("always", "missing", "never")',
            default="missing",
        ),
        O("quiet", "q", help="Suppress the pull output"),
        O("read-only", None, help="Mount the container's root filesystem as read only"),
        O("restart", None, "string", "Restart policy to apply when a container exits", default="no"),
        O(
            "rm",
            None,
            help="Automatically remove the container and its associated anonymous volumes when it exits",
        ),
        O("runtime", None, "string", "Runtime to use for this container"),
        O("security-opt", None, "list", "Security Options"),
        O("shm-size", None, "string", "Size of /dev/shm", type_name="bytes"),
        O("sig-proxy", None, help="Proxy received signals to the process", default=True, default_text="true"),
        O("stop-signal", None, "string", "Signal to stop the container"),
        O("stop-timeout", None, "int", "Timeout (in seconds) to stop a container"),
        O("storage-opt", None, "list", "Storage driver options for the container"),
        O("sysctl", None, "list", "Sysctl options", type_name="map", default_text="map[]"),
        O("tmpfs", None, "list", "Mount a tmpfs directory"),
        O("tty", "t", help="Allocate a pseudo-TTY"),
        O("ulimit", None, "list", "Ulimit options", type_name="ulimit", default_text="[]"),
        O("use-api-socket", None, help="Bind mount Docker API socket and required auth"),
        O("user", "u", "string", "Username or UID (format: <name|uid>[:<group|gid>])"),
        O("userns", None, "string", "User namespace to use"),
        O("uts", None, "string", "UTS namespace to use"),
        O("volume", "v", "list", "Bind mount a volume"),
        O("volume-driver", None, "string", "Optional volume driver for the container"),
        O("volumes-from", None, "list", "Mount volumes from the specified container(s)"),
        O("workdir", "w", "string", "Working directory inside the container"),
    ]


def _kv_map(values: list[str]) -> dict[str, str]:
    return {k: v for k, _, v in (x.partition("=") for x in values)}


def build_create_body(
    v: dict[str, Any],
    image: str,
    cmd: list[str],
    *,
    attach: list[str],
    api_socket: str | None = None,
    api_version: str = "1.47",
) -> dict[str, Any]:
    """Translate parsed flags into the body of POST /containers/create. Raises OptError for bad values.
    `api_socket` is the daemon's unix socket path, bind-mounted by --use-api-socket."""
    env = []
    for f in v["env_file"]:
        env += o.read_kv_file(f, env=True)
    env += o.parse_env_list(v["env"])
    labels: dict[str, str] = {}
    for f in v["label_file"]:
        labels.update(o.labels_map(o.read_kv_file(f, env=False)))
    labels.update(o.labels_map(v["label"]))
    exposed, bindings = o.parse_ports(v["publish"], v["expose"])
    binds, volumes = o.parse_volumes(v["volume"])
    tty, interactive = v["tty"], v["interactive"]
    config: dict[str, Any] = {
        "Hostname": v["hostname"] or "",
        "Domainname": v["domainname"] or "",
        "User": v["user"] or "",
        "AttachStdin": "stdin" in attach,
        "AttachStdout": "stdout" in attach,
        "AttachStderr": "stderr" in attach,
        "Tty": tty,
        "OpenStdin": interactive,
        "StdinOnce": interactive and "stdin" in attach,
        "Env": env,
        "Cmd": cmd or None,
        "Image": image,
        "Volumes": volumes or None,
        "WorkingDir": v["workdir"] or "",
        "Entrypoint": None,
        "Labels": labels,
    }
    if v["entrypoint"] is not None:
        config["Entrypoint"] = [v["entrypoint"]] if v["entrypoint"] else [""]
    if exposed:
        config["ExposedPorts"] = exposed
    if v["stop_signal"]:
        config["StopSignal"] = v["stop_signal"]
    if v["stop_timeout"] is not None:
        config["StopTimeout"] = v["stop_timeout"]
    if v["mac_address"]:
        config["MacAddress"] = v["mac_address"]
    hc = _healthcheck(v)
    if hc is not None:
        config["Healthcheck"] = hc
    if v["log_driver"] == "none" and v["log_opt"]:
        raise OptError("invalid logging opts for driver none")
    network = v["network"] or "default"
    host: dict[str, Any] = {
        "Binds": binds or None,
        "ContainerIDFile": v["cidfile"] or "",
        "LogConfig": {"Type": v["log_driver"] or "", "Config": _kv_map(v["log_opt"])},
        "NetworkMode": network,
        "PortBindings": bindings,
        "RestartPolicy": o.parse_restart(v["restart"] or "no"),
        "AutoRemove": v["rm"],
        "VolumeDriver": v["volume_driver"] or "",
        "VolumesFrom": v["volumes_from"] or None,
        "CapAdd": v["cap_add"] or None,
        "CapDrop": v["cap_drop"] or None,
        "CgroupnsMode": v["cgroupns"] or "",
        "Dns": v["dns"],
        "DnsOptions": v["dns_option"],
        "DnsSearch": v["dns_search"],
        "ExtraHosts": v["add_host"] or None,
        "GroupAdd": v["group_add"] or None,
        "IpcMode": v["ipc"] or "",
        "Links": v["link"] or None,
        "OomScoreAdj": v["oom_score_adj"] or 0,
        "PidMode": v["pid"] or "",
        "Privileged": v["privileged"],
        "PublishAllPorts": v["publish_all"],
        "ReadonlyRootfs": v["read_only"],
        "SecurityOpt": v["security_opt"] or None,
        "UTSMode": v["uts"] or "",
        "UsernsMode": v["userns"] or "",
        "ShmSize": o.flag_bytes(v["shm_size"], "--shm-size") if v["shm_size"] else 0,
        "CpuShares": v["cpu_shares"] or 0,
        "CgroupParent": v["cgroup_parent"] or "",
        "BlkioWeight": v["blkio_weight"] or 0,
        "BlkioWeightDevice": [_weight_device(d) for d in v["blkio_weight_device"]],
        "BlkioDeviceReadBps": [_throttle(d, "bps") for d in v["device_read_bps"]],
        "BlkioDeviceWriteBps": [_throttle(d, "bps") for d in v["device_write_bps"]],
        "BlkioDeviceReadIOps": [_throttle(d, "iops") for d in v["device_read_iops"]],
        "BlkioDeviceWriteIOps": [_throttle(d, "iops") for d in v["device_write_iops"]],
        "CpuCount": v["cpu_count"] or 0,
        "CpuPercent": v["cpu_percent"] or 0,
        "CpuRealtimePeriod": v["cpu_rt_period"] or 0,
        "CpuRealtimeRuntime": v["cpu_rt_runtime"] or 0,
        "DeviceCgroupRules": v["device_cgroup_rule"] or None,
        "DeviceRequests": _gpus(v["gpus"]) if v["gpus"] else None,
        "IOMaximumBandwidth": o.ram_in_bytes(v["io_maxbandwidth"]) if v["io_maxbandwidth"] else 0,
        "IOMaximumIOps": v["io_maxiops"] or 0,
        "CpuPeriod": v["cpu_period"] or 0,
        "CpuQuota": v["cpu_quota"] or 0,
        "CpusetCpus": v["cpuset_cpus"] or "",
        "CpusetMems": v["cpuset_mems"] or "",
        "Devices": [_device(d) for d in v["device"]],
        "Memory": o.flag_bytes(v["memory"], "-m, --memory") if v["memory"] else 0,
        "MemoryReservation": (
            o.flag_bytes(v["memory_reservation"], "--memory-reservation") if v["memory_reservation"] else 0
        ),
        "MemorySwap": _swap(v["memory_swap"]),
        "MemorySwappiness": None if v["memory_swappiness"] == -1 else v["memory_swappiness"],
        "NanoCpus": o.nano_cpus(v["cpus"]) if v["cpus"] else 0,
        "OomKillDisable": v["oom_kill_disable"],
        "PidsLimit": v["pids_limit"],
        "Ulimits": [o.parse_ulimit(u) for u in v["ulimit"]],
    }
    # docker omits these when unset (omitempty, or only sent when the flag is given)
    if v["mount"]:
        host["Mounts"] = [o.parse_mount(m) for m in v["mount"]]
    if "init" in v["_set"]:
        host["Init"] = v["init"]
    if v["kernel_memory"]:  # docker 28 sends it only to daemons older than API 1.42 (deprecated)
        km = o.flag_bytes(v["kernel_memory"], "--kernel-memory")
        if _vt(api_version) < (1, 42):
            host["KernelMemory"] = km
    if v["use_api_socket"]:
        host["Mounts"] = host.get("Mounts", []) + [
            {"Type": "bind", "Source": api_socket or "/var/run/docker.sock", "Target": "/var/run/docker.sock"}
        ]
    if v["tmpfs"]:
        host["Tmpfs"] = {p: opt for p, _, opt in (t.partition(":") for t in v["tmpfs"])}
    if v["sysctl"]:
        host["Sysctls"] = _kv_map(v["sysctl"])
    if v["storage_opt"]:
        host["StorageOpt"] = _kv_map(v["storage_opt"])
    if v["runtime"]:
        host["Runtime"] = v["runtime"]
    if v["isolation"]:
        host["Isolation"] = v["isolation"]
    if v["annotation"]:
        host["Annotations"] = _kv_map(v["annotation"])
    body: dict[str, Any] = {**config, "HostConfig": host}
    if (
        network not in ("default", "bridge", "host", "none")
        and not network.startswith("container:")
        or v["network_alias"]
        or v["ip"]
        or v["ip6"]
        or v["link_local_ip"]
        or v["mac_address"]
    ):
        ep: dict[str, Any] = {}
        if v["mac_address"]:  # per endpoint since API 1.44 (and still in Config for older daemons)
            ep["MacAddress"] = v["mac_address"]
        if v["network_alias"]:
            ep["Aliases"] = v["network_alias"]
        if v["ip"] or v["ip6"] or v["link_local_ip"]:
            ipam: dict[str, Any] = {}
            if v["ip"]:
                ipam["IPv4Address"] = v["ip"]
            if v["ip6"]:
                ipam["IPv6Address"] = v["ip6"]
            if v["link_local_ip"]:
                ipam["LinkLocalIPs"] = v["link_local_ip"]
            ep["IPAMConfig"] = ipam
        body["NetworkingConfig"] = {"EndpointsConfig": {network: ep}}
    return body


def _swap(s: str | None) -> int:
    if not s:
        return 0
    return -1 if s.strip() == "-1" else o.flag_bytes(s, "--memory-swap")


def _device(s: str) -> dict[str, str]:
    parts = s.split(":")
    host = parts[0]
    ctr = parts[1] if len(parts) > 1 and parts[1].startswith("/") else host
    perms = parts[-1] if len(parts) > 1 and not parts[-1].startswith("/") else "rwm"
    return {"PathOnHost": host, "PathInContainer": ctr, "CgroupPermissions": perms}


def _healthcheck(v: dict[str, Any]) -> dict[str, Any] | None:
    """docker's --health-* / --no-healthcheck flags: a Healthcheck config, NONE, or None (the image's)."""
    flags = ("health_interval", "health_timeout", "health_start_period", "health_start_interval")
    any_health = bool(v["health_cmd"] or v["health_retries"] or any(v[f] for f in flags))
    if v["no_healthcheck"]:
        if any_health:
            raise OptError("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    if not any_health:
        return None
    hc: dict[str, Any] = {}
    if v["health_cmd"]:
        hc["Test"] = ["CMD-SHELL", v["health_cmd"]]
    for flag, key in zip(flags, ("Interval", "Timeout", "StartPeriod", "StartInterval"), strict=True):
        if v[flag]:
            ns = int(o.parse_duration(v[flag]) * 1e9)
            if ns < 0:
                raise OptError(f"--{flag.replace('_', '-')} cannot be negative")
            hc[key] = ns
    if v["health_retries"]:
        if v["health_retries"] < 0:
            raise OptError("--health-retries cannot be negative")
        hc["Retries"] = v["health_retries"]
    return hc


def _weight_device(s: str) -> dict[str, Any]:
    """--blkio-weight-device /dev/sda:200 (docker's ValidateWeightDevice)."""
    path, sep, w = s.partition(":")
    if not sep or not path.startswith("/dev/"):
        raise OptError(f"bad format: {s}")
    try:
        weight = int(w)
    except ValueError:
        raise OptError(f"invalid weight for device: {s}") from None
    if weight != 0 and not 10 <= weight <= 1000:
        raise OptError(f"invalid weight for device: {s}")
    return {"Path": path, "Weight": weight}


def _throttle(s: str, kind: str) -> dict[str, Any]:
    """--device-read-bps /dev/sda:1mb, --device-write-iops /dev/sda:100 (docker's ValidateThrottle*Device)."""
    path, sep, r = s.partition(":")
    if not sep or not path.startswith("/dev/"):
        raise OptError(f"bad format: {s}")
    try:
        rate = o.ram_in_bytes(r) if kind == "bps" else int(r)
    except (OptError, ValueError):
        fmt = "<device-path>:<number>[<unit>]" if kind == "bps" else "<device-path>:<number>"
        tail = ". Unit is optional and can be kb, mb, or gb" if kind == "bps" else ""
        raise OptError(
            f"invalid rate for device: {s}. The correct format is {fmt}. Number must be a positive integer{tail}"
        ) from None
    if rate < 0:
        raise OptError(f"invalid rate for device: {s}")
    return {"Path": path, "Rate": rate}


def _gpus(s: str) -> list[dict[str, Any]]:
    """--gpus all | N | "device=0,1" | "count=2,driver=nvidia,capabilities=utility" (docker's GpuOpts)."""
    req: dict[str, Any] = {"Driver": "", "Count": 0, "DeviceIDs": None, "Capabilities": None, "Options": {}}
    caps: list[str] = ["gpu"]
    import csv

    fields = next(csv.reader([s])) if s else []
    seen_count = False
    for f in fields:
        k, sep, val = f.partition("=")
        if not sep:
            if k == "all" or k.isdigit():
                k, val = "count", k
            else:
                raise OptError(f"invalid argument \"{s}\" for \"--gpus\" flag: unexpected key '{k}' in '{f}'")
        if k == "driver":
            req["Driver"] = val
        elif k == "count":
            seen_count = True
            if val == "all":
                req["Count"] = -1
            else:
                try:
                    req["Count"] = int(val)
                except ValueError:
                    raise OptError(
                        f'invalid argument "{s}" for "--gpus" flag: invalid count ({val}): '
                        'value must be either "all" or an integer'
                    ) from None
        elif k == "device":
            req["DeviceIDs"] = val.split(",")
        elif k == "capabilities":
            caps = [c for c in val.split(",") if c]
        elif k == "options":
            req["Options"].update(_kv_map(val.split(",")))
        else:
            raise OptError(f"invalid argument \"{s}\" for \"--gpus\" flag: unexpected key '{k}' in '{f}'")
    if req["DeviceIDs"] and seen_count:
        raise OptError(
            f'invalid argument "{s}" for "--gpus" flag: cannot set both Count and DeviceIDs on device request'
        )
    if not req["DeviceIDs"] and not seen_count:
        req["Count"] = -1 if not fields else 0
    req["Capabilities"] = [caps]
    return [req]


WINDOWS_ONLY = ("cpu-count", "cpu-percent", "io-maxbandwidth", "io-maxiops")


def _vt(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split(".") if x.isdigit())


def check_platform_flags(v: dict[str, Any], os_type: str = "linux", api_version: str = "1.47") -> str | None:
    """docker's error for a Windows-only flag given to a Linux daemon, or a flag the daemon's API is too old
    for."""
    need = [
        ("annotation", "--annotation", "1.43"),
        ("mac_address", "specify mac-address per network", "1.44"),
    ]
    for dest, what, ver in need:
        if v[dest] and _vt(api_version) < _vt(ver):
            return f'"{what}" requires API version {ver}, but the Docker daemon API version is {api_version}'
    for name in WINDOWS_ONLY:
        if name.replace("-", "_") in v["_set"] and os_type != "windows":
            return (
                f'"--{name}" is only supported on a Docker daemon running on windows, '
                f"but the Docker daemon is running on {os_type}"
            )
    return None
