"""System commands: version, info, events, system df and system prune."""

from __future__ import annotations

import sys

from gorae.cli.context import StatusError
from gorae.cli.flags import INSPECT_FORMAT_HELP, TABLE_FORMAT_HELP, O, Spec
from gorae.cli.opts import OptError, parse_filters, parse_timestamp
from gorae.cli.output import JsonRow, go_time, human_size, print_list, render, tabwrite

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing`, `json` and `platform` (re, enum, ...) stay off the CLI's import path
    from collections.abc import Callable
    from typing import Any

    from gorae.cli.context import Cli

VERSION = Spec(
    "version",
    "[OPTIONS]",
    "Show the gorae version information",
    [
        O(
            "format",
            "f",
            "string",
            INSPECT_FORMAT_HELP,
        ),
    ],
    max_args=0,
)


def _ansic(ts: str) -> str:
    """docker's reformatDate: an RFC 3339 build time shown as Go's time.ANSIC, anything else unchanged."""
    import datetime

    try:
        t = datetime.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return ts
    return t.strftime("%a %b ") + f"{t.day:>2}" + t.strftime(" %H:%M:%S %Y")


def client_version(api_version: str | None) -> dict[str, Any]:
    """docker's clientVersion for this CLI (Go version: the Python that runs it)."""
    import posix

    from gorae import __version__

    machine = posix.uname().machine  # platform.machine()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine)
    doc: dict[str, Any] = {"Version": __version__}
    if api_version:
        doc["ApiVersion"] = api_version
    doc.update(
        {
            "DefaultAPIVersion": "1.45",
            "GitCommit": "",
            "GoVersion": f"python{sys.version.split()[0]}",  # platform.python_version()
            "Os": "linux",
            "Arch": arch,
            "BuildTime": "",
            "Context": "default",
        }
    )
    return {k: val for k, val in doc.items() if val != "" or k == "Context"}


def _go_bool(b: Any) -> str:
    return "true" if b else "false"


def version_text(client: dict[str, Any], server: dict[str, Any] | None) -> str:
    """docker 28's defaultVersionTemplate, through a tabwriter (minwidth 20, padding 1)."""
    from gorae.cli.formatting import tabwrite as tw

    c = client
    api = c.get("ApiVersion", "")
    if api and api != c.get("DefaultAPIVersion"):
        api += f" (downgraded from {c.get('DefaultAPIVersion')})"
    lines = [
        "Client:",
        f" Version:\t{c.get('Version', '')}",
        f" API version:\t{api}",
        _lang_line(" ", str(c.get("GoVersion", ""))),
        f" Git commit:\t{c.get('GitCommit', '')}",
        f" Built:\t{c.get('BuildTime', '')}",
        f" OS/Arch:\t{c.get('Os', '')}/{c.get('Arch', '')}",
        f" Context:\t{c.get('Context', '')}",
    ]
    if server is not None:
        name = (server.get("Platform") or {}).get("Name") or ""
        lines += ["", "Server:" + (f" {name}" if name else "")]
        for comp in server.get("Components") or []:
            det = comp.get("Details") or {}
            lines.append(f" {comp.get('Name')}:")
            if comp.get("Name") == "Engine":
                lines += [
                    f"  Version:\t{comp.get('Version', '')}",
                    f"  API version:\t{det.get('ApiVersion', '')} (minimum version {det.get('MinAPIVersion', '')})",
                    _lang_line("  ", str(det.get("GoVersion", ""))),
                    f"  Git commit:\t{det.get('GitCommit', '')}",
                    f"  Built:\t{det.get('BuildTime', '')}",
                    f"  OS/Arch:\t{det.get('Os', '')}/{det.get('Arch', '')}",
                    f"  Experimental:\t{det.get('Experimental', '')}",
                ]
            else:
                lines.append(f"  Version:\t{comp.get('Version', '')}")
                lines += [f"  {k}:\t{det[k]}" for k in sorted(det)]
    return tw("\n".join(lines), minwidth=20, tabwidth=1, padding=1)


def _server_version(doc: dict[str, Any]) -> dict[str, Any]:
    comps = doc.get("Components") or []
    found = False
    for comp in comps:
        if comp.get("Name") == "Engine":
            found = True
            det = comp.get("Details") or {}
            if "BuildTime" in det:
                det["BuildTime"] = _ansic(det["BuildTime"])
    if not found:
        comps.append(
            {
                "Name": "Engine",
                "Version": doc.get("Version", ""),
                "Details": {
                    "ApiVersion": doc.get("ApiVersion", ""),
                    "MinAPIVersion": doc.get("MinAPIVersion", ""),
                    "GitCommit": doc.get("GitCommit", ""),
                    "GoVersion": doc.get("GoVersion", ""),
                    "Os": doc.get("Os", ""),
                    "Arch": doc.get("Arch", ""),
                    "BuildTime": _ansic(doc.get("BuildTime", "")),
                    "Experimental": _go_bool(doc.get("Experimental")),
                },
            }
        )
    doc["Components"] = comps
    return doc


def _lang_line(indent: str, go_version: str) -> str:
    """docker's "Go version" line; gorae's own parts report the Python that runs them ("python3.11")."""
    if go_version.startswith("python"):
        return f"{indent}Python version:\t{go_version.removeprefix('python')}"
    return f"{indent}Go version:\t{go_version}"


def _parse_format(fmt: str, name: str) -> Any:
    from gorae.gotemplate import Template, TemplateError

    try:
        return Template(fmt, name=name)
    except TemplateError as e:
        raise StatusError(64, f"template parsing error: {e}") from None


def _go_json(doc: Any) -> str:
    from gorae.gotemplate import render as _render

    return _render("{{json .}}", doc)


def cmd_version(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    from gorae.client.errors import APIError, ConnectionFailed

    fmt = v["format"]
    tmpl = None
    if fmt and fmt != "json":
        tmpl = _parse_format(fmt, "version")
    server: dict[str, Any] | None = None
    err: str | None = None
    api_version: str | None = None
    try:
        server = _server_version(cli.api.get_json("/version") or {})
        api_version = cli.api.version
    except (ConnectionFailed, APIError) as e:
        err = str(e)
        api_version = "1.45"
    client = client_version(api_version)
    doc = {"Client": client, "Server": server}
    if fmt == "json":
        cli.print(_go_json(doc))
    elif tmpl is not None:
        from gorae.gotemplate import TemplateError

        try:
            cli.print(tmpl.execute(_typed_version(doc)))
        except TemplateError as e:
            cli.print()
            raise StatusError(1, str(e)) from None
    else:
        cli.print(version_text(client, server))
    if err:
        raise StatusError(1, err)
    return 0


def _typed_version(doc: dict[str, Any]) -> Any:
    from gorae.gotemplate.values import GoStruct

    def go_fields(d: dict[str, Any]) -> dict[str, Any]:  # Go's field name APIVersion has the JSON name ApiVersion
        return {("APIVersion" if k == "ApiVersion" else k): val for k, val in d.items()}

    # clientVersion's omitempty fields are still fields of the struct (a template reads them as "")
    client = {"GitCommit": "", "BuildTime": "", **go_fields(doc["Client"])}
    typed = {
        "Client": GoStruct("system.clientVersion", client, doc["Client"]),
        "Server": GoStruct("*types.Version", go_fields(doc["Server"]), doc["Server"]) if doc["Server"] else None,
    }
    return GoStruct("system.versionInfo", typed, doc)


INFO = Spec(
    "info",
    "[OPTIONS]",
    "Display system-wide information",
    [
        O(
            "format",
            "f",
            "string",
            INSPECT_FORMAT_HELP,
        ),
    ],
    max_args=0,
)


def info_text(info: dict[str, Any] | None, client: dict[str, Any]) -> tuple[str, list[str]]:
    """docker 28's prettyPrintInfo: (stdout text, warning lines for stderr)."""
    out: list[str] = ["Client:"]
    if client.get("Version"):
        out.append(f" Version:    {client['Version']}")
    out.append(f" Context:    {client.get('Context', '')}")
    out.append(f" Debug Mode: {_go_bool(client.get('Debug'))}")
    out += ["", "Server:"]
    if info is None:
        return "\n".join(out) + "\n", []
    g: Callable[..., Any] = info.get  # Any, not Any | None: `if g(k): ... g(k)` is checked by hand

    def ne(label: str, key: str) -> None:
        if g(key):
            out.append(f" {label}: {g(key)}")

    out.append(f" Containers: {g('Containers', 0)}")
    out.append(f"  Running: {g('ContainersRunning', 0)}")
    out.append(f"  Paused: {g('ContainersPaused', 0)}")
    out.append(f"  Stopped: {g('ContainersStopped', 0)}")
    out.append(f" Images: {g('Images', 0)}")
    ne("Server Version", "ServerVersion")
    ne("Storage Driver", "Driver")
    for pair in g("DriverStatus") or []:
        out.append(f"  {pair[0]}: {pair[1]}")
    for pair in g("SystemStatus") or []:
        out.append(f" {pair[0]}: {pair[1]}")
    ne("Logging Driver", "LoggingDriver")
    ne("Cgroup Driver", "CgroupDriver")
    ne("Cgroup Version", "CgroupVersion")
    plugins = g("Plugins") or {}
    out.append(" Plugins:")
    out.append(" ".join(["  Volume:", *(plugins.get("Volume") or [])]))
    out.append(" ".join(["  Network:", *(plugins.get("Network") or [])]))
    if plugins.get("Authorization"):
        out.append(" ".join(["  Authorization:", *plugins["Authorization"]]))
    out.append(" ".join(["  Log:", *(plugins.get("Log") or [])]))
    if g("CDISpecDirs"):
        out.append(" CDI spec directories:")
        out += [f"  {d}" for d in g("CDISpecDirs")]
    swarm = g("Swarm") or {}
    out.append(f" Swarm: {swarm.get('LocalNodeState', '')}")
    if swarm.get("LocalNodeState") not in ("inactive", "locked", None, ""):
        out.append(f"  NodeID: {swarm.get('NodeID', '')}")
        if swarm.get("Error"):
            out.append(f"  Error: {swarm['Error']}")
        out.append(f"  Is Manager: {_go_bool(swarm.get('ControlAvailable'))}")
        out.append(f"  Node Address: {swarm.get('NodeAddr', '')}")
    if g("Runtimes"):
        # docker ranges over a Go map (random order); gorae prints the names sorted
        out.append(" ".join([" Runtimes:", *sorted(g("Runtimes"))]))
        out.append(f" Default Runtime: {g('DefaultRuntime', '')}")
    if g("OSType") == "linux":
        out.append(f" Init Binary: {g('InitBinary', '')}")
        out.append(f" containerd version: {(g('ContainerdCommit') or {}).get('ID', '')}")
        out.append(f" runc version: {(g('RuncCommit') or {}).get('ID', '')}")
        out.append(f" init version: {(g('InitCommit') or {}).get('ID', '')}")
        if g("SecurityOptions"):
            out.append(" Security Options:")
            for so in g("SecurityOptions"):
                kvs = dict(kv.partition("=")[::2] for kv in so.split(","))
                out.append("  " + kvs.get("name", so))
                if "profile" in kvs:
                    out.append(f"   Profile: {kvs['profile']}")
    if g("OSType") == "windows":
        out.append(f" Default Isolation: {g('Isolation', '')}")
    ne("Kernel Version", "KernelVersion")
    ne("Operating System", "OperatingSystem")
    ne("OSType", "OSType")
    ne("Architecture", "Architecture")
    out.append(f" CPUs: {g('NCPU', 0)}")
    out.append(f" Total Memory: {_bs(g('MemTotal', 0) or 0)}")
    ne("Name", "Name")
    ne("ID", "ID")
    out.append(f" Docker Root Dir: {g('DockerRootDir', '')}")
    out.append(f" Debug Mode: {_go_bool(g('Debug'))}")
    if g("Debug") or client.get("Debug"):
        out.append(f"  File Descriptors: {g('NFd', 0)}")
        out.append(f"  Goroutines: {g('NGoroutines', 0)}")
        out.append(f"  System Time: {g('SystemTime', '')}")
        out.append(f"  EventsListeners: {g('NEventsListener', 0)}")
    ne("HTTP Proxy", "HttpProxy")
    ne("HTTPS Proxy", "HttpsProxy")
    ne("No Proxy", "NoProxy")
    if g("Labels"):
        out.append(" Labels:")
        out += [f"  {lbl}" for lbl in g("Labels")]
    out.append(f" Experimental: {_go_bool(g('ExperimentalBuild'))}")
    reg = g("RegistryConfig") or {}
    if reg.get("InsecureRegistryCIDRs") or reg.get("IndexConfigs"):
        out.append(" Insecure Registries:")
        for ic in (reg.get("IndexConfigs") or {}).values():
            if not ic.get("Secure"):
                out.append(f"  {ic.get('Name', '')}")
        out += [f"  {c}" for c in reg.get("InsecureRegistryCIDRs") or []]
    if reg.get("Mirrors"):
        out.append(" Registry Mirrors:")
        out += [f"  {m}" for m in reg["Mirrors"]]
    out.append(f" Live Restore Enabled: {_go_bool(g('LiveRestoreEnabled'))}")
    if g("ProductLicense"):
        out.append(f" Product License: {g('ProductLicense')}")
    if g("DefaultAddressPools"):
        out.append(" Default Address Pools:")
        out += [f"   Base: {p.get('Base')}, Size: {p.get('Size')}" for p in g("DefaultAddressPools")]
    out.append("")
    return "\n".join(out) + "\n", list(g("Warnings") or [])


def _bs(n: int) -> str:
    from gorae.cli.output import bytes_size

    return bytes_size(n)


def cmd_info(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    from gorae.client.errors import APIError, ConnectionFailed

    fmt = v["format"]
    tmpl = None
    if fmt and fmt != "json":
        tmpl = _parse_format(fmt, "")
    client = client_version(None)
    client_info: dict[str, Any] = {"Debug": bool(cli.gopts.get("debug"))}
    client_info.update(client)
    client_info["Plugins"] = []
    client_info["Warnings"] = None
    info: dict[str, Any] | None = None
    err: str | None = None
    try:
        info = cli.api.get_json("/info") or {}
        client_info["ApiVersion"] = cli.api.version
    except (ConnectionFailed, APIError) as e:
        err = str(e)
    if not fmt:
        text, warnings = info_text(info, client_info)
        cli.out.write(text)
        cli.out.flush()
        for w in warnings:
            cli.eprint(w)
        if err:
            raise StatusError(1, err)
        return 0
    if err:
        cli.eprint(err)
    # docker 28's system.Info has no BridgeNfIp(6)tables any more (deprecated): its JSON leaves them out
    doc: dict[str, Any] = {k: val for k, val in (info or {}).items() if not k.startswith("BridgeNfIp")}
    if err:
        doc["ServerErrors"] = [err]
    doc["ClientInfo"] = client_info
    if fmt == "json":
        cli.print(_go_json(doc))
        return 0
    from gorae.gotemplate import TemplateError
    from gorae.gotemplate.values import GoStruct

    assert tmpl is not None
    try:
        typed = dict(doc, ClientInfo=GoStruct("*system.clientInfo", client_info, client_info))
        cli.print(tmpl.execute(GoStruct("system.dockerInfo", typed, doc)))
    except TemplateError as e:
        cli.print()
        raise StatusError(1, str(e)) from None
    return 0


EVENTS = Spec(
    "events",
    "[OPTIONS]",
    "Get real time events from the server",
    [
        O("filter", "f", "list", "Filter output based on conditions provided", type_name="filter"),
        O(
            "format",
            None,
            "string",
            INSPECT_FORMAT_HELP,
        ),
        O("since", None, "string", "Show all events created since timestamp"),
        O("until", None, "string", "Stream events until this timestamp"),
    ],
    max_args=0,
)


def event_line(ev: dict[str, Any]) -> str:
    tn = ev.get("timeNano") or int(ev.get("time", 0)) * 10**9
    import time as _t

    lt = _t.localtime(tn // 10**9)
    off = _t.strftime("%z", lt)
    ts = (  # Go's RFC3339NanoFixed: "Z" for UTC
        _t.strftime("%Y-%m-%dT%H:%M:%S", lt)
        + f".{tn % 10**9:09d}"
        + ("Z" if off in ("+0000", "-0000") else off[:3] + ":" + off[3:])
    )
    actor = ev.get("Actor") or {}
    attrs = actor.get("Attributes") or {}
    attr_txt = ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs))
    line = f"{ts} {ev.get('Type', '')} {ev.get('Action', '')} {actor.get('ID', '')}"
    return line + (f" ({attr_txt})" if attr_txt else "")


def typed_event(ev: dict[str, Any]) -> Any:
    """docker's events.Message for a template: Go field names (.Status, .ID, .From, .Scope, .TimeNano, ...),
    unknown ones failing; `json` gives the struct's key order (status/id/from only when set)."""
    from gorae.gotemplate.values import GoStruct

    actor_raw = ev.get("Actor") or {}
    attrs = dict(actor_raw.get("Attributes") or {})
    actor = GoStruct("events.Actor", {"ID": actor_raw.get("ID", ""), "Attributes": attrs})
    view: dict[str, Any] = {}
    for key in ("status", "id", "from"):
        if ev.get(key):
            view[key] = ev[key]
    view.update(
        {
            "Type": ev.get("Type", ""),
            "Action": ev.get("Action", ""),
            "Actor": actor,
            "scope": ev.get("scope", ""),
            "time": ev.get("time", 0),
            "timeNano": ev.get("timeNano", 0),
        }
    )
    fields = {
        "Status": ev.get("status", ""),
        "ID": ev.get("id", ""),
        "From": ev.get("from", ""),
        "Type": view["Type"],
        "Action": view["Action"],
        "Actor": actor,
        "Scope": view["scope"],
        "Time": view["time"],
        "TimeNano": view["timeNano"],
    }
    return GoStruct("events.Message", fields, GoStruct("events.Message", view))


def cmd_events(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    try:
        params: dict[str, Any] = {"filters": parse_filters(v["filter"]) or None}
    except OptError as e:
        raise StatusError(125, str(e)) from None
    try:
        if v["since"]:
            params["since"] = parse_timestamp(v["since"])
        if v["until"]:
            params["until"] = parse_timestamp(v["until"])
    except OptError as e:  # the docker client's GetTimestamp error, status 1
        raise StatusError(1, str(e)) from None
    fmt = v["format"]
    for ev in cli.api.stream_json("GET", "/events", params):
        if fmt == "json":
            from gorae.gotemplate.gojson import marshal

            cli.print(marshal(typed_event(ev)))
        elif fmt:
            cli.print(render(fmt, typed_event(ev)))  # docker's events template takes the text as typed
        else:
            cli.print(event_line(ev))
        cli.out.flush()
    return 0


DF = Spec(
    "system df",
    "[OPTIONS]",
    "Show docker disk usage",
    [
        O(
            "format",
            None,
            "string",
            TABLE_FORMAT_HELP,
        ),
        O("verbose", "v", help="Show detailed information on space usage"),
    ],
    max_args=0,
)


def _size4(n: float) -> str:
    """units.HumanSizeWithPrecision(n, 4), as `system df` prints sizes."""
    units = ["B", "kB", "MB", "GB", "TB", "PB"]
    i = 0
    while n >= 1000 and i < len(units) - 1:
        n /= 1000.0
        i += 1
    return f"{n:.4g}{units[i]}"


class DfRow(JsonRow):
    GO_TYPE = "*formatter.diskUsageImagesContext"

    def __init__(self, typ: str, total: int, active: int, size: int, reclaim: int) -> None:
        self.Type = typ
        self.TotalCount = str(total)
        self.Active = str(active)
        self.Size = _size4(size)
        pct = int(reclaim * 100 / size) if size else 0
        self.Reclaimable = f"{_size4(reclaim)} ({pct}%)" if size else _size4(reclaim)

    def as_json(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in ("Active", "Reclaimable", "Size", "TotalCount", "Type")}


def _df_verbose(
    images: list[dict[str, Any]], ctrs: list[dict[str, Any]], vols: list[dict[str, Any]], build_size: int
) -> str:
    """`docker system df -v`: images (shared and unique sizes), containers, volumes, build cache."""
    from gorae.cli.commands.ps import PsRow
    from gorae.cli.output import since

    def table(lines: list[str]) -> str:
        return tabwrite(lines) + "\n"

    rows = ["REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\tSHARED SIZE\tUNIQUE SIZE\tCONTAINERS"]
    for img in images:
        size, shared = int(img.get("Size") or 0), int(img.get("SharedSize") or 0)
        shown = [
            str(img.get("Id", "")).removeprefix("sha256:")[:12],
            since(img.get("Created", 0)),
            human_size(size),
            human_size(shared) if shared >= 0 else "N/A",
            human_size(size - shared) if shared >= 0 else "N/A",
            str(img.get("Containers") or 0),
        ]
        for tag in img.get("RepoTags") or ["<none>:<none>"]:
            repo, _, name = tag.rpartition(":")
            rows.append("\t".join([repo, name, *shown]))
    out = "Images space usage:\n\n" + table(rows)
    rows = ["CONTAINER ID\tIMAGE\tCOMMAND\tLOCAL VOLUMES\tSIZE\tCREATED\tSTATUS\tNAMES"]
    for c in ctrs:
        r = PsRow(c, True)
        rw = human_size(int(c.get("SizeRw") or 0))
        rows.append("\t".join([r.ID, r.Image, r.Command, r.LocalVolumes, rw, r.RunningFor, r.Status, r.Names]))
    out += "\nContainers space usage:\n\n" + table(rows)
    rows = ["VOLUME NAME\tLINKS\tSIZE"]
    for vol in vols:
        usage = vol.get("UsageData") or {}
        vsize = int(usage.get("Size", -1))
        rows.append(f"{vol.get('Name', '')}\t{usage.get('RefCount', 0)}\t{human_size(vsize) if vsize >= 0 else 'N/A'}")
    out += "\nLocal Volumes space usage:\n\n" + table(rows)
    out += f"\nBuild cache usage: {_size4(build_size)}\n\n"
    out += table(["CACHE ID\tCACHE TYPE\tSIZE\tCREATED\tLAST USED\tUSAGE\tSHARED"])
    return out


def cmd_df(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    from gorae.cli.output import Header

    d = cli.api.get_json("/system/df") or {}
    images = d.get("Images") or []
    ctrs = d.get("Containers") or []
    vols = d.get("Volumes") or []
    cache = d.get("BuildCache") or []
    isize = d.get("LayersSize") or sum(i.get("Size", 0) for i in images)
    iactive = sum(1 for i in images if (i.get("Containers") or 0) > 0)
    ireclaim = isize - sum(
        i.get("Size", 0) - max(i.get("SharedSize", 0), 0) for i in images if (i.get("Containers") or 0) > 0
    )
    csize = sum(c.get("SizeRw", 0) or 0 for c in ctrs)
    cactive = sum(1 for c in ctrs if c.get("State") == "running")
    creclaim = sum(c.get("SizeRw", 0) or 0 for c in ctrs if c.get("State") != "running")
    vsize = sum(max((x.get("UsageData") or {}).get("Size", 0), 0) for x in vols)
    vactive = sum(1 for x in vols if (x.get("UsageData") or {}).get("RefCount", 0) > 0)
    vreclaim = sum(
        max((x.get("UsageData") or {}).get("Size", 0), 0)
        for x in vols
        if (x.get("UsageData") or {}).get("RefCount", 0) == 0
    )
    bsize = sum(b.get("Size", 0) for b in cache)
    rows = [
        DfRow("Images", len(images), iactive, isize, max(ireclaim, 0)),
        DfRow("Containers", len(ctrs), cactive, csize, creclaim),
        DfRow("Local Volumes", len(vols), vactive, vsize, vreclaim),
        DfRow(
            "Build Cache",
            len(cache),
            sum(1 for b in cache if b.get("InUse")),
            bsize,
            sum(b.get("Size", 0) for b in cache if not b.get("InUse")),
        ),
    ]
    if v["verbose"] and not v["format"]:
        cli.out.write(_df_verbose(images, ctrs, vols, bsize))
        return 0
    header = Header(
        {
            "Type": "TYPE",
            "TotalCount": "TOTAL",
            "Active": "ACTIVE",
            "Size": "SIZE",
            "Reclaimable": "RECLAIMABLE",
        }
    )
    print_list(
        cli.out,
        v["format"] or "",
        rows,
        default_table="table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
        header=header,
        to_json=DfRow.as_json,
    )
    return 0


PRUNE = Spec(
    "system prune",
    "[OPTIONS]",
    "Remove unused data",
    [
        O("all", "a", help="Remove all unused images not just dangling ones"),
        O("filter", None, "list", 'Provide filter values (e.g. "label=<key>=<value>")', type_name="filter"),
        O("force", "f", help="Do not prompt for confirmation"),
        O("volumes", None, help="Prune anonymous volumes"),
    ],
    max_args=0,
)


def cmd_system_prune(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    from gorae.cli.commands.lifecycle import confirm

    lines = [
        "WARNING! This will remove:",
        "  - all stopped containers",
        "  - all networks not used by at least one container",
    ]
    if v["volumes"]:
        lines.append("  - all anonymous volumes not used by at least one container")
    lines.append(
        "  - all images without at least one container associated to them"
        if v["all"]
        else "  - all dangling images"
    )
    lines.append("  - unused build cache\n\nAre you sure you want to continue?")
    if not v["force"] and not confirm(cli, "\n".join(lines)):
        return 0
    filters = parse_filters(v["filter"])
    total = 0
    api = cli.api
    doc = api.post_json("/containers/prune", {"filters": filters or None}) or {}
    if doc.get("ContainersDeleted"):
        cli.print("Deleted Containers:\n" + "\n".join(doc["ContainersDeleted"]) + "\n")
    total += doc.get("SpaceReclaimed") or 0
    for path in ("/networks/prune",) + (("/volumes/prune",) if v["volumes"] else ()):
        try:
            api.post_json(path, {"filters": filters or None})
        except Exception:  # noqa: BLE001 - a daemon without networks/volumes yet
            pass
    f2 = dict(filters)
    f2["dangling"] = {"false" if v["all"] else "true": True}
    doc = api.post_json("/images/prune", {"filters": f2}) or {}
    if doc.get("ImagesDeleted"):
        cli.print("Deleted Images:")
        for d in doc["ImagesDeleted"]:
            cli.print(f"untagged: {d['Untagged']}" if d.get("Untagged") else f"deleted: {d.get('Deleted')}")
        cli.print()
    total += doc.get("SpaceReclaimed") or 0
    try:
        doc = api.post_json("/build/prune", {"all": v["all"] or None}) or {}
        total += doc.get("SpaceReclaimed") or 0
    except Exception:  # noqa: BLE001
        pass
    cli.print(f"Total reclaimed space: {human_size(total)}")
    return 0


_ = (go_time, tabwrite, sys)

COMMANDS = {
    "version": (VERSION, cmd_version),
    "info": (INFO, cmd_info),
    "events": (EVENTS, cmd_events),
    "system df": (DF, cmd_df),
    "system prune": (PRUNE, cmd_system_prune),
}
