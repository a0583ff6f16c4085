"""Image routes: list, inspect, history, tag, remove, prune, import/pull (`/images/create`), save, load.

Handlers translate HTTP to `ImageService` calls; blocking work (tar, hashing) runs in a thread.
Pull and push come with the distribution issue: until then `fromImage` of an image not present is a 404.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from gorae.api.http import Request, Response, StreamResponse, empty_response, json_response
from gorae.api.streams import AsyncToSyncReader, SyncToAsyncWriter
from gorae.errors import GoraeError, InvalidParameter, NotFound

if TYPE_CHECKING:
    from gorae.daemon.daemon import Daemon


def _progress(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode() + b"\r\n"


def _error_line(e: Exception) -> bytes:
    msg = e.message if isinstance(e, GoraeError) else str(e)
    return _progress({"errorDetail": {"message": msg}, "error": msg})


def register(routes: Any, d: Daemon) -> None:
    images = d.images

    def in_use(image_id: str) -> list[str]:
        return [c["Id"] for c in d.meta.list("container") if c.get("Image") == image_id]

    async def list_images(req: Request) -> Response:
        filters = req.qfilters("filters")
        if req.q("filter"):  # API < 1.41: a reference filter as its own parameter
            filters.setdefault("reference", []).append(req.q("filter") or "")
        res = await asyncio.to_thread(images.list, all=req.qbool("all"), filters=filters)
        return json_response(res)

    async def inspect(req: Request) -> Response:
        return json_response(await asyncio.to_thread(images.inspect, req.params["name"]))

    async def history(req: Request) -> Response:
        return json_response(await asyncio.to_thread(images.history, req.params["name"]))

    async def tag(req: Request) -> Response:
        repo = req.q("repo")
        if not repo:
            raise InvalidParameter("repository name must have at least one component")
        tag = req.q("tag")
        if ":" in repo.rsplit("/", 1)[-1] and "@" not in repo:  # repo=name:tag, as dockerd accepts it
            repo, _, embedded = repo.rpartition(":")
            tag = tag or embedded
        tag = tag or "latest"
        await asyncio.to_thread(images.tag, req.params["name"], repo, tag)
        d.events.publish("image", "tag", images.resolve(req.params["name"]).id, {"name": f"{repo}:{tag}"})
        return empty_response(201)

    async def remove(req: Request) -> Response:
        name = req.params["name"]
        res = await asyncio.to_thread(images.remove, name, req.qbool("force"), req.qbool("noprune"), in_use)
        for item in res:
            if "Untagged" in item:
                d.events.publish("image", "untag", item["Untagged"], {"name": item["Untagged"]})
            if "Deleted" in item:
                d.events.publish("image", "delete", item["Deleted"], {"name": item["Deleted"]})
        return json_response(res)

    async def prune(req: Request) -> Response:
        filters = req.qfilters("filters")
        dangling = filters.pop("dangling", ["true"])
        dangling_only = dangling[-1].lower() not in ("false", "0")
        res = await asyncio.to_thread(images.prune, dangling_only, filters, in_use)
        d.events.publish("image", "prune", "", {"reclaimed": str(res.get("SpaceReclaimed", 0))})
        return json_response(res)

    async def create(req: Request) -> Response:
        from_src = req.q("fromSrc")
        from_image = req.q("fromImage")
        if from_src:
            return await _import(req, from_src)
        if from_image:
            tag = req.q("tag") or ""
            ref = from_image
            if tag and not tag.startswith("sha256:"):
                ref = f"{from_image}:{tag}"
            elif tag:
                ref = f"{from_image}@{tag}"
            try:
                img = await asyncio.to_thread(images.resolve, ref)
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

    async def _import(req: Request, src: str) -> Response:
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
        task = asyncio.ensure_future(asyncio.to_thread(images.import_tar, reader, repo_tag, changes, message))
        feeder = asyncio.ensure_future(reader.pump())

        async def gen() -> AsyncIterator[bytes]:
            try:
                image_id = await task
            except Exception as e:
                feeder.cancel()
                yield _error_line(e)
                return
            await feeder
            d.events.publish("image", "import", image_id, {"name": repo_tag or image_id})
            yield _progress({"status": image_id})

        return StreamResponse(gen(), content_type="application/json")

    async def load(req: Request) -> Response:
        reader = AsyncToSyncReader(req.stream(), asyncio.get_running_loop())
        feeder = asyncio.ensure_future(reader.pump())
        lines: queue.Queue[tuple[str, Any]] = queue.Queue()

        def work() -> None:
            try:
                for line in images.load(reader):
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
                    name = val.split(":", 1)[1].strip() if ":" in val else val
                    d.events.publish("image", "load", name, {"name": name})
                elif kind == "error":
                    feeder.cancel()
                    yield _error_line(val)
                    return
                else:
                    await feeder
                    return

        return StreamResponse(gen(), content_type="application/json")

    async def save(req: Request) -> Response:
        names = req.qall("names") if "name" not in req.params else [req.params["name"]]
        if not names:
            raise InvalidParameter("no images given")
        for n in names:  # fail before streaming: a missing image is a 404, not a broken tar
            await asyncio.to_thread(images.resolve, n)
        writer = SyncToAsyncWriter()

        def work() -> None:
            try:
                images.save(names, writer)
            finally:
                writer.close()

        asyncio.get_running_loop().run_in_executor(None, work)
        for n in names:
            d.events.publish("image", "save", n, {"name": n})
        return StreamResponse(writer.chunks(), content_type="application/x-tar")

    routes.add("GET", "/images/json", list_images)
    routes.add("POST", "/images/create", create)
    routes.add("POST", "/images/load", load)
    routes.add("GET", "/images/get", save)
    routes.add("POST", "/images/prune", prune)
    routes.add("GET", "/images/{name:.+}/json", inspect)
    routes.add("GET", "/images/{name:.+}/history", history)
    routes.add("GET", "/images/{name:.+}/get", save)
    routes.add("POST", "/images/{name:.+}/tag", tag)
    routes.add("DELETE", "/images/{name:.+}", remove)
