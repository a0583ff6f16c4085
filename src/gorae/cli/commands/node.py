"""Node commands: `node ls`, `inspect` (JSON, `--format`, `--pretty`), `update` (availability, role,
labels), `promote`, `demote` and `rm`, with the docker CLI's columns, texts and exit statuses. `node ps`
lives with the task lists (tasks.py)."""

from __future__ import annotations

import base64
from typing import Any

from gorae.cli.context import Cli, StatusError
from gorae.cli.flags import INSPECT_FORMAT_HELP, TABLE_FORMAT_HELP, O, Spec
from gorae.cli.output import Header, print_list
from gorae.cli.swarmfmt import filters as parse_filters
from gorae.cli.swarmfmt import go_time, node_reference, pretty
from gorae.client.api import q

LS = Spec(
    "node ls",
    "[OPTIONS]",
    "List nodes in the swarm",
    [
        O("filter", "f", "list", "Filter output based on conditions provided", type_name="filter"),
        O("format", None, "string", TABLE_FORMAT_HELP),
        O("quiet", "q", help="Only display IDs"),
    ],
    max_args=0,
)

DEFAULT_TABLE = (
    "table {{.ID}} {{if .Self}}*{{else}} {{ end }}\t{{.Hostname}}\t{{.Status}}\t{{.Availability}}"
    "\t{{.ManagerStatus}}\t{{.EngineVersion}}"
)
HEADERS = {
    "ID": "ID",
    "Self": "",
    "Hostname": "HOSTNAME",
    "Status": "STATUS",
    "Availability": "AVAILABILITY",
    "ManagerStatus": "MANAGER STATUS",
    "EngineVersion": "ENGINE VERSION",
    "TLSStatus": "TLS STATUS",
}


class NodeRow:
    """docker's nodeContext."""

    def __init__(self, node: dict[str, Any], info: dict[str, Any]) -> None:
        self._n, self._info = node, info
        desc = node.get("Description") or {}
        swarm = info.get("Swarm") or {}
        self.ID = node.get("ID", "")
        self.Self = self.ID == swarm.get("NodeID")
        self.Hostname = desc.get("Hostname", "")
        self.Status = pretty((node.get("Status") or {}).get("State", ""))
        self.Availability = pretty((node.get("Spec") or {}).get("Availability", ""))
        ms = node.get("ManagerStatus")
        reach = ""
        if ms is not None:
            reach = "Leader" if ms.get("Leader") else str(ms.get("Reachability", ""))
        self.ManagerStatus = pretty(reach)
        self.EngineVersion = (desc.get("Engine") or {}).get("EngineVersion", "")
        cluster_tls = ((swarm.get("Cluster") or {}).get("TLSInfo")) or {}
        node_tls = desc.get("TLSInfo") or {}
        if not swarm.get("Cluster") or not any(cluster_tls.values()) or not any(node_tls.values()):
            self.TLSStatus = "Unknown"
        elif node_tls == cluster_tls:
            self.TLSStatus = "Ready"
        else:
            self.TLSStatus = "Needs Rotation"

    def as_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in sorted(HEADERS)}


def natural_key(s: str) -> list[Any]:
    from gorae.cli.commands.volume import natural_key as nk

    return nk(s)


