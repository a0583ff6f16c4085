"""The dispatcher: the swarm-port operations through which nodes follow their tasks (on every manager).

  `assignments` — a long poll: the node sends the digest of the assignments it has; the answer comes when
                  its set differs (a task of the node changed, a secret or config one of its tasks uses,
                  a log subscription for it) or after POLL seconds, below the swarm port's 20 s timeout.
                  The set: the node's tasks whose state is at least `assigned`, with the payloads of the
                  secrets and configs that its live tasks use (opened with the cluster data key: only a
                  node running such a task ever receives them), and the log subscriptions it serves.
  `task_status` — the node's status reports, a batch at a time; a report is written only when it moves
                  the task forward (`gorae.swarm.taskstate`), and only for the node's own tasks.
  `log_push`    — log lines for a subscription (`gorae.swarm.logbroker`).

`Orphaner` (the leader only) does what swarmkit's dispatcher does for a node that stays down: after
ORPHAN_AFTER (24 h, swarmkit's node-down period) its tasks move to `orphaned`. Replacing the tasks of a
node that goes down is the orchestrator's work (it watches the node turn Down, as swarmkit's).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
from typing import Any

from gorae.errors import Forbidden, GoraeError, InvalidParameter, Unavailable
from gorae.swarm import taskstate
from gorae.swarm.component import NodeContext, RemoteOp
from gorae.swarm.logbroker import LogBroker, LogMessage, Subscription
from gorae.swarm.secrets import CONFIGS, SECRETS, SecretStore, referenced
from gorae.swarm.store.types import ClusterStore, Node, ReadTx, Service, Task, WriteTx
from gorae.timefmt import rfc3339nano

log = logging.getLogger("gorae.swarm.dispatcher")

POLL = 15.0  # seconds a long poll waits (remote.TIMEOUT is 20 s)
ORPHAN_AFTER = 24 * 3600.0
MAX_UPDATES = 1000


def _now() -> str:
    return rfc3339nano(time.time_ns())


def node_tasks(tasks: list[Task], node_id: str) -> list[Task]:
    """The tasks a node runs or ran: its own, assigned or later."""
    return [
        t
        for t in tasks
        if t.doc.get("NodeID") == node_id
        and taskstate.rank((t.doc.get("Status") or {}).get("State")) >= taskstate.ORDER["assigned"]
    ]


def live(task: Task) -> bool:
    """A task whose container may still need its secrets and configs."""
    doc = task.doc
    return not taskstate.is_terminal((doc.get("Status") or {}).get("State")) and not taskstate.desired_stop(
        doc.get("DesiredState")
    )


def digest(answer: dict[str, Any]) -> str:
    """What identifies an assignment set: every task's ID and stable content, every secret's and config's ID
    and version, every subscription's ID and tasks."""
    parts = [
        [(t["ID"], taskstate.stable(t)) for t in answer["tasks"]],
        [(s["ID"], s["Version"]) for s in answer["secrets"]],
        [(c["ID"], c["Version"]) for c in answer["configs"]],
        [(s["ID"], [t["ID"] for t in s["Tasks"]]) for s in answer["logs"]],
    ]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _watched(task: Task) -> tuple[str, str] | None:
    """A stored task as the long polls see it: (its node, its stable content) once assigned, else None."""
    state = (task.doc.get("Status") or {}).get("State")
    if not task.doc.get("NodeID") or taskstate.rank(state) < taskstate.ORDER["assigned"]:
        return None
    return str(task.doc["NodeID"]), taskstate.stable(task.doc)


async def read_many(tx: ReadTx, task_ids: list[str]) -> list[Task | None]:
    """The tasks by ID, read concurrently (one store round trip each: a batch of reports must not cost
    one after the other); the first read alone, as it pins the transaction's revision."""
    if not task_ids:
        return []
    first = await tx.get(Task, task_ids[0])
    return [first, *await asyncio.gather(*(tx.get(Task, i) for i in task_ids[1:]))]


