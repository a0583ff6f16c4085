"""The TLS server context of the Engine API listeners (the generic one, `gorae.httpserver.tls`)."""

from __future__ import annotations

from gorae.httpserver.tls import server_context

__all__ = ["server_context"]
