"""Printing lists as docker does: default tables, `table TEMPLATE`, `json` and raw Go templates, with the
header row drawn by rendering the template against header names, and docker's tabwriter spacing.

Uses `gorae.gotemplate.render` and the helpers of `gorae.cli.formatting`, imported only when needed;
templates made only of `{{.Field}}` actions on row objects (the default tables) are filled in directly.
"""

from __future__ import annotations

import time

from gorae.cli.context import StatusError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any


class Header:
    """Template data for the header row: every field is its column title. docker renders the header from a
    map, so a field it does not know prints `<no value>` (the rows report the unknown field first)."""

    def __init__(self, titles: dict[str, str]) -> None:
        for k, v in titles.items():
            setattr(self, k, v)

    def __getattr__(self, name: str) -> str:
        if name[:1].isupper():
            return "<no value>"
        raise AttributeError(name)

    def Label(self, name: str) -> str:  # noqa: N802 - Go method name
        """docker's header for `{{.Label "com.example.some-key"}}`: the last dotted part, "-"/"_" as spaces."""
        return name.split(".")[-1].replace("-", " ").replace("_", " ")


class JsonRow:
    """A list row (docker's formatting context) whose `{{json .}}` is `as_json()`: Go's MarshalJSON of the
    context, every field as a string, keys sorted by the encoder. `GO_TYPE` names the context in template
    errors, which start with `TEMPLATE_ERROR` (the words of the docker command's formatter)."""

    GO_TYPE = "*formatter.Context"
    TEMPLATE_ERROR = "template parsing error"

    @property
    def go_type(self) -> str:
        """The Go type the template engine names in its errors."""
        return self.GO_TYPE

    def as_json(self) -> dict[str, Any]:
        raise NotImplementedError

    @property
    def marshal_json(self) -> dict[str, Any]:
        """What `{{json .}}` marshals, HTML-escaped (gorae.gotemplate.gojson's hook)."""
        return self.as_json()


def human_duration(seconds: float) -> str:
    from gorae.cli.formatting import human_duration as f

    return str(f(seconds))


def human_size(size: float, precision: int = 3) -> str:
    from gorae.cli.formatting import human_size as f

    return str(f(size, precision))


def bytes_size(size: float) -> str:
    from gorae.cli.formatting import bytes_size as f

    return str(f(size))


def since(ts: float, now: float | None = None) -> str:
    """ "5 minutes ago" from a unix timestamp."""
    return human_duration((now or time.time()) - ts) + " ago"


def go_time(ts: float) -> str:
    """Go's time.Time.String() for a unix time in local time: "2024-01-02 15:04:05 +0000 UTC"."""
    lt = time.localtime(ts)
    return time.strftime("%Y-%m-%d %H:%M:%S %z ", lt) + (time.strftime("%Z", lt) or "UTC")


def rfc3339(ts: float) -> str:
    """Go's time.Unix(ts, 0).Format(time.RFC3339) in local time: "2024-01-02T15:04:05Z" or "...+01:00"."""
    lt = time.localtime(int(ts))
    off = lt.tm_gmtoff or 0
    if off == 0:
        zone = "Z"
    else:
        sign, off = ("-", -off) if off < 0 else ("+", off)
        zone = f"{sign}{off // 3600:02d}:{off % 3600 // 60:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", lt) + zone


def ellipsis(s: str, n: int) -> str:
    if s.isascii():
        return s if len(s) <= n else s[: n - 1] + "…"
    from gorae.cli.formatting import ellipsis as f

    return str(f(s, n))


def render(template: str, data: Any, *, header: bool = False) -> str:
    """Render a Go template (gorae.gotemplate); plain `{{.Field}}` templates on row objects skip the engine.
    `header` renders a table's header row with docker's header functions (json, upper, ... return the title)."""
    if not isinstance(data, dict | list) and _plain_fields(template):
        return _render_plain(template, data)
    from gorae.gotemplate import HEADER_FUNCS, Template, TemplateError

    try:
        tmpl = Template(template)
        return tmpl.execute(data, funcs=HEADER_FUNCS) if header else tmpl.execute(data)
    except TemplateError as e:
        msg = str(e)
        prefix = getattr(data, "TEMPLATE_ERROR", None)
        if prefix:
            raise StatusError(1, f"{prefix}: {msg}") from None
        raise StatusError(
            1, msg if msg.startswith("template") else f"template parsing error: {msg}"
        ) from None


def check_template(template: str) -> None:
    """Fail early on a template that does not parse (docker exits before contacting the daemon)."""
    from gorae.gotemplate import TemplateError
    from gorae.gotemplate import parse as _parse

    try:
        _parse(template)
    except TemplateError as e:
        raise StatusError(1, f"template parsing error: {e}") from None


