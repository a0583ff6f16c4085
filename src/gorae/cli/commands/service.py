"""Service commands: `service create`, `update`, `inspect` (JSON, `--format`, `--pretty`), `ls`, `rm`,
`scale` and `rollback`, with the docker CLI's flags, output, texts and exit statuses. The spec building
lives in gorae.cli.servicespec, the convergence display in gorae.cli.svcprogress; `service ps` is with
the task lists (tasks.py) and `service logs` in service_logs.py."""

from __future__ import annotations

from typing import Any

from gorae.cli.context import Cli, StatusError
from gorae.cli.flags import INSPECT_FORMAT_HELP, TABLE_FORMAT_HELP, O, Spec
from gorae.cli.output import Header, print_list
from gorae.cli.serviceflags import CREATE_FLAGS, UPDATE_FLAGS, opts_of
from gorae.cli.servicespec import Flags, create_spec, image_domain, image_with_tag, update_spec
from gorae.cli.swarmfmt import familiar_image, trunc_id
from gorae.cli.swarmfmt import filters as parse_filters
from gorae.client.api import q
from gorae.client.errors import APIError

CREATE = Spec(
    "service create",
    "[OPTIONS] IMAGE [COMMAND] [ARG...]",
    "Create a new service",
    opts_of(CREATE_FLAGS),
    min_args=1,
    interspersed=False,
)

UPDATE = Spec(
    "service update", "[OPTIONS] SERVICE", "Update a service", opts_of(UPDATE_FLAGS), min_args=1, max_args=1
)


def _registry_auth(cli: Cli, image: str) -> str:
    from gorae.cli.commands.registry import credentials
    from gorae.client.credentials import registry_auth_header

    return registry_auth_header(credentials(cli).for_domain(image_domain(image)))


def _resolve_image(cli: Cli, spec: dict[str, Any], auth: str) -> str | None:
    """The client's resolveContainerSpecImage: the image's digest and platforms from the registry (through
    the daemon's /distribution), or docker's warning when the registry cannot be reached."""
    cs = spec["TaskTemplate"]["ContainerSpec"]
    image = cs.get("Image", "")
    headers = {"X-Registry-Auth": auth} if auth else None
    try:
        resp = cli.api.request("GET", f"/distribution/{q(image)}/json", headers=headers)
        doc = resp.json() or {}
    except APIError:
        return (
            f"image {image} could not be accessed on a registry to record\n"
            f"its digest. Each node will access {image} independently,\n"
            "possibly leading to different nodes running different\n"
            "versions of the image.\n"
        )
    digest = (doc.get("Descriptor") or {}).get("digest", "")
    if digest and "@" not in image:
        cs["Image"] = f"{image}@{digest}"
    platforms = []
    for p in doc.get("Platforms") or []:
        arch = p.get("architecture", "")
        platforms.append({"Architecture": "" if arch.lower() == "arm" else arch, "OS": p.get("os", "")})
    if platforms:
        spec["TaskTemplate"].setdefault("Placement", {})["Platforms"] = platforms
    return None


def _send(
    cli: Cli, path: str, params: Any, spec: dict[str, Any], auth: str, query_registry: bool
) -> list[str]:
    cs = spec.get("TaskTemplate", {}).get("ContainerSpec")
    warning = None
    if cs is not None:
        cs["Image"] = image_with_tag(cs.get("Image", "")) or cs.get("Image", "")
        if query_registry:
            warning = _resolve_image(cli, spec, auth)
    headers = {"X-Registry-Auth": auth} if auth else None
    doc = cli.api.request("POST", path, params, json_body=spec, headers=headers).json() or {}
    warnings = list(doc.get("Warnings") or [])
    if warning:
        warnings.append(warning)
    for w in warnings:
        cli.eprint(w)
    return [str(doc.get("ID", ""))]


