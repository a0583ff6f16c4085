"""The managers' coordination over a real etcd member (`gorae.swarm.coordination`): exactly one leader among
concurrent campaigns, leadership passing on resign, a restarted node taking its own key back, presence, the
member list; leader-only components following leadership in `SwarmService`; the pure helpers (initial
cluster, certificate renewal window) under hypothesis."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import skip_outside_ci
from hypothesis import assume, given
from hypothesis import strategies as st

from gorae.errors import Unavailable
from gorae.swarm.ca.authority import renewal_due
from gorae.swarm.component import NodeContext
from gorae.swarm.coordination import Coordinator, Member, initial_cluster
from gorae.swarm.manager import LocalState, SwarmService
from gorae.swarm.store.etcd import EtcdStore
from gorae.swarm.store.member import EtcdMember, etcd_binary


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    lp = asyncio.new_event_loop()
    try:
        yield lp
    finally:
        lp.close()


@pytest.fixture(scope="module")
def store(loop: asyncio.AbstractEventLoop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdStore]:
    try:
        etcd_binary()
    except Unavailable:
        skip_outside_ci("etcd is not installed (apt-get install etcd-server)")
    member = EtcdMember(tmp_path_factory.mktemp("etcd") / "member")
    cfg = member.configure("solo", "127.0.0.1")
    loop.run_until_complete(member.start(cfg))
    s = EtcdStore("127.0.0.1", cfg.client_port)
    try:
        yield s
    finally:
        loop.run_until_complete(s.close())
        loop.run_until_complete(member.destroy())


def test_exactly_one_leader_and_handover(loop: asyncio.AbstractEventLoop, store: EtcdStore) -> None:
    async def run() -> None:
        nodes = [Coordinator(store.client, f"node{i}") for i in range(5)]
        for c in nodes:
            await c.grant()
        winners = await asyncio.gather(*(c.campaign() for c in nodes))
        assert len(set(winners)) == 1  # everyone sees the same leader
        leader = winners[0]
        assert sum(1 for c in nodes if c.node_id == leader) == 1
        assert await nodes[0].present() == {f"node{i}" for i in range(5)}
        assert await nodes[1].leader() == leader
        # the leader resigns: its presence goes, and exactly one other takes over
        holder = next(c for c in nodes if c.node_id == leader)
        await holder.resign()
        rest = [c for c in nodes if c is not holder]
        second = await asyncio.gather(*(c.campaign() for c in rest))
        assert len(set(second)) == 1 and second[0] != leader and second[0] in {c.node_id for c in rest}
        assert leader not in await rest[0].present()
        assert await holder.keepalive() is False  # no lease any more
        # the leader's daemon restarts (a new lease, the same node ID): it takes its own key back at once
        current = next(c for c in rest if c.node_id == second[0])
        again = Coordinator(store.client, current.node_id)
        await again.grant()
        assert await again.campaign() == current.node_id
        others = [c for c in rest if c is not current]
        assert {await c.campaign() for c in others} == {current.node_id}
        # a follower that finds the leader's daemon gone revokes its lease: it wins the next campaign
        follower = others[0]
        assert follower.leader_lease == again.lease
        await follower.depose(follower.leader_lease)
        assert await follower.campaign() == follower.node_id
        assert current.node_id not in await follower.present()
        await follower.depose(follower.lease)  # never its own
        assert await follower.keepalive() is True
        for c in [*rest, again]:
            await c.resign()
        assert await again.leader() == "" and await again.present() == set()
        # heartbeats: a revision that moves with each beat
        await again.beat("w1")
        first = (await again.beats())["w1"]
        await again.beat("w1")
        assert (await again.beats())["w1"] > first
        await again.forget("w1")
        assert "w1" not in await again.beats()
        (member,) = await again.members()
        assert (member.name, member.learner) == ("solo", False)

    loop.run_until_complete(run())


class _Probe:
    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name = log, name

    async def start(self, node: NodeContext) -> None:
        self.log.append(f"start {self.name} {node.role}")

    async def stop(self) -> None:
        self.log.append(f"stop {self.name}")


def test_leader_only_components_follow_leadership(tmp_path: Path) -> None:
    async def run() -> list[str]:
        log: list[str] = []
        svc = SwarmService(str(tmp_path / "swarm"), dict)
        svc.add_component(_Probe(log, "everywhere"))
        svc.add_component(_Probe(log, "leader"), leader_only=True)
        svc.state = LocalState("n1", "c1", "manager", "0.0.0.0:2377", "10.0.0.1:2377")
        await svc._start_components()  # noqa: SLF001
        await svc._set_leading(True)  # noqa: SLF001
        await svc._set_leading(True)  # noqa: SLF001 - no change, nothing happens
        await svc._set_leading(False)  # noqa: SLF001
        await svc._set_leading(True)  # noqa: SLF001
        await svc._stop_components()  # noqa: SLF001 - leaving: the leader's go too
        return log

    assert asyncio.run(run()) == [
        "start everywhere manager",
        "start leader manager",
        "stop leader",
        "start leader manager",
        "stop leader",
        "stop everywhere",
    ]


def test_leadership_lapses_with_an_unrenewed_lease(tmp_path: Path) -> None:
    """A leader whose rounds stall stops its leader-only components by the lease deadline; a renewal in
    time keeps them running (no stop/start)."""

    async def run() -> list[str]:
        log: list[str] = []
        svc = SwarmService(str(tmp_path / "swarm"), dict)
        svc.add_component(_Probe(log, "leader"), leader_only=True)
        svc.state = LocalState("n1", "c1", "manager", "0.0.0.0:2377", "10.0.0.1:2377")
        await svc._set_leading(True)  # noqa: SLF001
        svc._lead_until(time.monotonic() + 0.2)  # noqa: SLF001
        svc._lead_until(time.monotonic() + 0.05)  # noqa: SLF001 - renewed (earlier here): one timer only
        deadline = time.monotonic() + 5
        while svc._leading and time.monotonic() < deadline:  # noqa: SLF001 - waits on the state
            await asyncio.sleep(0.01)
        while svc._chores and time.monotonic() < deadline:  # noqa: SLF001
            await asyncio.sleep(0.01)
        return log

    assert asyncio.run(run()) == ["start leader manager", "stop leader"]


def test_initial_cluster_names_the_new_member() -> None:
    members = [
        Member(1, "a", ("https://10.0.0.1:2380",), False),
        Member(7, "", ("https://10.0.0.2:2380",), True),
    ]
    assert initial_cluster(members, 7, "b") == "a=https://10.0.0.1:2380,b=https://10.0.0.2:2380"


T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


@given(
    hours=st.integers(1, 24 * 365),
    fraction=st.floats(0.5, 0.8),
    elapsed=st.floats(0, 2),
)
def test_renewal_window(hours: int, fraction: float, elapsed: float) -> None:
    assume(abs(elapsed - fraction) > 1e-6)  # away from the microsecond rounding at the boundary
    not_after = T0 + dt.timedelta(hours=hours)
    now = T0 + dt.timedelta(hours=hours) * elapsed
    assert renewal_due(T0, not_after, now, fraction) is (elapsed >= fraction)


def test_renewal_known_values() -> None:
    day = dt.timedelta(days=1)
    assert renewal_due(T0, T0 + 90 * day, T0 + 44 * day, 0.5) is False
    assert renewal_due(T0, T0 + 90 * day, T0 + 45 * day, 0.5) is True
    assert renewal_due(T0, T0 + 90 * day, T0 + 91 * day, 0.8) is True  # expired
