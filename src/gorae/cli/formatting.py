"""Docker's human-readable output for the `gorae` CLI.

Owns: go-units sizes and durations (`human_size`, `bytes_size`, `human_duration`), container
status lines ("Up 3 seconds (Paused)", "Exited (0) 5 seconds ago"), ages, truncated IDs,
`ps`'s command ellipsis and port list, Go's text/tabwriter as docker configures it, and
docker's `--format` handling (`table` prefix with header row, `json`, `\\t`/`\\n` escapes) on top
of `gorae.cli.gotemplate`.
"""

from __future__ import annotations

import time

from gorae.humanize import human_duration

TYPE_CHECKING = False
if TYPE_CHECKING:  # heavy modules (re, datetime, ipaddress, unicodedata) are imported only where used
    from collections.abc import Iterable, Mapping
    from typing import Any

__all__ = [
    "CONTAINER_HEADERS",
    "DEFAULT_CONTAINER_TABLE",
    "DEFAULT_IMAGE_TABLE",
    "IMAGE_HEADERS",
    "NETWORK_HEADERS",
    "STATS_HEADERS",
    "VOLUME_HEADERS",
    "bytes_size",
    "container_status",
    "display_width",
    "ellipsis",
    "format_items",
    "human_duration",
    "human_size",
    "is_table",
    "parse_time",
    "ports_string",
    "ps_command",
    "tabwrite",
    "time_ago",
    "truncate_id",
]

# --- go-units ------------------------------------------------------------------------------------

_DECIMAL = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
_BINARY = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"]


def _size_and_unit(size: float, base: float, units: list[str]) -> tuple[float, str]:
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return size, units[i]


def _go_g(value: float, precision: int) -> str:
    s = f"{value:.{precision}g}"
    if "e" in s:
        mant, exp = s.split("e")
        e = int(exp)
        s = f"{mant}e{'-' if e < 0 else '+'}{abs(e):02d}"
    return s


def human_size(size: float, precision: int = 3) -> str:
    """go-units HumanSizeWithPrecision (decimal units): 1240000 -> "1.24MB", 0 -> "0B"."""
    value, unit = _size_and_unit(float(size), 1000.0, _DECIMAL)
    return _go_g(value, precision) + unit


def bytes_size(size: float) -> str:
    """go-units BytesSize (binary units, 4 significant digits): "1.5GiB", "512KiB"."""
    value, unit = _size_and_unit(float(size), 1024.0, _BINARY)
    return _go_g(value, 4) + unit


# --- times and states --------------------------------------------------------------------------

_TS = r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?\Z"


def parse_time(value: str | int | float | None) -> float | None:
    """Seconds since the epoch from an RFC 3339 (nanosecond) timestamp or a number; None for
    Go's zero time ("0001-01-01T00:00:00Z") and empty values."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value)
    import re
    from datetime import UTC, datetime

    m = re.match(_TS, value.strip())
    if not m:
        return None
    base, frac, tz = m.groups()
    if base.startswith("0001-01-01"):
        return None
    dt = datetime.fromisoformat(base + ("+00:00" if tz in (None, "Z") else tz))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp() + (float("0." + frac) if frac else 0.0)


def time_ago(when: str | int | float | None, now: float | None = None) -> str:
    """Docker's "CREATED" column: "2 minutes ago" (the client computes it, like docker)."""
    ts = parse_time(when)
    if ts is None:
        return ""
    return human_duration((time.time() if now is None else now) - ts) + " ago"


def container_status(state: Mapping[str, Any], now: float | None = None) -> str:
    """The daemon's `Status` line from a container's inspect `State`: "Up 3 seconds",
    "Up 2 hours (healthy)", "Up 5 minutes (Paused)", "Restarting (1) 2 seconds ago",
    "Exited (0) 5 seconds ago", "Created", "Dead", "Removal In Progress"."""
    t = time.time() if now is None else now
    started = parse_time(state.get("StartedAt"))
    finished = parse_time(state.get("FinishedAt"))
    exit_code = state.get("ExitCode", 0)
    status = state.get("Status", "")
    running = bool(state.get("Running")) or status in ("running", "paused", "restarting")
    if running:
        if state.get("Paused") or status == "paused":
            return f"Up {human_duration(t - (started or t))} (Paused)"
        if state.get("Restarting") or status == "restarting":
            return f"Restarting ({exit_code}) {human_duration(t - (finished or t))} ago"
        health = state.get("Health")
        from collections.abc import Mapping

        if isinstance(health, Mapping) and health.get("Status"):
            hs = health["Status"]
            label = "health: starting" if hs == "starting" else hs
            return f"Up {human_duration(t - (started or t))} ({label})"
        return f"Up {human_duration(t - (started or t))}"
    if state.get("RemovalInProgress") or status == "removing":
        return "Removal In Progress"
    if state.get("Dead") or status == "dead":
        return "Dead"
    if started is None:
        return "Created"
    if finished is None:
        return ""
    return f"Exited ({exit_code}) {human_duration(t - finished)} ago"


