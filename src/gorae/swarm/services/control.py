"""The manager's side of `/services` and `/tasks` (swarmkit's controlapi as dockerd answers it): create,
list with filters, inspect, update at a version (with `rollback=previous`), remove; tasks list with filters
and inspect. Writes only service objects; the orchestrator makes the tasks.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from typing import Any

from gorae.errors import Conflict, InvalidParameter, NotFound, NotImplementedYet, SystemError_
from gorae.filters import Filters
from gorae.swarm import inputs
from gorae.swarm.ids import new_id
from gorae.swarm.networks import records
from gorae.swarm.services import spec as specs
from gorae.swarm.services import taskdocs
from gorae.swarm.store.types import (
    ClusterStore,
    Network,
    Node,
    ReadTx,
    SequenceConflict,
    Service,
    Task,
    WriteTx,
)
from gorae.timefmt import rfc3339nano

SERVICE_FILTERS = ("id", "label", "mode", "name", "runtime")
TASK_FILTERS = ("_up-to-date", "desired-state", "id", "label", "name", "node", "service", "runtime")


def parse_version(raw: str | None) -> int:
    return inputs.parse_version(raw, "service")


def _check_filters(filters: Filters, allowed: tuple[str, ...]) -> None:
    for key in filters:
        if key not in allowed:
            raise InvalidParameter(f"Invalid filter '{key}'")


async def find_service(tx: ReadTx, ref: str) -> Service:
    """By full ID, then exact name, then unique ID prefix (swarmkit's lookup); dockerd's 404 otherwise."""
    found = await tx.get(Service, ref)
    if found is not None:
        return found
    every = await tx.find(Service)
    named = [s for s in every if (s.doc.get("Spec") or {}).get("Name") == ref]
    if len(named) == 1:
        return named[0]
    prefixed = [s for s in every if ref and s.id.startswith(ref)]
    if len(prefixed) == 1:
        return prefixed[0]
    if len(named) > 1 or len(prefixed) > 1:
        raise NotFound(f"service {ref} is ambiguous ({len(named) or len(prefixed)} matches found)")
    raise NotFound(f"service {ref} not found")


async def _find_node(tx: ReadTx, ref: str) -> Node:
    found = await tx.get(Node, ref)
    if found is not None:
        return found
    every = await tx.find(Node)
    named = [n for n in every if (n.doc.get("Description") or {}).get("Hostname") == ref]
    if len(named) == 1:
        return named[0]
    prefixed = [n for n in every if ref and n.id.startswith(ref)]
    if len(prefixed) == 1:
        return prefixed[0]
    raise NotFound(f"node {ref} not found")


def _name_conflict(name: str) -> Conflict:
    return Conflict(
        f"rpc error: code = AlreadyExists desc = name conflicts with an existing object: service {name} already exists"
    )


def _check_ports(services: list[Service], spec: dict[str, Any], service_id: str) -> None:
    """swarmkit's refusal of an ingress port another service publishes already."""
    conflict = records.port_conflict([(s.id, s.doc) for s in services], spec, service_id)
    if conflict is not None:
        raise InvalidParameter(conflict)


def _template_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """The change rolls the tasks: their template, or the published ports (each task keeps the endpoint spec
    it was made with, as swarmkit's)."""

    def key(s: dict[str, Any]) -> str:
        return json.dumps([s.get("TaskTemplate"), s.get("EndpointSpec")], sort_keys=True)

    return key(old) != key(new)


async def _network_ids(tx: ReadTx, spec: dict[str, Any]) -> None:
    """dockerd's populateNetworkID: each network a service attaches to is stored by its ID (a name or an ID
    prefix of a swarm network resolved; a target that names none is left as given)."""
    template = spec.get("TaskTemplate") or {}
    attachments = template.get("Networks") or spec.get("Networks") or []
    if not attachments:
        return
    networks = await tx.find(Network)
    for att in attachments:
        if not isinstance(att, dict):
            continue
        target = str(att.get("Target") or "")
        if not target or any(n.id == target for n in networks):
            continue
        found = [n for n in networks if n.doc.get("Name") == target] or [
            n for n in networks if n.id.startswith(target)
        ]
        if len(found) == 1:
            att["Target"] = found[0].id


class ServiceControl:
    """`/services` and `/tasks` over the cluster store (`store()` raises dockerd's 503s off a manager)."""

    def __init__(self, store: Callable[[], ClusterStore], clock: Callable[[], int] = time.time_ns) -> None:
        self._store = store
        self._clock = clock

    # -- services ----------------------------------------------------------------------------

    async def create(self, body: Any, registry_auth: str | None = None) -> dict[str, Any]:
        store = self._store()
        spec = specs.validate(body)
        specs.set_registry_auth(spec, registry_auth)
        if not spec["Name"]:
            spec["Name"] = specs.random_name()
        service_id = new_id()
        now = rfc3339nano(self._clock())
        doc: dict[str, Any] = {
            "ID": service_id,
            "CreatedAt": now,
            "UpdatedAt": now,
            "Spec": spec,
            "Endpoint": self._endpoint(spec),
            "_gorae": {"SpecVersion": 1},
        }
        if specs.is_job(spec):
            doc["JobStatus"] = {"JobIteration": {}, "LastExecution": now}

        async def write(tx: WriteTx) -> None:
            others = await tx.find(Service)
            for other in others:
                if (other.doc.get("Spec") or {}).get("Name") == spec["Name"]:
                    raise _name_conflict(spec["Name"])
            _check_ports(others, spec, service_id)
            await _network_ids(tx, spec)
            await tx.create(Service(service_id, doc))

        await store.update(write)
        return {"ID": service_id}

    @staticmethod
    def _endpoint(spec: dict[str, Any]) -> dict[str, Any]:
        endpoint = spec.get("EndpointSpec") or {}
        if endpoint.get("Ports"):
            return {"Spec": copy.deepcopy(endpoint)}
        return {"Spec": {}}

    async def list_services(self, filters: Filters, status: bool) -> list[dict[str, Any]]:
        store = self._store()
        _check_filters(filters, SERVICE_FILTERS)

        async def read(tx: ReadTx) -> tuple[list[Service], list[Task]]:
            return await tx.find(Service), (await tx.find(Task) if status else [])

        services, tasks = await store.view(read)
        out = []
        for s in services:
            spec = s.doc.get("Spec") or {}
            mode = specs.mode_kind(spec)
            if filters.contains("id") and not any(s.id.startswith(v) for v in filters.get("id")):
                continue
            if filters.contains("name") and not any(
                spec.get("Name", "").startswith(v) for v in filters.get("name")
            ):
                continue
            if not filters.exact("mode", mode) or not filters.exact("runtime", "container"):
                continue
            if not filters.match_labels(spec.get("Labels")):
                continue
            doc = taskdocs.public_service(s.doc, s.version)
            if status:
                doc["ServiceStatus"] = self._service_status(s, tasks)
                if "JobStatus" in doc:  # Go's field order
                    doc["JobStatus"] = doc.pop("JobStatus")
            out.append(doc)
        return out

    @staticmethod
    def _service_status(service: Service, tasks: list[Task]) -> dict[str, int]:
        """dockerd's counts: tasks running (desired to run or, a job's, to complete), the tasks wanted
        (replicas; a global service's tasks desired running; a replicated job's MaxConcurrent; a global
        job's tasks desired complete that have not completed) and a job's completed tasks, of its
        current iteration only."""
        spec = service.doc.get("Spec") or {}
        mine = [t.doc for t in tasks if t.doc.get("ServiceID") == service.id]
        kind = specs.mode_kind(spec)
        target = "running"
        if specs.is_job(spec):
            target = "complete"
            current = taskdocs.iteration(service.doc)
            mine = [t for t in mine if taskdocs.iteration(t) == current]
        running = sum(1 for t in mine if t.get("DesiredState") == target and taskdocs.state(t) == "running")
        completed = sum(1 for t in mine if taskdocs.state(t) == "complete") if target == "complete" else 0
        if kind == "global":
            desired = sum(1 for t in mine if t.get("DesiredState") == "running")
        elif kind == "global-job":
            desired = sum(
                1 for t in mine if t.get("DesiredState") == "complete" and taskdocs.state(t) != "complete"
            )
        elif kind == "replicated-job":
            desired = specs.job_counts(spec)[0]
        else:
            desired = specs.replicas(spec)
        return {"RunningTasks": running, "DesiredTasks": desired, "CompletedTasks": completed}

    async def inspect(self, ref: str, insert_defaults: bool) -> dict[str, Any]:
        store = self._store()

        async def read(tx: ReadTx) -> Service:
            return await find_service(tx, ref)

        service = await store.view(read)
        doc = taskdocs.public_service(service.doc, service.version)
        if insert_defaults:
            doc["Spec"] = specs.with_defaults(doc["Spec"])
            if doc.get("PreviousSpec"):
                doc["PreviousSpec"] = specs.with_defaults(doc["PreviousSpec"])
        return doc

    async def update(
        self,
        ref: str,
        raw_version: str | None,
        body: Any,
        rollback: str | None,
        auth_from: str | None,
        registry_auth: str | None = None,
    ) -> dict[str, Any]:
        store = self._store()
        version = parse_version(raw_version)
        if auth_from not in (None, "", "spec", "previous-spec"):
            raise SystemError_("unsupported registryAuthFrom value")
        if rollback not in (None, "", "previous"):
            raise SystemError_(f"unrecognized rollback option {rollback}")
        new_spec = specs.validate(body)

        async def write(tx: WriteTx) -> None:
            service = await find_service(tx, ref)
            doc = copy.deepcopy(service.doc)
            old = doc["Spec"]
            bag = dict(taskdocs.private(doc))
            now = rfc3339nano(self._clock())
            if rollback == "previous":
                previous = doc.get("PreviousSpec")
                if not previous:
                    raise InvalidParameter(
                        f"rpc error: code = FailedPrecondition desc = service {service.id} does not have a "
                        "previous spec"
                    )
                target = previous
            else:
                target = new_spec
                # dockerd: without new credentials the spec keeps those of the spec (or the previous one)
                if registry_auth:
                    specs.set_registry_auth(target, registry_auth)
                elif auth_from == "previous-spec":
                    if not doc.get("PreviousSpec"):
                        raise SystemError_("service does not have a previous spec")
                    specs.set_registry_auth(target, specs.registry_auth(doc["PreviousSpec"]))
                else:
                    specs.set_registry_auth(target, specs.registry_auth(old))
                if target["Name"] != old.get("Name"):
                    raise NotImplementedYet(
                        "rpc error: code = Unimplemented desc = renaming services is not supported"
                    )
                if specs.mode_kind(target) != specs.mode_kind(old):
                    raise NotImplementedYet(
                        "rpc error: code = Unimplemented desc = service mode change is not allowed"
                    )
            if service.version != version:
                raise SequenceConflict()
            _check_ports(await tx.find(Service), target, service.id)
            await _network_ids(tx, target)
            doc["PreviousSpec"] = old
            doc["Spec"] = target
            doc["Endpoint"] = self._endpoint(target)
            doc["UpdatedAt"] = now
            if specs.is_job(target):
                # every update of a job runs it again (swarmkit's next JobIteration); no rolling update
                doc["JobStatus"] = {
                    "JobIteration": taskdocs.version(taskdocs.iteration(doc) + 1),
                    "LastExecution": now,
                }
                bag["SpecVersion"] = int(bag.get("SpecVersion", 1)) + 1
                if rollback == "previous":
                    doc["UpdateStatus"] = {
                        "State": "rollback_started",
                        "StartedAt": now,
                        "Message": "manually requested rollback",
                    }
                else:
                    doc.pop("UpdateStatus", None)
            elif _template_changed(old, target):
                bag["SpecVersion"] = int(bag.get("SpecVersion", 1)) + 1
                bag["UpdateRun"] = int(bag.get("UpdateRun", 0)) + 1
                bag["UpdateNextAt"] = 0
                if rollback == "previous":
                    doc["UpdateStatus"] = {
                        "State": "rollback_started",
                        "StartedAt": now,
                        "Message": "manually requested rollback",
                    }
                else:
                    doc["UpdateStatus"] = {
                        "State": "updating",
                        "StartedAt": now,
                        "Message": "update in progress",
                    }
            doc["_gorae"] = bag
            await tx.update(Service(service.id, doc, version))

        await store.update(write)
        return {"Warnings": None}

    async def remove(self, ref: str) -> None:
        store = self._store()

        async def write(tx: WriteTx) -> None:
            service = await find_service(tx, ref)
            await tx.delete(Service, service.id)

        await store.update(write)

    # -- tasks -------------------------------------------------------------------------------

    async def tasks(self, filters: Filters) -> list[dict[str, Any]]:
        store = self._store()
        _check_filters(filters, TASK_FILTERS)
        desired = []
        for value in filters.get("desired-state"):  # any task state, in any case (dockerd's check)
            if value.lower() in taskdocs.STATES:
                desired.append(value.lower())
            elif value:
                raise SystemError_(f"Invalid desired-state filter: '{value}'")

        async def read(tx: ReadTx) -> tuple[list[Task], set[str], set[str], dict[str, Any], dict[str, Any]]:
            services = {(await find_service(tx, ref)).id for ref in filters.get("service")}
            nodes = {(await _find_node(tx, ref)).id for ref in filters.get("node")}
            templates, labels = {}, {}
            if filters.contains("_up-to-date") or filters.contains("label"):
                for s in await tx.find(Service):
                    templates[s.id] = specs.task_spec(s.doc.get("Spec") or {})
                    labels[s.id] = (s.doc.get("Spec") or {}).get("Labels") or {}
            return await tx.find(Task), services, nodes, templates, labels

        tasks, services, nodes, templates, labels = await store.view(read)
        out = []
        for t in tasks:
            doc = t.doc
            if filters.contains("id") and not any(t.id.startswith(v) for v in filters.get("id")):
                continue
            if filters.contains("service") and doc.get("ServiceID") not in services:
                continue
            if filters.contains("node") and doc.get("NodeID") not in nodes:
                continue
            if filters.contains("name") and not any(
                taskdocs.task_name(doc).startswith(v) for v in filters.get("name")
            ):
                continue
            if desired and doc.get("DesiredState") not in desired:
                continue
            if filters.contains("_up-to-date") and doc.get("Spec") != templates.get(
                str(doc.get("ServiceID"))
            ):
                continue  # the CLI's progress: only tasks of the service's current spec
            # swarmkit matches a task's `label` filter on its service's labels (ServiceAnnotations): what
            # `docker stack ps` asks for (com.docker.stack.namespace)
            bag = taskdocs.private(doc)
            service_labels = (
                bag["ServiceLabels"] if "ServiceLabels" in bag else labels.get(str(doc.get("ServiceID")))
            )
            if not filters.match_labels(service_labels or {}) or not filters.exact("runtime", "container"):
                continue
            out.append(taskdocs.public_task(doc, t.version))
        return out

    async def task(self, ref: str) -> dict[str, Any]:
        store = self._store()

        async def read(tx: ReadTx) -> Task:
            found = await tx.get(Task, ref)
            if found is not None:
                return found
            prefixed = [t for t in await tx.find(Task) if ref and t.id.startswith(ref)]
            if len(prefixed) == 1:
                return prefixed[0]
            if len(prefixed) > 1:
                raise NotFound(f"task {ref} is ambiguous ({len(prefixed)} matches found)")
            raise NotFound(f"task {ref} not found")

        found = await store.view(read)
        return taskdocs.public_task(found.doc, found.version)
