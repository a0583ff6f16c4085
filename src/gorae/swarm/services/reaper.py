"""The task reaper (leader only), as swarmkit's: deletes tasks nobody needs any more.

- A task whose DesiredState is `remove` (scaled away, or of a removed service) goes once it stopped
  (observed state past running) or never reached a node (state before assigned).
- A task of a service that no longer exists goes on the same terms.
- Each slot (a replicated service's slot, a global service's node) keeps at most
  `Orchestration.TaskHistoryRetentionLimit` tasks (5 by default; negative: keep all): the oldest ones that
  are neither desired to run nor still running are deleted first.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from gorae.swarm.services import taskdocs
from gorae.swarm.services.component import Reconciler
from gorae.swarm.store.types import Cluster, Service, Task, WriteTx


def reap(tasks: list[dict[str, Any]], services: set[str], limit: int) -> set[str]:
    """The IDs of the tasks to delete."""
    gone: set[str] = set()
    for t in tasks:
        finished = taskdocs.ended(t) or taskdocs.rank(taskdocs.state(t)) < taskdocs.ASSIGNED
        orphan = str(t.get("ServiceID", "")) not in services
        if (t.get("DesiredState") == "remove" or orphan) and finished and not taskdocs.live(t):
            gone.add(str(t["ID"]))
        elif orphan and finished:
            gone.add(str(t["ID"]))
    if limit < 0:
        return gone
    slots: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for t in tasks:
        if str(t["ID"]) not in gone:
            slots[taskdocs.slot_key(t)].append(t)
    for group in slots.values():
        if len(group) <= limit:
            continue
        group.sort(key=lambda t: (int(taskdocs.private(t).get("CreatedNs", 0)), str(t["ID"])))
        excess = len(group) - limit
        for t in group:
            if excess <= 0:
                break
            if taskdocs.live(t) or not taskdocs.ended(t):
                continue
            gone.add(str(t["ID"]))
            excess -= 1
    return gone


class TaskReaper(Reconciler):
    async def reconcile(self, tx: WriteTx, now: int) -> int | None:
        tasks = await tx.find(Task)
        services = {s.id for s in await tx.find(Service)}
        limit = 5
        for cluster in await tx.find(Cluster):
            raw = ((cluster.doc.get("Spec") or {}).get("Orchestration") or {}).get(
                "TaskHistoryRetentionLimit"
            )
            if isinstance(raw, int) and not isinstance(raw, bool):
                limit = raw
        for task_id in sorted(reap([t.doc for t in tasks], services, limit)):
            await tx.delete(Task, task_id)
        return None
