"""ContentStore: digests verified while streaming, atomic blobs, hostile digests never become paths."""

from __future__ import annotations

import hashlib
import io
import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gorae.errors import InvalidParameter, NotFound
from gorae.store.content import ContentStore
from gorae.store.testsuite import CASES


@pytest.fixture
def cs(tmp_path: str) -> ContentStore:
    return ContentStore(os.path.join(str(tmp_path), "content"))


def test_put_open_delete(cs: ContentStore) -> None:
    d = cs.put_bytes(b"hello")
    assert d == "sha256:" + hashlib.sha256(b"hello").hexdigest()
    assert cs.exists(d)
    with cs.open(d) as f:
        assert f.read() == b"hello"
    assert cs.path(d).endswith("/blobs/sha256/" + d[7:])
    assert cs.put_bytes(b"hello") == d  # idempotent
    cs.delete(d)
    assert not cs.exists(d)
    with pytest.raises(NotFound):
        cs.open(d)
    with pytest.raises(NotFound):
        cs.delete(d)


def test_ingest_verifies(cs: ContentStore) -> None:
    data = os.urandom(3 << 20)
    good = "sha256:" + hashlib.sha256(data).hexdigest()
    assert cs.ingest(io.BytesIO(data), expected=good, size=len(data)) == (good, len(data))
    bad = "sha256:" + "0" * 64
    with pytest.raises(InvalidParameter, match="digest mismatch"):
        cs.ingest(io.BytesIO(b"other"), expected=bad)
    assert not cs.exists(bad)
    with pytest.raises(InvalidParameter):
        cs.ingest(io.BytesIO(b"12345"), size=4)
    with pytest.raises(InvalidParameter):
        cs.ingest(io.BytesIO(b"123"), size=4)
    assert os.listdir(os.path.join(cs.root, "ingest")) == []  # temp files gone


@pytest.mark.parametrize(
    "digest",
    [
        "",
        "sha256:",
        "sha256:../../etc/passwd",
        "sha256:" + "A" * 64,
        "sha256:" + "0" * 63,
        "sha256:" + "0" * 64 + "/x",
        "md5:abcd",
        "sha512:" + "0" * 128,
        "../" + "0" * 64,
        "0" * 64,
    ],
)
def test_malformed_digest(cs: ContentStore, digest: str) -> None:
    for op in (cs.open, cs.path, cs.exists, cs.delete):
        with pytest.raises(InvalidParameter):
            op(digest)  # type: ignore[operator]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_hostile_digests_never_escape(tmp_path_factory: pytest.TempPathFactory, s: str) -> None:
    cs = ContentStore(str(tmp_path_factory.getbasetemp() / "hyp"))
    try:
        p = cs.path(s)
    except InvalidParameter:
        return
    assert os.path.dirname(p) == os.path.join(cs.root, "blobs", "sha256")


@pytest.mark.parametrize("name", sorted(CASES))
def test_content_store_conformance(tmp_path: Any, name: str) -> None:
    CASES[name](ContentStore, str(tmp_path / "content"))


def test_stale_ingests_are_cleaned_by_age(tmp_path: Any) -> None:
    root = str(tmp_path / "content")
    cs = ContentStore(root)
    fresh = cs.writer("fresh")
    fresh.write(b"new")
    fresh.close()
    old = cs.writer("old")
    old.write(b"old")
    old.close()
    held = cs.writer("held")
    held.write(b"held")
    data = os.path.join(root, "ingest", hashlib.sha256(b"old").hexdigest(), "data")
    os.utime(data, (0, 0))
    os.utime(os.path.join(root, "ingest", hashlib.sha256(b"held").hexdigest(), "data"), (0, 0))
    with open(os.path.join(root, "ingest", "in-legacy"), "wb") as f:  # an old version's temp file
        f.write(b"x")
    again = ContentStore(root)
    assert sorted(s.ref for s in again.list_statuses()) == ["fresh", "held"]  # held: a writer owns it
    assert not os.path.exists(os.path.join(root, "ingest", "in-legacy"))
    held.abort()
