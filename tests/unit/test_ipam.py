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


@settings(max_examples=60, deadline=None)
@given(
    prefix=st.sampled_from([64, 96, 120, 124, 125]),
    ops=st.lists(st.tuples(st.booleans(), st.integers(min_value=0, max_value=63)), max_size=60),
)
def test_ipv6_never_a_duplicate(prefix: int, ops: list[tuple[bool, int]]) -> None:
    """IPv6 pools: addresses after the gateway, no broadcast kept out, the subnet-router anycast never given."""
    ipam = Ipam(MemStore())
    subnet = ipaddress.IPv6Network(f"fd00:5::/{prefix}")
    gw = str(subnet.network_address + 1)
    ipam.add_pool("n/v6", str(subnet), gw)
    held: dict[str, str] = {}
    capacity = subnet.num_addresses - 2  # the anycast address and the gateway
    for n, (alloc, pick) in enumerate(ops):
        if alloc or not held:
            owner = f"ep{n}"
            if len(held) == capacity:
                with pytest.raises(GoraeError, match="no available IPv6 addresses"):
                    ipam.allocate("n/v6", owner)
                continue
            ip = ipam.allocate("n/v6", owner)
            assert ip not in held and ip != gw and ip != str(subnet.network_address)
            assert ipaddress.IPv6Address(ip) in subnet
            held[ip] = owner
        else:
            ip = sorted(held)[pick % len(held)]
            ipam.release("n/v6", ip, held.pop(ip))
        assert {k: v for k, v in ipam.allocated("n/v6").items() if v != "gateway"} == held


def test_ipv6_requested_addresses_and_range() -> None:
    ipam = Ipam(MemStore())
    ipam.add_pool("n/v6", "fd00:3::/64", "fd00:3::ff", "fd00:3::/80")
    assert ipam.allocate("n/v6", "a") == "fd00:3::1"
    assert ipam.allocate("n/v6", "b") == "fd00:3::2"
    assert ipam.allocate("n/v6", "c", "fd00:3::42") == "fd00:3::42"
    assert ipam.allocate("n/v6", "d") == "fd00:3::43"  # sequential after the last one given
    with pytest.raises(Conflict, match="Address already in use"):
        ipam.allocate("n/v6", "e", "fd00:3::ff")  # the gateway
    with pytest.raises(Conflict, match="Address already in use"):
        ipam.allocate("n/v6", "e", "fd00:3::")  # the subnet-router anycast address
    with pytest.raises(InvalidParameter, match="invalid IPv6 address: 10.0.0.1"):
        ipam.allocate("n/v6", "e", "10.0.0.1")
    with pytest.raises(InvalidParameter, match="no matching subnet"):
        ipam.allocate("n/v6", "e", "fd00:4::1")
    # the last address of the subnet is usable (no broadcast in IPv6)
    ipam.add_pool("m/v6", "fd00:6::/126", "fd00:6::1")
    assert [ipam.allocate("m/v6", x) for x in "ab"] == ["fd00:6::2", "fd00:6::3"]
    with pytest.raises(GoraeError, match="no available IPv6 addresses"):
        ipam.allocate("m/v6", "c")


@settings(max_examples=200, deadline=None)
@given(value=st.text(max_size=60))
def test_requested_address_checks_hostile_input(value: str) -> None:
    """`--ip`/`--ip6` of any text: dockerd's InvalidParameter wordings, nothing else."""
    from gorae.network.sandboxes import check_requested_addresses

    net = {
        "IPAM": {"Config": [{"Subnet": "10.7.0.0/24", "Gateway": "10.7.0.1"}, {"Subnet": "fd00:7::/64"}]},
        "_gorae": {},
    }
    if not value:
        return  # not given
    for ip4, ip6 in ((value, None), (None, value)):
        try:
            check_requested_addresses(net, ip4, ip6)
        except InvalidParameter as e:
            assert str(e).startswith(("invalid IPv4 address: ", "invalid IPv6 address: ", "Invalid address "))
        else:
            addr = ipaddress.ip_address(value)
            assert addr in (ipaddress.ip_network("10.7.0.0/24") if ip4 else ipaddress.ip_network("fd00:7::/64"))


def test_requested_addresses_need_user_configured_subnets() -> None:
    from gorae.network.sandboxes import USER_SUBNETS_ONLY, check_requested_addresses

    auto = {"IPAM": {"Config": [{"Subnet": "172.20.0.0/16"}]}, "_gorae": {"auto_subnet": True}}
    with pytest.raises(InvalidParameter, match=USER_SUBNETS_ONLY):
        check_requested_addresses(auto, "172.20.0.5", None)
    with pytest.raises(InvalidParameter, match=USER_SUBNETS_ONLY):
        check_requested_addresses(auto, None, "fd00::5")
    with pytest.raises(InvalidParameter, match="Invalid address 10.1.1.1: It does not belong"):
        check_requested_addresses({"IPAM": {"Config": [{"Subnet": "10.2.0.0/16"}]}, "_gorae": {}}, "10.1.1.1", None)
