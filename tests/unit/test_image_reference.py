"""Image references: docker's normalisation, display forms, and hostile names (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gorae.errors import InvalidParameter
from gorae.image.reference import Reference, parse, parse_repository, parse_tagged


@pytest.mark.parametrize(
    "s,full,familiar",
    [
        ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
        ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("index.docker.io/library/busybox:x", "docker.io/library/busybox:x", "busybox:x"),
        ("me/app", "docker.io/me/app:latest", "me/app:latest"),
        ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
        ("localhost:5000/a/b:c", "localhost:5000/a/b:c", "localhost:5000/a/b:c"),
        ("gcr.io/x/y", "gcr.io/x/y:latest", "gcr.io/x/y:latest"),
        ("[::1]:5000/x", "[::1]:5000/x:latest", "[::1]:5000/x:latest"),
        ("a__b.c-d---e", "docker.io/library/a__b.c-d---e:latest", "a__b.c-d---e:latest"),
        ("Registry.Example.com/x", "Registry.Example.com/x:latest", "Registry.Example.com/x:latest"),
    ],
)
def test_normalise(s: str, full: str, familiar: str) -> None:
    r = parse_tagged(s)
    assert str(r) == full
    assert r.familiar() == familiar


def test_digest_reference() -> None:
    d = "sha256:" + "a" * 64
    r = parse("busybox@" + d)
    assert r.digest == d and r.tag is None
    assert r.familiar() == "busybox@" + d
    assert parse_tagged("busybox@" + d).tag is None


@pytest.mark.parametrize(
    "s,msg",
    [
        ("", "invalid reference format"),
        ("Busybox", "must be lowercase"),
        ("me/App", "must be lowercase"),
        ("a" * 64, "cannot specify 64-byte hexadecimal strings"),
        ("busybox:", "invalid reference format"),
        (":tag", "invalid reference format"),
        ("a/../b", "invalid reference format"),
        ("/abs", "invalid reference format"),
        ("a//b", "invalid reference format"),
        ("a:b:c", "invalid reference format"),
        ("-a", "invalid reference format"),
        ("a-", "invalid reference format"),
        ("a:" + "t" * 129, "invalid reference format"),
        ("a@sha256:abc", "invalid reference format"),
        ("x/" + "a" * 300, "must not be more than 255"),
        ("a b", "invalid reference format"),
        ("a\nb", "invalid reference format"),
    ],
)
def test_invalid(s: str, msg: str) -> None:
    with pytest.raises(InvalidParameter, match=msg):
        parse(s)


def test_repository_and_tag() -> None:
    assert parse_repository("busybox", "v1").familiar() == "busybox:v1"
    assert parse_repository("busybox", None).familiar() == "busybox:latest"
    with pytest.raises(InvalidParameter):
        parse_repository("busybox", "bad tag")
    with pytest.raises(InvalidParameter):
        parse_repository("busybox", ".x")


_COMPONENT = st.from_regex(r"[a-z0-9]+(?:[._-][a-z0-9]+)?", fullmatch=True).filter(lambda s: len(s) < 30)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_COMPONENT, min_size=1, max_size=4),
    st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True),
)
def test_roundtrip_valid(parts: list[str], tag: str) -> None:
    name = "/".join(parts)
    if len(name) == 64 and all(c in "0123456789abcdef" for c in name):
        return
    r = parse_tagged(f"{name}:{tag}")
    assert r.tag == tag
    again = parse_tagged(r.familiar())
    assert again == r
    assert parse_tagged(str(r)) == r


@settings(max_examples=1000, deadline=None)
@given(st.text(max_size=120))
def test_hostile_names(s: str) -> None:
    """Anything either parses into a clean reference or raises InvalidParameter; nothing else."""
    try:
        r = parse(s)
    except InvalidParameter:
        return
    assert isinstance(r, Reference)
    for bad in ("..", "\x00", "\n", " ", "\\"):
        assert bad not in r.path
    assert not r.path.startswith("/") and "//" not in r.path
    assert r.path == r.path.lower()
    assert len(r.name) <= 255 + len("docker.io/library/")
