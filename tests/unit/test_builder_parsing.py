"""The builder's pure parts: Dockerfile parsing and checks, word substitution, .dockerignore matching —
exact cases from docker's behaviour, and hostile input through hypothesis (only typed errors, never a crash)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gorae import dockerignore
from gorae.builder.parser import parse
from gorae.builder.words import process_word, process_words
from gorae.errors import InvalidParameter


def test_parse_stages_meta_args_flags_heredoc_and_onbuild() -> None:
    df = parse(
        "# escape=`\nARG V=1\nFROM busybox AS Build\nRUN echo a `\n  b\nCOPY --from=build --chown=1:2 a b /c/\n"
        "RUN <<EOF\necho here\nEOF\nONBUILD RUN x\nFROM scratch\n"
    )
    assert df.escape == "`"
    assert [a.original for a in df.meta_args] == ["ARG V=1"]
    assert [(s.base, s.name) for s in df.stages] == [("busybox", "build"), ("scratch", "")]
    run, copy, here, onb = df.stages[0].commands
    assert (run.line, run.args) == (4, ("echo a   b",))
    assert copy.flags == {"from": "build", "chown": "1:2"} and copy.args == ("a", "b", "/c/")
    assert here.heredocs == (("EOF", "echo here\n"),)
    assert onb.sub is not None and onb.sub.cmd == "RUN"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FROM busybox\nBOGUS x\n", "dockerfile parse error line 2: unknown instruction: BOGUS"),
        ("RUN x\n", "dockerfile parse error line 1: no build stage in current context"),
        ("FROM a b\n", "dockerfile parse error line 1: FROM requires either one or three arguments"),
        ("FROM a\nCOPY x\n", "dockerfile parse error line 2: COPY requires at least two arguments, but only one "
         "was provided. Destination could not be determined."),
        ("FROM a\nCOPY --bogus=1 x y\n", "dockerfile parse error line 2: Unknown flag: bogus"),
        ("FROM a\nONBUILD ONBUILD RUN x\n", "dockerfile parse error line 2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
        ("FROM a\nSHELL sh -c\n", "dockerfile parse error line 2: SHELL requires the arguments to be in JSON form"),
        ("FROM a AS x\nFROM b AS X\n", "dockerfile parse error line 2: duplicate name x"),
        ("", "the Dockerfile (Dockerfile) cannot be empty"),
        ("FROM a\nRUN --mount=type=cache,target=/c true\n", "the --mount option requires BuildKit. Refer to "
         "https://docs.docker.com/go/buildkit/ to learn how to build images with BuildKit enabled"),
    ],
)  # fmt: skip
def test_parse_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(InvalidParameter) as e:
        parse(text)
    assert e.value.message == message


def test_substitution_forms() -> None:
    env = {"A": "x", "E": ""}
    assert process_word("${A:-d}-${B:-d}-${E:-d}-${E-d}", env) == "x-d-d-"
    assert process_word("${A:+set}|${B:+set}|${E:+set}|${E+set}", env) == "set|||set"
    assert process_word("'$A' \"$A\" \\$A $A$", env) == "$A x $A x$"
    assert process_words('a "b $A" c\\ d', env) == ["a", "b x", "c d"]
    with pytest.raises(InvalidParameter):
        process_word("${A", env)


def test_dockerignore_rules() -> None:
    pats = dockerignore.parse("# c\n*.md\n!README.md\n**/tmp\n/build\nsub/*.o\n[ab].txt\n")
    cases = {
        "x.md": True, "README.md": False, "d/x.md": False, "tmp": True, "a/b/tmp": True, "a/b/tmp/f": True,
        "build/x": True, "sub/y.o": True, "sub/d/y.o": False, "a.txt": True, "c.txt": False, "keep": False,
    }  # fmt: skip
    assert {k: dockerignore.excluded(pats, k) for k in cases} == cases


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_hostile_dockerfiles_give_typed_errors(text: str) -> None:
    try:
        parse(text)
    except InvalidParameter:
        pass


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=80),
    st.dictionaries(st.from_regex(r"[A-Za-z_]\w{0,5}", fullmatch=True), st.text(max_size=8)),
)
def test_hostile_words_give_typed_errors(word: str, env: dict[str, str]) -> None:
    try:
        assert isinstance(process_word(word, env), str)
        assert all(isinstance(w, str) for w in process_words(word, env))
    except InvalidParameter:
        pass


@given(st.from_regex(r"[a-z]{1,6}(/[a-z]{1,6}){0,3}", fullmatch=True))
def test_plain_names_match_themselves_and_their_subtrees(path: str) -> None:
    pats = dockerignore.parse(path + "\n")
    assert dockerignore.excluded(pats, path)
    assert dockerignore.excluded(pats, path + "/below")
    assert not dockerignore.excluded(dockerignore.parse(path + "\n!" + path + "\n"), path)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200), st.text(max_size=40))
def test_hostile_dockerignore_never_raises(text: str, path: str) -> None:
    assert isinstance(dockerignore.excluded(dockerignore.parse(text), path or "."), bool)
