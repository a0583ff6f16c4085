"""Property tests: hostile or random templates and data only ever raise TemplateError, and finish."""

from __future__ import annotations

import os
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gorae.gotemplate import Limits, Template, TemplateError

PIECES = [
    "{{",
    "}}",
    "{{- ",
    " -}}",
    " ",
    ".",
    ".A",
    ".B.C",
    "$",
    "$x",
    ":=",
    "=",
    "|",
    "(",
    ")",
    '"s"',
    "`r`",
    "'c'",
    "1",
    "-2",
    "1.5e3",
    "0x1F",
    "1i",
    "if",
    "else",
    "end",
    "range",
    "with",
    "define",
    "template",
    "block",
    "break",
    "continue",
    "nil",
    "true",
    ",",
    "printf",
    '"%d %s %v %5.2f %x %q %*d %[2]v"',
    "len",
    "index",
    "slice",
    "eq",
    "lt",
    "and",
    "or",
    "not",
    "json",
    "split",
    "join",
    "pad",
    "truncate",
    "upper",
    "title",
    "call",
    "html",
    "js",
    "urlquery",
    "print",
    "println",
    "/*",
    "*/",
    "\n",
    "x",
    "é",
    "\\",
    "%",
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["A", "B", "C", "k"]), children, max_size=4)
    ),
    max_leaves=20,
)

templates = st.one_of(
    st.text(max_size=60),
    st.lists(st.sampled_from(PIECES), max_size=30).map("".join),
    st.lists(st.sampled_from(PIECES), max_size=12).map(lambda p: "{{" + " ".join(p) + "}}"),
)


# docs/mutation.md: under mutmut each mutant must run in seconds, so GORAE_MUTATION=1 shrinks every
# property to a few derandomized (repeatable) examples; the normal suite is unchanged.
_MUTATION = os.environ.get("GORAE_MUTATION") == "1"


def _examples(n: int) -> int:
    return 8 if _MUTATION else n


def _run(text: str, data: Any, missingkey: str) -> None:
    start = time.monotonic()
    try:
        tmpl = Template(
            text, missingkey=missingkey, limits=lambda: Limits(max_steps=20_000, max_output=1 << 20)
        )
        tmpl.execute(data)
    except TemplateError as exc:
        assert str(exc).startswith("template: ")
    assert time.monotonic() - start < 5


@settings(
    max_examples=_examples(600),
    derandomize=_MUTATION,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(templates, json_values, st.sampled_from(["default", "error", "inspect", "zero"]))
def test_random_templates_raise_only_template_errors(text: str, data: Any, missingkey: str) -> None:
    _run(text, data, missingkey)


@settings(max_examples=_examples(200), derandomize=_MUTATION, deadline=None)
@given(
    st.integers(1, 400), st.sampled_from(["(", "{{if 1}}", "{{range 1}}", "{{with 1}}", '{{block "b" 1}}'])
)
def test_deep_nesting_is_bounded(depth: int, opener: str) -> None:
    if opener == "(":
        text = "{{" + "(" * depth + "1" + ")" * depth + "}}"
    else:
        text = opener * depth + "x" + "{{end}}" * depth
    _run(text, None, "default")


@settings(max_examples=_examples(100), derandomize=_MUTATION, deadline=None)
@given(st.text(alphabet="{}%-.$()|\"'` \n", max_size=80))
def test_delimiter_soup(text: str) -> None:
    _run(text, {"A": [1, 2]}, "default")
