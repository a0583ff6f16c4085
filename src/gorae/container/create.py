"""`ContainerCreator`: `POST /containers/create` — from a request body to a new record, its writable layer,
its directory (hostname/hosts/resolv.conf) and its mounts, with nothing left behind on failure.

The normalization and validation of Config/HostConfig live in container/config.py; networking checks in
container/networking.py. Never starts anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import socket
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from gorae.container import state as cs
from gorae.container.config import command_of, merge_image_config, normalize_config, normalize_host_config
from gorae.container.files import write_bundle_files
from gorae.container.fs import ContainerFS
from gorae.container.hostchecks import check_joined_containers
from gorae.container.logging import ContainerLogging
from gorae.container.networking import ContainerNetworking
from gorae.container.record import Bookkeeping, Container, cgroups_path
from gorae.container.repository import ContainerRepository
from gorae.container.signals import parse_signal
from gorae.container.types import ImageResolver, MountResolver, RootfsProvider
from gorae.errors import InvalidParameter, NotFound
from gorae.timefmt import rfc3339nano

log = logging.getLogger("gorae.containers")


@dataclass
class _Plan:
    """A checked create request: what `_make` builds the container from."""

    cid: str
    canon: str
    image: Any
    image_ref: str
    image_id: str
    image_info: dict[str, Any]
    config: dict[str, Any]
    host_config: dict[str, Any]
    endpoints_config: dict[str, Any]


@dataclass
class _Made:
    """What a create has made so far that its failure must undo."""

    snapshot: bool = False


async def _uncancellable(work: Awaitable[object]) -> None:
    """Await `work` to its end even when the caller is cancelled (then re-raise the cancellation), so that
    the clean-up after a cancelled create sees everything the worker thread made."""
    task = asyncio.ensure_future(work)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await task
        raise


class ContainerCreator:
    def __init__(
        self,
        repo: ContainerRepository,
        fs: ContainerFS,
        networking: ContainerNetworking,
        images: ImageResolver,
        snapshotter: RootfsProvider,
        mounts: MountResolver | None,
        logging: ContainerLogging,
    ) -> None:
        self._logging = logging
        self._repo = repo
        self._fs = fs
        self._net = networking
        self._images = images
        self._snap = snapshotter
        self._mounts = mounts

    async def create(self, body: dict[str, Any] | None, name: str | None = None) -> dict[str, Any]:
        """POST /containers/create: returns {"Id", "Warnings"}."""
        if not isinstance(body, dict):
            raise InvalidParameter("Config cannot be empty in order to create a container")
        config = normalize_config(body)
        host_config = normalize_host_config(body.get("HostConfig"))
        host_config["LogConfig"] = self._logging.configure(host_config.get("LogConfig"))
        check_joined_containers(host_config, self._repo.get)
        image_ref = str(config.get("Image") or "")
        if not image_ref:
            raise InvalidParameter("Config.Image must be set")  # docker: "No such image: " via lookup
        image = await asyncio.to_thread(self._images.resolve, image_ref)
        image_info = await asyncio.to_thread(self._images.inspect, image.id)
        image_id = str(image_info.get("Id") or image.id)
        config = merge_image_config(config, image_info.get("Config") or {})
        command_of(config)  # refused here (no command) before anything is made
        wd = config.get("WorkingDir") or ""
        if wd and not wd.startswith("/"):
            raise InvalidParameter(
                f"the working directory '{wd}' is invalid, it needs to be an absolute path"
            )
        if config.get("StopSignal"):
            parse_signal(config["StopSignal"])
        endpoints_config = self._net.check_input(config, host_config, body.get("NetworkingConfig"))
        cid = secrets.token_hex(32)
        if not config.get("Hostname"):
            # docker: a host-network container takes the host's name
            config["Hostname"] = (
                socket.gethostname() if host_config.get("NetworkMode") == "host" else cid[:12]
            )
        canon = self._repo.reserve_name(name, cid)
        if host_config.get("Links"):  # dockerd shows legacy links as "/child:/parent/alias"
            host_config["Links"] = [self._net.stored_link(str(lk), canon) for lk in host_config["Links"]]
        directory = self._fs.dir(cid)
        made = _Made()
        try:
            ct = await self._make(
                _Plan(
                    cid, canon, image, image_ref, image_id, image_info, config, host_config, endpoints_config
                ),
                made,
            )
            self._repo.add(ct)
        except BaseException:
            # whatever failed (a worker thread, the network settings, persisting the record), nothing is left
            # behind: no directory, no snapshot, no reserved name
            await self._undo(cid, directory, made.snapshot)
            self._repo.release_name(canon, cid)
            raise
        warnings: list[str] = []
        if host_config.get("OomKillDisable") and not host_config.get("Memory"):  # dockerd's verifier warns
            warnings.append(
                "OOM killer is disabled for the container, but no memory limit is set, this can result in the "
                "system running out of resources."
            )
        return {"Id": cid, "Warnings": warnings}

    async def _make(self, plan: _Plan, made: _Made) -> Container:
        """The container's directory, writable layer, bundle files and mounts, and its record (not yet
        indexed); `made` tells the caller what to undo."""
        cid, config, host_config = plan.cid, plan.config, plan.host_config
        directory = self._fs.dir(cid)
        path, args = command_of(config)
        now = time.time_ns()
        parent = await asyncio.to_thread(self._images.top_layer_chain_id, plan.image)
        os.makedirs(directory, mode=0o710)
        os.makedirs(os.path.join(directory, "rootfs"), mode=0o755)
        made.snapshot = True  # before: a cancelled create must not miss a snapshot its thread still makes
        await _uncancellable(asyncio.to_thread(self._snap.prepare, cid, parent))
        await asyncio.to_thread(_dockerenv, self._snap.upper_dir(cid))
        hostname_path, hosts_path, resolv_path = await asyncio.to_thread(
            write_bundle_files, directory, config["Hostname"], config.get("Domainname") or "", host_config
        )
        mounts_priv, mounts_pub = await self._resolve_mounts(config, host_config, plan.image_info)
        doc: dict[str, Any] = {
            "Id": cid,
            "Created": rfc3339nano(now),
            "Path": path,
            "Args": args,
            "State": cs.initial_state(),
            "Image": plan.image_id,
            "ResolvConfPath": resolv_path,
            "HostnamePath": hostname_path,
            "HostsPath": hosts_path,
            "LogPath": ContainerLogging.log_path(host_config["LogConfig"], directory, cid),
            "Name": plan.canon,
            "RestartCount": 0,
            "Driver": "overlay2",
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": None,
            "HostConfig": host_config,
            "GraphDriver": self._fs.graph_driver(cid),
            "Mounts": mounts_pub,
            "Config": config,
            "NetworkSettings": self._net.created_settings(host_config, plan.endpoints_config),
        }
        book = Bookkeeping(
            created_ns=now,
            snapshot=cid,
            cgroups_path=cgroups_path(host_config, cid),
            image_ref=plan.image_ref,
            mounts=mounts_priv,
            endpoints_config=plan.endpoints_config,
        )
        return Container(doc, book)

    async def _undo(self, cid: str, directory: str, snap_ready: bool) -> None:
        if snap_ready:
            try:
                await asyncio.to_thread(self._snap.remove, cid)
            except NotFound:
                pass
            except Exception as e:  # collected at the next start (container/restore.py)
                log.warning("removing the snapshot of failed create %s: %s", cid[:12], e)
        shutil.rmtree(directory, ignore_errors=True)

    async def _resolve_mounts(
        self, config: dict[str, Any], host_config: dict[str, Any], image_info: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Volumes and binds (when a volume service is wired); (private, public) forms."""
        if self._mounts is None:
            return [], []
        mounts = self._mounts

        def lookup(ref: str) -> dict[str, Any]:
            return {"Mounts": self._repo.get(ref).book.mounts}

        image_volumes = (image_info.get("Config") or {}).get("Volumes")
        priv = await asyncio.to_thread(mounts.resolve, config, host_config, image_volumes, lookup)
        return priv, mounts.public(priv)


def _dockerenv(upper: str) -> None:
    """moby's init layer puts an empty `/.dockerenv` (0755) in every container (tools test for it)."""
    fd = os.open(os.path.join(upper, ".dockerenv"), os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o755)
    os.fchmod(fd, 0o755)
    os.close(fd)
