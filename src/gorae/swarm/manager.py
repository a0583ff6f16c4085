"""The swarm side of one daemon: local swarm state, the etcd member and the cluster store, and the
operations behind `/swarm` and `/nodes` (`SwarmService`).

Local state lives in `<data root>/swarm/`: `state.json` (node ID, cluster ID, addresses, role), the CA and
node certificates under `certificates/`, the etcd member under `etcd/`; the secret files among them are read
and written through `gorae.swarm.autolock.Vault` (sealed under the unlock key while autolock is on: a daemon
restarted then stays locked until `swarm unlock`). The cluster's shared state (the
Cluster object with the CA key and join tokens, the Node objects) lives in the cluster store. A daemon that
restarts inside a swarm starts its member again; `leave` stops the member and removes all of it.

Several managers: each runs an etcd member (a joining manager's is added as a learner, then promoted), keeps
a lease alive and campaigns for the leader key (`gorae.swarm.coordination`); leader-only components run only
while this node leads. Workers know every manager and fail over to another when theirs is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import random
import shutil
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gorae.errors import Conflict, Forbidden, GoraeError, InvalidParameter, NotFound, Unavailable
from gorae.filters import Filters
from gorae.swarm import autolock, docs
from gorae.swarm.autolock import Vault
from gorae.swarm.ca import tokens
from gorae.swarm.ca.authority import (
    MANAGER_ROLE,
    NODE_VALIDITY,
    WORKER_ROLE,
    RootCA,
    cert_times,
    key_pem,
    load_key,
    new_key,
    renewal_due,
)
from gorae.swarm.component import NodeContext, RemoteOp, SwarmComponent
from gorae.swarm.coordination import LEASE_TTL, Coordinator, initial_cluster
from gorae.swarm.datakey import DataKey
from gorae.swarm.ids import new_id
from gorae.swarm.inputs import (
    check_init,
    check_join,
    check_node_spec,
    check_spec,
    is_ip,
    join_hostport,
    parse_version,
    resolve_advertise,
    route_source,
    split_hostport,
)
from gorae.swarm.remote import RemoteServer, call, client_context, reload_cert, server_context
from gorae.swarm.store.etcd import EtcdStore
from gorae.swarm.store.member import EtcdMember, MemberConfig, etcd_binary, free_port
from gorae.swarm.store.types import Cluster, Node, NoLeader, ReadTx, WriteTx
from gorae.timefmt import rfc3339nano

log = logging.getLogger("gorae.swarm")

DEFAULT_PORT = 2377
MIN_CERT_EXPIRY_NS = 3600 * 10**9  # swarmkit's ca.MinNodeCertExpiration
PROMOTE_TIMEOUT = 60.0  # a learner not caught up by then is removed again
RESERVED_OPS = ("ca", "join", "leave", "heartbeat", "renew", "promote")
NODE_FILTERS = ("id", "label", "membership", "name", "node.label", "role")
UNLOCK_KEY_AAD = "cluster unlock key"  # the unlock key is kept in the Cluster object sealed with the data key


@dataclass(frozen=True)
class LocalState:
    node_id: str
    cluster_id: str
    role: str  # "manager" | "worker"
    listen_addr: str
    advertise_addr: str  # host:port
    manager_id: str = ""  # a worker's manager (node ID and host:port)
    manager_addr: str = ""
    managers: tuple[tuple[str, str], ...] = ()  # a worker's known managers (node ID, host:port)

    @classmethod
    def load(cls, raw: dict[str, Any]) -> LocalState:
        managers = tuple((str(m[0]), str(m[1])) for m in raw.get("managers") or ())
        return cls(**{**raw, "managers": managers})

    @property
    def addr(self) -> str:
        return self.advertise_addr.rsplit(":", 1)[0].strip("[]")


def _store_for(cfg: MemberConfig, vault: Vault) -> EtcdStore:
    """A client of this node's member, with its TLS files when it has them."""
    if not cfg.tls_dir:
        return EtcdStore("127.0.0.1", cfg.client_port)
    d = Path(cfg.tls_dir)
    tls = ((d / "ca.crt").read_bytes(), (d / "etcd.crt").read_bytes(), vault.read(d / "etcd.key"))
    return EtcdStore("127.0.0.1", cfg.client_port, tls=tls)


def _now() -> str:
    return rfc3339nano(time.time_ns())


def _public_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _load_public(raw: Any) -> ec.EllipticCurvePublicKey:
    try:
        public = serialization.load_pem_public_key(str(raw or "").encode())
    except ValueError:
        raise InvalidParameter("invalid public key") from None
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise InvalidParameter("invalid public key")
    return public


def _manager_list(raw: Any) -> tuple[tuple[str, str], ...]:
    """The managers list of a join or heartbeat answer: [[node ID, host:port], ...]."""
    if not isinstance(raw, list):
        return ()
    return tuple(
        (str(m[0]), str(m[1]))
        for m in raw
        if isinstance(m, list) and len(m) == 2 and all(isinstance(x, str) for x in m)
    )


async def _remove_member(coord: Coordinator, member_id: int) -> None:
    """`member remove`; one already gone (another manager removed it first) is fine."""
    try:
        await coord.remove(member_id)
    except GoraeError as e:
        if "not found" not in e.message:
            raise


def _public(doc: dict[str, Any], version: int) -> dict[str, Any]:
    """A stored document as the API shows it: its version in, the private bag out."""
    out = {k: v for k, v in doc.items() if not k.startswith("_")}
    return {"ID": out.pop("ID"), "Version": {"Index": version}, **out}


