"""Task lists: `service ps` and `node ps`, with docker's columns (task names `<service>.<slot>` or
`<service>.<node id>`, history rows indented ` \\_ ` in tables, node and service IDs resolved to names),
truncation, filters and the errors for services or nodes not found."""

from __future__ import annotations

import time
from typing import Any

from gorae.cli.context import Cli, StatusError
from gorae.cli.flags import O, Spec
from gorae.cli.output import Header, ellipsis, human_duration, print_list
from gorae.cli.swarmfmt import IDResolver, familiar_image, node_reference, pretty, trunc_id, unix_time
from gorae.cli.swarmfmt import filters as parse_filters
from gorae.client.api import q
from gorae.client.errors import APIError

TABLE = "table {{.ID}}\t{{.Name}}\t{{.Image}}\t{{.Node}}\t{{.DesiredState}}\t{{.CurrentState}}\t{{.Error}}\t{{.Ports}}"
HEADERS = {
    "ID": "ID",
    "Name": "NAME",
    "Image": "IMAGE",
    "Node": "NODE",
    "DesiredState": "DESIRED STATE",
    "CurrentState": "CURRENT STATE",
    "Error": "ERROR",
    "Ports": "PORTS",
}


def _ps_opts() -> list[Any]:
    return [
        O("filter", "f", "list", "Filter output based on conditions provided", type_name="filter"),
        O("format", None, "string", "Pretty-print tasks using a Go template"),
        O("no-resolve", None, help="Do not map IDs to Names"),
        O("no-trunc", None, help="Do not truncate output"),
        O("quiet", "q", help="Only display task IDs"),
    ]


SERVICE_PS = Spec(
    "service ps",
    "[OPTIONS] SERVICE [SERVICE...]",
    "List the tasks of one or more services",
    _ps_opts(),
    min_args=1,
)
NODE_PS = Spec(
    "node ps",
    "[OPTIONS] [NODE...]",
    "List tasks running on one or more nodes, defaults to current node",
    _ps_opts(),
)


class TaskRow:
    """docker's taskContext."""

    def __init__(self, t: dict[str, Any], name: str, node: str, trunc: bool, now: float) -> None:
        status = t.get("Status") or {}
        self.ID = trunc_id(t.get("ID", "")) if trunc else t.get("ID", "")
        self.Name = name
        image = ((t.get("Spec") or {}).get("ContainerSpec") or {}).get("Image", "")
        self.Image = familiar_image(image) if trunc else image
        self.Node = node
        self.DesiredState = pretty(t.get("DesiredState", ""))
        since = human_duration(now - unix_time(status.get("Timestamp"))).lower()
        self.CurrentState = f"{pretty(status.get('State', ''))} {since} ago"
        err = status.get("Err", "") or ""
        if trunc:
            err = ellipsis(err, 30)
        self.Error = f'"{err}"' if err else ""
        ports = (status.get("PortStatus") or {}).get("Ports") or []
        self.Ports = ",".join(
            f"*:{p.get('PublishedPort', 0)}->{p.get('TargetPort', 0)}/{p.get('Protocol', '')}" for p in ports
        )

    def as_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in sorted(HEADERS)}


def _natural(s: str) -> list[Any]:
    from gorae.cli.commands.volume import natural_key

    return natural_key(s)


