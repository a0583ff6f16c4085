"""The chunked-body decoder against h11 as an oracle: the same payload, the same leftover, the same bodies
refused, for any framing (chunk sizes, extensions, spaces, trailers, junk) split across reads anywhere."""

from __future__ import annotations

import h11
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gorae.httpserver.chunked import ChunkedDecoder, ChunkedError

HEAD = b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"


def oracle(body: bytes) -> tuple[str, bytes, bytes]:
    """h11's verdict on `body`: ("ok", payload, leftover), ("bad", b"", b"") or ("incomplete", payload, b"")."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(HEAD + body)
    payload = bytearray()
    try:
        assert isinstance(conn.next_event(), h11.Request)
        while True:
            event = conn.next_event()
            if isinstance(event, h11.Data):
                payload += event.data
            elif isinstance(event, h11.EndOfMessage):
                return "ok", bytes(payload), conn.trailing_data[0]
            else:
                return "incomplete", bytes(payload), b""
    except h11.RemoteProtocolError:
        return "bad", b"", b""


def decode(body: bytes, cuts: list[int]) -> tuple[str, bytes, bytes]:
    dec = ChunkedDecoder()
    payload = bytearray()
    points = sorted({c % (len(body) + 1) for c in cuts} | {0, len(body)})
    try:
        for a, b in zip(points, points[1:], strict=False):
            for view in dec.feed(body[a:b]):
                payload += view
    except ChunkedError:
        return "bad", b"", b""
    if dec.done:
        return "ok", bytes(payload), dec.leftover
    return "incomplete", bytes(payload), b""


exts = st.sampled_from(
    [b"", b";a=b", b";x", b'; q="1"', b";\r", b";\n", b";", b" ", b"\t", b" ;a", b";a\x00"]
)
sizes = st.sampled_from(["{:x}", "{:X}", "{:04x}", "0{:x}", "{:x}g", "+{:x}", "{:021x}", " {:x}", "{:x}z"])
trailers = st.sampled_from(
    [
        b"\r\n",
        b"\n",
        b"X-A: b\r\n\r\n",
        b"X-A: b\r\n folded\r\n\r\n",
        b" bad\r\n\r\n",
        b"X A: b\r\n\r\n",
        b"X-A: b\n\n",
        b"Content-Length: zz\r\n\r\n",
        b"X-A:\r\n\r\n",
        b"\rX-A: b\r\n\r\n",
        b"",
        b"\r",
    ]
)
footers = st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r", b"", b"xx", b"\r\r"])


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    out = bytearray()
    for data in draw(st.lists(st.binary(min_size=1, max_size=40), max_size=5)):
        out += draw(sizes).format(len(data)).encode() + draw(exts) + b"\r\n" + data + draw(footers)
    if draw(st.booleans()):
        out += b"0" + draw(exts) + b"\r\n" + draw(trailers)
    out += draw(st.sampled_from([b"", b"GET / HTTP/1.1\r\n\r\n", b"junk"]))
    if draw(st.booleans()):
        at = draw(st.integers(0, len(out)))
        out[at:at] = draw(st.binary(max_size=4))
    return bytes(out)


@settings(max_examples=1500, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies(), cuts=st.lists(st.integers(0, 400), max_size=8))
def test_decoder_agrees_with_h11(body: bytes, cuts: list[int]) -> None:
    assert decode(body, cuts) == oracle(body)


@settings(max_examples=300, deadline=None, database=None)
@given(body=st.binary(max_size=60), cuts=st.lists(st.integers(0, 60), max_size=5))
def test_decoder_agrees_with_h11_on_noise(body: bytes, cuts: list[int]) -> None:
    assert decode(body, cuts) == oracle(body)


def test_payload_is_views_of_the_input() -> None:
    dec = ChunkedDecoder()
    data = b"5\r\nhello\r\n3;x=y\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n"
    views = dec.feed(data)
    assert [bytes(v) for v in views] == [b"hello", b"abc"]
    assert all(v.obj is data for v in views)
    assert dec.done and dec.leftover == b"GET / HTTP/1.1\r\n\r\n"


def test_one_byte_at_a_time() -> None:
    dec = ChunkedDecoder()
    data = b"a\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\nrest"
    got = bytearray()
    for i in range(len(data)):
        for v in dec.feed(data[i : i + 1]):
            got += v
    assert bytes(got) == b"0123456789" and dec.done and dec.leftover == b"rest"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"5\r\nhelloXX", "malformed chunk footer"),
        (b"zz\r\n", "illegal chunk header"),
        (b"1" * 100, "chunk size line too long"),
        (b"0\r\n" + b"X-A: b\r\n" * 20, "trailer section too long"),
    ],
)
def test_refusals(data: bytes, message: str) -> None:
    with pytest.raises(ChunkedError, match=message):
        ChunkedDecoder(max_line=64).feed(data)
