"""Go's encoding/json output for template values (docker's `json` template function).

Compact, no HTML escaping (docker calls `SetEscapeHTML(false)`), `\\u2028`/`\\u2029` escaped,
floats formatted as Go does (`1e+21`, `1e-7`), map-like dicts with sorted keys (Go sorts map keys;
struct-like dicts keep their field order).
"""

from __future__ import annotations

from .gofmt import float_digits
from .values import NilMap, NilSlice, is_map_like, kind

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` and `collections.abc` stay off the import path
    from typing import Any

__all__ = ["JSONError", "marshal"]


class JSONError(ValueError):
    """A value JSON cannot encode (NaN, infinities), like Go's UnsupportedValueError."""


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
_HTML = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}


def _string(s: str, html: bool = False) -> str:
    out = ['"']
    for ch in s:
        esc = _ESCAPES.get(ch) or (_HTML.get(ch) if html else None)
        if esc is not None:
            out.append(esc)
            continue
        o = ord(ch)
        if o < 0x20 or o in (0x2028, 0x2029):
            out.append(f"\\u{o:04x}")
        elif 0xD800 <= o <= 0xDFFF:
            out.append("\\ufffd")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _float(x: float) -> str:
    import math  # only when a float is printed (see gofmt.format_float)

    if math.isnan(x) or math.isinf(x):
        raise JSONError(
            f"json: unsupported value: {'NaN' if math.isnan(x) else ('+Inf' if x > 0 else '-Inf')}"
        )
    if x == 0:
        return "-0" if math.copysign(1.0, x) < 0 else "0"
    digits, dp = float_digits(x)
    sign = "-" if x < 0 else ""
    a = abs(x)
    if a < 1e-6 or a >= 1e21:
        exp = dp - 1
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mant}e{'-' if exp < 0 else '+'}{abs(exp)}"
    if dp <= 0:
        return f"{sign}0.{'0' * -dp}{digits}"
    if dp >= len(digits):
        return sign + digits + "0" * (dp - len(digits))
    return f"{sign}{digits[:dp]}.{digits[dp:]}"


def _encode(value: Any, out: list[str], depth: int, html: bool = False) -> None:
    if depth > 1000:
        raise JSONError("json: unsupported value: encountered a cycle")
    view = getattr(value, "json_view", None)
    if view is not None:
        value = view
    else:
        view = getattr(value, "marshal_json", None)
        if view is not None:  # a docker formatting context's MarshalJSON: json.Marshal, so HTML-escaped
            value, html = view, True
    k = kind(value)
    if k == "invalid" or isinstance(value, NilSlice | NilMap):
        out.append("null")
    elif k == "bool":
        out.append("true" if value else "false")
    elif k in ("int", "uint"):
        out.append(str(int(value)))
    elif k == "float":
        out.append(_float(value))
    elif k == "complex":
        raise JSONError("json: unsupported type: complex128")
    elif k == "string":
        out.append(_string(value, html))
    elif k == "slice":
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out, depth + 1, html)
        out.append("]")
    elif k == "map":
        keys = sorted(value, key=str) if is_map_like(value) else list(value)
        out.append("{")
        for i, key in enumerate(keys):
            if i:
                out.append(",")
            out.append(_string(str(key), html))
            out.append(":")
            _encode(value[key], out, depth + 1, html)
        out.append("}")
    elif k == "func":
        raise JSONError("json: unsupported type: func()")
    else:
        fields = (
            {n: v for n, v in vars(value).items() if n[:1].isupper()} if hasattr(value, "__dict__") else None
        )
        if fields:
            _encode(fields, out, depth + 1, html)
        else:
            out.append(_string(str(value), html))


def marshal(value: Any, *, html: bool = False) -> str:
    """json.Marshal(value) as text (`html`: <, > and & escaped as json.Marshal does; docker's `json` template
    function turns that off); raises JSONError for values Go cannot encode."""
    out: list[str] = []
    _encode(value, out, 0, html)
    return "".join(out)
