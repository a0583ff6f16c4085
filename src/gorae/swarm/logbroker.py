"""The manager's side of `docker service logs`: subscriptions that nodes serve and the messages they send.

The API asks for the logs of some tasks (`subscribe`, tasks grouped by node); each node learns of the
subscriptions for it through its assignments long poll (`for_node`), reads its task containers' logs and
sends them back over the swarm port (`push`, op `log_push`), with `close` once it has sent all (without
`follow`). Messages wait in the subscription's queue for the API's stream; a subscription the API dropped is
answered `gone`, and the node stops reading.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gorae.swarm.ids import new_id

QUEUE_MAX = 4096  # batches waiting for a slow API reader before a node's push waits


@dataclass(frozen=True)
class LogMessage:
    node_id: str
    service_id: str
    task_id: str
    stream: int  # 1 stdout, 2 stderr
    time_ns: int
    line: bytes  # with its newline as the container wrote it
    attrs: tuple[tuple[str, str], ...] = ()


@dataclass
class Subscription:
    id: str
    tasks: dict[str, list[dict[str, str]]]  # node ID -> [{"ID": task ID, "ServiceID": ...}]
    options: dict[str, Any]  # stdout, stderr, follow, tail, since
    queue: asyncio.Queue[list[LogMessage] | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_MAX))
    open_nodes: set[str] = field(default_factory=set)  # nodes that have not said `close`
    relay_to: str = ""  # another manager's subscription: what nodes send here goes on to it (its address)

    def done(self) -> bool:
        return not self.open_nodes


class LogBroker:
    def __init__(self) -> None:
        self._subs: dict[str, Subscription] = {}
        self.on_change: Callable[[], None] = lambda: None  # the dispatcher wakes the nodes' long polls
        # the dispatcher tells the other managers of this manager's subscriptions (their nodes serve them too)
        self.on_subscription: Callable[[Subscription, bool], None] = lambda sub, alive: None

    def subscribe(self, tasks: dict[str, list[dict[str, str]]], options: dict[str, Any]) -> Subscription:
        sub = Subscription(new_id(), {n: list(t) for n, t in tasks.items() if t}, dict(options))
        sub.open_nodes = set(sub.tasks)
        self._subs[sub.id] = sub
        if sub.done() and not sub.options.get("follow"):  # nothing to read; a follower waits for new tasks
            sub.queue.put_nowait(None)
        self.on_change()
        self.on_subscription(sub, True)
        return sub

    def relay(self, sub_id: str, tasks: dict[str, list[dict[str, str]]], options: dict[str, Any], origin: str) -> None:
        """Serve another manager's subscription to the nodes that poll this one (made or updated)."""
        sub = self._subs.get(sub_id)
        if sub is None:
            sub = Subscription(sub_id, {}, dict(options), relay_to=origin)
            self._subs[sub_id] = sub
        elif not sub.relay_to:
            return  # this manager's own
        for node_id, refs in tasks.items():
            known = sub.tasks.setdefault(node_id, [])
            if node_id not in sub.open_nodes and not known:
                sub.open_nodes.add(node_id)
            for ref in refs:
                if not any(t["ID"] == ref.get("ID") for t in known):
                    known.append({"ID": str(ref.get("ID")), "ServiceID": str(ref.get("ServiceID", ""))})
        self.on_change()

    def closed(self, sub: Subscription, node_id: str) -> None:
        """A node said `close` for a relayed subscription."""
        if node_id in sub.open_nodes:
            sub.open_nodes.discard(node_id)
            self.on_change()

    def get(self, sub_id: str) -> Subscription | None:
        return self._subs.get(sub_id)

    def drop(self, sub_id: str) -> None:
        """Forget a relayed subscription (its manager's stream ended)."""
        sub = self._subs.get(sub_id)
        if sub is not None and sub.relay_to:
            del self._subs[sub_id]
            self.on_change()

    def add_task(self, sub: Subscription, node_id: str, task: dict[str, str]) -> None:
        """A task that appeared while the subscription follows (a new node joins the subscription)."""
        if sub.id not in self._subs:
            return
        known = sub.tasks.setdefault(node_id, [])
        if any(t["ID"] == task["ID"] for t in known):
            return
        known.append(task)
        sub.open_nodes.add(node_id)
        self.on_change()
        self.on_subscription(sub, True)

    def unsubscribe(self, sub: Subscription) -> None:
        if self._subs.pop(sub.id, None) is not None:
            self.on_change()
            self.on_subscription(sub, False)

    def give_up(self, sub: Subscription, node_id: str) -> None:
        """A node that cannot answer (down, gone) counts as done."""
        if node_id in sub.open_nodes:
            sub.open_nodes.discard(node_id)
            if sub.done():
                sub.queue.put_nowait(None)

    def for_node(self, node_id: str) -> list[dict[str, Any]]:
        """The subscriptions node `node_id` serves (part of its assignments)."""
        return [
            {"ID": sub.id, "Tasks": sub.tasks[node_id], "Options": sub.options}
            for sub in self._subs.values()
            if node_id in sub.tasks and node_id in sub.open_nodes
        ]

    async def push(self, node_id: str, sub_id: str, messages: list[LogMessage], close: bool) -> bool:
        """Messages from a node; False when the subscription is gone (the node stops)."""
        sub = self._subs.get(sub_id)
        if sub is None or node_id not in sub.tasks:
            return False
        mine = {t["ID"] for t in sub.tasks[node_id]}
        messages = [m for m in messages if m.task_id in mine]  # a node speaks only for its own tasks
        if messages:
            await sub.queue.put(messages)
        if close and node_id in sub.open_nodes:
            sub.open_nodes.discard(node_id)
            if sub.done():
                await sub.queue.put(None)
        return sub.id in self._subs
