"""The kernel side of one overlay network on one node, as Docker's overlay driver builds it: a network
namespace holding a bridge (`br0`, with the network's gateway address) and a VXLAN device (UDP 4789, the
network's VNI) enslaved to it; container endpoints are veth pairs with one end on that bridge and the
other in the container's namespace. The VXLAN device is created in the node's own namespace (so its UDP
socket listens there, on the node's address) and then moved into the overlay namespace.

Learning is off: remote endpoints are static entries — a neighbour entry (IP → MAC) that the VXLAN device
answers ARP with (`proxy`), and a forwarding entry (MAC → the remote node's address). The caller gives the
full list of remote endpoints each time (`set_peers`); entries not in it are removed.

All functions are synchronous (worker threads, never the event loop).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from gorae.network.kernel import netlink, netns, rtnl

VXLAN_PORT = 4789
BRIDGE = "br0"
VXLAN_IF = "vxlan0"
MTU = 1450  # 1500 minus the VXLAN encapsulation (50 bytes), as Docker's overlay
NUD_PERMANENT = 0x80
NTF_SELF = 0x02
EEXIST = 17
ENOENT = 2


@dataclass(frozen=True)
class Peer:
    """A remote endpoint: its overlay address, MAC, and the address of the node (VTEP) that holds it."""

    ip: str
    mac: str
    vtep: str


def temp_vxlan_name(vni: int) -> str:
    """The VXLAN device's name while it is still in the node's namespace (Docker's vx-<vni>-<id>)."""
    return f"vx-{vni:06x}-{os.getpid() % 100000:05d}"[: netlink.IFNAMSIZ]


def create(path: str, vni: int, gateway: str, prefixlen: int, local_addr: str | None) -> None:
    """The overlay namespace at `path` with br0 (gateway/prefixlen) and vxlan0 (VNI `vni`); idempotent: an
    existing namespace is completed, not recreated. On failure nothing is left behind."""
    created = not netns.exists(path)
    if created:
        netns.create(path)
    try:
        netns.run_in_netns(path, lambda: _bridge(gateway, prefixlen))
        if not _has_link(path, VXLAN_IF):
            _vxlan(path, vni, local_addr)
    except BaseException:
        if created:
            delete(path)
        raise


def _bridge(gateway: str, prefixlen: int) -> None:
    with IPRoute() as ipr:
        idx = netlink.link_index(ipr, BRIDGE)
        if idx is None:
            ipr.link("add", ifname=BRIDGE, kind="bridge", mtu=MTU)
            idx = netlink.link_index(ipr, BRIDGE)
            assert idx is not None
        if gateway:
            try:
                ipr.addr("add", index=idx, address=gateway, prefixlen=prefixlen)
            except NetlinkError as e:
                if e.code != EEXIST:
                    raise
        ipr.link("set", index=idx, state="up")


def _has_link(path: str, name: str) -> bool:
    def inside() -> bool:
        with IPRoute() as ipr:
            return netlink.link_index(ipr, name) is not None

    return netns.run_in_netns(path, inside)


def _vxlan(path: str, vni: int, local_addr: str | None) -> None:
    tmp = temp_vxlan_name(vni)

    def in_node() -> None:
        with IPRoute() as ipr:
            netlink.delete_link_quietly(ipr, tmp)
            kw: dict[str, object] = {}
            if local_addr:
                kw["vxlan_local"] = local_addr
            try:
                ipr.link(
                    "add",
                    ifname=tmp,
                    kind="vxlan",
                    vxlan_id=vni,
                    vxlan_port=VXLAN_PORT,
                    vxlan_learning=0,
                    vxlan_proxy=1,
                    vxlan_l2miss=0,
                    vxlan_l3miss=0,
                    mtu=MTU,
                    **kw,
                )
            except NetlinkError as e:
                if e.code == EEXIST:
                    raise OSError(
                        f"a VXLAN device with VNI {vni} on port {VXLAN_PORT} already exists on this node"
                    ) from e
                raise
            idx = netlink.link_index(ipr, tmp)
            assert idx is not None
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                ipr.link("set", index=idx, net_ns_fd=fd)
            except BaseException:
                netlink.delete_link_quietly(ipr, tmp)
                raise
            finally:
                os.close(fd)

    netns.run_in_thread(in_node)

    def in_overlay() -> None:
        with IPRoute() as ipr:
            idx = netlink.link_index(ipr, tmp)
            br = netlink.link_index(ipr, BRIDGE)
            assert idx is not None and br is not None
            ipr.link("set", index=idx, ifname=VXLAN_IF)
            ipr.link("set", index=idx, master=br)
            ipr.link("set", index=idx, state="up")

    netns.run_in_netns(path, in_overlay)


def delete(path: str) -> None:
    """Remove the overlay namespace (its bridge, VXLAN device and the host ends of veths go with it)."""
    if netns.exists(path):
        try:
            netns.run_in_netns(path, _delete_links)
        except OSError:
            pass
    netns.delete(path)


def _delete_links() -> None:
    with IPRoute() as ipr:
        for name in (VXLAN_IF, BRIDGE):
            netlink.delete_link_quietly(ipr, name)


def plug(
    path: str,
    *,
    host_name: str,
    container_netns: str,
    ifname: str,
    ip: str,
    prefixlen: int,
    mac: str,
    ns_rtnl: rtnl.Rtnl | None = None,
    gateway: str | None = None,
) -> None:
    """A veth pair: `host_name` on br0 inside the overlay namespace, `ifname` in the container's namespace
    with its address and MAC, and a default route via `gateway` when given (br0's address: egress through
    the overlay namespace, see add_egress)."""

    def in_overlay() -> None:
        br = socket.if_nametoindex(BRIDGE)
        fd = os.open(container_netns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            with rtnl.Rtnl() as sock:
                sock.add_veth(host_name, master=br, mtu=MTU, peer_name=ifname, peer_mac=mac, peer_netns_fd=fd)
        finally:
            os.close(fd)

    netns.run_in_netns(path, in_overlay)
    try:
        inner = ns_rtnl or netns.run_in_netns(container_netns, rtnl.Rtnl)
        try:
            idx = inner.index(ifname)
            inner.add_address(idx, ip, prefixlen)
            inner.set_up(idx)
            if gateway:
                inner.add_default_route(gateway, idx)
        finally:
            if inner is not ns_rtnl:
                inner.close()
    except BaseException:
        unplug(path, host_name)
        raise


def unplug(path: str, host_name: str) -> None:
    """Delete the veth whose end `host_name` is in the overlay namespace (a missing one is fine)."""
    if not netns.exists(path):
        return

    def inside() -> None:
        with rtnl.Rtnl() as sock:
            sock.delete_link(host_name)

    netns.run_in_netns(path, inside)


def set_peers(path: str, peers: Iterable[Peer]) -> None:
    """Make vxlan0's static neighbour and forwarding entries exactly `peers`."""
    want = {p.ip: p for p in peers}

    def inside() -> None:
        with IPRoute() as ipr:
            idx = netlink.link_index(ipr, VXLAN_IF)
            if idx is None:
                raise OSError(f"overlay namespace {path} has no {VXLAN_IF}")
            have_neigh: dict[str, str] = {}
            for n in ipr.get_neighbours(family=socket.AF_INET, ifindex=idx):
                if n["state"] & NUD_PERMANENT:
                    have_neigh[str(n.get_attr("NDA_DST"))] = str(n.get_attr("NDA_LLADDR"))
            have_fdb: dict[str, str] = {}
            for n in ipr.fdb("dump", ifindex=idx):
                if n["ifindex"] != idx:
                    continue
                lladdr, dst = n.get_attr("NDA_LLADDR"), n.get_attr("NDA_DST")
                if lladdr and dst and lladdr != "00:00:00:00:00:00":
                    have_fdb[str(lladdr)] = str(dst)
            want_fdb = {p.mac: p.vtep for p in want.values()}
            for ip, mac in have_neigh.items():
                if ip not in want or want[ip].mac != mac:
                    _quiet(lambda ip=ip, mac=mac: ipr.neigh("del", ifindex=idx, dst=ip, lladdr=mac))
            for mac, dst in have_fdb.items():
                if want_fdb.get(mac) != dst:
                    _quiet(lambda mac=mac, dst=dst: ipr.fdb("del", ifindex=idx, lladdr=mac, dst=dst))
            for p in want.values():
                if have_fdb.get(p.mac) != p.vtep:
                    ipr.fdb("append", ifindex=idx, lladdr=p.mac, dst=p.vtep, state=NUD_PERMANENT)
                if have_neigh.get(p.ip) != p.mac:
                    ipr.neigh("replace", ifindex=idx, dst=p.ip, lladdr=p.mac, state=NUD_PERMANENT)

    netns.run_in_netns(path, inside)


def peers_of(path: str) -> list[Peer]:
    """The static entries of vxlan0 as Peers (tests, diagnostics)."""

    def inside() -> list[Peer]:
        with IPRoute() as ipr:
            idx = netlink.link_index(ipr, VXLAN_IF)
            if idx is None:
                return []
            fdb = {
                str(n.get_attr("NDA_LLADDR")): str(n.get_attr("NDA_DST"))
                for n in ipr.fdb("dump", ifindex=idx)
                if n["ifindex"] == idx and n.get_attr("NDA_DST")
            }
            out = []
            for n in ipr.get_neighbours(family=socket.AF_INET, ifindex=idx):
                mac = str(n.get_attr("NDA_LLADDR"))
                if n["state"] & NUD_PERMANENT and mac in fdb:
                    out.append(Peer(str(n.get_attr("NDA_DST")), mac, fdb[mac]))
            return sorted(out, key=lambda p: p.ip)

    return netns.run_in_netns(path, inside)


def _quiet(fn: object) -> None:
    try:
        fn()  # type: ignore[operator]
    except NetlinkError as e:
        if e.code not in (ENOENT, 19):
            raise


# ---- egress: the overlay namespace's way out through the node (Docker's docker_gwbridge role) -------

EGRESS_IF = "eg0"
LINK_BASE = int(ipaddress.IPv4Address("169.254.0.0"))
METADATA = ipaddress.IPv4Address("169.254.169.254")


def egress_link(vni: int) -> tuple[str, str]:
    """The /30 between the node (.1) and the overlay namespace (.2) of VNI `vni`, in 169.254.0.0/16 (never
    the /30 of the cloud metadata address)."""
    idx = vni % 16384
    if ipaddress.IPv4Address(LINK_BASE + idx * 4 + 2) in ipaddress.IPv4Network(
        f"{METADATA}/30", strict=False
    ):
        idx = (idx + 1) % 16384
    base = LINK_BASE + idx * 4
    return str(ipaddress.IPv4Address(base + 1)), str(ipaddress.IPv4Address(base + 2))


def _iptables(path: str | None, args: list[str], check: bool = True) -> int:
    argv = (["nsenter", f"--net={path}"] if path else []) + ["iptables", "-w", *args]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if check and r.returncode:
        raise OSError(f"{' '.join(args)}: {r.stderr.strip()}")
    return r.returncode


def _host_masquerade(node_side: str, ns_side: str) -> list[str]:
    return ["-t", "nat", "-s", f"{ns_side}/32", "!", "-o", node_side, "-j", "MASQUERADE"]


def add_egress(path: str, vni: int, node_side: str) -> None:
    """A veth between the node (`node_side`, .1/30) and the overlay namespace (eg0, .2/30, its default
    route), MASQUERADE out of eg0 in the namespace and of the node's other interfaces in the node, so that
    containers on the network reach the outside through the overlay's gateway (idempotent)."""
    host_ip, ns_ip = egress_link(vni)
    if not _has_link(path, EGRESS_IF):
        netlink.delete_link(node_side)
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            with rtnl.Rtnl() as sock:
                sock.add_veth(
                    node_side, master=None, mtu=1500, peer_name=EGRESS_IF, peer_mac=netlink.mac_for_ip(ns_ip),
                    peer_netns_fd=fd,
                )  # fmt: skip
                idx = sock.index(node_side)
                sock.add_address(idx, host_ip, 30)
                sock.set_up(idx)
        finally:
            os.close(fd)

        def inside() -> None:
            with rtnl.Rtnl() as sock:
                idx = sock.index(EGRESS_IF)
                sock.add_address(idx, ns_ip, 30)
                sock.set_up(idx)
                sock.add_default_route(host_ip, idx)
            with open("/proc/sys/net/ipv4/ip_forward", "w", encoding="ascii") as f:
                f.write("1")

        netns.run_in_netns(path, inside)
    if _iptables(path, ["-t", "nat", "-C", "POSTROUTING", "-o", EGRESS_IF, "-j", "MASQUERADE"], check=False):
        _iptables(path, ["-t", "nat", "-A", "POSTROUTING", "-o", EGRESS_IF, "-j", "MASQUERADE"])
    rule = _host_masquerade(node_side, ns_ip)
    if _iptables(None, [rule[0], rule[1], "-C", "POSTROUTING", *rule[2:]], check=False):
        _iptables(None, [rule[0], rule[1], "-A", "POSTROUTING", *rule[2:]])


def remove_egress(vni: int, node_side: str) -> None:
    """The node's side of add_egress: its MASQUERADE rule and veth (the namespace's side goes with it)."""
    _, ns_ip = egress_link(vni)
    rule = _host_masquerade(node_side, ns_ip)
    while not _iptables(None, [rule[0], rule[1], "-D", "POSTROUTING", *rule[2:]], check=False):
        pass
    netlink.delete_link(node_side)
