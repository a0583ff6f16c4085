"""`json.loads`/`json.dumps` for the CLI's hot paths without importing `json` (whose decoder and encoder
import `re`, and with it `enum`, `functools` and `collections`): the same C scanner and encoder `json` uses
(`_json`), configured as `json`'s defaults, and `dumps_indent` (what `inspect` prints) with the layout of
`json`'s indenting encoder around the same C string encoder. Anything unusual (bytes with a BOM, invalid or
trailing data, objects the C encoder does not handle) falls back to the `json` module itself, so results and
errors are `json`'s. tests/unit/test_fastjson.py checks all three against `json` with hypothesis.
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_WS = " \t\n\r"
_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


class _DecoderSettings:
    """What `_json.make_scanner` reads from a `json.JSONDecoder()` with default arguments."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__
    memo: dict[str, str] = {}


# typeshed wants a `make_scanner` as the context; the C scanner only reads the attributes above (the stub's TODO)
_scan = _json.make_scanner(_DecoderSettings())  # type: ignore[arg-type]


def loads(data: str | bytes | bytearray) -> Any:
    """json.loads(data)."""
    s = data
    if not isinstance(s, str):
        if s[:3] == b"\xef\xbb\xbf" or (len(s) > 1 and not (s[0] and s[1])):  # BOM or UTF-16/32
            return _slow_loads(data)
        try:
            s = s.decode("utf-8")
        except UnicodeDecodeError:
            return _slow_loads(data)
    s = s.strip(_WS)
    try:
        obj, end = _scan(s, 0)
    except StopIteration:
        return _slow_loads(data)
    if end != len(s):
        return _slow_loads(data)
    return obj


def _slow_loads(data: str | bytes | bytearray) -> Any:
    import json

    return json.loads(data)


def _no_default(o: Any) -> Any:
    raise _Fallback


class _Fallback(Exception):
    pass


def dumps(obj: Any, separators: tuple[str, str] = (", ", ": ")) -> str:
    """json.dumps(obj, separators=separators), otherwise with default arguments (ensure_ascii, NaN allowed)."""
    if isinstance(obj, str):
        return str(_json.encode_basestring_ascii(obj))
    item_sep, key_sep = separators
    encode = _json.make_encoder(
        {}, _no_default, _json.encode_basestring_ascii, None, key_sep, item_sep, False, False, True
    )
    try:
        return "".join(encode(obj, 0))
    except (_Fallback, ValueError, TypeError):
        import json

        return json.dumps(obj, separators=separators)


def dumps_indent(obj: Any, indent: int = 4) -> str:
    """json.dumps(obj, indent=indent, ensure_ascii=False)."""
    out: list[str] = []
    try:
        _indented(obj, out, "\n", " " * indent)
    except (_Fallback, RecursionError):
        import json

        return json.dumps(obj, indent=indent, ensure_ascii=False)
    return "".join(out)


_encode_str = _json.encode_basestring


def _float(o: float) -> str:
    if o != o:
        return "NaN"
    if o == _INF:
        return "Infinity"
    if o == -_INF:
        return "-Infinity"
    return float.__repr__(o)


_INF = float("inf")


def _indented(o: Any, out: list[str], nl: str, step: str) -> None:
    """Append o's text as json's pure-Python encoder writes it with `indent` (nl: the newline and the indent
    of the current level)."""
    if isinstance(o, str):
        out.append(_encode_str(o))
    elif o is None:
        out.append("null")
    elif o is True:
        out.append("true")
    elif o is False:
        out.append("false")
    elif isinstance(o, int):
        out.append(int.__repr__(o))
    elif isinstance(o, float):
        out.append(_float(o))
    elif isinstance(o, list | tuple):
        if not o:
            out.append("[]")
            return
        inner = nl + step
        sep = "[" + inner
        for v in o:
            out.append(sep)
            _indented(v, out, inner, step)
            sep = "," + inner
        out.append(nl + "]")
    elif isinstance(o, dict):
        if not o:
            out.append("{}")
            return
        inner = nl + step
        sep = "{" + inner
        for k, v in o.items():
            out.append(sep)
            out.append(_encode_str(_key(k)))
            out.append(": ")
            _indented(v, out, inner, step)
            sep = "," + inner
        out.append(nl + "}")
    else:
        raise _Fallback


def _key(k: Any) -> str:
    if isinstance(k, str):
        return k
    if isinstance(k, float):
        return _float(k)
    if k is True:
        return "true"
    if k is False:
        return "false"
    if k is None:
        return "null"
    if isinstance(k, int):
        return int.__repr__(k)
    raise _Fallback