def apply_status(doc: dict[str, Any], status: dict[str, Any]) -> dict[str, Any] | None:
    """The task document with `status` written, or None when it would not move the task forward."""
    old = (doc.get("Status") or {}).get("State")
    if not taskstate.moves_forward(old, status["State"]):
        return None
    new_status = {"Timestamp": status.get("Timestamp") or _now(), **status}
    new_status.setdefault("Message", "")
    new_status.setdefault("PortStatus", {})
    out = dict(doc)
    out["Status"] = new_status
    out["UpdatedAt"] = _now()
    return out


class Dispatcher:
    """Registered on every daemon; answers while this node is a manager (started with the store)."""

    def __init__(self, secrets: SecretStore, configs: SecretStore, broker: LogBroker) -> None:
        self._secrets = secrets
        self._configs = configs
        self.broker = broker
        broker.on_change = self._wake
        broker.on_subscription = self._relay_subscription
        self._node: NodeContext | None = None
        self._relays: set[asyncio.Task[None]] = set()
        self._store: ClusterStore | None = None
        self._changed: dict[str, asyncio.Event] = {}  # node ID -> the event its long polls wait on
        self._seen: dict[str, tuple[str, str] | None] = {}  # task ID -> _watched(task) as last seen
        self._watcher: asyncio.Task[None] | None = None
        self._key_fetch: asyncio.Task[None] | None = None

    def ops(self) -> dict[str, RemoteOp]:
        return {
            "assignments": self.assignments,
            "task_status": self.task_status,
            "log_push": self.log_push,
            "data_key": self.data_key,
            "log_relay": self.log_relay,
            "log_relay_push": self.log_relay_push,
        }

    async def data_key(self, request: dict[str, Any], node_id: str, peer_ip: str) -> dict[str, Any]:
        """The cluster data key, for a manager that joins (it opens secrets too); refused to workers."""
        store = self._need_store()

        async def read(tx: ReadTx) -> Node | None:
            return await tx.get(Node, node_id)

        node = await store.view(read)
        if node is None or (node.doc.get("Spec") or {}).get("Role") != "manager":
            raise Forbidden("only managers may have the cluster data key")
        return {"key": base64.b64encode(self._secrets.key.get()).decode()}

    async def start(self, node: NodeContext) -> None:
        if node.store is None:
            return
        self._store = node.store
        self._node = node
        self._watcher = asyncio.ensure_future(self._watch(node.store))
        key = self._secrets.key
        if not key.exists():
            if await self._other_managers(node):
                key.awaited = True  # never make a second key: fetch the cluster's from another manager
                self._key_fetch = asyncio.ensure_future(self._fetch_key(node))
            else:
                key.get()  # the swarm's first manager makes it

    async def _is_manager(self, node_id: str) -> bool:
        store = self._need_store()

        async def read(tx: ReadTx) -> Node | None:
            return await tx.get(Node, node_id)

        node = await store.view(read)
        return node is not None and (node.doc.get("Spec") or {}).get("Role") == "manager"

    async def _own_addr(self, node: NodeContext) -> str:
        assert node.store is not None

        async def read(tx: ReadTx) -> Node | None:
            return await tx.get(Node, node.node_id)

        me = await node.store.view(read)
        return str(((me.doc.get("ManagerStatus") or {}).get("Addr") or "") if me else "")

    def _relay_subscription(self, sub: Subscription, alive: bool) -> None:
        """This manager's log subscription made, grown or ended: the other managers serve it to the nodes
        that poll them (they relay what those nodes send)."""
        node = self._node
        if node is None or node.call_at is None or sub.relay_to:
            return

        async def tell() -> None:
            assert node.call_at is not None
            origin = await self._own_addr(node)
            request = {"op": "log_relay", "sub": sub.id, "tasks": sub.tasks, "options": sub.options,
                       "origin": origin, "alive": alive}  # fmt: skip
            for addr in await self._other_managers(node):
                try:
                    await node.call_at(addr, request)
                except GoraeError as e:
                    log.warning("swarm logs: manager %s: %s", addr, e.message)

        job = asyncio.ensure_future(tell())
        self._relays.add(job)
        job.add_done_callback(self._relays.discard)

    async def log_relay(self, request: dict[str, Any], node_id: str, peer_ip: str) -> dict[str, Any]:
        """Another manager's subscription, to serve to the nodes polling this one (managers only)."""
        if not await self._is_manager(node_id):
            raise Forbidden("only managers relay log subscriptions")
        sub_id, tasks, origin = request.get("sub"), request.get("tasks"), request.get("origin")
        if (
            not isinstance(sub_id, str)
            or not isinstance(tasks, dict)
            or not isinstance(origin, str)
            or not origin
        ):
            raise InvalidParameter("bad log relay")
        if request.get("alive") is False:
            self.broker.drop(sub_id)
            return {}
        checked = {
            str(n): [r for r in refs if isinstance(r, dict) and isinstance(r.get("ID"), str)]
            for n, refs in tasks.items()
            if isinstance(refs, list)
        }
        options = request.get("options") if isinstance(request.get("options"), dict) else {}
        self.broker.relay(sub_id, checked, options or {}, origin)
        return {}

    async def log_relay_push(self, request: dict[str, Any], node_id: str, peer_ip: str) -> dict[str, Any]:
        """Lines a node sent to another manager for this manager's subscription (managers only)."""
        if not await self._is_manager(node_id):
            raise Forbidden("only managers relay log lines")
        origin_node = request.get("node")
        if not isinstance(origin_node, str):
            raise InvalidParameter("bad log relay")
        return await self.log_push(request, origin_node, peer_ip, relayed=True)

    async def _other_managers(self, node: NodeContext) -> list[str]:
        """The swarm-port addresses of the other managers (from their Node objects)."""
        assert node.store is not None

        async def read(tx: ReadTx) -> list[Node]:
            return await tx.find(Node)

        return [
            str((n.doc.get("ManagerStatus") or {}).get("Addr") or "")
            for n in await node.store.view(read)
            if n.id != node.node_id
            and (n.doc.get("Spec") or {}).get("Role") == "manager"
            and (n.doc.get("ManagerStatus") or {}).get("Addr")
        ]

    async def _fetch_key(self, node: NodeContext) -> None:
        """A manager that joined: the cluster data key from another manager (retried until one answers)."""
        key = self._secrets.key
        while key.awaited and node.call_at is not None:
            for addr in await self._other_managers(node):
                try:
                    answer = await node.call_at(addr, {"op": "data_key"})
                    key.install(base64.b64decode(str(answer.get("key", "")), validate=True))
                    log.info("swarm: the cluster data key came from the manager at %s", addr)
                    return
                except (GoraeError, ValueError) as e:
                    log.warning("swarm: no cluster data key from %s: %s", addr, e)
            await asyncio.sleep(1.0)

    async def stop(self) -> None:
        self._store = None
        self._node = None
        for relay in list(self._relays):
            relay.cancel()
        fetch, self._key_fetch = self._key_fetch, None
        if fetch is not None:
            fetch.cancel()
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()
            # a store client that swallows the cancellation must not hold up `swarm leave` or a stop
            _, stuck = await asyncio.wait({watcher}, timeout=5)
            if stuck:
                log.warning("dispatcher: the store watch did not stop")
        self._wake()

    def _wake(self, *node_ids: str) -> None:
        """Wake the long polls of these nodes (of every node without any)."""
        for node_id in node_ids or list(self._changed):
            event = self._changed.pop(node_id, None)
            if event is not None:
                event.set()

    def _task_changed(self, task: Task, deleted: bool) -> None:
        """Wake only the nodes whose assignment set the change alters: a status the node reported itself,
        or the managers' bookkeeping, is no news to any agent (one status write woke every poll before,
        and each answered with a snapshot of the whole store)."""
        before = self._seen.pop(task.id, None)
        after = None if deleted else _watched(task)
        if not deleted:
            self._seen[task.id] = after
        if before != after:
            self._wake(*{w[0] for w in (before, after) if w is not None})

    async def _watch(self, store: ClusterStore) -> None:
        """Wake the long polls on the changes that alter their answers (see _task_changed); a change of a
        secret, config, node or service wakes them all."""
        while self._store is store:
            try:
                rev = await store.revision()
                self._seen.clear()
                self._wake()
                async for change in store.watch(after=rev):
                    if isinstance(change.obj, Task):
                        self._task_changed(change.obj, change.action == "delete")
                    elif change.obj.kind in ("secret", "config", "node", "service"):
                        self._wake()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the store restarts, a watch breaks: follow again
                current = asyncio.current_task()
                if self._store is not store or (current is not None and current.cancelling()):
                    raise asyncio.CancelledError() from e
                log.warning("dispatcher watch: %s", e)
                await asyncio.sleep(1.0)

    def _need_store(self) -> ClusterStore:
        if self._store is None:
            raise Unavailable("this node is not a swarm manager")
        return self._store

    # -- assignments ---------------------------------------------------------------------------

    async def snapshot(self, node_id: str) -> dict[str, Any]:
        """The node's assignment set now."""
        store = self._need_store()

        async def read(tx: ReadTx) -> dict[str, Any]:
            tasks = node_tasks(await tx.find(Task), node_id)
            names: dict[str, str] = {}
            labels: dict[str, dict[str, Any]] = {}  # the services' labels, for the templates' .Service.Labels
            endpoints: dict[str, Any] = {}  # swarmkit's Task.Endpoint: the service's (published ports)
            for service in await tx.find(Service):
                names[service.id] = str((service.doc.get("Spec") or {}).get("Name", ""))
                labels[service.id] = dict((service.doc.get("Spec") or {}).get("Labels") or {})
                endpoint = service.doc.get("Endpoint") or {}
                ports = (
                    endpoint.get("Ports")
                    or ((service.doc.get("Spec") or {}).get("EndpointSpec") or {}).get("Ports")
                )  # the spec's until the managers have filled Endpoint.Ports in (host-mode ports are the same)
                if ports:
                    endpoints[service.id] = {**endpoint, "Ports": ports}
            secret_ids: set[str] = set()
            config_ids: set[str] = set()
            out_tasks = []
            for t in tasks:
                spec = t.doc.get("Spec") or {}
                if live(t):
                    secret_ids |= referenced(spec, SECRETS)
                    config_ids |= referenced(spec, CONFIGS)
                doc = {k: v for k, v in t.doc.items() if k != "_gorae"}
                doc["Version"] = {"Index": t.version}
                private = t.doc.get("_gorae") or {}
                sid = str(t.doc.get("ServiceID", ""))
                doc["ServiceName"] = str(private.get("ServiceName") or names.get(sid) or sid)
                service_labels = private["ServiceLabels"] if "ServiceLabels" in private else labels.get(sid)
                if service_labels:  # the templates' .Service.Labels (swarmkit's Task.ServiceAnnotations)
                    doc["ServiceLabels"] = service_labels
                if sid in endpoints:
                    doc["Endpoint"] = endpoints[sid]
                out_tasks.append(doc)
            return {
                "tasks": out_tasks,
                "secrets": await self._secrets.payloads(tx, secret_ids),
                "configs": await self._configs.payloads(tx, config_ids),
            }

        answer = await store.view(read)
        answer["logs"] = self.broker.for_node(node_id)
        answer["digest"] = digest(answer)
        return answer

    async def assignments(self, request: dict[str, Any], node_id: str, peer_ip: str) -> dict[str, Any]:
        have = request.get("have")
        wait = request.get("wait", True) is not False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + POLL
        while True:
            changed = self._changed.setdefault(node_id, asyncio.Event())
            answer = await self.snapshot(node_id)
            remaining = deadline - loop.time()
            if answer["digest"] != have or not wait or remaining <= 0:
                return answer
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                return answer

    # -- status reports --------------------------------------------------------------------------

    async def task_status(self, request: dict[str, Any], node_id: str, peer_ip: str) -> dict[str, Any]:
        store = self._need_store()
        raw = request.get("updates")
        if not isinstance(raw, list) or len(raw) > MAX_UPDATES:
            raise InvalidParameter("updates must be a list")
        updates: dict[str, dict[str, Any]] = {}
        for item in raw:
            if not isinstance(item, dict) or not isinstance(item.get("ID"), str):
                raise InvalidParameter("an update needs a task ID")
            try:
                updates[item["ID"]] = taskstate.check_status(item.get("Status"))
            except ValueError as e:
                raise InvalidParameter(str(e)) from None

        async def write(tx: WriteTx) -> int:
            written = 0
            tasks = await read_many(tx, list(updates))
            for status, task in zip(updates.values(), tasks, strict=True):
                if task is None or task.doc.get("NodeID") != node_id:
                    continue  # removed meanwhile, or not this node's: never written
                doc = apply_status(task.doc, status)
                if doc is not None:
                    await tx.update(task.with_doc(doc))
                    written += 1
            return written

        return {"written": await store.update(write)}

    # -- logs ------------------------------------------------------------------------------------

    async def log_push(
        self, request: dict[str, Any], node_id: str, peer_ip: str, relayed: bool = False
    ) -> dict[str, Any]:
        sub_id = request.get("sub")
        raw = request.get("messages") or []
        if not isinstance(sub_id, str) or not isinstance(raw, list):
            raise InvalidParameter("bad log push")
        sub = self.broker.get(sub_id)
        node = self._node
        if sub is not None and sub.relay_to and not relayed:  # another manager's: on to it
            if node is None or node.call_at is None:
                return {"gone": True}
            try:
                answer = await node.call_at(
                    sub.relay_to,
                    {"op": "log_relay_push", "sub": sub_id, "node": node_id, "messages": raw,
                     "close": request.get("close") is True},
                )  # fmt: skip
            except GoraeError as e:
                log.warning("swarm logs: relay to %s: %s", sub.relay_to, e.message)
                answer = {"gone": True}
            if answer.get("gone"):
                self.broker.drop(sub_id)
            elif request.get("close") is True:
                self.broker.closed(sub, node_id)  # the node is done: not served to it again
            return {"gone": bool(answer.get("gone"))}
        messages = []
        for m in raw:
            try:
                messages.append(
                    LogMessage(
                        node_id=node_id,
                        service_id=str(m["service"]),
                        task_id=str(m["task"]),
                        stream=2 if m.get("stream") == 2 else 1,
                        time_ns=int(m["ts"]),
                        line=base64.b64decode(str(m["line"]), validate=True),
                    )
                )
            except (KeyError, TypeError, ValueError) as e:
                raise InvalidParameter(f"bad log message: {e}") from None
        alive = await self.broker.push(node_id, sub_id, messages, request.get("close") is True)
        return {"gone": not alive}


