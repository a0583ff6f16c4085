"""Node-to-node connections on the swarm port (2377): TLS always, mutual TLS for everything but the two
steps of a join.

One JSON request line and one JSON answer line per connection. Operations:
  `ca`    — the root CA certificate (no client certificate; the joiner trusts it only if its digest is the
            one in its join token)
  `join`  — token + public key + description → node ID and a certificate signed by the cluster CA (the
            joiner verifies the manager's certificate against that CA, server name `swarm-manager`)
  `leave` — a member (client certificate required, its node must still exist) marks itself down
A client certificate is verified against the cluster CA and, beyond the handshake, its node must still be
in the store: a removed node's certificate is refused from then on.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from gorae.errors import GoraeError, InvalidParameter, Unavailable

MAX_LINE = 16 << 20  # an assignment set carries its secrets and configs (up to 500 KB and 1000 KB each)
TIMEOUT = 20.0
CONNECT_TIMEOUT = 3.0  # a manager that does not accept within this is tried no longer (workers fail over)

Handler = Callable[[dict[str, Any], bytes | None, str], Awaitable[dict[str, Any]]]


def server_context(cert_pem: bytes, key_pem: bytes, ca_pem: bytes) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = Path(tmp, "c.pem"), Path(tmp, "k.pem")
        cert.write_bytes(cert_pem)
        key.write_bytes(key_pem)
        ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(cadata=ca_pem.decode())
    ctx.verify_mode = ssl.CERT_OPTIONAL  # joiners have no certificate yet; every other op requires one
    return ctx


def reload_cert(ctx: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    """A renewed node certificate for the connections `ctx` accepts from now on."""
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = Path(tmp, "c.pem"), Path(tmp, "k.pem")
        cert.write_bytes(cert_pem)
        key.write_bytes(key_pem)
        ctx.load_cert_chain(cert, key)


def client_context(
    ca_pem: bytes | None, cert_pem: bytes | None = None, key_pem: bytes | None = None
) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_pem is None:  # fetching the CA itself: trust comes from the token's digest afterwards
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.load_verify_locations(cadata=ca_pem.decode())
    if cert_pem is not None and key_pem is not None:
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = Path(tmp, "c.pem"), Path(tmp, "k.pem")
            cert.write_bytes(cert_pem)
            key.write_bytes(key_pem)
            ctx.load_cert_chain(cert, key)
    return ctx


class RemoteServer:
    """The manager's listener on the swarm port."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int, ctx: ssl.SSLContext) -> int:
        self._server = await asyncio.start_server(self._serve, host or None, port, ssl=ctx, limit=MAX_LINE)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), TIMEOUT)
            sslobj = writer.get_extra_info("ssl_object")
            peer_der = sslobj.getpeercert(binary_form=True) if sslobj is not None else None
            peer = writer.get_extra_info("peername")
            try:
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise InvalidParameter("bad request")
                answer = await self._handler(request, peer_der, str(peer[0]) if peer else "")
            except GoraeError as e:
                answer = {"error": e.message, "status": e.status}
            except ValueError:
                answer = {"error": "bad request", "status": 400}
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()


async def call(
    addr: str, ctx: ssl.SSLContext, request: dict[str, Any], server_name: str | None
) -> dict[str, Any]:
    """One request to a manager at `addr` (host:port); a refusal comes back as the GoraeError it was."""
    host, _, port = addr.rpartition(":")
    host = host.strip("[]")
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, int(port), ssl=ctx, server_hostname=server_name, limit=MAX_LINE),
            CONNECT_TIMEOUT,
        )
    except ssl.SSLCertVerificationError as e:
        raise Unavailable(f"could not verify the manager at {addr}: {e.verify_message}") from e
    except (OSError, TimeoutError, ValueError) as e:
        raise Unavailable(f"could not connect to the manager at {addr}: {e}") from e
    try:
        writer.write(json.dumps(request).encode() + b"\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), TIMEOUT)
        local = writer.get_extra_info("sockname")
    except (OSError, TimeoutError, ssl.SSLError) as e:
        raise Unavailable(f"the manager at {addr} did not answer: {e}") from e
    finally:
        writer.close()
    try:
        answer = json.loads(line)
    except ValueError:
        raise Unavailable(f"the manager at {addr} did not answer") from None
    if not isinstance(answer, dict):
        raise Unavailable(f"the manager at {addr} did not answer")
    if "error" in answer:
        err = GoraeError(str(answer["error"]))
        err.status = int(answer.get("status", 500))
        raise err
    answer["_local_addr"] = str(local[0]) if local else ""
    return answer
