"""gorae.client.fastjson against the `json` module it stands in for: the same text out and the same values in,
for any JSON-like value hypothesis makes (non-ASCII and escapes, NaN and the infinities, non-string keys), and the
fallbacks for what the C scanner does not take (a BOM, UTF-16, trailing data, invalid text)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gorae.client import fastjson

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
keys = st.text() | st.integers() | st.floats() | st.booleans() | st.none()
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.tuples(inner, inner) | st.dictionaries(keys, inner, max_size=4)
    ),
    max_leaves=30,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)


@given(values)
def test_dumps_indent_is_jsons(v: Any) -> None:
    assert fastjson.dumps_indent(v) == json.dumps(v, indent=4, ensure_ascii=False)
    assert fastjson.dumps_indent(v, 2) == json.dumps(v, indent=2, ensure_ascii=False)


@given(values)
def test_dumps_is_jsons(v: Any) -> None:
    assert fastjson.dumps(v) == json.dumps(v)
    assert fastjson.dumps(v, separators=(",", ":")) == json.dumps(v, separators=(",", ":"))


def _same(a: Any, b: Any) -> bool:
    """Equality where NaN equals NaN (the parsed values of "NaN")."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@given(json_values, st.sampled_from(["", " ", "\n", "\t\r\n "]))
def test_loads_is_jsons(v: Any, ws: str) -> None:
    text = ws + json.dumps(v, indent=1 if ws else None, ensure_ascii=bool(ws)) + ws
    assert _same(fastjson.loads(text), json.loads(text))
    assert _same(fastjson.loads(text.encode()), json.loads(text.encode()))


def test_dumps_indent_layout() -> None:
    doc = [{"Id": "abc", "Args": [], "Env": {}, "Path": "é<&>", "N": [1, 2.5, None, True], "X": float("nan")}]
    assert fastjson.dumps_indent(doc) == (
        "[\n"
        "    {\n"
        '        "Id": "abc",\n'
        '        "Args": [],\n'
        '        "Env": {},\n'
        '        "Path": "é<&>",\n'
        '        "N": [\n'
        "            1,\n"
        "            2.5,\n"
        "            null,\n"
        "            true\n"
        "        ],\n"
        '        "X": NaN\n'
        "    }\n"
        "]"
    )


def test_dumps_indent_unserialisable_is_jsons_error() -> None:
    with pytest.raises(TypeError, match="is not JSON serializable"):
        fastjson.dumps_indent({"a": object()})
    with pytest.raises(TypeError, match="keys must be str"):
        fastjson.dumps_indent({(1, 2): 1})


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (b"\xef\xbb\xbf[1]", [1]),  # bytes with a UTF-8 BOM: json decodes them as utf-8-sig
        ('{"a": 1}'.encode("utf-16"), {"a": 1}),
        (b'{"a": [1, 2]}', {"a": [1, 2]}),
    ],
)
def test_loads_fallbacks(data: bytes, value: Any) -> None:
    assert json.loads(data) == value
    assert fastjson.loads(data) == value


@pytest.mark.parametrize("text", ["", "[1] x", "{", "[1,]", "'a'", b"\xff"])
def test_loads_errors_are_jsons(text: str | bytes) -> None:
    with pytest.raises(ValueError) as ours:
        fastjson.loads(text)
    with pytest.raises(ValueError) as theirs:
        json.loads(text)
    assert type(ours.value) is type(theirs.value)
    assert str(ours.value) == str(theirs.value)
