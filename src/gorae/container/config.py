"""The documents of a new container: docker's create-time validation, the image config merged into `Config`,
`HostConfig` with every default docker fills in, and the empty `NetworkSettings` shape.

Owns the exact keys and defaults `docker inspect` shows, so clients that index into them never miss a key.
Pure functions of their inputs: no storage, no runtime.
"""

from __future__ import annotations

import copy
import os
from typing import Any

from gorae.container.hostchecks import (
    MAX_CPU_SHARES,
    check_cpuset,
    check_ulimits,
    validate_host_config,
)
from gorae.container.restart import parse_policy
from gorae.container.schema import CONFIG_FIELDS, CREATE_BODY, HOST_CONFIG, check_body
from gorae.errors import InvalidParameter
from gorae.image.models import CONFIG_ALWAYS
from gorae.network.model import empty_settings
from gorae.runtime.spec import DEFAULT_SHM_SIZE, MASKED_PATHS, READONLY_PATHS

MIN_MEMORY = 6 * 1024 * 1024
_INT64_MAX = 2**63 - 1
MAX_PIDS = 4 * 1024 * 1024  # PID_MAX_LIMIT

HOST_CONFIG_DEFAULTS: dict[str, Any] = {
    "Binds": None,
    "ContainerIDFile": "",
    # conmon writes k8s-file logs, but docker-py returns `run()` output only for these driver names,
    # and gorae's logs behave as json-file's do (read back with `docker logs`)
    "LogConfig": {"Type": "", "Config": {}},
    "NetworkMode": "bridge",
    "PortBindings": {},
    "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
    "AutoRemove": False,
    "VolumeDriver": "",
    "VolumesFrom": None,
    "ConsoleSize": [0, 0],
    "CapAdd": None,
    "CapDrop": None,
    "CgroupnsMode": "host",
    "Dns": [],
    "DnsOptions": [],
    "DnsSearch": [],
    "ExtraHosts": None,
    "GroupAdd": None,
    "IpcMode": "private",
    "Cgroup": "",
    "Links": None,
    "OomScoreAdj": 0,
    "PidMode": "",
    "Privileged": False,
    "PublishAllPorts": False,
    "ReadonlyRootfs": False,
    "SecurityOpt": None,
    "UTSMode": "",
    "UsernsMode": "",
    "ShmSize": DEFAULT_SHM_SIZE,
    "Runtime": "runc",
    "Isolation": "",
    "CpuShares": 0,
    "Memory": 0,
    "NanoCpus": 0,
    "CgroupParent": "",
    "BlkioWeight": 0,
    "BlkioWeightDevice": [],
    "BlkioDeviceReadBps": [],
    "BlkioDeviceWriteBps": [],
    "BlkioDeviceReadIOps": [],
    "BlkioDeviceWriteIOps": [],
    "CpuPeriod": 0,
    "CpuQuota": 0,
    "CpuRealtimePeriod": 0,
    "CpuRealtimeRuntime": 0,
    "CpusetCpus": "",
    "CpusetMems": "",
    "Devices": [],
    "DeviceCgroupRules": None,
    "DeviceRequests": None,
    "MemoryReservation": 0,
    "MemorySwap": 0,
    "MemorySwappiness": None,
    "OomKillDisable": False,
    "PidsLimit": None,
    "Ulimits": None,
    "CpuCount": 0,
    "CpuPercent": 0,
    "IOMaximumIOps": 0,
    "IOMaximumBandwidth": 0,
    "MaskedPaths": MASKED_PATHS,
    "ReadonlyPaths": READONLY_PATHS,
}

# HostConfig keys `POST /containers/{id}/update` may change (docker's container.Resources + RestartPolicy)
UPDATABLE = (
    "CpuShares",
    "Memory",
    "NanoCpus",
    "CgroupParent",
    "BlkioWeight",
    "CpuPeriod",
    "CpuQuota",
    "CpuRealtimePeriod",
    "CpuRealtimeRuntime",
    "CpusetCpus",
    "CpusetMems",
    "MemoryReservation",
    "MemorySwap",
    "MemorySwappiness",
    "OomKillDisable",
    "PidsLimit",
    "KernelMemory",
    "Ulimits",
)


def env_key(entry: str) -> str:
    return entry.split("=", 1)[0]


