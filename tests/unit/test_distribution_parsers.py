"""The registry client's pure parts: `X-Registry-Auth` decoding, `WWW-Authenticate` parsing, token
responses, manifests and platform selection, insecure-registry rules, progress wording and the push's
gzip stream — known values, then hostile input through hypothesis (a typed value or InvalidParameter,
never another exception)."""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gorae.distribution import manifest as mf
from gorae.distribution import progress
from gorae.distribution.auth import (
    AuthConfig,
    Challenge,
    decode_registry_auth,
    parse_challenges,
    parse_token_response,
)
from gorae.distribution.hosts import RegistryHosts, login_host
from gorae.distribution.push import GzipStream, choose_level
from gorae.errors import InvalidParameter, Unauthorized

# ---- X-Registry-Auth ------------------------------------------------------------------------------


def _enc(doc: object, pad: bool = True, alphabet: str = "url") -> str:
    raw = json.dumps(doc).encode()
    s = (base64.urlsafe_b64encode if alphabet == "url" else base64.b64encode)(raw).decode()
    return s if pad else s.rstrip("=")


@pytest.mark.parametrize("pad", [True, False])
@pytest.mark.parametrize("alphabet", ["url", "std"])
def test_registry_auth_padding_and_alphabets(pad: bool, alphabet: str) -> None:
    doc = {"username": "u?>", "password": "p~~~>>>", "serveraddress": "r:5000"}
    got = decode_registry_auth(_enc(doc, pad, alphabet))
    assert got == AuthConfig(username="u?>", password="p~~~>>>", serveraddress="r:5000")


def test_registry_auth_fields_case_insensitive_and_auth_field() -> None:
    got = decode_registry_auth(_enc({"Username": "a", "PASSWORD": "b", "IdentityToken": "t", "x": 1}))
    assert got == AuthConfig(username="a", password="b", identitytoken="t")
    both = decode_registry_auth(_enc({"auth": base64.b64encode(b"me:pw:x").decode()}))
    assert both.credentials() == ("me", "pw:x")
    assert decode_registry_auth("").empty and decode_registry_auth(None).empty
    assert decode_registry_auth(_enc({})).credentials() is None


@pytest.mark.parametrize(
    "header,msg",
    [
        ("!!!!", "invalid X-Registry-Auth header: "),
        (_enc([1, 2]), "invalid X-Registry-Auth header: json: cannot unmarshal"),
        (_enc({"username": 5}), "invalid X-Registry-Auth header: json: cannot unmarshal int"),
    ],
)
def test_registry_auth_errors(header: str, msg: str) -> None:
    with pytest.raises(InvalidParameter) as e:
        decode_registry_auth(header)
    assert e.value.message.startswith(msg)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=80), st.binary(max_size=80).map(lambda b: base64.urlsafe_b64encode(b).decode())))
def test_registry_auth_hostile(header: str) -> None:
    try:
        got = decode_registry_auth(header)
    except InvalidParameter as e:
        assert e.message.startswith("invalid X-Registry-Auth header")
        return
    assert isinstance(got, AuthConfig)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["username", "password", "serveraddress", "identitytoken"]), st.text(max_size=30)))
def test_registry_auth_round_trip(doc: dict[str, str]) -> None:
    assert decode_registry_auth(_enc(doc, pad=False)) == AuthConfig(**doc)


# ---- WWW-Authenticate ----------------------------------------------------------------------------


def test_challenges_known() -> None:
    h = 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"'
    assert parse_challenges(h) == [
        Challenge(
            "bearer",
            {
                "realm": "https://auth.docker.io/token",
                "service": "registry.docker.io",
                "scope": "repository:library/busybox:pull",
            },
        )
    ]
    assert parse_challenges('Basic realm="Registry Realm"') == [Challenge("basic", {"realm": "Registry Realm"})]
    two = parse_challenges('Basic realm="a, b", Bearer realm="x\\"y",service=s')
    assert two == [Challenge("basic", {"realm": "a, b"}), Challenge("bearer", {"realm": 'x"y', "service": "s"})]
    assert parse_challenges("") == []
    with pytest.raises(InvalidParameter):
        parse_challenges('Bearer realm="unterminated')


_pvalue = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["Bearer", "Basic", "Digest"]),
                          st.dictionaries(st.from_regex(r"[a-z]{1,8}", fullmatch=True), _pvalue, max_size=4)),
                min_size=1, max_size=3))
