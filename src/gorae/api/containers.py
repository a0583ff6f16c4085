"""Container routes of the Engine API: create, list, inspect, lifecycle, logs, attach, wait, archive,
export, changes, stats, top, update, rename, prune, and `POST /commit`.

`ContainersRouter` translates HTTP to calls on a `ContainerBackend` (the narrow protocol below, implemented by
`gorae.container.service.ContainerService`) and shapes the answers as docker does (status codes, stream
content types, the 8-byte frames exactly when there is no tty). Long-lived streams (logs -f, attach, stats,
wait) are owned by their response and end when the client goes away. No container state lives here, and
nothing here touches the runtime, the archive code or records.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, BinaryIO, Protocol

from gorae.api.attach_stream import encode, parse_detach_keys, pump
from gorae.api.attach_ws import WebSocketStream, handshake_headers, pump_ws
from gorae.api.http import (
    API_VERSION,
    MULTIPLEXED_STREAM,
    RAW_STREAM,
    Handler,
    Request,
    Response,
    StreamResponse,
    empty_response,
    json_bytes,
    json_response,
    raw_response,
)
from gorae.api.router import version_less
from gorae.api.streams import AsyncToSyncReader, SyncToAsyncWriter
from gorae.container.fs import TarSource
from gorae.container.streams import AttachSession, LogOptions, LogStream
from gorae.errors import InvalidParameter, NotFound
from gorae.timefmt import parse_timestamp

START_BODY_ERROR = (
    "starting container with non-empty request body was deprecated since API v1.22 and removed in v1.24"
)


def stream_content_type(tty: bool, version: str) -> str:
    """docker: multiplexed-stream for non-tty streams from API 1.42 on, raw-stream otherwise ("" = newest)."""
    if not tty and not version_less(version or API_VERSION, "1.42"):
        return MULTIPLEXED_STREAM
    return RAW_STREAM


def _timeout(req: Request) -> int | None:
    return req.qint("t", None) if req.q("t") not in (None, "") else req.qint("timeout", None)


def _log_time(req: Request, name: str) -> str | None:
    """since/until as the "sec.nanos" string runtime.logs takes; None when absent or zero."""
    raw = req.q(name)
    if raw is None or raw.strip() in ("", "0"):
        return None
    ns = parse_timestamp(raw)
    if ns <= 0:
        return None
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def _tail(req: Request) -> int | None:
    raw = (req.q("tail") or "all").strip()
    if raw in ("", "all"):
        return None
    try:
        n = int(raw)
    except ValueError:
        raise InvalidParameter(f'invalid value for "tail": "{raw}"') from None
    return None if n < 0 or n > 2**31 else n  # beyond any log: all of it


def _archive_path(req: Request) -> str:
    """The `path` query of the archive routes; InvalidParameter for one no filesystem could hold."""
    path = req.q("path")
    if not path:
        raise InvalidParameter("Path cannot be empty")
    if "\x00" in path or len(path.encode()) >= 4096 or any(len(p.encode()) > 255 for p in path.split("/")):
        raise InvalidParameter(f"invalid path {path[:64]!r}: file name too long or contains a NUL byte")
    return path


class _Closing:
    """An async iterator of bytes that runs `cleanup` when exhausted or closed, even if never started."""

    def __init__(self, chunks: AsyncIterator[bytes], cleanup: Callable[[], Any]) -> None:
        self._chunks = chunks
        self._cleanup = cleanup
        self._closed = False

    def __aiter__(self) -> _Closing:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self._chunks.__anext__()
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            with contextlib.suppress(Exception):
                await self._chunks.aclose()  # type: ignore[attr-defined]
            await self._cleanup()


def _tar_response(source: TarSource, headers: list[tuple[str, str]] | None = None) -> Response:
    """The tar `source` writes (in a thread), streamed; the source is closed when the response ends."""
    return raw_response(
        _Closing(_writer_stream(source.write), source.close), "application/x-tar", headers=headers
    )


def _writer_stream(fn: Callable[[BinaryIO], object]) -> AsyncIterator[bytes]:
    """Run `fn(out)` in a thread; its writes come out as chunks."""
    writer = SyncToAsyncWriter()

    def work() -> None:
        try:
            fn(writer)  # type: ignore[arg-type]
        finally:
            writer.close()

    async def gen() -> AsyncIterator[bytes]:
        task = asyncio.ensure_future(asyncio.to_thread(work))
        try:
            async for chunk in writer.chunks():
                yield chunk
            await task
        finally:
            if not task.done():
                with contextlib.suppress(BaseException):
                    await task

    return gen()


def _stat_header(st: PathInfo) -> str:
    """docker's X-Docker-Container-Path-Stat header."""
    return base64.b64encode(json.dumps(st.to_json(), separators=(",", ":")).encode()).decode()


