"""The orchestrator (leader only): makes and retires the tasks of every service, as swarmkit's replicated and
global orchestrators, restart supervisor and updater do, by reconciling the whole store in one pass.

- Replicated: slots 1..Replicas, one task to run per slot; scaling down retires the highest slots
  (DesiredState `remove`); a slot whose task ended and whose restart policy said no more stays filled (Done)
  until the spec changes. Global: one task per node that is ready, not drained and meets the constraints.
- Restarts: a task to run that ended (or whose node was drained, removed or is down, replicated only) is
  shut down (DesiredState `shutdown`) and, if the policy allows (condition any / on-failure when it failed,
  MaxAttempts within Window), replaced in its slot by a task that waits (DesiredState `ready`) for the
  policy's Delay and then is set to `running`.
- Rolling updates: tasks whose Spec is not the TaskTemplate are replaced `Parallelism` at a time (0: all),
  `Delay` after each new task runs; stop-first retires the old task first (the new one waits in `ready`),
  start-first retires it once the new one runs. A new task that ends before it ran for `Monitor` is a
  failure; more than MaxFailureRatio of the slots failing triggers the FailureAction: pause
  (UpdateStatus paused), continue, or rollback (Spec and PreviousSpec swap, rollback_started, then
  rollback_completed). UpdateStatus goes updating -> completed once every new task passed its monitor.
- Jobs (replicated-job, global-job; swarmkit's jobs orchestrator): tasks are desired `complete` and carry
  the service's JobStatus.JobIteration; every service update starts a new iteration (the old one's
  unfinished tasks are shut down). A replicated job runs slots 0..TotalCompletions-1, at most MaxConcurrent
  at once, the lowest free slots first; a global job one task per eligible node. A task that completed is
  never run again in its iteration; one that failed is replaced in its slot as the restart policy says,
  condition `any` counting as `on-failure`.
- Tasks of removed services get DesiredState `remove` (the reaper deletes them once they stopped).
"""

from __future__ import annotations

import copy
import json
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

from gorae.swarm.services import spec as specs
from gorae.swarm.services import taskdocs
from gorae.swarm.services.component import Reconciler
from gorae.swarm.services.constraints import parse_constraints, satisfied
from gorae.swarm.store.types import Node, Service, Task, WriteTx
from gorae.timefmt import rfc3339nano

_ACTIVE_UPDATE = ("updating", "rollback_started")
_PAUSED = ("paused", "rollback_paused")


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


@dataclass
class Pass:
    """What one pass changes: task documents by ID (new or updated) and service documents by ID."""

    now: int
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    created: set[str] = field(default_factory=set)
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    wake: int | None = None

    def wake_at(self, when: int) -> None:
        self.wake = when if self.wake is None else min(self.wake, when)

    def put(self, doc: dict[str, Any], new: bool = False) -> None:
        doc["UpdatedAt"] = rfc3339nano(self.now)
        self.tasks[str(doc["ID"])] = doc
        if new:
            self.created.add(str(doc["ID"]))

    def mark(self, doc: dict[str, Any], **private: Any) -> dict[str, Any]:
        """`doc` (a copy in this pass) with private fields set, kept for writing."""
        doc = self.tasks.get(str(doc["ID"]), doc)
        doc = dict(doc)
        doc["_gorae"] = {**taskdocs.private(doc), **private}
        self.put(doc, str(doc["ID"]) in self.created)
        return doc

    def desire(self, doc: dict[str, Any], desired: str, **private: Any) -> dict[str, Any]:
        doc = dict(self.tasks.get(str(doc["ID"]), doc))
        doc["DesiredState"] = desired
        doc["_gorae"] = {**taskdocs.private(doc), **private}
        self.put(doc, str(doc["ID"]) in self.created)
        return doc


def _node_ok_for_new(node: dict[str, Any] | None) -> bool:
    if node is None:
        return False
    return (node.get("Status") or {}).get("State") == "ready" and (node.get("Spec") or {}).get(
        "Availability", "active"
    ) == "active"


def _should_restart(task: dict[str, Any], policy: specs.RestartPolicy, now: int) -> bool:
    if policy.condition == "none":
        return False
    if policy.condition == "on-failure" and taskdocs.state(task) == "complete":
        return False
    if policy.max_attempts:
        recent = [
            r
            for r in taskdocs.private(task).get("Restarts", [])
            if not policy.window or r > now - policy.window
        ]
        if len(recent) >= policy.max_attempts:
            return False
    return True


