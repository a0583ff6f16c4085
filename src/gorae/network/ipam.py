"""IPAM: subnets for networks from the default address pools, and addresses for endpoints.

Allocations are persisted in the metadata store (kind "ipam", one document per network id:
`{"subnet", "range", "gateway", "allocated": {ip: owner}, "last": ip}`) before an address is handed out,
so an address is never given twice, also across restarts. Addresses are taken sequentially after the last
one given (wrapping), as libnetwork does, so a just-released address is not immediately reused.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterable
from typing import Any, Protocol

from gorae.errors import Conflict, Forbidden, InvalidParameter, NotFound, SystemError_

KIND = "ipam"
DEFAULT_POOLS: list[dict[str, Any]] = [
    {"base": "172.17.0.0/16", "size": 16},
    {"base": "172.18.0.0/16", "size": 16},
    {"base": "172.19.0.0/16", "size": 16},
    {"base": "172.20.0.0/14", "size": 16},
    {"base": "172.24.0.0/14", "size": 16},
    {"base": "172.28.0.0/14", "size": 16},
    {"base": "192.168.0.0/16", "size": 20},
]
# docker0's subnet: never chosen automatically, so gorae and dockerd can share a host
DOCKER0 = ipaddress.IPv4Network("172.17.0.0/16")


class Store(Protocol):
    def put(self, kind: str, id: str, doc: dict[str, Any], *, name: str | None = None) -> None: ...
    def get(self, kind: str, id: str) -> dict[str, Any]: ...
    def list(self, kind: str) -> list[dict[str, Any]]: ...
    def delete(self, kind: str, id: str) -> None: ...


def parse_subnet(value: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise InvalidParameter(f"invalid CIDR address: {value}") from None
    if net.version != 4:
        raise InvalidParameter(f"IPv6 subnets are not supported yet: {value}")
    if "/" not in value:
        raise InvalidParameter(f"invalid CIDR address: {value}")
    return net


def parse_any_subnet(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """An IPv4 or IPv6 CIDR ("fd00::/64"); host bits are allowed (dockerd masks them)."""
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise InvalidParameter(f"invalid CIDR address: {value}") from None
    if "/" not in value:
        raise InvalidParameter(f"invalid CIDR address: {value}")
    return net


def parse_ip6(value: str, what: str = "IPv6 address") -> ipaddress.IPv6Address:
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        raise InvalidParameter(f"invalid {what}: {value}") from None
    if ip.version != 6:
        raise InvalidParameter(f"invalid {what}: {value}")
    return ip


def v6_pool(network_id: str) -> str:
    """The IPAM record of a network's IPv6 pool (its IPv4 pool is recorded under the network's id)."""
    return network_id + "/v6"


def parse_ip(value: str, what: str = "IP address") -> ipaddress.IPv4Address:
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        raise InvalidParameter(f"invalid {what}: {value}") from None
    if ip.version != 4:
        raise InvalidParameter(f"invalid {what}: {value} (IPv6 is not supported yet)")
    return ip


def pool_candidates(pools: list[dict[str, Any]]) -> Iterable[ipaddress.IPv4Network]:
    """Every subnet the pools offer, in order."""
    for pool in pools:
        try:
            base = ipaddress.IPv4Network(str(pool["base"]), strict=False)
            size = int(pool["size"])
        except (KeyError, ValueError, TypeError):
            raise InvalidParameter(f"invalid default address pool: {pool!r}") from None
        if size < base.prefixlen or size > 30:
            raise InvalidParameter(f"invalid default address pool: {pool!r}")
        yield from base.subnets(new_prefix=size)


def choose_subnet(
    pools: list[dict[str, Any]], taken: list[ipaddress.IPv4Network], *, avoid_docker0: bool = True
) -> ipaddress.IPv4Network:
    """The first pool subnet overlapping neither an existing network nor a host route."""
    for cand in pool_candidates(pools or DEFAULT_POOLS):
        if avoid_docker0 and cand.overlaps(DOCKER0):
            continue
        if not any(cand.overlaps(t) for t in taken):
            return cand
    raise Forbidden(
        "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network"
    )


class Ipam:
    """Address allocation inside the subnets of networks; thread-safe."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()

    def add_pool(self, network_id: str, subnet: str, gateway: str, ip_range: str | None = None) -> None:
        """Record a network's subnet, its range for endpoints and its gateway (reserved)."""
        with self._lock:
            try:
                self._store.get(KIND, network_id)
                return  # already there (restart)
            except NotFound:
                pass
            doc = {
                "subnet": subnet,
                "range": ip_range or subnet,
                "gateway": gateway,
                "allocated": {gateway: "gateway"} if gateway else {},
                "last": "",  # the first endpoint gets the first free address, wherever the gateway is
            }
            self._store.put(KIND, network_id, doc)

    def remove_pool(self, network_id: str) -> None:
        with self._lock:
            try:
                self._store.delete(KIND, network_id)
            except NotFound:
                pass

    def pool(self, network_id: str) -> dict[str, Any]:
        with self._lock:
            return self._store.get(KIND, network_id)

    def allocate(self, network_id: str, owner: str, requested: str | None = None, *, label: str = "") -> str:
        """An address for owner: `requested` (Conflict if taken) or the next free one (Unavailable if none)."""
        with self._lock:
            doc = self._store.get(KIND, network_id)
            subnet = ipaddress.ip_network(doc["subnet"])
            allocated: dict[str, str] = doc["allocated"]
            if requested:
                ip = parse_ip6(requested) if subnet.version == 6 else parse_ip(requested)
                if ip not in subnet:
                    raise InvalidParameter(f"no matching subnet for address {requested}")
                reserved = (
                    (subnet.network_address,)
                    if subnet.version == 6
                    else (subnet.network_address, subnet.broadcast_address)
                )
                if ip in reserved and subnet.prefixlen < subnet.max_prefixlen - 1:
                    raise Conflict("Address already in use")  # libnetwork keeps them taken
                key = str(ip)
                if allocated.get(key) not in (None, owner):
                    raise Conflict("Address already in use")
            else:
                free = self._next_free(doc, subnet)
                if free is None:
                    raise SystemError_(
                        f"no available IPv{subnet.version} addresses on this network's address pools: "
                        f"{label or network_id}"
                    )
                key = free
            allocated[key] = owner
            doc["last"] = key
            self._store.put(KIND, network_id, doc)
            return key

    @staticmethod
    def _next_free(
        doc: dict[str, Any], subnet: ipaddress.IPv4Network | ipaddress.IPv6Network
    ) -> str | None:
        return next_free(doc, subnet)

    def release(self, network_id: str, ip: str, owner: str | None = None) -> None:
        """Give an address back; releasing one not held (or held by another owner) is a no-op."""
        with self._lock:
            try:
                doc = self._store.get(KIND, network_id)
            except NotFound:
                return
            held = doc["allocated"].get(ip)
            if held is None or held == "gateway" or (owner is not None and held != owner):
                return
            del doc["allocated"][ip]
            self._store.put(KIND, network_id, doc)

    def allocated(self, network_id: str) -> dict[str, str]:
        with self._lock:
            return dict(self._store.get(KIND, network_id)["allocated"])


