"""Image routes: list, inspect, history, tag, remove, prune, import/pull (`/images/create`), save, load.

`ImagesRouter` translates HTTP to the calls of an `ImageBackend` (the image service); blocking work (tar,
hashing) runs in a thread. The backend publishes the image events. `fromImage` (pull) is handed to the
`pull` handler the composition root gives (the registry client's, `gorae.api.distribution`); without one,
only an image already present is "up to date".
"""

from __future__ import annotations

import asyncio
import builtins
import json
import queue
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, BinaryIO, Protocol, cast

from gorae.api.http import Handler, Request, Response, StreamResponse, empty_response, json_response
from gorae.api.streams import AsyncToSyncReader, SyncToAsyncWriter
from gorae.errors import GoraeError, InvalidParameter, NotFound
from gorae.image.models import Image


class ImageBackend(Protocol):
    """What the image handlers call (implemented by `gorae.image.service.ImageService`)."""

    def list(
        self, all: bool = False, filters: dict[str, list[str]] | None = None
    ) -> list[dict[str, Any]]: ...
    def inspect(self, ref_or_id: str) -> dict[str, Any]: ...
    def history(self, ref_or_id: str) -> builtins.list[dict[str, Any]]: ...
    def resolve(self, ref_or_id: str) -> Image: ...
    def tag(self, ref_or_id: str, repo: str, tag: str | None = None) -> None: ...
    def remove(
        self, ref_or_id: str, force: bool = False, noprune: bool = False
    ) -> builtins.list[dict[str, Any]]: ...
    def prune(
        self, dangling_only: bool = True, filters: dict[str, builtins.list[str]] | None = None
    ) -> dict[str, Any]: ...
    def import_tar(
        self,
        stream: BinaryIO,
        repo_tag: str | None = None,
        changes: builtins.list[str] | None = None,
        message: str = "",
    ) -> str: ...
    def load(self, stream: BinaryIO) -> Iterator[str]: ...
    def save(self, names: builtins.list[str], out: BinaryIO) -> None: ...


