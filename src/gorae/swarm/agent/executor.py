"""The agent's narrow view of the local engine: what it needs to run a task as a container, nothing more.

`gorae.swarm.agent.local.LocalExecutor` implements it over the container service; tests may give another.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class TaskContainer:
    """A container as the agent sees it."""

    id: str
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    running: bool = False
    started: bool = False  # it ran at least once (not just created)
    exit_code: int = 0
    pid: int = 0
    health: str = ""  # "" (no healthcheck), "starting", "healthy", "unhealthy"


@dataclass(frozen=True)
class LogLine:
    stream: int  # 1 stdout, 2 stderr
    time_ns: int
    line: bytes


class Executor(Protocol):
    def task_containers(self) -> list[TaskContainer]:
        """Every container that carries a swarm task ID label."""

    def inspect(self, ref: str) -> TaskContainer | None:
        """The container (ID or name), None when there is none."""

    async def ensure_image(self, image: str, registry_auth: str = "") -> None:
        """Pull `image` when it is not present, with the X-Registry-Auth `registry_auth` (base64url JSON)
        when given (failures are left to the create that follows)."""

    async def create(self, name: str, body: dict[str, object]) -> str:
        """Create the container; its ID."""

    async def start(self, ref: str) -> None: ...

    async def stop(self, ref: str, grace: int, signal: str | None) -> None: ...

    async def remove(self, ref: str) -> None:
        """Remove it (forced), its anonymous volumes kept as docker's task removal does."""

    async def wait_exit(self, ref: str) -> int:
        """Wait until it is not running (now if it is not); its exit code."""

    async def wait_health(self, ref: str, want: tuple[str, ...] = ("healthy", "unhealthy")) -> str:
        """Wait until its health is one of `want` (now if it is): that status, or "exited" if it stopped
        first."""

    def logs(
        self, ref: str, *, stdout: bool, stderr: bool, tail: int | None, since_ns: int, follow: bool
    ) -> AsyncIterator[LogLine]:
        """Its log lines (with their times), then with `follow` new ones until it exits."""