def next_free(
    doc: dict[str, Any], subnet: ipaddress.IPv4Network | ipaddress.IPv6Network
) -> str | None:
    """The next free address of an allocation document ({"range", "allocated", "last"}) after its last one,
    wrapping (the cluster IPAM uses it too). IPv4 keeps the network and broadcast
    addresses out, IPv6 the subnet-router anycast address (there is no broadcast)."""
    rng = ipaddress.ip_network(doc["range"])
    allocated = doc["allocated"]
    v6 = subnet.version == 6
    small = subnet.max_prefixlen - 1  # /31 and /127: every address usable

    def bounds(n: ipaddress.IPv4Network | ipaddress.IPv6Network) -> tuple[int, int]:
        lo, hi = int(n.network_address), int(n.broadcast_address)
        if n.prefixlen < small:
            lo, hi = lo + 1, (hi if v6 else hi - 1)
        return lo, hi

    (first, last), (lo_ok, hi_ok) = bounds(rng), bounds(subnet)
    first, last = max(first, lo_ok), min(last, hi_ok)
    if first > last:
        return None
    span = last - first + 1
    try:
        start = int(ipaddress.ip_address(doc.get("last") or "")) + 1
    except ValueError:
        start = first
    if not first <= start <= last:
        start = first
    addr = ipaddress.IPv6Address if v6 else ipaddress.IPv4Address
    for i in range(min(span, len(allocated) + 1)):  # at most one more than are taken
        cand = str(addr(first + (start - first + i) % span))
        if cand not in allocated:
            return cand
    return None
