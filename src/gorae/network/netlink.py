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
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from gorae.network import netns

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
    name: str, gateway: str, prefixlen: int, mtu: int = 1500, *, with_address: bool = True
) -> bool:
    """Create the bridge if missing (True when created), give it the gateway address, bring it up, and
    set route_localnet (127.0.0.1 → container DNAT needs it on the outgoing interface) and forwarding."""
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
        ipr.link("set", index=idx, state="up")
    _write_sysctl(f"/proc/sys/net/ipv4/conf/{name}/route_localnet", "1")
    # forwarding of packets that arrive on the bridge (hairpin, outbound); replies from outside also need
    # the global ip_forward, which the service sets when configured to
    _write_sysctl(f"/proc/sys/net/ipv4/conf/{name}/forwarding", "1")
    return created


@_off_loop
def delete_link(name: str) -> None:
    """Delete a link in the host namespace; a missing one is fine."""
    with IPRoute() as ipr:
        idx = link_index(ipr, name)
        if idx is not None:
            try:
                ipr.link("del", index=idx)
            except NetlinkError as e:
                if e.code != 19:  # ENODEV
                    raise


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
) -> None:
    """Create a veth pair, attach the host side to the bridge (hairpin on), move the peer into the
    namespace as `ifname` with its MAC and address, and add the default route via gateway if given."""
    peer_tmp = random_veth_name("gtmp")
    with IPRoute() as ipr:
        br = link_index(ipr, bridge)
        if br is None:
            raise OSError(f"bridge {bridge} does not exist")
        ipr.link("add", ifname=host_name, kind="veth", peer=peer_tmp, mtu=mtu)
        try:
            hidx = link_index(ipr, host_name)
            pidx = link_index(ipr, peer_tmp)
            assert hidx is not None and pidx is not None
            ipr.link("set", index=hidx, master=br)
            fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                ipr.link("set", index=pidx, net_ns_fd=fd)
            finally:
                os.close(fd)
            ipr.link("set", index=hidx, state="up")
        except BaseException:
            delete_link_quietly(ipr, host_name)
            raise
    _write_sysctl(f"/sys/class/net/{host_name}/brport/hairpin_mode", "1")

    def inside() -> None:
        with IPRoute() as nipr:
            lo = link_index(nipr, "lo")
            if lo is not None:
                nipr.link("set", index=lo, state="up")
            idx = link_index(nipr, peer_tmp)
            if idx is None:
                raise OSError(f"{peer_tmp} did not arrive in {netns_path}")
            nipr.link("set", index=idx, ifname=ifname, address=mac)
            nipr.addr("add", index=idx, address=ip, prefixlen=prefixlen)
            nipr.link("set", index=idx, state="up")
            if gateway:
                nipr.route("add", dst="0.0.0.0/0", gateway=gateway, oif=idx)

    try:
        netns.run_in_netns(netns_path, inside)
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


@_off_loop
def set_lo_up(netns_path: str) -> None:
    def inside() -> None:
        with IPRoute() as nipr:
            lo = link_index(nipr, "lo")
            if lo is not None:
                nipr.link("set", index=lo, state="up")

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
