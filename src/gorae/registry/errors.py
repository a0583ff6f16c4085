"""The distribution spec's errors: one exception type carrying the spec's code, and its JSON body.

Owns `RegistryError` (code, HTTP status, message, detail, extra headers) with one constructor per spec code,
and `error_response`, the one place that turns any exception of a registry handler into the spec's
`{"errors": [{"code", "message", "detail"}]}` body — storage errors (`PathNotFound`, ...) and gorae's own
included; anything unexpected is a logged 500 with code UNKNOWN, never a traceback to the client.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from gorae.errors import GoraeError, no_space
from gorae.httpserver.message import Response
from gorae.httpserver.router import MethodNotAllowed, RouteNotFound
from gorae.registry.storage.driver import InvalidOffset, InvalidPath, PathNotFound, StorageError

log = logging.getLogger("gorae.registry")

# code -> (status, the spec's message)
CODES: dict[str, tuple[int, str]] = {
    "BLOB_UNKNOWN": (404, "blob unknown to registry"),
    "BLOB_UPLOAD_INVALID": (400, "blob upload invalid"),
    "BLOB_UPLOAD_UNKNOWN": (404, "blob upload unknown to registry"),
    "DIGEST_INVALID": (400, "provided digest did not match uploaded content"),
    "MANIFEST_BLOB_UNKNOWN": (400, "blob unknown to registry"),
    "MANIFEST_INVALID": (400, "manifest invalid"),
    "MANIFEST_UNKNOWN": (404, "manifest unknown"),
    "NAME_INVALID": (400, "invalid repository name"),
    "NAME_UNKNOWN": (404, "repository name not known to registry"),
    "SIZE_INVALID": (400, "provided length did not match content length"),
    "TAG_INVALID": (400, "manifest tag did not match URI"),
    "UNAUTHORIZED": (401, "authentication required"),
    "DENIED": (403, "requested access to the resource is denied"),
    "UNSUPPORTED": (405, "The operation is unsupported."),
    "TOOMANYREQUESTS": (429, "too many requests"),
    "RANGE_INVALID": (416, "invalid content range"),
    "PAYLOAD_TOO_LARGE": (413, "payload too large"),
    "UNKNOWN": (500, "unknown error"),
}


class RegistryError(Exception):
    """An error the spec names: `code`, its HTTP `status`, a message and optional detail and headers."""

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        detail: Any = None,
        status: int | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        default_status, default_message = CODES[code]
        self.code = code
        self.message = message or default_message
        self.detail = detail
        self.status = status or default_status
        self.headers = list(headers or [])
        super().__init__(f"{code}: {self.message}")


def error_body(code: str, message: str, detail: Any = None) -> bytes:
    entry: dict[str, Any] = {"code": code, "message": message}
    if detail is not None:
        entry["detail"] = detail
    return json.dumps({"errors": [entry]}).encode() + b"\n"


def to_response(e: RegistryError) -> Response:
    return Response(
        status=e.status,
        body=error_body(e.code, e.message, e.detail),
        content_type="application/json; charset=utf-8",
        headers=list(e.headers),
    )


def error_response(exc: BaseException, *, context: str = "") -> Response:
    """The spec's answer for any exception a registry handler raised."""
    if isinstance(exc, RegistryError):
        return to_response(exc)
    if isinstance(exc, RouteNotFound):
        return to_response(RegistryError("NAME_UNKNOWN", "404 page not found", status=404))
    if isinstance(exc, MethodNotAllowed):
        e = RegistryError("UNSUPPORTED", headers=[("Allow", ", ".join(exc.allowed))])
        return to_response(e)
    if isinstance(exc, PathNotFound):
        return to_response(RegistryError("BLOB_UNKNOWN"))
    if isinstance(exc, InvalidPath | InvalidOffset):
        return to_response(RegistryError("NAME_INVALID" if isinstance(exc, InvalidPath) else "RANGE_INVALID"))
    if isinstance(exc, GoraeError):
        code = {
            400: "BLOB_UPLOAD_INVALID",
            401: "UNAUTHORIZED",
            403: "DENIED",
            404: "NAME_UNKNOWN",
            413: "PAYLOAD_TOO_LARGE",
        }.get(exc.status, "UNKNOWN")
        return to_response(RegistryError(code, exc.message, status=exc.status))
    full = no_space(exc) if isinstance(exc, OSError) else None
    if full is not None:
        log.warning("%s%s", full.message, f" in {context}" if context else "")
        return to_response(RegistryError("UNKNOWN", full.message, status=507))
    if isinstance(exc, StorageError):
        log.error("storage error%s: %s", f" in {context}" if context else "", exc)
        return to_response(RegistryError("UNKNOWN", "storage error"))
    log.error("internal error%s", f" in {context}" if context else "", exc_info=exc)
    return to_response(RegistryError("UNKNOWN"))


def bad_request(detail: str) -> Response:
    return to_response(
        RegistryError("UNKNOWN", f"bad request: {detail}" if detail else "bad request", status=400)
    )
