"""`ContainerLogging`: a container's logging driver from create to removal.

At create: the LogConfig with the daemon's defaults merged in (dockerd's mergeAndVerifyLogConfig) and
checked (unknown drivers and options refused in dockerd's words), and the `LogPath` docker shows
(the json-file's path, else empty). At start: the driver's sink is opened (its start-time errors end the
start, as dockerd's "failed to initialize logging driver: ..."), and a `LogShipper` moves conmon's spool
(`ctr.log` in the container's directory) into it while the container runs; at exit the rest is shipped
before the exit is recorded, so `docker wait; docker logs` sees everything. After a daemon restart the
shippers of running containers resume from their saved position. `source` says how `docker logs` reads a
container: the driver's store, the runtime's own log for containers created before drivers existed
(their LogPath is the spool), or NotImplementedYet for `none` (dockerd's 501 text).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from gorae.container.record import Container
from gorae.errors import GoraeError
from gorae.runtime import jsonlog
from gorae.runtime import logdrivers as drivers
from gorae.runtime.logship import SPOOL_MAX, LogShipper
from gorae.runtime.types import LogChunk, Runtime

log = logging.getLogger("gorae.logs")

SPOOL_NAME = "ctr.log"


@dataclass(frozen=True)
class LogSource:
    """How `docker logs` reads one container."""

    read: Callable[..., Iterator[LogChunk]]
    follow: Callable[..., AsyncIterator[LogChunk]]
    path: str


class ContainerLogging:
    def __init__(
        self,
        dir_of: Callable[[str], str],
        runtime: Runtime,
        default_type: str = drivers.JSON_FILE,
        default_opts: dict[str, str] | None = None,
    ) -> None:
        self._dir_of = dir_of
        self._runtime = runtime
        self.default_type = default_type or drivers.JSON_FILE
        self.default_opts = dict(default_opts or {})
        self._shippers: dict[str, LogShipper] = {}

    # ---- create ----------------------------------------------------------------------------------

    def configure(self, log_config: dict[str, Any] | None) -> dict[str, Any]:
        """The container's LogConfig: daemon defaults merged, dockerd's create-time checks."""
        merged = drivers.merge_defaults(log_config or {}, self.default_type, self.default_opts)
        drivers.check(merged["Type"], merged["Config"])
        return merged

    @staticmethod
    def log_path(log_config: dict[str, Any], directory: str, cid: str) -> str:
        return drivers.public_log_path(str(log_config.get("Type") or ""), directory, cid)

    # ---- paths -----------------------------------------------------------------------------------

    def spool(self, ct: Container) -> str:
        return os.path.join(self._dir_of(ct.id), SPOOL_NAME)

    def _legacy(self, ct: Container) -> bool:
        """Created before logging drivers: conmon's log is the container's log (LogPath names it)."""
        return ct.log_path == self.spool(ct)

    @staticmethod
    def _kind(ct: Container) -> tuple[str, dict[str, str]]:
        lc = ct.host_config.get("LogConfig") or {}
        opts = {str(k): str(v) for k, v in (lc.get("Config") or {}).items()}
        return str(lc.get("Type") or drivers.JSON_FILE), opts

    def runtime_log(self, ct: Container) -> tuple[str, int]:
        """What the runtime is told at create: the spool (size-capped), or nothing for `none`."""
        if self._legacy(ct):
            return ct.log_path, 0
        kind, _ = self._kind(ct)
        if kind == drivers.NONE:
            return "", 0
        return self.spool(ct), SPOOL_MAX

    # ---- running ---------------------------------------------------------------------------------

    def _info(self, ct: Container) -> drivers.ContainerInfo:
        cfg = ct.config
        return drivers.ContainerInfo(
            id=ct.id,
            name=ct.name.lstrip("/"),
            image_name=str(cfg.get("Image") or ""),
            image_id=ct.image_id,
            labels={str(k): str(v) for k, v in (cfg.get("Labels") or {}).items()},
            env=[str(e) for e in cfg.get("Env") or []],
            directory=self._dir_of(ct.id),
        )

    async def open(self, ct: Container) -> None:
        """Open the driver and start shipping (a start; a restored running container). Start-time driver
        errors propagate."""
        if self._legacy(ct) or ct.id in self._shippers:
            return
        kind, opts = self._kind(ct)
        if kind == drivers.NONE:
            return
        sink = await asyncio.to_thread(drivers.open_sink, kind, opts, self._info(ct))
        shipper = LogShipper(self.spool(ct), sink)
        self._shippers[ct.id] = shipper
        shipper.start()

    async def finish(self, ct: Container) -> None:
        """The container exited (or its start failed): ship the rest, close the driver, drop the spool."""
        shipper = self._shippers.pop(ct.id, None)
        if shipper is None and not self._legacy(ct) and os.path.exists(self.spool(ct)):
            # exited while no daemon ran: ship what conmon wrote meanwhile
            kind, opts = self._kind(ct)
            try:
                sink = await asyncio.to_thread(drivers.open_sink, kind, opts, self._info(ct))
            except GoraeError as e:
                log.warning("log driver of %s: %s", ct.id[:12], e.message)
                sink = None
            shipper = LogShipper(self.spool(ct), sink)
        if shipper is not None:
            await shipper.finish()

    async def sync(self, ct: Container) -> None:
        """Ship what conmon has written so far (a reader of the log is about to look)."""
        shipper = self._shippers.get(ct.id)
        if shipper is not None:
            try:
                await asyncio.to_thread(shipper.pump)
            except Exception as e:
                log.warning("shipping the log of %s: %s", ct.id[:12], e)

    async def resume(self, ct: Container) -> None:
        """A running container found at daemon start: ship from where the last daemon stopped."""
        try:
            await self.open(ct)
        except GoraeError as e:
            log.warning("log driver of %s: %s", ct.id[:12], e.message)

    async def close(self) -> None:
        """The daemon stops: ship what is there and keep the spools for the next daemon."""
        shippers, self._shippers = list(self._shippers.values()), {}
        for shipper in shippers:
            with contextlib.suppress(Exception):
                await shipper.detach()

    # ---- reading ---------------------------------------------------------------------------------

    def source(self, ct: Container) -> LogSource:
        """Where `docker logs` reads `ct` (NotImplementedYet for a driver that cannot be read)."""
        if self._legacy(ct):
            return LogSource(self._runtime.read_log, self._runtime.follow_log, ct.log_path)
        kind, opts = self._kind(ct)
        path = drivers.readable_path(kind, self._dir_of(ct.id), ct.id, opts)
        return LogSource(jsonlog.read_log, jsonlog.follow_log, path)