def cmd_create(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    f = Flags(CREATE, v)
    spec = create_spec(cli, f, args[0], args[1:])
    auth = _registry_auth(cli, args[0]) if v["with_registry_auth"] else ""
    ident = _send(cli, "/services/create", None, spec, auth, not v["no_resolve_image"])[0]
    cli.print(ident)
    if not v["detach"]:
        from gorae.cli.svcprogress import wait_on_service

        wait_on_service(cli, ident, bool(v["quiet"]))
    return 0


def _update_params(version: Any, **extra: str) -> dict[str, Any]:
    return {"version": (version or {}).get("Index", 0), **extra}


def cmd_update(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    f = Flags(UPDATE, v)
    ref = args[0]
    service = cli.api.get_json(f"/services/{q(ref)}", {"insertDefaults": "false"}) or {}
    spec = service.get("Spec") or {}
    extra: dict[str, str] = {}
    if v["rollback"]:
        others = v["_set"] - {"rollback", "detach", "quiet"}
        if others:
            raise StatusError(1, "other flags may not be combined with --rollback")
        extra["rollback"] = "previous"
    update_spec(cli, f, spec)
    auth = ""
    if v["with_registry_auth"]:
        auth = _registry_auth(cli, spec.get("TaskTemplate", {}).get("ContainerSpec", {}).get("Image", ""))
    else:
        extra["registryAuthFrom"] = "spec"
    query = f.changed("image") and not v["no_resolve_image"]
    params = {
        "registryAuthFrom": extra.pop("registryAuthFrom", None),
        **extra,
        **_update_params(service.get("Version")),
    }
    _send(cli, f"/services/{q(service.get('ID', ref))}/update", params, spec, auth, query)
    cli.print(ref)
    if not v["detach"]:
        from gorae.cli.svcprogress import wait_on_service

        wait_on_service(cli, ref, bool(v["quiet"]))
    return 0


ROLLBACK = Spec(
    "service rollback",
    "[OPTIONS] SERVICE",
    "Revert changes to a service's configuration",
    [
        O("detach", "d", help="Exit immediately instead of waiting for the service to converge"),
        O("quiet", "q", help="Suppress progress output"),
    ],
    min_args=1,
    max_args=1,
)


def cmd_rollback(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    ref = args[0]
    service = cli.api.get_json(f"/services/{q(ref)}", {"insertDefaults": "false"}) or {}
    params = {"rollback": "previous", **_update_params(service.get("Version"))}
    _send(cli, f"/services/{q(service.get('ID', ref))}/update", params, service.get("Spec") or {}, "", False)
    cli.print(ref)
    if not v["detach"]:
        from gorae.cli.svcprogress import wait_on_service

        wait_on_service(cli, ref, bool(v["quiet"]))
    return 0


SCALE = Spec(
    "service scale",
    "SERVICE=REPLICAS [SERVICE=REPLICAS...]",
    "Scale one or multiple replicated services",
    [O("detach", "d", help="Exit immediately instead of waiting for the service to converge")],
    min_args=1,
)


def cmd_scale(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    for a in args:
        name, eq, num = a.partition("=")
        if not eq or not name or not num:
            from gorae.cli.flags import PROG

            raise StatusError(
                1,
                f"invalid scale specifier '{a}'.\nSee '{PROG} service scale --help'.\n\n"
                f"Usage:  {PROG} service scale SERVICE=REPLICAS [SERVICE=REPLICAS...]\n\n"
                "Scale one or multiple replicated services",
            )
    errs: list[str] = []
    scaled: list[str] = []
    for a in args:
        name, _, num = a.partition("=")
        if not num.isdigit() or not num.isascii() or int(num) >= 1 << 64:
            reason = "value out of range" if num.isdigit() and num.isascii() else "invalid syntax"
            errs.append(f'{name}: invalid replicas value {num}: strconv.ParseUint: parsing "{num}": {reason}')
            continue
        n = int(num)
        try:
            service = cli.api.get_json(f"/services/{q(name)}", {"insertDefaults": "false"}) or {}
            spec = service.get("Spec") or {}
            mode = spec.get("Mode") or {}
            if "Replicated" in mode:
                mode["Replicated"] = {**(mode["Replicated"] or {}), "Replicas": n}
            elif "ReplicatedJob" in mode:
                mode["ReplicatedJob"] = {**(mode["ReplicatedJob"] or {}), "TotalCompletions": n}
            else:
                errs.append(f"{name}: scale can only be used with replicated or replicated-job mode")
                continue
            _send(
                cli,
                f"/services/{q(service.get('ID', name))}/update",
                _update_params(service.get("Version")),
                spec,
                "",
                False,
            )
        except APIError as e:
            errs.append(f"{name}: {e}")
            continue
        cli.print(f"{name} scaled to {n}")
        scaled.append(name)
    if scaled and not v["detach"]:
        from gorae.cli.svcprogress import wait_on_service

        for name in scaled:
            try:
                wait_on_service(cli, name, False)
            except (APIError, StatusError) as e:
                errs.append(f"{name}: {e.message if isinstance(e, StatusError) else e}")
    if errs:
        raise StatusError(1, "\n".join(errs))
    return 0


RM = Spec("service rm", "SERVICE [SERVICE...]", "Remove one or more services", [], min_args=1)


def cmd_rm(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    from gorae.cli.commands.common import remove_each

    return remove_each(cli, args, lambda n: cli.api.delete(f"/services/{q(n)}"))


LS = Spec(
    "service ls",
    "[OPTIONS]",
    "List services",
    [
        O("filter", "f", "list", "Filter output based on conditions provided", type_name="filter"),
        O("format", None, "string", TABLE_FORMAT_HELP),
        O("quiet", "q", help="Only display IDs"),
    ],
    max_args=0,
)

LS_TABLE = "table {{.ID}}\t{{.Name}}\t{{.Mode}}\t{{.Replicas}}\t{{.Image}}\t{{.Ports}}"
LS_HEADERS = {
    "ID": "ID",
    "Name": "NAME",
    "Mode": "MODE",
    "Replicas": "REPLICAS",
    "Image": "IMAGE",
    "Ports": "PORTS",
}


def ports_text(ports: list[dict[str, Any]] | None) -> str:
    """serviceContext.Ports: ingress ports, consecutive ones grouped into ranges."""
    if ports is None:
        return ""
    ps = sorted(ports, key=lambda p: (p.get("Protocol", ""), p.get("PublishedPort", 0)))
    out: list[str] = []
    cur: dict[str, Any] = {"ps": 0, "pe": 0, "ts": 0, "te": 0, "proto": ""}

    def text(r: dict[str, Any]) -> str:
        pub = f"{r['ps']}-{r['pe']}" if r["pe"] > r["ps"] else str(r["ps"])
        tgt = f"{r['ts']}-{r['te']}" if r["te"] > r["ts"] else str(r["ts"])
        return f"*:{pub}->{tgt}/{r['proto']}"

    for p in ps:
        if p.get("PublishMode") != "ingress":
            continue
        pub, tgt, proto = int(p.get("PublishedPort", 0)), int(p.get("TargetPort", 0)), p.get("Protocol", "")
        is_range = cur["te"] != cur["ts"]
        overlaps = tgt <= cur["te"]
        # uint32 arithmetic as Go's: a smaller port wraps around and counts as not consecutive
        if (
            proto != cur["proto"]
            or (pub - cur["pe"]) % (1 << 32) > 1
            or (tgt - cur["te"]) % (1 << 32) > 1
            or (is_range and overlaps)
        ):
            if cur["ps"] > 0:
                out.append(text(cur))
            cur = {"ps": pub, "pe": pub, "ts": tgt, "te": tgt, "proto": proto}
            continue
        cur["pe"], cur["te"] = pub, tgt
    if cur["ps"] > 0:
        out.append(text(cur))
    return ", ".join(out)


class ServiceRow:
    """docker's serviceContext."""

    def __init__(self, s: dict[str, Any]) -> None:
        spec = s.get("Spec") or {}
        mode = spec.get("Mode") or {}
        status = s.get("ServiceStatus") or {}
        running, desired, completed = (
            int(status.get(k) or 0) for k in ("RunningTasks", "DesiredTasks", "CompletedTasks")
        )
        self.ID = trunc_id(s.get("ID", ""))
        self.Name = spec.get("Name", "")
        self.Mode = (
            "global"
            if "Global" in mode
            else "replicated"
            if "Replicated" in mode
            else "replicated job"
            if "ReplicatedJob" in mode
            else "global job"
            if "GlobalJob" in mode
            else ""
        )
        max_per_node = int(((spec.get("TaskTemplate") or {}).get("Placement") or {}).get("MaxReplicas") or 0)
        if "ReplicatedJob" in mode:
            total = int((mode["ReplicatedJob"] or {}).get("TotalCompletions") or 0)
            self.Replicas = f"{running}/{desired} ({completed}/{total} completed)"
        elif "GlobalJob" in mode:
            self.Replicas = f"{running}/{desired} ({completed}/{desired + completed} completed)"
        elif self.Mode == "replicated" and max_per_node > 0:
            self.Replicas = f"{running}/{desired} (max {max_per_node} per node)"
        else:
            self.Replicas = f"{running}/{desired}"
        self.Image = familiar_image(
            ((spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Image", "")
        )
        self.Ports = ports_text((s.get("Endpoint") or {}).get("Ports"))

    def as_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in sorted(LS_HEADERS)}


def append_status(cli: Cli, services: list[dict[str, Any]]) -> None:
    """AppendServiceStatus: running/desired counts from the tasks when the daemon did not send them."""
    status: dict[str, dict[str, int]] = {}
    ids: dict[str, bool] = {}
    for s in services:
        mode = (s.get("Spec") or {}).get("Mode") or {}
        if s.get("ServiceStatus") is not None:
            continue
        if "Replicated" in mode:
            s["ServiceStatus"] = {"DesiredTasks": int((mode["Replicated"] or {}).get("Replicas") or 0)}
        elif "Global" in mode:
            s["ServiceStatus"] = {}
        else:
            continue
        status[s["ID"]] = {"DesiredTasks": 0, "RunningTasks": 0}
        ids[s["ID"]] = True
    if not status:
        return
    tasks = cli.api.get_json("/tasks", {"filters": {"service": ids}}) or []
    if not tasks:
        return
    active = {
        n.get("ID")
        for n in cli.api.get_json("/nodes") or []
        if (n.get("Status") or {}).get("State") != "down"
    }
    for t in tasks:
        st = status.get(t.get("ServiceID", ""))
        if st is None:
            continue
        if t.get("DesiredState") != "shutdown":
            st["DesiredTasks"] += 1
        if t.get("NodeID") in active and (t.get("Status") or {}).get("State") == "running":
            st["RunningTasks"] += 1
    for s in services:
        if s.get("ID") in status:
            s["ServiceStatus"] = status[s["ID"]]


def cmd_ls(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    from gorae.cli.commands.volume import natural_key

    filters = parse_filters(LS, v["filter"])
    services = (
        cli.api.get_json("/services", {"filters": filters or None, "status": None if v["quiet"] else "true"})
        or []
    )
    if not v["quiet"]:
        append_status(cli, services)
    fmt = v["format"] or ""
    if not fmt:
        fmt = cli.config["servicesFormat"] if cli.config.get("servicesFormat") and not v["quiet"] else "table"
    if fmt == "table" and v["quiet"]:
        fmt = "{{.ID}}"
    elif fmt == "raw":
        fmt = (
            "id: {{.ID}}"
            if v["quiet"]
            else "id: {{.ID}}\\nname: {{.Name}}\\nmode: {{.Mode}}\\nreplicas: {{.Replicas}}\\nimage: {{.Image}}\\nports: {{.Ports}}\\n"
        )
    services.sort(key=lambda s: natural_key((s.get("Spec") or {}).get("Name", "")))
    rows = [ServiceRow(s) for s in services]
    print_list(
        cli.out, str(fmt), rows, default_table=LS_TABLE, header=Header(LS_HEADERS), to_json=ServiceRow.as_json
    )
    return 0


INSPECT = Spec(
    "service inspect",
    "[OPTIONS] SERVICE [SERVICE...]",
    "Display detailed information on one or more services",
    [
        O("format", "f", "string", INSPECT_FORMAT_HELP),
        O("pretty", None, help="Print the information in a human friendly format"),
    ],
    min_args=1,
)


class _NoSuchService(APIError):
    def __init__(self, ref: str) -> None:
        super().__init__(404, f"no such service: {ref}")

    def __str__(self) -> str:
        return f"Error: {self.message}"


def cmd_inspect(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    fmt = "pretty" if v["pretty"] else (v["format"] or "")
    if not fmt:
        fmt = cli.config.get("serviceInspectFormat") or "raw"
    if fmt.startswith("pretty") and fmt != "pretty":
        raise StatusError(1, "Cannot supply extra formatting options to the pretty template")

    def fetch(ref: str) -> Any:
        try:
            return cli.api.get_json(f"/services/{q(ref)}", {"insertDefaults": "true"})
        except APIError as e:
            if e.status == 404:
                raise _NoSuchService(ref) from None
            raise

    if fmt != "pretty":
        from gorae.cli.commands.common import inspect_objects

        body = fmt.removeprefix("raw")
        return inspect_objects(cli, fetch, args, body or None, any_status=True)
    from gorae.cli.output import render
    from gorae.cli.servicepretty import PRETTY, ServicePretty

    for ref in args:
        try:
            service = fetch(ref)
        except APIError as e:
            raise StatusError(1, str(e)) from None
        names: dict[str, str] = {}
        for n in ((service.get("Spec") or {}).get("TaskTemplate") or {}).get("Networks") or []:
            try:
                doc = cli.api.get_json(f"/networks/{q(n.get('Target', ''))}", {"scope": "swarm"}) or {}
                names[n.get("Target", "")] = doc.get("Name", "")
            except APIError:
                pass
        cli.out.write(render(PRETTY, ServicePretty(service, names)) + "\n")
    return 0


COMMANDS = {
    "service create": (CREATE, cmd_create),
    "service update": (UPDATE, cmd_update),
    "service rollback": (ROLLBACK, cmd_rollback),
    "service scale": (SCALE, cmd_scale),
    "service rm": (RM, cmd_rm),
    "service ls": (LS, cmd_ls),
    "service inspect": (INSPECT, cmd_inspect),
}
