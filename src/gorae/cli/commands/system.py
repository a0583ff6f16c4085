"""System commands: version, info, events, system df and system prune."""

from __future__ import annotations

import json
import platform
import sys
from typing import Any

from gorae.cli.context import Cli, StatusError
from gorae.cli.flags import INSPECT_FORMAT_HELP, TABLE_FORMAT_HELP, O, Spec
from gorae.cli.opts import OptError, parse_filters, parse_timestamp
from gorae.cli.output import go_time, human_size, print_list, render, tabwrite

VERSION = Spec(
    "version",
    "[OPTIONS]",
    "Show the Docker version information",
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


def cmd_version(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    from gorae import __version__
    from gorae.client.errors import ConnectionFailed

    client = {
        "Version": __version__,
        "ApiVersion": "1.45",
        "DefaultAPIVersion": "1.45",
        "GoVersion": f"python{platform.python_version()}",
        "GitCommit": "",
        "BuildTime": "",
        "Os": "linux",
        "Arch": platform.machine(),
        "Context": "default",
    }
    server: dict[str, Any] | None = None
    err: str | None = None
    try:
        server = cli.api.get_json("/version")
        client["ApiVersion"] = cli.api.version
    except ConnectionFailed as e:
        err = str(e)
    doc = {"Client": client, "Server": server}
    fmt = v["format"]
    if fmt:
        cli.print(json.dumps(doc) if fmt == "json" else render(fmt, doc))
    else:
        cli.print("Client:")
        cli.print(
            f" Version:           {client['Version']}\n API version:       {client['ApiVersion']}\n Python version:    {platform.python_version()}\n OS/Arch:           linux/{client['Arch']}\n Context:           default"
        )
        if server:
            cli.print("\nServer:")
            cli.print(
                f" Engine:\n  Version:          {server.get('Version')}\n  API version:      {server.get('ApiVersion')} (minimum version {server.get('MinAPIVersion')})"
            )
            cli.print(
                f"  Git commit:       {server.get('GitCommit', '')}\n  Built:            {server.get('BuildTime', '')}\n  OS/Arch:          {server.get('Os')}/{server.get('Arch')}\n  Experimental:     {str(server.get('Experimental', False)).lower()}"
            )
            for comp in server.get("Components") or []:
                if comp.get("Name") != "Engine":
                    cli.print(f" {comp.get('Name')}:\n  Version:          {comp.get('Version')}")
    if err:
        raise StatusError(1, err)
    return 0


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


def cmd_info(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    info = cli.api.get_json("/info") or {}
    fmt = v["format"]
    if fmt:
        cli.print(json.dumps(info) if fmt == "json" else render(fmt, info))
        return 0
    p = cli.print
    p(
        "Client:\n Version:    "
        + __import__("gorae").__version__
        + "\n Context:    default\n Debug Mode: false\n"
    )
    p("Server:")
    p(
        f" Containers: {info.get('Containers', 0)}\n  Running: {info.get('ContainersRunning', 0)}\n  Paused: {info.get('ContainersPaused', 0)}\n  Stopped: {info.get('ContainersStopped', 0)}"
    )
    p(
        f" Images: {info.get('Images', 0)}\n Server Version: {info.get('ServerVersion', '')}\n Storage Driver: {info.get('Driver', '')}"
    )
    for k, val in info.get("DriverStatus") or []:
        p(f"  {k}: {val}")
    p(
        f" Logging Driver: {info.get('LoggingDriver', '')}\n Cgroup Driver: {info.get('CgroupDriver', '')}\n Cgroup Version: {info.get('CgroupVersion', '')}"
    )
    p(
        f" Default Runtime: {info.get('DefaultRuntime', '')}\n Kernel Version: {info.get('KernelVersion', '')}\n Operating System: {info.get('OperatingSystem', '')}"
    )
    p(
        f" OSType: {info.get('OSType', '')}\n Architecture: {info.get('Architecture', '')}\n CPUs: {info.get('NCPU', 0)}\n Total Memory: {_bs(info.get('MemTotal', 0))}"
    )
    p(
        f" Name: {info.get('Name', '')}\n ID: {info.get('ID', '')}\n Docker Root Dir: {info.get('DockerRootDir', '')}\n Debug Mode: {str(info.get('Debug', False)).lower()}"
    )
    p(
        f" Experimental: {str(info.get('ExperimentalBuild', False)).lower()}\n Live Restore Enabled: {str(info.get('LiveRestoreEnabled', False)).lower()}"
    )
    for w in info.get("Warnings") or []:
        cli.eprint(w)
    return 0


def _bs(n: int) -> str:
    from gorae.cli.output import bytes_size

    return bytes_size(n)


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
    ts = (
        _t.strftime("%Y-%m-%dT%H:%M:%S", lt)
        + f".{tn % 10**9:09d}"
        + _t.strftime("%z", lt)[:3]
        + ":"
        + _t.strftime("%z", lt)[3:]
    )
    actor = ev.get("Actor") or {}
    attrs = actor.get("Attributes") or {}
    attr_txt = ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs))
    line = f"{ts} {ev.get('Type', '')} {ev.get('Action', '')} {actor.get('ID', '')}"
    return line + (f" ({attr_txt})" if attr_txt else "")


def cmd_events(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    try:
        params: dict[str, Any] = {"filters": parse_filters(v["filter"]) or None}
        if v["since"]:
            params["since"] = parse_timestamp(v["since"])
        if v["until"]:
            params["until"] = parse_timestamp(v["until"])
    except OptError as e:
        raise StatusError(125, str(e)) from None
    from gorae.cli.output import expand_escapes

    fmt = v["format"]
    for ev in cli.api.stream_json("GET", "/events", params):
        if fmt == "json" or (fmt and fmt.strip() == "{{json .}}"):
            cli.print(json.dumps(ev, separators=(",", ":")))
        elif fmt:
            cli.print(render(expand_escapes(fmt), ev))
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


class DfRow:
    def __init__(self, typ: str, total: int, active: int, size: int, reclaim: int) -> None:
        self.Type = typ
        self.TotalCount = str(total)
        self.Active = str(active)
        self.Size = _size4(size)
        pct = int(reclaim * 100 / size) if size else 0
        self.Reclaimable = f"{_size4(reclaim)} ({pct}%)" if size else _size4(reclaim)

    def as_json(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in ("Active", "Reclaimable", "Size", "TotalCount", "Type")}


def cmd_df(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    from gorae.cli.commands.ps import Header

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
