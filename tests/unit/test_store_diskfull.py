"""A full disk in the metadata store and the container repository (security review F6/F7, issue 15 item 5):
SQLITE_FULL is `DiskFull` ("no space left on device"); state changes and deletes draw on the disk reserve and
are retried; inserts never use it; a container state the store cannot take stays in memory until space returns.

SQLITE_FULL is real here: `PRAGMA max_page_count` caps the database file, which SQLite reports exactly as a
full disk."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from gorae.container.repository import ContainerRepository
from gorae.errors import DiskFull, no_space
from gorae.store.metadata import MetadataStore
from gorae.store.reserve import DiskReserve


class Capped:
    """The database file capped at its current size: the next page it needs is a full disk."""

    def __init__(self, store: MetadataStore) -> None:
        self.store = store
        self.released = 0

    def fill(self) -> None:
        db = self.store._db
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages}")

    def release(self) -> bool:  # the reserve: room for 64 more pages
        self.released += 1
        db = self.store._db
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages + 64}")
        return True


@pytest.fixture
def capped(tmp_path: Any) -> Iterator[Capped]:
    s = MetadataStore(os.path.join(str(tmp_path), "gorae.db"))
    c = Capped(s)
    s.on_full = c.release
    try:
        yield c
    finally:
        s.close()


BIG = {"blob": "x" * 20_000}  # several overflow pages


def test_insert_on_a_full_disk_is_disk_full_and_never_takes_the_reserve(capped: Capped) -> None:
    capped.fill()
    with pytest.raises(DiskFull) as exc:
        capped.store.put("thing", "a", BIG)
    assert "no space left on device" in exc.value.message
    assert exc.value.status == 500
    assert capped.released == 0
    assert not capped.store.exists("thing", "a")


def test_a_state_change_draws_on_the_reserve(capped: Capped) -> None:
    capped.store.put("thing", "a", {"v": 1})
    capped.fill()
    capped.store.put("thing", "a", BIG)  # an update: a state change
    assert capped.released == 1
    assert capped.store.get("thing", "a") == BIG


def test_deletes_work_at_the_cap(capped: Capped) -> None:
    for i in range(20):
        capped.store.put("thing", str(i), BIG)
    capped.fill()
    # a delete frees pages (the free list is reused before the file grows); on a real full disk the WAL
    # frames it writes are what the reserve is for (tests/compat/test_disk_full.py)
    for i in range(20):
        capped.store.delete("thing", str(i))
    assert capped.store.list("thing") == []


def test_explicit_transactions_roll_back_as_disk_full(capped: Capped) -> None:
    capped.fill()
    with pytest.raises(DiskFull), capped.store.transaction():
        capped.store.put("thing", "a", {"v": 1})
        capped.store.put("thing", "b", BIG)
    assert not capped.store.exists("thing", "a")
    capped.store._db.execute("PRAGMA max_page_count = 1000000")
    capped.store.put("thing", "a", {"v": 2})  # the connection is usable again
    assert capped.store.get("thing", "a") == {"v": 2}


class FullStore:
    """A RecordStore whose disk is full until `space()`."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.full = False

    def put(self, kind: str, id: str, doc: dict[str, Any], *, name: str | None = None) -> None:
        if self.full:
            raise DiskFull("write gorae.db: no space left on device")
        self.docs[id] = doc

    def list(self, kind: str) -> list[dict[str, Any]]:
        return list(self.docs.values())

    def delete(self, kind: str, id: str) -> None:
        if self.full:
            raise DiskFull("write gorae.db: no space left on device")
        self.docs.pop(id, None)


def _record(cid: str) -> dict[str, Any]:
    return {
        "Id": cid,
        "Name": "/c" + cid[:4],
        "State": {"Status": "running", "Running": True, "Pid": 1},
        "Config": {},
        "HostConfig": {},
    }


def test_repository_keeps_states_and_removals_in_memory_until_space_returns() -> None:
    store = FullStore()
    store.docs = {"a" * 64: _record("a" * 64), "b" * 64: _record("b" * 64)}
    repo = ContainerRepository(store, lambda *a, **k: None)
    a, b = repo.load()
    store.full = True
    a.doc["State"]["Running"] = False
    a.doc["State"]["Status"] = "exited"
    repo.save(a)  # no error: the exit is recorded in memory
    repo.delete_record(b)  # no error: the removal goes ahead
    assert repo.pending == 2
    with pytest.raises(DiskFull):  # a new container is refused
        repo.add(type(a).from_doc(_record("c" * 64)))
    assert repo.retry_pending() == 2  # still full
    store.full = False
    assert repo.retry_pending() == 0
    assert store.docs["a" * 64]["State"]["Status"] == "exited"
    assert "b" * 64 not in store.docs


def test_reserve_release_and_replenish(tmp_path: Any) -> None:
    r = DiskReserve(str(tmp_path), size=1 << 20)
    assert not r.held
    assert r.replenish() and r.held
    assert os.path.getsize(r.path) == 1 << 20
    assert r.release() and not r.held and not os.path.exists(r.path)
    assert not r.release()  # nothing left to give
    assert r.replenish()
    assert DiskReserve(str(tmp_path), size=1 << 20).held  # found again by the next daemon


def test_enospc_reads_no_space_left_on_device() -> None:
    err = no_space(OSError(28, "No space left on device", "/data/tmp/load-x"))
    assert err is not None and err.message == "write /data/tmp/load-x: no space left on device"
    assert no_space(OSError(2, "No such file")) is None