def tabwrite(lines: list[str], minwidth: int = 10, padding: int = 3) -> str:
    """Go's text/tabwriter as docker configures it (formatting.tabwrite)."""
    from gorae.cli.formatting import tabwrite as f

    return str(f("\n".join(lines), minwidth=minwidth, padding=padding))


_IDENT_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_IDENT = _IDENT_START | frozenset("0123456789")
# template -> its pieces (is_field, text or field name), or None when not plain
_PLAIN_CACHE: dict[str, list[tuple[bool, str]] | None] = {}


def _split_plain(template: str) -> list[tuple[bool, str]] | None:
    """Split a template made only of text and `{{.Field}}` actions (whitespace allowed inside the braces)
    into pieces: (False, text) and (True, field name). None for anything else (which needs the engine).
    Hand-written rather than a regular expression to keep `re` off the common path."""
    try:
        return _PLAIN_CACHE[template]
    except KeyError:
        pass
    pieces = _PLAIN_CACHE[template] = _scan_plain(template)
    return pieces


def _scan_plain(template: str) -> list[tuple[bool, str]] | None:
    pieces: list[tuple[bool, str]] = []
    t, n, i = template, len(template), 0
    while i < n:
        j = t.find("{", i)
        k = t.find("}", i)
        if k >= 0 and (j < 0 or k < j):  # a lone "}" in text
            return None
        if j < 0:
            pieces.append((False, t[i:]))
            break
        if j > i:
            pieces.append((False, t[i:j]))
        if not t.startswith("{{", j):
            return None
        p = j + 2
        while p < n and t[p].isspace():
            p += 1
        if p >= n or t[p] != "." or p + 1 >= n or t[p + 1] not in _IDENT_START:
            return None
        q = p + 2
        while q < n and t[q] in _IDENT:
            q += 1
        name = t[p + 1 : q]
        while q < n and t[q].isspace():
            q += 1
        if not t.startswith("}}", q):
            return None
        pieces.append((True, name))
        i = q + 2
    return pieces


def _plain_fields(template: str) -> bool:
    """True when the template is only text and `{{.Field}}` actions (rendered without the template engine)."""
    return _split_plain(template) is not None


def _render_plain(template: str, data: Any) -> str:
    pieces = _split_plain(template)
    assert pieces is not None
    out = []
    for is_field, text in pieces:
        if is_field:
            if isinstance(data, dict):
                v = data.get(text)
            elif hasattr(data, text):
                v = getattr(data, text)
            else:
                raise StatusError(1, _no_field(template, text, data))
            if isinstance(v, bool):
                v = "true" if v else "false"
            out.append("<no value>" if v is None else str(v))
        else:
            out.append(text)
    return "".join(out)


def _no_field(template: str, field: str, data: Any) -> str:
    """docker's text for a field its formatting context does not have (a Go template execution error)."""
    at = template.find("." + field)
    line = template.count("\n", 0, max(at, 0)) + 1
    col = at - (template.rfind("\n", 0, at) + 1)
    go_type = getattr(type(data), "GO_TYPE", f"*formatter.{type(data).__name__}")
    prefix = getattr(type(data), "TEMPLATE_ERROR", "failed to execute template")
    return (
        f'{prefix}: template: :{line}:{col}: executing "" at <.{field}>: '
        f"can't evaluate field {field} in type {go_type}"
    )


def expand_escapes(fmt: str) -> str:
    """docker replaces the two-character sequences `\\t` and `\\n` in --format with real ones."""
    return fmt.replace("\\t", "\t").replace("\\n", "\n")


def check_list_template(template: str) -> None:
    """docker parses a list's --format before printing any row: a bad one fails even on an empty list."""
    if _plain_fields(template):
        return
    from gorae.gotemplate import Template, TemplateError

    try:
        Template(template)
    except TemplateError as e:
        raise StatusError(1, f"failed to parse template: {e}") from None


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
    if fmt == "json":  # Go's json.Marshal of the context: keys sorted, <>& escaped, UTF-8 raw
        from gorae.gotemplate.gojson import marshal

        for r in rows:
            out.write(marshal(to_json(r) if to_json else r, html=True) + "\n")  # MarshalJSON: json.Marshal
        return
    table = fmt.startswith("table")
    body = expand_escapes((fmt[5:] if table else fmt).strip(" "))  # docker's Context.preFormat
    check_list_template(body)
    if table:  # the rows first: docker renders the header after them, so a row's error wins
        lines = [render(body, r) for r in rows]
        lines.insert(0, render(body, header, header=True))
        text = tabwrite("\n".join(lines).split("\n"))
        out.write(text + "\n")
        return
    for r in rows:
        out.write(render(body, r) + "\n")


def print_json(out: Any, obj: Any) -> None:
    """docker's indented JSON for inspect."""
    import json

    out.write(json.dumps(obj, indent=4, ensure_ascii=False) + "\n")