def cmd_ls(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    filters = parse_filters(LS, v["filter"])
    nodes = cli.api.get_json("/nodes", {"filters": filters or None}) or []
    info: dict[str, Any] = {}
    if nodes and not v["quiet"]:
        info = cli.api.get_json("/info") or {}
    fmt = v["format"] or ""
    if not fmt:
        fmt = "table"
        if cli.config.get("nodesFormat") and not v["quiet"]:
            fmt = cli.config["nodesFormat"]
    nodes.sort(key=lambda n: natural_key((n.get("Description") or {}).get("Hostname", "")))
    rows = [NodeRow(n, info) for n in nodes]
    if v["quiet"] and fmt == "table":
        fmt = "{{.ID}}"
    elif fmt == "raw":
        fmt = (
            "node_id: {{.ID}}"
            if v["quiet"]
            else "node_id: {{.ID}}\\nhostname: {{.Hostname}}\\nstatus: {{.Status}}\\navailability: {{.Availability}}\\nmanager_status: {{.ManagerStatus}}\\n"
        )
    print_list(
        cli.out, fmt, rows, default_table=DEFAULT_TABLE, header=Header(HEADERS), to_json=NodeRow.as_json
    )
    return 0


INSPECT = Spec(
    "node inspect",
    "[OPTIONS] self|NODE [NODE...]",
    "Display detailed information on one or more nodes",
    [
        O("format", "f", "string", INSPECT_FORMAT_HELP),
        O("pretty", None, help="Print the information in a human friendly format"),
    ],
    min_args=1,
)

PRETTY = """ID:			{{.ID}}
{{- if .Name }}
Name:			{{.Name}}
{{- end }}
{{- if .Labels }}
Labels:
{{- range $k, $v := .Labels }}
 - {{ $k }}{{if $v }}={{ $v }}{{ end }}
{{- end }}{{ end }}
Hostname:              	{{.Hostname}}
Joined at:             	{{.CreatedAt}}
Status:
 State:			{{.StatusState}}
 {{- if .HasStatusMessage}}
 Message:              	{{.StatusMessage}}
 {{- end}}
 Availability:         	{{.SpecAvailability}}
 {{- if .Status.Addr}}
 Address:		{{.StatusAddr}}
 {{- end}}
{{- if .HasManagerStatus}}
Manager Status:
 Address:		{{.ManagerStatusAddr}}
 Raft Status:		{{.ManagerStatusReachability}}
 {{- if .IsManagerStatusLeader}}
 Leader:		Yes
 {{- else}}
 Leader:		No
 {{- end}}
{{- end}}
Platform:
 Operating System:	{{.PlatformOS}}
 Architecture:		{{.PlatformArchitecture}}
Resources:
 CPUs:			{{.ResourceNanoCPUs}}
 Memory:		{{.ResourceMemory}}
{{- if .HasEnginePlugins}}
Plugins:
{{- range $k, $v := .EnginePlugins }}
 {{ $k }}:{{if $v }}		{{ $v }}{{ end }}
{{- end }}
{{- end }}
Engine Version:		{{.EngineVersion}}
{{- if .EngineLabels}}
Engine Labels:
{{- range $k, $v := .EngineLabels }}
 - {{ $k }}{{if $v }}={{ $v }}{{ end }}
{{- end }}{{- end }}
{{- if .HasTLSInfo}}
TLS Info:
 TrustRoot:
{{.TLSInfoTrustRoot}}
 Issuer Subject:	{{.TLSInfoCertIssuerSubject}}
 Issuer Public Key:	{{.TLSInfoCertIssuerPublicKey}}
{{- end}}"""


class NodePretty:
    """docker's nodeInspectContext (the fields and methods the pretty template reads)."""

    def __init__(self, n: dict[str, Any]) -> None:
        spec = n.get("Spec") or {}
        desc = n.get("Description") or {}
        status = n.get("Status") or {}
        ms = n.get("ManagerStatus")
        engine = desc.get("Engine") or {}
        platform = desc.get("Platform") or {}
        res = desc.get("Resources") or {}
        tls = desc.get("TLSInfo") or {}
        self.ID = n.get("ID", "")
        self.Name = spec.get("Name", "")
        self.Labels = spec.get("Labels") or {}
        self.Hostname = desc.get("Hostname", "")
        self.CreatedAt = pretty(go_time(n.get("CreatedAt")))
        self.Status = status
        self.StatusState = pretty(status.get("State", ""))
        self.HasStatusMessage = bool(status.get("Message"))
        self.StatusMessage = pretty(status.get("Message", ""))
        self.SpecAvailability = pretty(spec.get("Availability", ""))
        self.StatusAddr = status.get("Addr", "")
        self.HasManagerStatus = ms is not None
        self.ManagerStatusAddr = (ms or {}).get("Addr", "")
        self.ManagerStatusReachability = pretty((ms or {}).get("Reachability", ""))
        self.IsManagerStatusLeader = bool((ms or {}).get("Leader"))
        self.PlatformOS = platform.get("OS", "")
        self.PlatformArchitecture = platform.get("Architecture", "")
        self.ResourceNanoCPUs = int(res.get("NanoCPUs") or 0) // 10**9
        mem = int(res.get("MemoryBytes") or 0)
        from gorae.cli.output import bytes_size

        self.ResourceMemory = bytes_size(mem) if mem else ""
        plugins: dict[str, list[str]] = {}
        for p in engine.get("Plugins") or []:
            plugins.setdefault(p.get("Type", ""), []).append(p.get("Name", ""))
        self.HasEnginePlugins = bool(engine.get("Plugins"))
        self.EnginePlugins = {k: ", ".join(val) for k, val in plugins.items()}
        self.EngineLabels = engine.get("Labels") or {}
        self.EngineVersion = engine.get("EngineVersion", "")
        self.HasTLSInfo = any(tls.values())
        self.TLSInfoTrustRoot = tls.get("TrustRoot", "")
        self.TLSInfoCertIssuerSubject = _b64(tls.get("CertIssuerSubject"))
        self.TLSInfoCertIssuerPublicKey = _b64(tls.get("CertIssuerPublicKey"))


def _b64(v: Any) -> str:
    """[]byte fields arrive base64-encoded in JSON; docker re-encodes the bytes (the same text)."""
    if not v:
        return ""
    try:
        return base64.b64encode(base64.b64decode(v)).decode()
    except ValueError:
        return str(v)


def cmd_inspect(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    fmt = "pretty" if v["pretty"] else (v["format"] or "")
    if fmt.startswith("pretty") and fmt != "pretty":
        raise StatusError(1, "cannot supply extra formatting options to the pretty template")

    def fetch(ref: str) -> Any:
        return cli.api.get_json(f"/nodes/{q(node_reference(cli, ref))}")

    if fmt != "pretty":
        from gorae.cli.commands.common import inspect_objects

        return inspect_objects(cli, fetch, args, fmt or None, any_status=True)
    from gorae.cli.output import render
    from gorae.client.errors import APIError

    for ref in args:
        try:
            node = fetch(ref)
        except APIError as e:
            raise StatusError(1, str(e)) from None
        text = render(PRETTY, NodePretty(node))
        cli.out.write(text + "\n")
    return 0


UPDATE = Spec(
    "node update",
    "[OPTIONS] NODE",
    "Update a node",
    [
        O("availability", None, "string", 'Availability of the node ("active", "pause", "drain")'),
        O("label-add", None, "list", 'Add or update a node label ("key=value")'),
        O("label-rm", None, "list", "Remove a node label if exists"),
        O("role", None, "string", 'Role of the node ("worker", "manager")'),
    ],
    min_args=1,
    max_args=1,
)


class _NoRoleChange(Exception):
    pass


def update_nodes(cli: Cli, refs: list[str], merge: Any, success: Any) -> None:
    for ref in refs:
        node = cli.api.get_json(f"/nodes/{q(ref)}") or {}
        try:
            merge(node)
        except _NoRoleChange:
            continue
        version = (node.get("Version") or {}).get("Index", 0)
        cli.api.post(
            f"/nodes/{q(node.get('ID', ref))}/update", {"version": version}, body=node.get("Spec") or {}
        )
        success(ref)


def cmd_update(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    given = v["_set"]

    def merge(node: dict[str, Any]) -> None:
        spec = node.setdefault("Spec", {})
        if "role" in given:
            spec["Role"] = v["role"]
        if "availability" in given:
            spec["Availability"] = v["availability"]
        labels = spec.get("Labels") or {}
        spec["Labels"] = labels
        if "label_add" in given:
            for item in v["label_add"]:
                k, _, val = item.partition("=")
                labels[k] = val
        if "label_rm" in given:
            for k in v["label_rm"]:
                if k not in labels:
                    raise StatusError(1, f"key {k} doesn't exist in node's labels")
                del labels[k]

    update_nodes(cli, args, merge, lambda _ref: cli.print(args[0]))
    return 0


PROMOTE = Spec(
    "node promote", "NODE [NODE...]", "Promote one or more nodes to manager in the swarm", [], min_args=1
)
DEMOTE = Spec(
    "node demote", "NODE [NODE...]", "Demote one or more nodes from manager in the swarm", [], min_args=1
)


def cmd_promote(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    def merge(node: dict[str, Any]) -> None:
        spec = node.setdefault("Spec", {})
        if spec.get("Role") == "manager":
            cli.print(f"Node {node.get('ID', '')} is already a manager.")
            raise _NoRoleChange()
        spec["Role"] = "manager"

    update_nodes(cli, args, merge, lambda ref: cli.print(f"Node {ref} promoted to a manager in the swarm."))
    return 0


def cmd_demote(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    def merge(node: dict[str, Any]) -> None:
        spec = node.setdefault("Spec", {})
        if spec.get("Role") == "worker":
            cli.print(f"Node {node.get('ID', '')} is already a worker.")
            raise _NoRoleChange()
        spec["Role"] = "worker"

    update_nodes(cli, args, merge, lambda ref: cli.print(f"Manager {ref} demoted in the swarm."))
    return 0


RM = Spec(
    "node rm",
    "[OPTIONS] NODE [NODE...]",
    "Remove one or more nodes from the swarm",
    [O("force", "f", help="Force remove a node from the swarm")],
    min_args=1,
)


def cmd_rm(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    from gorae.cli.commands.common import remove_each

    force = "1" if v["force"] else None
    return remove_each(cli, args, lambda n: cli.api.delete(f"/nodes/{q(n)}", {"force": force}))


COMMANDS = {
    "node ls": (LS, cmd_ls),
    "node inspect": (INSPECT, cmd_inspect),
    "node update": (UPDATE, cmd_update),
    "node promote": (PROMOTE, cmd_promote),
    "node demote": (DEMOTE, cmd_demote),
    "node rm": (RM, cmd_rm),
}
