"""A minimal rtnetlink client for the per-container hot path (veth create/delete, address, route, link up).

pyroute2 is kept for the rare operations (bridges, listings); these few messages are packed by hand so that
plugging a container costs a handful of syscalls and no event loop. A socket acts on the network namespace
it was *created* in, whichever thread uses it later: `host()` is one long-lived socket of the daemon's
namespace (serialised by a lock), and a socket created by a thread that entered a container's namespace
configures that namespace from any thread.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
import threading

NETLINK_ROUTE = 0
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR = 20
RTM_NEWROUTE = 24
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400

IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_FD = 1, 3, 4, 10, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST = 1, 2, 4
RTA_GATEWAY, RTA_OIF = 5, 4
IFF_UP = 0x1
LOOPBACK_INDEX = 1  # lo is ifindex 1 in every network namespace
AF_INET, AF_INET6 = socket.AF_INET, socket.AF_INET6
IFA_F_NODAD = 0x02  # no duplicate address detection: the address is usable at once (dockerd sets it too)
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 3, 0, 1

_IFINFO = struct.Struct("=BxHiII")  # family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBi")  # family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol, scope, type, flags
_HDR = struct.Struct("=IHHII")


def _attr(kind: int, data: bytes) -> bytes:
    n = 4 + len(data)
    return struct.pack("=HH", n, kind) + data + b"\0" * ((4 - n % 4) % 4)


def _str(kind: int, s: str) -> bytes:
    return _attr(kind, s.encode() + b"\0")


def _u32(kind: int, v: int) -> bytes:
    return _attr(kind, struct.pack("=I", v))


def _mac(s: str) -> bytes:
    return bytes(int(x, 16) for x in s.replace("-", ":").split(":"))


class Rtnl:
    """One NETLINK_ROUTE socket; requests are sent one at a time and wait for their ack."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.lock = threading.Lock()
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, msg_type: int, flags: int, body: bytes) -> list[tuple[int, bytes]]:
        """Send one request with NLM_F_ACK and return the (type, payload) replies before the ack;
        raise OSError(errno) on a netlink error."""
        replies: list[tuple[int, bytes]] = []
        with self.lock:
            self.seq += 1
            seq = self.seq
            self.sock.send(
                _HDR.pack(_HDR.size + len(body), msg_type, flags | NLM_F_REQUEST | NLM_F_ACK, seq, 0) + body
            )
            while True:
                data = self.sock.recv(65536)
                off = 0
                while off + _HDR.size <= len(data):
                    length, typ, _fl, rseq, _pid = _HDR.unpack_from(data, off)
                    if rseq == seq:
                        if typ == NLMSG_ERROR:
                            (err,) = struct.unpack_from("=i", data, off + _HDR.size)
                            if err:
                                raise OSError(-err, os.strerror(-err))
                            return replies
                        replies.append((typ, data[off + _HDR.size : off + length]))
                    off += (length + 3) & ~3
                    if length == 0:
                        break

    # ---- links -----------------------------------------------------------------------------------

    def add_veth(
        self,
        name: str,
        *,
        master: int | None,
        mtu: int,
        peer_name: str,
        peer_mac: str,
        peer_netns_fd: int,
        up: bool = True,
    ) -> None:
        """A veth pair whose peer is born in another namespace (no move: that costs RCU grace periods)."""
        peer = (
            _IFINFO.pack(0, 0, 0, 0, 0)
            + _str(IFLA_IFNAME, peer_name)
            + _attr(IFLA_ADDRESS, _mac(peer_mac))
            + _u32(IFLA_MTU, mtu)
            + _u32(IFLA_NET_NS_FD, peer_netns_fd)
        )
        linkinfo = _str(IFLA_INFO_KIND, "veth") + _attr(IFLA_INFO_DATA, _attr(VETH_INFO_PEER, peer))
        body = (
            _IFINFO.pack(0, 0, 0, IFF_UP if up else 0, IFF_UP if up else 0)
            + _str(IFLA_IFNAME, name)
            + _u32(IFLA_MTU, mtu)
            + (_u32(IFLA_MASTER, master) if master else b"")
            + _attr(IFLA_LINKINFO, linkinfo)
        )
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body)

    def delete_link(self, name: str) -> bool:
        """Delete a link by name; False when it does not exist."""
        try:
            self.request(RTM_DELLINK, 0, _IFINFO.pack(0, 0, 0, 0, 0) + _str(IFLA_IFNAME, name))
        except OSError as e:
            if e.errno == errno.ENODEV:
                return False
            raise
        return True

    def index(self, name: str) -> int:
        """ifindex of a link by name in this socket's namespace (OSError ENODEV when missing)."""
        for typ, payload in self.request(
            RTM_GETLINK, 0, _IFINFO.pack(0, 0, 0, 0, 0) + _str(IFLA_IFNAME, name)
        ):
            if typ == RTM_NEWLINK:
                return int(_IFINFO.unpack_from(payload)[2])
        raise OSError(errno.ENODEV, f"no link {name}")

    def set_up(self, index: int) -> None:
        self.request(RTM_NEWLINK, 0, _IFINFO.pack(0, 0, index, IFF_UP, IFF_UP))

    # ---- addresses and routes --------------------------------------------------------------------

    def add_address(self, index: int, ip: str, prefixlen: int) -> None:
        """An IPv4 address (with its broadcast) or an IPv6 one (without duplicate address detection)."""
        iface = ipaddress.ip_interface(f"{ip}/{prefixlen}")
        packed = iface.ip.packed
        if iface.version == 6:
            body = _IFADDR.pack(AF_INET6, prefixlen, IFA_F_NODAD, 0, index) + _attr(IFA_ADDRESS, packed)
            self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body)
            return
        body = (
            _IFADDR.pack(AF_INET, prefixlen, 0, 0, index)
            + _attr(IFA_LOCAL, packed)
            + _attr(IFA_ADDRESS, packed)
        )
        if prefixlen < 31:
            body += _attr(IFA_BROADCAST, iface.network.broadcast_address.packed)
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body)

    def add_default_route(self, gateway: str, oif: int) -> None:
        gw = ipaddress.ip_address(gateway)
        family = AF_INET6 if gw.version == 6 else AF_INET
        body = (
            _RTMSG.pack(family, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0)
            + _attr(RTA_GATEWAY, gw.packed)
            + _u32(RTA_OIF, oif)
        )
        self.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, body)


_host: Rtnl | None = None
_host_lock = threading.Lock()


def host() -> Rtnl:
    """The daemon's long-lived socket in its own (host) namespace. Only call from threads that never
    entered another namespace (the daemon's loop and executor threads; netns work uses throwaway threads)."""
    global _host
    if _host is None:
        with _host_lock:
            if _host is None:
                _host = Rtnl()
    return _host
