"""The Engine API's response heads: docker's headers on every response, and the fast-path helpers bound to them.

Owns the fixed headers (`Api-Version`, `Docker-Experimental`, `Ostype`, `Server`; `Date` is added by the
generic `gorae.httpserver.heads.Heads`). `response_headers`/`simple_response_head`/`base_headers` are those of
`ENGINE_HEADS`; `parse_simple_request` and `reason` are the generic ones, re-exported for the tests that compare
the fast path with h11.
"""

from __future__ import annotations

from gorae import __version__
from gorae.api.http import API_VERSION
from gorae.httpserver.heads import Heads, SimpleRequest, http_date, parse_simple_request, reason

SERVER_HEADER = f"gorae/{__version__} (linux)"

ENGINE_HEADS = Heads(
    [
        (b"Api-Version", API_VERSION.encode()),
        (b"Docker-Experimental", b"false"),
        (b"Ostype", b"linux"),
        (b"Server", SERVER_HEADER.encode()),
    ]
)

base_headers = ENGINE_HEADS.base_headers
response_headers = ENGINE_HEADS.response_headers
simple_response_head = ENGINE_HEADS.simple_response_head

__all__ = [
    "ENGINE_HEADS",
    "SERVER_HEADER",
    "SimpleRequest",
    "base_headers",
    "http_date",
    "parse_simple_request",
    "reason",
    "response_headers",
    "simple_response_head",
]
