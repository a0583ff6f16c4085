"""Hostile input to `gorae registry serve`, over real HTTP: bad digests, overlapping and out-of-order PATCH
ranges, truncated uploads, a 2 GiB declared body that never comes, manifests naming missing blobs, names with
`..`/uppercase/overlong, random paths and methods. Every answer is the spec's error (never a 500), and what is
stored stays consistent: every blob's bytes match its digest, nothing half-written survives."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from registry_helpers import Registry, gorae_registry

SETTINGS = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def reg() -> Iterator[Registry]:
    with gorae_registry("--max-blob-size", "64m") as r:
        yield r
        assert "internal error" not in Path(r.root).parent.joinpath("stderr.log").read_text()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def codes(r: requests.Response) -> list[str]:
    return [e["code"] for e in r.json()["errors"]]


def assert_store_consistent(reg: Registry) -> None:
    """Every stored blob's bytes hash to its name; no temp file; every upload has its data and start time."""
    root = Path(reg.root)
    assert list((root / "#tmp").iterdir()) == []
    blobs = root / "docker/registry/v2/blobs/sha256"
    if blobs.exists():
        for data in blobs.glob("*/*/data"):
            assert hashlib.sha256(data.read_bytes()).hexdigest() == data.parent.name, data
    for uploads in root.glob("docker/registry/v2/repositories/**/_uploads"):
        for upload in uploads.iterdir():
            assert sorted(p.name for p in upload.iterdir()) == ["data", "startedat"], upload


