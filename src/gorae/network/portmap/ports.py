"""Published ports: the `-p` spec parser (go-connections' nat.ParsePortSpec, with its error texts), the
daemon-side validation of `HostConfig.PortBindings`, and the host port reserver.

The reserver is docker's port allocator: a host port is taken by binding a socket to it (never listening,
so it receives nothing: the kernel DNATs the traffic before local delivery). Holding the socket keeps other
programs off the port while the mapping exists; a port that cannot be bound is a clear error. Ephemeral
ports come from /proc/sys/net/ipv4/ip_local_port_range.
"""

from __future__ import annotations

import errno
import ipaddress
import random
import socket
import threading
from dataclasses import dataclass

from gorae.errors import InvalidParameter, SystemError_

PROTOS = ("tcp", "udp", "sctp")


@dataclass(frozen=True)
class PortMapping:
    """One container port and the host binding asked for ("" host port = ephemeral; "a-b" = a range)."""

    port: str  # "80/tcp"
    host_ip: str
    host_port: str


def split_proto_port(raw: str) -> tuple[str, str]:
    """("tcp", "80") from "80" / "80/tcp" (nat.SplitProtoPort)."""
    parts = raw.split("/")
    if len(raw) == 0 or len(parts) == 0 or len(parts[0]) == 0:
        return "", ""
    if len(parts) == 1:
        return "tcp", raw
    if len(parts[1]) == 0:
        return "tcp", parts[0]
    return parts[1], parts[0]


def _parse_uint16(s: str) -> int:
    if not s or not s.isascii() or not s.isdigit():
        raise ValueError(s)
    v = int(s)
    if v > 65535:
        raise ValueError(s)
    return v


def parse_port_range(ports: str) -> tuple[int, int]:
    """(start, end) of "80" or "8000-8010" (nat.ParsePortRange); ValueError on anything else."""
    if ports == "":
        raise ValueError("empty string specified for ports")
    if "-" not in ports:
        v = _parse_uint16(ports)
        return v, v
    parts = ports.split("-")
    start = _parse_uint16(parts[0])
    end = _parse_uint16(parts[1])
    if end < start:
        raise ValueError("invalid range specified for port: " + ports)
    return start, end


def _split_parts(raw: str) -> tuple[str, str, str]:
    parts = raw.split(":")
    n = len(parts)
    if n == 1:
        return "", "", parts[0]
    if n == 2:
        return "", parts[0], parts[1]
    if n == 3:
        return parts[0], parts[1], parts[2]
    return ":".join(parts[: n - 2]), parts[n - 2], parts[n - 1]


def _valid_ip(ip: str) -> bool:
    try:
        ipaddress.ip_address(ip)
        return True
    except ValueError:
        return False


def parse_port_spec(raw: str) -> list[PortMapping]:
    """One `-p` argument → its mappings. Forms: `[ip:][hostPort:]containerPort[/proto]`, ranges, `[v6]:h:c`."""
    ip, host_port, container_port = _split_parts(raw)
    proto, container_port = split_proto_port(container_port)
    if ip.startswith("["):
        if not ip.endswith("]"):
            raise InvalidParameter(f"invalid IP address {ip}: missing ']' in address")
        ip = ip[1:-1]
    if ip and not _valid_ip(ip):
        raise InvalidParameter("invalid IP address: " + ip)
    if container_port == "":
        raise InvalidParameter(f"no port specified: {raw}<empty>")
    try:
        start, end = parse_port_range(container_port)
    except ValueError:
        raise InvalidParameter("invalid containerPort: " + container_port) from None
    hstart = hend = 0
    if host_port:
        try:
            hstart, hend = parse_port_range(host_port)
        except ValueError:
            raise InvalidParameter("invalid hostPort: " + host_port) from None
    if host_port and (end - start) != (hend - hstart) and end != start:
        raise InvalidParameter(
            f"invalid ranges specified for container and host Ports: {container_port} and {host_port}"
        )
    if proto.lower() not in PROTOS:
        raise InvalidParameter("invalid proto: " + proto)
    out = []
    for i in range(end - start + 1):
        hp = ""
        if host_port:
            hp = str(hstart + i)
            if start == end and hstart != hend:
                hp = f"{hstart}-{hend}"
        out.append(PortMapping(f"{start + i}/{proto.lower()}", ip, hp))
    return out