def merge_image_config(user: dict[str, Any], image: dict[str, Any]) -> dict[str, Any]:
    """docker's merge of an image's config into the user's Config (the user wins, key by key)."""
    out = dict(user)
    if not out.get("User"):
        out["User"] = image.get("User") or ""
    img_ports = image.get("ExposedPorts") or {}
    if not out.get("ExposedPorts"):
        if img_ports:
            out["ExposedPorts"] = dict(img_ports)
    else:
        out["ExposedPorts"] = {**img_ports, **out["ExposedPorts"]}
    user_env = list(out.get("Env") or [])
    if not user_env:
        out["Env"] = list(image.get("Env") or [])
    else:
        have = {env_key(e) for e in user_env}
        out["Env"] = user_env + [e for e in image.get("Env") or [] if env_key(e) not in have]
    labels = dict(out.get("Labels") or {})
    for k, v in (image.get("Labels") or {}).items():
        labels.setdefault(k, v)
    out["Labels"] = labels
    if not out.get("Entrypoint"):
        if not out.get("Cmd"):
            out["Cmd"] = image.get("Cmd")
            if image.get("ArgsEscaped"):
                out["ArgsEscaped"] = True
        if out.get("Entrypoint") is None:
            out["Entrypoint"] = image.get("Entrypoint")
    img_hc = image.get("Healthcheck")
    if isinstance(img_hc, dict) and img_hc:
        user_hc = out.get("Healthcheck")
        if not isinstance(user_hc, dict):
            out["Healthcheck"] = dict(img_hc)
        else:  # docker: the user's settings win one by one, the image fills the zero ones
            merged = dict(user_hc)
            for key in ("Test", "Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"):
                if not merged.get(key) and img_hc.get(key):
                    merged[key] = img_hc[key]
            out["Healthcheck"] = merged
    if not out.get("WorkingDir"):
        out["WorkingDir"] = image.get("WorkingDir") or ""
    img_vols = image.get("Volumes") or {}
    if not out.get("Volumes"):
        out["Volumes"] = dict(img_vols) if img_vols else None
    else:
        out["Volumes"] = {**img_vols, **out["Volumes"]}
    if not out.get("StopSignal") and image.get("StopSignal"):
        out["StopSignal"] = image["StopSignal"]
    if not out.get("OnBuild") and image.get("OnBuild"):
        out["OnBuild"] = image["OnBuild"]
    return out