def start(http: requests.Session, reg: Registry, repo: str = "hostile/app") -> str:
    r = http.post(f"{reg.url}/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202
    return urljoin(reg.url, r.headers["Location"])


# -- digests ---------------------------------------------------------------------------------------

bad_digests = st.one_of(
    st.text(min_size=1, max_size=80).filter(lambda t: "/" not in t and "?" not in t and "#" not in t),
    st.builds(lambda h: f"sha256:{h}", st.text(alphabet="0123456789abcdefABCDEFxyz", max_size=70)),
    st.sampled_from(
        ["sha256:", "sha256", ":abc", "md5:" + "0" * 32, "sha512:" + "a" * 64, "SHA256:" + "a" * 64]
    ),
)


@SETTINGS
@given(digest=bad_digests)
def test_bad_digests_are_refused_everywhere(reg: Registry, http: requests.Session, digest: str) -> None:
    from urllib.parse import quote

    d = quote(digest, safe=":")
    for method, url in [
        ("GET", f"/v2/hostile/app/blobs/{d}"),
        ("HEAD", f"/v2/hostile/app/blobs/{d}"),
        ("DELETE", f"/v2/hostile/app/blobs/{d}"),
        ("GET", f"/v2/hostile/app/referrers/{d}"),
        ("POST", f"/v2/hostile/app/blobs/uploads/?digest={quote(digest, safe='')}"),
        ("POST", f"/v2/hostile/app/blobs/uploads/?mount={quote(digest, safe='')}&from=hostile/other"),
    ]:
        r = http.request(method, reg.url + url, data=b"x" if method == "POST" else None)
        assert 400 <= r.status_code < 500, (method, url, r.status_code)
        if method != "HEAD" and r.status_code != 404:
            assert codes(r)[0] in ("DIGEST_INVALID", "BLOB_UNKNOWN", "NAME_INVALID", "NAME_UNKNOWN"), r.text
    assert_store_consistent(reg)


def test_digest_mismatch_stores_nothing(reg: Registry, http: requests.Session) -> None:
    data = os.urandom(4096)
    wrong = sha(b"something else")
    r = http.put(start(http, reg), params={"digest": wrong}, data=data)
    assert r.status_code == 400 and codes(r) == ["DIGEST_INVALID"]
    r = http.post(f"{reg.url}/v2/hostile/app/blobs/uploads/", params={"digest": wrong}, data=data)
    assert r.status_code == 400 and codes(r) == ["DIGEST_INVALID"]
    for d in (wrong, sha(data)):
        assert http.head(f"{reg.url}/v2/hostile/app/blobs/{d}").status_code == 404
        assert not (Path(reg.root) / f"docker/registry/v2/blobs/sha256/{d[7:9]}/{d[7:]}").exists()
    assert_store_consistent(reg)


# -- chunk order -----------------------------------------------------------------------------------


@SETTINGS
@given(
    data=st.binary(min_size=1, max_size=3000),
    steps=st.lists(st.tuples(st.integers(-50, 3100), st.integers(0, 1200)), min_size=1, max_size=12),
)
def test_patch_ranges_only_continue_the_upload(
    reg: Registry, http: requests.Session, data: bytes, steps: list[tuple[int, int]]
) -> None:
    """A chunk is taken only if it starts where the upload ends; overlapping, gapped or backwards ranges get
    416 and change nothing; the blob is exactly the accepted chunks."""
    loc = start(http, reg)
    model = b""
    for begin, length in steps:
        begin = max(begin, 0)
        chunk = data[begin : begin + length] if begin < len(data) else os.urandom(length)
        if not chunk:
            continue
        end = begin + len(chunk) - 1
        r = http.patch(loc, data=chunk, headers={"Content-Range": f"{begin}-{end}"})
        if begin == len(model):
            assert r.status_code == 202, r.text
            model += chunk
            loc = urljoin(reg.url, r.headers["Location"])
        else:
            assert r.status_code == 416, (begin, end, len(model))
            assert r.headers["Range"] == f"0-{max(len(model) - 1, 0)}"
        status = http.get(loc)
        assert status.status_code == 204
        assert status.headers["Range"] == f"0-{max(len(model) - 1, 0)}"
    r = http.put(loc, params={"digest": sha(model)})
    assert r.status_code == 201, r.text
    assert http.get(f"{reg.url}/v2/hostile/app/blobs/{sha(model)}").content == model
    assert_store_consistent(reg)


def test_content_range_that_does_not_match_the_body_is_refused(reg: Registry, http: requests.Session) -> None:
    loc = start(http, reg)
    r = http.patch(loc, data=b"12345", headers={"Content-Range": "0-9"})
    assert r.status_code == 416
    r = http.patch(loc, data=b"12345", headers={"Content-Range": "garbage"})
    assert r.status_code == 416 and codes(r) == ["RANGE_INVALID"]
    r = http.patch(loc, data=b"12345", headers={"Content-Range": "4-0"})
    assert r.status_code == 416
    assert http.get(loc).headers["Range"] == "0-0"
    http.delete(loc)


# -- bodies that never arrive ----------------------------------------------------------------------


def _raw(reg: Registry, head: bytes, body: bytes) -> bytes:
    with socket.create_connection((reg.host, reg.port), timeout=30) as s:
        s.sendall(head + body)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_truncated_upload_leaves_nothing(reg: Registry, http: requests.Session, method: str) -> None:
    loc = start(http, reg)
    path = loc[len(reg.url) :]
    data = os.urandom(300_000)
    query = f"?digest={sha(data + b'rest')}" if method == "PUT" else ""
    head = (
        f"{method} {path}{query} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {len(data) + 4}\r\n\r\n"
    ).encode()
    _raw(reg, head, data)  # the client hangs up 4 bytes short
    r = http.get(loc)
    assert r.status_code == 404 and codes(r) == ["BLOB_UPLOAD_UNKNOWN"]
    assert not [p for p in Path(reg.root).rglob("_uploads/*") if loc.rsplit("/", 1)[1] in str(p)]
    assert http.head(f"{reg.url}/v2/hostile/app/blobs/{sha(data + b'rest')}").status_code == 404
    assert_store_consistent(reg)


def test_two_gib_declared_body_is_refused_before_it_is_read(reg: Registry, http: requests.Session) -> None:
    """Over --max-blob-size (64m here): 413 at once, nothing written."""
    loc = start(http, reg)
    path = loc[len(reg.url) :]
    head = f"PATCH {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {2 << 30}\r\n\r\n".encode()
    out = _raw(reg, head, os.urandom(65536))
    assert out.startswith(b"HTTP/1.1 413 "), out[:200]
    assert b'"SIZE_INVALID"' in out
    assert http.get(loc).headers["Range"] == "0-0"
    http.delete(loc)
    assert_store_consistent(reg)


def test_two_gib_declared_body_that_never_comes_is_cleaned_up() -> None:
    """Without a size limit the upload streams, and when the client stops short its data goes."""
    with gorae_registry() as reg, requests.Session() as http:
        loc = start(http, reg)
        path = loc[len(reg.url) :]
        head = f"PATCH {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {2 << 30}\r\n\r\n".encode()
        _raw(reg, head, os.urandom(8 << 20))
        r = http.get(loc)
        assert r.status_code == 404 and codes(r) == ["BLOB_UPLOAD_UNKNOWN"]
        assert not list(Path(reg.root).rglob("_uploads/*/data"))
        assert_store_consistent(reg)


def test_blob_over_the_limit_while_streaming_is_refused_and_removed(
    reg: Registry, http: requests.Session
) -> None:
    loc = start(http, reg)
    r = http.patch(loc, data=iter([b"\0" * (1 << 20)] * 65))  # chunked: no declared length
    assert r.status_code == 413 and codes(r) == ["SIZE_INVALID"]
    assert http.get(loc).status_code == 404
    assert_store_consistent(reg)


# -- manifests ------------------------------------------------------------------------------------


def test_manifest_naming_missing_blobs_is_refused_and_not_stored(
    reg: Registry, http: requests.Session
) -> None:
    config = b'{"architecture":"amd64","os":"linux"}'
    r = http.post(f"{reg.url}/v2/hostile/man/blobs/uploads/", params={"digest": sha(config)}, data=config)
    assert r.status_code == 201
    missing = sha(b"never pushed")
    doc = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha(config),
            "size": len(config),
        },
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": missing, "size": 12}],
    }
    raw = json.dumps(doc).encode()
    r = http.put(
        f"{reg.url}/v2/hostile/man/manifests/v1",
        data=raw,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert r.status_code == 400 and codes(r) == ["MANIFEST_BLOB_UNKNOWN"]
    assert r.json()["errors"][0]["detail"] == {"digest": missing}
    assert http.get(f"{reg.url}/v2/hostile/man/manifests/v1").status_code == 404
    assert http.get(f"{reg.url}/v2/hostile/man/manifests/{sha(raw)}").status_code == 404
    # an index naming a manifest the repository does not have
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(raw), "size": len(raw)}
        ],
    }
    r = http.put(
        f"{reg.url}/v2/hostile/man/manifests/idx",
        data=json.dumps(index),
        headers={"Content-Type": "application/vnd.oci.image.index.v1+json"},
    )
    assert r.status_code == 400 and codes(r) == ["MANIFEST_BLOB_UNKNOWN"]
    # a blob of another repository does not count
    doc["layers"] = []
    r = http.put(
        f"{reg.url}/v2/hostile/other/manifests/v1",
        data=json.dumps(doc),
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert r.status_code == 400 and codes(r) == ["MANIFEST_BLOB_UNKNOWN"]
    assert http.get(f"{reg.url}/v2/hostile/man/tags/list").json()["tags"] == []


@SETTINGS
@given(
    body=st.one_of(
        st.binary(max_size=300),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=10),
            lambda kids: (
                st.lists(kids, max_size=4)
                | st.dictionaries(
                    st.sampled_from(
                        [
                            "schemaVersion",
                            "mediaType",
                            "config",
                            "layers",
                            "manifests",
                            "subject",
                            "digest",
                            "size",
                        ]
                    ),
                    kids,
                    max_size=5,
                )
            ),
            max_leaves=20,
        ).map(lambda v: json.dumps(v).encode()),
    )
)
def test_garbage_manifests_are_manifest_invalid(reg: Registry, http: requests.Session, body: bytes) -> None:
    r = http.put(
        f"{reg.url}/v2/hostile/garbage/manifests/t",
        data=body,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert r.status_code == 400, r.text
    assert codes(r)[0] in ("MANIFEST_INVALID", "MANIFEST_BLOB_UNKNOWN")
    assert http.get(f"{reg.url}/v2/hostile/garbage/manifests/t").status_code == 404


def test_oversized_manifest_is_413(reg: Registry, http: requests.Session) -> None:
    r = http.put(
        f"{reg.url}/v2/hostile/app/manifests/big",
        data=b" " * (4 * 1024 * 1024 + 1),
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert r.status_code == 413 and codes(r) == ["SIZE_INVALID"]


# -- names and paths -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Hostile/App",
        "a/../b",
        "..",
        "a/./b",
        "a//b",
        "-a",
        "a-",
        "a__-b",
        "x" * 256,
        "a/" * 130 + "b",
        "_layers",
        "a/_uploads",
    ],
)
def test_invalid_names_are_name_invalid(reg: Registry, http: requests.Session, name: str) -> None:
    before = Path(reg.root).joinpath("docker/registry/v2/repositories")
    snapshot = sorted(str(p) for p in before.rglob("*")) if before.exists() else []
    for method, tail in [
        ("GET", "tags/list"),
        ("POST", "blobs/uploads/"),
        ("PUT", "manifests/latest"),
        ("GET", f"blobs/{sha(b'')}"),
    ]:
        body = b"{}" if method == "PUT" else b""
        head = f"{method} /v2/{name}/{tail} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
        out = _raw(reg, head.encode(), body)  # as sent: no client-side dot-segment removal
        status = int(out.split(b" ", 2)[1])
        assert status in (400, 404), (name, method, status)
        err = json.loads(out.partition(b"\r\n\r\n")[2])["errors"][0]["code"]
        assert err in ("NAME_INVALID", "NAME_UNKNOWN"), (name, method, err)
    after = sorted(str(p) for p in before.rglob("*")) if before.exists() else []
    assert after == snapshot


