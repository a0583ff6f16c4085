"""IPAM: never a duplicate address, exhaustion, requested addresses, persistence across restarts, pools."""

from __future__ import annotations

import ipaddress
import os
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gorae.errors import Conflict, Forbidden, GoraeError, InvalidParameter
from gorae.network.ipam import Ipam, choose_subnet
from gorae.store.metadata import MetadataStore


class MemStore:
    """The smallest MetadataStore stand-in."""

    def __init__(self) -> None:
        self.docs: dict[tuple[str, str], dict] = {}

    def put(self, kind: str, id: str, doc: dict, *, name: str | None = None) -> None:
        import copy

        self.docs[(kind, id)] = copy.deepcopy(doc)

    def get(self, kind: str, id: str) -> dict:
        import copy

        from gorae.errors import NotFound

        if (kind, id) not in self.docs:
            raise NotFound(f"No such {kind}: {id}")
        return copy.deepcopy(self.docs[(kind, id)])

    def list(self, kind: str) -> list[dict]:
        return [v for (k, _), v in self.docs.items() if k == kind]

    def delete(self, kind: str, id: str) -> None:
        self.docs.pop((kind, id), None)


@settings(max_examples=60, deadline=None)
@given(
    prefix=st.integers(min_value=26, max_value=29),
    ops=st.lists(st.tuples(st.booleans(), st.integers(min_value=0, max_value=63)), max_size=80),
)
def test_never_a_duplicate(prefix: int, ops: list[tuple[bool, int]]) -> None:
    ipam = Ipam(MemStore())
    subnet = ipaddress.IPv4Network(f"10.213.7.0/{prefix}")
    gw = str(next(subnet.hosts()))
    ipam.add_pool("n", str(subnet), gw)
    held: dict[str, str] = {}
    capacity = subnet.num_addresses - 3  # network, broadcast, gateway
    for n, (alloc, pick) in enumerate(ops):
        if alloc or not held:
            owner = f"ep{n}"
            if len(held) == capacity:
                with pytest.raises(GoraeError, match="no available IPv4 addresses"):
                    ipam.allocate("n", owner)
                continue
            ip = ipam.allocate("n", owner)
            assert ip not in held and ip != gw
            assert ipaddress.IPv4Address(ip) in subnet
            assert ip not in (str(subnet.network_address), str(subnet.broadcast_address))
            held[ip] = owner
        else:
            ip = sorted(held)[pick % len(held)]
            ipam.release("n", ip, held.pop(ip))
        assert {k: v for k, v in ipam.allocated("n").items() if v != "gateway"} == held


def test_exhaustion_and_requested_addresses() -> None:
    ipam = Ipam(MemStore())
    ipam.add_pool("n", "10.213.8.0/29", "10.213.8.1")
    got = {ipam.allocate("n", f"e{i}") for i in range(5)}
    assert got == {f"10.213.8.{i}" for i in range(2, 7)}
    with pytest.raises(GoraeError, match="no available IPv4 addresses on this network's address pools: net"):
        ipam.allocate("n", "x", label="net")
    ipam.release("n", "10.213.8.4", "e2")
    with pytest.raises(Conflict, match="Address already in use"):
        ipam.allocate("n", "y", "10.213.8.5")
    with pytest.raises(Conflict, match="Address already in use"):
        ipam.allocate("n", "y", "10.213.8.1")  # the gateway
    with pytest.raises(InvalidParameter, match="no matching subnet"):
        ipam.allocate("n", "y", "10.9.9.9")
    assert ipam.allocate("n", "y", "10.213.8.4") == "10.213.8.4"
    ipam.release("n", "10.213.8.1")  # the gateway is never released
    assert ipam.allocated("n")["10.213.8.1"] == "gateway"


def test_ip_range_and_sequential_reuse() -> None:
    ipam = Ipam(MemStore())
    ipam.add_pool("n", "10.213.9.0/24", "10.213.9.1", "10.213.9.128/30")
    a = ipam.allocate("n", "a")
    b = ipam.allocate("n", "b")
    assert (a, b) == ("10.213.9.129", "10.213.9.130")
    ipam.release("n", a, "a")
    assert ipam.allocate("n", "c") == a  # range of two usable addresses: wraps to the released one


def test_restart_keeps_allocations() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.db")
        meta = MetadataStore(path)
        ipam = Ipam(meta)
        ipam.add_pool("n", "10.213.10.0/24", "10.213.10.1")
        first = [ipam.allocate("n", f"e{i}") for i in range(10)]
        meta.close()
        meta = MetadataStore(path)
        ipam = Ipam(meta)
        ipam.add_pool("n", "10.213.10.0/24", "10.213.10.1")  # idempotent on restart
        more = [ipam.allocate("n", f"f{i}") for i in range(10)]
        assert not set(first) & set(more)
        assert len(ipam.allocated("n")) == 21
        meta.close()


def test_choose_subnet_skips_taken_and_docker0() -> None:
    pools = [{"base": "172.17.0.0/16", "size": 24}, {"base": "10.213.0.0/16", "size": 24}]
    taken = [ipaddress.IPv4Network("10.213.0.0/23")]
    assert str(choose_subnet(pools, taken)) == "10.213.2.0/24"
    with pytest.raises(Forbidden, match="could not find an available"):
        choose_subnet([{"base": "10.213.0.0/23", "size": 24}], taken)
    with pytest.raises(InvalidParameter):
        choose_subnet([{"base": "10.213.0.0/16", "size": 8}], [])