class ServicePass:
    """One service's reconciliation inside a pass."""

    def __init__(
        self,
        p: Pass,
        service_id: str,
        service: dict[str, Any],
        tasks: list[dict[str, Any]],
        nodes: dict[str, dict[str, Any]],
    ) -> None:
        self.p = p
        self.id = service_id
        self.doc = service
        self.spec = service.get("Spec") or {}
        self.template = specs.task_spec(self.spec)
        self.tasks = tasks
        self.nodes = nodes
        self.global_ = specs.is_global(self.spec)
        self.job = specs.is_job(self.spec)
        self.restart = specs.restart_policy(self.spec)
        if self.job and self.restart.condition == "any":  # a job's task that completed is done
            self.restart = replace(self.restart, condition="on-failure")
        self.iteration = taskdocs.iteration(service) if self.job else None

    # -- helpers ------------------------------------------------------------------------

    def current(self) -> list[dict[str, Any]]:
        """The service's tasks as this pass left them."""
        seen = {str(t["ID"]) for t in self.tasks}
        out = [self.p.tasks.get(str(t["ID"]), t) for t in self.tasks]
        out += [
            d
            for i, d in self.p.tasks.items()
            if i in self.p.created and i not in seen and d.get("ServiceID") == self.id
        ]
        return out

    def dirty(self, task: dict[str, Any]) -> bool:
        """swarmkit's IsTaskDirty: the task's spec is not the service's, or its endpoint spec (the published
        ports, host-mode ones included) is not the service's now."""
        if not _same(task.get("Spec"), self.template):
            return True
        bag = taskdocs.private(task)
        return "EndpointSpec" in bag and not _same(bag["EndpointSpec"], self.spec.get("EndpointSpec"))

    def new_task(self, key: str, desired: str = "running", **extra: Any) -> dict[str, Any]:
        slot, node = (0, key[5:]) if key.startswith("node:") else (int(key), "")
        doc = taskdocs.new_task(
            self.id,
            self.doc,
            self.p.now,
            slot=slot,
            node_id=node,
            desired=desired,
            extra=extra or None,
            job_iteration=self.iteration,
        )
        self.p.put(doc, new=True)
        return doc

    def slots(self) -> dict[str, list[dict[str, Any]]]:
        by: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for t in self.current():
            by[taskdocs.slot_key(t)[1]].append(t)
        for group in by.values():
            group.sort(key=lambda t: (int(taskdocs.private(t).get("CreatedNs", 0)), str(t["ID"])))
        return by

    def node_eligible(self, node: dict[str, Any]) -> bool:
        """A global service's node: ready, not drained, meets the constraints."""
        if (node.get("Spec") or {}).get("Availability", "active") == "drain":
            return False
        if (node.get("Status") or {}).get("State") != "ready":
            return False
        try:
            constraints = parse_constraints((self.template.get("Placement") or {}).get("Constraints") or [])
        except ValueError:
            return False
        return satisfied(constraints, node)

    # -- the steps -------------------------------------------------------------------------

    def run(self) -> None:
        if self.job:
            self.run_job()
            return
        self.restarts()
        self.delayed_starts()
        if self.global_:
            self.reconcile_global()
        else:
            self.reconcile_replicated()
        self.update()

    def _lost_node(self, task: dict[str, Any]) -> bool:
        node_id = task.get("NodeID")
        if not node_id or taskdocs.rank(taskdocs.state(task)) < taskdocs.ASSIGNED:
            return False
        node = self.nodes.get(str(node_id))
        if node is None:
            return True
        if self.global_:
            return False  # a global task stays with its node; an ineligible node's task is retired below
        drained = (node.get("Spec") or {}).get("Availability") == "drain"
        return drained or (node.get("Status") or {}).get("State") == "down"

    def restarts(self) -> None:
        for task in self.current():
            if not taskdocs.live(task):
                continue
            if not (taskdocs.ended(task) or self._lost_node(task)):
                continue
            key = taskdocs.slot_key(task)[1]
            if self.global_ and task.get("NodeID"):
                node = self.nodes.get(str(task["NodeID"]))
                if node is None or not self.node_eligible(node):
                    self.p.desire(task, "shutdown")
                    continue
            if not self.global_ and int(key) > specs.replicas(self.spec):
                self.p.desire(task, "remove")
                continue
            if not _should_restart(task, self.restart, self.p.now):
                self.p.desire(task, "shutdown", Done=True)
                continue
            self.p.desire(task, "shutdown")
            history = [] if self.dirty(task) else list(taskdocs.private(task).get("Restarts", []))
            if self.restart.window:
                history = [r for r in history if r > self.p.now - self.restart.window]
            extra: dict[str, Any] = {"Restarts": [*history, self.p.now]}
            bag = taskdocs.private(task)
            if bag.get("UpdateRun") and not self.dirty(task):
                extra["UpdateRun"] = bag["UpdateRun"]
            if self.restart.delay > 0:
                self.new_task(key, "ready", StartAt=self.p.now + self.restart.delay, **extra)
                self.p.wake_at(self.p.now + self.restart.delay)
            else:
                self.new_task(key, "running", **extra)

    def delayed_starts(self) -> None:
        for task in self.current():
            bag = taskdocs.private(task)
            if task.get("DesiredState") != "ready" or bag.get("WaitFor"):
                continue
            start = int(bag.get("StartAt", 0))
            if start <= self.p.now:
                self.p.desire(task, "running")
            else:
                self.p.wake_at(start)

    def _done_clean(self, group: list[dict[str, Any]]) -> bool:
        newest = group[-1]
        return bool(taskdocs.private(newest).get("Done")) and not self.dirty(newest)

    def reconcile_replicated(self) -> None:
        want = specs.replicas(self.spec)
        slots = self.slots()
        live = {k: [t for t in g if taskdocs.live(t)] for k, g in slots.items()}
        live = {k: g for k, g in live.items() if g}
        if len(live) > want:

            def victim(key: str) -> tuple[int, int, int]:
                running = any(taskdocs.state(t) == "running" for t in live[key])
                return (1 if running else 0, -int(key) if int(key) > want else 0, -int(key))

            for key in sorted(live, key=victim)[: len(live) - want]:
                for t in live[key]:
                    self.p.desire(t, "remove")
                del live[key]
        occupied = set(live) | {k for k, g in slots.items() if int(k) <= want and self._done_clean(g)}
        number = 1
        for _ in range(want - len(occupied)):
            while str(number) in occupied:
                number += 1
            occupied.add(str(number))
            self.new_task(str(number))

    def reconcile_global(self) -> None:
        slots = self.slots()
        for node_id, node in self.nodes.items():
            key = "node:" + node_id
            group = slots.get(key, [])
            has_live = any(taskdocs.live(t) for t in group)
            if not self.node_eligible(node):
                for t in group:
                    if taskdocs.live(t):
                        self.p.desire(t, "shutdown")
                continue
            if has_live or (group and self._done_clean(group)):
                continue
            if (node.get("Spec") or {}).get("Availability") == "pause":
                continue
            self.new_task(key)
        for key, group in slots.items():  # nodes that are gone
            if key[5:] not in self.nodes:
                for t in group:
                    if taskdocs.live(t):
                        self.p.desire(t, "shutdown")

    # -- jobs ------------------------------------------------------------------------------------

    def job_key(self, task: dict[str, Any]) -> str:
        """A job task's slot: its Slot (0 included) for a replicated job, its node for a global one."""
        if self.global_:
            return "node:" + str(task.get("NodeID", ""))
        return str(int(task.get("Slot") or 0))

    def run_job(self) -> None:
        for task in self.current():  # an older iteration's unfinished tasks stop
            if taskdocs.iteration(task) != self.iteration and taskdocs.live(task):
                self.p.desire(task, "shutdown")
        mine = [t for t in self.current() if taskdocs.iteration(t) == self.iteration]
        completed = {self.job_key(t) for t in mine if taskdocs.state(t) == "complete"}
        for task in mine:
            desired = task.get("DesiredState")
            if desired not in ("ready", "complete") or taskdocs.state(task) == "complete":
                continue
            if not (taskdocs.ended(task) or self._lost_node(task)):
                continue
            key = self.job_key(task)
            taken = any(
                taskdocs.live(o) and o["ID"] != task["ID"] and self.job_key(o) == key
                for o in self.current()
                if taskdocs.iteration(o) == self.iteration
            )
            if taken or key in completed or (not self.global_ and int(key) >= specs.job_counts(self.spec)[1]):
                # the slot runs (or ran) another task, or the job no longer has it
                self.p.desire(task, "shutdown")
                continue
            if not _should_restart(task, self.restart, self.p.now):
                self.p.desire(task, "shutdown", Done=True)
                continue
            self.p.desire(task, "shutdown")
            history = [r for r in taskdocs.private(task).get("Restarts", [])]
            if self.restart.window:
                history = [r for r in history if r > self.p.now - self.restart.window]
            extra: dict[str, Any] = {"Restarts": [*history, self.p.now]}
            if self.restart.delay > 0:
                self.new_task(key, "ready", StartAt=self.p.now + self.restart.delay, **extra)
                self.p.wake_at(self.p.now + self.restart.delay)
            else:
                self.new_task(key, "complete", **extra)
        for task in self.current():
            bag = taskdocs.private(task)
            if task.get("DesiredState") != "ready" or taskdocs.iteration(task) != self.iteration:
                continue
            start = int(bag.get("StartAt", 0))
            if start <= self.p.now:
                self.p.desire(task, "complete")
            else:
                self.p.wake_at(start)
        by: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for t in self.current():
            if taskdocs.iteration(t) == self.iteration:
                by[self.job_key(t)].append(t)

        def settled(group: list[dict[str, Any]]) -> bool:
            """The slot completed, or its restart policy gave up on it."""
            return any(taskdocs.state(t) == "complete" or taskdocs.private(t).get("Done") for t in group)

        active = {k for k, g in by.items() if any(taskdocs.live(t) for t in g)}
        if self.global_:
            for node_id, node in self.nodes.items():
                key = "node:" + node_id
                group = by.get(key, [])
                if not self.node_eligible(node):
                    for t in group:
                        if taskdocs.live(t):
                            self.p.desire(t, "shutdown")
                    continue
                if key in active or settled(group):
                    continue
                if (node.get("Spec") or {}).get("Availability") == "pause":
                    continue
                self.new_task(key, "complete")
            return
        concurrent, total = specs.job_counts(self.spec)
        for key in sorted(active, key=int):
            if int(key) >= total:  # fewer completions asked for than slots under way
                for t in by[key]:
                    if taskdocs.live(t):
                        self.p.desire(t, "shutdown")
                active.discard(key)
        room = concurrent - len(active)
        for slot in range(total):
            if room <= 0:
                break
            key = str(slot)
            if key in active or settled(by.get(key, [])):
                continue
            self.new_task(key, "complete")
            room -= 1

    # -- rolling updates -----------------------------------------------------------------------

    def _status(self) -> dict[str, Any]:
        return dict(self.doc.get("UpdateStatus") or {})

    def _set_status(self, status: dict[str, Any], **private: Any) -> None:
        doc = self.p.services.get(self.id, dict(self.doc))
        doc["UpdateStatus"] = status
        if private:
            doc["_gorae"] = {**taskdocs.private(doc), **private}
        self.p.services[self.id] = doc
        self.doc = doc

    def update(self) -> None:
        status = self._status()
        state = status.get("State", "")
        if state in _PAUSED:
            return
        bag = taskdocs.private(self.doc)
        run = int(bag.get("UpdateRun", 0))
        slots = self.slots()
        live = {k: [t for t in g if taskdocs.live(t)] for k, g in slots.items()}
        live = {k: g for k, g in live.items() if g}
        dirty = sorted(
            (k for k, g in live.items() if all(self.dirty(t) for t in g)),
            key=lambda k: (0, int(k), "") if not k.startswith("node:") else (1, 0, k),
        )
        if state not in _ACTIVE_UPDATE:
            if not dirty:
                return
            run += 1
            self._set_status(
                {"State": "updating", "StartedAt": rfc3339nano(self.p.now), "Message": "update in progress"},
                UpdateRun=run,
            )
            state = "updating"
        if run == 0:  # an update the API started before any pass: number it
            run = 1
            self._set_status(self._status(), UpdateRun=run)
        rollback = state == "rollback_started"
        policy = specs.update_policy(self.spec, rollback)
        mine = [
            t for t in self.current() if taskdocs.private(t).get("UpdateRun") == run and not self.dirty(t)
        ]
        # progress of the replacements under way
        in_flight = 0
        failed: list[dict[str, Any]] = []
        monitoring = False
        for t in mine:
            bag = taskdocs.private(t)
            running_at = bag.get("RunningAt")
            if taskdocs.state(t) == "running" and taskdocs.live(t) and running_at is None:
                running_at = self.p.now
                t = self.p.mark(t, RunningAt=running_at)
                self._set_status(self._status(), UpdateNextAt=self.p.now + policy.delay)
                for old_id in bag.get("Replaces", []):  # start-first: the old task goes now
                    old = next((o for o in self.current() if o["ID"] == old_id), None)
                    if old is not None and taskdocs.live(old):
                        self.p.desire(old, "shutdown")
            if taskdocs.ended(t) and bag.get("Replaces") is not None:
                if running_at is None or self.p.now < int(running_at) + policy.monitor:
                    failed.append(t)
                continue
            if running_at is None and taskdocs.live(t):
                in_flight += 1
                waits = [w for w in bag.get("WaitFor", [])]
                if waits and t.get("DesiredState") == "ready":
                    olds = [o for o in self.current() if o["ID"] in waits]
                    if all(taskdocs.ended(o) or not taskdocs.on_node(o) for o in olds):
                        self.p.desire(t, "running", WaitFor=[])
            elif running_at is not None and self.p.now < int(running_at) + policy.monitor:
                monitoring = True
                self.p.wake_at(int(running_at) + policy.monitor)
        # failures
        total = max(len(live), 1)
        if failed and policy.failure_action != "continue" and len(failed) > policy.max_failure_ratio * total:
            culprit = failed[0]["ID"]
            if policy.failure_action == "rollback" and not rollback and self.doc.get("PreviousSpec"):
                doc = self.p.services.get(self.id, dict(self.doc))
                doc["Spec"], doc["PreviousSpec"] = doc["PreviousSpec"], doc["Spec"]
                self.p.services[self.id] = doc
                self.doc = doc
                self._set_status(
                    {
                        "State": "rollback_started",
                        "StartedAt": rfc3339nano(self.p.now),
                        "Message": f"update rolled back due to failure or early termination of task {culprit}",
                    },
                    UpdateRun=run + 1,
                    UpdateNextAt=0,
                )
                return
            what = "rollback" if rollback else "update"
            self._set_status(
                {
                    "State": "rollback_paused" if rollback else "paused",
                    "StartedAt": status.get("StartedAt", rfc3339nano(self.p.now)),
                    "Message": f"{what} paused due to failure or early termination of task {culprit}",
                }
            )
            return
        # more replacements
        next_at = int(taskdocs.private(self.doc).get("UpdateNextAt", 0))
        if dirty and self.p.now < next_at:
            self.p.wake_at(next_at)
        room = len(dirty) if policy.parallelism == 0 else policy.parallelism - in_flight
        started = 0
        if self.p.now >= next_at:
            for key in dirty[: max(room, 0)]:
                olds = live[key]
                ids = [str(o["ID"]) for o in olds]
                if policy.order == "start-first":
                    # an old task that is not running yet (an earlier update's replacement) serves nobody
                    for o in olds:
                        if taskdocs.state(o) != "running":
                            self.p.desire(o, "shutdown")
                    ids = [str(o["ID"]) for o in olds if taskdocs.state(o) == "running"]
                    self.new_task(key, "running", UpdateRun=run, Replaces=ids)
                else:
                    for o in olds:
                        self.p.desire(o, "shutdown")
                    waiting = any(taskdocs.on_node(o) for o in olds)
                    self.new_task(
                        key,
                        "ready" if waiting else "running",
                        UpdateRun=run,
                        Replaces=ids,
                        WaitFor=ids if waiting else [],
                    )
                started += 1
        if dirty or in_flight or started or monitoring:
            return
        done = "rollback_completed" if rollback else "completed"
        self._set_status(
            {
                "State": done,
                "StartedAt": status.get("StartedAt", rfc3339nano(self.p.now)),
                "CompletedAt": rfc3339nano(self.p.now),
                "Message": "rollback completed" if rollback else "update completed",
            }
        )


