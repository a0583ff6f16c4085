"""The DNS message codec and the embedded server's answer logic (no sockets: `handle` directly)."""

from __future__ import annotations

import asyncio
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from gorae.network.dns import dnsmsg
from gorae.network.dns.dnsserver import EmbeddedDns


def _server(upstreams: list[str] | None = None) -> EmbeddedDns:
    table = {"db": ["10.213.1.2"], "web": ["10.213.1.3", "10.213.1.4"]}
    return EmbeddedDns(
        "/nonexistent",
        table.get,
        lambda ip: "db.appnet" if ip == "10.213.1.2" else None,
        lambda: upstreams or [],
    )


def test_a_answers_and_empty_aaaa() -> None:
    srv = _server()
    reply = asyncio.run(srv.handle(dnsmsg.build_query(7, "WEB."), tcp=False))
    assert reply is not None
    assert reply[:2] == b"\x00\x07"
    assert dnsmsg.parse_a_answers(reply) == (0, ["10.213.1.3", "10.213.1.4"])
    reply = asyncio.run(srv.handle(dnsmsg.build_query(8, "db", dnsmsg.TYPE_AAAA), tcp=False))
    assert reply is not None and dnsmsg.parse_a_answers(reply) == (0, [])


def test_ptr_answer() -> None:
    reply = asyncio.run(
        _server().handle(dnsmsg.build_query(9, "2.1.213.10.in-addr.arpa", dnsmsg.TYPE_PTR), tcp=False)
    )
    assert reply is not None and b"\x02db\x06appnet\x00" in reply


def test_unknown_name_without_upstream_is_servfail() -> None:
    reply = asyncio.run(_server().handle(dnsmsg.build_query(10, "example.invalid"), tcp=False))
    assert reply is not None and dnsmsg.parse_a_answers(reply)[0] == dnsmsg.RCODE_SERVFAIL


def test_garbage_gets_formerr_or_nothing() -> None:
    srv = _server()
    assert asyncio.run(srv.handle(b"\x01", tcp=False)) is None
    reply = asyncio.run(srv.handle(b"\x12\x34" + b"\xff" * 20, tcp=False))
    assert reply is not None and reply[:2] == b"\x12\x34" and reply[3] & 0xF == dnsmsg.RCODE_FORMERR


def test_compression_pointer_loop_is_rejected() -> None:
    msg = struct.pack("!HHHHHH", 1, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c" + b"\x00\x01\x00\x01"
    try:
        dnsmsg.parse_query(msg)
    except dnsmsg.DnsFormatError:
        return
    raise AssertionError("pointer loop accepted")


@settings(max_examples=300)
@given(st.binary(max_size=80))
def test_parser_never_crashes(data: bytes) -> None:
    try:
        dnsmsg.parse_query(data)
    except dnsmsg.DnsFormatError:
        pass
