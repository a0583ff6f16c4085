"""Service specs as dockerd takes and shows them: validation with dockerd's texts and statuses, what it
fills in when a spec is stored (`normalize`), the defaults `insertDefaults=true` shows (`with_defaults`), the
effective restart and update configs the orchestrator uses, and the random names of unnamed services.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from gorae.container import names
from gorae.errors import InvalidParameter, SystemError_
from gorae.swarm import templates
from gorae.swarm.services.constraints import parse_constraints
from gorae.swarm.services.schema import check_types

SECOND = 1_000_000_000
RESTART_CONDITIONS = ("none", "on-failure", "any")
FAILURE_ACTIONS = ("pause", "continue", "rollback")
ORDERS = ("stop-first", "start-first")
# swarmkit's isValidDNSName, `^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$` (underscores too: `docker stack` names its
# services `<stack>_<service>`), written without its nested repetition, which backtracks in Python's engine
# ContainerSpec fields after DNSConfig in the Engine API's struct (JSON keys come in that order)
_AFTER_DNS_CONFIG = (
    "Secrets",
    "Configs",
    "Isolation",
    "Sysctls",
    "CapabilityAdd",
    "CapabilityDrop",
    "Ulimits",
)
_DNS_LABEL = re.compile(r"[a-zA-Z0-9](?:[-_a-zA-Z0-9]*[a-zA-Z0-9])?")


def _grpc_invalid(text: str) -> InvalidParameter:
    return InvalidParameter(f"rpc error: code = InvalidArgument desc = {text}")


def validate(spec: Any) -> dict[str, Any]:
    """A ServiceSpec body checked as dockerd checks it (types, runtime, modes, policies, name, image,
    constraints), in dockerd's order; answers the spec normalized for storing."""
    spec = check_types(spec)
    template = spec.get("TaskTemplate") or {}
    runtime = template.get("Runtime") or "container"
    if runtime not in ("container", "plugin", "attachment"):
        raise InvalidParameter("unsupported runtime")
    if runtime != "container" or not isinstance(template.get("ContainerSpec"), dict):
        raise InvalidParameter("mismatched Runtime and *Spec fields")
    mode = spec.get("Mode") or {}
    given = [k for k in ("Replicated", "Global", "ReplicatedJob", "GlobalJob") if mode.get(k) is not None]
    if len(given) > 1:
        raise InvalidParameter("must specify only one service mode")
    if given and given[0] in ("ReplicatedJob", "GlobalJob") and spec.get("UpdateConfig") is not None:
        raise _grpc_invalid("Jobs may not have an update config")
    condition = (template.get("RestartPolicy") or {}).get("Condition")
    if condition not in (None, "", *RESTART_CONDITIONS):
        raise InvalidParameter(f'invalid RestartCondition: "{condition}"')
    for section in ("UpdateConfig", "RollbackConfig"):
        cfg = spec.get(section) or {}
        action = cfg.get("FailureAction")
        if action not in (None, "", *FAILURE_ACTIONS):
            raise InvalidParameter(f"unrecognized update failure action {action}")
        order = cfg.get("Order")
        if order not in (None, "", *ORDERS):
            raise InvalidParameter(f"unrecognized update order {order}")
    name = spec.get("Name") or ""
    if name:
        if not _DNS_LABEL.fullmatch(name):
            raise _grpc_invalid("name must be valid as a DNS name component")
        if len(name) > 63:
            raise _grpc_invalid("name must be 63 characters or fewer")
    try:
        templates.validate_container_spec(template["ContainerSpec"])
    except templates.ExpandError as e:
        raise _grpc_invalid(str(e)) from None
    if not template["ContainerSpec"].get("Image"):
        raise _grpc_invalid("ContainerSpec: image reference must be provided")
    try:
        parse_constraints((template.get("Placement") or {}).get("Constraints") or [])
    except ValueError as e:
        raise SystemError_(f"rpc error: code = Unknown desc = {e}") from None
    return normalize(spec)


def _drop_empty(doc: dict[str, Any], *keys: str) -> None:
    for key in keys:
        if key in doc and doc[key] in (None, "", [], {}, 0, False):
            del doc[key]


def normalize(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec as dockerd stores and shows it: Name and Labels present, Replicated mode with 1 replica when
    no mode is given, TaskTemplate's ForceUpdate and Runtime, ContainerSpec's Isolation."""
    out = copy.deepcopy(spec)
    out["Name"] = out.get("Name") or ""
    out["Labels"] = out.get("Labels") or {}
    template = out["TaskTemplate"]
    container = template["ContainerSpec"]
    container["Isolation"] = container.get("Isolation") or "default"
    container.pop(
        "PullOptions", None
    )  # not a field of the Engine API's ContainerSpec: only the header sets it
    _drop_empty(
        container,
        *("Labels", "Command", "Args", "Env", "Dir", "User", "Groups", "Hostname", "Hosts", "StopSignal"),
        *("TTY", "OpenStdin", "ReadOnly"),  # Go's omitempty
    )
    if "DNSConfig" not in container:  # dockerd stores an empty one when none is given (`docker stack deploy`)
        items = list(container.items())
        at = next((i for i, (k, _) in enumerate(items) if k in _AFTER_DNS_CONFIG), len(items))
        items.insert(at, ("DNSConfig", {}))
        template["ContainerSpec"] = container = dict(items)
    template["ForceUpdate"] = int(template.get("ForceUpdate") or 0)
    template["Runtime"] = "container"
    for key in ("Resources", "RestartPolicy", "Placement", "LogDriver", "Networks"):
        if template.get(key) is None:
            template.pop(key, None)
    mode = out.get("Mode") or {}
    if mode.get("Global") is not None:
        out["Mode"] = {"Global": {}}
    elif mode.get("GlobalJob") is not None:
        out["Mode"] = {"GlobalJob": {}}
    elif mode.get("ReplicatedJob") is not None:
        job = mode["ReplicatedJob"]
        concurrent, total = job.get("MaxConcurrent"), job.get("TotalCompletions")
        out["Mode"] = {  # dockerd's conversion: an unset count is 1
            "ReplicatedJob": {
                "MaxConcurrent": 1 if concurrent is None else int(concurrent),
                "TotalCompletions": 1 if total is None else int(total),
            }
        }
    else:
        replicated = mode.get("Replicated") or {}
        replicas = replicated.get("Replicas")
        out["Mode"] = {"Replicated": {"Replicas": 1 if replicas is None else int(replicas)}}
    for key in ("UpdateConfig", "RollbackConfig", "EndpointSpec", "Networks"):
        if out.get(key) is None:
            out.pop(key, None)
    endpoint = out.get("EndpointSpec")
    if isinstance(endpoint, dict) and not endpoint.get("Mode"):  # swarmkit's default resolution mode, shown
        out["EndpointSpec"] = {"Mode": "vip", **{k: v for k, v in endpoint.items() if k != "Mode"}}
    order = (
        "Name",
        "Labels",
        "TaskTemplate",
        "Mode",
        "UpdateConfig",
        "RollbackConfig",
        "Networks",
        "EndpointSpec",
    )
    return {k: out[k] for k in (*order, *[k for k in out if k not in order]) if k in out}


DEFAULT_RESTART = {"Condition": "any", "Delay": 5 * SECOND, "MaxAttempts": 0}
DEFAULT_UPDATE = {
    "Parallelism": 1,
    "FailureAction": "pause",
    "Monitor": 5 * SECOND,
    "MaxFailureRatio": 0,
    "Order": "stop-first",
}


def with_defaults(spec: dict[str, Any]) -> dict[str, Any]:
    """`GET /services/{id}?insertDefaults=true`: the spec with what swarmkit assumes where it is unset."""
    out = copy.deepcopy(spec)
    template = out.setdefault("TaskTemplate", {})
    container = template.setdefault("ContainerSpec", {})
    if "StopGracePeriod" not in container:
        items = list(container.items())
        at = next((i for i, (k, _) in enumerate(items) if k in ("DNSConfig", "Isolation")), len(items))
        items.insert(at, ("StopGracePeriod", 10 * SECOND))
        template["ContainerSpec"] = dict(items)
    policy = {**DEFAULT_RESTART, **{k: v for k, v in (template.get("RestartPolicy") or {}).items() if v}}
    items = [(k, v) for k, v in template.items() if k != "RestartPolicy"]
    at = next((i for i, (k, _) in enumerate(items) if k in ("Placement", "ForceUpdate")), len(items))
    items.insert(at, ("RestartPolicy", policy))
    out["TaskTemplate"] = dict(items)
    for section in ("UpdateConfig", "RollbackConfig"):
        out[section] = {**DEFAULT_UPDATE, **{k: v for k, v in (out.get(section) or {}).items() if v}}
    order = (
        "Name",
        "Labels",
        "TaskTemplate",
        "Mode",
        "UpdateConfig",
        "RollbackConfig",
        "Networks",
        "EndpointSpec",
    )
    return {k: out[k] for k in (*order, *[k for k in out if k not in order]) if k in out}


@dataclass(frozen=True)
class RestartPolicy:
    condition: str = "any"
    delay: int = 5 * SECOND  # ns
    max_attempts: int = 0  # 0: unlimited
    window: int = 0  # ns; 0: all of the slot's restarts count


def restart_policy(spec: dict[str, Any]) -> RestartPolicy:
    raw = (spec.get("TaskTemplate") or {}).get("RestartPolicy") or {}
    delay = raw.get("Delay")
    return RestartPolicy(
        condition=raw.get("Condition") or "any",
        delay=5 * SECOND if delay is None else int(delay),
        max_attempts=int(raw.get("MaxAttempts") or 0),
        window=int(raw.get("Window") or 0),
    )


@dataclass(frozen=True)
class UpdatePolicy:
    parallelism: int = 1  # 0: all at once
    delay: int = 0
    failure_action: str = "pause"
    monitor: int = 5 * SECOND
    max_failure_ratio: float = 0.0
    order: str = "stop-first"


def update_policy(spec: dict[str, Any], rollback: bool) -> UpdatePolicy:
    raw = spec.get("RollbackConfig" if rollback else "UpdateConfig") or {}
    parallelism = raw.get("Parallelism")
    monitor = raw.get("Monitor")
    return UpdatePolicy(
        parallelism=1 if parallelism is None else int(parallelism),
        delay=int(raw.get("Delay") or 0),
        failure_action=raw.get("FailureAction") or "pause",
        monitor=5 * SECOND if not monitor else int(monitor),
        max_failure_ratio=float(raw.get("MaxFailureRatio") or 0),
        order=raw.get("Order") or "stop-first",
    )


def is_global(spec: dict[str, Any]) -> bool:
    """Global or global job: one task per eligible node."""
    mode = spec.get("Mode") or {}
    return mode.get("Global") is not None or mode.get("GlobalJob") is not None


def is_job(spec: dict[str, Any]) -> bool:
    mode = spec.get("Mode") or {}
    return mode.get("ReplicatedJob") is not None or mode.get("GlobalJob") is not None


def mode_kind(spec: dict[str, Any]) -> str:
    """replicated, global, replicated-job or global-job (the `mode` filter's and the CLI's words)."""
    mode = spec.get("Mode") or {}
    for key, kind in (("GlobalJob", "global-job"), ("ReplicatedJob", "replicated-job"), ("Global", "global")):
        if mode.get(key) is not None:
            return kind
    return "replicated"


def job_counts(spec: dict[str, Any]) -> tuple[int, int]:
    """A replicated job's (MaxConcurrent, TotalCompletions)."""
    job = (spec.get("Mode") or {}).get("ReplicatedJob") or {}
    return int(job.get("MaxConcurrent") or 0), int(job.get("TotalCompletions") or 0)


def replicas(spec: dict[str, Any]) -> int:
    return int(((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas") or 0)


def task_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """A task's Spec: the service's TaskTemplate as tasks show it (without Runtime)."""
    return {k: v for k, v in copy.deepcopy(spec.get("TaskTemplate") or {}).items() if k != "Runtime"}


def set_registry_auth(spec: dict[str, Any], encoded: str | None) -> None:
    """Keep a client's X-Registry-Auth (as sent) in the spec for the nodes' pulls (swarmkit's
    ContainerSpec.PullOptions.RegistryAuth; the API never shows it)."""
    container = (spec.get("TaskTemplate") or {}).get("ContainerSpec")
    if not isinstance(container, dict):
        return
    if encoded:
        container["PullOptions"] = {"RegistryAuth": encoded}
    else:
        container.pop("PullOptions", None)


def registry_auth(spec: dict[str, Any] | None) -> str:
    """The X-Registry-Auth kept in a service spec (or a task spec), "" when none."""
    spec = spec or {}
    container = (spec.get("TaskTemplate") or spec).get("ContainerSpec") or {}
    return str((container.get("PullOptions") or {}).get("RegistryAuth") or "")


def random_name() -> str:
    """A name like `elated_moore`, as dockerd gives a service created without one."""
    return names.random_name()
