"""Docker's human-readable output for the `gorae` CLI.

Owns: go-units sizes and durations (`human_size`, `bytes_size`, `human_duration`), display widths and
docker's ellipsis, `ps`'s command ellipsis and port list, and Go's text/tabwriter as docker configures it.
`--format` handling lives in `gorae.cli.output`.
"""

from __future__ import annotations

from gorae.humanize import human_duration

TYPE_CHECKING = False
if TYPE_CHECKING:  # heavy modules (re, datetime, ipaddress, unicodedata) are imported only where used
    from collections.abc import Iterable, Mapping
    from typing import Any

__all__ = [
    "bytes_size",
    "display_width",
    "ellipsis",
    "human_duration",
    "human_size",
    "ports_string",
    "ps_command",
    "tabwrite",
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


# --- widths, ellipsis, commands, ports -----------------------------------------------------------


def _char_width(ch: str) -> int:
    import unicodedata

    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def display_width(s: str) -> int:
    """Terminal columns of s (East Asian wide characters count 2, combining marks 0)."""
    if s.isascii() or s.replace("…", "").isascii():  # ASCII and ellipsis's "…" (narrow): one column each
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
    from gorae.gotemplate.gofmt import quote  # the template engine is imported only when used

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
