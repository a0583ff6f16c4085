"""The swarm's networks on every node: a swarm component (gorae.swarm.component) that is the network
controller's `ClusterNetworks` while this node is in a swarm.

Managers answer three swarm-port operations over the cluster store:
  network.attach  an address on a swarm network for a container (or task) on the calling node; a network
                  that is not `--attachable` is refused to plain containers, as dockerd refuses it
  network.detach  give it back
  network.watch   long poll: every swarm network with its endpoints, answered at once when the caller's
                  `tag` is stale, else when a network changes (or after WATCH_WAIT seconds)
Every node (managers too) follows `network.watch` through `call_manager`, keeps the answer as its view of
the cluster's networks (`find`/`list`), programs the other nodes' endpoints into the networks instantiated
here (VXLAN forwarding and neighbour entries) and removes local instances of networks the cluster dropped.
The store replaces Docker's gossip (port 7946): nodes learn peers from the managers only.
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import json
import logging
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from gorae.errors import Forbidden, GoraeError, InvalidParameter, NotFound, Unavailable
from gorae.network.clusternets import TASK_NAME
from gorae.network.controller import NetworkController
from gorae.network.kernel.vxlan import Peer
from gorae.network.portmap.lb import Backend, Frontend, LoadBalancer
from gorae.network.types import Attachment
from gorae.swarm import ids, taskstate
from gorae.swarm.component import NodeContext
from gorae.swarm.networks import allocator, records
from gorae.swarm.networks.mesh import SBOX, RoutingMesh
from gorae.swarm.store.types import ClusterStore, Network, Node, ReadTx, Service, Task, WriteTx

log = logging.getLogger(__name__)
T = TypeVar("T")

WATCH_WAIT = 10.0  # below the swarm port's 20 s answer timeout
RETRY = 1.0
LB_PREFIX = "GORAE-SVC"  # chains in each container's own namespace
NOT_MANAGER_CREATE = (
    "Cannot create a multi-host network from a worker node. Please create the network from a manager node."
)


def _tag(docs: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(docs, sort_keys=True).encode()).hexdigest()[:16]


def _local_doc(doc: dict[str, Any]) -> dict[str, Any]:
    """What a node stores of a swarm network: the public shape (the allocations stay in the cluster)."""
    return allocator.public(doc)


class SwarmNetworks:
    def __init__(self, controller: NetworkController) -> None:
        self.controller = controller
        self.node: NodeContext | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._docs: dict[str, dict[str, Any]] = {}  # network ID -> stored doc (with _gorae endpoints)
        self._tag = ""
        self._changed = asyncio.Event()  # managers: a network changed in the store
        self._records: builtins.list[dict[str, Any]] = []  # service records (see records.service_records)
        self._balanced: dict[str, tuple[LoadBalancer, dict[Frontend, builtins.list[Backend]]]] = {}
        self.mesh = RoutingMesh(controller, self.attach, self.detach)
        self.synced = asyncio.Event()  # tests: the first view arrived

    # ---- the component -------------------------------------------------------------------------

    async def start(self, node: NodeContext) -> None:
        self.node = node
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        self.synced = asyncio.Event()
        self.controller.cluster = self
        if node.store is not None:
            self._tasks.append(asyncio.ensure_future(self._watch_store(node.store)))
        self._tasks.append(asyncio.ensure_future(self._follow()))

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for t in tasks:
            t.cancel()
        for t in tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - stopping
                pass
        try:
            await self.mesh.close()
        except Exception:  # noqa: BLE001 - leaving goes on
            log.exception("tearing down the routing mesh")
        self.controller.cluster = None
        self._docs, self._tag, self._records, self._balanced = {}, "", [], {}
        for nid in self.controller.swarm.local_ids():  # instances no container uses any more
            try:
                await asyncio.to_thread(self.controller.swarm.release, nid)
            except Exception:  # noqa: BLE001 - leaving goes on
                log.exception("removing the local instance of swarm network %s", nid[:12])
        self.node = None

    def register(self, swarm: Any) -> None:
        """Register the manager's operations on the swarm port (`SwarmService.register_op`)."""
        swarm.register_op("network.attach", self._op_attach)
        swarm.register_op("network.detach", self._op_detach)
        swarm.register_op("network.watch", self._op_watch)
        swarm.register_op("network.task", self._op_task)

    # ---- ClusterNetworks (the controller's view) ------------------------------------------------

    def find(self, name_or_id: str) -> dict[str, Any] | None:
        docs = list(self._docs.values())
        for d in docs:
            if d["Id"] == name_or_id:
                return _local_doc(d)
        for d in docs:
            if d["Name"] == name_or_id:
                return _local_doc(d)
        found = [d for d in docs if name_or_id and d["Id"].startswith(name_or_id)]
        return _local_doc(found[0]) if len(found) == 1 else None

    def list(self) -> builtins.list[dict[str, Any]]:
        """Swarm networks `network ls` shows: all of them on a manager; on a worker the ingress network
        beyond the ones instantiated there (as dockerd)."""
        if self.node is None:
            return []
        manager = self.node.role == "manager"
        return [_local_doc(d) for d in self._docs.values() if manager or allocator.is_ingress(d)]

    async def attach(
        self,
        network_id: str,
        container_id: str,
        container_name: str,
        ip: str | None,
        aliases: Sequence[str] = (),
    ) -> Attachment:
        answer = await self._call(
            {
                "op": "network.attach",
                "network": network_id,
                "container": container_id,
                "name": container_name,
                "ip": ip or "",
                "aliases": list(aliases),
            }
        )
        return Attachment(network=answer["network"], ip=str(answer["ip"]))

    async def task_networks(self, container_name: str) -> builtins.list[str]:
        answer = await self._call({"op": "network.task", "name": container_name})
        return [str(n["network"]) for n in answer.get("networks") or []]

    async def detach(self, network_id: str, container_id: str) -> None:
        await self._call({"op": "network.detach", "network": network_id, "container": container_id})

    def create(self, name: str, body: dict[str, Any]) -> dict[str, str]:
        return self._sync(self._create(name, body))

    def remove(self, network_id: str) -> None:
        self._sync(self._remove(network_id))

    def _sync(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run coro on the daemon's loop from the API's worker thread."""
        loop = self._loop
        if loop is None or self.node is None:
            coro.close()
            raise Unavailable("This node is not part of a swarm")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            coro.close()
            raise RuntimeError("SwarmNetworks.create/remove must run off the event loop")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=60)

    async def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        node = self.node
        if node is None:
            raise Unavailable("This node is not part of a swarm")
        return await node.call_manager(request)

    def _store(self) -> ClusterStore:
        node = self.node
        if node is None or node.store is None:
            if node is not None and node.role == "worker":
                raise Forbidden(NOT_MANAGER_CREATE)
            raise Unavailable("This node is not a swarm manager.")
        return node.store

    # ---- manager side ---------------------------------------------------------------------------

    async def _create(self, name: str, body: dict[str, Any]) -> dict[str, str]:
        store = self._store()
        await self._ensure_ingress(store)  # before the first user network takes its subnet
        net_id = ids.new_id()

        async def write(tx: WriteTx) -> None:
            existing = [n.doc for n in await tx.find(Network)]
            doc = allocator.new_network(net_id, name, body, existing)
            await tx.create(Network(id=net_id, doc=doc))

        await store.update(write)
        await self._refresh(store)
        return {"Id": net_id, "Warning": ""}

    async def _remove(self, network_id: str) -> None:
        store = self._store()

        async def write(tx: WriteTx) -> None:
            net = await tx.get(Network, network_id)
            if net is None:
                raise NotFound(f"network {network_id} not found")
            for svc in await tx.find(Service):
                if allocator.is_ingress(net.doc) and records.ingress_ports(svc.doc):
                    raise Forbidden(
                        f"rpc error: code = FailedPrecondition desc = ingress network cannot be removed "
                        f"because service {svc.id} depends on it"
                    )
                for att in svc.doc.get("Spec", {}).get("TaskTemplate", {}).get("Networks") or []:
                    if att.get("Target") in (net.id, net.doc["Name"]):
                        raise Forbidden(
                            f"rpc error: code = FailedPrecondition desc = network {net.id} is in use by "
                            f"service {svc.id}"
                        )
            for owner, ep in net.doc["_gorae"]["endpoints"].items():
                if await _gone(tx, owner, str(ep.get("name") or "")):
                    continue  # its node releases it when the container goes (the network's record is gone)
                raise Forbidden(
                    f"rpc error: code = FailedPrecondition desc = network {net.id} is in use by container "
                    f"{owner.partition('/')[2][:12]} ({ep.get('name', '')}) on node {ep.get('node', '')}"
                )
            await tx.delete(Network, net.id)

        await store.update(write)
        await self._refresh(store)

    async def _refresh(self, store: ClusterStore) -> None:
        """Bring this manager's own view up to date at once (create/rm answer with it in place)."""
        docs, services = await self._read_all(store)
        await self._apply(docs, services)

    @staticmethod
    async def _read_all(
        store: ClusterStore,
    ) -> tuple[builtins.list[dict[str, Any]], builtins.list[dict[str, Any]]]:
        """The swarm networks (sorted by ID) and the service records on them, from one read."""

        async def read(
            tx: ReadTx,
        ) -> tuple[builtins.list[Network], builtins.list[Service], builtins.list[Task], builtins.list[Node]]:
            return await tx.find(Network), await tx.find(Service), await tx.find(Task), await tx.find(Node)

        nets, services, tasks, nodes = await store.view(read)
        docs = sorted((n.doc for n in nets), key=lambda d: str(d["Id"]))
        down = {n.id for n in nodes if (n.doc.get("Status") or {}).get("State") == "down"}
        recs = records.service_records(
            docs, [(s.id, s.doc) for s in services], [(t.id, t.doc) for t in tasks], down_nodes=down
        )
        return docs, recs

    async def _watch_store(self, store: ClusterStore) -> None:
        """Wake the long polls when a network, service or task changes; keep the services' VIPs allocated."""
        while True:
            try:
                rev = await store.revision()
                await self._ensure_ingress(store)
                await self._allocate_vips(store)
                await self._forget_departed(store)
                async for change in store.watch(after=rev):
                    if change.obj.kind not in ("network", "service", "task", "node"):
                        continue
                    if change.obj.kind in ("network", "service"):
                        await self._allocate_vips(store)
                    if change.obj.kind == "node" and change.action == "delete":
                        await self._forget_departed(store)
                    self._changed.set()
                    self._changed = asyncio.Event()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - the store comes back; polls time out meanwhile
                log.warning("watching swarm networks: %s", e)
                await asyncio.sleep(RETRY)

    @staticmethod
    async def _ensure_ingress(store: ClusterStore) -> None:
        """The ingress network (the routing mesh's) exists in every swarm, as `swarm init` makes it."""

        async def write(tx: WriteTx) -> None:
            nets = [n.doc for n in await tx.find(Network)]
            if any(allocator.is_ingress(d) for d in nets):
                return
            net_id = ids.new_id()
            try:
                doc = allocator.ingress_network(net_id, nets)
            except GoraeError as e:  # a user network took its subnet or name: no routing mesh
                log.warning("no ingress network: %s", e.message)
                return
            await tx.create(Network(id=net_id, doc=doc))

        await store.update(write)

    @staticmethod
    async def _forget_departed(store: ClusterStore) -> None:
        """Addresses held on nodes no longer in the swarm (`node rm`) go back to the pools."""

        async def write(tx: WriteTx) -> None:
            known = {n.id for n in await tx.find(Node)}
            for net in await tx.find(Network):
                doc = net.doc
                for node in {e.get("node") for e in doc["_gorae"]["endpoints"].values()} - known:
                    doc = allocator.release_node(doc, str(node)) or doc
                if doc is not net.doc:
                    await tx.update(net.with_doc(doc))

        await store.update(write)

    async def _allocate_vips(self, store: ClusterStore) -> None:
        """One VIP per vip-mode service per swarm network it is on (released when it goes), and the
        services' Endpoint.VirtualIPs as Docker shows them."""

        async def write(tx: WriteTx) -> None:
            nets = await tx.find(Network)
            services = await tx.find(Service)
            changed = records.plan_vips([n.doc for n in nets], [(s.id, s.doc) for s in services])
            for n in nets:
                if n.id in changed:
                    await tx.update(n.with_doc(changed[n.id]))
            docs = [changed.get(n.id, n.doc) for n in nets]
            taken = {
                (str(p.get("Protocol") or "tcp"), int(p["PublishedPort"]))
                for s in services
                for p in records.ingress_ports(s.doc)
                if p.get("PublishedPort")
            }
            for svc in sorted(services, key=lambda s: s.version):  # the older service keeps a port
                vips = records.virtual_ips(docs, svc.id)
                endpoint = dict(svc.doc.get("Endpoint") or {})
                mine = {
                    (str(p.get("Protocol") or "tcp"), int(p["PublishedPort"]))
                    for p in records.ingress_ports(svc.doc)
                    if p.get("PublishedPort")
                }
                ports = records.endpoint_ports(svc.doc, taken - mine)
                taken |= {(p["Protocol"], p["PublishedPort"]) for p in ports if p.get("PublishedPort")}
                if (endpoint.get("VirtualIPs") or []) == vips and (endpoint.get("Ports") or []) == ports:
                    continue
                for key, value in (("VirtualIPs", vips), ("Ports", ports)):
                    if value:
                        endpoint[key] = value
                    else:
                        endpoint.pop(key, None)
                endpoint.setdefault(
                    "Spec", (svc.doc.get("Spec") or {}).get("EndpointSpec") or {"Mode": "vip"}
                )
                await tx.update(svc.with_doc({**svc.doc, "Endpoint": endpoint}))

        await store.update(write)

    async def _op_watch(self, request: dict[str, Any], node_id: str, peer_ip: str) -> dict[str, Any]:
        store = self._store()
        wait = request.get("wait", WATCH_WAIT)
        if isinstance(wait, bool) or not isinstance(wait, int | float) or not 0 <= wait <= WATCH_WAIT:
            wait = WATCH_WAIT
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            changed = self._changed
            docs, recs = await self._read_all(store)
            tag = _tag([*docs, *recs])
            remaining = deadline - asyncio.get_running_loop().time()
            if tag != request.get("tag") or remaining <= 0:
                return {"tag": tag, "networks": docs, "services": recs}
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                pass

    async def _op_attach(self, request: dict[str, Any], node_id: str, peer_ip: str) -> dict[str, Any]:
        store = self._store()
        net_ref, cid = str(request.get("network") or ""), str(request.get("container") or "")
        if not net_ref or not cid:
            raise InvalidParameter("network and container are required")
        name = str(request.get("name") or "")
        raw_aliases = request.get("aliases")
        aliases = (
            [str(a) for a in raw_aliases if isinstance(a, str) and a][:64]
            if isinstance(raw_aliases, list)
            else []
        )
        owner = f"{node_id}/{cid}"

        async def write(tx: WriteTx) -> tuple[dict[str, Any], str]:
            net = await _find(tx, net_ref)
            sbox = allocator.is_ingress(net.doc) and name == SBOX and cid == SBOX  # a node's mesh endpoint
            if not net.doc.get("Attachable") and not sbox and not await _is_task_of(tx, name, node_id):
                raise Forbidden(
                    f"Could not attach to network {net.doc['Name']}: rpc error: code = PermissionDenied "
                    f"desc = network {net.doc['Name']} not manually attachable"
                )
            node = await tx.get(Node, node_id)
            vtep = str((node.doc.get("Status") or {}).get("Addr") or peer_ip) if node else peer_ip
            doc, ip = allocator.allocate(
                net.doc,
                owner,
                str(request.get("ip") or "") or None,
                node=node_id,
                vtep=vtep,
                name=name,
                aliases=aliases,
            )
            if doc is not net.doc:
                await tx.update(net.with_doc(doc))
            return doc, ip

        doc, ip = await store.update(write)
        return {"network": _local_doc(doc), "ip": ip}

    async def _op_task(self, request: dict[str, Any], node_id: str, peer_ip: str) -> dict[str, Any]:
        """The swarm networks a task's container joins: its service's (Spec.Networks of the task), and the
        ingress network first when the service publishes ports through the routing mesh."""
        store = self._store()
        task_id = str(request.get("name") or "").rpartition(".")[2]

        async def read(tx: ReadTx) -> builtins.list[dict[str, Any]]:
            task = await tx.get(Task, task_id) if task_id else None
            if task is None or task.doc.get("NodeID") != node_id:
                return []
            nets = [n.doc for n in await tx.find(Network)]
            by_ref = records.refs(nets)
            svc = await tx.get(Service, str(task.doc.get("ServiceID") or ""))
            svc_doc = svc.doc if svc is not None else {"Spec": {"TaskTemplate": task.doc.get("Spec") or {}}}
            ingress = next((d["Id"] for d in nets if allocator.is_ingress(d)), None)
            # no aliases for the container: the service's aliases on a network name the service (its VIP) in
            # the cluster's records, as libnetwork's service bindings do, not this one task
            return [{"network": nid} for nid in records.service_networks(svc_doc, by_ref, ingress)]

        return {"networks": await store.view(read)}

    async def _op_detach(self, request: dict[str, Any], node_id: str, peer_ip: str) -> dict[str, Any]:
        store = self._store()
        net_ref, cid = str(request.get("network") or ""), str(request.get("container") or "")
        owner = f"{node_id}/{cid}"

        async def write(tx: WriteTx) -> None:
            try:
                net = await _find(tx, net_ref)
            except NotFound:
                return
            doc = allocator.release(net.doc, owner)
            if doc is not None:
                await tx.update(net.with_doc(doc))

        await store.update(write)
        return {}

    # ---- every node: follow the cluster's networks --------------------------------------------

    async def _follow(self) -> None:
        while True:
            try:
                answer = await self._call({"op": "network.watch", "tag": self._tag, "wait": WATCH_WAIT})
                await self._apply(
                    list(answer.get("networks") or []),
                    list(answer.get("services") or []),
                    str(answer.get("tag") or ""),
                )
            except asyncio.CancelledError:
                raise
            except GoraeError as e:
                log.info("following swarm networks: %s", e.message)
                await asyncio.sleep(RETRY)
            except Exception:  # noqa: BLE001 - keep following
                log.exception("following swarm networks")
                await asyncio.sleep(RETRY)

    async def _apply(
        self,
        docs: builtins.list[dict[str, Any]],
        services: builtins.list[dict[str, Any]],
        tag: str | None = None,
    ) -> None:
        """Take a view of the cluster's networks: program peers and the local containers' load balancers,
        drop local instances of removed networks."""
        self._docs = {d["Id"]: d for d in docs}
        self._records = services
        self._tag = tag if tag is not None else _tag([*sorted(docs, key=lambda d: str(d["Id"])), *services])
        try:  # first: it may instantiate the ingress network, whose peers the loop below programs
            await self.mesh.update(self._records, docs)
        except Exception:  # noqa: BLE001 - the next view retries
            log.exception("routing mesh")
        node = self.node
        me = node.node_id if node is not None else ""
        for nid in self.controller.swarm.local_ids():
            doc = self._docs.get(nid)
            try:
                if doc is None:
                    await asyncio.to_thread(self.controller.swarm.release, nid)
                    continue
                peers = [
                    Peer(str(ep["ip"]), str(ep["mac"]), str(ep["vtep"]))
                    for ep in doc["_gorae"]["endpoints"].values()
                    if ep.get("node") != me
                ]
                await asyncio.to_thread(self.controller.swarm.set_peers, nid, peers)
            except Exception:  # noqa: BLE001 - one network's trouble does not stop the others
                log.exception("programming swarm network %s", nid[:12])
        await self._balance_all()
        self.synced.set()

    async def instantiated(self, network_id: str) -> None:
        """A network was just instantiated here: program its peers from the current view."""
        await self._apply(list(self._docs.values()), self._records, self._tag)

    async def container_started(self, container_id: str) -> None:
        """A container on swarm networks started here: its load balancer from the current view."""
        await self._balance(container_id)

    # ---- service discovery and load balancing in the local containers ---------------------------

    def resolve(self, network_ids: set[str], name: str) -> builtins.list[str] | None:
        """The embedded DNS's answer from the cluster: a service name (VIP or, dnsrr, its tasks),
        `tasks.<service>`, or a container on another node of those networks."""
        found = records.resolve(self._records, network_ids, name)
        if found is not None:
            return found
        name = name.lower().rstrip(".")
        ips = [
            str(ep["ip"])
            for nid in network_ids
            for ep in (self._docs.get(nid, {}).get("_gorae", {}).get("endpoints") or {}).values()
            if name in (str(n).lower() for n in [ep.get("name") or "", *(ep.get("aliases") or [])])
        ]
        return ips or None

    def _sandbox_networks(self) -> dict[str, tuple[str, set[str]]]:
        """Local containers on swarm networks: container ID → (namespace path, swarm network IDs)."""
        state = self.controller.state
        out: dict[str, tuple[str, set[str]]] = {}
        with state.lock:
            for cid, sb in state.sandboxes.items():
                nets = {
                    ep["network_id"]
                    for ep in state.endpoints_of(sb)
                    if state.networks.get(ep["network_id"], {}).get("Scope") == "swarm"
                }
                if nets and sb.get("netns_path"):
                    out[cid] = (str(sb["netns_path"]), nets)
        return out

    async def _balance_all(self) -> None:
        local = self._sandbox_networks()
        for cid in list(self._balanced):
            if cid not in local:
                self._balanced.pop(cid, None)  # its namespace (and rules) went with the container
        for cid in local:
            await self._balance(cid, local.get(cid))

    async def _balance(self, cid: str, where: tuple[str, set[str]] | None = None) -> None:
        where = where or self._sandbox_networks().get(cid)
        if where is None:
            return
        path, nets = where
        table = {
            Frontend(vip, 0, "all"): [Backend(ip, 0) for ip in ips]
            for vip, ips in records.balancing(self._records, nets).items()
        }
        last = self._balanced.get(cid)
        if last is not None and last[1] == table:
            return
        if last is None and not table:
            return
        lb = last[0] if last is not None else LoadBalancer(LB_PREFIX, netns_path=path)
        try:
            await asyncio.to_thread(lb.apply, table)
        except Exception as e:  # noqa: BLE001 - a container that just went; the next view retries
            log.warning("load balancer of %s: %s", cid[:12], e)
            return
        self._balanced[cid] = (lb, table)


async def _find(tx: ReadTx, ref: str) -> Network:
    net = await tx.get(Network, ref)
    if net is not None:
        return net
    nets = await tx.find(Network)
    for n in nets:
        if n.doc["Name"] == ref:
            return n
    found = [n for n in nets if n.id.startswith(ref)]
    if len(found) == 1:
        return found[0]
    raise NotFound(f"network {ref} not found")


async def _gone(tx: ReadTx, owner: str, name: str) -> bool:
    """An endpoint that does not hold its network (swarmkit's removeNetwork counts only tasks meant to run):
    a removed service's VIP, or the container of a task that is gone, asked to stop, or of a removed service
    (`docker stack rm` removes the services, then at once their networks)."""
    if owner.startswith("vip/"):
        return await tx.get(Service, owner[4:]) is None
    if not TASK_NAME.fullmatch(name):
        return False  # an attachable container
    task = await tx.get(Task, name.rpartition(".")[2])
    if task is None or taskstate.desired_stop(task.doc.get("DesiredState")):
        return True
    # a removed service's task: its orchestrator (swarmkit's too) sets it to `remove` a moment later
    return await tx.get(Service, str(task.doc.get("ServiceID") or "")) is None


async def _is_task_of(tx: ReadTx, container_name: str, node_id: str) -> bool:
    """The container is a task the orchestrator assigned to that node (`<service>.<slot>.<task id>`)."""
    task_id = container_name.rpartition(".")[2]
    if not task_id:
        return False
    task = await tx.get(Task, task_id)
    return task is not None and task.doc.get("NodeID") == node_id
