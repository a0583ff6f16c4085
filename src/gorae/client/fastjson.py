"""`json.loads`/`json.dumps` for the CLI's hot paths without importing `json` (whose decoder and encoder
import `re`, and with it `enum`, `functools` and `collections`): the same C scanner and encoder `json` uses
(`_json`), configured as `json`'s defaults. Anything unusual (bytes with a BOM, invalid or trailing data,
objects the C encoder does not handle) falls back to the `json` module itself, so results and errors are
`json`'s.
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
