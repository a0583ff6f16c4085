"""Build routes: `POST /build` (the classic builder's JSON stream) and `POST /build/prune`.

The context is received and the Dockerfile checked before the response starts, so a bad Dockerfile or tag
is an HTTP 400 as from dockerd; from the first step on, errors are reported in-band
(`{"errorDetail": {...}, "error": ...}`). A client that goes away cancels the build, which then cleans up.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import contextlib
import errno
import io
import itertools
import json
import tempfile
from collections.abc import AsyncIterator
from typing import Any, BinaryIO, Protocol, cast

from gorae.api.http import Handler, Request, Response, StreamResponse, json_response
from gorae.builder.ctxindex import ContextIndex, StreamIndex
from gorae.builder.options import BuildOptions
from gorae.builder.service import Prepared
from gorae.builder.steps import Emit, StepFailed
from gorae.errors import DiskFull, GoraeError, InvalidParameter, no_space


class BuildBackend(Protocol):
    """What the build handlers call (implemented by `gorae.builder.service.BuildService`)."""

    def prepare(
        self, stream: BinaryIO, options: BuildOptions, streamed: ContextIndex | None = None
    ) -> Prepared: ...
    def stream_index(self, options: BuildOptions) -> StreamIndex: ...
    def spool_dir(self) -> str: ...
    def fetch_remote(self, url: str) -> tuple[BinaryIO, str]: ...
    def discard(self, prep: Prepared) -> None: ...
    async def run(self, prep: Prepared, emit: Emit) -> str: ...
    def prune(self, *, all: bool = False) -> dict[str, Any]: ...


def _json_param(req: Request, name: str) -> dict[str, Any]:
    raw = req.q(name)
    if not raw:
        return {}
    try:
        v = json.loads(raw)
    except ValueError:
        raise InvalidParameter(f"invalid {name} value: {raw}") from None
    if not isinstance(v, dict):
        raise InvalidParameter(f"invalid {name} value: {raw}")
    return v


def _registry_config(req: Request) -> dict[str, dict[str, str]]:
    """`X-Registry-Config`: base64 (URL-safe or standard) JSON of registry -> AuthConfig; bad input is ignored
    as dockerd ignores it (pulls then go anonymous)."""
    raw = req.headers.get("x-registry-config") or ""
    if not raw:
        return {}
    try:
        padded = raw + "=" * (-len(raw) % 4)
        data = base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_"))
        doc = json.loads(data)
    except (ValueError, TypeError):
        return {}
    if not isinstance(doc, dict):
        return {}
    out: dict[str, dict[str, str]] = {}
    for host, auth in doc.items():
        if isinstance(auth, dict):
            out[str(host)] = {str(k).lower(): str(v) for k, v in auth.items() if isinstance(v, str)}
    return out


def options_of(req: Request) -> BuildOptions:
    """The `/build` query as `BuildOptions` (docker's parameter names and defaults)."""
    cache_from: list[str] = []
    raw_cf = req.q("cachefrom")
    if raw_cf:
        try:
            cf = json.loads(raw_cf)
        except ValueError:
            raise InvalidParameter(f"invalid cachefrom value: {raw_cf}") from None
        cache_from = [str(x) for x in cf] if isinstance(cf, list) else []
    extra = req.q("extrahosts") or ""
    isolation = req.q("isolation") or ""
    if isolation not in ("", "default", "process"):
        raise InvalidParameter(f'Unsupported isolation: "{isolation}"')
    return BuildOptions(
        dockerfile=req.q("dockerfile") or "Dockerfile",
        tags=[t for t in req.qall("t") if t],
        build_args={
            str(k): (None if v is None else str(v)) for k, v in _json_param(req, "buildargs").items()
        },
        labels={str(k): str(v) for k, v in _json_param(req, "labels").items()},
        target=req.q("target") or "",
        no_cache=req.qbool("nocache"),
        pull=req.qbool("pull"),
        rm=req.qbool("rm", True),
        force_rm=req.qbool("forcerm"),
        quiet=req.qbool("q"),
        network_mode=req.q("networkmode") or "",
        extra_hosts=[h for h in extra.replace(",", " ").split() if h],
        shm_size=req.qint("shmsize") or 0,
        cache_from=cache_from,
        platform=req.q("platform") or "",
        registry_auth=_registry_config(req),
    )


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\r\n"


def _error(e: BaseException) -> dict[str, Any]:
    msg = e.message if isinstance(e, GoraeError) else str(e)
    detail: dict[str, Any] = {"message": msg}
    if isinstance(e, StepFailed):
        detail = {"code": e.code, "message": msg}
    return {"errorDetail": detail, "error": msg}


SPOOL_MEMORY = 64 << 20  # a context up to this size is received in memory, a bigger one spills to a file
SPOOL_BATCH = 8 << 20


class _Spool:
    """The context as it arrives: its pieces kept in memory (joined once at the end) up to SPOOL_MEMORY, written
    to a file in `directory` (on the data root) past that."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.parts: list[bytes | memoryview] = []
        self.size = 0
        self.unwritten = 0  # bytes in `parts` once a file is used
        self.file: BinaryIO | None = None

    async def keep(self, pieces: list[bytes | memoryview]) -> None:
        for piece in pieces:
            self.parts.append(piece)
            self.size += len(piece)
            self.unwritten += len(piece)
        if self.size > SPOOL_MEMORY:
            if self.file is None:
                self.file = cast(
                    BinaryIO,
                    await asyncio.to_thread(
                        tempfile.TemporaryFile, dir=self.directory, prefix="build-upload-"
                    ),
                )
            if self.unwritten >= SPOOL_BATCH:
                await self._flush()

    async def _flush(self) -> None:
        assert self.file is not None
        parts, self.parts, self.unwritten = self.parts, [], 0
        await asyncio.to_thread(self.file.writelines, parts)

    async def result(self, *, joined: bool = True) -> BinaryIO:
        """The whole context, at its start. Kept in memory: one buffer (`joined`, what `ContextIndex.read`
        hashes from fastest), or else the pieces as they came, read as one file (a cached build that never
        reads the context again then copies nothing: a fresh 50 MiB buffer costs tens of ms of page faults)."""
        if self.file is None:
            if not joined:
                parts, self.parts = self.parts, []
                return cast(BinaryIO, io.BufferedReader(_PartsFile(parts)))
            data, self.parts = b"".join(self.parts), []
            return io.BytesIO(data)  # shares `data`: no copy
        await self._flush()
        self.file.seek(0)
        return self.file

    def close(self) -> None:
        self.parts = []
        if self.file is not None:
            self.file.close()


class _PartsFile(io.RawIOBase):
    """Pieces of bytes read as one seekable file, without joining them."""

    def __init__(self, parts: list[bytes | memoryview]) -> None:
        super().__init__()
        self._parts = [p for p in parts if p]
        self._starts = list(itertools.accumulate((len(p) for p in self._parts), initial=0))
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._pos >= self._starts[-1]:
            return 0
        i = bisect.bisect_right(self._starts, self._pos) - 1
        off = self._pos - self._starts[i]
        part = self._parts[i]
        n = min(len(buffer), len(part) - off)
        memoryview(buffer).cast("B")[:n] = memoryview(part)[off : off + n]
        self._pos += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._starts[-1]}[whence]
        if base + offset < 0:
            raise OSError(errno.EINVAL, "negative seek position")
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        self._parts = []
        self._starts = [0]
        super().close()


async def _receive(req: Request, directory: str, index: StreamIndex | None = None) -> BinaryIO:
    """The whole context, received on the loop (no thread hand-off per piece: the pieces are 1 MiB, see
    `gorae.httpserver.connection.BODY_BATCH`), each piece fed to `index` as it comes: the hashing overlaps
    the upload, which the client's taring paces (fed from a worker thread instead, one piece at a time, it
    was slower here: the GIL hand-offs cost more than the overlap saved). A full disk: DiskFull, nothing
    kept."""
    spool = _Spool(directory)
    try:
        async for pieces in req.stream_pieces():  # views of the server's read buffers: nothing copied
            await spool.keep(pieces)
            if index is not None:
                for piece in pieces:
                    index.feed(piece)
        return await spool.result(joined=index is None or index.finish() is None)
    except OSError as e:
        spool.close()
        full = no_space(e)
        if full is not None:
            raise DiskFull(f"failed to receive the build context: {full.message}") from None
        raise
    except BaseException:
        spool.close()
        raise


class BuildRouter:
    def __init__(self, backend: BuildBackend) -> None:
        self.builder = backend

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [("POST", "/build", self.build), ("POST", "/build/prune", self.prune)]

    async def prune(self, req: Request) -> Response:
        return json_response(await asyncio.to_thread(self.builder.prune, all=req.qbool("all")))

    async def build(self, req: Request) -> Response:
        options = options_of(req)
        remote = req.q("remote") or ""
        body: BinaryIO
        if remote:  # docker-py's images.build(path=URL): fetched by the daemon
            body, named = await asyncio.to_thread(self.builder.fetch_remote, remote)
            if named and not req.q("dockerfile"):
                options.dockerfile = named
            streamed = None
        else:
            index = self.builder.stream_index(options)
            body = await _receive(req, self.builder.spool_dir(), index)
            streamed = index.finish()
        prep = await asyncio.to_thread(self.builder.prepare, body, options, streamed)  # owns `body`
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

        async def emit(obj: dict[str, Any]) -> None:
            await queue.put(obj)

        async def work() -> None:
            try:
                await self.builder.run(prep, emit)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # reported in-band
                await queue.put(_error(e))
            finally:
                await asyncio.to_thread(self.builder.discard, prep)
                await queue.put(None)

        task = asyncio.ensure_future(work())

        async def gen() -> AsyncIterator[bytes]:
            try:
                while True:
                    item = await queue.get()
                    if item is None:
                        return
                    yield _line(item)
            finally:
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        await task

        return StreamResponse(gen(), content_type="application/json")
