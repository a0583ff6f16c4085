"""The build route's input handling without a daemon: the `/build` query and `X-Registry-Config` turned
into `BuildOptions` (docker's names and defaults; typed errors for bad values), and hostile context tars
through the index (only typed errors)."""

from __future__ import annotations

import base64
import io
import json
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gorae.api.build import options_of
from gorae.api.http import Request
from gorae.builder.ctxindex import ContextIndex
from gorae.errors import GoraeError, InvalidParameter


def _req(query: dict[str, list[str]], headers: dict[str, str] | None = None) -> Request:
    return Request(method="POST", path="/build", query=query, headers=headers or {})


def test_query_to_options_as_docker_names_them() -> None:
    auth = base64.urlsafe_b64encode(json.dumps({"reg:5000": {"username": "u", "password": "p"}}).encode())
    o = options_of(
        _req(
            {
                "t": ["a:1", "b"],
                "dockerfile": ["sub/Df"],
                "buildargs": ['{"A": "1", "B": null}'],
                "labels": ['{"l": "v"}'],
                "target": ["prod"],
                "nocache": ["1"],
                "rm": ["0"],
                "forcerm": ["true"],
                "q": ["1"],
                "networkmode": ["none"],
                "extrahosts": ["h:1.2.3.4,g:5.6.7.8"],
                "shmsize": ["1048576"],
                "cachefrom": ['["x:1"]'],
            },
            {"x-registry-config": auth.decode()},
        )
    )
    assert (o.tags, o.dockerfile, o.target, o.network_mode) == (["a:1", "b"], "sub/Df", "prod", "none")
    assert o.build_args == {"A": "1", "B": None} and o.labels == {"l": "v"}
    assert (o.no_cache, o.rm, o.force_rm, o.quiet, o.pull) == (True, False, True, True, False)
    assert o.extra_hosts == ["h:1.2.3.4", "g:5.6.7.8"] and o.shm_size == 1048576 and o.cache_from == ["x:1"]
    assert o.registry_auth == {"reg:5000": {"username": "u", "password": "p"}}
    d = options_of(_req({}))
    assert (d.dockerfile, d.rm, d.force_rm, d.tags) == ("Dockerfile", True, False, [])


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"buildargs": ["{"]}, "invalid buildargs value: {"),
        ({"labels": ["[1]"]}, "invalid labels value: [1]"),
        ({"isolation": ["hyperv"]}, 'Unsupported isolation: "hyperv"'),
    ],
)
def test_bad_query_values_are_400s(query: dict[str, list[str]], message: str) -> None:
    with pytest.raises(InvalidParameter) as e:
        options_of(_req(query))
    assert e.value.message == message


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            ["t", "buildargs", "labels", "cachefrom", "shmsize", "extrahosts", "rm", "isolation"]
        ),
        st.lists(st.text(max_size=30), min_size=1, max_size=2),
    ),
    st.text(max_size=60),
)
def test_hostile_queries_give_typed_errors(query: dict[str, list[str]], registry_config: str) -> None:
    try:
        options_of(_req(query, {"x-registry-config": registry_config}))
    except GoraeError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000))
def test_hostile_context_bytes_give_typed_errors(data: bytes) -> None:
    try:
        ContextIndex.read(io.BytesIO(data), {"Dockerfile"})
    except InvalidParameter:
        pass


def test_index_resolves_links_inside_the_context() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, target in (("abs", "/etc/passwd"), ("up", "../../../etc")):
            ti = tarfile.TarInfo(name)
            ti.type, ti.linkname = tarfile.SYMTYPE, target
            tf.addfile(ti)
        ti = tarfile.TarInfo("etc/passwd")
        ti.size = 3
        tf.addfile(ti, io.BytesIO(b"own"))
    buf.seek(0)
    idx = ContextIndex.read(buf, set())
    assert idx.resolve("abs") == "etc/passwd"
    assert idx.resolve("up/passwd") == "etc/passwd"
    assert idx.checksum("abs") == idx.checksum("etc/passwd")
