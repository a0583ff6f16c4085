"""Building a ServiceSpec from `service create` flags and merging `service update` flags into an existing
one, as the docker CLI does (service/opts.go ToService, service/update.go updateService): the same fields,
defaults (restart policy, update/rollback config), ordering (sorted constraints, mounts, ports), the
secret/config name→ID resolution and its error texts. Flag values that do not parse give pflag's usage
error (status 125)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gorae.cli.context import Cli, StatusError
from gorae.cli.flags import Spec
from gorae.cli.opts import OptError
from gorae.cli.swarmopts import (
    go_duration_ns,
    parse_file_reference,
    parse_int,
    parse_mem_bytes,
    parse_mount,
    parse_nano_cpus,
    parse_network,
    parse_placement_pref,
    parse_publish,
    parse_uint,
    shlex_split,
)

# swarmkit's defaults (api/defaults) the CLI fills in when any flag of a group is given
DEFAULT_UPDATE = {
    "Parallelism": 1,
    "FailureAction": "pause",
    "Monitor": 5_000_000_000,
    "MaxFailureRatio": 0,
    "Order": "stop-first",
}
DEFAULT_ROLLBACK = dict(DEFAULT_UPDATE)
DEFAULT_RESTART = {"Condition": "any", "Delay": 5_000_000_000, "MaxAttempts": 0, "Window": 0}

_UPDATE_KEYS = ("parallelism", "delay", "monitor", "failure-action", "max-failure-ratio", "order")
_RESTART_KEYS = ("restart-condition", "restart-delay", "restart-max-attempts", "restart-window")


class Flags:
    """The parsed flags of one command with pflag-style typed access: a value that does not convert is
    the usage error `invalid argument "V" for "--flag" flag: …` (status 125)."""

    def __init__(self, spec: Spec, values: dict[str, Any]) -> None:
        self.spec, self.v = spec, values

    def changed(self, *names: str) -> bool:
        return any(n.replace("-", "_") in self.v["_set"] for n in names)

    def raw(self, name: str) -> Any:
        return self.v[name.replace("-", "_")]

    def _conv(self, name: str, fn: Callable[[str], Any], value: str | None = None) -> Any:
        raw = self.raw(name) if value is None else value
        try:
            return fn(raw)
        except OptError as e:
            from gorae.cli.commands.swarm import flag_error

            raise flag_error(self.spec, name, raw, str(e)) from None

    def uint(self, name: str) -> int:
        return int(self._conv(name, parse_uint))

    def integer(self, name: str) -> int:
        return int(self._conv(name, parse_int))

    def duration(self, name: str) -> int:
        return int(self._conv(name, go_duration_ns))

    def positive_duration(self, name: str) -> int:
        def conv(s: str) -> int:
            ns = go_duration_ns(s)
            if ns < 0:
                raise OptError(f"duration cannot be negative: {s}")
            return ns

        return int(self._conv(name, conv))

    def decimal(self, name: str) -> float:
        def conv(s: str) -> float:
            try:
                return float(s)
            except ValueError:
                raise OptError(f'strconv.ParseFloat: parsing "{s}": invalid syntax') from None

        return float(self._conv(name, conv))

    def each(self, name: str, fn: Callable[[str], Any]) -> list[Any]:
        return [self._conv(name, fn, x) for x in self.raw(name)]


def kv_map(values: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        k, _, val = item.partition("=")
        out[k] = val
    return out


def image_with_tag(image: str) -> str:
    """reference.FamiliarString(TagNameOnly(ParseNormalizedNamed(image))): `busybox` → `busybox:latest`."""
    if not image or image != image.strip() or any(c.isupper() for c in image.split("@")[0].rsplit(":", 1)[0]):
        return image
    name = image
    for prefix in ("docker.io/library/", "index.docker.io/library/", "docker.io/", "index.docker.io/"):
        if (
            name.startswith(prefix)
            and "/" not in name[len(prefix) :].split(":")[0].split("@")[0]
            or (name.startswith(prefix) and prefix.endswith("docker.io/"))
        ):
            name = name[len(prefix) :]
            break
    if "@" in name:
        return name
    if name.rfind(":") <= name.rfind("/"):
        name += ":latest"
    return name


def image_domain(image: str) -> str:
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def make_env(f: Flags) -> list[str]:
    """opts.ReadKVEnvStrings(--env-file…, --env…) with later keys replacing earlier ones."""
    import os

    items: list[str] = []
    for path in f.raw("env-file"):
        try:
            with open(path, encoding="utf-8") as fh:
                lines = fh.read().splitlines()
        except OSError as e:
            raise StatusError(1, f"open {path}: {(e.strerror or str(e)).lower()}") from None
        for line in lines:
            line = line.lstrip()
            if line and not line.startswith("#") and ("=" in line or line in os.environ):
                items.append(_env_value(line, os.environ))
    for item in f.raw("env"):
        if item.partition("=")[0] == "":
            raise StatusError(125, f"invalid environment variable: {item}")
        items.append(_env_value(item, os.environ))
    current: list[str] = []
    for env in items:
        k = env.partition("=")[0]
        current = [c for c in current if c == env or not c.startswith(k + "=")]
        current.append(env)
    return current


def _env_value(item: str, environ: Any) -> str:
    """opts.ValidateEnv: a bare name takes the local value when set, else stays bare."""
    k, eq, _ = item.partition("=")
    if eq or k not in environ:
        return item
    return f"{k}={environ[k]}"


def health_config(f: Flags, create: bool) -> dict[str, Any] | None:
    have = (
        bool(f.raw("health-cmd"))
        or f.changed("health-interval", "health-timeout", "health-start-period", "health-retries")
        or (create and f.changed("health-start-interval"))
    )
    if f.raw("no-healthcheck"):
        if have:
            raise StatusError(1, "--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    if not have:
        return None
    hc: dict[str, Any] = {}
    if f.raw("health-cmd"):
        hc["Test"] = ["CMD-SHELL", f.raw("health-cmd")]
    for flag, key in (
        ("health-interval", "Interval"),
        ("health-timeout", "Timeout"),
        ("health-start-period", "StartPeriod"),
        ("health-start-interval", "StartInterval"),
    ):
        if f.changed(flag) and f.positive_duration(flag):
            hc[key] = f.positive_duration(flag)
    if f.changed("health-retries") and f.integer("health-retries"):
        hc["Retries"] = f.integer("health-retries")
    return hc


def _update_config(f: Flags, prefix: str, base: dict[str, Any]) -> dict[str, Any]:
    cfg = dict(base)
    if f.changed(f"{prefix}-parallelism"):
        cfg["Parallelism"] = f.uint(f"{prefix}-parallelism")
    if f.changed(f"{prefix}-delay"):
        cfg["Delay"] = f.duration(f"{prefix}-delay")
    if f.changed(f"{prefix}-monitor"):
        cfg["Monitor"] = f.duration(f"{prefix}-monitor")
    if f.changed(f"{prefix}-failure-action"):
        cfg["FailureAction"] = f.raw(f"{prefix}-failure-action")
    if f.changed(f"{prefix}-max-failure-ratio"):
        cfg["MaxFailureRatio"] = f.decimal(f"{prefix}-max-failure-ratio")
    if f.changed(f"{prefix}-order"):
        cfg["Order"] = f.raw(f"{prefix}-order")
    return {k: val for k, val in cfg.items() if val not in (0, "") or k == "MaxFailureRatio"}


def restart_policy(f: Flags, base: dict[str, Any] | None) -> dict[str, Any]:
    rp = dict(base if base is not None else DEFAULT_RESTART)
    if f.changed("restart-condition"):
        rp["Condition"] = f.raw("restart-condition")
    if f.changed("restart-delay"):
        rp["Delay"] = f.duration("restart-delay")
    if f.changed("restart-max-attempts"):
        rp["MaxAttempts"] = f.uint("restart-max-attempts")
    if f.changed("restart-window"):
        rp["Window"] = f.duration("restart-window")
    return rp


def service_mode(f: Flags) -> dict[str, Any]:
    mode = f.raw("mode") or "replicated"
    replicas = f.uint("replicas") if f.changed("replicas") else None
    max_conc = f.uint("max-concurrent") if f.changed("max-concurrent") else None
    max_per_node = f.uint("replicas-max-per-node") if f.changed("replicas-max-per-node") else 0
    if mode == "global":
        if replicas is not None:
            raise StatusError(1, "replicas can only be used with replicated or replicated-job mode")
        if max_per_node > 0:
            raise StatusError(
                1, "replicas-max-per-node can only be used with replicated or replicated-job mode"
            )
        if max_conc is not None:
            raise StatusError(1, "max-concurrent can only be used with replicated-job mode")
        return {"Global": {}}
    if mode == "replicated":
        if max_conc is not None:
            raise StatusError(1, "max-concurrent can only be used with replicated-job mode")
        return {"Replicated": {} if replicas is None else {"Replicas": replicas}}
    if mode == "replicated-job":
        job: dict[str, Any] = {}
        conc = max_conc if max_conc is not None else replicas
        if conc is not None:
            job["MaxConcurrent"] = conc
        if replicas is not None:
            job["TotalCompletions"] = replicas
        return {"ReplicatedJob": job}
    if mode == "global-job":
        if max_per_node > 0:
            raise StatusError(
                1, "replicas-max-per-node can only be used with replicated or replicated-job mode"
            )
        if max_conc is not None:
            raise StatusError(1, "max-concurrent can only be used with replicated-job mode")
        if replicas is not None:
            raise StatusError(1, "replicas can only be used with replicated or replicated-job mode")
        return {"GlobalJob": {}}
    raise StatusError(1, f"Unknown mode: {mode}, only replicated and global supported")


def _caps(values: list[str]) -> list[str]:
    out = []
    for c in values:
        c = c.strip().upper()
        if c and c != "ALL" and not c.startswith("CAP_"):
            c = "CAP_" + c
        if c and c not in out:
            out.append(c)
    return sorted(out)


def _hosts(values: list[str]) -> list[str]:
    out = []
    for h in values:
        host, colon, ip = h.partition(":")
        if colon:
            out.append(f"{ip} {host}")
    return out


def network_id(cli: Cli, name: str) -> str:
    from gorae.client.api import q

    doc = cli.api.get_json(f"/networks/{q(name)}", {"scope": "swarm"}) or {}
    return str(doc.get("Id") or doc.get("ID") or "")


def resolve_refs(cli: Cli, refs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """ParseSecrets/ParseConfigs: names → IDs, one reference per target file."""
    if not refs:
        return []
    name_key, id_key = ("SecretName", "SecretID") if kind == "secret" else ("ConfigName", "ConfigID")
    by_target: dict[str, dict[str, Any]] = {}
    for ref in refs:
        target = ref["File"]["Name"]
        if target in by_target:
            raise StatusError(1, f"duplicate {kind} target for {ref[name_key]} not allowed")
        by_target[target] = dict(ref)
    names = {r[name_key]: True for r in by_target.values()}
    found = cli.api.get_json(f"/{kind}s", {"filters": {"name": names}}) or []
    ids = {(o.get("Spec") or {}).get("Name"): o.get("ID") for o in found}
    out = []
    for ref in by_target.values():
        if ref[name_key] not in ids:
            raise StatusError(1, f"{kind} not found: {ref[name_key]}")
        out.append({"File": ref["File"], id_key: ids[ref[name_key]], name_key: ref[name_key]})
    return out


def create_spec(cli: Cli, f: Flags, image: str, args: list[str]) -> dict[str, Any]:
    """ToService: the ServiceSpec `service create` sends."""
    env = make_env(f)
    health = health_config(f, True)
    mode = service_mode(f)
    update_cfg = (
        _update_config(f, "update", DEFAULT_UPDATE)
        if f.changed(*(f"update-{k}" for k in _UPDATE_KEYS))
        else None
    )
    rollback_cfg = (
        _update_config(f, "rollback", DEFAULT_ROLLBACK)
        if f.changed(*(f"rollback-{k}" for k in _UPDATE_KEYS))
        else None
    )
    if ("ReplicatedJob" in mode or "GlobalJob" in mode) and (update_cfg or rollback_cfg):
        raise StatusError(1, "update and rollback configuration is not supported for jobs")
    networks = f.each("network", parse_network)
    for n in networks:
        n["Target"] = network_id(cli, n["Target"])
    networks.sort(key=lambda n: n["Target"])
    cs: dict[str, Any] = {"Image": image}
    if args:
        cs["Args"] = args
    if f.raw("entrypoint"):
        cs["Command"] = f._conv("entrypoint", shlex_split)
    if env:
        cs["Env"] = env
    for flag, key in (
        ("hostname", "Hostname"),
        ("workdir", "Dir"),
        ("user", "User"),
        ("stop-signal", "StopSignal"),
    ):
        if f.raw(flag):
            cs[key] = f.raw(flag)
    if f.raw("container-label"):
        cs["Labels"] = kv_map(f.raw("container-label"))
    if f.raw("group"):
        cs["Groups"] = f.raw("group")
    if f.raw("tty"):
        cs["TTY"] = True
    if f.raw("read-only"):
        cs["ReadOnly"] = True
    mounts = f.each("mount", parse_mount)
    if mounts:
        cs["Mounts"] = mounts
    cs["Init"] = bool(f.raw("init"))
    dns: dict[str, Any] = {}
    for flag, key in (("dns", "Nameservers"), ("dns-search", "Search"), ("dns-option", "Options")):
        if f.raw(flag):
            dns[key] = f.raw(flag)
    cs["DNSConfig"] = dns
    if f.raw("host"):
        cs["Hosts"] = _hosts(f.raw("host"))
    if f.changed("stop-grace-period"):
        cs["StopGracePeriod"] = f.duration("stop-grace-period")
    if health is not None:
        cs["Healthcheck"] = health
    if f.raw("isolation"):
        cs["Isolation"] = f.raw("isolation")
    if f.raw("sysctl"):
        cs["Sysctls"] = kv_map(f.raw("sysctl"))
    if f.raw("cap-add"):
        cs["CapabilityAdd"] = _caps(f.raw("cap-add"))
    if f.raw("cap-drop"):
        cs["CapabilityDrop"] = _caps(f.raw("cap-drop"))
    if f.raw("ulimit"):
        from gorae.cli.opts import parse_ulimit

        cs["Ulimits"] = f.each("ulimit", parse_ulimit)
    if f.changed("oom-score-adj") and f.integer("oom-score-adj"):
        cs["OomScoreAdj"] = f.integer("oom-score-adj")
    limits: dict[str, Any] = {}
    if f.changed("limit-cpu") and f._conv("limit-cpu", parse_nano_cpus):
        limits["NanoCPUs"] = f._conv("limit-cpu", parse_nano_cpus)
    if f.changed("limit-memory") and f._conv("limit-memory", parse_mem_bytes):
        limits["MemoryBytes"] = f._conv("limit-memory", parse_mem_bytes)
    if f.changed("limit-pids") and f.integer("limit-pids"):
        limits["Pids"] = f.integer("limit-pids")
    reservations: dict[str, Any] = {}
    if f.changed("reserve-cpu") and f._conv("reserve-cpu", parse_nano_cpus):
        reservations["NanoCPUs"] = f._conv("reserve-cpu", parse_nano_cpus)
    if f.changed("reserve-memory") and f._conv("reserve-memory", parse_mem_bytes):
        reservations["MemoryBytes"] = f._conv("reserve-memory", parse_mem_bytes)
    placement: dict[str, Any] = {}
    if f.raw("constraint"):
        placement["Constraints"] = f.raw("constraint")
    prefs = f.each("placement-pref", parse_placement_pref)
    if prefs:
        placement["Preferences"] = prefs
    if f.changed("replicas-max-per-node") and f.uint("replicas-max-per-node"):
        placement["MaxReplicas"] = f.uint("replicas-max-per-node")
    task: dict[str, Any] = {
        "ContainerSpec": cs,
        "Resources": {"Limits": limits, "Reservations": reservations},
        "Placement": placement,
        "ForceUpdate": 0,
    }
    if networks:
        task["Networks"] = networks
    if f.changed(*_RESTART_KEYS):
        task["RestartPolicy"] = restart_policy(f, None)
    if f.raw("log-driver"):
        task["LogDriver"] = {"Name": f.raw("log-driver"), "Options": kv_map(f.raw("log-opt"))}
    endpoint: dict[str, Any] = {"Mode": (f.raw("endpoint-mode") or "vip").lower()}
    ports = [p for ps in f.each("publish", parse_publish) for p in ps]
    if ports:
        endpoint["Ports"] = ports
    spec: dict[str, Any] = {
        "Name": f.raw("name") or "",
        "Labels": kv_map(f.raw("label")),
        "TaskTemplate": task,
        "Mode": mode,
        "EndpointSpec": endpoint,
    }
    if update_cfg is not None:
        spec["UpdateConfig"] = update_cfg
    if rollback_cfg is not None:
        spec["RollbackConfig"] = rollback_cfg
    secrets = resolve_refs(cli, f.each("secret", lambda s: parse_file_reference(s, "secret")), "secret")
    if secrets:
        cs["Secrets"] = secrets
    configs = resolve_refs(cli, f.each("config", lambda s: parse_file_reference(s, "config")), "config")
    if configs:
        cs["Configs"] = configs
    return spec


def _remove_set(f: Flags, flag: str) -> set[str]:
    return set(f.raw(flag)) if f.changed(flag) else set()


def update_spec(cli: Cli, f: Flags, spec: dict[str, Any]) -> None:
    """updateService: merge the flags given into `spec` (a service's current Spec)."""
    task = spec.setdefault("TaskTemplate", {})
    cs = task.setdefault("ContainerSpec", {})

    def merge_map(holder: dict[str, Any], key: str, add: str, rm: str) -> None:
        cur = holder.get(key)
        if cur is not None and f.changed(rm):
            for k in f.raw(rm):
                cur.pop(k, None)
        if f.changed(add):
            cur = holder[key] = cur if cur is not None else {}
            cur.update(kv_map(f.raw(add)))

    merge_map(spec, "Labels", "label-add", "label-rm")
    merge_map(cs, "Labels", "container-label-add", "container-label-rm")
    if f.changed("image"):
        cs["Image"] = f.raw("image")
    if f.changed("args"):
        cs["Args"] = f._conv("args", shlex_split)
    if f.changed("entrypoint"):
        cs["Command"] = f._conv("entrypoint", shlex_split)
    # environment: removals by key, then additions replacing the same key
    rm_env = _remove_set(f, "env-rm")
    env = [e for e in (cs.get("Env") or []) if e.partition("=")[0] not in rm_env]
    if f.changed("env-add"):
        merged: dict[str, str] = {e.partition("=")[0]: e for e in env}
        for e in f.raw("env-add"):
            merged[e.partition("=")[0]] = e
        env = list(merged.values())
    if env or "Env" in cs:
        cs["Env"] = env
    for flag, key in (
        ("workdir", "Dir"),
        ("user", "User"),
        ("hostname", "Hostname"),
        ("isolation", "Isolation"),
    ):
        if f.changed(flag):
            cs[key] = f.raw(flag)
    if f.changed("init"):
        cs["Init"] = bool(f.raw("init"))
    _update_mounts(f, cs)
    merge_map(cs, "Sysctls", "sysctl-add", "sysctl-rm")
    if f.changed("ulimit-add", "ulimit-rm"):
        from gorae.cli.opts import parse_ulimit

        by_name = {u["Name"]: u for u in cs.get("Ulimits") or []}
        for k in kv_map(f.raw("ulimit-rm")):
            by_name.pop(k, None)
        for u in f.each("ulimit-add", parse_ulimit):
            by_name[u["Name"]] = u
        _set_list(cs, "Ulimits", [by_name[k] for k in sorted(by_name)])
    if f.changed("limit-cpu", "limit-memory", "limit-pids", "reserve-cpu", "reserve-memory"):
        res = task.get("Resources") or {}
        task["Resources"] = res
        res["Limits"] = res.get("Limits") or {}
        res["Reservations"] = res.get("Reservations") or {}
        if f.changed("limit-cpu"):
            res["Limits"]["NanoCPUs"] = f._conv("limit-cpu", parse_nano_cpus)
        if f.changed("limit-memory"):
            res["Limits"]["MemoryBytes"] = f._conv("limit-memory", parse_mem_bytes)
        if f.changed("limit-pids"):
            res["Limits"]["Pids"] = f.integer("limit-pids")
        if f.changed("reserve-cpu"):
            res["Reservations"]["NanoCPUs"] = f._conv("reserve-cpu", parse_nano_cpus)
        if f.changed("reserve-memory"):
            res["Reservations"]["MemoryBytes"] = f._conv("reserve-memory", parse_mem_bytes)
    if f.changed("oom-score-adj"):
        cs["OomScoreAdj"] = f.integer("oom-score-adj")
    if f.changed("stop-grace-period"):
        cs["StopGracePeriod"] = f.duration("stop-grace-period")
    if f.changed(*_RESTART_KEYS):
        task["RestartPolicy"] = restart_policy(f, task.get("RestartPolicy"))
    if f.changed("constraint-add", "constraint-rm"):
        placement = task.setdefault("Placement", {}) or {}
        task["Placement"] = placement
        cons = list(placement.get("Constraints") or []) + list(f.raw("constraint-add"))
        rm = _remove_set(f, "constraint-rm")
        placement["Constraints"] = sorted(c for c in cons if c not in rm)
    if f.changed("placement-pref-add", "placement-pref-rm"):
        placement = task.get("Placement") or {}
        task["Placement"] = placement
        prefs = list(placement.get("Preferences") or [])
        if f.changed("placement-pref-rm"):
            rm_descr = {
                p["Spread"]["SpreadDescriptor"] for p in f.each("placement-pref-rm", parse_placement_pref)
            }
            prefs = [p for p in prefs if (p.get("Spread") or {}).get("SpreadDescriptor") not in rm_descr]
        prefs += f.each("placement-pref-add", parse_placement_pref)
        placement["Preferences"] = prefs
    if f.changed("network-add", "network-rm"):
        _update_networks(cli, f, spec)
    if f.changed("replicas"):
        mode = spec.get("Mode") or {}
        if "Replicated" not in mode:
            raise StatusError(1, "replicas can only be used with replicated mode")
        mode["Replicated"]["Replicas"] = f.uint("replicas")
    if f.changed("replicas-max-per-node"):
        task.setdefault("Placement", {})["MaxReplicas"] = f.uint("replicas-max-per-node")
    for prefix, key, base in (
        ("update", "UpdateConfig", DEFAULT_UPDATE),
        ("rollback", "RollbackConfig", DEFAULT_ROLLBACK),
    ):
        if f.changed(*(f"{prefix}-{k}" for k in _UPDATE_KEYS)):
            spec[key] = _update_config(f, prefix, spec.get(key) or base)
    if f.changed("endpoint-mode"):
        spec.setdefault("EndpointSpec", {})["Mode"] = f.raw("endpoint-mode")
    if f.changed("group-add", "group-rm"):
        rm = _remove_set(f, "group-rm")
        cs["Groups"] = sorted(
            g for g in list(cs.get("Groups") or []) + list(f.raw("group-add")) if g not in rm
        )
    if f.changed("publish-add", "publish-rm"):
        _update_ports(f, spec.setdefault("EndpointSpec", {}))
    if f.changed("dns-add", "dns-rm", "dns-option-add", "dns-option-rm", "dns-search-add", "dns-search-rm"):
        old = cs.get("DNSConfig") or {}
        new: dict[str, Any] = {}
        for key, add, rm_flag in (
            ("Nameservers", "dns-add", "dns-rm"),
            ("Search", "dns-search-add", "dns-search-rm"),
            ("Options", "dns-option-add", "dns-option-rm"),
        ):
            vals = list(dict.fromkeys(list(old.get(key) or []) + list(f.raw(add))))
            rm = _remove_set(f, rm_flag)
            kept = sorted(x for x in vals if x not in rm)
            if kept:
                new[key] = kept
        cs["DNSConfig"] = new
    if f.changed("host-add", "host-rm"):
        _update_hosts(f, cs)
    if f.changed("log-driver") and f.raw("log-driver"):
        task["LogDriver"] = {"Name": f.raw("log-driver"), "Options": kv_map(f.raw("log-opt"))}
    if f.raw("force"):
        task["ForceUpdate"] = int(task.get("ForceUpdate") or 0) + 1
    _update_health(f, cs)
    if f.changed("tty"):
        cs["TTY"] = bool(f.raw("tty"))
    if f.changed("read-only"):
        cs["ReadOnly"] = bool(f.raw("read-only"))
    if f.changed("stop-signal"):
        cs["StopSignal"] = f.raw("stop-signal")
    if f.changed("cap-add", "cap-drop"):
        cap_add = set(cs.get("CapabilityAdd") or [])
        cap_drop = set(cs.get("CapabilityDrop") or [])
        to_add, to_drop = set(_caps(f.raw("cap-add"))), set(_caps(f.raw("cap-drop")))
        if "RESET" in to_add or "CAP_RESET" in to_add:
            cap_add, to_add = set(), to_add - {"RESET", "CAP_RESET"}
        if "RESET" in to_drop or "CAP_RESET" in to_drop:
            cap_drop, to_drop = set(), to_drop - {"RESET", "CAP_RESET"}
        for c in to_drop:
            if c not in to_add:
                if c in cap_add:
                    cap_add.discard(c)
                else:
                    cap_drop.add(c)
        for c in to_add:
            if c in cap_drop:
                cap_drop.discard(c)
            else:
                cap_add.add(c)
        _set_list(cs, "CapabilityAdd", sorted(cap_add))
        _set_list(cs, "CapabilityDrop", sorted(cap_drop))
    # secrets and configs: removals by name, additions resolved to IDs
    rm_s = _remove_set(f, "secret-rm")
    secrets = [s for s in cs.get("Secrets") or [] if s.get("SecretName") not in rm_s]
    secrets += resolve_refs(cli, f.each("secret-add", lambda s: parse_file_reference(s, "secret")), "secret")
    _set_list(cs, "Secrets", secrets)
    rm_c = _remove_set(f, "config-rm")
    configs = [
        c for c in cs.get("Configs") or [] if c.get("Runtime") is not None or c.get("ConfigName") not in rm_c
    ]
    configs += resolve_refs(cli, f.each("config-add", lambda s: parse_file_reference(s, "config")), "config")
    _set_list(cs, "Configs", configs)


def _update_mounts(f: Flags, cs: dict[str, Any]) -> None:
    by_target: dict[str, Any] = {}
    for m in f.each("mount-add", parse_mount):
        if m["Target"] in by_target:
            raise StatusError(1, "duplicate mount target")
        by_target[m["Target"]] = m
    for m in cs.get("Mounts") or []:
        by_target.setdefault(m.get("Target", ""), m)
    rm = _remove_set(f, "mount-rm")
    mounts = [m for t, m in by_target.items() if t not in rm]
    mounts.sort(key=lambda m: (m.get("Source", ""), m.get("Target", "")))
    _set_list(cs, "Mounts", mounts)


def _set_list(holder: dict[str, Any], key: str, items: list[Any]) -> None:
    """A Go slice field tagged omitempty: absent when empty."""
    if items:
        holder[key] = items
    else:
        holder.pop(key, None)


def _port_key(p: dict[str, Any]) -> str:
    return f"{p.get('PublishedPort', 0)}:{p.get('TargetPort', 0)}/{p.get('Protocol', '')}/{p.get('PublishMode', '')}"


def _update_ports(f: Flags, endpoint: dict[str, Any]) -> None:
    existing: dict[str, Any] = {}
    for p in endpoint.get("Ports") or []:
        existing.setdefault(_port_key(p), p)
    to_rm = [p for ps in f.each("publish-rm", parse_publish) for p in ps]

    def same(a: str | None, b: str | None, default: str) -> bool:
        return (a or default) == (b or default)

    kept = [
        p
        for p in existing.values()
        if not any(
            same(p.get("Protocol"), r.get("Protocol"), "tcp")
            and p.get("TargetPort") == r.get("TargetPort")
            and same(p.get("PublishMode"), r.get("PublishMode"), "ingress")
            for r in to_rm
        )
    ]
    for p in [p for ps in f.each("publish-add", parse_publish) for p in ps]:
        if _port_key(p) not in existing:
            kept.append(p)
    kept.sort(key=_port_key)
    endpoint["Ports"] = kept


def _update_hosts(f: Flags, cs: dict[str, Any]) -> None:
    to_rm = [(h.partition(":")[0], h.partition(":")[2]) for h in f.raw("host-rm")]
    new: list[str] = []
    for entry in cs.get("Hosts") or []:
        parts = entry.split()
        if not parts:
            continue
        ip, names = parts[0], parts[1:]
        for host, rm_ip in to_rm:
            if rm_ip and rm_ip != ip:
                continue
            names = [n for n in names if n != host]
        if names:
            new.append(f"{ip} {' '.join(names)}")
    new += _hosts(f.raw("host-add"))
    cs["Hosts"] = list(dict.fromkeys(new))


def _update_health(f: Flags, cs: dict[str, Any]) -> None:
    flags = ("health-cmd", "health-interval", "health-retries", "health-timeout", "health-start-period")
    if not f.changed("no-healthcheck", *flags):
        return
    hc = cs.get("Healthcheck") or {}
    if f.raw("no-healthcheck"):
        if not f.changed(*flags):
            cs["Healthcheck"] = {"Test": ["NONE"]}
            return
        raise StatusError(1, "--no-healthcheck conflicts with --health-* options")
    if (hc.get("Test") or [None])[0] == "NONE":
        hc.pop("Test", None)
    for flag, key in (
        ("health-interval", "Interval"),
        ("health-timeout", "Timeout"),
        ("health-start-period", "StartPeriod"),
    ):
        if f.changed(flag):
            hc[key] = f.positive_duration(flag)
    if f.changed("health-retries"):
        hc["Retries"] = f.integer("health-retries")
    if f.changed("health-cmd"):
        if f.raw("health-cmd"):
            hc["Test"] = ["CMD-SHELL", f.raw("health-cmd")]
        else:
            hc.pop("Test", None)
    cs["Healthcheck"] = hc


def _update_networks(cli: Cli, f: Flags, spec: dict[str, Any]) -> None:
    task = spec["TaskTemplate"]
    current = task.get("Networks") or spec.get("Networks") or []
    spec.pop("Networks", None)
    rm_ids = {network_id(cli, n) for n in _remove_set(f, "network-rm")}
    new = [n for n in current if n.get("Target") not in rm_ids]
    have = {n.get("Target") for n in new}
    for n in f.each("network-add", parse_network):
        nid = network_id(cli, n["Target"])
        if nid in have:
            raise StatusError(1, f"service is already attached to network {n['Target']}")
        n["Target"] = nid
        new.append(n)
        have.add(nid)
    new.sort(key=lambda n: n.get("Target", ""))
    _set_list(task, "Networks", new)
