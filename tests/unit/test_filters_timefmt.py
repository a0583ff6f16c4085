"""The shared filter and time helpers: moby's filters.Args semantics and Go's RFC 3339 formatting."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gorae.errors import InvalidParameter
from gorae.filters import Filters, label_matches
from gorae.timefmt import ZERO_TIME, parse_timestamp, rfc3339_seconds, rfc3339nano, rfc3339nano_or_zero


def test_both_encodings_parse_alike() -> None:
    legacy = Filters.parse('{"label":["a=b","c"],"dangling":["true"]}')
    current = Filters.parse('{"label":{"a=b":true,"c":true},"dangling":{"true":true}}')
    assert dict(legacy) == dict(current) == {"label": ["a=b", "c"], "dangling": ["true"]}
    assert Filters.parse("") == {} and Filters.parse(None) == {} and Filters.parse("null") == {}
    assert Filters.parse('{"label":[]}') == {}  # a key without values is no filter


@pytest.mark.parametrize("raw", ["{nope", "[1]", '"x"', '{"a": 1}'])
def test_bad_filters_are_invalid_parameter(raw: str) -> None:
    with pytest.raises(InvalidParameter):
        Filters.parse(raw)


def test_validate_names_the_key_as_dockerd() -> None:
    f = Filters({"name": ["x"], "bogus": ["1"]})
    with pytest.raises(InvalidParameter, match="invalid filter 'bogus'"):
        f.validate(["name", "id"])
    Filters({"name": ["x"]}).validate(["name"])


def test_matching() -> None:
    f = Filters({"id": ["abc"], "name": ["^we"], "driver": ["local"], "label": ["a", "b=2"]})
    assert f.fuzzy("id", "abcdef") and not f.fuzzy("id", "xabc")
    assert f.regex("name", "web") and not f.regex("name", "aweb")
    assert f.exact("driver", "local") and not f.exact("driver", "localx")
    assert f.exact("absent", "anything") and f.fuzzy("absent", "x") and f.regex("absent", "x")
    assert f.match_labels({"a": "", "b": "2"}) and not f.match_labels({"a": "1", "b": "3"})
    assert not f.match_labels(None) and Filters().match_labels(None)
    assert Filters({"name": ["[bad"]}).regex("name", "x[bady")  # invalid regex: substring
    assert label_matches({"k": "v"}, "k") and label_matches({"k": "v"}, "k=v") and not label_matches({}, "k")


def test_bool_or_default() -> None:
    assert Filters().bool_or_default("dangling", False) is False
    assert Filters({"dangling": ["true"]}).bool_or_default("dangling", False) is True
    assert Filters({"dangling": ["0"]}).bool_or_default("dangling", True) is False
    with pytest.raises(InvalidParameter, match="invalid filter 'dangling=maybe'"):
        Filters({"dangling": ["maybe"]}).bool_or_default("dangling", False)


def test_get_and_mapping() -> None:
    f = Filters({"a": ["1"]})
    assert f.get("a") == ["1"] and f.get("b") == [] and f.get("b", ["d"]) == ["d"]
    assert "a" in f and f.contains("a") and not f.contains("b") and list(f) == ["a"] and len(f) == 1
    assert json.loads(f.to_json()) == {"a": {"1": True}}


@given(st.dictionaries(st.text(max_size=8), st.lists(st.text(max_size=8), max_size=3), max_size=4))
def test_round_trip(doc: dict[str, list[str]]) -> None:
    f = Filters(doc)
    again = Filters.parse(f.to_json())
    assert {k: sorted(set(v)) for k, v in again.items()} == {k: sorted(set(v)) for k, v in f.items()}


@given(st.text(max_size=40))
def test_parse_never_raises_anything_else(raw: str) -> None:
    try:
        Filters.parse(raw)
    except InvalidParameter:
        pass


def test_rfc3339_as_go() -> None:
    assert rfc3339nano(0) == "1970-01-01T00:00:00Z"
    assert rfc3339nano(1_700_000_000_120_000_000) == "2023-11-14T22:13:20.12Z"
    assert rfc3339nano(1_700_000_000_000_000_001) == "2023-11-14T22:13:20.000000001Z"
    assert rfc3339nano_or_zero(0) == ZERO_TIME == "0001-01-01T00:00:00Z"
    assert rfc3339_seconds(1_700_000_000.9) == "2023-11-14T22:13:20Z"


@given(st.integers(min_value=0, max_value=4_000_000_000 * 10**9))
def test_format_then_parse_is_identity(ns: int) -> None:
    assert parse_timestamp(rfc3339nano(ns)) == ns