def test_challenges_round_trip(chs: list[tuple[str, dict[str, str]]]) -> None:
    def q(v: str) -> str:
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'

    header = ", ".join(f"{s} " + ",".join(f"{k}={q(v)}" for k, v in p.items()) for s, p in chs)
    assert parse_challenges(header) == [Challenge(s.lower(), p) for s, p in chs]


@settings(max_examples=800, deadline=None)
@given(st.text(max_size=120))
def test_challenges_hostile(header: str) -> None:
    try:
        out = parse_challenges(header)
    except InvalidParameter:
        return
    assert all(isinstance(c, Challenge) and c.scheme == c.scheme.lower() for c in out)


def test_token_response() -> None:
    assert parse_token_response(b'{"token":"t","expires_in":3600}').value == "t"
    assert parse_token_response(b'{"access_token":"a"}').value == "a"
    for bad in (b"[]", b"{}", b"nope", b'{"token":5}'):
        with pytest.raises(Unauthorized):
            parse_token_response(bad)


# ---- manifests -----------------------------------------------------------------------------------

D = "sha256:" + "a" * 64


def test_manifest_and_index_parse() -> None:
    m = mf.parse(json.dumps({"schemaVersion": 2, "mediaType": mf.DOCKER_MANIFEST,
                             "config": {"mediaType": mf.DOCKER_CONFIG, "size": 3, "digest": D},
                             "layers": [{"mediaType": mf.DOCKER_LAYER_GZIP, "size": 9, "digest": D}]}).encode(), "")
    assert isinstance(m, mf.Manifest) and m.layers[0].size == 9
    oci = mf.parse(json.dumps({"schemaVersion": 2, "config": {"size": 3, "digest": D}, "layers": []}).encode(),
                   mf.OCI_MANIFEST)
    assert isinstance(oci, mf.Manifest) and oci.media_type == mf.OCI_MANIFEST
    with pytest.raises(InvalidParameter) as e:
        mf.parse(b'{"schemaVersion":1,"fsLayers":[]}', "")
    assert "schema 1 support has been removed" in e.value.message
    with pytest.raises(InvalidParameter):
        mf.parse(json.dumps({"layers": [{"size": -1, "digest": D}], "config": {"size": 1, "digest": D}}).encode(), "")
    with pytest.raises(InvalidParameter):
        mf.parse(json.dumps({"layers": [], "config": {"size": 1, "digest": "sha256:../../etc"}}).encode(), "")


def test_platform_selection() -> None:
    idx = mf.Index(mf.DOCKER_LIST, [
        mf.Descriptor(mf.DOCKER_MANIFEST, "sha256:" + "1" * 64, 1, {"os": "linux", "architecture": "arm", "variant": "v6"}),
        mf.Descriptor(mf.DOCKER_MANIFEST, "sha256:" + "2" * 64, 1, {"os": "linux", "architecture": "arm", "variant": "v7"}),
        mf.Descriptor(mf.DOCKER_MANIFEST, "sha256:" + "3" * 64, 1, {"os": "linux", "architecture": "arm64", "variant": "v8"}),
        mf.Descriptor(mf.DOCKER_MANIFEST, "sha256:" + "4" * 64, 1, {"os": "linux", "architecture": "amd64"}),
    ])
    assert mf.select(idx, mf.Platform("linux", "amd64")).digest.endswith("4" * 64)
    assert mf.select(idx, mf.parse_platform("linux/arm/v7")).digest.endswith("2" * 64)  # type: ignore[arg-type]
    assert mf.select(idx, mf.parse_platform("linux/arm64")).digest.endswith("3" * 64)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameter) as e:
        mf.select(idx, mf.Platform("linux", "s390x"))
    assert e.value.message == "no matching manifest for linux/s390x in the manifest list entries"
    assert mf.parse_platform("linux/x86_64") == mf.Platform("linux", "amd64")
    assert mf.parse_platform("") is None
    with pytest.raises(InvalidParameter):
        mf.parse_platform("linux//x")


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.binary(max_size=200), st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10)),
    lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(
        st.sampled_from(["mediaType", "config", "layers", "manifests", "digest", "size", "platform", "schemaVersion"]),
        c, max_size=4)),
    max_leaves=12).map(lambda v: json.dumps(v).encode())))
def test_manifest_hostile(body: bytes) -> None:
    try:
        out = mf.parse(body, "")
    except InvalidParameter:
        return
    assert isinstance(out, (mf.Manifest, mf.Index))