def print_tasks(
    cli: Cli, tasks: list[dict[str, Any]], resolver: IDResolver, trunc: bool, quiet: bool, fmt: str
) -> None:
    """task.Print."""
    named = []
    for t in tasks:
        service = resolver.resolve("service", t.get("ServiceID", ""))
        name = f"{service}.{t['Slot']}" if t.get("Slot") else f"{service}.{t.get('NodeID', '')}"
        named.append((name, t))
    # by name (natural order), the newest first within a name; stable otherwise
    named.sort(key=lambda nt: -unix_time(nt[1].get("CreatedAt")))
    named.sort(key=lambda nt: _natural(nt[0]))
    if fmt == "table" and quiet:
        fmt = "{{.ID}}"
    elif fmt == "raw":
        fmt = (
            "id: {{.ID}}"
            if quiet
            else "id: {{.ID}}\\nname: {{.Name}}\\nimage: {{.Image}}\\nnode: {{.Node}}\\ndesired_state: {{.DesiredState}}\\ncurrent_state: {{.CurrentState}}\\nerror: {{.Error}}\\nports: {{.Ports}}\\n"
        )
    indent = " \\_ " if fmt.startswith("table") else ""
    now = time.time()
    rows = []
    prev = None
    for name, t in named:
        shown = indent + name if name == prev else name
        prev = name
        rows.append(TaskRow(t, shown, resolver.resolve("node", t.get("NodeID", "")), trunc, now))
    print_list(cli.out, fmt, rows, default_table=TABLE, header=Header(HEADERS), to_json=TaskRow.as_json)


def _default_format(cli: Cli, v: dict[str, Any]) -> str:
    if v["format"]:
        return str(v["format"])
    if cli.config.get("tasksFormat") and not v["quiet"]:
        return str(cli.config["tasksFormat"])
    return "table"


def cmd_service_ps(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    filters = parse_filters(SERVICE_PS, v["filter"])
    by_id = cli.api.get_json("/services", {"filters": {"id": {a: True for a in args}}}) or []
    by_name = cli.api.get_json("/services", {"filters": {"name": {a: True for a in args}}}) or []
    notfound: list[str] = []
    count = 0
    for ref in args:
        match = next((s for s in by_id if s.get("ID") == ref), None) or next(
            (s for s in by_name if (s.get("Spec") or {}).get("Name") == ref), None
        )
        if match is not None:
            filters.setdefault("service", {})[match["ID"]] = True
            count += 1
            continue
        found = False
        for s in by_id:
            if s.get("ID", "").startswith(ref):
                if found:
                    raise StatusError(1, f"multiple services found with provided prefix: {ref}")
                filters.setdefault("service", {})[s["ID"]] = True
                count += 1
                found = True
        if not found:
            notfound.append(f"no such service: {ref}")
    if count == 0:
        raise StatusError(1, "\n".join(notfound))
    if "node" in filters:
        filters["node"] = {node_reference(cli, n): True for n in filters["node"]}
    tasks = cli.api.get_json("/tasks", {"filters": filters}) or []
    quiet = bool(v["quiet"])
    print_tasks(
        cli,
        tasks,
        IDResolver(cli, bool(v["no_resolve"])),
        not (v["no_trunc"] or quiet),
        quiet,
        _default_format(cli, v),
    )
    if notfound:
        raise StatusError(1, "\n".join(notfound))
    return 0


def cmd_node_ps(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    base = parse_filters(NODE_PS, v["filter"])
    errs: list[str] = []
    tasks: list[dict[str, Any]] = []
    for ref in args or ["self"]:
        try:
            node_id = node_reference(cli, ref)
            node = cli.api.get_json(f"/nodes/{q(node_id)}") or {}
            filters = {k: dict(val) for k, val in base.items()}
            filters.setdefault("node", {})[node.get("ID", "")] = True
            tasks += cli.api.get_json("/tasks", {"filters": filters}) or []
        except APIError as e:
            errs.append(str(e))
        except StatusError as e:
            errs.append(e.message)
    if not errs or tasks:
        print_tasks(
            cli,
            tasks,
            IDResolver(cli, bool(v["no_resolve"])),
            not v["no_trunc"],
            bool(v["quiet"]),
            _default_format(cli, v),
        )
    if errs:
        raise StatusError(1, "\n".join(errs))
    return 0


COMMANDS = {
    "service ps": (SERVICE_PS, cmd_service_ps),
    "node ps": (NODE_PS, cmd_node_ps),
}