def truncate_id(value: str) -> str:
    """docker's TruncateID: drop any "sha256:" style prefix, keep 12 characters."""
    i = value.find(":")
    if i >= 0:
        value = value[i + 1 :]
    return value[:12]


# --- widths, ellipsis, commands, ports -----------------------------------------------------------


def _char_width(ch: str) -> int:
    import unicodedata

    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def display_width(s: str) -> int:
    """Terminal columns of s (East Asian wide characters count 2, combining marks 0)."""
    if s.isascii():  # every ASCII character is one column wide and none combines
        return len(s)
    import unicodedata

    return sum(0 if unicodedata.combining(ch) else _char_width(ch) for ch in s)


def ellipsis(s: str, max_width: int) -> str:
    """docker's formatter.Ellipsis: cut s to max_width display columns ending in "…"."""
    if max_width <= 0:
        return ""
    if max_width == 1:
        return s[:1]
    if s.isascii():
        return s if len(s) <= max_width else s[: max_width - 1] + "…"
    widths = []
    total = 0
    for ch in s:
        total += _char_width(ch)
        widths.append(total)
    if total <= max_width:
        return s
    for i in range(len(widths) - 1):
        if widths[i] <= max_width - 1 < widths[i + 1]:
            return s[: i + 1] + "…"
    return s


def ps_command(command: str, trunc: bool = True) -> str:
    """`ps`'s COMMAND cell: Go-quoted, cut to 20 columns with "…" unless --no-trunc."""
    s = ellipsis(command, 20) if trunc else command
    body = s[:-1] if s.endswith("…") else s
    if body.isascii() and body.isprintable() and '"' not in body and "\\" not in body:
        return f'"{s}"'  # what Go's strconv.Quote gives for printable ASCII (and a trailing "…")
    from gorae.cli.gotemplate.gofmt import quote  # the template engine is imported only when used

    return quote(s)


def _join_host_port(host: str, port: str) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _ip_key(ip: str) -> tuple[int, int]:
    import ipaddress

    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return (2, 0)
    return (0 if addr.version == 4 else 1, int(addr))


def ports_string(ports: Iterable[Mapping[str, Any]]) -> str:
    """`ps`'s PORTS cell from the API's Ports list (docker's DisplayablePorts):
    "5000-5002/tcp, 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"."""
    plist = sorted(
        ports,
        key=lambda p: (
            int(p.get("PrivatePort") or 0),
            _ip_key(p.get("IP") or "") if p.get("IP") else (-1, 0),
            int(p.get("PublicPort") or 0),
            p.get("Type") or "",
        ),
    )
    groups: dict[str, list[int]] = {}
    order: list[str] = []
    result: list[str] = []
    host_mappings: list[str] = []
    for p in plist:
        current = int(p.get("PrivatePort") or 0)
        typ = p.get("Type") or "tcp"
        ip = p.get("IP") or ""
        key = typ
        if ip:
            public = int(p.get("PublicPort") or 0)
            if public != current:
                host_mappings.append(f"{_join_host_port(ip, str(public))}->{current}/{typ}")
                continue
            key = ip + "/" + typ
        group = groups.get(key)
        if group is None:
            groups[key] = [current, current]
            order.append(key)
            continue
        if current == group[1] + 1:
            group[1] = current
            continue
        result.append(_form_group(key, group[0], group[1]))
        groups[key] = [current, current]
    for key in order:
        first, last = groups[key]
        result.append(_form_group(key, first, last))
    return ", ".join(result + host_mappings)


def _form_group(key: str, start: int, last: int) -> str:
    parts = key.split("/")
    ip, typ = ("", parts[0]) if len(parts) == 1 else ("/".join(parts[:-1]), parts[-1])
    group = str(start) if start == last else f"{start}-{last}"
    if ip:
        group = f"{_join_host_port(ip, group)}->{group}"
    return f"{group}/{typ}"


# --- tabwriter -----------------------------------------------------------------------------------


