"""Conformance cases every content store must pass (containerd's content/testsuite idea).

Each case takes a factory (root directory -> store) and a fresh root; it raises AssertionError on failure.
A "restart" is a second store made by the factory on the same root. `CASES` maps case names to
functions so a test file can parametrize over them for any implementation.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable

from gorae.errors import Conflict, GoraeError, InvalidParameter, NotFound
from gorae.store.types import Store

Factory = Callable[[str], Store]
Case = Callable[[Factory, str], None]


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _raises(exc: type[GoraeError], fn: Callable[[], object]) -> None:
    try:
        fn()
    except exc:
        return
    raise AssertionError(f"expected {exc.__name__}")


def case_write_commit_read(factory: Factory, root: str) -> None:
    s = factory(root)
    data = b"hello, content" * 1000
    w = s.writer("blob-1", total=len(data), expected=_digest(data))
    w.write(data[:100])
    w.write(data[100:])
    st = w.status()
    assert (st.ref, st.offset, st.total, st.expected) == ("blob-1", len(data), len(data), _digest(data))
    assert w.digest() == _digest(data)
    assert w.commit(len(data), _digest(data)) == _digest(data)
    assert s.exists(_digest(data)) and s.size(_digest(data)) == len(data)
    assert s.read_bytes(_digest(data)) == data
    with s.open(_digest(data)) as f:
        assert f.read() == data
    assert s.info(_digest(data)).size == len(data)
    assert _digest(data) in s.list()
    _raises(NotFound, lambda: s.status("blob-1"))  # a committed ingest is gone
    assert s.list_statuses() == []


def case_resume_after_restart(factory: Factory, root: str) -> None:
    data = bytes(range(256)) * 4096
    s = factory(root)
    w = s.writer("layer", total=len(data))
    w.write(data[:300_000])
    w.close()  # the daemon goes away mid-pull
    s2 = factory(root)
    st = s2.status("layer")
    assert (st.offset, st.total) == (300_000, len(data))
    assert [x.ref for x in s2.list_statuses()] == ["layer"]
    w2 = s2.writer("layer", total=len(data))
    assert w2.status().offset == 300_000
    w2.write(data[300_000:])
    assert w2.commit(len(data), _digest(data)) == _digest(data)
    assert s2.read_bytes(_digest(data)) == data


def case_wrong_digest(factory: Factory, root: str) -> None:
    s = factory(root)
    w = s.writer("wrong")
    w.write(b"abc")
    _raises(InvalidParameter, lambda: w.commit(3, _digest(b"abd")))
    assert not s.exists(_digest(b"abd")) and not s.exists(_digest(b"abc"))
    assert s.status("wrong").offset == 3  # left for the caller to abort
    w.abort()
    _raises(NotFound, lambda: s.status("wrong"))
    _raises(InvalidParameter, lambda: s.writer("bad-expected", expected="md5:00"))


def case_wrong_size(factory: Factory, root: str) -> None:
    s = factory(root)
    w = s.writer("short")
    w.write(b"12345")
    _raises(InvalidParameter, lambda: w.commit(4, ""))
    _raises(InvalidParameter, lambda: w.commit(6, ""))
    w.abort()
    w2 = s.writer("announced", total=4)
    _raises(InvalidParameter, lambda: w2.write(b"12345"))
    w2.write(b"123")
    _raises(InvalidParameter, lambda: w2.commit(0, ""))  # short of its own total
    w2.abort()
    _raises(InvalidParameter, lambda: s.ingest(io.BytesIO(b"12345"), size=4))
    _raises(InvalidParameter, lambda: s.ingest(io.BytesIO(b"123"), size=4))
    assert s.list_statuses() == []


def case_one_writer_per_ref(factory: Factory, root: str) -> None:
    s = factory(root)
    w = s.writer("busy")
    _raises(Conflict, lambda: s.writer("busy"))
    _raises(Conflict, lambda: factory(root).writer("busy"))  # another store on the same root too
    _raises(Conflict, lambda: s.abort("busy"))
    other = s.writer("other")  # other refs are free
    other.abort()
    w.write(b"x")
    w.close()
    w2 = s.writer("busy")  # free again once closed
    assert w2.status().offset == 1
    w2.abort()


def case_abort(factory: Factory, root: str) -> None:
    s = factory(root)
    w = s.writer("gone")
    w.write(b"partial")
    w.close()
    s.abort("gone")
    _raises(NotFound, lambda: s.status("gone"))
    _raises(NotFound, lambda: s.abort("gone"))
    w2 = s.writer("gone")  # starts from nothing
    assert w2.status().offset == 0
    w2.abort()


def case_commit_existing_blob(factory: Factory, root: str) -> None:
    s = factory(root)
    d, n = s.ingest(io.BytesIO(b"same"))
    assert (d, n) == (_digest(b"same"), 4)
    w = s.writer("again")
    w.write(b"same")
    assert w.commit(4, d) == d
    assert s.read_bytes(d) == b"same"
    s.delete(d)
    assert not s.exists(d)
    _raises(NotFound, lambda: s.delete(d))


CASES: dict[str, Case] = {
    "write_commit_read": case_write_commit_read,
    "resume_after_restart": case_resume_after_restart,
    "wrong_digest": case_wrong_digest,
    "wrong_size": case_wrong_size,
    "one_writer_per_ref": case_one_writer_per_ref,
    "abort": case_abort,
    "commit_existing_blob": case_commit_existing_blob,
}