class PathInfo(Protocol):
    def to_json(self) -> dict[str, object]: ...


class ContainerBackend(Protocol):
    """What the container routes call (gorae.container.service.ContainerService)."""

    async def create(self, body: dict[str, Any] | None, name: str | None = None) -> dict[str, Any]: ...

    def summaries(
        self,
        *,
        include_stopped: bool = False,
        limit: int | None = None,
        size: bool = False,
        filters: dict[str, list[str]] | None = None,
    ) -> list[dict[str, Any]]: ...

    def inspect(self, ref: str, size: bool = False) -> dict[str, Any]: ...

    async def start(self, ref: str) -> None: ...

    async def stop(self, ref: str, timeout: int | None = None, signal: str | None = None) -> None: ...

    async def restart(self, ref: str, timeout: int | None = None, signal: str | None = None) -> None: ...

    async def kill(self, ref: str, signal: str | None = None) -> None: ...

    async def pause(self, ref: str) -> None: ...

    async def unpause(self, ref: str) -> None: ...

    async def remove(
        self, ref: str, *, force: bool = False, volumes: bool = False, link: bool = False
    ) -> None: ...

    async def rename(self, ref: str, new_name: str) -> None: ...

    async def take_ports(self, ref: str, from_ref: str) -> None: ...

    async def update(self, ref: str, body: dict[str, Any]) -> list[str]: ...

    def resize(self, ref: str, height: int, width: int) -> None: ...

    def wait(self, ref: str, condition: str = "not-running") -> asyncio.Future[dict[str, Any]]: ...

    async def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]: ...

    def logs(self, ref: str, opts: LogOptions) -> LogStream: ...

    def attach(self, ref: str, *, stream: bool) -> AttachSession: ...

    def top(self, ref: str, ps_args: str = "-ef") -> dict[str, Any]: ...

    async def stats_sample(self, ref: str, *, one_shot: bool) -> dict[str, Any]: ...

    def stats_stream(self, ref: str) -> AsyncIterator[dict[str, Any]]: ...

    async def changes(self, ref: str) -> list[dict[str, Any]]: ...

    async def export(self, ref: str) -> TarSource: ...

    async def archive(
        self, ref: str, path: str, *, stat_only: bool = False
    ) -> tuple[Any, TarSource | None]: ...

    def extract_into(
        self, ref: str, path: str, *, no_overwrite_dir_non_dir: bool = False, copy_uid_gid: bool = False
    ) -> contextlib.AbstractAsyncContextManager[Callable[[BinaryIO], None]]: ...

    async def commit(
        self,
        ref: str,
        *,
        repo_tag: str | None,
        author: str,
        comment: str,
        changes: list[str],
        pause: bool,
        config: dict[str, Any] | None = None,
    ) -> str: ...