def _progress(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode() + b"\r\n"


def _error_line(e: Exception) -> bytes:
    msg = e.message if isinstance(e, GoraeError) else str(e)
    return _progress({"errorDetail": {"message": msg}, "error": msg})


PullHandler = Callable[[Request, str], Awaitable[Response]]


class ImagesRouter:
    def __init__(self, backend: ImageBackend, pull: PullHandler | None = None) -> None:
        self.images = backend
        self._pull = pull

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("GET", "/images/json", self.list_images),
            ("POST", "/images/create", self.create),
            ("POST", "/images/load", self.load),
            ("GET", "/images/get", self.save),
            ("POST", "/images/prune", self.prune),
            ("GET", "/images/{name:.+}/json", self.inspect),
            ("GET", "/images/{name:.+}/history", self.history),
            ("GET", "/images/{name:.+}/get", self.save),
            ("POST", "/images/{name:.+}/tag", self.tag),
            ("DELETE", "/images/{name:.+}", self.remove),
        ]

    async def list_images(self, req: Request) -> Response:
        filters = req.qfilters("filters")
        if req.q("filter"):  # API < 1.41: a reference filter as its own parameter
            filters.setdefault("reference", []).append(req.q("filter") or "")
        res = await asyncio.to_thread(self.images.list, all=req.qbool("all"), filters=filters)
        return json_response(res)

    async def inspect(self, req: Request) -> Response:
        return json_response(await asyncio.to_thread(self.images.inspect, req.params["name"]))

    async def history(self, req: Request) -> Response:
        return json_response(await asyncio.to_thread(self.images.history, req.params["name"]))

    async def tag(self, req: Request) -> Response:
        repo = req.q("repo")
        if not repo:
            raise InvalidParameter("repository name must have at least one component")
        tag = req.q("tag")
        if ":" in repo.rsplit("/", 1)[-1] and "@" not in repo:  # repo=name:tag, as dockerd accepts it
            repo, _, embedded = repo.rpartition(":")
            tag = tag or embedded
        tag = tag or "latest"
        await asyncio.to_thread(self.images.tag, req.params["name"], repo, tag)
        return empty_response(201)

    async def remove(self, req: Request) -> Response:
        name = req.params["name"]
        res = await asyncio.to_thread(self.images.remove, name, req.qbool("force"), req.qbool("noprune"))
        return json_response(res)

    async def prune(self, req: Request) -> Response:
        filters = req.qfilters("filters")
        dangling = filters.pop("dangling", ["true"])
        dangling_only = dangling[-1].lower() not in ("false", "0")
        return json_response(await asyncio.to_thread(self.images.prune, dangling_only, filters))

    async def create(self, req: Request) -> Response:
        from_src = req.q("fromSrc")
        from_image = req.q("fromImage")
        if from_src:
            return await self._import(req, from_src)
        if from_image and self._pull is not None:
            return await self._pull(req, from_image)
        if from_image:
            tag = req.q("tag") or ""
            ref = from_image
            if tag and not tag.startswith("sha256:"):
                ref = f"{from_image}:{tag}"
            elif tag:
                ref = f"{from_image}@{tag}"
            try:
                img = await asyncio.to_thread(self.images.resolve, ref)
            except NotFound:
                raise NotFound(
                    f"pull access denied for {from_image}, repository does not exist or may require 'docker login': "
                    "gorae cannot pull from registries yet"
                ) from None

            async def up_to_date() -> AsyncIterator[bytes]:
                yield _progress({"status": f"Pulling from {from_image}", "id": tag or "latest"})
                yield _progress({"status": f"Digest: {img.id}"})
                yield _progress({"status": f"Status: Image is up to date for {ref}"})

            return StreamResponse(up_to_date(), content_type="application/json")
        raise InvalidParameter("fromImage or fromSrc is required")

    async def _import(self, req: Request, src: str) -> Response:
        if src != "-":
            raise InvalidParameter(
                "importing from a URL is not supported; use fromSrc=- with the tarball as the body"
            )
        repo = req.q("repo") or ""
        tag = req.q("tag") or ""
        repo_tag = None
        if repo:
            repo_tag = f"{repo}:{tag}" if tag else repo
        changes = req.qall("changes")
        message = req.q("message") or ""
        reader = AsyncToSyncReader(req.stream(), asyncio.get_running_loop())
        task = asyncio.ensure_future(
            asyncio.to_thread(self.images.import_tar, cast(BinaryIO, reader), repo_tag, changes, message)
        )
        feeder = asyncio.ensure_future(reader.pump())

        async def gen() -> AsyncIterator[bytes]:
            try:
                image_id = await task
            except Exception as e:
                feeder.cancel()
                yield _error_line(e)
                return
            await feeder
            yield _progress({"status": image_id})

        return StreamResponse(gen(), content_type="application/json")

    async def load(self, req: Request) -> Response:
        reader = AsyncToSyncReader(req.stream(), asyncio.get_running_loop())
        feeder = asyncio.ensure_future(reader.pump())
        lines: queue.Queue[tuple[str, Any]] = queue.Queue()

        def work() -> None:
            try:
                for line in self.images.load(cast(BinaryIO, reader)):
                    lines.put(("line", line))
                lines.put(("done", None))
            except Exception as e:  # reported in-band
                lines.put(("error", e))

        threading.Thread(target=work, daemon=True).start()

        async def gen() -> AsyncIterator[bytes]:
            while True:
                kind, val = await asyncio.to_thread(lines.get)
                if kind == "line":
                    yield json.dumps({"stream": val.rstrip("\n") + "\n"}).encode() + b"\r\n"
                elif kind == "error":
                    feeder.cancel()
                    yield _error_line(val)
                    return
                else:
                    await feeder
                    return

        return StreamResponse(gen(), content_type="application/json")

    async def save(self, req: Request) -> Response:
        names = req.qall("names") if "name" not in req.params else [req.params["name"]]
        if not names:
            raise InvalidParameter("no images given")
        for n in names:  # fail before streaming: a missing image is a 404, not a broken tar
            await asyncio.to_thread(self.images.resolve, n)
        writer = SyncToAsyncWriter()

        def work() -> None:
            try:
                self.images.save(names, cast(BinaryIO, writer))
            finally:
                writer.close()

        asyncio.get_running_loop().run_in_executor(None, work)
        return StreamResponse(writer.chunks(), content_type="application/x-tar")
