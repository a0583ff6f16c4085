"""MetadataStore: documents, names, prefixes, transactions, events, schema version, crash safety."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator

import pytest

from gorae.errors import Conflict, InvalidParameter, NotFound
from gorae.store.metadata import MetadataStore

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "src")


@pytest.fixture
def store(tmp_path: str) -> Iterator[MetadataStore]:
    s = MetadataStore(os.path.join(str(tmp_path), "gorae.db"))
    try:
        yield s
    finally:
        s.close()


def test_put_get_list_delete(store: MetadataStore) -> None:
    store.put("container", "abc123", {"Id": "abc123", "x": [1, 2]}, name="web")
    assert store.get("container", "abc123") == {"Id": "abc123", "x": [1, 2]}
    store.put("container", "abc123", {"Id": "abc123", "x": 3}, name="web")  # upsert
    assert store.get("container", "abc123")["x"] == 3
    assert store.list("container") == [{"Id": "abc123", "x": 3}]
    assert store.list("image") == []
    store.delete("container", "abc123")
    with pytest.raises(NotFound):
        store.get("container", "abc123")
    with pytest.raises(NotFound):
        store.delete("container", "abc123")


def test_find_order_and_prefix(store: MetadataStore) -> None:
    store.put("container", "aaaa1111", {"Id": "aaaa1111"}, name="bbbb")
    store.put("container", "aaaa2222", {"Id": "aaaa2222"}, name="other")
    store.put("container", "bbbb9999", {"Id": "bbbb9999"})
    assert store.find("container", "aaaa1111")["Id"] == "aaaa1111"  # exact id
    assert store.find("container", "bbbb")["Id"] == "aaaa1111"  # name before prefix
    assert store.find("container", "bbbb9")["Id"] == "bbbb9999"  # unique prefix
    assert store.find("container", "other")["Id"] == "aaaa2222"
    with pytest.raises(InvalidParameter, match="multiple IDs"):
        store.find("container", "aaaa")
    with pytest.raises(NotFound, match="No such container: zz"):
        store.find("container", "zz")
    with pytest.raises(NotFound):
        store.find("container", "")
    with pytest.raises(NotFound):  # kinds are separate
        store.find("image", "aaaa1111")
    # LIKE metacharacters are not wildcards
    with pytest.raises(NotFound):
        store.find("container", "%")


def test_name_unique_per_kind(store: MetadataStore) -> None:
    store.put("container", "one", {}, name="n")
    store.put("volume", "two", {}, name="n")
    with pytest.raises(Conflict):
        store.put("container", "three", {}, name="n")
    assert store.list("container") == [{}]


def test_transaction_rolls_back(store: MetadataStore) -> None:
    store.put("ref", "busybox:latest", {"image": "sha256:1"})
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.put("ref", "busybox:latest", {"image": "sha256:2"})
            store.delete("ref", "busybox:latest")
            store.put("ref", "x:1", {"image": "sha256:3"})
            raise RuntimeError("boom")
    assert store.get("ref", "busybox:latest") == {"image": "sha256:1"}
    assert not store.exists("ref", "x:1")
    with store.transaction():
        with store.transaction():
            store.put("ref", "x:1", {"image": "sha256:3"})
    assert store.exists("ref", "x:1")


def test_events(store: MetadataStore) -> None:
    for i in range(5):
        store.add_event({"Type": "container", "Action": f"a{i}", "timeNano": 100 + i})
    assert [e["Action"] for e in store.events_since(102, None)] == ["a2", "a3", "a4"]
    assert [e["Action"] for e in store.events_since(101, 103)] == ["a1", "a2", "a3"]
    assert store.events_since(200, None) == []


def test_schema_version_and_reopen(tmp_path: str) -> None:
    path = os.path.join(str(tmp_path), "g.db")
    s = MetadataStore(path)
    v = s.schema_version
    assert v >= 1
    s.put("image", "sha256:x", {"a": 1})
    s.close()
    s = MetadataStore(path)
    assert s.schema_version == v
    assert s.get("image", "sha256:x") == {"a": 1}
    s.close()


def test_threads(store: MetadataStore) -> None:
    def work(n: int) -> None:
        for i in range(50):
            store.put("exec", f"{n}-{i}", {"n": n, "i": i})
            store.get("exec", f"{n}-{i}")

    ts = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len(store.list("exec")) == 200


_WRITER = textwrap.dedent(
    """
    import os, sys
    from gorae.store.metadata import MetadataStore
    s = MetadataStore(sys.argv[1])
    start = int(sys.argv[2])
    i = start
    while True:
        doc = {"n": i, "payload": "x" * (i % 500), "nested": {"k": [i, str(i)]}}
        if i % 3 == 0:
            with s.transaction():
                s.put("container", f"c{i}", doc, name=f"name{i}")
                s.put("ref", f"r{i}", {"image": f"sha256:{i}"})
        else:
            s.put("container", f"c{i}", doc, name=f"name{i}")
        s.add_event({"Action": "x", "timeNano": i})
        os.write(1, f"{i}\\n".encode())
        i += 1
    """
)


def test_crash_safety_kill9() -> None:
    """A writer SIGKILLed at random moments never loses or corrupts a committed document."""
    tmp = tempfile.mkdtemp(prefix="gorae-meta-crash-")
    path = os.path.join(tmp, "gorae.db")
    env = dict(os.environ, PYTHONPATH=SRC)
    committed: set[int] = set()
    try:
        start = 0
        for _ in range(20):
            p = subprocess.Popen(
                [sys.executable, "-c", _WRITER, path, str(start)], stdout=subprocess.PIPE, env=env
            )
            time.sleep(random.uniform(0.15, 0.5))
            p.send_signal(signal.SIGKILL)
            out, _ = p.communicate()
            nums = [int(x) for x in out.split()]
            committed.update(nums)
            start = (max(nums) + 1) if nums else start
            start += 10  # skip past a write that may have committed without being reported
            s = MetadataStore(path)
            try:
                for i in committed:
                    doc = s.get("container", f"c{i}")
                    assert doc == {"n": i, "payload": "x" * (i % 500), "nested": {"k": [i, str(i)]}}
                    assert s.find("container", f"name{i}")["n"] == i
                    if i % 3 == 0:
                        assert s.get("ref", f"r{i}") == {"image": f"sha256:{i}"}
                ok = s._db.execute("PRAGMA integrity_check").fetchone()[0]
                assert ok == "ok"
                # transactions are atomic: no container of a multiple of 3 without its ref
                for c in s.list("container"):
                    if c["n"] % 3 == 0:
                        assert s.exists("ref", f"r{c['n']}")
            finally:
                s.close()
        assert len(committed) > 20
    finally:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def test_json_roundtrip_unicode(store: MetadataStore) -> None:
    doc = {"Labels": {"é": "☃", "k": "a\u0000b"}, "n": 2**40}
    store.put("container", "u", doc)
    assert store.get("container", "u") == json.loads(json.dumps(doc))
