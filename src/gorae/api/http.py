"""The Engine API's view of HTTP: the generic request/response objects plus docker's API version numbers.

Handlers import `Request`, `Response`, `json_response`, ... from here; they are `gorae.httpserver.message`'s
(re-exported, so the Engine API's handlers name one module). Owns `API_VERSION`/`MIN_API_VERSION` and the
Docker stream media types.
"""

from __future__ import annotations

from gorae.httpserver.message import (
    MAX_BODY,
    MAX_DISCARD,
    MULTIPLEXED_STREAM,
    RAW_STREAM,
    BodySource,
    FileResponse,
    Handler,
    Hijacked,
    HijackSource,
    RawTransport,
    Request,
    Response,
    StreamResponse,
    empty,
    empty_response,
    json_bytes,
    json_response,
    json_stream,
    raw_response,
    text_response,
)

API_VERSION = "1.45"
MIN_API_VERSION = "1.24"

__all__ = [
    "API_VERSION",
    "MAX_BODY",
    "MAX_DISCARD",
    "MIN_API_VERSION",
    "MULTIPLEXED_STREAM",
    "RAW_STREAM",
    "BodySource",
    "FileResponse",
    "Handler",
    "HijackSource",
    "Hijacked",
    "RawTransport",
    "Request",
    "Response",
    "StreamResponse",
    "empty",
    "empty_response",
    "json_bytes",
    "json_response",
    "json_stream",
    "raw_response",
    "text_response",
]
