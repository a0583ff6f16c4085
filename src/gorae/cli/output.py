"""Printing lists as docker does: default tables, `table TEMPLATE`, `json` and raw Go templates, with the
header row drawn by rendering the template against header names, and docker's tabwriter spacing.

Uses `gorae.cli.gotemplate.render` and the helpers of `gorae.cli.formatting`; the small fallbacks below
only stand in while formatting.py is absent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from gorae.cli.context import StatusError

try:  # the shared formatting helpers (another module's); fallbacks keep the CLI usable without them
    from gorae.cli.formatting import human_duration, human_size  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - exercised only while formatting.py is missing

    def human_duration(seconds: float) -> str:
        s = int(seconds)
        if s < 1:
            return "Less than a second"
        if s == 1:
            return "1 second"
        if s < 60:
            return f"{s} seconds"
        m = int(seconds / 60)
        if m == 1:
            return "About a minute"
        if m < 60:
            return f"{m} minutes"
        h = int(seconds / 3600 + 0.5)
        if h == 1:
            return "About an hour"
        if h < 48:
            return f"{h} hours"
        if h < 24 * 7 * 2:
            return f"{h // 24} days"
        if h < 24 * 30 * 2:
            return f"{h // 24 // 7} weeks"
        if h < 24 * 365 * 2:
            return f"{h // 24 // 30} months"
        return f"{int(seconds / 3600) // 24 // 365} years"

    def human_size(size: float) -> str:
        units = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
        i = 0
        while size >= 1000 and i < len(units) - 1:
            size /= 1000.0
            i += 1
        return f"{size:.3g}{units[i]}"


def bytes_size(size: float) -> str:
    try:
        from gorae.cli.formatting import bytes_size as bs  # type: ignore[attr-defined]

        return str(bs(size))
    except ImportError:
        units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        i = 0
        while size >= 1024 and i < len(units) - 1:
            size /= 1024.0
            i += 1
        return f"{size:.3g}{units[i]}"


def since(ts: float, now: float | None = None) -> str:
    """ "5 minutes ago" from a unix timestamp."""
    return human_duration((now or time.time()) - ts) + " ago"


def go_time(ts: float) -> str:
    """Go's time.Time.String() for a unix time in local time: "2024-01-02 15:04:05 +0000 UTC"."""
    lt = time.localtime(ts)
    return time.strftime("%Y-%m-%d %H:%M:%S %z ", lt) + (time.strftime("%Z", lt) or "UTC")


def ellipsis(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def render(template: str, data: Any) -> str:
    try:
        from gorae.cli.gotemplate import TemplateError
        from gorae.cli.gotemplate import render as _render
    except ImportError:  # pragma: no cover - only while gotemplate is being written
        return _fallback_render(template, data)
    try:
        return _render(template, data)
    except TemplateError as e:
        raise StatusError(1, f"template parsing error: {e}") from None


def _fallback_render(template: str, data: Any) -> str:
    """Field chains and `json` only; stands in until gorae.cli.gotemplate is importable."""
    import re

    def value(chain: str) -> Any:
        cur = data
        for part in [p for p in chain.split(".") if p]:
            cur = cur.get(part) if isinstance(cur, dict) else getattr(cur, part, None)
        return cur

    def sub(m: re.Match[str]) -> str:
        expr = m.group(1).strip()
        if expr.startswith("json "):
            return json.dumps(value(expr[5:].strip()))
        v = value(expr)
        return "<no value>" if v is None else str(v)

    return re.sub(r"\{\{-?\s*(.*?)\s*-?\}\}", sub, template)


def check_template(template: str) -> None:
    """Fail early on a template that does not parse (docker exits before contacting the daemon)."""
    try:
        from gorae.cli.gotemplate import parse as _parse  # type: ignore[attr-defined]
    except ImportError:
        return
    from gorae.cli.gotemplate import TemplateError

    try:
        _parse(template)
    except TemplateError as e:
        raise StatusError(1, f"template parsing error: {e}") from None


def tabwrite(lines: list[str], minwidth: int = 10, padding: int = 3) -> str:
    """Go's text/tabwriter as docker configures it (minwidth 10, tabwidth 1, padding 3, spaces): every
    tab-terminated cell is padded to its column's width; the last cell of a line is left alone."""
    rows = [line.split("\t") for line in lines]
    widths: dict[int, int] = {}
    for r in rows:
        for i, cell in enumerate(r[:-1]):
            widths[i] = max(widths.get(i, 0), len(cell) + padding, minwidth)
    out = []
    for r in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(r[:-1])] + [r[-1]]
        out.append("".join(cells))
    return "\n".join(out)


def expand_escapes(fmt: str) -> str:
    """docker replaces the two-character sequences `\\t` and `\\n` in --format with real ones."""
    return fmt.replace("\\t", "\t").replace("\\n", "\n")


def print_list(
    out: Any,
    fmt: str,
    rows: Iterable[Any],
    *,
    default_table: str,
    header: Any,
    quiet_format: str | None = None,
    to_json: Callable[[Any], Any] | None = None,
) -> None:
    """Write rows in the requested format. `header` is template data whose fields are the column names."""
    fmt = fmt or "table"
    if fmt == "table":
        fmt = default_table
    elif quiet_format is not None and fmt == quiet_format:
        pass
    if fmt == "json":
        for r in rows:
            out.write(json.dumps(to_json(r) if to_json else r, separators=(",", ":")) + "\n")
        return
    if fmt.startswith("table"):
        body = expand_escapes(fmt[5:].lstrip())
        lines = [render(body, header)]
        lines += [render(body, r) for r in rows]
        text = tabwrite("\n".join(lines).split("\n"))
        out.write(text + "\n")
        return
    body = expand_escapes(fmt)
    for r in rows:
        out.write(render(body, r) + "\n")


def print_json(out: Any, obj: Any) -> None:
    """docker's indented JSON for inspect."""
    out.write(json.dumps(obj, indent=4, ensure_ascii=False) + "\n")
