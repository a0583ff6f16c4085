"""`BuildService`: one `/build` request end to end — the received context indexed (extracted into a private
directory only if a step needs its files), the Dockerfile read and checked (errors before anything runs), the
steps run (`steps.Build`), the result tagged only when every step succeeded, and everything the build made for
itself (context, containers) removed whatever happened. Also the build cache's size and prune."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from typing import Any, BinaryIO

from gorae import dockerignore as ignore
from gorae.archive.tree import remove_tree
from gorae.builder import remote
from gorae.builder.cache import BuildCache
from gorae.builder.context import extract_context
from gorae.builder.ctxindex import ContextIndex, StreamIndex
from gorae.builder.options import BuildOptions
from gorae.builder.parser import Dockerfile, parse
from gorae.builder.steps import Build, Emit, Puller
from gorae.container.service import ContainerService
from gorae.errors import Conflict, GoraeError, InvalidParameter, NotFound
from gorae.image import reference as refs
from gorae.image.service import ImageService
from gorae.metrics.sink import NULL_SINK, MetricsSink, timed
from gorae.snapshot.overlay import OverlaySnapshotter


class Prepared:
    """A received context: its tar (spooled), its index, and its directory once a step needed the files."""

    def __init__(
        self, body: BinaryIO, index: ContextIndex, dockerfile: Dockerfile, options: BuildOptions, tmp: str
    ):
        self.body = body
        self.index = index
        self.dockerfile = dockerfile
        self.options = options
        self._tmp = tmp
        self.context_dir = ""

    def files(self) -> str:
        """The context's directory, extracted (with .dockerignore applied) on first use. Blocking."""
        if not self.context_dir:
            cdir = tempfile.mkdtemp(dir=self._tmp, prefix="build-context-")
            try:
                self.body.seek(0)
                extract_context(self.body, cdir)
                _apply_dockerignore(cdir)
            except OSError as e:
                remove_tree(cdir)
                raise InvalidParameter(f"failed to extract the build context: {e}") from None
            except BaseException:
                remove_tree(cdir)
                raise
            self.context_dir = cdir
        return self.context_dir


