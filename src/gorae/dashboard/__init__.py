"""The web dashboard's page: static assets only (static/index.html, app.js, style.css), no server code.

The page is vanilla JS, CSS and inline SVG (no framework, nothing fetched from outside the machine) and talks
to the daemon only as any client would: the Engine API under the same-origin prefix `/api/` (containers,
images, volumes, networks, events, logs, start/stop/restart/remove) and the Prometheus text at `/metrics`
(the live CPU/memory graphs). The daemon's composition root serves it on `--dashboard-addr`
(`gorae.cmd.dashboard`): the assets from here, `/api/...` handed in-process to the Engine API application
(the same routes, checks and errors as the socket), `/metrics` from the metrics registry. So this package
imports nothing of gorae (its layer allows base and client) and the page holds no private interface.
"""

from __future__ import annotations

from importlib import resources

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


def asset(name: str) -> tuple[bytes, str] | None:
    """A static asset's bytes and content type; None for a name that is not one of ours."""
    if "/" in name or "\\" in name or name.startswith(".") or not name:
        return None
    ext = name[name.rfind(".") :] if "." in name else ""
    ctype = CONTENT_TYPES.get(ext)
    if ctype is None:
        return None
    res = resources.files(__name__).joinpath("static", name)
    if not res.is_file():
        return None
    return res.read_bytes(), ctype
