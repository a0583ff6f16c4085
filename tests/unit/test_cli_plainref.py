"""`gorae run`'s quick check of an image reference (`_plain_reference`, which spares the common `run` importing
`gorae.reference` with `re` and `dataclasses`) never accepts what the full parser refuses, and takes the
common shapes."""

from __future__ import annotations

import string

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gorae.cli.commands.run import _plain_reference, _reference_error
from gorae.errors import InvalidParameter
from gorae.reference import parse

ALPHABET = string.ascii_lowercase[:6] + "09" + "AZ" + "._-/:@" + "é"
component = st.from_regex(r"[a-z0-9]{1,3}(?:(?:[._]|__|-{1,3}|___|\.\.|_\.)[a-z0-9]{1,3}){0,2}", fullmatch=True)
reference_like = st.builds(
    lambda parts, tag: "/".join(parts) + (f":{tag}" if tag is not None else ""),
    st.lists(component, min_size=1, max_size=4),
    st.none() | st.text(alphabet=string.ascii_letters + string.digits + "_.-", min_size=0, max_size=130),
)


@given(st.text(alphabet=ALPHABET, max_size=80) | reference_like)
@example("a" * 64)
@example("0123456789abcdef" * 4)
@example("x" * 190 + "/" + "y" * 9)
@example("a___b")
@example("a_.b")
@example("localhost/a")
@example("reg.io/a")
@example("a:-tag")
@example("a:" + "t" * 129)
def test_what_the_quick_check_accepts_the_parser_accepts(image: str) -> None:
    if _plain_reference(image):
        parse(image)  # raises InvalidParameter if the quick check was wrong


@pytest.mark.parametrize(
    "image",
    [
        "busybox",
        "busybox:latest",
        "library/busybox:1.36.1",
        "my-org/my_app__x:v1.0-rc_2",
        "a_b-c/d.e--f:TAG",
        "sha256:" + "ab" * 32,
    ],
)
def test_common_shapes_pass_the_quick_check(image: str) -> None:
    assert _plain_reference(image) is True
    assert _reference_error(image) == ""


@pytest.mark.parametrize(
    "image",
    ["reg.io:5000/a", "localhost/a", "a@sha256:" + "0" * 64, "Busybox", "a___b", "a:-x", "", "a/", "-a"],
)
def test_other_shapes_go_to_the_parser(image: str) -> None:
    assert _plain_reference(image) is False


@pytest.mark.parametrize("image", ["Busybox", "a___b", "a:-x", "a/"])
def test_refused_shapes_keep_the_parsers_error(image: str) -> None:
    with pytest.raises(InvalidParameter) as e:
        parse(image)
    assert _reference_error(image) == (str(e.value) if str(e.value).startswith("invalid reference format") else "")
    assert _reference_error(image).startswith("invalid reference format")
