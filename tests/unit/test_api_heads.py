"""The API server's fast path reads requests and writes heads exactly as h11 would (gorae.api.heads)."""

from __future__ import annotations

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gorae.api.heads import parse_simple_request, response_headers, simple_response_head
from gorae.api.http import Response, StreamResponse, json_response, raw_response


def h11_reads(data: bytes) -> tuple[h11.Request, bytes, bool] | None:
    """What h11 makes of `data`: (request, body, keep-alive), or None if it is not one whole request."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    try:
        event = conn.next_event()
        if not isinstance(event, h11.Request):
            return None
        body = b""
        while True:
            ev = conn.next_event()
            if isinstance(ev, h11.Data):
                body += ev.data
            elif isinstance(ev, h11.EndOfMessage):
                break
            else:
                return None
    except h11.RemoteProtocolError:
        return None
    if conn.trailing_data[0]:
        return None
    return event, body, conn.our_state is not h11.MUST_CLOSE and b"close" not in data.lower()


def h11_writes(resp: Response, method: bytes = b"GET") -> bytes:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(method + b" / HTTP/1.1\r\nHost: x\r\n\r\n")
    conn.next_event()
    conn.next_event()
    body_len = None if resp.status in (204, 304) else len(resp.body)
    headers = response_headers(resp, chunked=False, body_len=body_len)
    return (
        conn.send(h11.Response(status_code=resp.status, headers=headers, reason=_reason(resp.status))) or b""
    )


def _reason(status: int) -> bytes:
    from gorae.api.heads import reason

    return reason(status)


SIMPLE = [
    b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n",
    b"HEAD /_ping HTTP/1.1\r\nHost: docker\r\nUser-Agent: Docker-Client/28.2.2 (linux)\r\n\r\n",
    b"GET /v1.41/containers/json?all=1 HTTP/1.1\r\nHost: api.moby.localhost\r\nAccept-Encoding: gzip\r\n\r\n",
    b"POST /v1.45/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: 2\r\n\r\n{}",
    b"GET /x HTTP/1.1\r\nhost: x\r\nConnection: keep-alive\r\nX-Empty:\r\nX-Sp:  a  b \t\r\n\r\n",
    b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
]

NOT_SIMPLE = [
    b"GET /_ping HTTP/1.1\r\nHost: docker\r\n",  # incomplete
    b"GET /_ping HTTP/1.0\r\n\r\n",
    b"GET /_ping HTTP/1.1\r\n\r\n",  # no Host
    b"GET /_ping HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET /_ping HTTP/1.1\nHost: docker\n\n",  # bare LF: h11 accepts, we leave it to h11
    b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n",
    b"POST /a HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
    b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
    b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab",  # body still on its way
    b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n",  # pipelined
    b"GET /a HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
    b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /a HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n",
    b"GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
]


@pytest.mark.parametrize("data", SIMPLE)
def test_simple_requests_read_as_h11_reads_them(data: bytes) -> None:
    simple = parse_simple_request(data)
    assert simple is not None
    read = h11_reads(data)
    assert read is not None
    event, body, keep_alive = read
    assert (simple.method, simple.target, simple.body) == (event.method, event.target, body)
    assert simple.headers == list(event.headers)
    assert keep_alive


@pytest.mark.parametrize("data", NOT_SIMPLE)
def test_everything_else_goes_to_h11(data: bytes) -> None:
    assert parse_simple_request(data) is None


@settings(max_examples=300, deadline=None)
@given(
    method=st.sampled_from([b"GET", b"POST", b"HEAD", b"DELETE", b"G\x00T"]),
    target=st.binary(min_size=1, max_size=12),
    headers=st.lists(
        st.tuples(
            st.sampled_from([b"Host", b"host", b"X-A", b"Content-Length", b"Connection", b"Bad Name", b""]),
            st.binary(max_size=10),
        ),
        max_size=4,
    ),
    body=st.binary(max_size=4),
)
def test_never_accepts_what_h11_reads_differently(
    method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    data = method + b" " + target + b" HTTP/1.1\r\n"
    data += b"".join(name + b":" + value + b"\r\n" for name, value in headers) + b"\r\n" + body
    simple = parse_simple_request(data)
    if simple is None:
        return
    read = h11_reads(data)
    assert read is not None, data
    event, h11_body, keep_alive = read
    assert (simple.method, simple.target, simple.headers, simple.body) == (
        event.method,
        event.target,
        list(event.headers),
        h11_body,
    )
    assert keep_alive


RESPONSES = [
    raw_response(
        b"OK", "text/plain; charset=utf-8", headers=[("Builder-Version", "1"), ("Swarm", "inactive")]
    ),
    json_response([{"Id": "x"}]),
    json_response({"message": "no"}, status=404),
    Response(status=204),
    Response(status=304),
    Response(status=201, body=b"{}", content_type="application/json", headers=[("X-U", "é")]),
    Response(status=418, body=b"x"),
]


@pytest.mark.parametrize("resp", RESPONSES)
def test_plain_response_heads_are_h11s_bytes(resp: Response) -> None:
    assert simple_response_head(resp) == h11_writes(resp)


@pytest.mark.parametrize(
    "resp",
    [
        Response(status=101),
        Response(status=200, headers=[("Connection", "close")]),
        Response(status=200, headers=[("X-Bad", "a\r\nb")]),
        Response(status=200, headers=[("X-Bad", " padded")]),
        Response(status=200, headers=[("X-Ü", "name not a token")]),
        Response(status=200, content_type="bad\nvalue"),
        StreamResponse(chunks=None),  # type: ignore[arg-type]
    ],
)
def test_responses_h11_must_judge_are_left_to_it(resp: Response) -> None:
    assert simple_response_head(resp) is None
