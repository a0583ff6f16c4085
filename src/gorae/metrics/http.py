"""The `--metrics-addr` listener's application: `GET /metrics` in Prometheus text format (0.0.4, written by
`exposition.text_format`, whenever the scraper accepts it: Prometheus does, as it does for dockerd;
OpenMetrics by prometheus-client only for a scraper that takes nothing else), produced off the event loop;
everything else is 404.
"""

from __future__ import annotations

import asyncio
import json

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder

from gorae.errors import GoraeError, NotFound
from gorae.httpserver.heads import Heads
from gorae.httpserver.message import Request, Response
from gorae.metrics.exposition import text_format


class MetricsApp:
    """An `httpserver` Application serving one registry at /metrics."""

    heads = Heads([])

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    async def handle(self, req: Request) -> Response | None:
        if req.path != "/metrics":
            raise NotFound("page not found")
        if req.method not in ("GET", "HEAD"):
            return Response(status=405, body=b"method not allowed\n", content_type="text/plain")
        return await asyncio.to_thread(self.render, req.headers.get("accept", ""))

    def render(self, accept: str = "") -> Response:
        if not accept or "text/plain" in accept or "*/*" in accept:
            return Response(body=text_format(self.registry), content_type=CONTENT_TYPE_PLAIN_0_0_4)
        encoder, content_type = choose_encoder(accept)
        return Response(body=encoder(self.registry), content_type=content_type)

    def error_response(self, exc: BaseException, *, context: str = "") -> Response:
        status = 404 if isinstance(exc, NotFound) else 400 if isinstance(exc, GoraeError) else 500
        msg = exc.message if isinstance(exc, GoraeError) else "internal error"
        return Response(status=status, body=json.dumps({"message": msg}).encode() + b"\n",
                        content_type="application/json")

    def bad_request(self, detail: str) -> Response:
        return Response(status=400, body=detail.encode() + b"\n", content_type="text/plain")
