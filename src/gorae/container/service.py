"""`ContainerService`: the container domain's front door — one object the API's container and network
routers talk to, composed of the parts that each own one thing (repository, create, lifecycle, fs,
streams, networking, listing) plus the small operations that need no part of their own: inspect,
rename, update, resize, top, stats, prune.

Its constructor takes exactly the collaborators the parts use (protocols in container/types.py and
runtime/types.py); the composition root builds it. Never speaks HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, BinaryIO

from gorae.archive.pathstat import PathStat
from gorae.container import restore as restore_
from gorae.container import state as cs
from gorae.container.config import UPDATABLE, validate_resources
from gorae.container.create import ContainerCreator
from gorae.container.execs import ExecService
from gorae.container.fs import ContainerFS, TarSource
from gorae.container.health import HealthMonitor
from gorae.container.lifecycle import ContainerLifecycle
from gorae.container.listing import list_containers, prune_matches
from gorae.container.logging import ContainerLogging
from gorae.container.networking import ContainerNetworking
from gorae.container.record import Container
from gorae.container.repository import WAIT_CONDITIONS, ContainerRepository
from gorae.container.restart import parse_policy
from gorae.container.schema import UPDATE_CONFIG, check_body
from gorae.container.state import Op
from gorae.container.streams import AttachSession, ContainerStreams, LogOptions, LogStream
from gorae.container.types import (
    EventSink,
    ImageResolver,
    Mounter,
    MountResolver,
    NetworkAttacher,
    RecordStore,
    RootfsProvider,
)
from gorae.errors import Conflict, InvalidParameter, NotFound
from gorae.runtime.types import Resources, Runtime
from gorae.timefmt import ZERO_TIME

log = logging.getLogger("gorae.containers")


class ContainerService:
    def __init__(
        self,
        *,
        root: str,
        store: RecordStore,
        publish: EventSink,
        runtime: Runtime,
        images: ImageResolver,
        snapshotter: RootfsProvider,
        networks: NetworkAttacher,
        mounts: MountResolver | None = None,
        default_dns: list[str] | None = None,
        mounter: Mounter | None = None,
        log_driver: str = "json-file",
        log_opts: dict[str, str] | None = None,
    ) -> None:
        self.repo = ContainerRepository(store, publish)
        self.runtime = runtime
        self.images = images
        self.fs = ContainerFS(root, self.repo, snapshotter, images, mounter, volumes=mounts)
        self.networking = ContainerNetworking(networks, self.repo, list(default_dns or []))
        self.logging = ContainerLogging(self.fs.dir, runtime, log_driver, log_opts)
        self.streams = ContainerStreams(self.repo, runtime, self.logging)
        self.creator = ContainerCreator(
            self.repo, self.fs, self.networking, images, snapshotter, mounts, self.logging
        )
        self.lifecycle = ContainerLifecycle(
            self.repo, runtime, self.fs, self.networking, self.streams, mounts, self.logging
        )
        self.execs = ExecService(self.repo, runtime, self.fs)
        self.health = HealthMonitor(self.repo, self.execs)

    # ---- lookup (also the ContainerView of listing.py) -----------------------------------------

    def get(self, ref: str) -> Container:
        return self.repo.get(ref)

    def all(self) -> list[Container]:
        return self.repo.all()

    def count_states(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for ct in self.repo.all():
            out[ct.status.value] = out.get(ct.status.value, 0) + 1
        return out

    def uses_image(self, image_id: str) -> bool:
        return bool(self.image_users(image_id))

    def image_users(self, image_id: str) -> list[str]:
        """IDs of the containers made from image `image_id` (called from worker threads too)."""
        return [ct.id for ct in self.repo.all() if ct.image_id == image_id and not ct.removed]

    def image_running_users(self, image_id: str) -> list[str]:
        """IDs of the running (or paused, or restarting) containers made from image `image_id`."""
        return [
            ct.id
            for ct in self.repo.all()
            if ct.image_id == image_id and not ct.removed and ct.state.get("Running")
        ]

    def volume_users(self, name: str) -> list[str]:
        """IDs of the containers whose mounts use volume `name` (called from worker threads too)."""
        return [
            ct.id
            for ct in self.repo.all()
            if not ct.removed  # its record is gone: `rm -v` removes its volumes before the index forgets it
            and any(m.get("Type") == "volume" and m.get("Name") == name for m in ct.doc.get("Mounts") or [])
        ]

    def status_text(self, ct: Container) -> str:
        return cs.status_text(ct.state, ct.book.started_ns, ct.book.finished_ns)

    def sizes(self, ct: Container) -> tuple[int, int]:
        return self.fs.sizes(ct)

    def summaries(
        self,
        *,
        include_stopped: bool = False,
        limit: int | None = None,
        size: bool = False,
        filters: dict[str, list[str]] | None = None,
    ) -> list[dict[str, Any]]:
        """GET /containers/json."""

        def resolve_image(ref: str) -> str:
            return str(self.images.resolve(ref).id or "")

        return list_containers(
            self,
            include_stopped=include_stopped,
            limit=limit,
            size=size,
            filters=filters,
            resolve_image=resolve_image,
        )

    # ---- lifecycle -------------------------------------------------------------------------------

    async def create(self, body: dict[str, Any] | None, name: str | None = None) -> dict[str, Any]:
        return await self.creator.create(body, name)

    async def start(self, ref: str) -> None:
        await self.lifecycle.start(ref)

    async def stop(self, ref: str, timeout: int | None = None, signal: str | None = None) -> None:
        await self.lifecycle.stop(ref, timeout, signal)

    async def restart(self, ref: str, timeout: int | None = None, signal: str | None = None) -> None:
        await self.lifecycle.restart(ref, timeout, signal)

    async def kill(self, ref: str, signal: str | None = None) -> None:
        await self.lifecycle.kill(ref, signal)

    async def pause(self, ref: str) -> None:
        await self.lifecycle.pause(ref)

    async def unpause(self, ref: str) -> None:
        await self.lifecycle.unpause(ref)

    async def remove(
        self, ref: str, *, force: bool = False, volumes: bool = False, link: bool = False
    ) -> None:
        await self.lifecycle.remove(ref, force=force, volumes=volumes, link=link)

    def wait(self, ref: str, condition: str = "not-running") -> asyncio.Future[dict[str, Any]]:
        """Registered now (an exit right after cannot be missed); await the result later."""
        if condition and condition not in WAIT_CONDITIONS:  # refused before the lookup, as docker does
            raise InvalidParameter(f"invalid condition: {condition!r}")
        return self.repo.wait(self.repo.get(ref), condition)

    async def restore(self) -> None:
        await restore_.restore(self.lifecycle)
        self.health.resume_all()

    async def close(self) -> None:
        await self.health.close()
        await self.lifecycle.close()

    # ---- rename / update / resize --------------------------------------------------------------

    async def rename(self, ref: str, new_name: str) -> None:
        ct = self.repo.get(ref)
        if not new_name:
            raise InvalidParameter("Neither old nor new names may be empty")
        async with ct.lock:
            self.repo.rename(ct, new_name)

    async def update(self, ref: str, body: dict[str, Any]) -> list[str]:
        """POST /containers/{id}/update: resources (live through the runtime) and the restart policy."""
        ct = self.repo.get(ref)
        if not isinstance(body, dict):
            raise InvalidParameter("invalid update body")
        check_body(body, UPDATE_CONFIG)
        async with ct.lock:
            hc = dict(ct.host_config)
            changed: dict[str, Any] = {}
            for key in UPDATABLE:
                if key in body and body[key] is not None and body[key] != 0 and body[key] != "":
                    changed[key] = body[key]
            policy_doc = body.get("RestartPolicy")
            if policy_doc and policy_doc.get("Name"):
                policy = parse_policy(policy_doc)
                if hc.get("AutoRemove") and not policy.is_none:
                    raise InvalidParameter(
                        "Restart policy cannot be updated because AutoRemove is enabled for the container"
                    )
                hc["RestartPolicy"] = policy.to_doc()
            old_swap = int(hc.get("MemorySwap") or 0)
            hc.update(changed)
            if changed.get("Memory") and not changed.get("MemorySwap"):
                # dockerd: a new limit above the set swap limit (0 when none was set, -1 unlimited) is refused
                if int(hc["Memory"]) > old_swap:
                    raise InvalidParameter(
                        f"Cannot update container {ct.id}: "
                        "Memory limit should be smaller than already set memoryswap limit, "
                        "update the memoryswap at the same time"
                    )
            validate_resources(hc)
            if changed and ct.status in cs.HAS_PROCESS:
                await self.runtime.update(ct.id, resources_of(hc, changed))
            ct.doc["HostConfig"] = hc
            self.repo.save(ct)
        self.repo.event(ct, "update")
        return []

    def resize(self, ref: str, height: int, width: int) -> None:
        ct = self.repo.get(ref)
        cs.require(ct.status, Op.RESIZE, ct.id)
        try:
            self.runtime.resize(ct.id, height, width)
        except Conflict:
            if ct.tty:
                raise
        self.repo.event(ct, "resize", {"height": str(height), "width": str(width)})

    # ---- inspection ------------------------------------------------------------------------------

    def inspect(self, ref: str, size: bool = False) -> dict[str, Any]:
        return self.public_doc(self.repo.get(ref), size=size)

    def public_doc(self, ct: Container, *, size: bool = False) -> dict[str, Any]:
        """docker's inspect document (a private copy for the caller)."""
        doc: dict[str, Any] = json.loads(json.dumps(ct.doc))
        doc["ExecIDs"] = self.execs.ids_of(ct.id) or None
        live = self.networking.live_settings(ct)
        if live is not None:
            doc["NetworkSettings"] = live
        if size:
            rw, root = self.fs.sizes(ct)
            doc["SizeRw"] = rw
            doc["SizeRootFs"] = root
        return doc

    def top(self, ref: str, ps_args: str = "-ef") -> dict[str, Any]:
        ct = self.repo.get(ref)
        cs.require(ct.status, Op.TOP, ct.id)
        out = self.runtime.top(ct.id, ps_args or "-ef", ct.book.cgroups_path or None)
        self.repo.event(ct, "top")
        return out

    def stats(self, ct: Container, prev: dict[str, Any] | None = None) -> dict[str, Any]:
        """One docker stats sample; zeros (as docker) when the container is not running."""
        if ct.status in cs.HAS_PROCESS:
            try:
                return self.runtime.stats(ct.id, ct.book.cgroups_path, name=ct.name, prev=prev)
            except Exception as e:
                log.debug("stats of %s: %s", ct.id[:12], e)
        return _empty_stats(ct.id, ct.name, prev)

    # ---- filesystem ------------------------------------------------------------------------------

    async def changes(self, ref: str) -> list[dict[str, Any]]:
        return await self.fs.changes(ref)

    async def export(self, ref: str) -> TarSource:
        return await self.fs.export(ref)

    async def archive(
        self, ref: str, path: str, *, stat_only: bool = False
    ) -> tuple[PathStat, TarSource | None]:
        return await self.fs.archive(ref, path, stat_only=stat_only)

    def extract_into(
        self, ref: str, path: str, *, no_overwrite_dir_non_dir: bool = False, copy_uid_gid: bool = False
    ) -> contextlib.AbstractAsyncContextManager[Callable[[BinaryIO], None]]:
        return self.fs.extract_into(
            ref, path, no_overwrite_dir_non_dir=no_overwrite_dir_non_dir, copy_uid_gid=copy_uid_gid
        )

    def rootfs(self, ref: str | Container) -> contextlib.AbstractAsyncContextManager[str]:
        return self.fs.rootfs(ref)

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
    ) -> str:
        ct = self.repo.get(ref)
        paused_here = False
        if pause and cs.is_running(ct.status):
            # recorded before the freeze, so that a daemon killed during the commit thaws it at the next start
            ct.book.commit_paused = True
            self.repo.save(ct)
            with contextlib.suppress(Exception):
                await self.lifecycle.pause(ct.id)
            paused_here = cs.is_paused(ct.status)  # whatever failed after the freeze, it is thawed below
        try:
            doc = self.public_doc(ct)
            if config:
                doc["Config"] = {**doc["Config"], **{k: v for k, v in config.items() if v is not None}}
            return await self.fs.commit(
                ct, doc, repo_tag=repo_tag, author=author, comment=comment, changes=changes, pause=pause
            )
        finally:
            if paused_here:
                with contextlib.suppress(Exception):
                    await self.lifecycle.unpause(ct.id)
            if ct.book.commit_paused:
                ct.book.commit_paused = False
                with contextlib.suppress(Exception):
                    self.repo.save(ct)

    async def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        deleted: list[str] = []
        reclaimed = 0
        for ct in self.repo.all():
            if ct.status in cs.ALIVE or cs.is_removing(ct.status):
                continue
            if not prune_matches(ct, filters):
                continue
            rw, _ = self.fs.sizes(ct)
            try:
                await self.lifecycle.remove(ct.id, force=False, volumes=False)
            except (Conflict, NotFound):
                continue
            deleted.append(ct.id)
            reclaimed += rw
        self.repo.publish("container", "prune", "", {"reclaimed": str(reclaimed)})
        return {"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    # ---- streams and networks ----------------------------------------------------------------------

    def logs(self, ref: str, opts: LogOptions) -> LogStream:
        return self.streams.logs(ref, opts)

    def attach(self, ref: str, *, stream: bool) -> AttachSession:
        return self.streams.attach(ref, stream=stream)

    async def connect_network(self, network: str, ref: str, endpoint_config: dict[str, Any]) -> None:
        await self.networking.connect(network, ref, endpoint_config)

    async def disconnect_network(self, network: str, ref: str, *, force: bool) -> None:
        await self.networking.disconnect(network, ref, force=force)

    async def take_ports(self, ref: str, from_ref: str) -> None:
        """gorae's extension `POST /containers/{id}/ports/take?from=`: see ContainerNetworking.take_ports."""
        await self.networking.take_ports(ref, from_ref)

    async def stats_sample(self, ref: str, *, one_shot: bool) -> dict[str, Any]:
        """One docker stats answer; without `one_shot` the second of two samples a second apart (CPU deltas)."""
        ct = self.repo.get(ref)
        first = await asyncio.to_thread(self.stats, ct)
        if one_shot:
            return first
        await asyncio.sleep(1.0)
        return await asyncio.to_thread(self.stats, ct, first)

    def stats_stream(self, ref: str) -> AsyncIterator[dict[str, Any]]:
        """A sample a second until the container is removed."""
        ct = self.repo.get(ref)

        async def gen() -> AsyncIterator[dict[str, Any]]:
            prev: dict[str, Any] | None = None
            while not ct.removed:
                sample = await asyncio.to_thread(self.stats, ct, prev)
                yield sample
                prev = sample
                await asyncio.sleep(1.0)

        return gen()


def resources_of(hc: dict[str, Any], changed: dict[str, Any]) -> Resources:
    """The live-updatable resources `docker update` changed, from the new HostConfig `hc`."""
    memory = memory_swap = None
    if "Memory" in changed:
        memory = int(hc["Memory"])
        swap = int(hc.get("MemorySwap") or 0)
        memory_swap = swap if swap else memory * 2
    elif "MemorySwap" in changed:
        memory_swap = int(hc["MemorySwap"])
    period = quota = None
    if "NanoCpus" in changed:
        period = 100000
        quota = int(hc["NanoCpus"]) * period // 10**9
    if "CpuPeriod" in changed:
        period = int(hc["CpuPeriod"])
    if "CpuQuota" in changed:
        quota = int(hc["CpuQuota"])

    def num(key: str) -> int | None:
        return int(hc[key]) if key in changed else None

    return Resources(
        memory=memory,
        memory_swap=memory_swap,
        memory_reservation=num("MemoryReservation"),
        cpu_shares=num("CpuShares"),
        cpu_period=period,
        cpu_quota=quota,
        cpuset_cpus=str(hc["CpusetCpus"]) if "CpusetCpus" in changed else None,
        cpuset_mems=str(hc["CpusetMems"]) if "CpusetMems" in changed else None,
        pids_limit=num("PidsLimit"),
        blkio_weight=num("BlkioWeight"),
    )


def _empty_stats(cid: str, name: str, prev: dict[str, Any] | None) -> dict[str, Any]:
    zero_cpu = {
        "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    }
    return {
        "read": ZERO_TIME,
        "preread": (prev or {}).get("read", ZERO_TIME),
        "pids_stats": {},
        "blkio_stats": {
            "io_service_bytes_recursive": None,
            "io_serviced_recursive": None,
            "io_queue_recursive": None,
            "io_service_time_recursive": None,
            "io_wait_time_recursive": None,
            "io_merged_recursive": None,
            "io_time_recursive": None,
            "sectors_recursive": None,
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": zero_cpu,
        "precpu_stats": (prev or {}).get("cpu_stats", zero_cpu),
        "memory_stats": {},
        "name": name,
        "id": cid,
    }
