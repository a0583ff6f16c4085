"""`service create/update/scale/rollback` without `--detach`: docker's convergence display (service/progress)
— "overall progress: N out of M tasks", one line per replica slot (or per node for global services) with the
task's state or error, then "verify: Waiting N seconds to verify that tasks are stable..." and
"verify: Service X converged" once every task has run for the update monitor period. The messages are the
ones docker's progress writer produces (jobs: "job progress: N out of M complete", "active tasks: N out
of M tasks", a line per slot or node of the current JobIteration, then "job complete"); `gorae.cli.progress.ProgressRenderer` draws them (in place on a
terminal, the non-counting ones line by line elsewhere). Polls every 200 ms as docker does; ctrl-c leaves
the update running in the background with docker's two lines."""

from __future__ import annotations

import signal
import time
from typing import Any

from gorae.cli.context import Cli, StatusError
from gorae.client.api import q

STATES = {
    "new": 1,
    "allocated": 2,
    "pending": 3,
    "assigned": 4,
    "accepted": 5,
    "preparing": 6,
    "ready": 7,
    "starting": 8,
    "running": 9,
    "complete": 10,
    "shutdown": 11,
    "failed": 12,
    "rejected": 13,
}
LONGEST_STATE = max(len(s) for s, n in STATES.items() if n <= 9 or s == "complete")
MAX_PROGRESS = 9
MAX_JOB_PROGRESS = 10
MAX_BARS = 20


def terminal(state: str) -> bool:
    return STATES.get(state, 0) > STATES["running"]


def trunc_error(msg: str) -> str:
    msg = msg.replace("\n", " ")
    if len(msg.encode()) > 75:
        msg = msg.encode()[:74].decode("utf-8", "ignore") + "…"
    return msg


def _msg(ident: str, action: str, current: int = 0, total: int = 0, hide: bool = False) -> dict[str, Any]:
    detail: dict[str, Any] = {}
    if current:
        detail["current"] = current
    if total:
        detail["total"] = total
    if hide:
        detail["hidecounts"] = True
    return {"status": action, "progressDetail": detail, "id": ident}


def _best(tasks: list[dict[str, Any]], key: Any, active: set[str] | None) -> dict[Any, dict[str, Any]]:
    """One task per slot (or node): the one with the lowest desired state, then the most advanced state."""
    out: dict[Any, dict[str, Any]] = {}
    for t in tasks:
        desired = STATES.get(t.get("DesiredState", ""), 0)
        state = STATES.get((t.get("Status") or {}).get("State", ""), 0)
        if not desired or not state:
            continue
        k = key(t)
        old = out.get(k)
        if old is not None:
            od = STATES.get(old.get("DesiredState", ""), 0)
            os_ = STATES.get((old.get("Status") or {}).get("State", ""), 0)
            if od < desired or (od == desired and os_ <= state):
                continue
        if active is not None and t.get("NodeID") and t["NodeID"] not in active:
            continue
        out[k] = t
    return out


class _Updater:
    def __init__(self, emit: Any, global_mode: bool) -> None:
        self.emit, self.global_mode = emit, global_mode
        self.initialized = self.done = False
        self.slot_map: dict[Any, int] = {}

    def overall(self, n: int, total: int, rollback: bool) -> None:
        text = f"rolling back update: {n} out of {total} tasks" if rollback else f"{n} out of {total} tasks"
        self.emit(_msg("overall progress", text))

    def task_line(self, ident: str, t: dict[str, Any]) -> None:
        status = t.get("Status") or {}
        if status.get("Err"):
            self.emit(_msg(ident, trunc_error(status["Err"])))
        elif not terminal(t.get("DesiredState", "")) and not terminal(status.get("State", "")):
            state = status.get("State", "")
            self.emit(_msg(ident, state.ljust(LONGEST_STATE), STATES.get(state, 0), MAX_PROGRESS, True))

    def update(
        self, service: dict[str, Any], tasks: list[dict[str, Any]], active: set[str], rollback: bool
    ) -> bool:
        if self.global_mode:
            return self._update_global(tasks, active, rollback)
        replicas = int(
            (((service.get("Spec") or {}).get("Mode") or {}).get("Replicated") or {}).get("Replicas") or 0
        )
        if not self.initialized:
            self.overall(0, replicas, rollback)
            if replicas <= MAX_BARS:
                for i in range(1, replicas + 1):
                    self.emit(_msg(f"{i}/{replicas}", " "))
            self.initialized = True
        by_slot = _best(tasks, lambda t: t.get("Slot", 0), active)
        if self.done and any((t.get("Status") or {}).get("State") != "running" for t in by_slot.values()):
            self.done = False
        running = 0
        for slot, t in by_slot.items():
            mapped = self.slot_map.get(slot)
            if not mapped:
                mapped = self.slot_map[slot] = len(self.slot_map) + 1
            if not terminal(t.get("DesiredState", "")) and (t.get("Status") or {}).get("State") == "running":
                running += 1
            if not self.done and replicas <= MAX_BARS and mapped <= replicas:
                self.task_line(f"{mapped}/{replicas}", t)
        if not self.done:
            self.overall(running, replicas, rollback)
            if running == replicas:
                self.done = True
        return running == replicas

    def _update_global(self, tasks: list[dict[str, Any]], active: set[str], rollback: bool) -> bool:
        by_node = _best(tasks, lambda t: t.get("NodeID", ""), None)
        count = len(by_node)
        if not self.initialized:
            if count == 0:
                self.emit(_msg("overall progress", "waiting for new tasks"))
                return False
            self.overall(0, count, rollback)
            self.initialized = True
        if self.done and any((t.get("Status") or {}).get("State") != "running" for t in by_node.values()):
            self.done = False
        running = 0
        for node, t in by_node.items():
            if node in active:
                if (
                    not terminal(t.get("DesiredState", ""))
                    and (t.get("Status") or {}).get("State") == "running"
                ):
                    running += 1
                if not self.done and count <= MAX_BARS:
                    self.task_line(node[:12], t)
        if not self.done:
            self.overall(running, count, rollback)
            if running == count:
                self.done = True
        return running == count


