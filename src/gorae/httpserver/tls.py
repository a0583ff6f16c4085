"""The TLS server context of the HTTP listeners (the Engine API and the registry): the one the tests cover.

TLS 1.2 or newer; with a client CA, every client must present a certificate signed by it (dockerd's
`--tlsverify`). Must never weaken verification when a client CA is given.
"""

from __future__ import annotations

import ssl


def server_context(cert: str, key: str, *, client_ca: str | None = None) -> ssl.SSLContext:
    """A server context for `cert`/`key`; with `client_ca` a client certificate signed by it is required."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    if client_ca is not None:
        ctx.load_verify_locations(cafile=client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx
