"""`ContainerFS`: a container's filesystem — the rootfs mount and its reference count, docker cp (stat, get,
put), export, changes, sizes, the GraphDriver document, and commit (moby's copyBackend).

The rootfs is mounted on the host while the container runs or while any cp/export uses it, and
unmounted when the last user is done and no process needs it. Tar streams are produced by a sync writer
the caller runs in a thread (`TarSource`), so the HTTP plumbing stays in the API. Never changes a
container's state: commit pauses through the callbacks it is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from gorae.archive import (
    MountSpec,
    check_writable,
    extract_to,
    init_artifacts,
    overlay_changes,
    stat_path,
    tar_dir,
    tar_path,
)
from gorae.archive.pathstat import PathStat
from gorae.container import state as cs
from gorae.container.record import Container
from gorae.container.repository import ContainerRepository
from gorae.container.types import ImageResolver, Mounter, MountResolver, RootfsProvider
from gorae.errors import InvalidParameter, NotFound
from gorae.runtime.users import resolve_user
from gorae.snapshot import Mount, mount_all, unmount

log = logging.getLogger("gorae.containers")


@dataclass
class TarSource:
    """A tar to stream: run `write(out)` in a thread, then `await close()` (releases the rootfs)."""

    write: Callable[[BinaryIO], object]
    close: Callable[[], Awaitable[None]]


class HostMounter:
    """The host's mount table (the default `Mounter`)."""

    def mount(self, mounts: list[Mount], target: str) -> None:
        mount_all(mounts, target)

    def unmount(self, target: str) -> None:
        unmount(target)

    def is_mounted(self, target: str) -> bool:
        return os.path.ismount(target)


class ContainerFS:
    def __init__(
        self,
        root: str,
        repo: ContainerRepository,
        snapshotter: RootfsProvider,
        images: ImageResolver,
        mounter: Mounter | None = None,
        volumes: MountResolver | None = None,
    ) -> None:
        self.root = root
        self._volumes = volumes
        self._repo = repo
        self._snap = snapshotter
        self._images = images
        self._mounter = mounter or HostMounter()

    def dir(self, cid: str) -> str:
        return os.path.join(self.root, cid)

    @property
    def snapshotter(self) -> RootfsProvider:
        return self._snap

    def rootfs_path(self, cid: str) -> str:
        return os.path.join(self.root, cid, "rootfs")

    # ---- mount refcount --------------------------------------------------------------------------

    async def mount(self, ct: Container) -> str:
        target = self.rootfs_path(ct.id)
        if ct.mounted and not await asyncio.to_thread(self._mounter.is_mounted, target):
            ct.mounted = False  # gone under us (an unmount whose caller was cancelled): mount again
        if not ct.mounted:
            mounts = await asyncio.to_thread(self._snap.mounts, ct.book.snapshot)
            os.makedirs(target, exist_ok=True)
            await asyncio.to_thread(self._mounter.mount, mounts, target)
            ct.mounted = True
        return target

    async def unmount(self, ct: Container) -> None:
        if ct.mounted and ct.mount_refs == 0:
            target = self.rootfs_path(ct.id)
            try:
                await asyncio.to_thread(self._mounter.unmount, target)
            except Exception as e:  # busy mounts are retried at the next exit or removal
                log.warning("unmounting %s: %s", target, e)
                return
            ct.mounted = False

    def is_mounted(self, ct: Container) -> bool:
        return self._mounter.is_mounted(self.rootfs_path(ct.id))

    @contextlib.asynccontextmanager
    async def rootfs(self, ref: str | Container) -> AsyncIterator[str]:
        """The container's root filesystem mounted on the host for the duration (docker cp, export, ...)."""
        ct = ref if isinstance(ref, Container) else self._repo.get(ref)
        async with ct.lock:
            path = await self.mount(ct)
            ct.mount_refs += 1
        try:
            yield path
        finally:
            # shielded: a client that hangs up mid-response cancels its request, and a release cut short
            # would leak the reference or leave `mounted` saying yes over an unmounted directory
            await asyncio.shield(self._release(ct))

    async def _release(self, ct: Container) -> None:
        async with ct.lock:
            ct.mount_refs -= 1
            if ct.status not in cs.ALIVE:
                await self.unmount(ct)

    # ---- docker cp / export -----------------------------------------------------------------------

    async def export(self, ref: str) -> TarSource:
        ct = self._repo.get(ref)
        stack = contextlib.AsyncExitStack()
        root = await stack.enter_async_context(self.rootfs(ct))
        self._repo.event(ct, "export")
        return TarSource(lambda out: tar_dir(root, out), stack.aclose)

    @contextlib.asynccontextmanager
    async def _volumes_held(self, ct: Container) -> AsyncIterator[None]:
        """The container's volumes mounted for a copy (a stopped container's volume with driver options
        is otherwise an empty directory), as moby's mountVolumes."""
        vols = self._volumes
        mounts = list(ct.book.mounts)
        if vols is None or not any(m.get("Type") == "volume" for m in mounts):
            yield
            return
        await asyncio.to_thread(vols.hold, mounts)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(asyncio.to_thread(vols.release, mounts))

    @staticmethod
    def cp_mounts(ct: Container) -> list[MountSpec]:
        """What `docker cp` sees mounted in the container (moby's setupMounts for openContainerFS): the
        hostname/hosts/resolv.conf files, then its volumes and bind mounts (the latter win at the same
        destination). tmpfs mounts are left out, as dockerd does: a copy sees the rootfs under them."""
        out: list[MountSpec] = []
        ro_root = bool(ct.host_config.get("ReadonlyRootfs"))
        files = (("HostnamePath", "/etc/hostname"), ("HostsPath", "/etc/hosts"), ("ResolvConfPath", "/etc/resolv.conf"))
        for key, dest in files:
            path = ct.doc.get(key)
            if path:
                out.append(MountSpec(dest, str(path), ro_root))
        for rec in ct.book.mounts:
            kind, source, target = rec.get("Type"), rec.get("Source"), rec.get("Destination")
            if kind in ("volume", "bind") and source and target:
                out.append(MountSpec(str(target), str(source), not rec.get("RW", True)))
        return out

    async def archive(
        self, ref: str, path: str, *, stat_only: bool = False
    ) -> tuple[PathStat, TarSource | None]:
        """The stat of `path` and (unless `stat_only`) a tar of it; NotFound in docker's words."""
        ct = self._repo.get(ref)
        mounts = self.cp_mounts(ct)
        stack = contextlib.AsyncExitStack()
        root = await stack.enter_async_context(self.rootfs(ct))
        try:
            await stack.enter_async_context(self._volumes_held(ct))
            st = await asyncio.to_thread(stat_path, root, path, mounts)
        except NotFound:
            await stack.aclose()
            raise NotFound(f"Could not find the file {path} in container {ref}") from None
        except BaseException:
            await stack.aclose()
            raise
        if stat_only:
            await stack.aclose()
            return st, None
        self._repo.event(ct, "archive-path")
        return st, TarSource(lambda out: tar_path(root, path, out, mounts=mounts), stack.aclose)

    @contextlib.asynccontextmanager
    async def extract_into(
        self, ref: str, path: str, *, no_overwrite_dir_non_dir: bool = False, copy_uid_gid: bool = False
    ) -> AsyncIterator[Callable[[BinaryIO], None]]:
        """docker cp into a container: yields a sync `extract(tar_stream)` for a thread, once `path` is
        known to be a directory; publishes "extract-to-dir" when the body is done."""
        ct = self._repo.get(ref)
        mounts = self.cp_mounts(ct)
        readonly = bool(ct.host_config.get("ReadonlyRootfs"))
        async with self.rootfs(ct) as root, self._volumes_held(ct):
            try:
                st = await asyncio.to_thread(stat_path, root, path, mounts)
            except NotFound:
                raise NotFound(f"Could not find the file {path} in container {ref}") from None
            if not st.is_dir:
                raise InvalidParameter("extraction point is not a directory")
            # the read-only refusal (a `:ro` volume, a read-only rootfs) before the body is read
            await asyncio.to_thread(check_writable, root, path, mounts, readonly)
            owner: tuple[int, int] | None = None
            if copy_uid_gid and ct.config.get("User"):
                # moby's tarCopyOptions: the files go to the container's user (none set: the tar's owners);
                # resolved in the container's /etc/passwd (moby asks the host's)
                user = await asyncio.to_thread(resolve_user, root, str(ct.config["User"]))
                owner = (user.uid, user.gid)

            def extract(stream: BinaryIO) -> None:
                extract_to(
                    root,
                    path,
                    stream,
                    no_overwrite_dir_non_dir=no_overwrite_dir_non_dir,
                    mounts=mounts,
                    readonly=readonly,
                    owner=owner,
                )

            yield extract
        self._repo.event(ct, "extract-to-dir")

    # ---- layers ------------------------------------------------------------------------------------

    def graph_driver(self, cid: str) -> dict[str, Any]:
        data: dict[str, str] = {}
        with contextlib.suppress(Exception):
            upper = self._snap.upper_dir(cid)
            lowers = self._snap.lower_dirs(cid)
            base = os.path.dirname(upper)
            data = {
                "LowerDir": ":".join(lowers),
                "MergedDir": self.rootfs_path(cid),
                "UpperDir": upper,
                "WorkDir": os.path.join(base, "work"),
            }
        return {"Data": data or None, "Name": "overlay2"}

    def sizes(self, ct: Container) -> tuple[int, int]:
        rw = 0
        with contextlib.suppress(Exception):
            rw = int(self._snap.usage(ct.book.snapshot))
        image_size = 0
        with contextlib.suppress(Exception):
            image_size = int(self._images.inspect(ct.image_id).get("Size") or 0)
        return rw, rw + image_size

    async def changes(self, ref: str) -> list[dict[str, Any]]:
        ct = self._repo.get(ref)
        upper = self._snap.upper_dir(ct.book.snapshot)
        lowers = self._snap.lower_dirs(ct.book.snapshot)
        items = await asyncio.to_thread(overlay_changes, upper, lowers)
        return [{"Kind": kind, "Path": path} for kind, path in items]

    async def commit(
        self,
        ct: Container,
        doc: dict[str, Any],
        *,
        repo_tag: str | None,
        author: str,
        comment: str,
        changes: list[str],
        pause: bool,
    ) -> str:
        """A new image from the container's writable layer; `doc` is its inspect document (config applied)."""
        upper = self._snap.upper_dir(ct.book.snapshot)
        lowers = self._snap.lower_dirs(ct.book.snapshot)
        hidden = await asyncio.to_thread(init_artifacts, upper, lowers)
        image_id = await asyncio.to_thread(
            self._images.commit, doc, upper, repo_tag, author, comment, changes, pause, hidden
        )
        self._repo.event(ct, "commit", {"comment": comment} if comment else None)
        return str(image_id)

    async def remove_layer(self, ct: Container) -> None:
        with contextlib.suppress(NotFound):
            await asyncio.to_thread(self._snap.remove, ct.book.snapshot)