def tabwrite(text: str, minwidth: int = 10, tabwidth: int = 1, padding: int = 3, padchar: str = " ") -> str:
    """Go's text/tabwriter with docker's settings (minwidth 10, padding 3, spaces): cells are
    tab-terminated; a column's width is its widest cell plus padding (at least minwidth) over
    each block of consecutive lines that have that column; a line's last cell is not padded."""
    lines = [line.replace("\v", "\t").split("\t") for line in text.replace("\f", "\n").split("\n")]
    out: list[str] = []
    widths: list[int] = []

    def write_lines(line0: int, line1: int) -> None:
        for i in range(line0, line1):
            cells = lines[i]
            parts = []
            for j, cell in enumerate(cells):
                parts.append(cell)
                if j < len(widths) and j < len(cells) - 1:
                    parts.append(padchar * (widths[j] - display_width(cell)))
            out.append("".join(parts))

    def fmt(line0: int, line1: int) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            write_lines(line0, this)
            line0 = this
            width = minwidth
            while this < line1 and column < len(lines[this]) - 1:
                width = max(width, display_width(lines[this][column]) + padding)
                this += 1
            widths.append(width)
            fmt(line0, this)
            widths.pop()
            line0 = this
        write_lines(line0, line1)

    fmt(0, len(lines))
    return "\n".join(out)


# --- --format ------------------------------------------------------------------------------------

DEFAULT_CONTAINER_TABLE = (
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
)
DEFAULT_IMAGE_TABLE = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"

CONTAINER_HEADERS: Mapping[str, str] = {
    "ID": "CONTAINER ID",
    "Names": "NAMES",
    "Image": "IMAGE",
    "Command": "COMMAND",
    "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED",
    "Ports": "PORTS",
    "State": "STATE",
    "Status": "STATUS",
    "Size": "SIZE",
    "Labels": "LABELS",
    "Mounts": "MOUNTS",
    "LocalVolumes": "LOCAL VOLUMES",
    "Networks": "NETWORKS",
    "Platform": "PLATFORM",
}
IMAGE_HEADERS: Mapping[str, str] = {
    "ID": "IMAGE ID",
    "Repository": "REPOSITORY",
    "Tag": "TAG",
    "Digest": "DIGEST",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "Size": "SIZE",
    "Containers": "CONTAINERS",
    "VirtualSize": "VIRTUAL SIZE",
    "SharedSize": "SHARED SIZE",
    "UniqueSize": "UNIQUE SIZE",
    "Labels": "LABELS",
}
VOLUME_HEADERS: Mapping[str, str] = {
    "Name": "VOLUME NAME",
    "Driver": "DRIVER",
    "Scope": "SCOPE",
    "Mountpoint": "MOUNTPOINT",
    "Labels": "LABELS",
    "Links": "LINKS",
    "Size": "SIZE",
}
NETWORK_HEADERS: Mapping[str, str] = {
    "ID": "NETWORK ID",
    "Name": "NAME",
    "Driver": "DRIVER",
    "Scope": "SCOPE",
    "IPv6": "IPV6",
    "Internal": "INTERNAL",
    "Labels": "LABELS",
    "CreatedAt": "CREATED AT",
}
STATS_HEADERS: Mapping[str, str] = {
    "Container": "CONTAINER",
    "ID": "CONTAINER ID",
    "Name": "NAME",
    "CPUPerc": "CPU %",
    "MemUsage": "MEM USAGE / LIMIT",
    "MemPerc": "MEM %",
    "NetIO": "NET I/O",
    "BlockIO": "BLOCK I/O",
    "PIDs": "PIDS",
}


def is_table(fmt: str) -> bool:
    return fmt.startswith("table")


def _final_format(fmt: str) -> str:
    if is_table(fmt):
        fmt = fmt[len("table") :]
    elif fmt == "json":
        fmt = "{{json .}}"
    fmt = fmt.strip(" ")
    return fmt.replace("\\t", "\t").replace("\\n", "\n")


def format_items(
    fmt: str,
    items: Iterable[Any],
    headers: Mapping[str, str] | None = None,
    *,
    missingkey: str = "default",
) -> str:
    """Docker's formatter.Context.Write: each item rendered with the template plus a newline;
    a `table` format gets a header row (the same template run on `headers` with the header
    functions) and tabwriter alignment. Returns the whole output; raises TemplateError with
    docker's "template parsing error: ..." prefix left to the caller."""
    from gorae.cli.gotemplate import HEADER_FUNCS, Template

    tmpl = Template(_final_format(fmt), missingkey=missingkey)
    body = "".join(tmpl.execute(item) + "\n" for item in items)
    if not is_table(fmt):
        return body
    header = tmpl.execute(dict(headers or {}), funcs=HEADER_FUNCS, missingkey="default")
    return tabwrite(header + "\n" + body)
