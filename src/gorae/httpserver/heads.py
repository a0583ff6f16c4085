"""HTTP/1.1 message heads of the HTTP server, and its fast path for simple requests.

Owns the reason phrases, `Heads` (an application's fixed headers on every response plus `Date`, and the
header list of a response), and the two halves of the fast path that keeps h11 off the common request:
`parse_simple_request` (a whole, well-formed HTTP/1.1 request in one read, with no framing or connection
semantics h11 would have to decide) and `Heads.simple_response_head` (the exact bytes h11 would write for a
plain response). Both are deliberately narrow: whatever they do not accept, they answer None and the server
hands the bytes to h11. Must never accept a request or write a head that h11 would refuse or write
differently (tests/unit/test_api_heads.py compares them).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from email.utils import formatdate

from gorae.httpserver.message import Response, StreamResponse

_REASONS = {
    101: b"Switching Protocols",
    200: b"OK",
    201: b"Created",
    202: b"Accepted",
    204: b"No Content",
    206: b"Partial Content",
    304: b"Not Modified",
    400: b"Bad Request",
    401: b"Unauthorized",
    403: b"Forbidden",
    404: b"Not Found",
    405: b"Method Not Allowed",
    409: b"Conflict",
    413: b"Payload Too Large",
    416: b"Range Not Satisfiable",
    429: b"Too Many Requests",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    501: b"Not Implemented",
    503: b"Service Unavailable",
}


def reason(status: int) -> bytes:
    return _REASONS.get(status, b"")


_date_cache: tuple[int, bytes] = (0, b"")


def http_date() -> bytes:
    """The Date header's value, formatted once per second."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True).encode())
    return _date_cache[1]


# -- the fast path ------------------------------------------------------------------------------

# h11's grammar (h11/_abnf.py): token, request-target = 1*VCHAR, field-value without OWS at either end
_TOKEN = rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+"
_FIELD_VALUE = rb"(?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?"
_HEADER = rb"(" + _TOKEN + rb"):[ \t]*(" + _FIELD_VALUE + rb")[ \t]*\r\n"
_ANY_HEADER = _TOKEN + rb":[ \t]*" + _FIELD_VALUE + rb"[ \t]*\r\n"
_SIMPLE_HEAD = re.compile(rb"(" + _TOKEN + rb") ([\x21-\x7e]+) HTTP/1\.1\r\n((?:" + _ANY_HEADER + rb")*)\r\n")
_HEADERS = re.compile(_HEADER)
_NAME_OK = re.compile(_TOKEN).fullmatch
_VALUE_OK = re.compile(_FIELD_VALUE).fullmatch
# request headers whose semantics (body framing, 100-continue, upgrades) stay with h11
_H11_REQUEST_HEADERS = frozenset({b"transfer-encoding", b"expect", b"upgrade"})
# response headers h11 treats specially
_H11_RESPONSE_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "host"})
_MAX_LENGTH_DIGITS = 18


@dataclass(frozen=True, slots=True)
class SimpleRequest:
    """A complete request read without h11: header names lowercased, values without surrounding OWS."""

    method: bytes
    target: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes


def parse_simple_request(data: bytes) -> SimpleRequest | None:
    """`data` as one whole HTTP/1.1 request that keeps the connection open, or None for h11 to read.

    Accepted: exactly one request (head, then a Content-Length body if any, nothing after it), CRLF line
    ends, one Host header, no Transfer-Encoding/Expect/Upgrade, `Connection` only saying keep-alive.
    """
    m = _SIMPLE_HEAD.match(data)
    if m is None:
        return None
    headers: list[tuple[bytes, bytes]] = []
    hosts = 0
    length = 0
    for raw_name, value in _HEADERS.findall(m.group(3)):
        name = raw_name.lower()
        if name == b"host":
            hosts += 1
        elif name == b"content-length":
            if length or not value.isdigit() or len(value) > _MAX_LENGTH_DIGITS:
                return None  # a second Content-Length (even "0") is for h11 to judge
            length = int(value) or -1
        elif name == b"connection":
            if any(token.strip().lower() != b"keep-alive" for token in value.split(b",")):
                return None
        elif name in _H11_REQUEST_HEADERS:
            return None
        headers.append((name, value))
    body = data[m.end() :]
    if hosts != 1 or len(body) != max(length, 0):
        return None
    return SimpleRequest(m.group(1), m.group(2), headers, body)


_valid_lines: set[bytes] = set()  # response header lines that passed h11's grammar
_MAX_VALID_LINES = 4096


def _header_line(name: bytes, value: bytes) -> bytes | None:
    line = b"%s: %s\r\n" % (name, value)
    if line not in _valid_lines:
        if _NAME_OK(name) is None or _VALUE_OK(value) is None:
            return None
        if len(_valid_lines) >= _MAX_VALID_LINES:
            _valid_lines.clear()
        _valid_lines.add(line)
    return line


class Heads:
    """An application's response heads: `fixed` headers (e.g. Docker's `Api-Version`, `Server`) then `Date`
    on every response, hijacked ones included, then the response's own."""

    def __init__(self, fixed: list[tuple[bytes, bytes]]) -> None:
        self.fixed = list(fixed)
        self._block: tuple[bytes, bytes] = (b"", b"")  # (Date value, rendered base headers)

    def base_headers(self) -> list[tuple[bytes, bytes]]:
        """The headers on every response, hijacked ones included."""
        return [*self.fixed, (b"Date", http_date())]

    def response_headers(
        self, resp: Response, *, chunked: bool, body_len: int | None
    ) -> list[tuple[bytes, bytes]]:
        """A response's header list, in wire order (framing last)."""
        headers = self.base_headers()
        if resp.content_type:
            headers.append((b"Content-Type", resp.content_type.encode("latin-1")))
        for name, value in resp.headers:
            headers.append((name.encode("latin-1"), value.encode("utf-8")))
        if chunked:
            headers.append((b"Transfer-Encoding", b"chunked"))
        elif body_len is not None:
            headers.append((b"Content-Length", str(body_len).encode()))
        return headers

    def _base_block(self) -> bytes:
        date = http_date()
        if self._block[0] is not date:
            self._block = (date, b"".join(b"%s: %s\r\n" % pair for pair in self.base_headers()))
        return self._block[1]

    def simple_response_head(self, resp: Response) -> bytes | None:
        """The status line and headers h11 would write for `resp` to a simple request; None if h11 must.

        The same headers as `response_headers`, in the same order.
        """
        status = resp.status
        if status < 200 or status > 999 or isinstance(resp, StreamResponse):
            return None
        out = [b"HTTP/1.1 %d %s\r\n" % (status, reason(status)), self._base_block()]
        if resp.content_type:
            line = _header_line(b"Content-Type", resp.content_type.encode("latin-1"))
            if line is None:
                return None
            out.append(line)
        for name, value in resp.headers:
            if name.lower() in _H11_RESPONSE_HEADERS:
                return None
            line = _header_line(name.encode("latin-1"), value.encode("utf-8"))
            if line is None:
                return None
            out.append(line)
        if status not in (204, 304):
            out.append(b"Content-Length: %d\r\n" % resp.body_length())
        out.append(b"\r\n")
        return b"".join(out)
