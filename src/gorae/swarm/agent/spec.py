"""A task as a container: its name, Docker's `com.docker.swarm.*` labels, and the container-create body made
from the task's ContainerSpec and Resources (moby's daemon/cluster/executor/container/container.go).

Pure functions: no I/O. The files of secrets and configs are given as (host path, target, read-only) binds.
"""

from __future__ import annotations

import posixpath
from typing import Any

LABEL = "com.docker.swarm"
TASK_ID = f"{LABEL}.task.id"
NODE_ID = f"{LABEL}.node.id"
SERVICE_ID = f"{LABEL}.service.id"


def task_name(task: dict[str, Any]) -> str:
    """`<service>.<slot>.<task id>` (global services: the node ID for the slot), unless the task is named."""
    if task.get("Name"):
        return str(task["Name"])
    slot = task.get("Slot")
    slot_part = str(slot) if isinstance(slot, int) and slot > 0 else str(task.get("NodeID", ""))
    return f"{task.get('ServiceName', '')}.{slot_part}.{task['ID']}"


def labels(task: dict[str, Any]) -> dict[str, str]:
    """The container's labels: the ContainerSpec's, the task's own, then the system labels over both."""
    container = (task.get("Spec") or {}).get("ContainerSpec") or {}
    out: dict[str, str] = {str(k): str(v) for k, v in (container.get("Labels") or {}).items()}
    out.update({str(k): str(v) for k, v in (task.get("Labels") or {}).items()})
    out.update(
        {
            f"{LABEL}.task": "",
            TASK_ID: str(task["ID"]),
            f"{LABEL}.task.name": task_name(task),
            NODE_ID: str(task.get("NodeID", "")),
            SERVICE_ID: str(task.get("ServiceID", "")),
            f"{LABEL}.service.name": str(task.get("ServiceName", "")),
        }
    )
    return out


def secret_target(ref: dict[str, Any]) -> str:
    """Where a secret reference's file goes: /run/secrets/<File.Name> unless absolute."""
    name = str((ref.get("File") or {}).get("Name") or ref.get("SecretName") or "")
    return name if name.startswith("/") else posixpath.join("/run/secrets", name)


def config_target(ref: dict[str, Any]) -> str:
    """Where a config reference's file goes: File.Name, relative to / (default: /<config name>)."""
    name = str((ref.get("File") or {}).get("Name") or ref.get("ConfigName") or "")
    return name if name.startswith("/") else "/" + name


def file_mode(ref: dict[str, Any]) -> tuple[int, int, int]:
    """(mode, uid, gid) of a secret or config file (0444, root by default)."""
    f = ref.get("File") or {}
    mode = f.get("Mode")
    try:
        uid = int(f.get("UID") or 0)
        gid = int(f.get("GID") or 0)
    except (TypeError, ValueError):
        uid = gid = 0
    return (int(mode) & 0o7777 if isinstance(mode, int) else 0o444), uid, gid


def healthcheck(hc: dict[str, Any] | None) -> dict[str, Any] | None:
    if not hc:
        return None
    return {
        k: hc[k]
        for k in ("Test", "Interval", "Timeout", "Retries", "StartPeriod", "StartInterval")
        if k in hc
    }