def _as_list(value: Any, what: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise InvalidParameter(f"invalid {what}: expected a string or a list of strings")


MIN_HEALTH_DURATION = 1_000_000  # 1ms, docker's container.MinimumDuration


def validate_healthcheck(hc: Any) -> None:
    """dockerd's create-time checks of Config.Healthcheck (durations of at least 1ms, or 0 for the default)."""
    if not isinstance(hc, dict):
        return
    for key in ("Interval", "Timeout", "StartPeriod", "StartInterval"):
        value = hc.get(key) or 0
        if value != 0 and value < MIN_HEALTH_DURATION:
            raise InvalidParameter(f"{key} in Healthcheck cannot be less than 1ms")
    if (hc.get("Retries") or 0) < 0:
        raise InvalidParameter("Retries in Healthcheck cannot be negative")


def normalize_config(body: dict[str, Any]) -> dict[str, Any]:
    """The `Config` part of a create body with docker's defaults and types checked."""
    check_body(body, CREATE_BODY)  # every field at every depth, as dockerd's decoder does
    cfg = copy.deepcopy(CONFIG_ALWAYS)  # docker's container.Config keys, as image inspect shows them
    for key, value in body.items():
        if key in CONFIG_FIELDS:  # unknown fields are dropped, as Go's decoder does
            cfg[key] = value
    cfg["Cmd"] = _as_list(cfg.get("Cmd"), "Cmd")
    cfg["Entrypoint"] = _as_list(cfg.get("Entrypoint"), "Entrypoint")
    if cfg["Entrypoint"] == [""]:  # `--entrypoint ""`: reset the image's entrypoint
        cfg["Entrypoint"] = []
    if cfg.get("Env") is not None and not (
        isinstance(cfg["Env"], list) and all(isinstance(e, str) for e in cfg["Env"])
    ):
        raise InvalidParameter("invalid Env: expected a list of strings")
    validate_healthcheck(cfg.get("Healthcheck"))
    labels = cfg.get("Labels")
    if labels is not None and not isinstance(labels, dict):
        raise InvalidParameter("invalid Labels: expected an object")
    if labels:
        cfg["Labels"] = {str(k): str(v) for k, v in labels.items()}
    return cfg


def normalize_host_config(hc: dict[str, Any] | None, ncpu: int | None = None) -> dict[str, Any]:
    """`HostConfig` with docker's defaults filled in and docker's create-time checks."""
    hc = hc or {}
    check_body(hc, HOST_CONFIG, "HostConfig")
    out = copy.deepcopy(HOST_CONFIG_DEFAULTS)
    for key, value in hc.items():
        if key not in HOST_CONFIG.fields:
            continue  # unknown fields are dropped, as Go's decoder does
        if value is None and key in out and out[key] is not None and key not in ("PidsLimit",):
            continue  # a null sent by a client keeps docker's default
        out[key] = value
    if out.get("NetworkMode") in ("", "default", None):
        out["NetworkMode"] = "bridge"
    if not out.get("ShmSize"):
        out["ShmSize"] = DEFAULT_SHM_SIZE
    # what dockerd's adaptContainerSettings and create route fill in for the values the CLI sends "unset"
    if not out.get("IpcMode"):
        out["IpcMode"] = "private"
    if not out.get("CgroupnsMode"):
        out["CgroupnsMode"] = "private" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "host"
    if isinstance(out.get("PidsLimit"), int) and out["PidsLimit"] <= 0:
        out["PidsLimit"] = None
    if out.get("MemorySwappiness") == -1:
        out["MemorySwappiness"] = None
    if isinstance(out.get("Memory"), int) and out["Memory"] > 0 and not out.get("MemorySwap"):
        # docker doubles the limit (and overflows int64 for a huge one): unlimited swap past int64
        out["MemorySwap"] = 2 * out["Memory"] if 2 * out["Memory"] <= _INT64_MAX else -1
    log_config = out.get("LogConfig") or {}  # the daemon's default driver is merged in at create
    out["LogConfig"] = {"Type": str(log_config.get("Type") or ""), "Config": dict(log_config.get("Config") or {})}
    policy = parse_policy(out.get("RestartPolicy"))
    out["RestartPolicy"] = policy.to_doc()
    if out.get("AutoRemove") and not policy.is_none:
        raise InvalidParameter("can't create 'AutoRemove' container with restart policy")
    validate_resources(out, ncpu)
    validate_host_config(out)
    if out.get("Privileged"):
        out["MaskedPaths"] = None
        out["ReadonlyPaths"] = None
    return out


def validate_resources(hc: dict[str, Any], ncpu: int | None = None) -> None:
    """docker's checks of the resource knobs (InvalidParameter with its texts)."""
    mem = int(hc.get("Memory") or 0)
    if mem and mem < MIN_MEMORY:
        raise InvalidParameter("Minimum memory limit allowed is 6MB")
    swap = int(hc.get("MemorySwap") or 0)
    if mem and swap > 0 and swap < mem:
        raise InvalidParameter("Minimum memoryswap limit should be larger than memory limit, see usage")
    if swap > 0 and not mem:
        raise InvalidParameter(
            "You should always set the Memory limit when using Memoryswap limit, see usage"
        )
    nano = int(hc.get("NanoCpus") or 0)
    cpus = ncpu or os.cpu_count() or 1
    if nano and (nano < 10_000_000 or nano > cpus * 1_000_000_000):
        raise InvalidParameter(
            f"Range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available"
        )
    if nano and (hc.get("CpuPeriod") or hc.get("CpuQuota")):
        raise InvalidParameter("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    shares = int(hc.get("CpuShares") or 0)
    if shares < 0:
        raise InvalidParameter("invalid CPU shares: must not be negative")
    if shares > MAX_CPU_SHARES:  # dockerd lowers it to the kernel's maximum (with a warning in its log)
        hc["CpuShares"] = MAX_CPU_SHARES
    period = int(hc.get("CpuPeriod") or 0)
    if period and not 1000 <= period <= 1_000_000:
        raise InvalidParameter(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
        )
    quota = int(hc.get("CpuQuota") or 0)
    if 0 < quota < 1000:
        raise InvalidParameter("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    weight = int(hc.get("BlkioWeight") or 0)
    if weight and not 10 <= weight <= 1000:
        raise InvalidParameter("Range of blkio weight is from 10 to 1000")
    check_cpuset(str(hc.get("CpusetCpus") or ""), "cpus")
    check_cpuset(str(hc.get("CpusetMems") or ""), "mems")
    check_ulimits(hc.get("Ulimits") or [])
    pids = hc.get("PidsLimit")
    if pids is not None and not isinstance(pids, int):
        raise InvalidParameter("invalid PidsLimit: expected an integer")
    if isinstance(pids, int) and pids > MAX_PIDS:  # the kernel's pids.max refuses it at start
        raise InvalidParameter(f"invalid PidsLimit {pids}: the maximum is {MAX_PIDS}")
    swappiness = hc.get("MemorySwappiness")
    if swappiness is not None and swappiness != -1 and not 0 <= int(swappiness) <= 100:
        raise InvalidParameter(f"Invalid value: {swappiness}, valid memory swappiness range is 0-100")


def command_of(config: dict[str, Any]) -> tuple[str, list[str]]:
    """(Path, Args) of inspect: the first word of Entrypoint+Cmd and the rest; InvalidParameter if empty."""
    argv = list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])
    if not argv:
        raise InvalidParameter("No command specified")
    return argv[0], argv[1:]


def network_settings(sandbox_key: str = "") -> dict[str, Any]:
    """`NetworkSettings` of a container without networks yet (issue 4 fills in Networks and Ports)."""
    return empty_settings(sandbox_key)
