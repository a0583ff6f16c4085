"""The host platform as OCI and Docker name it (a leaf): architecture (`amd64`, `arm64`, ...) and OS.

The one place `platform.machine()` is translated to Go's GOARCH names; image configs, `docker load` of
multi-platform indexes and `/version` all use it.
"""

from __future__ import annotations

import platform as _platform
import sys

# uname machine -> GOARCH
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}


def host_arch() -> str:
    """The host's architecture in Go's naming ("amd64", "arm64", ...); unknown machines pass through."""
    m = _platform.machine()
    return _GOARCH.get(m, m)


def host_os() -> str:
    """The host's OS in Go's naming ("linux")."""
    return "linux" if sys.platform.startswith("linux") else sys.platform
