"""`ContainerStreams`: a container's output and input — logs (read and follow) and attach sessions.

Owns the pre-start hooks: an attach session asked for before the container runs connects between the
runtime's create and start, so no output is lost. Logs are read through the runtime (it knows the log
format); the API only frames the chunks. Never changes a container's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from gorae.container import state as cs
from gorae.container.logging import ContainerLogging
from gorae.container.record import Container
from gorae.container.repository import ContainerRepository
from gorae.container.state import Op
from gorae.errors import GoraeError, InvalidParameter
from gorae.runtime.types import Attachment, LogChunk, Runtime

log = logging.getLogger("gorae.containers")


@dataclass(frozen=True)
class LogOptions:
    stdout: bool = True
    stderr: bool = True
    since: str | None = None  # "sec.nanos"
    until: str | None = None
    tail: int | None = None  # None: all
    timestamps: bool = False
    details: bool = False  # each line after the entry's attributes ("k=v,..." and a space)
    follow: bool = False


@dataclass
class LogStream:
    tty: bool
    chunks: AsyncIterator[LogChunk]


class AttachSession:
    """One `docker attach`: the stream source once the container runs, its log so far, its events."""

    def __init__(self, streams: ContainerStreams, ct: Container, *, stream: bool) -> None:
        self._streams = streams
        self.ct = ct
        self.tty = ct.tty
        self.open_stdin = bool(ct.config.get("OpenStdin"))
        loop = asyncio.get_running_loop()
        self._attached: asyncio.Future[Attachment] = loop.create_future()
        self._removed = streams.repo.wait(ct, "removed")
        self._stream = stream
        if stream:
            if cs.is_running(ct.status):
                with contextlib.suppress(GoraeError, OSError):
                    self._attached.set_result(streams.runtime.open_attach(ct.id))
            if not self._attached.done():
                ct.pre_start.append(self._connect)

    async def _connect(self) -> None:
        if not self._attached.done():
            self._attached.set_result(self._streams.runtime.open_attach(self.ct.id))

    def started(self) -> None:
        """The client is attached (after the HTTP upgrade): docker's "attach" event."""
        self._streams.repo.event(self.ct, "attach")

    def detached(self) -> None:
        self._streams.repo.event(self.ct, "detach")

    async def source(self) -> Attachment | None:
        """The container's stdio once it runs; None when it is removed first."""
        waiting: set[asyncio.Future[Any]] = {self._attached, self._removed}
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if self._attached not in done:
            return None
        return self._attached.result()

    def log_prefix(self, *, stdout: bool, stderr: bool) -> AsyncIterator[LogChunk]:
        """The container's log so far (attach?logs=1)."""
        try:
            source = self._streams.logging.source(self.ct)
        except GoraeError:  # a driver that cannot be read: attach shows no past output (dockerd)
            source = None

        async def gen() -> AsyncIterator[LogChunk]:
            if source is None:
                return
            await self._streams.logging.sync(self.ct)
            items = await asyncio.to_thread(
                lambda: list(source.read(source.path, stdout=stdout, stderr=stderr))
            )
            for item in items:
                yield item

        return gen()

    def close(self) -> None:
        with contextlib.suppress(ValueError):
            self.ct.pre_start.remove(self._connect)
        if not self._removed.done():
            self._removed.cancel()
        if not self._attached.done():
            self._attached.cancel()


class ContainerStreams:
    def __init__(self, repo: ContainerRepository, runtime: Runtime, logging: ContainerLogging) -> None:
        self.repo = repo
        self.runtime = runtime
        self.logging = logging

    def logs(self, ref: str, opts: LogOptions) -> LogStream:
        """docker logs: the chunks so far, and with `follow` new ones until the container exits."""
        ct = self.repo.get(ref)
        if not (opts.stdout or opts.stderr):
            raise InvalidParameter("Bad parameters: you must choose at least one stream")
        kw: dict[str, Any] = {
            "stdout": opts.stdout,
            "stderr": opts.stderr,
            "since": opts.since,
            "until": opts.until,
            "tail": opts.tail,
            "timestamps": opts.timestamps,
            "details": opts.details,
        }
        source = self.logging.source(ct)
        path = source.path
        follow = opts.follow and ct.state.get("Running")
        repo = self.repo

        async def gen() -> AsyncIterator[LogChunk]:
            await self.logging.sync(ct)  # the log as of now, not as of the shipper's last poll
            if follow:
                exited = repo.wait(ct, "next-exit")
                try:
                    async for chunk in source.follow(path, exited=exited, **kw):
                        yield chunk
                finally:
                    if not exited.done():
                        exited.cancel()
            else:
                for chunk in await asyncio.to_thread(lambda: list(source.read(path, **kw))):
                    yield chunk

        return LogStream(ct.tty, gen())

    def attach(self, ref: str, *, stream: bool) -> AttachSession:
        """An attach session (docker's refusal for a paused container; `ref` is quoted as given)."""
        ct = self.repo.get(ref)
        cs.require(ct.status, Op.ATTACH, ref)
        return AttachSession(self, ct, stream=stream)

    @staticmethod
    async def run_pre_start(ct: Container) -> None:
        """Between the runtime's create and start: connect the attach sessions waiting for this start."""
        hooks, ct.pre_start = ct.pre_start, []
        for hook in hooks:
            try:
                await hook()
            except Exception as e:  # an attach that cannot connect must not stop the start
                log.warning("pre-start hook of %s: %s", ct.id[:12], e)
