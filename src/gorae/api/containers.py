"""Container routes of the Engine API: create, list, inspect, lifecycle, logs, attach, wait, archive,
export, changes, stats, top, update, rename, prune, and `POST /commit`.

Handlers translate HTTP to `ContainerService` calls and shape the answers as docker does (status codes,
stream content types, the 8-byte frames exactly when there is no tty). Long-lived streams (logs -f, attach,
stats, wait) are owned by their response and end when the client goes away. No container state lives here.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gorae.api.attach_stream import encode, parse_detach_keys, pump
from gorae.api.attach_ws import WebSocketStream, handshake_headers, pump_ws
from gorae.api.http import (
    MULTIPLEXED_STREAM,
    RAW_STREAM,
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
from gorae.daemon.container_list import list_containers
from gorae.errors import Conflict, GoraeError, InvalidParameter, NotFound
from gorae.timefmt import parse_timestamp

if TYPE_CHECKING:
    from gorae.daemon.containers import ContainerService, Live
    from gorae.daemon.daemon import Daemon

START_BODY_ERROR = (
    "starting container with non-empty request body was deprecated since API v1.22 and removed in v1.24"
)


def stream_content_type(tty: bool, version: str) -> str:
    """docker: multiplexed-stream for non-tty streams from API 1.42 on, raw-stream otherwise."""
    if not tty and not version_less(version, "1.42"):
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

    def __init__(self, chunks: AsyncIterator[bytes], cleanup: contextlib.AsyncExitStack) -> None:
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
            await self._cleanup.aclose()


def _writer_stream(fn: Any, *args: Any) -> AsyncIterator[bytes]:
    """Run `fn(*args, out)` in a thread; its writes come out as chunks."""
    writer = SyncToAsyncWriter()

    def work() -> None:
        try:
            fn(*args, writer)
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


def _stat_header(st: Any) -> str:
    if hasattr(st, "to_json"):
        doc = st.to_json()
    elif isinstance(st, dict):
        doc = st
    else:
        doc = {
            "name": st.name,
            "size": st.size,
            "mode": st.mode,
            "mtime": st.mtime,
            "linkTarget": st.link_target if hasattr(st, "link_target") else getattr(st, "linkTarget", ""),
        }
    if isinstance(doc.get("mtime"), int | float):
        doc = dict(doc)
        doc["mtime"] = datetime.fromtimestamp(float(doc["mtime"]), UTC).isoformat().replace("+00:00", "Z")
    return base64.b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode()


def register(routes: Any, d: Daemon) -> None:
    svc: ContainerService = d.containers

    # ---- create / list / inspect ---------------------------------------------------------------

    async def create(req: Request) -> Response:
        body = await req.json()
        name = req.q("name") or None
        platform = req.q("platform") or ""
        if platform and not platform.startswith("linux"):
            raise InvalidParameter(f'"{platform}" is not a supported platform')
        res = await svc.create(body, name)
        return json_response(res, status=201)

    async def list_(req: Request) -> Response:
        filters = req.qfilters("filters")

        def resolve_image(ref: str) -> str:
            img = d.images.resolve(ref)
            return str(getattr(img, "id", "") or "")

        res = await asyncio.to_thread(
            list_containers,
            svc,
            include_stopped=req.qbool("all"),
            limit=req.qint("limit", None),
            size=req.qbool("size"),
            filters=filters,
            resolve_image=resolve_image,
        )
        return json_response(res)

    async def inspect(req: Request) -> Response:
        size = req.qbool("size")
        if size:
            doc = await asyncio.to_thread(svc.inspect, req.params["id"], True)
        else:
            doc = svc.inspect(req.params["id"])
        return json_response(doc)

    # ---- lifecycle -----------------------------------------------------------------------------

    async def start(req: Request) -> Response:
        body = await req.body()
        chunked = "chunked" in req.headers.get("transfer-encoding", "").lower()
        if len(body) > 7 or (chunked and body.strip()):
            raise InvalidParameter(START_BODY_ERROR)
        await svc.start(req.params["id"])
        return empty_response(204)

    async def stop(req: Request) -> Response:
        await svc.stop(req.params["id"], _timeout(req), req.q("signal") or None)
        return empty_response(204)

    async def restart(req: Request) -> Response:
        await svc.restart(req.params["id"], _timeout(req), req.q("signal") or None)
        return empty_response(204)

    async def kill(req: Request) -> Response:
        await svc.kill(req.params["id"], req.q("signal") or None)
        return empty_response(204)

    async def pause(req: Request) -> Response:
        await svc.pause(req.params["id"])
        return empty_response(204)

    async def unpause(req: Request) -> Response:
        await svc.unpause(req.params["id"])
        return empty_response(204)

    async def remove(req: Request) -> Response:
        await svc.remove(
            req.params["id"], force=req.qbool("force"), volumes=req.qbool("v"), link=req.qbool("link")
        )
        return empty_response(204)

    async def rename(req: Request) -> Response:
        await svc.rename(req.params["id"], req.q("name") or "")
        return empty_response(204)

    async def update(req: Request) -> Response:
        body = await req.json()
        warnings = await svc.update(req.params["id"], body or {})
        return json_response({"Warnings": warnings})

    async def resize(req: Request) -> Response:
        h = req.qint("h", 0) or 0
        w = req.qint("w", 0) or 0
        svc.resize(req.params["id"], h, w)
        return empty_response(200)

    async def wait(req: Request) -> Response:
        fut = svc.wait(req.params["id"], req.q("condition") or "not-running")

        async def gen() -> AsyncIterator[bytes]:
            try:
                res = await fut
            finally:
                if not fut.done():
                    fut.cancel()  # type: ignore[union-attr]
            yield json_bytes(res)

        return StreamResponse(gen(), content_type="application/json")

    async def prune(req: Request) -> Response:
        filters = req.qfilters("filters")
        if "until" in filters:
            now = time.time_ns()
            filters["until"] = [str(parse_timestamp(v, now_ns=now)) for v in filters["until"]]
        return json_response(await svc.prune(filters))

    # ---- output: logs, attach, top, stats ------------------------------------------------------

    async def logs(req: Request) -> Response:
        from gorae.runtime.logs import follow_log, read_log

        ct = svc.get(req.params["id"])
        stdout, stderr = req.qbool("stdout"), req.qbool("stderr")
        if not (stdout or stderr):
            raise InvalidParameter("Bad parameters: you must choose at least one stream")
        kw: dict[str, Any] = {
            "stdout": stdout,
            "stderr": stderr,
            "since": _log_time(req, "since"),
            "until": _log_time(req, "until"),
            "tail": _tail(req),
            "timestamps": req.qbool("timestamps"),
        }
        tty = ct.tty
        path = ct.doc["LogPath"]
        follow = req.qbool("follow") and ct.state.get("Running")

        async def gen() -> AsyncIterator[bytes]:
            if follow:
                exited = svc.wait(ct.id, "next-exit")
                try:
                    async for stream, data in follow_log(path, exited=exited, **kw):
                        yield encode(stream, data, tty)
                finally:
                    if not exited.done():  # type: ignore[union-attr]
                        exited.cancel()  # type: ignore[union-attr]
            else:
                items = await asyncio.to_thread(lambda: list(read_log(path, **kw)))
                buf = bytearray()
                for stream, data in items:
                    buf += encode(stream, data, tty)
                    if len(buf) >= 1 << 16:
                        yield bytes(buf)
                        buf.clear()
                if buf:
                    yield bytes(buf)

        return StreamResponse(gen(), content_type=stream_content_type(tty, req.version))

    async def attach(req: Request, websocket: bool = False) -> Response | None:
        ct = svc.get(req.params["id"])
        if ct.status.value == "paused":
            raise Conflict(f"container {req.params['id']} is paused, unpause the container before attach")
        ws_headers = handshake_headers(req) if websocket else None
        detach_keys = parse_detach_keys(req.q("detachKeys"))
        want_stream = req.qbool("stream")
        want_logs = req.qbool("logs")
        stdin = req.qbool("stdin") and bool(ct.doc["Config"].get("OpenStdin"))
        stdout, stderr = req.qbool("stdout"), req.qbool("stderr")
        tty = ct.tty
        loop = asyncio.get_running_loop()
        attached: asyncio.Future[Any] = loop.create_future()
        removed = svc.wait(ct.id, "removed")

        async def connect() -> None:
            if not attached.done():
                attached.set_result(d.runtime.open_attach(ct.id))

        if want_stream:
            if ct.status.value == "running":
                with contextlib.suppress(GoraeError, OSError):
                    attached.set_result(d.runtime.open_attach(ct.id))
            if not attached.done():
                ct.pre_start.append(connect)
        if ws_headers is not None:
            hj = await req.hijack("", ws_headers)
            ws: WebSocketStream | None = WebSocketStream(hj)
        else:
            hj, ws = await req.hijack(stream_content_type(tty, req.version)), None
        svc.event(ct, "attach")
        prefix = _log_prefix(ct, stdout, stderr, tty or ws is not None) if want_logs else None
        try:
            if not want_stream:
                if prefix is not None:
                    async for chunk in prefix:
                        await (ws or hj).write(chunk)
                return None
            done, _ = await asyncio.wait({attached, removed}, return_when=asyncio.FIRST_COMPLETED)
            if attached not in done:
                return None
            source = attached.result()
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
                svc.event(ct, "detach")
        finally:
            with contextlib.suppress(ValueError):
                ct.pre_start.remove(connect)
            if not removed.done():  # type: ignore[union-attr]
                removed.cancel()  # type: ignore[union-attr]
            if not attached.done():
                attached.cancel()
            if ws is not None:
                await ws.close()
            await hj.close()
        return None

    async def attach_ws(req: Request) -> Response | None:
        return await attach(req, websocket=True)

    async def top(req: Request) -> Response:
        res = await asyncio.to_thread(svc.top, req.params["id"], req.q("ps_args") or "-ef")
        return json_response(res)

    async def stats(req: Request) -> Response:
        ct = svc.get(req.params["id"])
        stream = req.qbool("stream", True)
        one_shot = req.qbool("one-shot")
        if not stream:
            if one_shot:
                return json_response(await asyncio.to_thread(svc.stats, ct))
            first = await asyncio.to_thread(svc.stats, ct)
            await asyncio.sleep(1.0)
            return json_response(await asyncio.to_thread(svc.stats, ct, first))

        async def gen() -> AsyncIterator[bytes]:
            prev: dict[str, Any] | None = None
            while not ct.removed:
                sample = await asyncio.to_thread(svc.stats, ct, prev)
                yield json_bytes(sample)
                prev = sample
                await asyncio.sleep(1.0)

        return StreamResponse(gen(), content_type="application/json")

    # ---- filesystem: changes, export, archive, commit ------------------------------------------

    async def changes(req: Request) -> Response:
        return json_response(await svc.changes(req.params["id"]))

    async def export(req: Request) -> Response:
        from gorae.archive import tar_dir

        ct = svc.get(req.params["id"])
        stack = contextlib.AsyncExitStack()
        root = await stack.enter_async_context(svc.rootfs(ct))
        svc.event(ct, "export")
        return raw_response(_Closing(_writer_stream(tar_dir, root), stack), "application/x-tar")

    async def archive_get(req: Request) -> Response:
        from gorae.archive import stat_path, tar_path

        ct = svc.get(req.params["id"])
        path = _archive_path(req)
        stack = contextlib.AsyncExitStack()
        root = await stack.enter_async_context(svc.rootfs(ct))
        try:
            st = await asyncio.to_thread(stat_path, root, path)
        except NotFound:
            await stack.aclose()
            raise NotFound(f"Could not find the file {path} in container {req.params['id']}") from None
        except BaseException:
            await stack.aclose()
            raise
        header = [("X-Docker-Container-Path-Stat", _stat_header(st))]
        if req.method == "HEAD":
            await stack.aclose()
            return raw_response(b"", "application/x-tar", headers=header)
        svc.event(ct, "archive-path")
        return raw_response(
            _Closing(_writer_stream(tar_path, root, path), stack), "application/x-tar", headers=header
        )

    async def archive_put(req: Request) -> Response:
        from gorae.archive import extract_to, stat_path

        ct = svc.get(req.params["id"])
        path = _archive_path(req)
        no_overwrite = req.qbool("noOverwriteDirNonDir")
        if ct.doc["HostConfig"].get("ReadonlyRootfs"):
            raise InvalidParameter("container rootfs is marked read-only")
        async with svc.rootfs(ct) as root:
            try:
                st = await asyncio.to_thread(stat_path, root, path)
            except NotFound:
                raise NotFound(f"Could not find the file {path} in container {req.params['id']}") from None
            mode = st.get("mode") if isinstance(st, dict) else getattr(st, "mode", 0)
            if not (int(mode) & (1 << 31)):  # Go's os.ModeDir
                raise InvalidParameter("extraction point is not a directory")
            loop = asyncio.get_running_loop()
            reader = AsyncToSyncReader(req.stream(), loop)
            feeder = asyncio.ensure_future(reader.pump())
            try:
                await asyncio.to_thread(extract_to, root, path, reader, no_overwrite_dir_non_dir=no_overwrite)
            finally:
                if not feeder.done():
                    feeder.cancel()
                with contextlib.suppress(BaseException):
                    await feeder
        svc.event(ct, "extract-to-dir")
        return empty_response(200)

    async def commit(req: Request) -> Response:
        ref = req.q("container") or ""
        if not ref:
            raise InvalidParameter("No container specified")
        repo = req.q("repo") or ""
        tag = req.q("tag") or ""
        repo_tag = None
        if repo:
            repo_tag = f"{repo}:{tag or 'latest'}"
        config = await req.json()
        changes = [c for c in req.qall("changes") if c]
        image_id = await svc.commit(
            ref,
            repo_tag=repo_tag,
            author=req.q("author") or "",
            comment=req.q("comment") or "",
            changes=changes,
            pause=req.qbool("pause", True),
            config=config if isinstance(config, dict) else None,
        )
        return json_response({"Id": image_id}, status=201)

    routes.add("POST", "/containers/create", create)
    routes.add("GET", "/containers/json", list_)
    routes.add("POST", "/containers/prune", prune)
    routes.add("GET", "/containers/{id}/json", inspect)
    routes.add("POST", "/containers/{id}/start", start)
    routes.add("POST", "/containers/{id}/stop", stop)
    routes.add("POST", "/containers/{id}/restart", restart)
    routes.add("POST", "/containers/{id}/kill", kill)
    routes.add("POST", "/containers/{id}/pause", pause)
    routes.add("POST", "/containers/{id}/unpause", unpause)
    routes.add("POST", "/containers/{id}/rename", rename)
    routes.add("POST", "/containers/{id}/update", update)
    routes.add("POST", "/containers/{id}/resize", resize)
    routes.add("POST", "/containers/{id}/wait", wait)
    routes.add("POST", "/containers/{id}/attach", attach)
    routes.add("GET", "/containers/{id}/attach/ws", attach_ws)
    routes.add("GET", "/containers/{id}/logs", logs)
    routes.add("GET", "/containers/{id}/top", top)
    routes.add("GET", "/containers/{id}/stats", stats)
    routes.add("GET", "/containers/{id}/changes", changes)
    routes.add("GET", "/containers/{id}/export", export)
    routes.add("GET", "/containers/{id}/archive", archive_get)
    routes.add("HEAD", "/containers/{id}/archive", archive_get)
    routes.add("PUT", "/containers/{id}/archive", archive_put)
    routes.add("DELETE", "/containers/{id}", remove)
    routes.add("POST", "/commit", commit)


def _log_prefix(ct: Live, stdout: bool, stderr: bool, tty: bool) -> AsyncIterator[bytes]:
    """The container's log so far, encoded for an attach stream (attach?logs=1)."""
    from gorae.runtime.logs import read_log

    async def gen() -> AsyncIterator[bytes]:
        items = await asyncio.to_thread(
            lambda: list(read_log(ct.doc["LogPath"], stdout=stdout, stderr=stderr))
        )
        for stream, data in items:
            yield encode(stream, data, tty)

    return gen()
