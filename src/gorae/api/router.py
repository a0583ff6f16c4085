"""The Engine API's version prefix: `/v1.NN` stripping and the supported-version check.

Owns the `/v1.NN` prefix: its stripping and the supported-version check (1.24 to 1.45, docker's error
texts). The route table itself is the generic one (`gorae.httpserver.router`), re-exported here.
"""

from __future__ import annotations

import re

from gorae.api.http import API_VERSION, MIN_API_VERSION
from gorae.errors import InvalidParameter
from gorae.httpserver.router import MethodNotAllowed, RouteNotFound, Router

__all__ = [
    "MethodNotAllowed",
    "RouteNotFound",
    "Router",
    "check_version",
    "split_version",
    "version_less",
    "version_tuple",
]

_VERSION_PREFIX = re.compile(r"^/v([0-9.]+)(/.*)?$")


def version_tuple(version: str) -> tuple[int, ...]:
    """ "1.41" -> (1, 41); non-numeric parts count as 0, as docker's comparison does."""
    parts = []
    for piece in version.split("."):
        parts.append(int(piece) if piece.isdigit() else 0)
    return tuple(parts)


def version_less(a: str, b: str) -> bool:
    """a < b as API versions."""
    ta, tb = version_tuple(a), version_tuple(b)
    width = max(len(ta), len(tb))
    return ta + (0,) * (width - len(ta)) < tb + (0,) * (width - len(tb))


def split_version(path: str) -> tuple[str, str | None]:
    """ "/v1.41/containers/json" -> ("/containers/json", "1.41"); no prefix -> (path, None)."""
    if not path.startswith("/v"):
        return path, None
    m = _VERSION_PREFIX.match(path)
    if m is None:
        return path, None
    return m.group(2) or "/", m.group(1)


def check_version(version: str) -> None:
    """Reject API versions outside 1.24..1.45 with docker's messages (InvalidParameter, 400)."""
    if version_less(API_VERSION, version):
        raise InvalidParameter(
            f"client version {version} is too new. Maximum supported API version is {API_VERSION}"
        )
    if version_less(version, MIN_API_VERSION):
        raise InvalidParameter(
            f"client version {version} is too old. Minimum supported API version is {MIN_API_VERSION}, "
            "please upgrade your client to a newer version"
        )