def _iteration(doc: dict[str, Any]) -> int | None:
    version = (
        doc.get("JobIteration") if "JobIteration" in doc else (doc.get("JobStatus") or {}).get("JobIteration")
    )
    return None if version is None else int((version or {}).get("Index") or 0)


def _job_task_line(emit: Any, ident: str, t: dict[str, Any]) -> None:
    status = t.get("Status") or {}
    if status.get("Err"):
        emit(_msg(ident, trunc_error(status["Err"])))
    else:
        state = status.get("State", "")
        emit(_msg(ident, state.ljust(LONGEST_STATE), STATES.get(state, 0), MAX_JOB_PROGRESS, True))


def _job_tasks(tasks: list[dict[str, Any]], iteration: int | None, key: Any) -> dict[Any, dict[str, Any]]:
    """One task per slot (or node) of the current iteration: the one with the lowest state."""
    out: dict[Any, dict[str, Any]] = {}
    for t in tasks:
        if iteration is None or _iteration(t) != iteration:
            continue
        state = STATES.get((t.get("Status") or {}).get("State", ""), 0)
        if not STATES.get(t.get("DesiredState", ""), 0) or not state:
            continue
        k = key(t)
        if k is None:
            continue
        old = out.get(k)
        if old is None or STATES.get((old.get("Status") or {}).get("State", ""), 0) > state:
            out[k] = t
    return out


class _ReplicatedJob:
    """docker's replicatedJobProgressUpdater."""

    def __init__(self, emit: Any, service: dict[str, Any]) -> None:
        job = ((service.get("Spec") or {}).get("Mode") or {}).get("ReplicatedJob") or {}
        self.emit = emit
        self.concurrent = int(job.get("MaxConcurrent") or 0)
        self.total = int(job.get("TotalCompletions") or 0)
        self.iteration = _iteration(service)
        self.digits, self.active_digits = len(str(self.total)), len(str(self.concurrent))
        self.initialized = False

    def overall(self, active: int, completed: int) -> None:
        self.emit(
            _msg(
                "job progress",
                f"{completed:>{self.digits}} out of {self.total} complete",
                completed,
                self.total,
                True,
            )
        )
        desired = min(self.total - completed, self.concurrent)
        w = self.active_digits
        self.emit(_msg("active tasks", f"{active:>{w}} out of {desired:>{w}} tasks"))

    def update(
        self, service: dict[str, Any], tasks: list[dict[str, Any]], active: set[str], rollback: bool
    ) -> bool:
        if not self.initialized:
            self.overall(0, 0)
            if self.total <= MAX_BARS:
                for i in range(1, self.total + 1):
                    self.emit(_msg(f"{i}/{self.total}", " "))
            self.initialized = True
        by_slot = _job_tasks(tasks, self.iteration, lambda t: int(t.get("Slot") or 0))
        running = complete = 0
        for i in range(len(by_slot)):
            t = by_slot.get(i)
            if t is None:
                continue
            state = (t.get("Status") or {}).get("State", "")
            if state == "complete":
                complete += 1
            elif not terminal(state):
                running += 1
            if self.total <= MAX_BARS:
                _job_task_line(self.emit, f"{i + 1}/{self.total}", t)
        self.overall(running, complete)
        return complete == self.total