class BuildService:
    def __init__(
        self,
        *,
        images: ImageService,
        containers: ContainerService,
        snapshotter: OverlaySnapshotter,
        meta: Any,
        tmp: str,
        pull: Puller | None = None,
        metrics: MetricsSink = NULL_SINK,
    ) -> None:
        self.images = images
        self._metrics = metrics  # each build timed as engine_daemon_build_actions_seconds{action="build"}
        self.containers = containers
        self.snap = snapshotter
        self.cache = BuildCache(meta, images.store.exists)
        self.tmp = tmp
        self.pull = pull

    def spool_dir(self) -> str:
        """Where an upload too big for memory is kept while it is received (on the data root)."""
        os.makedirs(self.tmp, exist_ok=True)
        return self.tmp

    def fetch_remote(self, url: str) -> tuple[BinaryIO, str]:
        """`remote=URL`: the context tar and, for a bare Dockerfile URL, its name (see `remote`)."""
        return remote.fetch(url, self.spool_dir())

    def check_tags(self, tags: list[str]) -> None:
        for t in tags:
            try:
                ref = refs.parse_tagged(t)
            except (GoraeError, ValueError):
                raise InvalidParameter(f"invalid reference format: {t}") from None
            if ref.digest is not None:
                raise InvalidParameter("invalid reference format")

    def stream_index(self, options: BuildOptions) -> StreamIndex:
        """An index to feed the context to while it arrives (see `ctxindex.StreamIndex`); `prepare` takes
        what it finished with."""
        return StreamIndex(_keep(options))

    def prepare(
        self, body: BinaryIO, options: BuildOptions, streamed: ContextIndex | None = None
    ) -> Prepared:
        """Index the received context (a seekable file, now owned by the result; `streamed` when it was
        indexed as it arrived) and read and check the Dockerfile (blocking). The caller calls `discard` when
        done."""
        try:
            self.check_tags(options.tags)
            os.makedirs(self.tmp, exist_ok=True)
            name = options.dockerfile or "Dockerfile"
            clean = os.path.normpath("/" + name).lstrip("/")
            index = streamed if streamed is not None else ContextIndex.read(body, _keep(options))
            rel = index.resolve(clean)
            if rel not in index.texts and name == "Dockerfile":
                rel = index.resolve("dockerfile")
            if rel not in index.texts and index.entries.get(rel) is not None:
                body.seek(0)
                index.texts.update(ContextIndex.read(body, {rel}).texts)  # reached through a link
            if rel not in index.texts:
                if index.entries.get(rel) is not None and index.entries[rel].kind == "file":
                    raise InvalidParameter(f"Dockerfile {name} is too large")
                raise InvalidParameter(f"Cannot locate specified Dockerfile: {name}")
            df = parse(index.texts[rel].decode("utf-8", errors="replace"), name)
            ignore_text = index.texts.get(".dockerignore")
            if ignore_text:
                index.drop_ignored(ignore.parse(ignore_text.decode("utf-8", errors="replace")))
            return Prepared(body, index, df, options, self.tmp)
        except BaseException:
            body.close()
            raise

    def discard(self, prep: Prepared) -> None:
        prep.body.close()
        if prep.context_dir:
            with contextlib.suppress(OSError):
                remove_tree(prep.context_dir)

    async def run(self, prep: Prepared, emit: Emit) -> str:
        """Run the build; tags the result on success. Raises the first failure (nothing tagged)."""
        with timed(self._metrics, "build", "build"):
            return await self._run(prep, emit)

    async def _run(self, prep: Prepared, emit: Emit) -> str:
        opts = prep.options
        build = Build(
            images=self.images,
            containers=self.containers,
            snapshotter=self.snap,
            cache=self.cache,
            context=prep,
            dockerfile=prep.dockerfile,
            options=opts,
            emit=emit,
            tmp=self.tmp,
            pull=self.pull,
        )
        try:
            iid = await build.run()
        finally:
            # never-started helpers (COPY, WORKDIR, --from) always go; RUN containers per --rm/--force-rm
            # (docker's --rm keeps the failed step's container; --force-rm removes it too)
            for cid in list(build.made_containers):
                if not _started(self.containers, cid) or opts.force_rm or (opts.rm and build.finished):
                    await build.remove_container(cid)
        if opts.quiet:  # dockerd: only the ID, as a stream line (no aux)
            await emit({"stream": iid + "\n"})
            for t in opts.tags:
                await asyncio.to_thread(self._tag, iid, t)
            return iid
        await emit({"aux": {"ID": iid}})
        await emit({"stream": f"Successfully built {iid.removeprefix('sha256:')[:12]}\n"})
        for t in opts.tags:
            await asyncio.to_thread(self._tag, iid, t)
            await emit({"stream": f"Successfully tagged {_familiar(t)}\n"})
        return iid

    def _tag(self, iid: str, t: str) -> None:
        ref = refs.parse_tagged(t)
        self.images.tag(iid, ref.familiar_name, ref.tag or "latest")

    # ---- cache usage and prune -----------------------------------------------------------------

    def usage(self) -> list[dict[str, Any]]:
        """`BuildCache` of /system/df: one record per cached step whose image still exists."""
        out: list[dict[str, Any]] = []
        for key, doc in self.cache.entries():
            iid = str(doc.get("Image") or "")
            if not self.images.store.exists(iid):
                continue
            refs_of = self.images.refs_of(iid)
            out.append(
                {
                    "ID": key[:25],
                    "Parent": str(doc.get("Parent") or "").removeprefix("sha256:")[:25],
                    "Type": "regular",
                    "Description": iid,
                    "InUse": bool(refs_of),
                    "Shared": False,
                    "Size": 0,
                    "CreatedAt": _rfc(doc.get("Created")),
                    "LastUsedAt": None,
                    "UsageCount": 1,
                }
            )
        return out

    def prune(self, *, all: bool = False) -> dict[str, Any]:
        """POST /build/prune: forget the cache and remove the intermediate images no tag, container or
        other image needs."""
        deleted: list[str] = []
        reclaimed = 0
        for key, doc in self.cache.entries():
            iid = str(doc.get("Image") or "")
            self.cache.forget(key)
            deleted.append(key)
            if not self.images.store.exists(iid):
                continue
        # intermediate images: untagged, unused, without children; repeat up the chains
        changed = True
        while changed:
            changed = False
            for img in self.images.all_images():
                if self.images.refs_of(img.id) or self.images.store.children(img.id):
                    continue
                if not img.parent or not img.config.get("container_config"):
                    continue
                try:
                    self.images.remove(img.id)
                except (Conflict, NotFound):
                    continue
                reclaimed += img.size
                changed = True
        return {"CachesDeleted": deleted or None, "SpaceReclaimed": reclaimed}


def _keep(options: BuildOptions) -> set[str]:
    """The context files whose contents the index keeps: the Dockerfile (as named, and lowercased as docker
    also looks for it) and .dockerignore."""
    clean = os.path.normpath("/" + (options.dockerfile or "Dockerfile")).lstrip("/")
    return {clean, clean.lower(), ".dockerignore"}


def _started(containers: ContainerService, cid: str) -> bool:
    try:
        return bool(containers.get(cid).state.get("StartedAt", "").startswith(("1", "2")))
    except GoraeError:
        return False


def _familiar(t: str) -> str:
    return t if ":" in t.rsplit("/", 1)[-1] else t + ":latest"


def _rfc(ts: Any) -> str:
    import datetime

    try:
        return datetime.datetime.fromtimestamp(float(ts), datetime.UTC).isoformat().replace("+00:00", "Z")
    except (TypeError, ValueError):
        return ""


def _apply_dockerignore(cdir: str) -> None:
    """Remove what the context's .dockerignore excludes (the daemon side of docker's rule)."""
    path = os.path.join(cdir, ".dockerignore")
    if not os.path.isfile(path) or os.path.islink(path):
        return
    with open(path, encoding="utf-8", errors="replace") as f:
        pats = ignore.parse(f.read())
    if not pats:
        return
    for dirpath, dirnames, filenames in os.walk(cdir, topdown=True):
        for name in list(dirnames) + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, cdir)
            if rel in ("Dockerfile", ".dockerignore"):
                continue
            if ignore.excluded(pats, rel):
                if name in dirnames and ignore.may_hold_inclusions(pats, rel):
                    continue
                if os.path.isdir(full) and not os.path.islink(full):
                    dirnames.remove(name)
                    shutil.rmtree(full, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        os.unlink(full)
