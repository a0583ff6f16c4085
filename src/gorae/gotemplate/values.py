"""How Python values stand in for Go values inside templates.

Template data are decoded JSON (what docker's `inspect` falls back to): dicts are Go
`map[string]interface {}`, lists `[]interface {}`, `None` is nil, ints are Go `int`, floats
`float64`. A few wrappers keep a Go type where a builtin returns one (`split` gives `[]string`,
`index` of a string gives a `uint8`). Any other Python object is treated like a Go struct:
public attributes are fields and callables are methods.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` and `collections.abc` stay off the import path
    from collections.abc import Callable
    from typing import Any

__all__ = [
    "MISSING",
    "GoNil",
    "GoStruct",
    "GoUint8",
    "StringSlice",
    "is_map_like",
    "is_true",
    "kind",
    "type_name",
]


class _Missing:
    """No value was passed along the pipeline (Go's `missingVal`)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class GoUint8(int):
    """A byte, as `index` returns for a string."""

    go_type = "uint8"


class StringSlice(list[str]):
    """A Go `[]string` (what `split` returns, and what `join` accepts)."""

    go_type = "[]string"


if TYPE_CHECKING:
    _Fields = dict[str, Any]
    _Items = list[Any]
else:
    _Fields = dict  # `Any` is not imported at run time
    _Items = list


class NilSlice(_Items):
    """A nil Go slice: prints and ranges as an empty one, `json` encodes it as null."""


class NilMap(_Fields):
    """A nil Go map: prints as `map[]`, `json` encodes it as null."""


class StringMap(_Fields):
    """A Go map[string]string: `index` of a missing key gives "" (the element's zero value)."""

    zero = ""


class NilStringMap(NilMap):
    """A nil map[string]string."""

    zero = ""


class GoStruct(_Fields):
    """A Go struct value standing in for docker's typed data (`docker inspect` fills templates from Go
    structs): its keys are the struct's fields in order, `go_type` its type ("*container.State").
    A missing field is "can't evaluate field X in type T"; printed bare it shows `{v1 v2 ...}`;
    `json` encodes `json_view` (the daemon's own JSON object) when set."""

    __slots__ = ("go_type", "json_view")

    def __init__(self, go_type: str, fields: dict[str, Any], json_view: Any = None) -> None:
        super().__init__(fields)
        self.go_type = go_type
        self.json_view = json_view


class GoNil:
    """A typed nil pointer (a struct pointer field the daemon left out): prints `<nil>`, is false, and
    "nil pointer evaluating *T.Field" when a field is taken from it."""

    __slots__ = ("go_type",)

    def __init__(self, go_type: str) -> None:
        self.go_type = go_type

    def __repr__(self) -> str:
        return f"GoNil({self.go_type})"


def exported(name: str) -> bool:
    """Go's exported identifier as docker's JSON has them: `[A-Z][A-Za-z0-9_]*` (without importing `re`)."""
    return name.isascii() and name[:1].isupper() and (name.isalnum() or name.replace("_", "").isalnum())


def is_map_like(value: dict[Any, Any]) -> bool:
    """True when a dict looks like a Go map rather than a struct decoded from JSON.

    Docker's JSON objects come from Go structs (exported, capitalised field names) or Go maps
    (labels, options: arbitrary keys). An empty dict counts as a map.
    """
    if isinstance(value, GoStruct):
        return False
    if not value:
        return True
    return not all(isinstance(k, str) and exported(k) for k in value)


def kind(value: Any) -> str:
    """The Go reflect kind of a value: invalid, bool, int, uint, float, complex, string, slice,
    map, func or struct."""
    if value is None or value is MISSING or isinstance(value, GoNil):
        return "invalid"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, GoUint8):
        return "uint"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, complex):
        return "complex"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "slice"
    if isinstance(value, dict):
        return "map"
    if callable(value):
        return "func"
    return "struct"


def type_name(value: Any) -> str:
    """Go's `reflect.Type.String()` for the Go type a value stands for."""
    go_type = getattr(value, "go_type", None)
    if isinstance(go_type, str):
        return go_type
    k = kind(value)
    return {
        "invalid": "<nil>",
        "bool": "bool",
        "int": "int",
        "float": "float64",
        "complex": "complex128",
        "string": "string",
        "slice": "[]interface {}",
        "map": "map[string]interface {}",
        "func": "func()",
    }.get(k) or type(value).__name__


def is_true(value: Any) -> tuple[bool, bool]:
    """Go template truth: (truth, ok). The zero value of a type is false; nil is false."""
    k = kind(value)
    if k == "invalid":
        return False, True
    if k in ("string", "slice", "map"):
        return len(value) > 0, True
    if k in ("bool", "int", "uint", "float", "complex"):
        return bool(value), True
    return True, True


def call_python(fn: Callable[..., Any], args: list[Any]) -> Any:
    """Call a Python callable on behalf of a template (methods of struct-like data, `call`)."""
    return fn(*args)