class _GlobalJob:
    """docker's globalJobProgressUpdater."""

    def __init__(self, emit: Any, service: dict[str, Any]) -> None:
        self.emit = emit
        self.iteration = _iteration(service)
        self.total = 0
        self.digits = 1
        self.initialized = False

    def update(
        self, service: dict[str, Any], tasks: list[dict[str, Any]], active: set[str], rollback: bool
    ) -> bool:
        mine = [t for t in tasks if self.iteration is not None and _iteration(t) == self.iteration]
        if not self.initialized:
            if not mine and active:
                self.emit(_msg("job progress", "waiting for tasks"))
                return False
            self.total = len(mine)
            self.digits = len(str(self.total))
            self.emit(
                _msg("job progress", f"{0:>{self.digits}} out of {self.total} complete", 0, self.total, True)
            )
            self.initialized = True
        by_node = _job_tasks(
            mine, self.iteration, lambda t: t.get("NodeID") if t.get("NodeID") in active else None
        )
        complete = 0
        for node, t in sorted(by_node.items()):
            if (t.get("Status") or {}).get("State") == "complete":
                complete += 1
            if self.total <= MAX_BARS:
                _job_task_line(self.emit, str(node), t)
        text = f"{complete:>{self.digits}} out of {self.total} complete"
        self.emit(_msg("job progress", text, complete, self.total, True))
        return complete == self.total


def _active_nodes(cli: Cli) -> set[str]:
    return {
        n.get("ID", "")
        for n in cli.api.get_json("/nodes") or []
        if (n.get("Status") or {}).get("State") != "down"
    }


def service_progress(cli: Cli, service_id: str, emit: Any) -> None:
    """ServiceProgress: poll the service and its up-to-date tasks until converged and stable."""
    interrupted: list[bool] = []
    old = signal.signal(signal.SIGINT, lambda *_: interrupted.append(True))
    try:
        _loop(cli, service_id, emit, interrupted)
    finally:
        signal.signal(signal.SIGINT, old)


def _loop(cli: Cli, service_id: str, emit: Any, interrupted: list[bool]) -> None:
    updater: _Updater | _ReplicatedJob | _GlobalJob | None = None
    converged, converged_at, monitor, rollback = False, 0.0, 5.0, False
    message: dict[str, Any] | None = None
    while True:
        service = cli.api.get_json(f"/services/{q(service_id)}", {"insertDefaults": None}) or {}
        spec = service.get("Spec") or {}
        mon = (spec.get("UpdateConfig") or {}).get("Monitor")
        if mon:
            monitor = mon / 1e9
        mode = spec.get("Mode") or {}
        if updater is None:
            if "Replicated" in mode and (mode["Replicated"] or {}).get("Replicas") is not None:
                updater = _Updater(emit, False)
            elif "Global" in mode:
                updater = _Updater(emit, True)
            elif mode.get("ReplicatedJob") is not None:
                updater = _ReplicatedJob(emit, service)
            elif mode.get("GlobalJob") is not None:
                updater = _GlobalJob(emit, service)
            else:
                raise StatusError(1, "unrecognized service mode")
        us = service.get("UpdateStatus") or {}
        state = us.get("State", "")
        if state == "updating":
            rollback = False
        elif state == "completed":
            if not converged:
                return
        elif state == "paused":
            raise StatusError(1, f"service update paused: {us.get('Message', '')}")
        elif state == "rollback_started":
            if not rollback and us.get("Message"):
                emit(_msg("rollback", us["Message"]))
            rollback = True
        elif state == "rollback_paused":
            raise StatusError(1, f"service rollback paused: {us.get('Message', '')}")
        elif state == "rollback_completed":
            if not converged:
                message = {"status": us.get("Message", ""), "id": "rollback"}
            rollback = True
        if converged and time.monotonic() - converged_at >= monitor:
            emit(_msg("verify", f"Service {service_id} converged"))
            if message is not None:
                emit(message)
            return
        tasks = (
            cli.api.get_json(
                "/tasks",
                {
                    "filters": {
                        "service": {service.get("ID", service_id): True},
                        "_up-to-date": {"true": True},
                    }
                },
            )
            or []
        )
        converged = updater.update(service, tasks, _active_nodes(cli), rollback)
        if converged and not isinstance(updater, _Updater):  # a job stays done: nothing to verify
            emit({"status": "job complete"})
            return
        if converged:
            if not converged_at:
                converged_at = time.monotonic()
            wait = monitor - (time.monotonic() - converged_at)
            if wait >= 0:
                emit(_msg("verify", f"Waiting {int(wait) + 1} seconds to verify that tasks are stable..."))
        else:
            if converged_at:
                emit(_msg("verify", "Detected task failure"))
            converged_at = 0.0
        deadline = time.monotonic() + 0.2
        while time.monotonic() < deadline and not interrupted:
            time.sleep(0.02)
        if interrupted:
            if not converged:
                emit({"status": "Operation continuing in background."})
                emit({"status": f"Use `docker service ps {service_id}` to check progress."})
            return


def wait_on_service(cli: Cli, service_id: str, quiet: bool) -> None:
    """WaitOnService: draw the progress (or swallow it when quiet) until the service converges."""
    from gorae.cli.progress import ProgressRenderer, is_terminal, terminal_width

    if quiet:
        service_progress(cli, service_id, lambda _m: None)
        return
    r = ProgressRenderer(cli.out, terminal=is_terminal(cli.out), width=terminal_width(cli.out))
    service_progress(cli, service_id, r.feed)
