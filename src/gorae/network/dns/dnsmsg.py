"""A minimal DNS message codec (RFC 1035): parse the question of a query, build answers for A records,
empty answers, and error responses. Enough for the embedded DNS server; everything else is forwarded raw.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

TYPE_A = 1
TYPE_PTR = 12
TYPE_AAAA = 28
CLASS_IN = 1
RCODE_NOERROR = 0
RCODE_FORMERR = 1
RCODE_SERVFAIL = 2
RCODE_NXDOMAIN = 3


class DnsFormatError(ValueError):
    pass


@dataclass(frozen=True)
class Question:
    id: int
    flags: int
    name: str  # lowercased, no trailing dot
    qtype: int
    qclass: int
    raw_question: bytes  # the question section as sent (echoed in answers)


def _read_name(msg: bytes, off: int) -> tuple[str, int]:
    labels: list[str] = []
    jumps = 0
    end = -1
    while True:
        if off >= len(msg):
            raise DnsFormatError("truncated name")
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if off + 1 >= len(msg):
                raise DnsFormatError("truncated pointer")
            if end < 0:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            jumps += 1
            if jumps > 20:
                raise DnsFormatError("pointer loop")
            continue
        if n & 0xC0:
            raise DnsFormatError("bad label type")
        off += 1
        if n == 0:
            break
        if off + n > len(msg):
            raise DnsFormatError("truncated label")
        labels.append(msg[off : off + n].decode("ascii", "replace"))
        off += n
        if sum(len(x) + 1 for x in labels) > 255:
            raise DnsFormatError("name too long")
    return ".".join(labels).lower(), (end if end >= 0 else off)


def parse_query(msg: bytes) -> Question:
    if len(msg) < 12:
        raise DnsFormatError("short header")
    qid, flags, qd, _an, _ns, _ar = struct.unpack("!HHHHHH", msg[:12])
    if flags & 0x8000:
        raise DnsFormatError("not a query")
    if qd != 1:
        raise DnsFormatError("expected one question")
    name, off = _read_name(msg, 12)
    if off + 4 > len(msg):
        raise DnsFormatError("truncated question")
    qtype, qclass = struct.unpack("!HH", msg[off : off + 4])
    return Question(qid, flags, name, qtype, qclass, msg[12 : off + 4])


def encode_name(name: str) -> bytes:
    out = b""
    for label in name.strip(".").split("."):
        if label:
            b = label.encode("ascii", "replace")[:63]
            out += bytes([len(b)]) + b
    return out + b"\x00"


def _header(q: Question, rcode: int, ancount: int) -> bytes:
    opcode = q.flags & 0x7800
    rd = q.flags & 0x0100
    flags = 0x8000 | opcode | rd | 0x0080 | (rcode & 0xF)  # QR, RD copied, RA (not AA: as dockerd's resolver)
    return struct.pack("!HHHHHH", q.id, flags, 1, ancount, 0, 0)


def answer_a(q: Question, addrs: list[str], ttl: int = 600) -> bytes:
    body = b""
    for a in addrs:
        body += struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, ttl, 4) + ipaddress.IPv4Address(a).packed
    return _header(q, RCODE_NOERROR, len(addrs)) + q.raw_question + body


def answer_aaaa(q: Question, addrs: list[str], ttl: int = 600) -> bytes:
    body = b""
    for a in addrs:
        body += struct.pack("!HHHIH", 0xC00C, TYPE_AAAA, CLASS_IN, ttl, 16) + ipaddress.IPv6Address(a).packed
    return _header(q, RCODE_NOERROR, len(addrs)) + q.raw_question + body


def answer_ptr(q: Question, target: str, ttl: int = 600) -> bytes:
    rdata = encode_name(target)
    body = struct.pack("!HHHIH", 0xC00C, TYPE_PTR, CLASS_IN, ttl, len(rdata)) + rdata
    return _header(q, RCODE_NOERROR, 1) + q.raw_question + body


def answer_empty(q: Question, rcode: int = RCODE_NOERROR) -> bytes:
    return _header(q, rcode, 0) + q.raw_question


def error_for(msg: bytes, rcode: int) -> bytes | None:
    """A bare error response echoing the id of an unparseable query (None if even that is impossible)."""
    if len(msg) < 2:
        return None
    return msg[:2] + struct.pack("!HHHHH", 0x8000 | 0x0080 | (rcode & 0xF), 0, 0, 0, 0)


def build_query(qid: int, name: str, qtype: int = TYPE_A) -> bytes:
    """A recursive query (tests, health checks)."""
    return (
        struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
        + encode_name(name)
        + struct.pack("!HH", qtype, CLASS_IN)
    )


def parse_a_answers(msg: bytes) -> tuple[int, list[str]]:
    """(rcode, A addresses) of a response (tests)."""
    _qid, flags, qd, an, _ns, _ar = struct.unpack("!HHHHHH", msg[:12])
    off = 12
    for _ in range(qd):
        _, off = _read_name(msg, off)
        off += 4
    out = []
    for _ in range(an):
        _, off = _read_name(msg, off)
        rtype, _rclass, _ttl, rdlen = struct.unpack("!HHIH", msg[off : off + 10])
        off += 10
        if rtype == TYPE_A and rdlen == 4:
            out.append(str(ipaddress.IPv4Address(msg[off : off + 4])))
        off += rdlen
    return flags & 0xF, out
