"""The container runtime as a narrow interface (podman's OCIRuntime is the model) and the typed values it
speaks in.

A runtime is a thin wrapper over the thing that runs processes: create/start/kill/delete/pause/resume a
container from a bundle, wait for its exit, exec into it, attach to it, resize its terminal, update its
resources, read its log. It keeps no container state of its own that the caller must manage (the
conmon+runc implementation keeps everything on disk, so a new instance after a daemon restart manages the
containers an old one created). The container service (gorae/container/) decides *when*; the runtime
only knows *how*. Nothing outside gorae/runtime/ builds runc or conmon command lines or reads their files.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, fields
from typing import Any, NamedTuple, Protocol

# the runtime's view of a container (runc's statuses)
STATUS_CREATED = "created"
STATUS_RUNNING = "running"
STATUS_PAUSED = "paused"
STATUS_STOPPED = "stopped"
LIVE_STATUSES = frozenset({STATUS_CREATED, STATUS_RUNNING, STATUS_PAUSED})


class ExitStatus(NamedTuple):
    """How a container's (or an exec's) process ended: `code` as docker reports it (128+N for a signal)."""

    code: int
    oom_killed: bool = False


@dataclass(frozen=True)
class RuntimeState:
    """What the runtime knows of a container right now."""

    status: str  # created | running | paused | stopped
    pid: int = 0

    @property
    def alive(self) -> bool:
        return self.status in LIVE_STATUSES


@dataclass(frozen=True)
class Resources:
    """A live resource update (`docker update`); None leaves a setting as it is."""

    memory: int | None = None
    memory_swap: int | None = None
    memory_reservation: int | None = None
    cpu_shares: int | None = None
    cpu_period: int | None = None
    cpu_quota: int | None = None
    cpuset_cpus: str | None = None
    cpuset_mems: str | None = None
    pids_limit: int | None = None
    blkio_weight: int | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))


class Attachment(Protocol):
    """One attach session to a container's (or exec's) stdio."""

    async def read(self) -> tuple[int, bytes] | None:
        """Next output chunk as (1=stdout | 2=stderr, data); None at end of output."""
        ...

    async def write(self, data: bytes) -> None: ...

    def close_stdin(self) -> None: ...

    def close(self) -> None: ...


class ExecProcess(Protocol):
    """A started exec session; `attachment` was connected before the process started (when asked)."""

    @property
    def pid(self) -> int: ...

    @property
    def attachment(self) -> Attachment | None: ...

    async def wait(self) -> int: ...

    def resize(self, height: int, width: int) -> None: ...


LogChunk = tuple[int, bytes]  # (1=stdout | 2=stderr, data)


class Runtime(Protocol):
    """What the container service needs from a container runtime."""

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
        """Create the container from the OCI bundle at `bundle` (not started); the monitor's pid. Its output
        goes to `log_path` (the runtime's own log format, kept under `log_size_max` bytes when > 0; the
        runtime may replace the file when it is full), or nowhere when `log_path` is empty."""
        ...

    async def start(self, id: str) -> None: ...

    async def kill(self, id: str, signal: int, all: bool = False) -> None:
        """Conflict "Container X is not running" when it has no process left."""
        ...

    async def delete(self, id: str, force: bool = False) -> None:
        """Forget the container (a missing one is not an error)."""
        ...

    async def pause(self, id: str) -> None: ...

    async def resume(self, id: str) -> None: ...

    def state(self, id: str) -> RuntimeState | None:
        """The container's runtime state, None when the runtime does not know it."""
        ...

    def exists(self, id: str) -> bool:
        """Whether the runtime holds anything of the container (even a half-created or exited one)."""
        ...

    def init_pid(self, id: str) -> int:
        """The host pid of the container's init process, cheaply (no subprocess); 0 when not known that
        way (the caller may ask `state`)."""
        ...

    async def wait_exit(self, id: str) -> ExitStatus:
        """Once the container has exited: its exit status (also for one a previous daemon started)."""
        ...

    async def update(self, id: str, resources: Resources) -> None: ...

    def open_attach(self, id: str) -> Attachment:
        """Connect to the container's stdio (NotFound when it is not available)."""
        ...

    def resize(self, id: str, height: int, width: int) -> None: ...

    async def exec(
        self, id: str, exec_id: str, process: dict[str, Any], *, tty: bool, stdin: bool, attach: bool = True
    ) -> ExecProcess: ...

    def top(self, id: str, ps_args: str, cgroups_path: str | None = None) -> dict[str, Any]: ...

    def stats(
        self, id: str, cgroups_path: str, *, name: str = "", prev: dict[str, Any] | None = None
    ) -> dict[str, Any]: ...

    def read_log(self, path: str, **options: Any) -> Iterator[LogChunk]:
        """The log written for a container so far (options: stdout, stderr, since, until, tail, timestamps)."""
        ...

    def follow_log(
        self, path: str, *, exited: Callable[[], bool] | Awaitable[object] | None = None, **options: Any
    ) -> AsyncIterator[LogChunk]:
        """read_log, then new output until `exited` says the container is gone."""
        ...