def parse_port_specs(specs: list[str]) -> tuple[dict[str, None], dict[str, list[dict[str, str]]]]:
    """(ExposedPorts, PortBindings) of several `-p` arguments, as the API body carries them."""
    exposed: dict[str, None] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for spec in specs:
        for m in parse_port_spec(spec):
            exposed.setdefault(m.port, None)
            bindings.setdefault(m.port, []).append({"HostIp": m.host_ip, "HostPort": m.host_port})
    return exposed, bindings


def validate_port_bindings(port_bindings: dict[str, list[dict[str, str]] | None] | None) -> None:
    """The daemon's check of HostConfig.PortBindings (docker's "invalid port specification" texts)."""
    for key, bindings in (port_bindings or {}).items():
        proto, port = split_proto_port(key)
        try:
            parse_port_range(port)
        except ValueError:
            raise InvalidParameter(f'invalid port specification: "{port}"') from None
        if proto not in PROTOS:
            raise InvalidParameter(f'invalid port specification: "{key}"')
        for b in bindings or []:
            hp = (b or {}).get("HostPort") or ""
            if hp:
                try:
                    parse_port_range(hp)
                except ValueError:
                    raise InvalidParameter(f'invalid port specification: "{hp}"') from None
            hip = (b or {}).get("HostIp") or ""
            if hip and not _valid_ip(hip):
                raise InvalidParameter(f"invalid IP address: {hip}")


def ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as f:
            lo, hi = f.read().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return 49153, 65535


_SOCK_TYPES = {"tcp": socket.SOCK_STREAM, "udp": socket.SOCK_DGRAM, "sctp": socket.SOCK_STREAM}


class PortReserver:
    """Holds one bound socket per (proto, host ip, host port) in use by a mapping."""

    def __init__(self) -> None:
        self._held: dict[tuple[str, str, int], socket.socket | None] = {}
        self._lock = threading.Lock()

    def _bind(self, proto: str, ip: str, port: int) -> socket.socket:
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        proto_num = socket.IPPROTO_SCTP if proto == "sctp" else 0
        s = socket.socket(family, _SOCK_TYPES[proto], proto_num)
        try:
            s.bind((ip or "0.0.0.0", port))
        except BaseException:
            s.close()
            raise
        return s

    def _taken_by_us(self, proto: str, ip: str, port: int) -> bool:
        any_ip = ("", "0.0.0.0")
        for p, i, n in self._held:
            if p == proto and n == port and (i == ip or i in any_ip or ip in any_ip):
                return True
        return False

    def reserve(self, proto: str, ip: str, port: int) -> None:
        """Take exactly this port; a clear error when it is in use."""
        ip = "" if ip == "0.0.0.0" else ip
        shown = f"{ip or '0.0.0.0'}:{port}"
        with self._lock:
            if self._taken_by_us(proto, ip, port):
                raise SystemError_(f"Bind for {shown} failed: port is already allocated")
            try:
                self._held[(proto, ip, port)] = self._bind(proto, ip, port)
            except OSError as e:
                if e.errno == errno.EADDRINUSE:
                    raise SystemError_(f"Bind for {shown} failed: port is already allocated") from None
                if e.errno == errno.EADDRNOTAVAIL:
                    raise SystemError_(
                        f"Error starting userland proxy: listen {proto} {shown}: bind: cannot assign requested address"
                    ) from None
                raise SystemError_(f"Bind for {shown} failed: {e.strerror}") from None

    def reserve_any(self, proto: str, ip: str, lo: int, hi: int) -> int:
        """Take the first free port of [lo, hi], starting at a random place (ephemeral allocation)."""
        span = hi - lo + 1
        first = random.randrange(span)
        for i in range(span):
            port = lo + (first + i) % span
            try:
                self.reserve(proto, ip, port)
                return port
            except SystemError_:
                continue
        if lo == ephemeral_range()[0]:
            raise SystemError_("no available ports in the ephemeral range")
        raise SystemError_(f"Bind for {ip or '0.0.0.0'}:{lo}-{hi} failed: port is already allocated")

    def release(self, proto: str, ip: str, port: int) -> None:
        ip = "" if ip == "0.0.0.0" else ip
        with self._lock:
            s = self._held.pop((proto, ip, port), None)
        if s is not None:
            s.close()

    def held(self) -> list[tuple[str, str, int]]:
        with self._lock:
            return sorted(self._held)

    def close(self) -> None:
        with self._lock:
            socks = list(self._held.values())
            self._held.clear()
        for s in socks:
            if s is not None:
                s.close()
