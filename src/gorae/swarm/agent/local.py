"""`LocalExecutor`: the agent's executor over this daemon's container service and registry client."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

from gorae.container.health import health_status, probe_command
from gorae.container.record import Container
from gorae.container.service import ContainerService
from gorae.container.streams import LogOptions
from gorae.distribution.auth import AuthConfig, decode_registry_auth
from gorae.distribution.service import DistributionService
from gorae.errors import GoraeError, NotFound
from gorae.swarm.agent.executor import LogLine, TaskContainer
from gorae.swarm.agent.spec import TASK_ID
from gorae.timefmt import parse_timestamp

DECIDED = ("healthy", "unhealthy")
log = logging.getLogger("gorae.swarm.agent")


class LocalExecutor:
    def __init__(self, containers: ContainerService, distribution: DistributionService) -> None:
        self._containers = containers
        self._distribution = distribution
        self._waiters: dict[str, list[tuple[asyncio.Future[str], tuple[str, ...]]]] = {}
        containers.repo.on_event(self._on_event)

    def _on_event(self, ct: Container, action: str) -> None:
        waiting = self._waiters.get(ct.id)
        if not waiting:
            return
        if action.startswith("health_status: "):
            outcome = action.split(": ", 1)[1]
        elif action in ("die", "destroy"):
            outcome = "exited"
        else:
            return
        keep = []
        for fut, want in waiting:
            if fut.done():
                continue
            if outcome == "exited" or outcome in want:
                fut.set_result(outcome)
            else:
                keep.append((fut, want))
        if keep:
            self._waiters[ct.id] = keep
        else:
            self._waiters.pop(ct.id, None)

    @staticmethod
    def _view(ct: Container) -> TaskContainer:
        state = ct.state
        health = health_status(state) if probe_command(ct.config) is not None else ""
        return TaskContainer(
            id=ct.id,
            name=ct.name.lstrip("/"),
            labels={str(k): str(v) for k, v in (ct.config.get("Labels") or {}).items()},
            running=bool(state.get("Running")),
            started=bool(ct.book.started_ns),
            exit_code=int(state.get("ExitCode") or 0),
            pid=int(state.get("Pid") or 0),
            health=health if health != "none" else "",
        )

    def task_containers(self) -> list[TaskContainer]:
        return [
            self._view(ct)
            for ct in self._containers.all()
            if not ct.removed and TASK_ID in (ct.config.get("Labels") or {})
        ]

    def inspect(self, ref: str) -> TaskContainer | None:
        try:
            ct = self._containers.get(ref)
        except NotFound:
            return None
        return None if ct.removed else self._view(ct)

    async def ensure_image(self, image: str, registry_auth: str = "") -> None:
        try:
            self._containers.images.resolve(image)
            return
        except GoraeError:
            pass
        try:
            auth = decode_registry_auth(registry_auth)
        except GoraeError as e:  # dockerd's executor: bad credentials are logged, the pull goes without
            log.warning("swarm task image %s: %s", image, e.message)
            auth = AuthConfig()
        try:
            ref = self._distribution.pull_reference(image, "")
            if ref.tag is None and ref.digest is None:
                ref = ref.with_default_tag()
            await asyncio.to_thread(
                self._distribution.pull, ref, auth, lambda _obj: None, threading.Event(), None
            )
        except GoraeError as e:
            log.warning("swarm task image %s: pull failed: %s", image, e.message)
            # the create says "No such image", as dockerd's task does

    async def create(self, name: str, body: dict[str, object]) -> str:
        doc = await self._containers.create(dict(body), name)
        return str(doc["Id"])

    async def start(self, ref: str) -> None:
        await self._containers.start(ref)

    async def stop(self, ref: str, grace: int, signal: str | None) -> None:
        await self._containers.stop(ref, grace, signal or None)

    async def remove(self, ref: str) -> None:
        await self._containers.remove(ref, force=True)

    async def wait_exit(self, ref: str) -> int:
        result: dict[str, Any] = await self._containers.wait(ref, "not-running")
        return int(result.get("StatusCode") or 0)

    async def wait_health(self, ref: str, want: tuple[str, ...] = DECIDED) -> str:
        ct = self._containers.get(ref)
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        entry = (fut, want)
        self._waiters.setdefault(ct.id, []).append(entry)  # registered before the check: nothing is missed
        try:
            view = self._view(ct)
            if not view.running:
                return "exited"
            if view.health in want:
                return view.health
            return await fut
        finally:
            waiting = self._waiters.get(ct.id, [])
            if entry in waiting:
                waiting.remove(entry)
            if not waiting:
                self._waiters.pop(ct.id, None)

    async def logs(
        self, ref: str, *, stdout: bool, stderr: bool, tail: int | None, since_ns: int, follow: bool
    ) -> AsyncIterator[LogLine]:
        since = f"{since_ns // 1_000_000_000}.{since_ns % 1_000_000_000:09d}" if since_ns > 0 else None
        opts = LogOptions(
            stdout=stdout, stderr=stderr, since=since, tail=tail, timestamps=True, follow=follow
        )
        out = self._containers.logs(ref, opts)
        async for stream, data in out.chunks:
            stamp, _, line = data.partition(b" ")
            try:
                ns = parse_timestamp(stamp.decode())
            except (GoraeError, UnicodeDecodeError):
                ns, line = 0, data
            yield LogLine(stream, ns, line)
