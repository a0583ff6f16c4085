"""Template functions: Go's builtins (and, or, not, len, index, slice, print, printf, println,
eq, ne, lt, le, gt, ge, html, js, urlquery, call) and docker's additions (json, split, join,
title, lower, upper, pad, truncate), each with its Go signature so argument errors read as Go's.

`HEADER_FUNCS` are docker's replacements used to render a `table` header row.
"""

from __future__ import annotations

from . import gofmt
from .gojson import JSONError, marshal
from .values import GoUint8, StringSlice, is_true, kind, type_name

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` and `collections.abc` stay off the import path
    from collections.abc import Callable, Mapping
    from typing import Any

__all__ = ["BUILTINS", "DOCKER_FUNCS", "HEADER_FUNCS", "FuncError", "GoFunc", "MAX_STRING", "python_func"]

MAX_STRING = 16 << 20
"""Longest string a function may build (pad, printf widths are bounded by Go already)."""


class FuncError(Exception):
    """A function failed; execution reports `error calling NAME: MESSAGE`."""


class GoFunc:
    """A template function and its Go parameter types.

    Types: "any" (interface {}), "value" (reflect.Value), "string", "int", "bool", "[]string".
    `variadic` is the element type of a trailing `...` parameter. What a frozen dataclass would be (equal
    and hashed by its fields, repr), written out because importing `dataclasses` imports `inspect`.
    """

    __slots__ = ("name", "fn", "params", "variadic", "builtin")

    def __init__(
        self,
        name: str,
        fn: Callable[..., Any],
        params: tuple[str, ...] = (),
        variadic: str | None = None,
        builtin: bool = False,
    ) -> None:
        self.name = name
        self.fn = fn
        self.params = params
        self.variadic = variadic
        self.builtin = builtin

    def _key(self) -> tuple[str, Callable[..., Any], tuple[str, ...], str | None, bool]:
        return (self.name, self.fn, self.params, self.variadic, self.builtin)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, GoFunc)
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"GoFunc(name={self.name!r}, fn={self.fn!r}, params={self.params!r}, variadic={self.variadic!r}, "
            f"builtin={self.builtin!r})"
        )


def python_func(name: str, fn: Callable[..., Any]) -> GoFunc:
    """Wrap a plain Python callable as a variadic `func(...interface {})`."""
    return GoFunc(name, fn, (), "any")


# --- comparison --------------------------------------------------------------------------------


def _basic_kind(v: Any) -> str:
    k = kind(v)
    return k if k in ("bool", "int", "uint", "float", "complex", "string") else "invalid"


def _eq(arg1: Any, *args: Any) -> bool:
    if not args:
        raise FuncError("missing argument for comparison")
    k1 = _basic_kind(arg1)
    for arg in args:
        k2 = _basic_kind(arg)
        truth = False
        if k1 != k2:
            if {k1, k2} == {"int", "uint"}:
                truth = int(arg1) == int(arg)
            elif arg1 is not None and arg is not None:
                raise FuncError("incompatible types for comparison")
        elif k1 != "invalid":
            truth = arg1 == arg
        elif arg1 is None or arg is None:
            truth = arg1 is None and arg is None
        else:
            for v in (arg1, arg):
                if kind(v) in ("slice", "map", "func"):
                    raise FuncError(f"non-comparable type {gofmt.sprint(v)}: {type_name(v)}")
            truth = type(arg1) is type(arg) and arg1 == arg
        if truth:
            return True
    return False


def _ne(arg1: Any, arg2: Any) -> bool:
    return not _eq(arg1, arg2)


def _lt(arg1: Any, arg2: Any) -> bool:
    k1 = _basic_kind(arg1)
    if k1 == "invalid":
        raise FuncError("invalid type for comparison")
    k2 = _basic_kind(arg2)
    if k2 == "invalid":
        raise FuncError("invalid type for comparison")
    if k1 != k2:
        if {k1, k2} == {"int", "uint"}:
            return int(arg1) < int(arg2)
        raise FuncError("incompatible types for comparison")
    if k1 in ("bool", "complex"):
        raise FuncError("invalid type for comparison")
    if k1 == "string":
        return bool(arg1.encode("utf-8", "surrogatepass") < arg2.encode("utf-8", "surrogatepass"))
    return bool(arg1 < arg2)


def _le(arg1: Any, arg2: Any) -> bool:
    return _lt(arg1, arg2) or _eq(arg1, arg2)


def _gt(arg1: Any, arg2: Any) -> bool:
    return not _le(arg1, arg2)


def _ge(arg1: Any, arg2: Any) -> bool:
    return not _lt(arg1, arg2)


# --- containers --------------------------------------------------------------------------------


def _index_arg(index: Any, cap: int) -> int:
    k = kind(index)
    if k in ("int", "uint"):
        x = int(index)
    elif k == "invalid":
        raise FuncError("cannot index slice/array with nil")
    else:
        raise FuncError(f"cannot index slice/array with type {type_name(index)}")
    if x < 0 or x > cap:
        raise FuncError(f"index out of range: {x}")
    return x


def _index(item: Any, *indexes: Any) -> Any:
    if item is None:
        raise FuncError("index of untyped nil")
    for index in indexes:
        if item is None:
            raise FuncError("index of nil pointer")
        k = kind(item)
        if k == "slice":
            x = _index_arg(index, len(item))
            if x == len(item):
                raise FuncError(f"index out of range: {x}")
            item = item[x]
        elif k == "string":
            data = item.encode("utf-8", "surrogatepass")
            x = _index_arg(index, len(data))
            if x == len(data):
                raise FuncError(f"index out of range: {x}")
            item = GoUint8(data[x])
        elif k == "map":
            if index is None:
                raise FuncError("value is nil; should be of type string")
            if not isinstance(index, str):
                raise FuncError(f"value has type {type_name(index)}; should be string")
            item = item.get(index, getattr(item, "zero", None))  # Go: the element's zero value if typed
        else:
            raise FuncError(f"can't index item of type {type_name(item)}")
    return item


def _slice(item: Any, *indexes: Any) -> Any:
    if item is None:
        raise FuncError("slice of untyped nil")
    if len(indexes) > 3:
        raise FuncError(f"too many slice indexes: {len(indexes)}")
    k = kind(item)
    if k == "string":
        if len(indexes) == 3:
            raise FuncError("cannot 3-index slice a string")
        data = item.encode("utf-8", "surrogatepass")
        cap = len(data)
    elif k == "slice":
        data = item
        cap = len(item)
    else:
        raise FuncError(f"can't slice item of type {type_name(item)}")
    idx = [0, cap, cap]
    for i, index in enumerate(indexes):
        idx[i] = _index_arg(index, cap)
    if idx[0] > idx[1]:
        raise FuncError(f"invalid slice index: {idx[0]} > {idx[1]}")
    if len(indexes) == 3 and idx[1] > idx[2]:
        raise FuncError(f"invalid slice index: {idx[1]} > {idx[2]}")
    part = data[idx[0] : idx[1]]
    if k == "string":
        return bytes(part).decode("utf-8", "replace")
    return StringSlice(part) if isinstance(item, StringSlice) else list(part)


def _len(item: Any) -> int:
    k = kind(item)
    if k == "invalid":
        return 0  # docker's typed data: a JSON null is a nil slice or map (length 0)
    if k == "string":
        return len(item.encode("utf-8", "surrogatepass"))
    if k in ("slice", "map"):
        return len(item)
    raise FuncError(f"len of type {type_name(item)}")


def _not(arg: Any) -> bool:
    return not is_true(arg)[0]


def _call(callee: str, fn: Any, *args: Any) -> Any:
    if fn is None:
        raise FuncError("call of nil")
    if not callable(fn):
        raise FuncError(f"non-function {callee} of type {type_name(fn)}")
    try:
        return fn(*args)
    except FuncError:
        raise
    except Exception as exc:  # a Python callable from the caller's data
        raise FuncError(str(exc)) from exc


# --- escaping ------------------------------------------------------------------------------------


def _eval_args(args: tuple[Any, ...]) -> str:
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return gofmt.sprint(*("<no value>" if a is None else a for a in args))


def html_escape(s: str) -> str:
    """template.HTMLEscapeString."""
    return (
        s.replace("&", "&amp;")
        .replace("'", "&#39;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&#34;")
        .replace("\x00", "\ufffd")
    )


_JS = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E", "&": "\\u0026", "=": "\\u003D"}


def js_escape(s: str) -> str:
    """template.JSEscapeString."""
    out = []
    for ch in s:
        o = ord(ch)
        if ch in _JS:
            out.append(_JS[ch])
        elif o < 0x20:
            out.append(f"\\u00{o:02X}")
        elif o < 0x80 or gofmt._is_print(ch):
            out.append(ch)
        else:
            out.append(f"\\u{o:04X}")
    return "".join(out)


def _html(*args: Any) -> str:
    return html_escape(_eval_args(args))


def _js(*args: Any) -> str:
    return js_escape(_eval_args(args))


def _urlquery(*args: Any) -> str:
    from urllib.parse import quote_plus

    return quote_plus(_eval_args(args).encode("utf-8", "surrogatepass"), safe="")


def _print(*args: Any) -> str:
    return _bounded(gofmt.sprint(*args))


def _printf(fmt: str, *args: Any) -> str:
    return _bounded(gofmt.sprintf(fmt, *args))


def _println(*args: Any) -> str:
    return _bounded(gofmt.sprintln(*args))


def _bounded(s: str) -> str:
    if len(s) > MAX_STRING:
        raise FuncError("output too large")
    return s


# --- docker's functions ------------------------------------------------------------------------


def _json(v: Any) -> str:
    try:
        return _bounded(marshal(v))
    except JSONError:
        return ""


def _split(s: str, sep: str) -> StringSlice:
    if sep == "":
        return StringSlice(list(s))
    return StringSlice(s.split(sep))


def _join(elems: list[str], sep: str) -> str:
    return _bounded(sep.join(elems))


def _map_runes(s: str, fn: Callable[[str], str]) -> str:
    out = []
    for ch in s:
        mapped = fn(ch)
        out.append(mapped if len(mapped) == 1 else ch)
    return "".join(out)


def _lower(s: str) -> str:
    return _map_runes(s, str.lower)


def _upper(s: str) -> str:
    return _map_runes(s, str.upper)


def _is_separator(ch: str) -> bool:
    if ord(ch) <= 0x7F:
        return not (ch.isalnum() or ch == "_")
    import unicodedata  # non-ASCII only (an extension module: ~0.5 ms to load)

    if ch.isalpha() or unicodedata.category(ch) == "Nd":
        return False
    return ch.isspace()


def _title(s: str) -> str:
    out = []
    prev = " "
    for ch in s:
        if _is_separator(prev):
            t = ch.title()
            out.append(t if len(t) == 1 else ch)
        else:
            out.append(ch)
        prev = ch
    return "".join(out)


def _pad(source: str, prefix: int, suffix: int) -> str:
    if source == "":
        return source
    if prefix < 0 or suffix < 0:
        raise FuncError("strings: negative Repeat count")
    if prefix + suffix + len(source) > MAX_STRING:
        raise FuncError("output too large")
    return " " * prefix + source + " " * suffix


def _truncate(source: str, length: int) -> str:
    data = source.encode("utf-8", "surrogatepass")
    if len(data) < length:
        return source
    if length < 0:
        raise FuncError(f"runtime error: slice bounds out of range [:{length}]")
    return data[:length].decode("utf-8", "replace")


def _identity(v: Any, *_: Any) -> Any:
    return v


def _table(fns: list[GoFunc]) -> dict[str, GoFunc]:
    return {f.name: f for f in fns}


BUILTINS: Mapping[str, GoFunc] = _table(
    [
        GoFunc("and", _identity, ("value",), "value", builtin=True),
        GoFunc("or", _identity, ("value",), "value", builtin=True),
        GoFunc("call", _call, ("value",), "value", builtin=True),
        GoFunc("html", _html, (), "any", builtin=True),
        GoFunc("index", _index, ("value",), "value", builtin=True),
        GoFunc("slice", _slice, ("value",), "value", builtin=True),
        GoFunc("js", _js, (), "any", builtin=True),
        GoFunc("len", _len, ("value",), builtin=True),
        GoFunc("not", _not, ("value",), builtin=True),
        GoFunc("print", _print, (), "any", builtin=True),
        GoFunc("printf", _printf, ("string",), "any", builtin=True),
        GoFunc("println", _println, (), "any", builtin=True),
        GoFunc("urlquery", _urlquery, (), "any", builtin=True),
        GoFunc("eq", _eq, ("value",), "value", builtin=True),
        GoFunc("ge", _ge, ("value", "value"), builtin=True),
        GoFunc("gt", _gt, ("value", "value"), builtin=True),
        GoFunc("le", _le, ("value", "value"), builtin=True),
        GoFunc("lt", _lt, ("value", "value"), builtin=True),
        GoFunc("ne", _ne, ("value", "value"), builtin=True),
    ]
)

DOCKER_FUNCS: Mapping[str, GoFunc] = _table(
    [
        GoFunc("json", _json, ("any",)),
        GoFunc("split", _split, ("string", "string")),
        GoFunc("join", _join, ("[]string", "string")),
        GoFunc("title", _title, ("string",)),
        GoFunc("lower", _lower, ("string",)),
        GoFunc("upper", _upper, ("string",)),
        GoFunc("pad", _pad, ("string", "int", "int")),
        GoFunc("truncate", _truncate, ("string", "int")),
    ]
)

HEADER_FUNCS: Mapping[str, GoFunc] = _table(
    [
        GoFunc("json", _identity, ("string",)),
        GoFunc("split", _identity, ("string", "string")),
        GoFunc("join", _identity, ("string", "string")),
        GoFunc("title", _identity, ("string",)),
        GoFunc("lower", _identity, ("string",)),
        GoFunc("upper", _identity, ("string",)),
        GoFunc("truncate", _identity, ("string", "int")),
    ]
)