def create_body(task: dict[str, Any], files: list[tuple[str, str]]) -> dict[str, Any]:
    """The container-create body for `task`; `files` are (host path, target) of its secrets and configs."""
    spec = task.get("Spec") or {}
    c = spec.get("ContainerSpec") or {}
    body: dict[str, Any] = {
        "Image": c.get("Image", ""),
        "Labels": labels(task),
        "Env": list(c.get("Env") or []),
        "Tty": bool(c.get("TTY")),
        "OpenStdin": bool(c.get("OpenStdin")),
    }
    for key, field in (
        ("Hostname", "Hostname"),
        ("User", "User"),
        ("WorkingDir", "Dir"),
        ("StopSignal", "StopSignal"),
    ):
        if c.get(field):
            body[key] = c[field]
    command, args = list(c.get("Command") or []), list(c.get("Args") or [])
    if command:
        body["Entrypoint"] = command
        body["Cmd"] = args
    elif args:
        body["Cmd"] = args
    hc = healthcheck(
        c.get("Healthcheck") or c.get("HealthCheck")
    )  # Go's field is Healthcheck (swagger: HealthCheck)
    if hc is not None:
        body["Healthcheck"] = hc
    grace = c.get("StopGracePeriod")
    if isinstance(grace, int) and grace >= 0:
        body["StopTimeout"] = grace // 1_000_000_000
    host: dict[str, Any] = {"RestartPolicy": {"Name": "no"}}
    mounts = [dict(m) for m in (c.get("Mounts") or []) if isinstance(m, dict)]
    mounts += [{"Type": "bind", "Source": src, "Target": target, "ReadOnly": True} for src, target in files]
    if mounts:
        host["Mounts"] = mounts
    limits = (spec.get("Resources") or {}).get("Limits") or {}
    if limits.get("MemoryBytes"):
        host["Memory"] = int(limits["MemoryBytes"])
    if limits.get("NanoCPUs"):
        host["NanoCpus"] = int(limits["NanoCPUs"])
    if limits.get("Pids"):
        host["PidsLimit"] = int(limits["Pids"])
    for key, field in (
        ("Init", "Init"),
        ("ReadonlyRootfs", "ReadOnly"),
        ("GroupAdd", "Groups"),
        ("CapAdd", "CapabilityAdd"),
        ("CapDrop", "CapabilityDrop"),
        ("Sysctls", "Sysctls"),
        ("Ulimits", "Ulimits"),
        ("ExtraHosts", "Hosts"),
    ):
        if c.get(field):
            host[key] = c[field]
    dns = c.get("DNSConfig") or {}
    for key, field in (("Dns", "Nameservers"), ("DnsSearch", "Search"), ("DnsOptions", "Options")):
        if dns.get(field):
            host[key] = list(dns[field])
    exposed, bindings = host_ports(task)
    if bindings:
        body["ExposedPorts"] = exposed
        host["PortBindings"] = bindings
    log_driver = spec.get("LogDriver") or {}
    if log_driver.get("Name"):
        host["LogConfig"] = {"Type": log_driver["Name"], "Config": dict(log_driver.get("Options") or {})}
    body["HostConfig"] = host
    return body


def host_ports(task: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[dict[str, str]]]]:
    """The container's ExposedPorts and PortBindings for the service's ports published in host mode
    (`--publish mode=host`): bound on the node that runs the task (a free port when none is named)."""
    exposed: dict[str, Any] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for p in (task.get("Endpoint") or {}).get("Ports") or []:
        if (
            not isinstance(p, dict)
            or p.get("PublishMode") != "host"
            or not isinstance(p.get("TargetPort"), int)
        ):
            continue
        key = f"{p['TargetPort']}/{p.get('Protocol') or 'tcp'}"
        published = p.get("PublishedPort")
        exposed[key] = {}
        bindings.setdefault(key, []).append(
            {"HostIp": "", "HostPort": str(published) if isinstance(published, int) and published else ""}
        )
    return exposed, bindings


def has_service_binding(task: dict[str, Any]) -> bool:
    """The task is on a swarm network or published through the routing mesh (moby's hasServiceBinding):
    its stop waits for the load balancers to drop it first."""
    if (task.get("Spec") or {}).get("Networks"):
        return True
    return any(
        isinstance(p, dict) and (p.get("PublishMode") or "ingress") == "ingress"
        for p in (task.get("Endpoint") or {}).get("Ports") or []
    )


def stop_grace(task: dict[str, Any]) -> int:
    """Seconds a stop waits before SIGKILL (StopGracePeriod; 10 s by default, as swarmkit)."""
    grace = ((task.get("Spec") or {}).get("ContainerSpec") or {}).get("StopGracePeriod")
    return grace // 1_000_000_000 if isinstance(grace, int) and grace >= 0 else 10
