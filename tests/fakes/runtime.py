"""An in-memory container runtime for unit tests (httpx's mock-transport habit): no root, no runc.

Processes live in a dict. A test makes them exit with `exit(id, code, oom=...)`; `kill` ends them with
128+signal unless the signal is in the process's `ignore` set. `start` interprets the testsuite's tiny
command vocabulary from the bundle's config.json (`sh -c "exit N"`, `echo TEXT`, anything else runs until
killed). `fail_create`/`fail_start` make the next create/start of an id raise. The same instance handed to
a second service plays a daemon restart: the processes (like conmon's) outlive the service.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from gorae.errors import CommandFailed, Conflict, GoraeError, NotFound
from gorae.runtime.types import ExitStatus, LogChunk, Resources, RuntimeState


@dataclass
class FakeProcess:
    id: str
    bundle: str
    log_path: str
    argv: list[str]
    pid: int
    status: str = "created"
    exit_status: ExitStatus | None = None
    signals: list[int] = field(default_factory=list)
    ignore: set[int] = field(default_factory=set)
    exited: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class FakeExec:
    pid: int
    attachment: Any = None
    code: int = 0

    async def wait(self) -> int:
        return self.code

    def resize(self, height: int, width: int) -> None:
        pass


class FakeRuntime:
    def __init__(self) -> None:
        self.create_gate: asyncio.Event | None = None
        self.procs: dict[str, FakeProcess] = {}
        self.logs: dict[str, list[LogChunk]] = {}
        self.calls: list[tuple[str, str]] = []
        self.updates: list[tuple[str, Resources]] = []
        self.fail_create: dict[str, GoraeError] = {}
        self.fail_start: dict[str, GoraeError] = {}
        self.ignore_signals: set[int] = set()  # given to every process created from now on
        self._next_pid = 1000

    # ---- test controls ---------------------------------------------------------------------------
    def exit(self, id: str, code: int, *, oom: bool = False) -> None:
        """The container's process ends now with `code`."""
        p = self.procs[id]
        p.status = "stopped"
        p.exit_status = ExitStatus(code, oom)
        p.exited.set()

    def running(self) -> list[str]:
        return [p.id for p in self.procs.values() if p.status in ("running", "paused")]

    # ---- Runtime ---------------------------------------------------------------------------------
    async def create(
        self,
        id: str,
        bundle: str,
        *,
        tty: bool,
        stdin: bool,
        stdin_once: bool,
        log_path: str,
        log_size_max: int = 0,
    ) -> int:
        self.calls.append(("create", id))
        if self.create_gate is not None:  # a test holds creates here (a start in progress)
            await self.create_gate.wait()
        if id in self.procs:
            raise Conflict(f"container {id} already exists in the runtime")
        err = self.fail_create.pop(id, None) or self.fail_create.pop("*", None)
        if err is not None:
            raise err
        argv: list[str] = []
        try:
            with open(os.path.join(bundle, "config.json"), encoding="utf-8") as f:
                argv = list(json.load(f).get("process", {}).get("args") or [])
        except (OSError, ValueError):
            pass
        self._next_pid += 1
        self.procs[id] = FakeProcess(
            id, bundle, log_path, argv, self._next_pid, ignore=set(self.ignore_signals)
        )
        return self._next_pid + 100000

    async def start(self, id: str) -> None:
        self.calls.append(("start", id))
        p = self._get(id)
        err = self.fail_start.pop(id, None) or self.fail_start.pop("*", None)
        if err is not None:
            raise err
        p.status = "running"
        m = (
            re.fullmatch(r"exit (\d+)", p.argv[2])
            if p.argv[:2] == ["sh", "-c"] and len(p.argv) == 3
            else None
        )
        if m:
            self.exit(id, int(m.group(1)))
        elif p.argv[:1] == ["echo"]:
            self.logs.setdefault(p.log_path, []).append((1, (" ".join(p.argv[1:]) + "\n").encode()))
            self.exit(id, 0)

    async def kill(self, id: str, signal: int, all: bool = False) -> None:
        self.calls.append(("kill", id))
        p = self.procs.get(id)
        if p is None or p.status not in ("created", "running", "paused"):
            raise Conflict(f"Container {id} is not running")
        p.signals.append(int(signal))
        if int(signal) not in p.ignore or int(signal) == 9:
            self.exit(id, 128 + int(signal))

    async def delete(self, id: str, force: bool = False) -> None:
        self.calls.append(("delete", id))
        p = self.procs.get(id)
        if p is None:
            return
        if p.status != "stopped" and not force:
            raise CommandFailed(["fake", "delete", id], 1, "container is running")
        if p.status != "stopped":
            self.exit(id, 137)
        del self.procs[id]

    async def pause(self, id: str) -> None:
        p = self._get(id)
        if p.status != "running":
            raise CommandFailed(["fake", "pause", id], 1, "container not running")
        p.status = "paused"

    async def resume(self, id: str) -> None:
        p = self._get(id)
        if p.status != "paused":
            raise CommandFailed(["fake", "resume", id], 1, "container not paused")
        p.status = "running"

    def state(self, id: str) -> RuntimeState | None:
        p = self.procs.get(id)
        if p is None:
            return None
        return RuntimeState(p.status, p.pid if p.status != "stopped" else 0)

    def exists(self, id: str) -> bool:
        return id in self.procs

    def init_pid(self, id: str) -> int:
        p = self.procs.get(id)
        return p.pid if p is not None and p.status != "stopped" else 0

    async def wait_exit(self, id: str) -> ExitStatus:
        p = self.procs.get(id)
        if p is None:
            raise NotFound(f"No such container: {id}")
        await p.exited.wait()
        assert p.exit_status is not None
        return p.exit_status

    async def update(self, id: str, resources: Resources) -> None:
        self._get(id)
        self.updates.append((id, resources))

    def open_attach(self, id: str) -> Any:
        raise NotFound(f"attach socket of {id} is not available")

    def resize(self, id: str, height: int, width: int) -> None:
        self._get(id)

    async def exec(
        self, id: str, exec_id: str, process: dict[str, Any], *, tty: bool, stdin: bool, attach: bool = True
    ) -> FakeExec:
        self._get(id)
        self._next_pid += 1
        return FakeExec(self._next_pid)

    def top(self, id: str, ps_args: str, cgroups_path: str | None = None) -> dict[str, Any]:
        p = self._get(id)
        return {"Titles": ["PID", "CMD"], "Processes": [[str(p.pid), " ".join(p.argv)]]}

    def stats(
        self, id: str, cgroups_path: str, *, name: str = "", prev: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        self._get(id)
        return {"id": id, "name": name, "read": "now", "memory_stats": {"usage": 1}}

    def read_log(self, path: str, **options: Any) -> Iterator[LogChunk]:
        streams = {1: options.get("stdout", True), 2: options.get("stderr", True)}
        return iter([c for c in self.logs.get(path, []) if streams[c[0]]])

    async def follow_log(self, path: str, *, exited: Any = None, **options: Any) -> AsyncIterator[LogChunk]:
        for chunk in self.read_log(path, **options):
            yield chunk

    def _get(self, id: str) -> FakeProcess:
        p = self.procs.get(id)
        if p is None:
            raise NotFound(f"No such container: {id}")
        return p
