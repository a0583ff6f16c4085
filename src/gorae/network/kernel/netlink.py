"""Kernel links through pyroute2: the Linux bridge of a network, a container's veth pair, its addresses and
routes inside the container's namespace, and the per-interface sysctls docker sets.

All functions are synchronous and short; the service calls them through `asyncio.to_thread`. Work inside a
container's namespace opens its own IPRoute from a thread that has entered that namespace (see `netns`).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import os
import secrets
import socket
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from gorae.network.kernel import netns, rtnl

IFNAMSIZ = 15
P = ParamSpec("P")
R = TypeVar("R")


def _off_loop(fn: Callable[P, R]) -> Callable[P, R]:
    """pyroute2's synchronous IPRoute runs its own asyncio loop: never use it on a thread whose loop runs."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return fn(*args, **kwargs)
        return netns.run_in_thread(lambda: fn(*args, **kwargs))

    return wrapper


def _write_sysctl(path: str, value: str) -> None:
    try:
        with open(path, "w", encoding="ascii") as f:
            f.write(value)
    except OSError:
        pass


def link_index(ipr: IPRoute, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return int(found[0]) if found else None


@_off_loop
def link_kind(name: str) -> str | None:
    """The kind of the link `name` ("bridge", "veth", "" for a physical device, ...); None if there is none."""
    with IPRoute() as ipr:
        idx = link_index(ipr, name)
        if idx is None:
            return None
        (link,) = ipr.get_links(idx)
        info = link.get_attr("IFLA_LINKINFO")
        kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
        return str(kind or "")


def valid_interface_name(name: str) -> bool:
    """What the kernel takes as an interface name (dev_valid_name): 1-15 bytes, not `.`/`..`, no `/`, `:` or
    whitespace."""
    raw = name.encode("utf-8", "surrogateescape")
    return (
        0 < len(raw) <= IFNAMSIZ
        and name not in (".", "..")
        and not any(c in name for c in "/:")
        and not any(c.isspace() for c in name)
    )


@_off_loop
def link_exists(name: str) -> bool:
    with IPRoute() as ipr:
        return link_index(ipr, name) is not None


@_off_loop
def list_links() -> list[str]:
    with IPRoute() as ipr:
        return [str(link.get_attr("IFLA_IFNAME")) for link in ipr.get_links()]


@_off_loop
def host_ipv4_networks() -> list[ipaddress.IPv4Network]:
    """Destinations of the host's IPv4 routes and networks of its addresses (for pool overlap checks)."""
    out: list[ipaddress.IPv4Network] = []
    with IPRoute() as ipr:
        for r in ipr.get_routes(family=2):
            dst = r.get_attr("RTA_DST")
            if dst and r["dst_len"] > 0:
                out.append(ipaddress.IPv4Network(f"{dst}/{r['dst_len']}", strict=False))
        for a in ipr.get_addr(family=2):
            addr = a.get_attr("IFA_ADDRESS")
            if addr and not addr.startswith("127."):
                out.append(ipaddress.IPv4Network(f"{addr}/{a['prefixlen']}", strict=False))
    return out


@_off_loop
def ensure_bridge(
    name: str,
    gateway: str,
    prefixlen: int,
    mtu: int = 1500,
    *,
    with_address: bool = True,
    ipv6: tuple[tuple[str, int], ...] = (),
) -> bool:
    """Create the bridge if missing (True when created), give it the gateway address (and the IPv6 gateway
    addresses of `ipv6`), bring it up, and set route_localnet (127.0.0.1 → container DNAT needs it on the
    outgoing interface) and forwarding."""
    created = False
    with IPRoute() as ipr:
        idx = link_index(ipr, name)
        if idx is None:
            ipr.link("add", ifname=name, kind="bridge", mtu=mtu)
            created = True
            idx = link_index(ipr, name)
            if idx is None:
                raise OSError(f"bridge {name} vanished after creation")
        if with_address:
            have = {(a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=idx, family=2)}
            if (gateway, prefixlen) not in have:
                try:
                    ipr.addr("add", index=idx, address=gateway, prefixlen=prefixlen)
                except NetlinkError as e:
                    if e.code != 17:  # EEXIST
                        raise
        for addr6, plen6 in ipv6:
            _write_sysctl(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6", "0")
            have6 = {(a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=idx, family=10)}
            if (addr6, plen6) not in have6:
                try:
                    ipr.addr("add", index=idx, address=addr6, prefixlen=plen6, flags=rtnl.IFA_F_NODAD)
                except NetlinkError as e:
                    if e.code != 17:  # EEXIST
                        raise
        ipr.link("set", index=idx, state="up")
    _write_sysctl(f"/proc/sys/net/ipv4/conf/{name}/route_localnet", "1")
    # forwarding of packets that arrive on the bridge (hairpin, outbound); replies from outside also need
    # the global ip_forward, which the service sets when configured to
    _write_sysctl(f"/proc/sys/net/ipv4/conf/{name}/forwarding", "1")
    return created


def delete_link(name: str) -> None:
    """Delete a link in the host namespace; a missing one is fine. Blocks for the kernel's RCU grace
    periods (~20 ms): callers off the hot path. Uses its own socket so it never holds up `rtnl.host()`."""
    with rtnl.Rtnl() as sock:
        sock.delete_link(name)


def random_veth_name(prefix: str = "veth") -> str:
    return (prefix + secrets.token_hex(8))[:IFNAMSIZ]


def mac_for_ip(ip: str) -> str:
    """docker's classic MAC: 02:42 followed by the four bytes of the IPv4 address."""
    b = ipaddress.IPv4Address(ip).packed
    return "02:42:" + ":".join(f"{x:02x}" for x in b)


@_off_loop
def plug_veth(
    *,
    bridge: str,
    host_name: str,
    netns_path: str,
    ifname: str,
    ip: str,
    prefixlen: int,
    mac: str,
    gateway: str | None,
    mtu: int = 1500,
    ns_rtnl: rtnl.Rtnl | None = None,
    ip6: str = "",
    prefixlen6: int = 0,
    gateway6: str | None = None,
) -> None:
    """Create a veth pair whose host side is enslaved to the bridge and up (hairpin on) and whose peer is
    born inside the namespace as `ifname` with its MAC; give it its address (and `ip6`), bring it up, and add
    the default routes via gateway (and `gateway6`) if given. `ns_rtnl`: a socket of that namespace (else one is opened there).
    Creating the peer in place (IFLA_NET_NS_FD) instead of moving it saves the move's RCU grace periods."""
    try:
        br = socket.if_nametoindex(bridge)
    except OSError:
        raise OSError(f"bridge {bridge} does not exist") from None
    fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        rtnl.host().add_veth(host_name, master=br, mtu=mtu, peer_name=ifname, peer_mac=mac, peer_netns_fd=fd)
    finally:
        os.close(fd)
    try:
        _write_sysctl(f"/sys/class/net/{host_name}/brport/hairpin_mode", "1")
        inner = ns_rtnl or netns.run_in_netns(netns_path, rtnl.Rtnl)
        try:
            idx = inner.index(ifname)
            inner.add_address(idx, ip, prefixlen)
            if ip6:  # the sandbox may have been made without IPv6 (a connect to an IPv6 network)
                netns.run_in_netns(netns_path, lambda: netns.set_ipv6(True, ifname, namespace_wide=False))
                inner.add_address(idx, ip6, prefixlen6)
            inner.set_up(idx)
            if gateway:
                inner.add_default_route(gateway, idx)
            if ip6 and gateway6:
                inner.add_default_route(gateway6, idx)
        finally:
            if inner is not ns_rtnl:
                inner.close()
    except BaseException:
        delete_link(host_name)
        raise


def delete_link_quietly(ipr: IPRoute, name: str) -> None:
    try:
        idx = link_index(ipr, name)
        if idx is not None:
            ipr.link("del", index=idx)
    except NetlinkError:
        pass


def set_lo_up(netns_path: str) -> None:
    def inside() -> None:
        with rtnl.Rtnl() as sock:
            sock.set_up(rtnl.LOOPBACK_INDEX)

    netns.run_in_netns(netns_path, inside)


@_off_loop
def links_in_netns(netns_path: str) -> list[dict[str, Any]]:
    """(name, addresses) of the links inside a namespace, for tests and diagnostics."""

    def inside() -> list[dict[str, Any]]:
        with IPRoute() as nipr:
            out = []
            for link in nipr.get_links():
                idx = link["index"]
                addrs = [
                    f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}"
                    for a in nipr.get_addr(index=idx, family=2)
                ]
                out.append({"name": link.get_attr("IFLA_IFNAME"), "addrs": addrs})
            return out

    return netns.run_in_netns(netns_path, inside)


@_off_loop
def delete_in_netns(netns_path: str, ifname: str) -> None:
    """Delete a link inside the namespace (its veth peer in the host goes with it)."""

    def inside() -> None:
        with IPRoute() as nipr:
            delete_link_quietly(nipr, ifname)

    netns.run_in_netns(netns_path, inside)
