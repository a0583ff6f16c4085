"""The embedded DNS server: 127.0.0.11:53 (UDP and TCP) inside each container namespace on a user network.

Its sockets are opened by a thread that entered the container's namespace (a socket keeps the namespace it
was created in) and then served from the daemon's asyncio loop. A query for a name the resolver knows
(container names, aliases, network aliases on the container's networks) is answered here; any other query
is relayed unchanged to the upstream servers from the daemon's own namespace (so the host's loopback
resolvers work too).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Callable

from gorae.network.dns import dnsmsg
from gorae.network.kernel import netns

log = logging.getLogger(__name__)

DNS_IP = "127.0.0.11"
DNS_PORT = 53
UPSTREAM_TIMEOUT = 3.0

# resolve(name) -> addresses (None: not ours, forward it); reverse(ip) -> name or None
Resolver = Callable[[str], list[str] | None]
Reverse = Callable[[str], str | None]


def open_sockets(
    netns_path: str, ip: str = DNS_IP, port: int = DNS_PORT
) -> tuple[socket.socket, socket.socket]:
    """UDP and listening TCP sockets bound to ip:port inside the namespace."""

    def inside() -> tuple[socket.socket, socket.socket]:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            udp.bind((ip, port))
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind((ip, port))
            tcp.listen(64)
        except BaseException:
            udp.close()
            tcp.close()
            raise
        udp.setblocking(False)
        tcp.setblocking(False)
        return udp, tcp

    return netns.run_in_netns(netns_path, inside)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: EmbeddedDns) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        task = asyncio.ensure_future(self._answer(data, addr))
        self.server._tasks.add(task)
        task.add_done_callback(self.server._tasks.discard)

    async def _answer(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = await self.server.handle(data, tcp=False)
        if reply is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)


class EmbeddedDns:
    """One container's DNS server. `start()` opens its sockets in the namespace; `close()` stops it."""

    def __init__(
        self, netns_path: str, resolve: Resolver, reverse: Reverse, upstreams: Callable[[], list[str]]
    ) -> None:
        self.netns_path = netns_path
        self.resolve = resolve
        self.reverse = reverse
        self.upstreams = upstreams
        self._udp_transport: asyncio.DatagramTransport | None = None
        self._tcp_server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Future[None]] = set()

    async def start(self) -> None:
        udp, tcp = await asyncio.to_thread(open_sockets, self.netns_path)
        loop = asyncio.get_running_loop()
        try:
            self._udp_transport, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), sock=udp)
            self._tcp_server = await asyncio.start_server(self._tcp_client, sock=tcp)
        except BaseException:
            udp.close()
            tcp.close()
            raise

    async def close(self) -> None:
        if self._udp_transport is not None:
            self._udp_transport.close()
            self._udp_transport = None
        if self._tcp_server is not None:
            self._tcp_server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._tcp_server.wait_closed(), 1)
            self._tcp_server = None
        for t in list(self._tasks):
            t.cancel()

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await asyncio.wait_for(reader.readexactly(2), 10)
                (n,) = struct.unpack("!H", head)
                data = await asyncio.wait_for(reader.readexactly(n), 10)
                reply = await self.handle(data, tcp=True)
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    async def handle(self, data: bytes, *, tcp: bool) -> bytes | None:
        try:
            q = dnsmsg.parse_query(data)
        except dnsmsg.DnsFormatError:
            return dnsmsg.error_for(data, dnsmsg.RCODE_FORMERR)
        if q.qclass == dnsmsg.CLASS_IN:
            if q.qtype in (dnsmsg.TYPE_A, dnsmsg.TYPE_AAAA):
                addrs = self.resolve(q.name)
                if addrs is not None:
                    if q.qtype == dnsmsg.TYPE_A:
                        return dnsmsg.answer_a(q, [a for a in addrs if ":" not in a])
                    return dnsmsg.answer_aaaa(q, [a for a in addrs if ":" in a])
            elif q.qtype == dnsmsg.TYPE_PTR and q.name.endswith(".in-addr.arpa"):
                parts = q.name[: -len(".in-addr.arpa")].split(".")
                if len(parts) == 4:
                    target = self.reverse(".".join(reversed(parts)))
                    if target is not None:
                        return dnsmsg.answer_ptr(q, target)
        return await self.forward(data, tcp=tcp) or dnsmsg.answer_empty(q, dnsmsg.RCODE_SERVFAIL)

    async def forward(self, data: bytes, *, tcp: bool) -> bytes | None:
        for server in self.upstreams():
            try:
                if tcp:
                    return await asyncio.wait_for(_forward_tcp(server, data), UPSTREAM_TIMEOUT)
                return await asyncio.wait_for(_forward_udp(server, data), UPSTREAM_TIMEOUT)
            except (OSError, TimeoutError, asyncio.IncompleteReadError) as e:
                log.debug("dns upstream %s failed: %s", server, e)
        return None


async def _forward_udp(server: str, data: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        await loop.sock_connect(s, (server, DNS_PORT))
        await loop.sock_sendall(s, data)
        while True:
            reply = await loop.sock_recv(s, 65535)
            if reply[:2] == data[:2]:
                return reply


async def _forward_tcp(server: str, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(server, DNS_PORT)
    try:
        writer.write(struct.pack("!H", len(data)) + data)
        await writer.drain()
        (n,) = struct.unpack("!H", await reader.readexactly(2))
        return await reader.readexactly(n)
    finally:
        writer.close()
