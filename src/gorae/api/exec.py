"""Exec routes of the Engine API: `POST /containers/{id}/exec`, `POST /exec/{id}/start` (hijacked, or
detached), `GET /exec/{id}/json`, `POST /exec/{id}/resize`.

`ExecRouter` translates HTTP to calls on an `ExecBackend` (gorae.container.execs.ExecService); the
attached stream is pumped by `attach_stream.pump` with docker's framing. A start that fails after the stream was hijacked reports the error in the stream,
as docker does. No exec state lives here.
"""

from __future__ import annotations

import contextlib
from typing import Any, Protocol

from gorae.api.attach_stream import encode, parse_detach_keys, pump
from gorae.api.containers import stream_content_type
from gorae.api.http import Handler, Request, Response, empty_response, json_response
from gorae.container.execs import ExecRecord
from gorae.errors import CommandFailed, GoraeError, InvalidParameter

EXIT_RECORD_WAIT = 5.0  # seconds to wait, after the output ended, for the exit code to be recorded


class StartedExec(Protocol):
    @property
    def attachment(self) -> Any: ...  # an attach_stream.OutputSource, or None when not attached


class ExecBackend(Protocol):
    """What the exec routes call (gorae.container.execs.ExecService)."""

    def create(self, container_ref: str, body: dict[str, Any] | None) -> str: ...

    def inspect(self, exec_id: str) -> dict[str, Any]: ...

    def resize(self, exec_id: str, height: int, width: int) -> None: ...

    def check_startable(self, exec_id: str) -> ExecRecord: ...

    async def start(
        self, exec_id: str, *, attach: bool, tty: bool | None = None, console_size: Any = None
    ) -> StartedExec: ...

    async def wait_recorded(self, exec_id: str, timeout: float) -> None: ...


class ExecRouter:
    def __init__(self, backend: ExecBackend) -> None:
        self.b = backend

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("POST", "/containers/{id}/exec", self.create),
            ("POST", "/exec/{id}/start", self.start),
            ("GET", "/exec/{id}/json", self.inspect),
            ("POST", "/exec/{id}/resize", self.resize),
        ]

    async def create(self, req: Request) -> Response:
        body = await req.json()
        exec_id = self.b.create(req.params["id"], body)
        return json_response({"Id": exec_id}, status=201)

    async def inspect(self, req: Request) -> Response:
        return json_response(self.b.inspect(req.params["id"]))

    async def resize(self, req: Request) -> Response:
        self.b.resize(req.params["id"], req.qint("h", 0) or 0, req.qint("w", 0) or 0)
        return empty_response(200)

    async def start(self, req: Request) -> Response | None:
        body = await req.json() or {}
        rec = self.b.check_startable(req.params["id"])
        tty = bool(body.get("Tty", rec.config["Tty"]))
        console_size = body.get("ConsoleSize") or None
        if body.get("Detach"):
            await self.b.start(rec.id, attach=False, tty=tty, console_size=console_size)
            return empty_response(200)
        detach_keys = parse_detach_keys(rec.config.get("DetachKeys") or None)
        hj = await req.hijack(stream_content_type(tty, req.version))
        try:
            try:
                handle = await self.b.start(rec.id, attach=True, tty=tty, console_size=console_size)
            except GoraeError as e:
                text = e.stderr.strip() if isinstance(e, CommandFailed) else e.message
                if isinstance(e, InvalidParameter):  # the daemon's own checks (the user): bare, as dockerd's
                    msg = f"{text}\r\n"
                else:
                    if not text.startswith("exec failed:"):  # runc's own text already says it
                        text = f"exec failed: {text}"
                    msg = f"OCI runtime exec failed: {text}: unknown\r\n"
                with contextlib.suppress(Exception):
                    await hj.write(encode(1, msg.encode(), tty))
                return None
            source = handle.attachment
            if source is None:
                return None
            try:
                await pump(
                    hj,
                    source,
                    tty=tty,
                    stdin=rec.config["AttachStdin"],
                    stdout=rec.config["AttachStdout"],
                    stderr=rec.config["AttachStderr"],
                    detach_keys=detach_keys,
                )
            finally:
                source.close()
            # clients read ExitCode right after the stream ends: have it recorded first
            await self.b.wait_recorded(rec.id, EXIT_RECORD_WAIT)
        finally:
            await hj.close()
        return None