async def _cancel_all(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel `tasks` (all but the calling one) and wait for them to end."""
    current = asyncio.current_task()
    others = [t for t in tasks if t is not current]
    for task in others:
        task.cancel()
    for task in others:
        try:
            await task
        except BaseException:  # noqa: BLE001, S110 - cancelled on purpose; errors were logged
            pass


class SwarmService:
    """This daemon's swarm membership and the manager operations (cluster and nodes)."""

    def __init__(self, root: str, describe: Callable[[], dict[str, Any]], run_dir: str = "") -> None:
        self.root = Path(root)
        self._describe = describe  # the node Description (hostname, platform, resources, engine)
        # the clear copy of the etcd member's key while it runs (the exec root: a tmpfs under /run)
        self.run_dir = Path(run_dir) if run_dir else self.root / "run"
        self.vault = Vault(self.root)
        self.data_key = DataKey(self.root, self.vault)
        self._locked = False  # restarted with sealed files: nothing runs until `swarm unlock`
        self.member = EtcdMember(self.root / "etcd")
        self.store: EtcdStore | None = None
        self.state: LocalState | None = None
        self._lock = asyncio.Lock()
        self._info_counts = (0, 0)  # nodes, managers: kept for the synchronous /info
        self._cluster_info: dict[str, Any] | None = None
        self._managers: list[tuple[str, str]] = []  # (node ID, host:port) of every manager, for /info
        self.remote = RemoteServer(self._remote_request)
        self._server_ctx: ssl.SSLContext | None = None
        self._ca: RootCA | None = None
        self._coord: Coordinator | None = None
        self._leader = ""  # the leader's node ID as last seen ("" none)
        self._leading = False
        self._lead_timer: asyncio.TimerHandle | None = None  # stops leading when the lease may lapse
        self._leading_lock = asyncio.Lock()
        self._quorum = True  # False while this manager cannot reach a quorum of etcd members
        self._failing_since = 0.0  # monotonic time coordination rounds began to fail (0: they succeed)
        self._present: set[str] = set()  # managers whose lease is alive
        self._beats: dict[str, tuple[int, float]] = {}  # worker -> (heartbeat revision, when it moved)
        self._departed: set[str] = set()
        self._background: list[asyncio.Task[None]] = []
        self._chores: set[asyncio.Task[None]] = set()  # learner promotions, role changes
        self._components: list[SwarmComponent] = []
        self._started: list[SwarmComponent] = []
        self._leader_started: list[SwarmComponent] = []
        self._ops: dict[str, RemoteOp] = {}
        self._leader_only: set[int] = set()

    # -- what runs on a swarm node -------------------------------------------------------------

    def add_component(self, component: SwarmComponent, *, leader_only: bool = False) -> None:
        """Run `component` while this node is in a swarm (see gorae.swarm.component); with `leader_only`,
        only while this node is the leader manager: started when it wins the election, stopped when it
        loses it (or quorum)."""
        self._components.append(component)
        if leader_only:
            self._leader_only.add(id(component))

    def register_op(self, name: str, handler: RemoteOp) -> None:
        """Answer the swarm-port operation `name` on a manager with `handler`."""
        if name in self._ops or name in RESERVED_OPS:
            raise ValueError(f"swarm operation {name!r} registered twice")
        self._ops[name] = handler

    async def call_manager(self, request: dict[str, Any]) -> dict[str, Any]:
        """One request to a manager over the swarm port (mutual TLS with the node certificate): a manager
        asks itself; a worker its manager, then the other managers it knows when that one is unreachable
        or has no quorum (the one that answered becomes its manager)."""
        state = self.state
        if state is None:
            raise Unavailable(docs.NOT_IN_SWARM)
        if state.role == "manager":
            return await call(state.advertise_addr, self._member_context(), request, MANAGER_ROLE)
        candidates = [(state.manager_id, state.manager_addr)]
        candidates += [m for m in state.managers if m[1] != state.manager_addr]
        error: GoraeError | None = None
        for manager_id, addr in candidates:
            try:
                answer = await call(addr, self._member_context(), request, MANAGER_ROLE)
            except GoraeError as e:
                if e.status != 503:
                    raise
                error = e
                continue
            current = self.state
            if addr != state.manager_addr and current is not None and current.role == "worker":
                log.info("swarm: manager %s unreachable, now using %s", state.manager_addr, addr)
                self._save_state(replace(current, manager_id=manager_id, manager_addr=addr))
            return answer
        assert error is not None
        raise error

    def _save_state(self, state: LocalState) -> None:
        self._state_file.write_text(json.dumps(asdict(state)))
        self.state = state

    def _node_context(self) -> NodeContext:
        assert self.state is not None
        return NodeContext(
            node_id=self.state.node_id,
            cluster_id=self.state.cluster_id,
            role=self.state.role,
            addr=self.state.addr,
            store=self.store if self.state.role == "manager" else None,
            call_manager=self.call_manager,
            call_at=self._call_at,
        )

    async def _call_at(self, addr: str, request: dict[str, Any]) -> dict[str, Any]:
        return await call(addr, self._member_context(), request, MANAGER_ROLE)

    async def _start_each(self, components: list[SwarmComponent], started: list[SwarmComponent]) -> None:
        node = self._node_context()
        for component in components:
            try:
                await component.start(node)
            except Exception:
                log.exception("swarm component %s did not start", type(component).__name__)
                continue
            started.append(component)

    @staticmethod
    async def _stop_each(started: list[SwarmComponent]) -> None:
        for component in reversed(started):
            try:
                await component.stop()
            except Exception:
                log.exception("swarm component %s did not stop cleanly", type(component).__name__)

    async def _components_left(self, node_id: str) -> None:
        """After `leave`: each component's optional `left(node_id)` drops what was this node's."""
        for component in self._components:
            left = getattr(component, "left", None)
            if left is None:
                continue
            try:
                await left(node_id)
            except Exception:
                log.exception("swarm component %s could not clean up after leave", type(component).__name__)

    async def _start_components(self) -> None:
        await self._start_each([c for c in self._components if id(c) not in self._leader_only], self._started)

    async def _stop_components(self) -> None:
        await self._set_leading(False)
        started, self._started = self._started, []
        await self._stop_each(started)

    async def _set_leading(self, leading: bool) -> None:
        """Start the leader-only components when this node becomes the leader, stop them when it is not
        (one change at a time: a component is never started while its stop is under way)."""
        if not leading and self._lead_timer is not None:
            self._lead_timer.cancel()
            self._lead_timer = None
        async with self._leading_lock:
            if leading == self._leading:
                return
            self._leading = leading
            if leading:
                log.info("swarm: this node (%s) is the leader", self.state.node_id if self.state else "?")
                self._beats.clear()  # every worker gets a fresh grace from the new leader
                await self._start_each(
                    [c for c in self._components if id(c) in self._leader_only], self._leader_started
                )
            else:
                log.info("swarm: this node is no longer the leader")
                started, self._leader_started = self._leader_started, []
                await self._stop_each(started)

    @property
    def _state_file(self) -> Path:
        return self.root / "state.json"

    # -- life with the daemon ----------------------------------------------------------------

    async def start(self) -> None:
        """Back into the swarm this node was part of before the daemon restarted."""
        try:
            raw = json.loads(self._state_file.read_text())
        except FileNotFoundError:
            return
        state = LocalState.load(raw)
        if state.role == "worker":
            self.state = state
            self._start_background()
            return
        if self.vault.sealed():
            log.info("swarm: this manager is locked (autolock): `swarm unlock` starts it")
            self.state = state
            self._locked = True
            return
        await self._resume_manager(state)

    async def _resume_manager(self, state: LocalState) -> None:
        """A manager's member, swarm port and background work after a daemon restart (or an unlock)."""
        cfg = self.member.configured()
        if cfg is None:
            raise Unavailable(
                f"swarm state in {self.root} has no etcd member: leave the swarm and init again"
            )
        try:
            await self._start_member(cfg)
        except GoraeError as e:  # e.g. removed from the etcd cluster while down: coordination finds out
            log.warning("swarm: this node's etcd member did not start: %s", e.message)
        self.store = _store_for(cfg, self.vault)
        self.state = state
        await self._serve_remote(state)
        if await self._first_round():  # demoted while this daemon was down
            self._chore(self._demote_self())
            return
        self._start_background()

    async def _force_new_cluster(self, state: LocalState) -> str:
        """`swarm init --force-new-cluster` on a manager: its etcd member restarted as a cluster of one
        (etcd's own --force-new-cluster keeps the data and drops the other members), so a swarm that lost
        its quorum goes on from this manager's copy — services, tasks, nodes, secrets kept. The other
        managers stay in `node ls` and are marked down (demote and remove them; their daemons must leave
        and join again, as dockerd's)."""
        cfg = self.member.configured()
        if cfg is None:
            raise Unavailable(f"swarm state in {self.root} has no etcd member: leave the swarm and init again")
        await self._stop_background()
        await self._cancel_chores()
        self._coord = None
        await self.remote.close()
        if self.store is not None:
            await self.store.close()
            self.store = None
        await self.member.stop()
        await self._start_member(cfg, force_new_cluster=True)
        self.store = _store_for(cfg, self.vault)
        self._quorum = True
        self._failing_since = 0.0
        self._leader = ""
        self._present = set()
        await self._serve_remote(state)
        await self._first_round(wait=10.0)  # the lost leader's lease must lapse before this node leads
        self._start_background()
        log.info("swarm: a new cluster forced from this manager's data (%s)", state.node_id)
        return state.node_id

    async def _start_member(self, cfg: MemberConfig, force_new_cluster: bool = False) -> None:
        """Start the etcd member with a clear copy of its key in the run directory (etcd reads the file on
        each handshake; the one at rest may be sealed)."""
        key_file = ""
        if cfg.tls_dir:
            self.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            key_file = str(self.run_dir / "etcd.key")
            autolock.write_private(Path(key_file), self.vault.read(Path(cfg.tls_dir) / "etcd.key"))
        await self.member.start(cfg, key_file=key_file, force_new_cluster=force_new_cluster)

    def _drop_run_key(self) -> None:
        (self.run_dir / "etcd.key").unlink(missing_ok=True)

    async def _serve_remote(self, state: LocalState) -> int:
        """Listen on the swarm port (mutual TLS with the node certificate); answers the bound port."""
        certs = self.root / "certificates"
        ca_pem = (certs / "swarm-root-ca.crt").read_bytes()
        self._ca = RootCA(ca_pem, load_key(self.vault.read(certs / "swarm-root-ca.key")))
        ctx = server_context(
            (certs / "swarm-node.crt").read_bytes(), self.vault.read(certs / "swarm-node.key"), ca_pem
        )
        self._server_ctx = ctx
        host, port = split_hostport(state.listen_addr, DEFAULT_PORT)
        try:
            return await self.remote.start(host, port, ctx)
        except OSError as e:
            raise InvalidParameter(
                f"failed to listen on remote API address: listen tcp {host}:{port}: {e.strerror}"
            ) from e

    async def close(self) -> None:
        """Daemon shut-down: give up the lease (another manager leads at once), stop the member, keep the
        state."""
        await self._stop_serving(resign=True)
        await self.member.stop()
        self._drop_run_key()

    async def _stop_serving(self, *, resign: bool) -> None:
        """What a daemon shut-down and a leave both stop: the background loops and chores, the leader lease
        (given up at once with `resign`), the swarm port and the cluster store's client."""
        await self._stop_background()
        await self._cancel_chores()
        if resign and self._coord is not None:
            try:
                await self._coord.resign()
            except GoraeError:
                pass
        self._coord = None
        await self.remote.close()
        if self.store is not None:
            await self.store.close()
            self.store = None

    async def _cancel_chores(self) -> None:
        chores, self._chores = set(self._chores), set()
        await _cancel_all(chores)

    def _chore(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    # -- the API's view ------------------------------------------------------------------------

    def ping_state(self) -> str:
        """`_ping`'s Swarm header."""
        if self.state is None:
            return "inactive"
        if self._locked:
            return "locked"
        return f"active/{self.state.role}"

    def info(self) -> dict[str, Any]:
        """/info's Swarm section."""
        st = self.state
        if st is None:
            return docs.inactive_info()
        if self._locked:
            return {
                "NodeID": "",
                "NodeAddr": st.addr,
                "LocalNodeState": "locked",
                "ControlAvailable": False,
                "Error": autolock.LOCKED,
                "RemoteManagers": None,
            }
        nodes, managers = self._info_counts
        remotes = self._managers if st.role == "manager" else list(st.managers)
        if st.role == "worker" and not remotes:
            remotes = [(st.manager_id, st.manager_addr)]
        if st.role == "manager" and not remotes:
            remotes = [(st.node_id, st.advertise_addr)]
        doc: dict[str, Any] = {
            "NodeID": st.node_id,
            "NodeAddr": st.addr,
            "LocalNodeState": "active",
            "ControlAvailable": st.role == "manager",
            "Error": "",
            "RemoteManagers": [{"NodeID": i, "Addr": a} for i, a in remotes],
        }
        if st.role == "manager":
            doc["Nodes"] = nodes
            doc["Managers"] = managers
            doc["Cluster"] = self._cluster_info
        return doc

    def manager_store(self) -> EtcdStore:
        """The cluster store, on a manager; dockerd's 503s on a worker or outside a swarm, and its "no
        leader" while this manager cannot reach a quorum; dockerd's "Swarm is encrypted..." while it is locked."""
        if self._locked:
            raise Unavailable(autolock.LOCKED)
        if self.state is not None and self.state.role == "worker":
            raise Unavailable(docs.WORKER_NOT_MANAGER)
        if self.state is None or self.store is None or self.state.role != "manager":
            raise Unavailable(docs.NOT_MANAGER)
        if not self._quorum:
            raise NoLeader()
        return self.store

    async def _refresh_info(self) -> None:
        store = self.manager_store()

        async def read(tx: ReadTx) -> tuple[list[Node], Cluster | None]:
            return await tx.find(Node), await tx.get(Cluster, self.state.cluster_id if self.state else "")

        nodes, cluster = await store.view(read)
        self._info_counts = (
            len(nodes),
            sum(1 for n in nodes if n.doc.get("Spec", {}).get("Role") == "manager"),
        )
        self._managers = [
            (n.id, str(n.doc["ManagerStatus"].get("Addr", ""))) for n in nodes if n.doc.get("ManagerStatus")
        ]
        state = self.state
        if state is not None and state.role == "manager" and tuple(self._managers) != state.managers:
            self._save_state(replace(state, managers=tuple(self._managers)))  # for a manager cut off later
        if cluster is not None:
            public = _public(cluster.doc, cluster.version)
            public.pop("JoinTokens", None)
            self._cluster_info = public
            await self._sync_autolock(cluster)

    def _cluster_unlock_key(self, cluster: Cluster) -> str:
        """The cluster's unlock key ("" with autolock off)."""
        sealed = (cluster.doc.get("_gorae") or {}).get("UnlockKey")
        return self.data_key.open(str(sealed), UNLOCK_KEY_AAD).decode() if sealed else ""

    async def _sync_autolock(self, cluster: Cluster) -> None:
        """Re-seal this manager's secret files when the cluster's unlock key changed (autolock turned on or off,
        the key rotated): every manager does it when it sees the change."""
        try:
            key = self._cluster_unlock_key(cluster)
        except GoraeError as e:  # e.g. a manager that has not received the data key yet
            log.debug("swarm autolock: %s", e.message)
            return
        if key != self.vault.key and await asyncio.to_thread(self.vault.reseal, key):
            log.info("swarm: secret files %s", "re-sealed under the unlock key" if key else "stored unsealed")

    # -- /swarm ------------------------------------------------------------------------------

    async def init(self, body: dict[str, Any]) -> str:
        """POST /swarm/init: a new single-manager cluster; answers the node ID."""
        check_init(body)
        async with self._lock:
            if self.state is not None:
                if body.get("ForceNewCluster") is True and self.state.role == "manager":
                    if self._locked:
                        raise Unavailable(autolock.LOCKED)
                    return await self._force_new_cluster(self.state)
                raise Unavailable(docs.ALREADY_IN_SWARM)
            etcd_binary()  # says what to install before anything is made
            spec = docs.default_spec()
            given = body.get("Spec") or {}
            for key, value in given.items():
                if isinstance(value, dict) and isinstance(spec.get(key), dict):
                    spec[key].update({k: v for k, v in value.items() if v not in (None, 0, "")} or {})
                elif value not in (None, ""):
                    spec[key] = value
            locking = bool((given.get("EncryptionConfig") or {}).get("AutoLockManagers"))
            spec["EncryptionConfig"] = {"AutoLockManagers": locking or bool(body.get("AutoLockManagers"))}
            listen_host, listen_port = split_hostport(
                str(body.get("ListenAddr") or "0.0.0.0:2377"), DEFAULT_PORT
            )
            advertise = resolve_advertise(str(body.get("AdvertiseAddr") or ""), listen_host, listen_port)
            node_id, cluster_id = new_id(), new_id()
            state = LocalState(
                node_id, cluster_id, "manager", join_hostport(listen_host, listen_port), advertise
            )
            try:
                await self._create_cluster(state, spec, body)
            except BaseException:
                await self._teardown()
                raise
            return node_id

    async def _create_cluster(self, state: LocalState, spec: dict[str, Any], body: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        ca = RootCA.create()
        assert ca.key is not None
        node_key = new_key()
        node_cert = ca.issue(node_key.public_key(), state.node_id, MANAGER_ROLE, state.cluster_id)
        certs = self.root / "certificates"
        certs.mkdir(mode=0o700, exist_ok=True)
        (certs / "swarm-root-ca.crt").write_bytes(ca.cert_pem)
        self.vault.write(certs / "swarm-root-ca.key", key_pem(ca.key))
        (certs / "swarm-node.crt").write_bytes(node_cert)
        self.vault.write(certs / "swarm-node.key", key_pem(node_key))
        port = await self._serve_remote(state)
        host, listen_port = split_hostport(state.listen_addr, DEFAULT_PORT)
        if listen_port == 0:  # an ephemeral port (tests): the node is reached at the bound one
            adv_host, adv_port = split_hostport(state.advertise_addr, DEFAULT_PORT)
            state = LocalState(
                state.node_id,
                state.cluster_id,
                state.role,
                join_hostport(host, port),
                join_hostport(adv_host, port if adv_port == 0 else adv_port),
            )
        # the etcd member's own certificate: IP names for its URLs (etcd checks them), mutual TLS both ways
        tls_dir = self.root / "etcd-tls"
        tls_dir.mkdir(mode=0o700, exist_ok=True)
        etcd_key = new_key()
        ips = tuple(dict.fromkeys(("127.0.0.1", state.addr)))
        (tls_dir / "ca.crt").write_bytes(ca.cert_pem)
        (tls_dir / "etcd.crt").write_bytes(
            ca.issue(etcd_key.public_key(), state.node_id, MANAGER_ROLE, state.cluster_id, ips)
        )
        self.vault.write(tls_dir / "etcd.key", key_pem(etcd_key))
        cfg = self.member.configure(state.node_id, state.addr, str(tls_dir))
        await self._start_member(cfg)
        store = _store_for(cfg, self.vault)
        now = _now()
        cluster_doc: dict[str, Any] = {
            "ID": state.cluster_id,
            "CreatedAt": now,
            "UpdatedAt": now,
            "Spec": spec,
            "TLSInfo": docs.tls_info(ca.cert_pem),
            "RootRotationInProgress": False,
            "DefaultAddrPool": body.get("DefaultAddrPool") or None,
            "SubnetSize": int(body.get("SubnetSize") or 24),
            "DataPathPort": int(body.get("DataPathPort") or 4789),
            "JoinTokens": {"Worker": tokens.generate(ca.cert_pem), "Manager": tokens.generate(ca.cert_pem)},
        }
        unlock_key = autolock.new_key() if spec["EncryptionConfig"]["AutoLockManagers"] else ""
        if unlock_key:  # (the CA key stays out of the store: managers keep it in their sealed files)
            cluster_doc["_gorae"] = {"UnlockKey": self.data_key.seal(unlock_key.encode(), UNLOCK_KEY_AAD)}
        node_doc = {
            "ID": state.node_id,
            "CreatedAt": now,
            "UpdatedAt": now,
            "Spec": {"Labels": {}, "Role": "manager", "Availability": "active"},
            "Description": {**self._describe(), "TLSInfo": docs.tls_info(ca.cert_pem)},
            "Status": {"State": "ready", "Addr": state.addr},
            "ManagerStatus": {"Reachability": "reachable", "Addr": state.advertise_addr},
        }

        async def write(tx: WriteTx) -> None:
            await tx.create(Cluster(state.cluster_id, cluster_doc))
            await tx.create(Node(state.node_id, node_doc))

        self.store = store
        await store.update(write)
        await asyncio.to_thread(self.vault.reseal, unlock_key)
        self._save_state(state)
        await self._first_round()
        self._start_background()

    async def _teardown(self) -> None:
        await self._stop_serving(resign=False)
        self._ca = None
        self._server_ctx = None
        await self.member.destroy()
        self._drop_run_key()
        self.vault.forget()
        self.data_key.awaited = False
        self._locked = False
        self.state = None
        self._cluster_info = None
        self._info_counts = (0, 0)
        self._managers = []
        self._quorum = True
        self._leader = ""
        await asyncio.to_thread(shutil.rmtree, self.root, True)

    async def _manager_stats(self) -> tuple[int, int]:
        """(reachable, unreachable) managers, this one counted reachable (dockerd's managerStats)."""
        store = self.manager_store()

        async def read(tx: ReadTx) -> list[Node]:
            return await tx.find(Node)

        managers = [n.id for n in await store.view(read) if n.doc.get("ManagerStatus")]
        present = self._present | ({self.state.node_id} if self.state else set())
        reachable = sum(1 for m in managers if m in present)
        return reachable, len(managers) - reachable

    async def leave(self, force: bool) -> None:
        """POST /swarm/leave: a manager leaves only with force (dockerd's texts); a manager that leaves
        removes its etcd member first, so the others keep their quorum."""
        async with self._lock:
            if self.state is None:
                raise Unavailable(docs.NOT_IN_SWARM)
            if self._locked:  # nothing of the swarm runs: the local state goes
                if not force:
                    raise Unavailable(autolock.LOCKED_LEAVE)
                await self._components_left(self.state.node_id)
                await self._teardown()
                return
            if self.state.role == "manager" and not force:
                msg = "You are attempting to leave the swarm on a node that is participating as a manager. "
                try:
                    reachable, unreachable = await self._manager_stats()
                except GoraeError:
                    msg += "Doing so may lose the consensus of your cluster. "
                else:
                    if reachable - 2 <= unreachable:
                        if reachable == 1 and unreachable == 0:
                            raise Unavailable(docs.LAST_MANAGER_LEAVE)
                        msg += (
                            f"Removing this node leaves {reachable - 1} managers out of "
                            f"{reachable + unreachable}. Without a Raft quorum your swarm will be inaccessible. "
                        )
                raise Unavailable(
                    msg
                    + "The only way to restore a swarm that has lost consensus is to reinitialize it with "
                    "`--force-new-cluster`. Use `--force` to suppress this message."
                )
            if self.state.role == "worker":
                await self._stop_background()  # no heartbeat after the leave
                try:  # tell a manager (best effort: a worker may leave while it is unreachable)
                    await self.call_manager({"op": "leave"})
                except GoraeError:
                    pass
            else:
                await self._leave_members()
            await self._stop_background()
            await self._components_left(self.state.node_id)
            await self._teardown()

    async def _leave_members(self) -> None:
        """A leaving manager: mark itself down and remove its etcd member while others remain (best
        effort: with no quorum nothing can be changed)."""
        state, coord = self.state, self._coord
        if state is None or coord is None:
            return
        try:
            others = [m for m in await coord.members() if m.name != state.node_id]
            if not others:
                return
            await self._stop_background()
            await self._mark(state.node_id, "down")
            members = await coord.members()
            try:
                await coord.resign()
            except GoraeError:
                pass  # the lease expires by itself
            for m in members:
                if m.name == state.node_id:
                    await _remove_member(coord, m.id)
        except GoraeError as e:
            log.warning("swarm leave: %s", e.message)

    async def _cluster(self, tx: ReadTx) -> Cluster:
        assert self.state is not None
        cluster = await tx.get(Cluster, self.state.cluster_id)
        if cluster is None:
            raise Unavailable(docs.NOT_MANAGER)
        return cluster

    async def inspect(self) -> dict[str, Any]:
        """GET /swarm."""
        store = self.manager_store()
        cluster = await store.view(self._cluster)
        return _public(cluster.doc, cluster.version)

    async def unlock_key(self) -> dict[str, str]:
        """GET /swarm/unlockkey: the cluster's unlock key ("" with autolock off)."""
        store = self.manager_store()
        cluster = await store.view(self._cluster)
        return {"UnlockKey": self._cluster_unlock_key(cluster)}

    async def unlock(self, body: dict[str, Any]) -> None:
        """POST /swarm/unlock: open this locked manager's sealed files with the key, then start its member,
        swarm port and components (dockerd's errors for a node that is not locked and for a wrong key)."""
        key = body.get("UnlockKey")
        if key is not None and not isinstance(key, str):
            kind = {bool: "bool", int: "number", float: "number", list: "array", dict: "object"}[type(key)]
            raise InvalidParameter(
                f"json: cannot unmarshal {kind} into Go struct field UnlockRequest.UnlockKey of type string"
            )
        async with self._lock:
            state = self.state
            if not self._locked:
                if state is None:
                    raise Unavailable(docs.NOT_MANAGER)
                if state.role == "worker":
                    raise Unavailable(docs.WORKER_NOT_MANAGER)
                raise Conflict(autolock.NOT_LOCKED)
            assert state is not None
            await asyncio.to_thread(self.vault.unlock, key or "")
            self._locked = False
            log.info("swarm: this manager was unlocked")
            await self._resume_manager(state)

    async def update(
        self,
        raw_version: str | None,
        spec: dict[str, Any],
        rotate_worker: bool,
        rotate_manager: bool,
        rotate_unlock: bool = False,
    ) -> None:
        """POST /swarm/update: a new spec at `version` (swarmkit's sequence check), token rotation; autolock
        on or off and `rotateManagerUnlockKey` change the cluster's unlock key (swarmkit's rules: a new key
        when autolock turns on or on rotation, none when it is off), which every manager's files follow."""
        store = self.manager_store()
        version = parse_version(raw_version, "swarm")
        check_spec(spec)
        expiry = (spec.get("CAConfig") or {}).get("NodeCertExpiry")
        if isinstance(expiry, int) and not isinstance(expiry, bool) and 0 < expiry < MIN_CERT_EXPIRY_NS:
            raise InvalidParameter(
                "rpc error: code = InvalidArgument desc = minimum certificate expiry time is: 1h0m0s"
            )

        async def write(tx: WriteTx) -> None:
            cluster = await self._cluster(tx)
            doc = dict(cluster.doc)
            merged = docs.default_spec()
            merged.update({k: v for k, v in spec.items() if v is not None})
            merged["Name"] = spec.get("Name") or "default"
            doc["Spec"] = merged
            ca_pem = doc["TLSInfo"]["TrustRoot"].encode()
            jt = dict(doc["JoinTokens"])
            if rotate_worker:
                jt["Worker"] = tokens.generate(ca_pem)
            if rotate_manager:
                jt["Manager"] = tokens.generate(ca_pem)
            doc["JoinTokens"] = jt
            bag = dict(doc.get("_gorae") or {})
            bag.pop("CAKey", None)  # a clear CA key that clusters made before autolock kept in the store
            if not (merged.get("EncryptionConfig") or {}).get("AutoLockManagers"):
                bag.pop("UnlockKey", None)
            elif rotate_unlock or not bag.get("UnlockKey"):
                bag["UnlockKey"] = self.data_key.seal(autolock.new_key().encode(), UNLOCK_KEY_AAD)
            if bag:
                doc["_gorae"] = bag
            else:
                doc.pop("_gorae", None)
            doc["UpdatedAt"] = _now()
            await tx.update(Cluster(cluster.id, doc, version))

        await store.update(write)
        await self._refresh_info()

    def _cert_validity(self) -> dt.timedelta:
        """The cluster's CAConfig.NodeCertExpiry (90 days by default)."""
        spec = (self._cluster_info or {}).get("Spec") or {}
        ns = (spec.get("CAConfig") or {}).get("NodeCertExpiry")
        if isinstance(ns, int) and not isinstance(ns, bool) and ns >= MIN_CERT_EXPIRY_NS:
            return dt.timedelta(microseconds=ns // 1000)
        return NODE_VALIDITY

    # -- joining (this node) and the swarm port (the manager) -----------------------------------

    def _member_context(self) -> Any:
        certs = self.root / "certificates"
        return client_context(
            (certs / "swarm-root-ca.crt").read_bytes(),
            (certs / "swarm-node.crt").read_bytes(),
            self.vault.read(certs / "swarm-node.key"),
        )

    async def join(self, body: dict[str, Any]) -> None:
        """POST /swarm/join: fetch the CA, check it against the token, get a certificate; with the manager
        token this node's etcd member joins the cluster's (added as a learner, then promoted)."""
        check_join(body)
        async with self._lock:
            if self.state is not None:
                raise Unavailable(docs.ALREADY_IN_SWARM)
            remotes = body.get("RemoteAddrs") or []
            if not remotes:
                raise InvalidParameter("at least 1 RemoteAddr is required to join")
            token = str(body.get("JoinToken") or "")
            tokens.parse(token)
            host, port = split_hostport(str(remotes[0]), DEFAULT_PORT)
            manager = join_hostport(host, port)
            first = await call(manager, client_context(None), {"op": "ca"}, None)
            ca_pem = str(first.get("ca", "")).encode()
            tokens.check_ca(token, ca_pem)
            listen_host, listen_port = split_hostport(
                str(body.get("ListenAddr") or "0.0.0.0:2377"), DEFAULT_PORT
            )
            if body.get("AdvertiseAddr"):
                advertise = resolve_advertise(str(body["AdvertiseAddr"]), listen_host, listen_port)
            else:  # the source address of this node's route to the manager (what the manager sees)
                advertise = join_hostport(route_source(host), listen_port)
            addr = split_hostport(advertise, listen_port)[0]
            key, etcd_key = new_key(), new_key()
            peer_port = free_port(addr)
            answer = await call(
                manager,
                client_context(ca_pem),
                {
                    "op": "join",
                    "token": token,
                    "public_key": _public_pem(key),
                    "etcd_public_key": _public_pem(etcd_key),
                    "peer_port": peer_port,
                    "description": self._describe(),
                    "advertise_addr": advertise,
                    "availability": str(body.get("Availability") or "active"),
                },
                MANAGER_ROLE,
            )
            listen = join_hostport(listen_host, listen_port)
            node_addr = join_hostport(str(answer["addr"]), listen_port)
            try:
                self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
                certs = self.root / "certificates"
                certs.mkdir(mode=0o700, exist_ok=True)
                (certs / "swarm-root-ca.crt").write_bytes(ca_pem)
                (certs / "swarm-node.crt").write_bytes(str(answer["cert"]).encode())
                self.vault.write(certs / "swarm-node.key", key_pem(key))
                if answer.get("role") == "manager":
                    await self._become_manager(
                        str(answer["node_id"]), str(answer["cluster_id"]), listen, node_addr,
                        answer, etcd_key, peer_port,
                    )  # fmt: skip
                    return
                state = LocalState(
                    node_id=str(answer["node_id"]),
                    cluster_id=str(answer["cluster_id"]),
                    role="worker",
                    listen_addr=listen,
                    advertise_addr=node_addr,
                    manager_id=str(answer["manager_id"]),
                    manager_addr=manager,
                    managers=_manager_list(answer.get("managers")),
                )
                self._save_state(state)
            except BaseException:
                await self._teardown()
                raise
            self._start_background()

    async def _become_manager(
        self,
        node_id: str,
        cluster_id: str,
        listen: str,
        advertise: str,
        answer: dict[str, Any],
        etcd_key: ec.EllipticCurvePrivateKey,
        peer_port: int,
    ) -> None:
        """Start this node's etcd member in the cluster that added it (`answer`: the CA key, the member's
        certificate, the initial cluster), wait for its promotion to a voter, then serve as a manager."""
        certs = self.root / "certificates"
        self.vault.write(certs / "swarm-root-ca.key", str(answer["ca_key"]).encode())
        tls_dir = self.root / "etcd-tls"
        tls_dir.mkdir(mode=0o700, exist_ok=True)
        (tls_dir / "ca.crt").write_bytes((certs / "swarm-root-ca.crt").read_bytes())
        (tls_dir / "etcd.crt").write_bytes(str(answer["etcd_cert"]).encode())
        self.vault.write(tls_dir / "etcd.key", key_pem(etcd_key))
        addr = split_hostport(advertise, 0)[0]
        cfg = self.member.configure(
            node_id, addr, str(tls_dir), peer_port=peer_port, initial_cluster=str(answer["initial_cluster"])
        )
        await self._start_member(cfg)
        store = _store_for(cfg, self.vault)
        deadline = time.monotonic() + PROMOTE_TIMEOUT
        while True:  # a learner answers no linearizable read: this one succeeds once it is a voter
            try:
                await store.revision()
                break
            except GoraeError as e:
                if time.monotonic() > deadline:
                    await store.close()
                    raise Unavailable(f"this node's etcd member did not join the cluster: {e.message}") from e
                await asyncio.sleep(0.2)
        self.store = store
        if not self.data_key.exists():  # another manager's key comes (the dispatcher fetches it): no new one
            self.data_key.awaited = True
        state = LocalState(node_id, cluster_id, "manager", listen, advertise)
        self._quorum = True
        await self._serve_remote(state)
        self._save_state(state)
        await self._first_round()
        self._start_background()

    async def _remote_request(
        self, request: dict[str, Any], peer_der: bytes | None, peer_ip: str
    ) -> dict[str, Any]:
        """One request on the swarm port (see gorae.swarm.remote)."""
        ca, state = self._ca, self.state
        if ca is None or state is None or self.store is None:
            raise Unavailable(docs.NOT_MANAGER)
        op = request.get("op")
        if op == "ca":
            return {"ca": ca.cert_pem.decode()}
        if op == "join":
            return await self._admit(ca, state, request, peer_ip)
        if peer_der is None:
            raise Forbidden("a node certificate is required")
        try:
            peer_pem = x509.load_der_x509_certificate(peer_der).public_bytes(serialization.Encoding.PEM)
        except ValueError:
            raise Forbidden("invalid certificate") from None
        ident = ca.verify(peer_pem)
        if ident.cluster_id != state.cluster_id:
            raise Forbidden("certificate of another cluster")
        store = self.manager_store()

        async def known(tx: ReadTx) -> tuple[Node | None, Cluster | None]:
            node = await tx.get(Node, ident.node_id)
            # a heartbeat's answer sets the node's period: the stored one, never the default of a manager
            # whose daemon has just started and not yet read the cluster (a worker told 5 s instead of
            # the swarm's 1 s was marked down by the leader that checks with 1 s)
            cluster = await tx.get(Cluster, state.cluster_id) if op == "heartbeat" else None
            return node, cluster

        node, cluster = await store.view(known)
        if node is None:
            raise Forbidden(f"node {ident.node_id} was removed from the swarm")
        if op == "leave":
            self._departed.add(ident.node_id)
            await self._mark(ident.node_id, "down")
            return {}
        if op == "heartbeat":
            if ident.node_id in self._departed:
                raise Forbidden(f"node {ident.node_id} left the swarm")
            if self._coord is not None:
                await self._coord.beat(ident.node_id)
            await self._mark(ident.node_id, "ready", only_if_not=True)
            return {
                "period": self._heartbeat_period(cluster.doc if cluster is not None else None),
                "managers": [list(m) for m in self._managers],
                "role": (node.doc.get("Spec") or {}).get("Role", "worker"),
            }
        if op == "renew":
            return await self._renew(ca, state, node, request)
        if op == "promote":
            return await self._promote_op(ca, state, node, request, peer_ip)
        handler = self._ops.get(str(op))
        if handler is not None:
            return await handler(request, ident.node_id, peer_ip)
        raise InvalidParameter(f"unknown operation {op!r}")

    async def _renew(
        self, ca: RootCA, state: LocalState, node: Node, request: dict[str, Any]
    ) -> dict[str, Any]:
        """A node's new certificate (its role as the store has it, the cluster's expiry); a removed node
        never gets here."""
        public = _load_public(request.get("public_key"))
        manager = node.doc.get("ManagerStatus") and (node.doc.get("Spec") or {}).get("Role") == "manager"
        role = MANAGER_ROLE if manager else WORKER_ROLE
        cert = ca.issue(public, node.id, role, state.cluster_id, validity=self._cert_validity())
        return {"cert": cert.decode()}

    async def _admit(
        self, ca: RootCA, state: LocalState, request: dict[str, Any], peer_ip: str
    ) -> dict[str, Any]:
        store = self.manager_store()
        token = request.get("token")
        cluster = await store.view(self._cluster)
        if not isinstance(token, str):
            raise InvalidParameter("invalid join token")
        jt = cluster.doc["JoinTokens"]
        as_manager = tokens.matches(token, jt["Manager"])
        if not as_manager and not tokens.matches(token, jt["Worker"]):
            raise InvalidParameter(
                "rpc error: code = InvalidArgument desc = A valid join token is necessary to join this cluster"
            )
        public = _load_public(request.get("public_key"))
        description = request.get("description")
        if not isinstance(description, dict):
            description = {}
        availability = request.get("availability") or "active"
        if availability not in ("active", "pause", "drain"):
            raise InvalidParameter(f"invalid availability {availability!r}")
        advertise = str(request.get("advertise_addr") or "")
        addr, adv_port = split_hostport(advertise, DEFAULT_PORT) if advertise else (peer_ip, DEFAULT_PORT)
        if not is_ip(addr):
            addr = peer_ip
        node_id = new_id()
        now = _now()
        role = "manager" if as_manager else "worker"
        doc: dict[str, Any] = {
            "ID": node_id,
            "CreatedAt": now,
            "UpdatedAt": now,
            "Spec": {"Labels": {}, "Role": role, "Availability": availability},
            "Description": {**description, "TLSInfo": docs.tls_info(ca.cert_pem)},
            "Status": {"State": "ready", "Addr": addr},
        }
        if as_manager:
            doc["ManagerStatus"] = {"Reachability": "reachable", "Addr": join_hostport(addr, adv_port)}

        async def write(tx: WriteTx) -> None:
            await tx.create(Node(node_id, doc))

        answer: dict[str, Any] = {
            "node_id": node_id,
            "cluster_id": state.cluster_id,
            "addr": addr,
            "manager_id": state.node_id,
            "role": role,
        }
        if as_manager:
            answer.update(await self._add_member(ca, state, node_id, addr, request))
        await store.update(write)
        cert = ca.issue(
            public, node_id, MANAGER_ROLE if as_manager else WORKER_ROLE, state.cluster_id,
            validity=self._cert_validity(),
        )  # fmt: skip
        await self._refresh_info()
        return {**answer, "cert": cert.decode(), "managers": [list(m) for m in self._managers]}

    async def _add_member(
        self, ca: RootCA, state: LocalState, node_id: str, addr: str, request: dict[str, Any]
    ) -> dict[str, Any]:
        """A new manager's etcd member: its certificate, `member add` as a learner (promoted in the
        background once it has caught up), and what it needs to start (the CA key, the initial cluster)."""
        coord = self._coord
        if coord is None or ca.key is None:
            raise NoLeader()
        etcd_public = _load_public(request.get("etcd_public_key"))
        peer_port = request.get("peer_port")
        if not isinstance(peer_port, int) or isinstance(peer_port, bool) or not 0 < peer_port < 65536:
            raise InvalidParameter("invalid etcd peer port")
        ips = tuple(dict.fromkeys(("127.0.0.1", addr)))
        etcd_cert = ca.issue(etcd_public, node_id, MANAGER_ROLE, state.cluster_id, ips)
        host = f"[{addr}]" if ":" in addr else addr
        peer_url = f"https://{host}:{peer_port}"
        deadline = time.monotonic() + 20
        while True:
            # etcd takes one learner at a time ("too many learner members"), and its raft drops a member change
            # proposed while the previous one (a learner's promotion) is not applied yet: that call only times
            # out (NoLeader). Another manager joining at the same moment waits and tries again — unless its
            # learner was added after all.
            try:
                member_id = await coord.add_learner(peer_url)
                break
            except GoraeError as e:
                retry = isinstance(e, NoLeader) or "too many learner" in e.message or "already exists" in e.message
                if not retry or time.monotonic() > deadline:
                    raise
            with contextlib.suppress(GoraeError):
                added = [m for m in await coord.members() if peer_url in m.peer_urls and m.learner]
                if added:
                    member_id = added[0].id
                    break
            await asyncio.sleep(0.3)
        members = await coord.members()
        self._chore(self._promote_learner(coord, member_id, node_id))
        return {
            "etcd_cert": etcd_cert.decode(),
            "initial_cluster": initial_cluster(members, member_id, node_id),
            "ca_key": key_pem(ca.key).decode(),
        }

    async def _promote_learner(self, coord: Coordinator, member_id: int, node_id: str) -> None:
        """Promote a new manager's learner once it is in sync; remove it if it never catches up."""
        deadline = time.monotonic() + PROMOTE_TIMEOUT
        while time.monotonic() < deadline:
            try:
                await coord.promote(member_id)
                log.info("swarm: etcd member of %s promoted to a voter", node_id)
                return
            except GoraeError as e:
                if "not found" in e.message:
                    return
            await asyncio.sleep(0.3)
        log.warning("swarm: etcd member of %s never caught up; removing it", node_id)
        try:
            await coord.remove(member_id)
        except GoraeError as e:
            log.warning("swarm: could not remove the learner of %s: %s", node_id, e.message)

    async def _promote_op(
        self, ca: RootCA, state: LocalState, node: Node, request: dict[str, Any], peer_ip: str
    ) -> dict[str, Any]:
        """A worker whose Spec.Role became manager (`node promote`) asks for its manager certificate and
        etcd member."""
        if (node.doc.get("Spec") or {}).get("Role") != "manager" or node.doc.get("ManagerStatus"):
            raise Forbidden(f"node {node.id} is not being promoted")
        public = _load_public(request.get("public_key"))
        addr = str((node.doc.get("Status") or {}).get("Addr") or peer_ip)
        port = request.get("port")
        adv_port = port if isinstance(port, int) and not isinstance(port, bool) else DEFAULT_PORT
        answer = await self._add_member(ca, state, node.id, addr, request)
        store = self.manager_store()

        async def write(tx: WriteTx) -> None:
            current = await tx.get(Node, node.id)
            if current is None:
                raise NotFound(f"node {node.id} not found")
            doc = dict(current.doc)
            doc["ManagerStatus"] = {"Reachability": "reachable", "Addr": join_hostport(addr, adv_port)}
            doc["UpdatedAt"] = _now()
            await tx.update(current.with_doc(doc))

        await store.update(write)
        cert = ca.issue(public, node.id, MANAGER_ROLE, state.cluster_id, validity=self._cert_validity())
        await self._refresh_info()
        return {**answer, "cert": cert.decode(), "addr": addr}

    async def _mark(self, node_id: str, node_state: str, only_if_not: bool = False) -> None:
        """Set a node's Status.State (`only_if_not`: skip the write when it already is)."""
        store = self.manager_store()

        async def write(tx: WriteTx) -> None:
            node = await tx.get(Node, node_id)
            if node is None:
                raise NotFound(f"node {node_id} not found")
            if only_if_not and (node.doc.get("Status") or {}).get("State") == node_state:
                return
            doc = dict(node.doc)
            doc["Status"] = {**doc.get("Status", {}), "State": node_state}
            doc["UpdatedAt"] = _now()
            await tx.update(node.with_doc(doc))

        await store.update(write)

    # -- heartbeats, coordination, role changes, renewal ----------------------------------------

    def _heartbeat_period(self, cluster: dict[str, Any] | None = None) -> float:
        """The cluster's Dispatcher.HeartbeatPeriod in seconds (5 s by default), at least 0.2 s; of the
        cluster document given, else of the one this manager read last."""
        spec = (cluster or self._cluster_info or {}).get("Spec") or {}
        ns = (spec.get("Dispatcher") or {}).get("HeartbeatPeriod") or 5_000_000_000
        try:
            return max(float(ns) / 1e9, 0.2)
        except (TypeError, ValueError):
            return 5.0

    def _start_background(self) -> None:
        if self.state is None or self._background:
            return
        if self.state.role == "manager":
            loops = [self._coordinate(), self._watch_heartbeats()]
        else:
            loops = [self._send_heartbeats()]
        loops += [self._renew_certificate(), self._start_components()]
        self._background += [asyncio.ensure_future(loop) for loop in loops]

    async def _stop_background(self) -> None:
        tasks, self._background = self._background, []
        await _cancel_all(tasks)
        await self._stop_components()

    async def _send_heartbeats(self) -> None:
        """A worker: heartbeat to its manager every period (failing over to the others it knows); the
        answer sets the period, the manager list, and its role (a promotion starts here)."""
        period = 5.0
        while self.state is not None and self.state.role == "worker":
            try:
                answer = await self.call_manager({"op": "heartbeat"})
                period = max(float(answer.get("period", period)), 0.2)
                managers = _manager_list(answer.get("managers"))
                state = self.state
                if managers and state is not None and managers != state.managers:
                    self._save_state(replace(state, managers=managers))
                if answer.get("role") == "manager":
                    self._chore(self._promote_self())
                    return
            except GoraeError as e:
                log.warning("swarm heartbeat failed: %s", e.message)
            except Exception:
                log.exception("swarm heartbeat")
            await asyncio.sleep(period)

    async def _coordinate(self) -> None:
        """A manager: keep its lease (presence) alive, campaign for leadership, follow the leader, notice
        quorum loss (the API answers "no leader" then) and its own demotion."""
        rounds = 1  # the first round ran when the node became a manager
        lost = 0
        while self.state is not None and self.state.role == "manager":
            await asyncio.sleep(LEASE_TTL / 4)
            if await self._coord_round(refresh=rounds % 4 == 0):
                self._chore(self._demote_self())
                return
            rounds = rounds + 1 if self._quorum else 0
            lost = 0 if self._quorum else lost + 1
            if lost and lost % 10 == 0 and self.member.pid is None and await self._cut_off():
                return  # without quorum and with no member left: this node was demoted while down

    async def _first_round(self, wait: float = 5.0) -> bool:
        """Coordination rounds until one succeeds (the member may still be electing etcd's leader) or `wait`
        seconds pass, so the API knows the leader from the start; True when this node has been demoted."""
        deadline = time.monotonic() + wait
        while True:
            demoted = await self._coord_round()
            if self._leader or demoted or time.monotonic() > deadline:
                return demoted
            await asyncio.sleep(0.1)

    async def _coord_round(self, refresh: bool = True) -> bool:
        """One coordination round; True when this node has been demoted."""
        if self.state is None or self.store is None:
            return False
        if self._coord is None:
            self._coord = Coordinator(self.store.client, self.state.node_id)
        coord = self._coord
        began = time.monotonic()  # the lease lives at least LEASE_TTL from a keepalive sent now
        try:
            if not await coord.keepalive():
                await coord.grant()
            leader = await coord.campaign()
            self._present = await coord.present()
            if not self._quorum:
                log.info("swarm: the cluster store has a quorum again")
            self._quorum = True
            self._failing_since = 0.0
            if leader != self._leader:
                log.info("swarm: leader is %s", leader or "(none)")
            self._leader = leader
            if leader == self.state.node_id:
                self._lead_until(began + LEASE_TTL * 0.75)
            await self._set_leading(leader == self.state.node_id)
            if leader and leader != self.state.node_id and await self._gone(leader):
                log.info("swarm: leader %s is gone (its swarm port refuses connections): deposing it", leader)
                await coord.depose(coord.leader_lease)
            if refresh:
                await self._refresh_info()
                return await self._demoted()
        except GoraeError as e:
            # failures for a lease's TTL (not one slow round: etcd electing its leader) mean no quorum
            now = time.monotonic()
            self._failing_since = self._failing_since or now
            if now - self._failing_since >= LEASE_TTL:
                if self._quorum:
                    log.warning("swarm: lost the cluster store's quorum: %s", e.message)
                self._quorum = False
                self._leader = ""
                await self._set_leading(False)
            # else: a leader keeps leading until its lease could have expired (the deadline timer)
        except Exception:
            log.exception("swarm coordination")
        return False

    def _lead_until(self, deadline: float) -> None:
        """Stop leading at `deadline` (monotonic) unless a later round renews it: never past the lease, even
        when a round hangs, and no stop/start of the leader's components for one slow round."""
        if self._lead_timer is not None:
            self._lead_timer.cancel()
        delay = max(deadline - time.monotonic(), 0.0)
        self._lead_timer = asyncio.get_running_loop().call_later(delay, self._lease_lapsed)

    def _lease_lapsed(self) -> None:
        self._lead_timer = None
        if self._leading:
            log.warning("swarm: this node's lease was not renewed in time: no longer leading")
            self._chore(self._set_leading(False))

    async def _gone(self, node_id: str) -> bool:
        """Whether manager `node_id`'s daemon is certainly gone: its host refuses connections on the swarm port
        (the lease would tell only after its TTL and, when etcd's leader died too, an etcd election). A host
        that does not answer at all proves nothing: the lease decides then."""
        addr = dict(self._managers).get(node_id)
        if not addr:
            return False
        host, port = split_hostport(addr, DEFAULT_PORT)
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 0.5)
        except ConnectionRefusedError:
            return True
        except (OSError, TimeoutError):
            return False
        writer.close()
        return False

    async def _demoted(self) -> bool:
        assert self.state is not None and self.store is not None
        node_id = self.state.node_id

        async def read(tx: ReadTx) -> Node | None:
            return await tx.get(Node, node_id)

        node = await self.store.view(read)
        return node is not None and (node.doc.get("Spec") or {}).get("Role") == "worker"

    async def _cut_off(self) -> bool:
        """A manager whose etcd member is gone (the leader removed it while this daemon was down, after a
        demotion): ask the other managers what this node is now; a worker goes on as one (True)."""
        state = self.state
        if state is None:
            return False
        for manager_id, addr in state.managers:
            if manager_id == state.node_id:
                continue
            try:
                answer = await call(addr, self._member_context(), {"op": "heartbeat"}, MANAGER_ROLE)
                if answer.get("role") != "worker":
                    return False
                key = new_key()
                renewed = await call(
                    addr,
                    self._member_context(),
                    {"op": "renew", "public_key": _public_pem(key)},
                    MANAGER_ROLE,
                )
            except GoraeError as e:
                log.warning("swarm: asking manager %s: %s", addr, e.message)
                continue
            self._chore(self._cut_off_worker(str(renewed["cert"]).encode(), key))
            return True
        return False

    async def _cut_off_worker(self, cert: bytes, key: ec.EllipticCurvePrivateKey) -> None:
        async with self._lock:
            state = self.state
            if state is None or state.role != "manager":
                return
            log.info("swarm: this node was demoted while its daemon was down")
            await self._stop_background()
            await self._to_worker(cert, key, [m for m in state.managers if m[0] != state.node_id])

    async def _to_worker(
        self, cert: bytes, key: ec.EllipticCurvePrivateKey, managers: list[tuple[str, str]]
    ) -> None:
        """Drop what a manager has (listener, store client, member and its data, the CA key) and go on as a
        worker of `managers` with the worker certificate `cert` (under the lock, background stopped)."""
        state = self.state
        assert state is not None
        await self.remote.close()
        if self.store is not None:
            await self.store.close()
            self.store = None
        self._coord = None
        self._ca = None
        self._server_ctx = None
        await self.member.destroy()
        self._drop_run_key()
        certs = self.root / "certificates"
        (certs / "swarm-root-ca.key").unlink(missing_ok=True)
        await asyncio.to_thread(shutil.rmtree, self.root / "etcd-tls", True)
        await asyncio.to_thread(self.vault.reseal, "")  # autolock is for managers: a worker's files are clear
        (certs / "swarm-node.crt").write_bytes(cert)
        self.vault.write(certs / "swarm-node.key", key_pem(key))
        manager_id, manager_addr = managers[0]
        self._save_state(
            replace(
                state,
                role="worker",
                manager_id=manager_id,
                manager_addr=manager_addr,
                managers=tuple(managers),
            )
        )
        self._quorum = True
        self._leader = ""
        self._present = set()
        self._start_background()

    async def _demote_self(self) -> None:
        """This manager was demoted: a worker certificate, its etcd member removed, its store data gone;
        it goes on as a worker of the remaining managers."""
        async with self._lock:
            state, coord, ca, store = self.state, self._coord, self._ca, self.store
            if state is None or state.role != "manager" or coord is None or ca is None or store is None:
                return
            try:
                await self._refresh_info()
                others = [m for m in self._managers if m[0] != state.node_id]
                if not others:
                    raise Unavailable("no other manager")
                key = new_key()
                cert = ca.issue(
                    key.public_key(), state.node_id, WORKER_ROLE, state.cluster_id,
                    validity=self._cert_validity(),
                )  # fmt: skip
                await self._stop_background()
                await self._drop_manager_status(state.node_id)
                members = await coord.members()
                try:
                    await coord.resign()
                except GoraeError:
                    pass  # the lease expires by itself
                for m in members:
                    if m.name == state.node_id:
                        await _remove_member(coord, m.id)
            except GoraeError as e:
                log.warning("swarm: demotion of this node failed (will retry): %s", e.message)
                self._start_background()
                return
            log.info("swarm: this node was demoted to a worker")
            await self._to_worker(cert, key, others)

    async def _promote_self(self) -> None:
        """This worker was promoted: a manager certificate and an etcd member from its manager, then it
        serves as a manager."""
        async with self._lock:
            state = self.state
            if state is None or state.role != "worker":
                return
            await self._stop_background()
            key, etcd_key = new_key(), new_key()
            peer_port = free_port(state.addr)
            listen_port = split_hostport(state.advertise_addr, DEFAULT_PORT)[1]
            try:
                answer = await self.call_manager(
                    {
                        "op": "promote",
                        "public_key": _public_pem(key),
                        "etcd_public_key": _public_pem(etcd_key),
                        "peer_port": peer_port,
                        "port": listen_port,
                    }
                )
                state = self.state
                assert state is not None
                certs = self.root / "certificates"
                (certs / "swarm-node.crt").write_bytes(str(answer["cert"]).encode())
                self.vault.write(certs / "swarm-node.key", key_pem(key))
                await self._become_manager(
                    state.node_id, state.cluster_id, state.listen_addr,
                    join_hostport(str(answer["addr"]), listen_port), answer, etcd_key, peer_port,
                )  # fmt: skip
                log.info("swarm: this node was promoted to a manager")
            except (GoraeError, OSError, KeyError) as e:
                log.warning("swarm: promotion of this node failed (will retry): %s", e)
                await self.member.destroy()
                if self.store is not None:
                    await self.store.close()
                    self.store = None
                self._start_background()

    async def _renew_certificate(self) -> None:
        """Ask a manager for a new node certificate once a random 50–80 % of the current one's validity
        has passed (swarmkit's window), checking every minute."""
        fraction = random.uniform(0.5, 0.8)
        while self.state is not None:
            certs = self.root / "certificates"
            try:
                not_before, not_after = cert_times((certs / "swarm-node.crt").read_bytes())
                if renewal_due(not_before, not_after, dt.datetime.now(dt.UTC), fraction):
                    await self.renew_certificate()
                    fraction = random.uniform(0.5, 0.8)
            except GoraeError as e:
                log.warning("swarm certificate renewal: %s", e.message)
            except Exception:
                log.exception("swarm certificate renewal")
            await asyncio.sleep(60)

    async def renew_certificate(self) -> None:
        """A new certificate for this node over the swarm port (a new key; the role the store has)."""
        key = new_key()
        answer = await self.call_manager({"op": "renew", "public_key": _public_pem(key)})
        cert = str(answer["cert"]).encode()
        certs = self.root / "certificates"
        (certs / "swarm-node.crt").write_bytes(cert)
        self.vault.write(certs / "swarm-node.key", key_pem(key))
        if self._server_ctx is not None:
            reload_cert(self._server_ctx, cert, key_pem(key))
        log.info("swarm: node certificate renewed")

    async def _watch_heartbeats(self) -> None:
        """The leader: a worker whose heartbeat (to any manager) has not moved for 3 periods is marked down
        (swarmkit's grace multiplier); a manager is down while its lease is gone."""
        while self.state is not None:
            period = self._heartbeat_period()
            await asyncio.sleep(period)
            if not self._leading or self._coord is None:
                continue
            try:
                store = self.manager_store()

                async def read(tx: ReadTx) -> list[Node]:
                    return await tx.find(Node)

                beats = await self._coord.beats()
                now = time.monotonic()
                nodes = await store.view(read)
                changed = await self._reconcile_members(self._coord, nodes)
                for node in nodes:
                    status = (node.doc.get("Status") or {}).get("State")
                    if node.doc.get("ManagerStatus"):  # a manager's heartbeat is its lease
                        if node.id in self._present:
                            self._beats[node.id] = (0, now)
                            if status != "ready":
                                await self._mark(node.id, "ready")
                                changed = True
                        elif (
                            status == "ready"
                            and now - self._beats.setdefault(node.id, (0, now))[1] > 3 * period
                        ):
                            await self._mark(node.id, "down")
                            changed = True
                        continue
                    rev = beats.get(node.id, 0)
                    seen = self._beats.get(node.id)
                    if seen is None or seen[0] != rev:
                        self._beats[node.id] = (rev, now)  # moved (or unheard since this leader began: grace)
                        continue
                    if status == "ready" and now - seen[1] > 3 * period:
                        await self._mark(node.id, "down")
                        changed = True
                if changed:
                    await self._refresh_info()
            except GoraeError as e:
                log.warning("swarm heartbeat check: %s", e.message)
            except Exception:
                log.exception("swarm heartbeat check")

    async def _reconcile_members(self, coord: Coordinator, nodes: list[Node]) -> bool:
        """The leader: the etcd member of a manager demoted or removed while its daemon was down goes (it
        would count against the quorum for ever), and its ManagerStatus with it. A live one (its lease is
        there) demotes itself."""
        assert self.state is not None
        by_id = {n.id: n for n in nodes}
        changed = False
        for member in await coord.members():
            if not member.name or member.name == self.state.node_id or member.name in self._present:
                continue
            node = by_id.get(member.name)
            if node is not None and (node.doc.get("Spec") or {}).get("Role") == "manager":
                continue
            log.info("swarm: removing the etcd member of %s (no longer a manager)", member.name)
            await _remove_member(coord, member.id)
            if node is not None and node.doc.get("ManagerStatus"):
                await self._drop_manager_status(node.id)
            changed = True
        return changed

    async def _drop_manager_status(self, node_id: str) -> None:
        async def write(tx: WriteTx) -> None:
            node = await tx.get(Node, node_id)
            if node is not None and "ManagerStatus" in node.doc:
                doc = {k: v for k, v in node.doc.items() if k != "ManagerStatus"}
                await tx.update(node.with_doc({**doc, "UpdatedAt": _now()}))

        await self.manager_store().update(write)

    # -- /nodes ------------------------------------------------------------------------------

    async def nodes(self, filters: Filters) -> list[dict[str, Any]]:
        store = self.manager_store()
        filters.validate(NODE_FILTERS)

        async def read(tx: ReadTx) -> list[Node]:
            return await tx.find(Node)

        out = []
        for node in await store.view(read):
            doc = node.doc
            spec = doc.get("Spec") or {}
            desc = doc.get("Description") or {}
            if filters.contains("id") and not any(node.id.startswith(v) for v in filters.get("id")):
                continue
            if filters.contains("name") and not filters.fuzzy("name", desc.get("Hostname", "")):
                continue
            if filters.contains("role") and not filters.exact("role", spec.get("Role", "")):
                continue
            if filters.contains("membership") and not filters.exact("membership", "accepted"):
                continue
            if filters.contains("node.label") and not filters.match_labels(spec.get("Labels"), "node.label"):
                continue
            if filters.contains("label") and not filters.match_labels(
                (desc.get("Engine") or {}).get("Labels"), "label"
            ):
                continue
            out.append(node)
        await self._refresh_present()
        return [self._public_node(node) for node in out]

    async def _refresh_present(self) -> None:
        """The managers' presence read now, not as of this manager's last coordination round: a manager that
        has just joined is reachable as soon as `swarm join` returned (its lease exists by then), as in dockerd.
        Best effort: without an answer the last round's view stands."""
        if self._coord is None or not self._quorum:
            return
        with contextlib.suppress(GoraeError):
            self._present = await self._coord.present()

    def _public_node(self, node: Node) -> dict[str, Any]:
        """A node as the API shows it: ManagerStatus's Leader and Reachability as coordination sees them now."""
        public = _public(node.doc, node.version)
        status = public.get("ManagerStatus")
        if isinstance(status, dict):
            present = self._present | ({self.state.node_id} if self.state and self._quorum else set())
            shown: dict[str, Any] = {"Leader": True} if node.id == self._leader else {}
            shown["Reachability"] = "reachable" if node.id in present else "unreachable"
            shown["Addr"] = status.get("Addr", "")
            public["ManagerStatus"] = shown
        return public

    async def _find_node(self, tx: ReadTx, ref: str) -> Node:
        node = await tx.get(Node, ref)
        if node is not None:
            return node
        all_nodes = await tx.find(Node)
        named = [n for n in all_nodes if (n.doc.get("Description") or {}).get("Hostname") == ref]
        if len(named) == 1:
            return named[0]
        prefixed = [n for n in all_nodes if n.id.startswith(ref)] if ref else []
        if len(prefixed) == 1:
            return prefixed[0]
        if len(named) > 1 or len(prefixed) > 1:
            raise NotFound(f"node {ref} is ambiguous ({len(named) or len(prefixed)} matches found)")
        raise NotFound(f"node {ref} not found")

    async def node(self, ref: str) -> dict[str, Any]:
        store = self.manager_store()

        async def read(tx: ReadTx) -> Node:
            return await self._find_node(tx, ref)

        node = await store.view(read)
        await self._refresh_present()
        return self._public_node(node)

    async def update_node(self, ref: str, raw_version: str | None, spec: dict[str, Any]) -> None:
        """POST /nodes/{id}/update: labels, role, availability at `version`."""
        store = self.manager_store()
        version = parse_version(raw_version, "node")
        check_node_spec(spec)
        role = spec.get("Role") or "worker"
        availability = spec.get("Availability") or "active"
        if role not in ("worker", "manager"):
            raise InvalidParameter(f"invalid role {role!r}")
        if availability not in ("active", "pause", "drain"):
            raise InvalidParameter(f"invalid availability {availability!r}")
        labels = spec.get("Labels") or {}

        async def write(tx: WriteTx) -> None:
            node = await self._find_node(tx, ref)
            doc = dict(node.doc)
            old_role = (doc.get("Spec") or {}).get("Role")
            if old_role == "manager" and role == "worker":
                managers = [n for n in await tx.find(Node) if n.doc["Spec"].get("Role") == "manager"]
                if len(managers) <= 1:
                    raise InvalidParameter(
                        "rpc error: code = FailedPrecondition desc = attempting to demote the last manager "
                        "of the swarm"
                    )
                # swarmkit's quorum safeguard: the managers still reachable after the removal must be a
                # majority of those left
                members = [n.id for n in managers if n.doc.get("ManagerStatus")]
                if node.id in members:
                    alive = self._present | ({self.state.node_id} if self.state else set())
                    reachable = sum(1 for m in members if m != node.id and m in alive)
                    if reachable < (len(members) - 1) // 2 + 1:
                        raise InvalidParameter(
                            "rpc error: code = FailedPrecondition desc = can't remove member from the raft: "
                            "this would result in a loss of quorum"
                        )
            new_spec = {"Labels": labels, "Role": role, "Availability": availability}
            if spec.get("Name"):
                new_spec = {"Name": spec["Name"], **new_spec}
            doc["Spec"] = new_spec
            doc["UpdatedAt"] = _now()
            await tx.update(Node(node.id, doc, version))

        await store.update(write)
        await self._refresh_info()

    async def remove_node(self, ref: str, force: bool) -> None:
        """DELETE /nodes/{id}: managers must be demoted first (swarmkit's refusal)."""
        store = self.manager_store()

        async def write(tx: WriteTx) -> None:
            node = await self._find_node(tx, ref)
            if (node.doc.get("Spec") or {}).get("Role") == "manager":
                raise InvalidParameter(
                    f"rpc error: code = FailedPrecondition desc = node {node.id} is a cluster manager and is "
                    "a member of the raft cluster. It must be demoted to worker before removal"
                )
            if (node.doc.get("Status") or {}).get("State") != "down" and not force:
                raise InvalidParameter(
                    f"rpc error: code = FailedPrecondition desc = node {node.id} is not down and can't be "
                    "removed"
                )
            await tx.delete(Node, node.id)

        await store.update(write)
        await self._refresh_info()