class Orchestrator(Reconciler):
    """Reconciles every service's tasks in one store transaction per pass."""

    async def reconcile(self, tx: WriteTx, now: int) -> int | None:
        services = await tx.find(Service)
        tasks = await tx.find(Task)
        nodes = {n.id: n.doc for n in await tx.find(Node)}
        p = Pass(now)
        by_service: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for t in tasks:
            by_service[str(t.doc.get("ServiceID", ""))].append(t.doc)
        known = {s.id for s in services}
        for service in services:
            ServicePass(
                p, service.id, copy.deepcopy(service.doc), by_service.get(service.id, []), nodes
            ).run()
        for service_id, group in by_service.items():
            if service_id not in known:
                for orphan in group:
                    if taskdocs.rank(orphan.get("DesiredState")) < taskdocs.rank("remove"):
                        p.desire(orphan, "remove")
        stored = {t.id: t for t in tasks}
        for task_id, doc in p.tasks.items():
            if task_id in p.created:
                await tx.create(Task(task_id, doc))
            elif not _same(doc, stored[task_id].doc):
                await tx.update(stored[task_id].with_doc(doc))
        by_id = {s.id: s for s in services}
        for service_id, doc in p.services.items():
            old = by_id[service_id].doc
            if not _same(doc, old):
                if doc.get("UpdateStatus") != old.get("UpdateStatus") or doc.get("Spec") != old.get("Spec"):
                    doc["UpdatedAt"] = rfc3339nano(now)
                await tx.update(by_id[service_id].with_doc(doc))
        return p.wake
