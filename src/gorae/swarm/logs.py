"""`docker service logs` on a manager: the tasks of a service (or one task) grouped by node, a log
subscription each node serves (`gorae.swarm.logbroker`), and the lines formatted as dockerd writes them —
`[<time, RFC3339Nano fixed> ]<details> <line>` where the details carry the task's context
(`com.docker.swarm.node.id`, `.service.id`, `.task.id`, sorted, query-escaped): the docker CLI always asks
for details and names each line's task and node from them.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from gorae.errors import GoraeError, NotFound, SystemError_
from gorae.swarm import taskstate
from gorae.swarm.logbroker import LogBroker, LogMessage, Subscription
from gorae.swarm.store.types import ClusterStore, Node, ReadTx, Service, Task
from gorae.timefmt import rfc3339nano_fixed

IDLE = 20.0  # seconds without news after which a non-following read ends (a node that never answers)


@dataclass(frozen=True)
class LogsOptions:
    stdout: bool = False
    stderr: bool = False
    follow: bool = False
    tail: int | None = None  # None: all
    since_ns: int = 0
    timestamps: bool = False
    details: bool = False


def parse_tail(raw: str | None) -> int | None:
    value = (raw or "").strip()
    if value in ("", "all"):
        return None
    try:
        n = int(value)
    except ValueError:
        raise SystemError_('tail value must be a positive integer or "all"') from None  # dockerd: a 500
    return None if n < 0 else n


def details(msg: LogMessage) -> str:
    attrs = dict(msg.attrs)
    attrs.update(
        {
            "com.docker.swarm.node.id": msg.node_id,
            "com.docker.swarm.service.id": msg.service_id,
            "com.docker.swarm.task.id": msg.task_id,
        }
    )
    q = urllib.parse.quote_plus
    return ",".join(f"{q(k, safe='')}={q(v, safe='')}" for k, v in sorted(attrs.items()))


def format_line(msg: LogMessage, opts: LogsOptions) -> bytes:
    out = msg.line
    if opts.details:
        out = details(msg).encode() + b" " + out
    if opts.timestamps:
        out = rfc3339nano_fixed(msg.time_ns).encode() + b" " + out
    return out


async def find_service(tx: ReadTx, ref: str) -> Service:
    svc = await tx.get(Service, ref)
    if svc is not None:
        return svc
    services = await tx.find(Service)
    for s in services:
        if (s.doc.get("Spec") or {}).get("Name") == ref:
            return s
    prefixed = [s for s in services if ref and s.id.startswith(ref)]
    if len(prefixed) == 1:
        return prefixed[0]
    raise NotFound(f"service {ref} not found")


async def find_task(tx: ReadTx, ref: str) -> Task:
    task = await tx.get(Task, ref)
    if task is not None:
        return task
    prefixed = [t for t in await tx.find(Task) if ref and t.id.startswith(ref)]
    if len(prefixed) == 1:
        return prefixed[0]
    raise NotFound(f"task {ref} not found")


def _placed(task: Task) -> tuple[str, dict[str, str]] | None:
    """(node ID, the task as a subscription names it) for a task placed on a node, else None."""
    node = str(task.doc.get("NodeID") or "")
    state = (task.doc.get("Status") or {}).get("State")
    if not node or taskstate.rank(state) < taskstate.ORDER["assigned"]:
        return None
    return node, {"ID": task.id, "ServiceID": str(task.doc.get("ServiceID", ""))}


class SwarmLogs:
    def __init__(self, store: Callable[[], ClusterStore], broker: LogBroker) -> None:
        self._store = store
        self._broker = broker

    async def service_logs(
        self, ref: str, opts: LogsOptions
    ) -> tuple[bool, AsyncIterator[tuple[int, bytes]]]:
        """(tty, the stream) for a service's tasks."""

        service_ids: list[str] = []

        async def read(tx: ReadTx) -> tuple[bool, list[Task], set[str]]:
            svc = await find_service(tx, ref)
            service_ids.append(svc.id)
            tty = bool(
                (((svc.doc.get("Spec") or {}).get("TaskTemplate") or {}).get("ContainerSpec") or {}).get(
                    "TTY"
                )
            )
            tasks = [t for t in await tx.find(Task) if t.doc.get("ServiceID") == svc.id]
            return tty, tasks, await self._down(tx)

        return await self._open(read, opts, service_ids)

    async def task_logs(self, ref: str, opts: LogsOptions) -> tuple[bool, AsyncIterator[tuple[int, bytes]]]:
        async def read(tx: ReadTx) -> tuple[bool, list[Task], set[str]]:
            task = await find_task(tx, ref)
            tty = bool(((task.doc.get("Spec") or {}).get("ContainerSpec") or {}).get("TTY"))
            return tty, [task], await self._down(tx)

        return await self._open(read, opts)

    async def _follow_new(self, store: ClusterStore, since_rev: int, service_id: str, sub: Subscription) -> None:
        try:
            async for change in store.watch(after=since_rev):
                obj = change.obj
                if change.action == "delete" or not isinstance(obj, Task) or obj.doc.get("ServiceID") != service_id:
                    continue
                placed = _placed(obj)
                if placed is not None:
                    self._broker.add_task(sub, *placed)
        except GoraeError:
            return  # the store went away: the stream goes on with the tasks it has

    @staticmethod
    async def _down(tx: ReadTx) -> set[str]:
        return {n.id for n in await tx.find(Node) if (n.doc.get("Status") or {}).get("State") != "ready"}

    async def _open(
        self, read: Any, opts: LogsOptions, service_ids: list[str] | None = None
    ) -> tuple[bool, AsyncIterator[tuple[int, bytes]]]:
        store = self._store()
        since_rev = await store.revision()  # before the read: a task made after it is seen by the watch
        tty, tasks, down = await store.view(read)
        by_node: dict[str, list[dict[str, str]]] = {}
        for t in tasks:
            placed = _placed(t)
            if placed is None or placed[0] in down:
                continue
            by_node.setdefault(placed[0], []).append(placed[1])
        options = {
            "stdout": opts.stdout,
            "stderr": opts.stderr,
            "follow": opts.follow,
            "tail": opts.tail,
            "since_ns": opts.since_ns,
        }

        async def stream() -> AsyncIterator[tuple[int, bytes]]:
            sub = self._broker.subscribe(by_node, options)  # here: a stream never read subscribes nothing
            watcher = None
            if opts.follow and service_ids:  # dockerd's follow takes in the service's new tasks too
                watcher = asyncio.ensure_future(self._follow_new(store, since_rev, service_ids[0], sub))
            try:
                while True:
                    try:
                        batch = await (
                            sub.queue.get() if opts.follow else asyncio.wait_for(sub.queue.get(), IDLE)
                        )
                    except TimeoutError:
                        return
                    if batch is None:
                        return
                    for msg in batch:
                        yield msg.stream, format_line(msg, opts)
            finally:
                if watcher is not None:
                    watcher.cancel()
                self._broker.unsubscribe(sub)

        return tty, stream()
