"""Conformance cases every `ClusterStore` must pass (containerd's testsuite idea, for swarmkit's store).

Each case is an async function over a fresh, empty store; it raises AssertionError on failure. `CASES` maps
names to cases so a test file parametrizes over them for each implementation (etcd, memory).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from gorae.swarm.store.types import (
    Change,
    Cluster,
    ClusterStore,
    Node,
    ObjectExists,
    ObjectMissing,
    ReadTx,
    SequenceConflict,
    Service,
    WriteTx,
)

Case = Callable[[ClusterStore], Awaitable[None]]


async def _get_node(store: ClusterStore, node_id: str) -> Node | None:
    async def read(tx: ReadTx) -> Node | None:
        return await tx.get(Node, node_id)

    return await store.view(read)


async def _create(store: ClusterStore, *objs: Node | Service | Cluster) -> None:
    async def write(tx: WriteTx) -> None:
        for o in objs:
            await tx.create(o)

    await store.update(write)


async def create_get_find(store: ClusterStore) -> None:
    await _create(store, Node("n1", {"Hostname": "a"}), Node("n2", {"Hostname": "b"}), Service("s1", {}))
    got = await _get_node(store, "n1")
    assert got is not None and got.doc == {"Hostname": "a"} and got.version > 0, got

    async def read(tx: ReadTx) -> tuple[list[str], list[str], Service | None]:
        nodes = [n.id for n in await tx.find(Node)]
        services = [s.id for s in await tx.find(Service)]
        return nodes, services, await tx.get(Service, "n1")

    assert await store.view(read) == (["n1", "n2"], ["s1"], None)


async def create_existing_aborts_all(store: ClusterStore) -> None:
    await _create(store, Node("n1", {}))
    try:
        await _create(store, Node("n2", {}), Node("n1", {"x": 1}))
    except ObjectExists:
        pass
    else:
        raise AssertionError("creating an existing ID must fail")
    assert await _get_node(store, "n2") is None
    n1 = await _get_node(store, "n1")
    assert n1 is not None and n1.doc == {}


async def update_is_version_checked(store: ClusterStore) -> None:
    await _create(store, Node("n1", {"v": 0}))
    first = await _get_node(store, "n1")
    assert first is not None

    async def bump(tx: WriteTx) -> None:
        await tx.update(first.with_doc({"v": 1}))

    await store.update(bump)
    second = await _get_node(store, "n1")
    assert second is not None and second.doc == {"v": 1} and second.version > first.version
    try:
        await store.update(bump)  # `first` is stale now
    except SequenceConflict as e:
        assert str(e) == "rpc error: code = Unknown desc = update out of sequence"
    else:
        raise AssertionError("a stale version must be refused")
    again = await _get_node(store, "n1")
    assert again == second


async def update_missing_and_delete(store: ClusterStore) -> None:
    async def upd(tx: WriteTx) -> None:
        await tx.update(Node("ghost", {}, 1))

    async def rm(tx: WriteTx) -> None:
        await tx.delete(Node, "n1")

    for fn in (upd,):
        try:
            await store.update(fn)
        except ObjectMissing:
            pass
        else:
            raise AssertionError("update of a missing object must fail")
    await _create(store, Node("n1", {}))
    await store.update(rm)
    assert await _get_node(store, "n1") is None
    try:
        await store.update(rm)
    except ObjectMissing:
        pass
    else:
        raise AssertionError("delete of a missing object must fail")


async def failed_update_writes_nothing(store: ClusterStore) -> None:
    async def half(tx: WriteTx) -> None:
        await tx.create(Node("n1", {}))
        raise RuntimeError("boom")

    try:
        await store.update(half)
    except RuntimeError:
        pass
    assert await _get_node(store, "n1") is None


async def reads_see_own_writes(store: ClusterStore) -> None:
    await _create(store, Node("n0", {}))

    async def fn(tx: WriteTx) -> tuple[list[str], bool]:
        await tx.create(Node("n1", {"a": 1}))
        await tx.delete(Node, "n0")
        mine = await tx.get(Node, "n1")
        return [n.id for n in await tx.find(Node)], mine is not None and mine.doc == {"a": 1}

    assert await store.update(fn) == (["n1"], True)


async def concurrent_updates_serialize(store: ClusterStore) -> None:
    await _create(store, Cluster("c", {"n": 0}))

    async def incr(tx: WriteTx) -> None:
        c = await tx.get(Cluster, "c")
        assert c is not None
        await asyncio.sleep(0)  # let the others read the same version
        await tx.update(c.with_doc({"n": c.doc["n"] + 1}))

    await asyncio.gather(*(store.update(incr) for _ in range(8)))

    async def read(tx: ReadTx) -> Cluster | None:
        return await tx.get(Cluster, "c")

    final = await store.view(read)
    assert final is not None and final.doc == {"n": 8}, final


async def _collect(store: ClusterStore, after: int, count: int) -> list[Change]:
    out: list[Change] = []

    async def run() -> None:
        async for change in store.watch(after):
            out.append(change)
            if len(out) == count:
                return

    await asyncio.wait_for(run(), timeout=10)
    return out


async def watch_is_ordered_and_resumable(store: ClusterStore) -> None:
    start = await store.revision()
    await _create(store, Node("n1", {"s": "new"}))
    n1 = await _get_node(store, "n1")
    assert n1 is not None

    async def upd(tx: WriteTx) -> None:
        await tx.update(n1.with_doc({"s": "up"}))

    async def rm(tx: WriteTx) -> None:
        await tx.delete(Node, "n1")

    await store.update(upd)
    await store.update(rm)
    changes = await _collect(store, start, 3)
    assert [(c.action, c.obj.id, c.obj.doc) for c in changes] == [
        ("create", "n1", {"s": "new"}),
        ("update", "n1", {"s": "up"}),
        ("delete", "n1", {"s": "up"}),
    ], changes
    revs = [c.revision for c in changes]
    assert revs == sorted(revs) and len(set(revs)) == 3 and revs[0] > start
    assert all(c.obj.version == c.revision for c in changes)
    assert await store.revision() == revs[-1]
    resumed = await _collect(store, revs[1], 1)
    assert [(c.action, c.revision) for c in resumed] == [("delete", revs[2])]


async def watch_sees_later_writes(store: ClusterStore) -> None:
    start = await store.revision()
    waiter = asyncio.ensure_future(_collect(store, start, 1))
    await asyncio.sleep(0)
    await _create(store, Service("s9", {"Spec": {"Name": "web"}}))
    (change,) = await waiter
    assert (change.action, change.obj.kind, change.obj.id) == ("create", "service", "s9")


CASES: dict[str, Case] = {
    f.__name__: f
    for f in (
        create_get_find,
        create_existing_aborts_all,
        update_is_version_checked,
        update_missing_and_delete,
        failed_update_writes_nothing,
        reads_see_own_writes,
        concurrent_updates_serialize,
        watch_is_ordered_and_resumable,
        watch_sees_later_writes,
    )
}