class Orphaner:
    """Leader only: tasks of a node down for `after` seconds become `orphaned` (swarmkit's dispatcher)."""

    def __init__(self, after: float = ORPHAN_AFTER, period: float = 60.0) -> None:
        self.after = after
        self.period = period
        self._down_since: dict[str, float] = {}
        self._loop: asyncio.Task[None] | None = None

    async def start(self, node: NodeContext) -> None:
        if node.store is not None:
            self._loop = asyncio.ensure_future(self._run(node.store))

    async def stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.cancel()
            try:
                await loop
            except BaseException:  # noqa: BLE001, S110 - cancelled on purpose
                pass

    async def _run(self, store: ClusterStore) -> None:
        while True:
            try:
                await self.check(store, time.monotonic())
            except GoraeError as e:
                log.warning("orphaned tasks: %s", e.message)
            except Exception:
                log.exception("orphaned tasks")
            await asyncio.sleep(self.period)

    async def check(self, store: ClusterStore, now: float) -> int:
        """One pass: note nodes that went down, orphan the tasks of those down for long enough."""

        async def read(tx: ReadTx) -> list[Node]:
            return await tx.find(Node)

        down = {n.id for n in await store.view(read) if (n.doc.get("Status") or {}).get("State") == "down"}
        for node_id in list(self._down_since):
            if node_id not in down:
                del self._down_since[node_id]
        expired = set()
        for node_id in down:
            since = self._down_since.setdefault(node_id, now)
            if now - since >= self.after:
                expired.add(node_id)
        if not expired:
            return 0

        async def write(tx: WriteTx) -> int:
            moved = 0
            for task in await tx.find(Task):
                if task.doc.get("NodeID") not in expired:
                    continue
                old = task.doc.get("Status") or {}
                doc = apply_status(task.doc, {**old, "State": "orphaned", "Timestamp": _now()})
                if doc is not None:
                    await tx.update(task.with_doc(doc))
                    moved += 1
            return moved

        return await store.update(write)