class ContainersRouter:
    """The container routes of the Engine API over a `ContainerBackend`."""

    def __init__(self, backend: ContainerBackend) -> None:
        self.b = backend

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("POST", "/containers/create", self.create),
            ("GET", "/containers/json", self.list),
            ("POST", "/containers/prune", self.prune),
            ("GET", "/containers/{id}/json", self.inspect),
            ("POST", "/containers/{id}/start", self.start),
            ("POST", "/containers/{id}/stop", self.stop),
            ("POST", "/containers/{id}/restart", self.restart),
            ("POST", "/containers/{id}/kill", self.kill),
            ("POST", "/containers/{id}/pause", self.pause),
            ("POST", "/containers/{id}/unpause", self.unpause),
            ("POST", "/containers/{id}/rename", self.rename),
            # gorae's own: move a running container's published ports to this one, never closed meanwhile
            ("POST", "/containers/{id}/ports/take", self.take_ports),
            ("POST", "/containers/{id}/update", self.update),
            ("POST", "/containers/{id}/resize", self.resize),
            ("POST", "/containers/{id}/wait", self.wait),
            ("POST", "/containers/{id}/attach", self.attach),
            ("GET", "/containers/{id}/attach/ws", self.attach_ws),
            ("GET", "/containers/{id}/logs", self.logs),
            ("GET", "/containers/{id}/top", self.top),
            ("GET", "/containers/{id}/stats", self.stats),
            ("GET", "/containers/{id}/changes", self.changes),
            ("GET", "/containers/{id}/export", self.export),
            ("GET", "/containers/{id}/archive", self.archive_get),
            ("HEAD", "/containers/{id}/archive", self.archive_get),
            ("PUT", "/containers/{id}/archive", self.archive_put),
            ("DELETE", "/containers/{id}", self.remove),
            # `docker rm --link PARENT/ALIAS`: a link name has a slash (dockerd's {name:.*})
            ("DELETE", "/containers/{parent}/{alias}", self.remove_link),
            ("POST", "/commit", self.commit),
        ]

    # ---- create / list / inspect ---------------------------------------------------------------

    async def create(self, req: Request) -> Response:
        body = await req.json()
        name = req.q("name") or None
        platform = req.q("platform") or ""
        if platform and not platform.startswith("linux"):
            raise InvalidParameter(f'"{platform}" is not a supported platform')
        res = await self.b.create(body, name)
        return json_response(res, status=201)

    async def list(self, req: Request) -> Response:
        res = await asyncio.to_thread(
            self.b.summaries,
            include_stopped=req.qbool("all"),
            limit=req.qint("limit", None),
            size=req.qbool("size"),
            filters=req.qfilters("filters"),
        )
        return json_response(res)

    async def inspect(self, req: Request) -> Response:
        if req.qbool("size"):
            doc = await asyncio.to_thread(self.b.inspect, req.params["id"], True)
        else:
            doc = self.b.inspect(req.params["id"])
        return json_response(doc)

    # ---- lifecycle -----------------------------------------------------------------------------

    async def start(self, req: Request) -> Response:
        body = await req.body()
        chunked = "chunked" in req.headers.get("transfer-encoding", "").lower()
        if len(body) > 7 or (chunked and body.strip()):
            raise InvalidParameter(START_BODY_ERROR)
        await self.b.start(req.params["id"])
        return empty_response(204)

    async def stop(self, req: Request) -> Response:
        await self.b.stop(req.params["id"], _timeout(req), req.q("signal") or None)
        return empty_response(204)

    async def restart(self, req: Request) -> Response:
        await self.b.restart(req.params["id"], _timeout(req), req.q("signal") or None)
        return empty_response(204)

    async def kill(self, req: Request) -> Response:
        try:
            await self.b.kill(req.params["id"], req.q("signal") or None)
        except NotFound as e:  # dockerd's router wraps the backend's errors (not a bad signal, not a conflict)
            raise NotFound(f"Cannot kill container: {req.params['id']}: {e.message}") from None
        return empty_response(204)

    async def take_ports(self, req: Request) -> Response:
        src = req.q("from")
        if not src:
            raise InvalidParameter("the container to take the ports from is missing (from=)")
        await self.b.take_ports(req.params["id"], src)
        return empty_response(204)

    async def pause(self, req: Request) -> Response:
        await self.b.pause(req.params["id"])
        return empty_response(204)

    async def unpause(self, req: Request) -> Response:
        await self.b.unpause(req.params["id"])
        return empty_response(204)

    async def remove(self, req: Request) -> Response:
        await self.b.remove(
            req.params["id"], force=req.qbool("force"), volumes=req.qbool("v"), link=req.qbool("link")
        )
        return empty_response(204)

    async def remove_link(self, req: Request) -> Response:
        name = f"{req.params['parent']}/{req.params['alias']}"
        await self.b.remove(name, force=req.qbool("force"), volumes=req.qbool("v"), link=req.qbool("link"))
        return empty_response(204)

    async def rename(self, req: Request) -> Response:
        await self.b.rename(req.params["id"], req.q("name") or "")
        return empty_response(204)

    async def update(self, req: Request) -> Response:
        body = await req.json()
        warnings = await self.b.update(req.params["id"], body or {})
        return json_response({"Warnings": warnings})

    async def resize(self, req: Request) -> Response:
        self.b.resize(req.params["id"], req.qint("h", 0) or 0, req.qint("w", 0) or 0)
        return empty_response(200)

    async def wait(self, req: Request) -> Response:
        fut = self.b.wait(req.params["id"], req.q("condition") or "not-running")

        async def gen() -> AsyncIterator[bytes]:
            try:
                res = await fut
            finally:
                if not fut.done():
                    fut.cancel()
            yield json_bytes(res)

        return StreamResponse(gen(), content_type="application/json")

    async def prune(self, req: Request) -> Response:
        filters = req.qfilters("filters")
        if "until" in filters:
            now = time.time_ns()
            filters["until"] = [str(parse_timestamp(v, now_ns=now)) for v in filters["until"]]
        return json_response(await self.b.prune(filters))

    # ---- output: logs, attach, top, stats ------------------------------------------------------

    async def logs(self, req: Request) -> Response:
        opts = LogOptions(
            stdout=req.qbool("stdout"),
            stderr=req.qbool("stderr"),
            since=_log_time(req, "since"),
            until=_log_time(req, "until"),
            tail=_tail(req),
            timestamps=req.qbool("timestamps"),
            details=req.qbool("details"),
            follow=req.qbool("follow"),
        )
        out = self.b.logs(req.params["id"], opts)
        tty = out.tty

        async def gen() -> AsyncIterator[bytes]:
            if opts.follow:
                async for stream, data in out.chunks:
                    yield encode(stream, data, tty)
                return
            buf = bytearray()
            async for stream, data in out.chunks:
                buf += encode(stream, data, tty)
                if len(buf) >= 1 << 16:
                    yield bytes(buf)
                    buf.clear()
            if buf:
                yield bytes(buf)

        return StreamResponse(gen(), content_type=stream_content_type(tty, req.version))

    async def attach(self, req: Request, websocket: bool = False) -> Response | None:
        want_stream = req.qbool("stream")
        session = self.b.attach(req.params["id"], stream=want_stream)
        try:
            ws_headers = handshake_headers(req) if websocket else None
            detach_keys = parse_detach_keys(req.q("detachKeys"))
        except BaseException:
            session.close()
            raise
        want_logs = req.qbool("logs")
        stdin = req.qbool("stdin") and session.open_stdin
        stdout, stderr = req.qbool("stdout"), req.qbool("stderr")
        tty = session.tty
        hj: Any = None
        ws: WebSocketStream | None = None
        try:
            if ws_headers is not None:
                hj = await req.hijack("", ws_headers)
                ws = WebSocketStream(hj)
            else:
                hj = await req.hijack(stream_content_type(tty, req.version))
            session.started()
            prefix = None
            if want_logs:
                prefix = _encoded(session.log_prefix(stdout=stdout, stderr=stderr), tty or ws is not None)
            if not want_stream:
                if prefix is not None:
                    async for chunk in prefix:
                        await (ws or hj).write(chunk)
                return None
            source = await session.source()
            if source is None:
                return None
            try:
                if ws is not None:
                    outcome = await pump_ws(
                        ws,
                        source,
                        stdin=stdin,
                        stdout=stdout,
                        stderr=stderr,
                        detach_keys=detach_keys,
                        prefix=prefix,
                    )
                else:
                    outcome = await pump(
                        hj,
                        source,
                        tty=tty,
                        stdin=stdin,
                        stdout=stdout,
                        stderr=stderr,
                        detach_keys=detach_keys,
                        prefix=prefix,
                    )
            finally:
                source.close()
            if outcome == "detached":
                session.detached()
        finally:
            session.close()
            if ws is not None:
                await ws.close()
            if hj is not None:
                await hj.close()
        return None

    async def attach_ws(self, req: Request) -> Response | None:
        return await self.attach(req, websocket=True)

    async def top(self, req: Request) -> Response:
        res = await asyncio.to_thread(self.b.top, req.params["id"], req.q("ps_args") or "-ef")
        return json_response(res)

    async def stats(self, req: Request) -> Response:
        ref = req.params["id"]
        if not req.qbool("stream", True):
            return json_response(await self.b.stats_sample(ref, one_shot=req.qbool("one-shot")))
        samples = self.b.stats_stream(ref)

        async def gen() -> AsyncIterator[bytes]:
            async for sample in samples:
                yield json_bytes(sample)

        return StreamResponse(gen(), content_type="application/json")

    # ---- filesystem: changes, export, archive, commit ------------------------------------------

    async def changes(self, req: Request) -> Response:
        return json_response(await self.b.changes(req.params["id"]))

    async def export(self, req: Request) -> Response:
        return _tar_response(await self.b.export(req.params["id"]))

    async def archive_get(self, req: Request) -> Response:
        path = _archive_path(req)
        head = req.method == "HEAD"
        st, source = await self.b.archive(req.params["id"], path, stat_only=head)
        header = [("X-Docker-Container-Path-Stat", _stat_header(st))]
        if source is None:
            return raw_response(b"", "application/x-tar", headers=header)
        return _tar_response(source, header)

    async def archive_put(self, req: Request) -> Response:
        path = _archive_path(req)
        no_overwrite = req.qbool("noOverwriteDirNonDir")
        async with self.b.extract_into(
            req.params["id"], path, no_overwrite_dir_non_dir=no_overwrite, copy_uid_gid=req.qbool("copyUIDGID")
        ) as extract:
            reader = AsyncToSyncReader(req.stream(), asyncio.get_running_loop())
            feeder = asyncio.ensure_future(reader.pump())
            try:
                await asyncio.to_thread(extract, reader)  # type: ignore[arg-type]
            finally:
                if not feeder.done():
                    feeder.cancel()
                with contextlib.suppress(BaseException):
                    await feeder
        return empty_response(200)

    async def commit(self, req: Request) -> Response:
        ref = req.q("container") or ""
        if not ref:
            raise InvalidParameter("No container specified")
        repo = req.q("repo") or ""
        tag = req.q("tag") or ""
        repo_tag = f"{repo}:{tag or 'latest'}" if repo else None
        config = await req.json()
        image_id = await self.b.commit(
            ref,
            repo_tag=repo_tag,
            author=req.q("author") or "",
            comment=req.q("comment") or "",
            changes=[c for c in req.qall("changes") if c],
            pause=req.qbool("pause", True),
            config=config if isinstance(config, dict) else None,
        )
        return json_response({"Id": image_id}, status=201)


def _encoded(chunks: AsyncIterator[tuple[int, bytes]], tty: bool) -> AsyncIterator[bytes]:
    async def gen() -> AsyncIterator[bytes]:
        async for stream, data in chunks:
            yield encode(stream, data, tty)

    return gen()