def test_push_manifest_bytes_as_dockerd() -> None:
    body = mf.docker_manifest(mf.Descriptor(mf.DOCKER_CONFIG, D, 7), [mf.Descriptor(mf.DOCKER_LAYER_GZIP, D, 9)])
    assert body.decode() == (
        '{\n   "schemaVersion": 2,\n   "mediaType": "application/vnd.docker.distribution.manifest.v2+json",\n'
        '   "config": {\n      "mediaType": "application/vnd.docker.container.image.v1+json",\n      "size": 7,\n'
        f'      "digest": "{D}"\n   }},\n   "layers": [\n      {{\n'
        '         "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",\n         "size": 9,\n'
        f'         "digest": "{D}"\n      }}\n   ]\n}}'
    )


# ---- hosts ---------------------------------------------------------------------------------------


def test_insecure_rules_and_endpoints() -> None:
    h = RegistryHosts(insecure=["10.1.0.0/16", "myreg:5000", "plain.example"], mirrors=["https://m.example/"])
    assert h.is_insecure("127.0.0.1:5000") and h.is_insecure("localhost:5000") and h.is_insecure("[::1]:5000")
    assert h.is_insecure("10.1.2.3:443") and not h.is_insecure("10.2.0.1:5000")
    assert h.is_insecure("myreg:5000") and h.is_insecure("plain.example:8080")
    assert [e.url for e in h.endpoints("10.1.2.3:5000")] == ["https://10.1.2.3:5000", "http://10.1.2.3:5000"]
    assert [e.url for e in h.endpoints("10.9.9.9:5000")] == ["https://10.9.9.9:5000"]
    assert [e.url for e in h.endpoints("docker.io")] == ["https://m.example", "https://registry-1.docker.io"]
    assert [e.url for e in h.endpoints("docker.io", push=True)] == ["https://registry-1.docker.io"]
    with pytest.raises(InvalidParameter) as e:
        RegistryHosts(insecure=["http://x"])
    assert e.value.message == "insecure registry http://x should not contain '://'"
    with pytest.raises(InvalidParameter):
        RegistryHosts(insecure=["10.0.0.0/99"])
    with pytest.raises(InvalidParameter):
        RegistryHosts(mirrors=["ftp://x"])
    assert login_host("") == "docker.io" and login_host("https://index.docker.io/v1/") == "docker.io"
    assert login_host("http://127.0.0.1:5000/") == "127.0.0.1:5000"


# ---- progress and compression --------------------------------------------------------------------


def test_progress_wording() -> None:
    assert progress.update("abc", "Pulling fs layer") == {"status": "Pulling fs layer", "progressDetail": {}, "id": "abc"}
    assert progress.update("abc", "Downloading", 19968, 1984162) == {
        "status": "Downloading",
        "progressDetail": {"current": 19968, "total": 1984162},
        "progress": "[>                                                  ]  19.97kB/1.984MB",
        "id": "abc",
    }
    assert progress.bar(2406400, 1984162) == "[" + "=" * 50 + ">]  2.406MB"  # as dockerd sent it
    assert progress.human_size(999) == "999B" and progress.human_size(1_000_000) == "1MB"
    assert progress.status("Digest: x") == {"status": "Digest: x"}


def test_gzip_stream_levels_and_validity() -> None:
    text = b"hello world\n" * 200_000
    noise = os.urandom(3 << 20)
    assert choose_level(text[: 1 << 20]) == 1 and choose_level(noise[: 1 << 20]) == 0
    for data in (text, noise, b""):
        gz = GzipStream(io.BytesIO(data), None, threading.Event())
        out = b"".join(gz)
        assert gzip.decompress(out) == data
        assert gz.size == len(out)
        assert gz.digest == "sha256:" + __import__("hashlib").sha256(out).hexdigest()
    assert len(b"".join(GzipStream(io.BytesIO(text), None, threading.Event()))) < len(text) // 10


def test_unreachable_in_go_words() -> None:
    from gorae.distribution.hosts import Endpoint
    from gorae.distribution.transport import Clients, Session, Unreachable

    clients = Clients(RegistryHosts())
    try:
        for url, want in (
            ("https://no-such-host.invalid:5000", "dial tcp: lookup no-such-host.invalid: no such host"),
            ("http://127.0.0.1:1", "dial tcp 127.0.0.1:1: connect: connection refused"),
        ):
            s = Session(clients, Endpoint(url, url.split("//")[1]), AuthConfig(), [])
            with pytest.raises(Unreachable) as e:
                s.ping()
            assert e.value.message == f'Get "{url}/v2/": {want}'
    finally:
        clients.close()
