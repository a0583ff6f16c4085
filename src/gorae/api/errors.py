"""The one place that turns exceptions into Engine API error responses.

`gorae.errors.*` -> their `.status` with body {"message": "..."}; NotModified -> 304 without a
body; anything else -> 500, logged with its traceback. Also the router's 404/405 answers and the
400 for a malformed HTTP request.
"""

from __future__ import annotations

import logging

from gorae.api.http import Response, empty_response, json_response
from gorae.api.router import MethodNotAllowed, RouteNotFound
from gorae.errors import GoraeError, NotModified, no_space

log = logging.getLogger("gorae.api")


def error_body(status: int, message: str) -> Response:
    return json_response({"message": message}, status=status)


def error_response(exc: BaseException, *, context: str = "") -> Response:
    """The response for an exception raised by a handler (or the router)."""
    if isinstance(exc, NotModified):
        return empty_response(304)
    if isinstance(exc, GoraeError):
        return error_body(exc.status, exc.message)
    if isinstance(exc, RouteNotFound):
        return error_body(404, "page not found")
    if isinstance(exc, MethodNotAllowed):
        resp = error_body(405, "method not allowed")
        resp.headers.append(("Allow", ", ".join(exc.allowed)))
        return resp
    # ENOSPC from any write: docker's "no space left on device", not Python's "[Errno 28] ..."
    full = no_space(exc) if isinstance(exc, OSError) else None
    if full is not None:
        log.warning("%s%s", full.message, f" in {context}" if context else "")
        return error_body(500, full.message)
    log.error("internal error%s", f" in {context}" if context else "", exc_info=exc)
    message = str(exc) or type(exc).__name__
    return error_body(500, message)


def bad_request(detail: str) -> Response:
    """A request the HTTP layer could not parse."""
    return error_body(400, f"bad request: {detail}" if detail else "bad request")
