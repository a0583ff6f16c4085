"""The agent: on every node (managers too), it follows this node's assignments from the dispatcher and
runs each task as an ordinary container (swarmkit's agent and executor, moby's container adapter).

A long poll (`assignments`, see gorae.swarm.dispatcher) brings the node's tasks, the secrets and configs its
live tasks use, and the log subscriptions it serves. Each task has a runner that walks it forward as
swarmkit's `exec.Do` does — accepted → preparing → (image pulled when missing, files written, container
created) ready ("prepared") → starting → running ("started"; with a healthcheck only once healthy) →
complete ("finished") or failed ("task: non-zero exit (N)"); a failure before the start is `rejected` with
the error. The runner never restarts a task: a new task comes from the orchestrator. A task whose
DesiredState is past running is stopped (its grace period and stop signal) and reported `shutdown`; its
container stays for `docker ps -a` until the task leaves the node's assignments (then it is removed, as is
a `remove`d task's at once). Status reports go in batches (`task_status`), the latest per task.

After a daemon restart the agent finds its task containers by their `com.docker.swarm.task.id` label and
carries on with them (a running one is waited on, never created twice).

Templates (gorae.swarm.templates) are expanded here, before the container is made: the ContainerSpec's for
this node's Description (a template that fails rejects the task, "resolving controller failed"), and the
payloads of golang-templated secrets and configs as their files are written (one that fails makes the task fail
at its start, "starting container failed: unable to get config from config store: …", as in dockerd).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gorae.errors import Conflict, GoraeError, NotFound
from gorae.swarm import taskstate, templates
from gorae.swarm.agent import spec
from gorae.swarm.agent.executor import Executor, TaskContainer
from gorae.swarm.agent.files import TaskFiles
from gorae.swarm.component import NodeContext
from gorae.timefmt import rfc3339nano

log = logging.getLogger("gorae.swarm.agent")
CONVERGE_DELAY = 2.0  # seconds between a task leaving the balancing (shutdown) and its container's stop

RETRY = 1.0  # seconds before asking the manager again after a failed call
LOG_BATCH = 256  # log lines per push
STATUS_BATCH = 500  # status reports per call (the dispatcher takes up to 1000)


def _now() -> str:
    return rfc3339nano(time.time_ns())


@dataclass
class Runner:
    """One task on this node."""

    task: dict[str, Any]
    state: str  # the latest state known here (reported or stored)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    job: asyncio.Task[None] | None = None


class Agent:
    def __init__(
        self, executor: Executor, files: TaskFiles, describe: Callable[[], dict[str, Any]] = dict
    ) -> None:
        self.executor = executor
        self.files = files
        self.describe = describe  # this node's Description (Hostname, Platform): the templates' .Node
        self._node: NodeContext | None = None
        self._runners: dict[str, Runner] = {}
        self._secrets: dict[str, dict[str, Any]] = {}
        self._configs: dict[str, dict[str, Any]] = {}
        self._pending: dict[str, dict[str, Any]] = {}  # task ID -> status not yet delivered
        # task ID -> why its container cannot start (a secret or config template that failed: dockerd meets
        # it when the container starts)
        self._start_errors: dict[str, str] = {}
        self._send = asyncio.Event()
        self._jobs: list[asyncio.Task[None]] = []
        self._log_jobs: dict[str, LogJob] = {}
        self.drain = CONVERGE_DELAY

    # -- life ----------------------------------------------------------------------------------

    async def start(self, node: NodeContext) -> None:
        self._node = node
        self._jobs = [asyncio.ensure_future(self._follow()), asyncio.ensure_future(self._report())]

    async def stop(self) -> None:
        for log_job in self._log_jobs.values():
            log_job.cancel()
        jobs = self._jobs + [r.job for r in self._runners.values() if r.job]
        self._jobs, self._log_jobs = [], {}
        self._runners.clear()
        for job in jobs:
            job.cancel()
        if jobs:
            _, stuck = await asyncio.wait(jobs, timeout=5)
            if stuck:
                log.warning("swarm agent: %d of its jobs did not stop", len(stuck))
        self._node = None

    async def left(self, node_id: str) -> None:
        """The node left the swarm: its task containers and their files go (moby's cluster.Leave)."""
        for ct in self.executor.task_containers():
            if ct.labels.get(spec.NODE_ID) == node_id:
                await self._remove(ct.labels.get(spec.TASK_ID, ""), ct.id)

    # -- following the assignments --------------------------------------------------------------

    async def _follow(self) -> None:
        node = self._node
        assert node is not None
        have: str | None = None
        first = True
        while True:
            try:
                answer = await node.call_manager({"op": "assignments", "have": have, "wait": not first})
            except GoraeError as e:
                log.warning("swarm assignments: %s", e.message)
                await asyncio.sleep(RETRY)
                continue
            except Exception:
                log.exception("swarm assignments")
                await asyncio.sleep(RETRY)
                continue
            first = False
            have = str(answer.get("digest") or "")
            try:
                await self.reconcile(answer)
            except Exception:
                log.exception("swarm assignments: reconcile")
                await asyncio.sleep(RETRY)

    async def reconcile(self, answer: dict[str, Any]) -> None:
        """Bring this node's containers in line with an assignment set."""
        node = self._node
        assert node is not None
        self._secrets = {s["ID"]: s for s in answer.get("secrets") or []}
        self._configs = {c["ID"]: c for c in answer.get("configs") or []}
        tasks = {t["ID"]: t for t in answer.get("tasks") or [] if t.get("NodeID") == node.node_id}
        for task_id, task in tasks.items():
            runner = self._runners.get(task_id)
            stored = str((task.get("Status") or {}).get("State", ""))
            if runner is None:
                runner = Runner(task, stored)
                self._runners[task_id] = runner
                runner.job = asyncio.ensure_future(self._run(runner))
            else:
                news = taskstate.stable(task) != taskstate.stable(runner.task)
                runner.task = task
                if taskstate.moves_forward(runner.state, stored):
                    runner.state = stored
                    news = True
                if news:  # only the runners whose task changed: each woken one looks its container up again
                    runner.wake.set()
        # tasks no longer assigned here: their runners end, their containers go (swarmkit's worker)
        for task_id in [t for t in self._runners if t not in tasks]:
            runner = self._runners.pop(task_id)
            if runner.job is not None:
                runner.job.cancel()
                with contextlib.suppress(BaseException):
                    await runner.job
            self._pending.pop(task_id, None)
        for ct in self.executor.task_containers():
            if ct.labels.get(spec.NODE_ID) != node.node_id:
                continue
            task_id = ct.labels.get(spec.TASK_ID, "")
            if task_id not in tasks:
                await self._remove(task_id, ct.id)
        # and the files of tasks no longer here whose container went already (a runner cancelled while its
        # container's removal ran, before the files' turn)
        for task_id in await asyncio.to_thread(self.files.task_ids):
            if task_id not in tasks and task_id not in self._runners:
                await asyncio.to_thread(self.files.remove, task_id)
        self._serve_logs(answer.get("logs") or [])

    async def _remove(self, task_id: str, container_id: str) -> None:
        try:
            # shielded: a runner cancelled mid-removal must not leave the container "removal in progress"
            await asyncio.shield(self.executor.remove(container_id))
        except GoraeError as e:
            log.warning("removing the container of task %s: %s", task_id, e.message)
        self._start_errors.pop(task_id, None)
        await asyncio.to_thread(self.files.remove, task_id)

    # -- status reports -------------------------------------------------------------------------

    def _report_status(self, runner: Runner, state: str, message: str, **extra: Any) -> None:
        if not taskstate.moves_forward(runner.state, state):
            return
        runner.state = state
        status: dict[str, Any] = {"Timestamp": _now(), "State": state, "Message": message, **extra}
        status.setdefault("PortStatus", {})
        self._pending[runner.task["ID"]] = status
        self._send.set()

    async def _report(self) -> None:
        node = self._node
        assert node is not None
        while True:
            await self._send.wait()
            self._send.clear()
            batch = dict(list(self._pending.items())[:STATUS_BATCH])
            if not batch:
                continue
            if len(batch) < len(self._pending):
                self._send.set()  # the rest in the next batch
            try:
                await node.call_manager(
                    {"op": "task_status", "updates": [{"ID": k, "Status": v} for k, v in batch.items()]}
                )
            except GoraeError as e:
                log.warning("swarm task status: %s", e.message)
                self._send.set()
                await asyncio.sleep(RETRY)
                continue
            for task_id, status in batch.items():
                if self._pending.get(task_id) is status:
                    del self._pending[task_id]

    # -- one task --------------------------------------------------------------------------------

    def _container(self, task: dict[str, Any]) -> TaskContainer | None:
        for ct in self.executor.task_containers():
            if ct.labels.get(spec.TASK_ID) == task["ID"]:
                return ct
        return None

    async def _run(self, runner: Runner) -> None:
        while True:
            runner.wake.clear()
            try:
                await self._step(runner)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("swarm task %s", runner.task.get("ID"))
            await runner.wake.wait()

    async def _step(self, r: Runner) -> None:
        """Move the task as far as it goes now; returns when it waits for news (a new assignment)."""
        task = r.task
        desired = task.get("DesiredState")
        if taskstate.desired_stop(desired):
            await self._shutdown(r)
            return
        if taskstate.is_terminal(r.state):
            return
        self._report_status(r, "accepted", "accepted")
        self._report_status(r, "preparing", "preparing")
        ct = self._container(task)
        if taskstate.rank(r.state) < taskstate.ORDER["ready"]:
            try:
                prepared = task if ct is not None else self._expanded(task)
            except templates.ExpandError as e:
                self._report_status(
                    r,
                    "rejected",
                    "resolving controller failed",
                    Err=str(e),
                    ContainerStatus={"ContainerID": "", "PID": 0, "ExitCode": 0},
                )
                return
            try:
                ct = ct or await self._prepare(task, prepared)
            except GoraeError as e:
                self._report_status(
                    r,
                    "rejected",
                    "preparing",
                    Err=e.message,
                    ContainerStatus={"ContainerID": "", "PID": 0, "ExitCode": 0},
                )
                return
            self._report_status(r, "ready", "prepared")
        if taskstate.rank(desired) < taskstate.ORDER["running"]:
            return  # desired "ready": prepared, waits to be started
        if ct is None:
            self._report_status(r, "failed", "started", Err="dockerexec: container destroyed")
            return
        cs = {"ContainerID": ct.id, "PID": 0, "ExitCode": 0}
        if taskstate.rank(r.state) < taskstate.ORDER["running"]:
            self._report_status(r, "starting", "starting", ContainerStatus=cs)
            if not ct.running and not ct.started:
                failure = self._start_errors.get(str(task["ID"]))
                if failure is not None:
                    self._report_status(
                        r,
                        "failed",
                        "starting",
                        Err=f"starting container failed: {failure}",
                        ContainerStatus=cs,
                    )
                    return
                try:
                    await self.executor.start(ct.id)
                except GoraeError as e:
                    self._report_status(r, "failed", "starting", Err=e.message, ContainerStatus=cs)
                    return
            now = self.executor.inspect(ct.id) or ct
            if now.health:
                outcome = await self._until(r, self.executor.wait_health(ct.id))
                if outcome is None:  # news came first (a shutdown): handled by the next step
                    r.wake.set()
                    return
                if outcome == "unhealthy":
                    await self._stop(task, ct.id)
                    self._report_status(
                        r, "failed", "starting", Err="dockerexec: unhealthy container", ContainerStatus=cs
                    )
                    return
            now = self.executor.inspect(ct.id) or now
            if now.running:
                self._report_status(
                    r,
                    "running",
                    "started",
                    ContainerStatus={"ContainerID": ct.id, "PID": now.pid, "ExitCode": 0},
                )
        code = await self._until(r, self._exit_or_unhealthy(ct.id))
        if code is None:
            r.wake.set()
            return
        if code == "destroyed":
            self._report_status(
                r, "failed", "started", Err="dockerexec: container destroyed", ContainerStatus=cs
            )
            return
        if code == "unhealthy":  # moby's controller: an unhealthy task container fails its task
            await self._stop(task, ct.id)
            self._report_status(
                r,
                "failed",
                "started",
                Err="dockerexec: unhealthy container",
                ContainerStatus=self._final(ct.id),
            )
            return
        final = {"ContainerID": ct.id, "PID": 0, "ExitCode": code}
        if taskstate.desired_stop(r.task.get("DesiredState")):
            r.wake.set()  # stopped because it was asked to: shutdown, not failed
            return
        if code == 0:
            self._report_status(r, "complete", "finished", ContainerStatus=final)
        else:
            self._report_status(
                r, "failed", "started", Err=f"task: non-zero exit ({code})", ContainerStatus=final
            )

    def _final(self, cid: str) -> dict[str, Any]:
        now = self.executor.inspect(cid)
        return {"ContainerID": cid, "PID": 0, "ExitCode": now.exit_code if now else 0}

    async def _exit_or_unhealthy(self, cid: str) -> int | str:
        """The container's exit code, or "unhealthy" when its healthcheck fails first."""
        exit_job = asyncio.ensure_future(self.executor.wait_exit(cid))
        health_job = asyncio.ensure_future(self.executor.wait_health(cid, ("unhealthy",)))
        try:
            done, _ = await asyncio.wait({exit_job, health_job}, return_when=asyncio.FIRST_COMPLETED)
            if health_job in done and not health_job.exception() and health_job.result() == "unhealthy":
                return "unhealthy"
            return await exit_job
        except NotFound:
            return "destroyed"  # removed under the task (docker rm -f)
        finally:
            for job in (exit_job, health_job):
                job.cancel()

    async def _until(self, r: Runner, work: Any) -> Any:
        """The result of `work`, or None when the runner is woken by news first (the work is dropped)."""
        job = asyncio.ensure_future(work)
        news = asyncio.ensure_future(r.wake.wait())
        try:
            await asyncio.wait({job, news}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            news.cancel()
        if job.done():
            return job.result()
        job.cancel()
        with contextlib.suppress(BaseException):
            await job
        return None

    def _expanded(self, task: dict[str, Any]) -> dict[str, Any]:
        """The task with its ContainerSpec's templates expanded for this node."""
        task_spec = task.get("Spec") or {}
        container = templates.expand_container_spec(
            task_spec.get("ContainerSpec") or {}, task, self.describe()
        )
        return {**task, "Spec": {**task_spec, "ContainerSpec": container}}

    async def _prepare(self, task: dict[str, Any], expanded: dict[str, Any]) -> TaskContainer:
        """Image, secret and config files, the container (one per task: an existing one is reused); the
        container is made from `expanded` (the task with its templates expanded)."""
        container_spec = (task.get("Spec") or {}).get("ContainerSpec") or {}
        image = str(container_spec.get("Image") or "")
        # the credentials a client sent with the service (--with-registry-auth), as dockerd's executor
        await self.executor.ensure_image(
            image, str((container_spec.get("PullOptions") or {}).get("RegistryAuth") or "")
        )
        # payload templates see the expanded environment (`{{env "A"}}`), as dockerd's
        binds = await asyncio.to_thread(self._write_files, expanded)
        name = spec.task_name(task)
        try:
            cid = await asyncio.shield(self.executor.create(name, spec.create_body(expanded, binds)))
        except Conflict:
            existing = self.executor.inspect(name)
            if existing is None or existing.labels.get(spec.TASK_ID) != task["ID"]:
                raise
            cid = existing.id
        ct = self.executor.inspect(cid)
        if ct is None:
            raise GoraeError(f"container {cid} vanished")
        return ct

    def _write_files(self, task: dict[str, Any]) -> list[tuple[str, str]]:
        container_spec = (task.get("Spec") or {}).get("ContainerSpec") or {}
        files: list[tuple[str, bytes, int, int, int]] = []
        targets: list[str] = []
        for i, ref in enumerate(container_spec.get("Secrets") or []):
            payload = self._secrets.get(str(ref.get("SecretID")))
            if payload is None:
                raise GoraeError(f"secret {ref.get('SecretName') or ref.get('SecretID')} not found")
            data = self._payload(task, payload, "secret")
            if data is None:
                continue
            mode, uid, gid = spec.file_mode(ref)
            files.append((f"secret-{i}", data, mode, uid, gid))
            targets.append(spec.secret_target(ref))
        for i, ref in enumerate(container_spec.get("Configs") or []):
            if not (ref.get("File") or {}):
                continue  # a runtime config (credential spec): no file
            payload = self._configs.get(str(ref.get("ConfigID")))
            if payload is None:
                raise GoraeError(f"config {ref.get('ConfigName') or ref.get('ConfigID')} not found")
            data = self._payload(task, payload, "config")
            if data is None:
                continue
            mode, uid, gid = spec.file_mode(ref)
            files.append((f"config-{i}", data, mode, uid, gid))
            targets.append(spec.config_target(ref))
        if not files:
            return []
        paths = self.files.write(str(task["ID"]), files)
        return list(zip(paths, targets, strict=True))

    def _payload(self, task: dict[str, Any], payload: dict[str, Any], kind: str) -> bytes | None:
        """A secret's or config's data for `task`: expanded when it was created with a template driver. None
        when the template fails: the task's container is made without it and fails to start with dockerd's
        text (kept in `_start_errors`)."""
        data = base64.b64decode(payload["Data"])
        templating = payload.get("Templating")
        if not templating:
            return data
        try:
            if templating.get("Name") != templates.GOLANG:
                raise templates.ExpandError("unrecognized template type")
            return templates.expand_payload(
                data, task, self._reference_data(task, "secret"), self._reference_data(task, "config")
            )
        except templates.ExpandError as e:
            self._start_errors[str(task["ID"])] = (
                f"unable to get {kind} from {kind} store: failed to expand templated {kind} {payload['ID']}: {e}"
            )
            return None

    def _reference_data(self, task: dict[str, Any], kind: str) -> Callable[[str], str]:
        """swarmkit's restricted getter: the raw data of the task's own secret (config) whose file is `target`."""
        refs = ((task.get("Spec") or {}).get("ContainerSpec") or {}).get(f"{kind.capitalize()}s") or []
        known = self._secrets if kind == "secret" else self._configs

        def get(target: str) -> str:
            for ref in refs:
                if (ref.get("File") or {}).get("Name") == target:
                    ref_id = str(ref.get(f"{kind.capitalize()}ID"))
                    payload = known.get(ref_id)
                    if payload is None:
                        raise templates.ExpandError(f"{kind} {ref_id} not found")
                    return base64.b64decode(payload["Data"]).decode("utf-8", "surrogateescape")
            raise templates.ExpandError(f"{kind} target {target} not found")

        return get

    async def _stop(self, task: dict[str, Any], cid: str) -> None:
        signal = ((task.get("Spec") or {}).get("ContainerSpec") or {}).get("StopSignal")
        try:
            await asyncio.shield(
                self.executor.stop(cid, spec.stop_grace(task), str(signal) if signal else None)
            )
        except GoraeError as e:
            log.warning("stopping task %s: %s", task.get("ID"), e.message)

    async def _shutdown(self, r: Runner) -> None:
        ct = self._container(r.task)
        if (
            ct is not None
            and ct.running
            and r.task.get("DesiredState") == "shutdown"
            and spec.has_service_binding(r.task)
        ):
            # as moby's executor (its gossip converge delay): the task left the service's load balancing
            # and the routing mesh with its DesiredState; give every node's rules the time to follow
            # before the container stops, so no connection is sent to a stopped task (a rolling update
            # without failed requests). Only tasks on swarm networks or the ingress (moby's
            # hasServiceBinding); `remove`d tasks stop at once.
            await asyncio.sleep(self.drain)
            ct = self._container(r.task) or ct
        if ct is not None and ct.running:
            await self._stop(r.task, ct.id)
            ct = self.executor.inspect(ct.id) or ct
        if not taskstate.is_terminal(r.state):
            extra: dict[str, Any] = {}
            if ct is not None:
                extra["ContainerStatus"] = {"ContainerID": ct.id, "PID": 0, "ExitCode": ct.exit_code}
            self._report_status(r, "shutdown", "shutdown", **extra)
        if r.task.get("DesiredState") == "remove" and ct is not None:
            await self._remove(str(r.task["ID"]), ct.id)

    # -- logs --------------------------------------------------------------------------------------

    def _serve_logs(self, subs: list[dict[str, Any]]) -> None:
        wanted = {str(s.get("ID")): s for s in subs if s.get("ID")}
        for sub_id in [s for s in self._log_jobs if s not in wanted]:
            self._log_jobs.pop(sub_id).cancel()
        for sub_id, sub in wanted.items():
            job = self._log_jobs.get(sub_id)
            if job is None:
                job = LogJob(self, sub)
                self._log_jobs[sub_id] = job
            job.serve(sub.get("Tasks") or [])

    async def _read_logs(
        self,
        ct: TaskContainer,
        ref: dict[str, Any],
        opts: dict[str, Any],
        queue: asyncio.Queue[dict[str, Any] | None],
    ) -> None:
        tail = opts.get("tail")
        try:
            async for line in self.executor.logs(
                ct.id,
                stdout=bool(opts.get("stdout", True)),
                stderr=bool(opts.get("stderr", True)),
                tail=tail if isinstance(tail, int) and tail >= 0 else None,
                since_ns=int(opts.get("since_ns") or 0),
                follow=bool(opts.get("follow")),
            ):
                await queue.put(
                    {
                        "task": ref.get("ID"),
                        "service": ref.get("ServiceID", ""),
                        "stream": line.stream,
                        "ts": line.time_ns,
                        "line": base64.b64encode(line.line).decode(),
                    }
                )
        except GoraeError as e:
            log.warning("swarm logs of %s: %s", ct.id[:12], e.message)
        finally:
            await queue.put(None)


class LogJob:
    """One log subscription served by this node: a reader per task container (tasks may be added while it
    follows), lines sent in batches; without `follow`, `close` once every reader is done."""

    def __init__(self, agent: Agent, sub: dict[str, Any]) -> None:
        self.agent = agent
        self.sub_id = str(sub["ID"])
        self.opts = dict(sub.get("Options") or {})
        self.follow = bool(self.opts.get("follow"))
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(LOG_BATCH * 4)
        self.readers: dict[str, asyncio.Task[None]] = {}  # task ID -> its reader
        self.sender: asyncio.Task[None] | None = None

    def serve(self, tasks: list[dict[str, Any]]) -> None:
        for ref in tasks:
            task_id = str(ref.get("ID"))
            if task_id in self.readers:
                continue
            ct = self.agent._container({"ID": task_id})
            if ct is None or not (ct.running or ct.started):
                continue  # no container started (yet): a later assignment may bring it (following)
            self.readers[task_id] = asyncio.ensure_future(
                self.agent._read_logs(ct, ref, self.opts, self.queue)
            )
        if self.sender is None:
            self.sender = asyncio.ensure_future(self._send())

    def cancel(self) -> None:
        for reader in self.readers.values():
            reader.cancel()
        if self.sender is not None:
            self.sender.cancel()

    async def _send(self) -> None:
        node = self.agent._node
        assert node is not None
        remaining = len(self.readers)
        try:
            batch: list[dict[str, Any]] = []
            gone = False
            while (remaining or self.follow) and not gone:
                item = await self.queue.get()
                if item is None:
                    remaining -= 1
                else:
                    batch.append(item)
                if batch and (len(batch) >= LOG_BATCH or self.queue.empty()):
                    gone = await self._push(node, batch, close=False)
                    batch = []
            if not gone:
                await self._push(node, batch, close=True)
        except GoraeError as e:
            log.warning("swarm logs: %s", e.message)
        finally:
            self.cancel()
            if self.agent._log_jobs.get(self.sub_id) is self:
                del self.agent._log_jobs[self.sub_id]

    async def _push(self, node: NodeContext, batch: list[dict[str, Any]], *, close: bool) -> bool:
        answer = await node.call_manager(
            {"op": "log_push", "sub": self.sub_id, "messages": batch, "close": close}
        )
        return bool(answer.get("gone"))
