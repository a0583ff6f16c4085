"""Registry routes: pull (`POST /images/create?fromImage=`, reached through the images router), push
(`POST /images/{name}/push`), `POST /auth` and `GET /distribution/{name}/json`.

A pull or push runs in a thread of its own (`DistributionBackend` is blocking) and its progress lines are
relayed in order. As dockerd, an error before the first line is the HTTP answer (404 for an unknown
image, ...), an error after it arrives in-band; a client that goes away cancels the job.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from gorae.api.http import Handler, Request, Response, StreamResponse, json_response
from gorae.distribution.auth import AuthConfig, auth_from_json, decode_registry_auth
from gorae.errors import GoraeError, InvalidParameter
from gorae.image.reference import Reference

Emit = Callable[[dict[str, Any]], None]
log = logging.getLogger("gorae.distribution")


class DistributionBackend(Protocol):
    """What the registry handlers call (implemented by `gorae.distribution.service.DistributionService`)."""

    def pull_reference(self, from_image: str, tag: str) -> Reference: ...
    def push_reference(self, name: str, tag: str) -> Reference: ...
    def pull(
        self, ref: Reference, auth: AuthConfig, emit: Emit, cancel: threading.Event, platform: str | None = None
    ) -> None: ...
    def push(self, ref: Reference, auth: AuthConfig, emit: Emit, cancel: threading.Event) -> None: ...
    def inspect(self, name: str, auth: AuthConfig) -> dict[str, Any]: ...
    def login(self, auth: AuthConfig) -> dict[str, str]: ...


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\r\n"


def _error_line(e: BaseException) -> bytes:
    msg = e.message if isinstance(e, GoraeError) else str(e)
    return _line({"errorDetail": {"message": msg}, "error": msg})


async def job_stream(work: Callable[[Emit, threading.Event], None], what: str) -> Response:
    """Run `work(emit, cancel)` in its own thread and stream what it emits (see the module docstring);
    `what` names the job in the log ("pull of busybox:latest")."""
    loop = asyncio.get_running_loop()
    q: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    cancel = threading.Event()

    def post(item: tuple[str, Any]) -> None:
        try:
            loop.call_soon_threadsafe(q.put_nowait, item)
        except RuntimeError:  # the loop is closed (the daemon is stopping): nobody is listening
            cancel.set()

    def emit(obj: dict[str, Any]) -> None:
        post(("line", obj))

    def run() -> None:
        try:
            work(emit, cancel)
            post(("done", None))
        except BaseException as e:  # noqa: BLE001 - reported to the client
            post(("error", e))

    threading.Thread(target=run, name="registry-job", daemon=True).start()
    try:
        first = await q.get()
    except asyncio.CancelledError:
        cancel.set()
        raise
    if first[0] == "error":
        err = first[1]
        if isinstance(err, GoraeError):
            raise err
        raise GoraeError(str(err))

    async def lines() -> AsyncIterator[bytes]:
        item = first
        over = False
        try:
            while True:
                kind, val = item
                if kind == "line":
                    yield _line(val)
                elif kind == "error":
                    over = True
                    log.info("%s failed: %s", what, getattr(val, "message", val))
                    yield _error_line(val)
                    return
                else:
                    over = True
                    return
                item = await q.get()
        finally:
            if not over:  # the client went away: stop the job, as dockerd cancels the request's context
                log.info("%s cancelled: the client went away", what)
            cancel.set()

    return StreamResponse(lines(), content_type="application/json")


def _auth_header(req: Request, strict: bool) -> AuthConfig:
    try:
        return decode_registry_auth(req.headers.get("x-registry-auth"))
    except InvalidParameter:
        if strict:
            raise
        return AuthConfig()  # a pull ignores a bad header, as dockerd does


class DistributionRouter:
    def __init__(self, backend: DistributionBackend) -> None:
        self.dist = backend

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("POST", "/images/{name:.+}/push", self.push),
            ("POST", "/auth", self.auth),
            ("GET", "/distribution/{name:.+}/json", self.inspect),
        ]

    async def pull(self, req: Request, from_image: str) -> Response:
        ref = self.dist.pull_reference(from_image, req.q("tag") or "")
        auth = _auth_header(req, strict=False)
        platform = req.q("platform") or None

        def work(emit: Emit, cancel: threading.Event) -> None:
            self.dist.pull(ref, auth, emit, cancel, platform)

        return await job_stream(work, f"pull of {ref.familiar()}")

    async def push(self, req: Request) -> Response:
        ref = self.dist.push_reference(req.params["name"], req.q("tag") or "")
        auth = _auth_header(req, strict=True)
        if not req.headers.get("x-registry-auth"):
            body = await req.body()
            if body.strip():
                try:
                    auth = auth_from_json(json.loads(body))
                except ValueError:
                    pass

        def work(emit: Emit, cancel: threading.Event) -> None:
            self.dist.push(ref, auth, emit, cancel)

        return await job_stream(work, f"push of {ref.familiar()}")

    async def auth(self, req: Request) -> Response:
        doc = await req.json()
        auth = auth_from_json(doc)
        res = await asyncio.to_thread(self.dist.login, auth)
        return json_response(res)

    async def inspect(self, req: Request) -> Response:
        auth = _auth_header(req, strict=False)
        return json_response(await asyncio.to_thread(self.dist.inspect, req.params["name"], auth))
