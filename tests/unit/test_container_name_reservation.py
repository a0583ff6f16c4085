"""Name reservations of the container repository (review F5): a name reserved by a create in flight is taken
for other creates and renames until the record is indexed or the reservation given back."""

from __future__ import annotations

import pytest
from fakes.services import EventRecorder, MemoryStore

from gorae.container import state as cs
from gorae.container.record import Bookkeeping, Container
from gorae.container.repository import ContainerRepository
from gorae.errors import Conflict

A, B = "a" * 64, "b" * 64


def _ct(cid: str, name: str) -> Container:
    return Container(
        {"Id": cid, "Name": name, "State": cs.initial_state(), "Config": {}, "HostConfig": {}},
        Bookkeeping(snapshot=cid),
    )


def test_a_reserved_name_is_taken_until_added_then_found() -> None:
    repo = ContainerRepository(MemoryStore(), EventRecorder())
    assert repo.reserve_name("xx", A) == "/xx"
    with pytest.raises(Conflict, match=f'The container name "/xx" is already in use by container "{A}"'):
        repo.reserve_name("xx", B)
    repo.add(_ct(A, "/xx"))
    with pytest.raises(Conflict, match=A):
        repo.reserve_name("/xx", B)
    assert repo.get("xx").id == A


def test_a_released_name_is_free_and_a_loser_cannot_release_the_winners() -> None:
    repo = ContainerRepository(MemoryStore(), EventRecorder())
    repo.reserve_name("xx", A)
    repo.release_name("/xx", B)  # not B's: kept
    with pytest.raises(Conflict):
        repo.reserve_name("xx", B)
    repo.release_name("/xx", A)
    assert repo.reserve_name("xx", B) == "/xx"


def test_rename_to_a_reserved_name_is_refused() -> None:
    repo = ContainerRepository(MemoryStore(), EventRecorder())
    repo.reserve_name("yy", A)
    repo.add(_ct(A, "/yy"))
    repo.reserve_name("xx", B)
    with pytest.raises(Conflict, match="Error when allocating new name: Conflict"):
        repo.rename(repo.get(A), "xx")
    assert repo.get("yy").id == A


def test_random_names_skip_reserved_ones() -> None:
    repo = ContainerRepository(MemoryStore(), EventRecorder())
    names = {repo.reserve_name(None, f"{i:064x}") for i in range(200)}
    assert len(names) == 200
