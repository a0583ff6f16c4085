"""Exec routes of the Engine API: `POST /containers/{id}/exec`, `POST /exec/{id}/start` (hijacked, or
detached), `GET /exec/{id}/json`, `POST /exec/{id}/resize`.

Handlers translate HTTP to `ExecService` calls; the attached stream is pumped by `attach_stream.pump`
with docker's framing. A start that fails after the stream was hijacked reports the error in the stream,
as docker does. No exec state lives here.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from gorae.api.attach_stream import encode, parse_detach_keys, pump
from gorae.api.containers import stream_content_type
from gorae.api.http import Request, Response, empty_response, json_response
from gorae.errors import CommandFailed, GoraeError

if TYPE_CHECKING:
    from gorae.daemon.daemon import Daemon

EXIT_RECORD_WAIT = 5.0  # seconds to wait, after the output ended, for the exit code to be recorded


def _failure_code(text: str) -> int:
    low = text.lower()
    if "executable file not found" in low or "no such file or directory" in low:
        return 127
    return 126


def register(routes: Any, d: Daemon) -> None:
    execs = d.execs

    async def create(req: Request) -> Response:
        body = await req.json()
        exec_id = execs.create(req.params["id"], body)
        return json_response({"Id": exec_id}, status=201)

    async def inspect(req: Request) -> Response:
        return json_response(execs.inspect(req.params["id"]))

    async def resize(req: Request) -> Response:
        execs.resize(req.params["id"], req.qint("h", 0) or 0, req.qint("w", 0) or 0)
        return empty_response(200)

    async def start(req: Request) -> Response | None:
        body = await req.json() or {}
        rec = execs.check_startable(req.params["id"])
        tty = bool(body.get("Tty", rec.config["Tty"]))
        if body.get("ConsoleSize"):
            rec.config["ConsoleSize"] = body["ConsoleSize"]
        if body.get("Detach"):
            await execs.start(rec.id, attach=False, tty=tty)
            return empty_response(200)
        detach_keys = parse_detach_keys(rec.config.get("DetachKeys") or None)
        hj = await req.hijack(stream_content_type(tty, req.version))
        try:
            try:
                handle = await execs.start(rec.id, attach=True, tty=tty)
            except GoraeError as e:
                text = e.stderr.strip() if isinstance(e, CommandFailed) else e.message
                rec.exit_code = _failure_code(text)
                msg = f"OCI runtime exec failed: exec failed: {text}: unknown\r\n"
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
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(rec.done.wait(), EXIT_RECORD_WAIT)
        finally:
            await hj.close()
        return None

    routes.add("POST", "/containers/{id}/exec", create)
    routes.add("POST", "/exec/{id}/start", start)
    routes.add("GET", "/exec/{id}/json", inspect)
    routes.add("POST", "/exec/{id}/resize", resize)