_SEGMENTS = [
    "v2",
    "..",
    ".",
    "",
    "blobs",
    "uploads",
    "manifests",
    "tags",
    "list",
    "_catalog",
    "referrers",
    "A",
    "a",
    "library",
    "x" * 300,
    "%2e%2e",
    "%00",
    "sha256:" + "0" * 64,
    "sha256:zz",
    "_uploads",
    "~",
]


@SETTINGS
@given(
    method=st.sampled_from(["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS", "BREW"]),
    segments=st.lists(
        st.sampled_from(_SEGMENTS) | st.text(alphabet="abcXYZ019._-%:@", max_size=12), max_size=8
    ),
    query=st.sampled_from(
        ["", "?n=x", "?n=-1&last=%ff", "?digest=sha256:", "?mount=a&from=..", "?n=99999999999999999999"]
    ),
    body=st.binary(max_size=64),
)
def test_random_requests_never_fail_the_server(
    reg: Registry, method: str, segments: list[str], query: str, body: bytes
) -> None:
    target = "/" + "/".join(segments) + query
    head = (
        f"{method} {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    out = _raw(reg, head.encode(), body)
    status = int(out.split(b" ", 2)[1])
    assert 200 <= status < 500, (method, target, out[:300])
    assert_store_consistent(reg)


def test_stop_while_a_client_stalls_mid_blob_is_prompt() -> None:
    """A client that stops reading a blob holds a sendfile worker; SIGTERM still ends the server at once."""
    import signal
    import time

    data = os.urandom(48 << 20)
    with gorae_registry() as reg:
        r = requests.post(
            f"{reg.url}/v2/stall/app/blobs/uploads/", params={"digest": sha(data)}, data=data, timeout=60
        )
        assert r.status_code == 201
        with socket.create_connection((reg.host, reg.port), timeout=30) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(f"GET /v2/stall/app/blobs/{sha(data)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert s.recv(12) == b"HTTP/1.1 200"  # the send is under way; we read no more
            started = time.monotonic()
            reg.proc.send_signal(signal.SIGTERM)
            assert reg.proc.wait(30) == 0
            assert time.monotonic() - started < 10


def test_racing_chunks_to_one_upload_are_taken_one_at_a_time(reg: Registry, http: requests.Session) -> None:
    """Eight clients send the same first chunk at once: exactly one is taken, the others get 416."""
    from concurrent.futures import ThreadPoolExecutor

    loc = start(http, reg)
    chunk = os.urandom(256 * 1024)

    def send(_: int) -> int:
        with requests.Session() as s:
            return s.patch(
                loc, data=chunk, headers={"Content-Range": f"0-{len(chunk) - 1}"}, timeout=60
            ).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(send, range(8)))
    assert statuses == [202] + [416] * 7
    assert http.get(loc).headers["Range"] == f"0-{len(chunk) - 1}"
    r = http.put(loc, params={"digest": sha(chunk)})
    assert r.status_code == 201
    assert_store_consistent(reg)
