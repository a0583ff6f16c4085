"""References as docker's distribution/reference parses them: its checks in its order and its error texts,
and hostile strings through hypothesis (a typed value or InvalidParameter, and a stable normal form)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gorae.errors import InvalidParameter
from gorae.image.reference import parse, parse_tagged

D = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    "s,msg",
    [
        ("Busybox", "invalid reference format: repository name (library/Busybox) must be lowercase"),
        ("me/App:1", "invalid reference format: repository name (me/App) must be lowercase"),
        ("localhost:5000/Foo", "invalid reference format: repository name (Foo) must be lowercase"),
        ("Busybox@" + D, "invalid reference format: repository name (library/Busybox@sha256) must be lowercase"),
        ("busybox@sha256:abc", "invalid reference format"),
        ("busybox@sha256:" + "a" * 40, "invalid checksum digest length"),
        ("busybox@sha256:" + "A" * 64, "invalid checksum digest format"),
        ("busybox@md5:" + "a" * 32, "unsupported digest algorithm"),
        ("busybox:-x", "invalid reference format"),
        ("busybox:" + "t" * 129, "invalid reference format"),
        ("a/" + "b" * 260, "repository name must not be more than 255 characters"),
        ("", "invalid reference format"),
        ("x//y", "invalid reference format"),
        ("host:port/x", "invalid reference format"),
        ("a" * 64, "invalid repository name (" + "a" * 64 + "), cannot specify 64-byte hexadecimal strings"),
    ],
)
def test_docker_error_texts(s: str, msg: str) -> None:
    with pytest.raises(InvalidParameter) as e:
        parse(s)
    assert e.value.message == msg


@pytest.mark.parametrize(
    "s,domain,path,tag,digest",
    [
        ("busybox:1.36@" + D, "docker.io", "library/busybox", "1.36", D),
        ("localhost:5000/a/b@" + D, "localhost:5000", "a/b", None, D),
        ("127.0.0.1:5000/x:TAG_1", "127.0.0.1:5000", "x", "TAG_1", None),
        ("localhost:5000", "docker.io", "library/localhost", "5000", None),
        ("Foo/bar", "Foo", "bar", None, None),
        ("busybox@sha512:" + "b" * 128, "docker.io", "library/busybox", None, "sha512:" + "b" * 128),
        ("index.docker.io/x/y", "docker.io", "x/y", None, None),
    ],
)
def test_parts(s: str, domain: str, path: str, tag: str | None, digest: str | None) -> None:
    r = parse(s)
    assert (r.domain, r.path, r.tag, r.digest) == (domain, path, tag, digest)


_chars = st.sampled_from(list("abcXYZ019:/@._-[]") + ["sha256:", D[7:], "localhost", "..", "\x00", "é"])


@settings(max_examples=800, deadline=None)
@given(st.lists(_chars, max_size=30).map("".join))
def test_hostile_strings_parse_or_refuse(s: str) -> None:
    try:
        r = parse(s)
    except InvalidParameter as e:
        assert e.message
        return
    # a parsed reference prints as a reference that parses to itself
    assert parse(str(r)) == r
    assert parse(r.familiar()) == r
    assert r.path == r.path.lower()
    assert len(r.name) <= 255 + len("docker.io/library/")


@settings(max_examples=300, deadline=None)
@given(
    st.from_regex(r"[a-z0-9]{1,8}(/[a-z0-9]{1,8}){0,2}", fullmatch=True),
    st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)),
)
def test_valid_names_normalise(path: str, tag: str | None) -> None:
    s = path + (":" + tag if tag else "")
    r = parse_tagged(s)
    assert r.tag == (tag or "latest")
    assert r.domain == "docker.io" or "." in r.domain or ":" in r.domain or r.domain == "localhost"
    want = path if "/" in path else "library/" + path
    if r.domain == "docker.io":
        assert r.path == want
