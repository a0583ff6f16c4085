"""The image list's boolean filter (dockerd's GetBoolOrDefault) and nanosecond `created` (since/before/until at
full precision): exact values and hostile input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gorae.errors import InvalidParameter
from gorae.filters import Filters
from gorae.image.service import _bool_filter, created_ns


def test_bool_filter_spellings() -> None:
    assert _bool_filter(Filters({}), "dangling") is None
    for v in ("1", "t", "T", "TRUE", "true", "True"):
        assert _bool_filter(Filters({"dangling": [v]}), "dangling") is True
    for v in ("0", "f", "F", "FALSE", "false", "False"):
        assert _bool_filter(Filters({"dangling": [v]}), "dangling") is False
    with pytest.raises(InvalidParameter, match=r"^invalid filter 'dangling=\[maybe\]'$"):
        _bool_filter(Filters({"dangling": ["maybe"]}), "dangling")
    with pytest.raises(InvalidParameter):
        _bool_filter(Filters({"dangling": ["true", "false"]}), "dangling")


@given(st.lists(st.text(max_size=6), min_size=1, max_size=3))
def test_bool_filter_hostile(values: list[str]) -> None:
    try:
        got = _bool_filter(Filters({"dangling": values}), "dangling")
    except InvalidParameter as e:
        assert e.message.startswith("invalid filter 'dangling=[")
        return
    assert isinstance(got, bool)


def test_created_ns_keeps_the_fraction() -> None:
    a = created_ns("2026-12-06T08:15:48.100000001Z")
    b = created_ns("2026-12-06T08:15:48.120000000Z")
    assert b - a == 19_999_999
    assert created_ns(None) == 0 and created_ns("garbage") == 0


@given(st.text(max_size=40))
def test_created_ns_hostile(s: str) -> None:
    assert isinstance(created_ns(s), int)
