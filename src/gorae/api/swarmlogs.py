"""`GET /services/{id}/logs` and `GET /tasks/{id}/logs` (`docker service logs`): the lines of every node's
task containers, framed as container logs are (8-byte headers without a tty), each carrying its task's
context in the details as dockerd writes them (see gorae.swarm.logs)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from gorae.api.attach_stream import encode
from gorae.api.containers import stream_content_type
from gorae.api.http import Handler, Request, Response, StreamResponse
from gorae.errors import SystemError_
from gorae.swarm.logs import LogsOptions, parse_tail
from gorae.timefmt import parse_timestamp


class SwarmLogsBackend(Protocol):
    async def service_logs(
        self, ref: str, opts: LogsOptions
    ) -> tuple[bool, AsyncIterator[tuple[int, bytes]]]: ...
    async def task_logs(
        self, ref: str, opts: LogsOptions
    ) -> tuple[bool, AsyncIterator[tuple[int, bytes]]]: ...


class SwarmLogsRouter:
    def __init__(self, backend: SwarmLogsBackend) -> None:
        self.b = backend

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("GET", "/services/{id}/logs", self.service_logs),
            ("GET", "/tasks/{id}/logs", self.task_logs),
        ]

    @staticmethod
    def _options(req: Request) -> LogsOptions:
        stdout, stderr = req.qbool("stdout"), req.qbool("stderr")
        if not (stdout or stderr):
            raise SystemError_("Bad parameters: you must choose at least one stream")  # dockerd: a 500
        since = (req.q("since") or "").strip()
        return LogsOptions(
            stdout=stdout,
            stderr=stderr,
            follow=req.qbool("follow"),
            tail=parse_tail(req.q("tail")),
            since_ns=parse_timestamp(since) if since not in ("", "0") else 0,
            timestamps=req.qbool("timestamps"),
            details=req.qbool("details"),
        )

    async def service_logs(self, req: Request) -> Response:
        opts = self._options(req)
        tty, lines = await self.b.service_logs(req.params["id"], opts)
        return self._respond(req, tty, lines)

    async def task_logs(self, req: Request) -> Response:
        opts = self._options(req)
        tty, lines = await self.b.task_logs(req.params["id"], opts)
        return self._respond(req, tty, lines)

    @staticmethod
    def _respond(req: Request, tty: bool, lines: AsyncIterator[tuple[int, bytes]]) -> Response:
        async def gen() -> AsyncIterator[bytes]:
            async for stream, data in lines:
                yield encode(stream, data, tty)

        return StreamResponse(gen(), content_type=stream_content_type(tty, req.version))
