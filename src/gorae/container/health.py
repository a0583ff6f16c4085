"""`HealthMonitor`: runs a container's healthcheck (`HEALTHCHECK`, `--health-*`) as dockerd does, and keeps
`State.Health` (Status starting|healthy|unhealthy, FailingStreak, the last 5 probe results).

One monitor task per running, unpaused container with a CMD or CMD-SHELL test (NONE or no test: none).
A probe is an exec through `ExecService` (so it emits docker's `exec_create`/`exec_start`/`exec_die`
events and runs under the runtime's exec machinery), with stdout and stderr captured up to 4096 bytes
("..." marks the cut), killed after the timeout ("Health check exceeded timeout (30s)", exit code -1). The
timer runs from the end of one probe to the start of the next: `StartInterval` while still starting within
`StartPeriod`, else `Interval`; failures inside the start period do not count. A status change publishes
`health_status: healthy|unhealthy` and is persisted (single probe results only live in memory, as
dockerd keeps them best-effort). The monitor follows the container's own events: it is (re)armed at
`start` and `unpause`, and by `resume_all` after a daemon restart (live restore); it stops at `die`,
`pause` and `destroy`, which leaves the status `unhealthy` as dockerd 20.10 reports it. Never changes a
container's run state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from dataclasses import dataclass
from typing import Any

from gorae.container import state as cs
from gorae.container.execs import ExecService
from gorae.container.record import Container
from gorae.container.repository import ContainerRepository
from gorae.errors import GoraeError
from gorae.humanize import go_duration
from gorae.timefmt import rfc3339nano

log = logging.getLogger("gorae.health")

MAX_OUTPUT = 4096
MAX_LOG_ENTRIES = 5
DEFAULT_INTERVAL = 30 * 10**9
DEFAULT_TIMEOUT = 30 * 10**9
DEFAULT_START_INTERVAL = 5 * 10**9
DEFAULT_RETRIES = 3
EXEC_START_TIMEOUT = 30.0

STARTING = "starting"
HEALTHY = "healthy"
UNHEALTHY = "unhealthy"
NO_HEALTHCHECK = "none"
FILTER_VALUES = frozenset({STARTING, HEALTHY, UNHEALTHY, NO_HEALTHCHECK})


@dataclass(frozen=True)
class ProbeResult:
    start_ns: int
    end_ns: int
    exit_code: int
    output: str

    def to_doc(self) -> dict[str, Any]:
        return {
            "Start": rfc3339nano(self.start_ns),
            "End": rfc3339nano(self.end_ns),
            "ExitCode": self.exit_code,
            "Output": self.output,
        }


def probe_command(config: dict[str, Any]) -> list[str] | None:
    """The command a probe runs (CMD: as given; CMD-SHELL: through the container's shell), None for NONE,
    an empty or an unknown test."""
    hc = config.get("Healthcheck")
    if not isinstance(hc, dict):
        return None
    test = hc.get("Test") or []
    if not test:
        return None
    kind, args = test[0], [str(a) for a in test[1:]]
    if kind == "CMD" and args:
        return args
    if kind == "CMD-SHELL" and args:
        shell = [str(s) for s in config.get("Shell") or []] or ["/bin/sh", "-c"]
        return shell + args
    return None


def health_status(state: dict[str, Any]) -> str:
    """The value the `health` filter of `docker ps` matches: starting|healthy|unhealthy, or none."""
    h = state.get("Health")
    if not isinstance(h, dict):
        return NO_HEALTHCHECK
    return str(h.get("Status") or "")


def health_text(state: dict[str, Any]) -> str | None:
    """What `docker ps` shows after "Up 5 seconds": "health: starting", "healthy", "unhealthy"."""
    h = state.get("Health")
    if not isinstance(h, dict):
        return None
    status = str(h.get("Status") or "")
    return "health: starting" if status == STARTING else status


def _setting(hc: dict[str, Any], key: str, default: int) -> int:
    value = hc.get(key)
    return int(value) if isinstance(value, int) and value > 0 else default


def next_delay_ns(hc: dict[str, Any], *, started_ns: int, now_ns: int, status: str) -> int:
    """moby's getInterval: the probe interval, the start interval while starting within the start period,
    and never past the end of the start period."""
    interval = _setting(hc, "Interval", DEFAULT_INTERVAL)
    start_interval = _setting(hc, "StartInterval", DEFAULT_START_INTERVAL)
    start_period = _setting(hc, "StartPeriod", 0)
    elapsed = now_ns - started_ns
    if elapsed >= start_period:
        return interval
    remaining = start_period - elapsed
    if remaining < interval:
        return remaining
    return start_interval if status == STARTING else interval


def record_result(
    health: dict[str, Any], result: ProbeResult, hc: dict[str, Any], *, started_ns: int
) -> dict[str, Any]:
    """moby's handleProbeResult on a copy of `State.Health`: the log keeps the last 5 results; a success
    resets the streak (healthy), a failure outside the start period (or once healthy) counts, and `Retries`
    failures in a row make it unhealthy."""
    out = dict(health)
    log_entries = [*list(health.get("Log") or []), result.to_doc()][-MAX_LOG_ENTRIES:]
    out["Log"] = log_entries
    retries = _setting(hc, "Retries", DEFAULT_RETRIES)
    if result.exit_code == 0:
        out["FailingStreak"] = 0
        out["Status"] = HEALTHY
        return out
    if out.get("Status") == STARTING and result.start_ns - started_ns < _setting(hc, "StartPeriod", 0):
        return out
    out["FailingStreak"] = int(out.get("FailingStreak") or 0) + 1
    if out["FailingStreak"] >= retries:
        out["Status"] = UNHEALTHY
    return out


class _Output:
    """Up to MAX_OUTPUT bytes of a probe's stdout+stderr; "..." when more came."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.truncated = False

    def add(self, chunk: bytes) -> None:
        room = MAX_OUTPUT - len(self.data)
        if room > 0:
            self.data += chunk[:room]
        if len(chunk) > room:
            self.truncated = True

    def text(self) -> str:
        out = bytes(self.data).decode("utf-8", "replace")
        return out + "..." if self.truncated else out


class HealthMonitor:
    def __init__(self, repo: ContainerRepository, execs: ExecService) -> None:
        self._repo = repo
        self._execs = execs
        self._tasks: dict[str, asyncio.Task[None]] = {}
        repo.on_event(self._on_container_event)

    def _on_container_event(self, ct: Container, action: str) -> None:
        if action == "start":
            self.arm(ct)
        elif action == "unpause":
            self.update(ct)
        elif action in ("die", "pause", "destroy"):
            self.disarm(ct)

    # ---- arming ----------------------------------------------------------------------------------

    def arm(self, ct: Container) -> None:
        """A started (or restored) container: Health back to "starting" (its log kept), probes on."""
        if probe_command(ct.config) is None:
            return
        self._cancel(ct.id)
        health = dict(ct.state.get("Health") or {"Log": []})
        health["Status"] = STARTING
        health["FailingStreak"] = 0
        health.setdefault("Log", [])
        ct.state["Health"] = health
        self._repo.save(ct)
        self.update(ct)

    def update(self, ct: Container) -> None:
        """Probes run while the container runs unpaused and has a probe; else they stop."""
        want = cs.is_running(ct.status) and not ct.removed and probe_command(ct.config) is not None
        if not want:
            self.disarm(ct)
            return
        if isinstance(ct.state.get("Health"), dict) and ct.id not in self._tasks:
            task = asyncio.ensure_future(self._monitor(ct))
            self._tasks[ct.id] = task
            cid = ct.id
            task.add_done_callback(lambda t: self._done(cid, t))

    def disarm(self, ct: Container) -> None:
        """Stop probing; a monitor that was running leaves the status "unhealthy" (dockerd 20.10)."""
        if self._cancel(ct.id):
            h = ct.state.get("Health")
            if isinstance(h, dict):
                ct.state["Health"] = {**h, "Status": UNHEALTHY}
                self._repo.save(ct)

    def resume_all(self) -> None:
        """After a daemon restart: re-arm every running container's probes (as dockerd's restore does)."""
        for ct in self._repo.all():
            if cs.is_running(ct.status):
                self.arm(ct)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task

    def _cancel(self, cid: str) -> bool:
        task = self._tasks.pop(cid, None)
        if task is None:
            return False
        task.cancel()
        return True

    def _done(self, cid: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(cid) is task:
            del self._tasks[cid]
        if not task.cancelled() and task.exception() is not None:
            log.error("health monitor of %s: %s", cid[:12], task.exception())

    # ---- probing ---------------------------------------------------------------------------------

    async def _monitor(self, ct: Container) -> None:
        while True:
            hc = dict(ct.config.get("Healthcheck") or {})
            status = health_status(ct.state)
            delay = next_delay_ns(hc, started_ns=ct.book.started_ns, now_ns=time.time_ns(), status=status)
            await asyncio.sleep(delay / 1e9)
            cmd = probe_command(ct.config)
            if cmd is None:
                return
            result = await self._probe(ct, cmd, _setting(hc, "Timeout", DEFAULT_TIMEOUT))
            self._handle(ct, result, hc)

    def _handle(self, ct: Container, result: ProbeResult, hc: dict[str, Any]) -> None:
        h = ct.state.get("Health")
        if not isinstance(h, dict) or ct.removed:
            return
        old = h.get("Status")
        new = record_result(h, result, hc, started_ns=ct.book.started_ns)
        ct.state["Health"] = new
        if new["Status"] != old:
            self._repo.save(ct)
            self._repo.event(ct, f"health_status: {new['Status']}")

    async def _probe(self, ct: Container, cmd: list[str], timeout_ns: int) -> ProbeResult:
        start = time.time_ns()
        try:
            code, output = await self._run(ct, cmd, timeout_ns)
        except asyncio.CancelledError:
            raise
        except GoraeError as e:
            log.warning("health check for container %s error: %s", ct.id[:12], e.message)
            code, output = -1, e.message
        except Exception as e:
            log.warning("health check for container %s error: %s", ct.id[:12], e)
            code, output = -1, str(e)
        return ProbeResult(start, time.time_ns(), code, output)

    async def _run(self, ct: Container, cmd: list[str], timeout_ns: int) -> tuple[int, str]:
        exec_id = self._execs.create(ct.id, {"Cmd": cmd, "AttachStdout": True, "AttachStderr": True})
        try:
            handle = await asyncio.wait_for(
                self._execs.start(exec_id, attach=True), EXEC_START_TIMEOUT
            )
            rec = self._execs.get(exec_id)
            output = _Output()

            async def collect() -> None:
                att = handle.attachment
                if att is not None:
                    try:
                        while (item := await att.read()) is not None:
                            output.add(item[1])
                    finally:
                        att.close()
                await rec.done.wait()

            try:
                await asyncio.wait_for(collect(), timeout_ns / 1e9)
            except TimeoutError:
                if rec.running and handle.pid > 0:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(handle.pid, signal.SIGKILL)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(rec.done.wait(), 10.0)
                text = f"Health check exceeded timeout ({go_duration(timeout_ns)})"
                out = output.text()
                return -1, f"{text}: {out}" if out else text
            if rec.exit_code is None:
                return -1, f"healthcheck for container {ct.id} has no exit code"
            return int(rec.exit_code), output.text()
        finally:
            self._execs.forget(exec_id)
