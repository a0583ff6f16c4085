"""The Engine API client the `gorae` CLI talks through.

Owns the transport (unix socket, TCP, TLS with client certificates; hand-rolled HTTP/1.1 with keep-alive and
chunked bodies), hijacked attach/exec streams, stream demultiplexing and API version negotiation. It speaks
only the Docker Engine API, so it works against gorae and against a real dockerd alike. Imports stay light:
`ssl` is imported only for TLS hosts.
"""

from gorae.client.api import APIClient
from gorae.client.errors import APIError, ConnectionFailed
from gorae.client.host import HostConfig

__all__ = ["APIClient", "APIError", "ConnectionFailed", "HostConfig"]
