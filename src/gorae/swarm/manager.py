"""The swarm side of one daemon: local swarm state, the etcd member and the cluster store, and the
operations behind `/swarm` and `/nodes` (`SwarmService`).

Local state lives in `<data root>/swarm/`: `state.json` (node ID, cluster ID, addresses, role), the CA and
node certificates under `certificates/`, the etcd member under `etcd/`. The cluster's shared state (the
Cluster object with the CA key and join tokens, the Node objects) lives in the cluster store. A daemon that
restarts inside a swarm starts its member again; `leave` stops the member and removes all of it.

Single manager only for now: this node is the leader; join over 2377, workers, services and tasks are not
here yet (issue 10).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gorae.errors import Forbidden, GoraeError, InvalidParameter, NotFound, NotImplementedYet, Unavailable
from gorae.filters import Filters
from gorae.swarm import docs
from gorae.swarm.ca import tokens
from gorae.swarm.ca.authority import MANAGER_ROLE, WORKER_ROLE, RootCA, key_pem, load_key, new_key
from gorae.swarm.component import NodeContext, RemoteOp, SwarmComponent
from gorae.swarm.ids import new_id
from gorae.swarm.remote import RemoteServer, call, client_context, server_context
from gorae.swarm.store.etcd import EtcdStore
from gorae.swarm.store.member import EtcdMember, MemberConfig, etcd_binary
from gorae.swarm.store.types import Cluster, Node, ReadTx, WriteTx
from gorae.timefmt import rfc3339nano

log = logging.getLogger("gorae.swarm")

DEFAULT_PORT = 2377
NODE_FILTERS = ("id", "label", "membership", "name", "node.label", "role")


@dataclass(frozen=True)
class LocalState:
    node_id: str
    cluster_id: str
    role: str  # "manager" | "worker"
    listen_addr: str
    advertise_addr: str  # host:port
    manager_id: str = ""  # a worker's manager (node ID and host:port)
    manager_addr: str = ""

    @property
    def addr(self) -> str:
        return self.advertise_addr.rsplit(":", 1)[0].strip("[]")


def _store_for(cfg: MemberConfig) -> EtcdStore:
    """A client of this node's member, with its TLS files when it has them."""
    if not cfg.tls_dir:
        return EtcdStore("127.0.0.1", cfg.client_port)
    d = Path(cfg.tls_dir)
    tls = ((d / "ca.crt").read_bytes(), (d / "etcd.crt").read_bytes(), (d / "etcd.key").read_bytes())
    return EtcdStore("127.0.0.1", cfg.client_port, tls=tls)


def _join_hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _write_secret(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _now() -> str:
    return rfc3339nano(time.time_ns())


def _split_hostport(value: str, default_port: int) -> tuple[str, int]:
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest.lstrip(":")
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    else:
        host, port = value, ""
    if not port:
        return host, default_port
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InvalidParameter(f"invalid port: {port}")
    return host, int(port)


def _is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True


def _default_route_addr() -> str:
    """The source address of the default route (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
        except OSError:
            raise InvalidParameter(
                "could not choose an IP address to advertise since this system has no default route "
                "- specify one with --advertise-addr"
            ) from None
        return str(s.getsockname()[0])


def _interface_addr(name: str) -> str | None:
    """The IPv4 address of interface `name`, if that is an interface."""
    import fcntl
    import struct

    if not os.path.exists(f"/sys/class/net/{name}"):
        return None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))  # SIOCGIFADDR
        except OSError:
            raise InvalidParameter(f"interface {name} has no usable IPv4 address") from None
    return socket.inet_ntoa(packed[20:24])


def _resolve_advertise(advertise: str, listen_host: str, listen_port: int) -> str:
    """ "host:port" this node is reached at: --advertise-addr (IP, IP:port or interface), else the
    listen address when specific, else the default route's source address."""
    if advertise:
        host, port = _split_hostport(advertise, listen_port)
        if not _is_ip(host):
            iface = _interface_addr(host)
            if iface is None:
                raise InvalidParameter(
                    "advertise address must be a non-zero IP address or network interface "
                    "(with optional port number)"
                )
            host = iface
    elif listen_host and listen_host not in ("0.0.0.0", "::") and _is_ip(listen_host):
        host, port = listen_host, listen_port
    else:
        host, port = _default_route_addr(), listen_port
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _parse_version(raw: str | None, what: str) -> int:
    value = raw if raw is not None else ""
    if not value.isdigit():
        raise InvalidParameter(
            f"invalid {what} version '{value}': strconv.ParseUint: parsing \"{value}\": invalid syntax"
        )
    return int(value)


_SPEC_SECTIONS = ("Orchestration", "Raft", "Dispatcher", "CAConfig", "TaskDefaults", "EncryptionConfig")


def _json_type(value: Any) -> str:
    return {bool: "bool", int: "number", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), "null"
    )


def _unmarshal_error(value: Any, field: str, go_type: str) -> InvalidParameter:
    return InvalidParameter(
        f"json: cannot unmarshal {_json_type(value)} into Go struct field {field} of type {go_type}"
    )


def check_spec(spec: Any) -> dict[str, Any]:
    """A cluster spec's JSON types as dockerd's decoder checks them (400 with its message)."""
    if not isinstance(spec, dict):
        raise _unmarshal_error(spec, "Spec", "swarm.Spec")
    name = spec.get("Name")
    if name is not None and not isinstance(name, str):
        raise _unmarshal_error(name, "Spec.Name", "string")
    labels = spec.get("Labels")
    if labels is not None and (
        not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values())
    ):
        raise _unmarshal_error(labels, "Spec.Labels", "map[string]string")
    for section in _SPEC_SECTIONS:
        value = spec.get(section)
        if value is not None and not isinstance(value, dict):
            raise _unmarshal_error(value, f"Spec.{section}", f"swarm.{section}Config")
    return spec


def check_init(body: dict[str, Any]) -> None:
    for key in ("ListenAddr", "AdvertiseAddr", "DataPathAddr"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise _unmarshal_error(body[key], f"InitRequest.{key}", "string")
    for key in ("SubnetSize", "DataPathPort"):
        value = body.get(key)
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**32
        ):
            raise _unmarshal_error(value, f"InitRequest.{key}", "uint32")
    pool = body.get("DefaultAddrPool")
    if pool is not None and (not isinstance(pool, list) or not all(isinstance(p, str) for p in pool)):
        raise _unmarshal_error(pool, "InitRequest.DefaultAddrPool", "[]string")
    if body.get("Spec") is not None:
        check_spec(body["Spec"])


def check_join(body: dict[str, Any]) -> None:
    for key in ("ListenAddr", "AdvertiseAddr", "DataPathAddr", "JoinToken", "Availability"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise _unmarshal_error(body[key], f"JoinRequest.{key}", "string")
    remotes = body.get("RemoteAddrs")
    if remotes is not None and (
        not isinstance(remotes, list) or not all(isinstance(r, str) for r in remotes)
    ):
        raise _unmarshal_error(remotes, "JoinRequest.RemoteAddrs", "[]string")


def check_node_spec(spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise _unmarshal_error(spec, "NodeSpec", "swarm.NodeSpec")
    for key in ("Name", "Role", "Availability"):
        if spec.get(key) is not None and not isinstance(spec[key], str):
            raise _unmarshal_error(spec[key], f"NodeSpec.{key}", "string")
    labels = spec.get("Labels")
    if labels is not None and (
        not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values())
    ):
        raise _unmarshal_error(labels, "NodeSpec.Labels", "map[string]string")
    return spec


def _public(doc: dict[str, Any], version: int) -> dict[str, Any]:
    """A stored document as the API shows it: its version in, the private bag out."""
    out = {k: v for k, v in doc.items() if not k.startswith("_")}
    return {"ID": out.pop("ID"), "Version": {"Index": version}, **out}


class SwarmService:
    """This daemon's swarm membership and the manager operations (cluster and nodes)."""

    def __init__(self, root: str, describe: Callable[[], dict[str, Any]]) -> None:
        self.root = Path(root)
        self._describe = describe  # the node Description (hostname, platform, resources, engine)
        self.member = EtcdMember(self.root / "etcd")
        self.store: EtcdStore | None = None
        self.state: LocalState | None = None
        self._lock = asyncio.Lock()
        self._info_counts = (0, 0)  # nodes, managers: kept for the synchronous /info
        self._cluster_info: dict[str, Any] | None = None
        self.remote = RemoteServer(self._remote_request)
        self._ca: RootCA | None = None
        self._beats: dict[str, float] = {}  # worker node ID -> monotonic time of its last heartbeat
        self._departed: set[str] = set()
        self._background: list[asyncio.Task[None]] = []
        self._components: list[SwarmComponent] = []
        self._started: list[SwarmComponent] = []
        self._ops: dict[str, RemoteOp] = {}
        self._leader_only: set[int] = set()

    # -- what runs on a swarm node -------------------------------------------------------------

    def add_component(self, component: SwarmComponent, *, leader_only: bool = False) -> None:
        """Run `component` while this node is in a swarm (see gorae.swarm.component); with `leader_only`,
        only while this node is the leader manager (with one manager: on it)."""
        self._components.append(component)
        if leader_only:
            self._leader_only.add(id(component))

    def register_op(self, name: str, handler: RemoteOp) -> None:
        """Answer the swarm-port operation `name` on a manager with `handler`."""
        if name in self._ops or name in ("ca", "join", "leave", "heartbeat"):
            raise ValueError(f"swarm operation {name!r} registered twice")
        self._ops[name] = handler

    async def call_manager(self, request: dict[str, Any]) -> dict[str, Any]:
        """One request to this node's manager over the swarm port (mutual TLS with the node certificate)."""
        state = self.state
        if state is None:
            raise Unavailable(docs.NOT_IN_SWARM)
        addr = state.manager_addr if state.role == "worker" else state.advertise_addr
        return await call(addr, self._member_context(), request, MANAGER_ROLE)

    def _node_context(self) -> NodeContext:
        assert self.state is not None
        return NodeContext(
            node_id=self.state.node_id,
            cluster_id=self.state.cluster_id,
            role=self.state.role,
            addr=self.state.addr,
            store=self.store if self.state.role == "manager" else None,
            call_manager=self.call_manager,
        )

    async def _start_components(self) -> None:
        node = self._node_context()
        for component in self._components:
            if id(component) in self._leader_only and node.role != "manager":
                continue
            try:
                await component.start(node)
            except Exception:
                log.exception("swarm component %s did not start", type(component).__name__)
                continue
            self._started.append(component)

    async def _stop_components(self) -> None:
        started, self._started = self._started, []
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
        state = LocalState(**raw)
        if state.role == "worker":
            self.state = state
            self._start_background()
            return
        cfg = self.member.configured()
        if cfg is None:
            raise Unavailable(
                f"swarm state in {self.root} has no etcd member: leave the swarm and init again"
            )
        await self.member.start(cfg)
        self.store = _store_for(cfg)
        self.state = state
        await self._serve_remote(state)
        await self._refresh_info()
        self._start_background()

    async def _serve_remote(self, state: LocalState) -> int:
        """Listen on the swarm port (mutual TLS with the node certificate); answers the bound port."""
        certs = self.root / "certificates"
        ca_pem = (certs / "swarm-root-ca.crt").read_bytes()
        self._ca = RootCA(ca_pem, load_key((certs / "swarm-root-ca.key").read_bytes()))
        ctx = server_context(
            (certs / "swarm-node.crt").read_bytes(), (certs / "swarm-node.key").read_bytes(), ca_pem
        )
        host, port = _split_hostport(state.listen_addr, DEFAULT_PORT)
        try:
            return await self.remote.start(host, port, ctx)
        except OSError as e:
            raise InvalidParameter(
                f"failed to listen on remote API address: listen tcp {host}:{port}: {e.strerror}"
            ) from e

    async def close(self) -> None:
        """Daemon shut-down: stop the member, keep the state."""
        await self._stop_background()
        await self.remote.close()
        if self.store is not None:
            await self.store.close()
            self.store = None
        await self.member.stop()

    # -- the API's view ------------------------------------------------------------------------

    def ping_state(self) -> str:
        """`_ping`'s Swarm header."""
        if self.state is None:
            return "inactive"
        return f"active/{self.state.role}"

    def info(self) -> dict[str, Any]:
        """/info's Swarm section."""
        st = self.state
        if st is None:
            return docs.inactive_info()
        nodes, managers = self._info_counts
        doc: dict[str, Any] = {
            "NodeID": st.node_id,
            "NodeAddr": st.addr,
            "LocalNodeState": "active",
            "ControlAvailable": st.role == "manager",
            "Error": "",
            "RemoteManagers": [{"NodeID": st.node_id, "Addr": st.advertise_addr}],
        }
        if st.role == "worker":
            doc["RemoteManagers"] = [{"NodeID": st.manager_id, "Addr": st.manager_addr}]
        if st.role == "manager":
            doc["Nodes"] = nodes
            doc["Managers"] = managers
            doc["Cluster"] = self._cluster_info
        return doc

    def manager_store(self) -> EtcdStore:
        """The cluster store, on a manager; dockerd's 503s on a worker or outside a swarm."""
        if self.state is not None and self.state.role == "worker":
            raise Unavailable(docs.WORKER_NOT_MANAGER)
        if self.state is None or self.store is None or self.state.role != "manager":
            raise Unavailable(docs.NOT_MANAGER)
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
        if cluster is not None:
            public = _public(cluster.doc, cluster.version)
            public.pop("JoinTokens", None)
            self._cluster_info = public

    # -- /swarm ------------------------------------------------------------------------------

    async def init(self, body: dict[str, Any]) -> str:
        """POST /swarm/init: a new single-manager cluster; answers the node ID."""
        check_init(body)
        async with self._lock:
            if self.state is not None:
                raise Unavailable(docs.ALREADY_IN_SWARM)
            etcd_binary()  # says what to install before anything is made
            spec = docs.default_spec()
            given = body.get("Spec") or {}
            for key, value in given.items():
                if isinstance(value, dict) and isinstance(spec.get(key), dict):
                    spec[key].update({k: v for k, v in value.items() if v not in (None, 0, "")} or {})
                elif value not in (None, ""):
                    spec[key] = value
            if spec.get("EncryptionConfig", {}).get("AutoLockManagers") or body.get("AutoLockManagers"):
                raise NotImplementedYet("swarm autolock is not supported by gorae yet")
            listen_host, listen_port = _split_hostport(
                str(body.get("ListenAddr") or "0.0.0.0:2377"), DEFAULT_PORT
            )
            advertise = _resolve_advertise(str(body.get("AdvertiseAddr") or ""), listen_host, listen_port)
            node_id, cluster_id = new_id(), new_id()
            state = LocalState(
                node_id, cluster_id, "manager", _join_hostport(listen_host, listen_port), advertise
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
        _write_secret(certs / "swarm-root-ca.key", key_pem(ca.key))
        (certs / "swarm-node.crt").write_bytes(node_cert)
        _write_secret(certs / "swarm-node.key", key_pem(node_key))
        port = await self._serve_remote(state)
        host, listen_port = _split_hostport(state.listen_addr, DEFAULT_PORT)
        if listen_port == 0:  # an ephemeral port (tests): the node is reached at the bound one
            adv_host, adv_port = _split_hostport(state.advertise_addr, DEFAULT_PORT)
            state = LocalState(
                state.node_id,
                state.cluster_id,
                state.role,
                _join_hostport(host, port),
                _join_hostport(adv_host, port if adv_port == 0 else adv_port),
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
        _write_secret(tls_dir / "etcd.key", key_pem(etcd_key))
        cfg = self.member.configure(state.node_id, state.addr, str(tls_dir))
        await self.member.start(cfg)
        store = _store_for(cfg)
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
            "_gorae": {"CAKey": key_pem(ca.key).decode()},
        }
        node_doc = {
            "ID": state.node_id,
            "CreatedAt": now,
            "UpdatedAt": now,
            "Spec": {"Labels": {}, "Role": "manager", "Availability": "active"},
            "Description": {**self._describe(), "TLSInfo": docs.tls_info(ca.cert_pem)},
            "Status": {"State": "ready", "Addr": state.addr},
            "ManagerStatus": {"Leader": True, "Reachability": "reachable", "Addr": state.advertise_addr},
        }

        async def write(tx: WriteTx) -> None:
            await tx.create(Cluster(state.cluster_id, cluster_doc))
            await tx.create(Node(state.node_id, node_doc))

        self.store = store
        await store.update(write)
        self._state_file.write_text(json.dumps(asdict(state)))
        self.state = state
        await self._refresh_info()
        self._start_background()

    async def _teardown(self) -> None:
        await self._stop_background()
        await self.remote.close()
        self._ca = None
        if self.store is not None:
            await self.store.close()
            self.store = None
        await self.member.destroy()
        self.state = None
        self._cluster_info = None
        self._info_counts = (0, 0)
        await asyncio.to_thread(shutil.rmtree, self.root, True)

    async def leave(self, force: bool) -> None:
        """POST /swarm/leave: the last manager leaves only with force; its store and certificates go."""
        async with self._lock:
            if self.state is None:
                raise Unavailable(docs.NOT_IN_SWARM)
            if self.state.role == "manager" and not force:
                raise Unavailable(docs.LAST_MANAGER_LEAVE)
            if self.state.role == "worker":
                await self._stop_background()  # no heartbeat after the leave
                try:  # tell the manager (best effort: a worker may leave while it is unreachable)
                    await call(self.state.manager_addr, self._member_context(), {"op": "leave"}, MANAGER_ROLE)
                except GoraeError:
                    pass
            await self._stop_background()
            await self._components_left(self.state.node_id)
            await self._teardown()

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
        self.manager_store()
        return {"UnlockKey": ""}

    async def update(
        self, raw_version: str | None, spec: dict[str, Any], rotate_worker: bool, rotate_manager: bool
    ) -> None:
        """POST /swarm/update: a new spec at `version` (swarmkit's sequence check), token rotation."""
        store = self.manager_store()
        version = _parse_version(raw_version, "swarm")
        check_spec(spec)
        if (spec.get("EncryptionConfig") or {}).get("AutoLockManagers"):
            raise NotImplementedYet("swarm autolock is not supported by gorae yet")

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
            doc["UpdatedAt"] = _now()
            await tx.update(Cluster(cluster.id, doc, version))

        await store.update(write)
        await self._refresh_info()

    # -- joining (this node) and the swarm port (the manager) -----------------------------------

    def _member_context(self) -> Any:
        certs = self.root / "certificates"
        return client_context(
            (certs / "swarm-root-ca.crt").read_bytes(),
            (certs / "swarm-node.crt").read_bytes(),
            (certs / "swarm-node.key").read_bytes(),
        )

    async def join(self, body: dict[str, Any]) -> None:
        """POST /swarm/join: fetch the CA, check it against the token, get a certificate as a worker."""
        check_join(body)
        async with self._lock:
            if self.state is not None:
                raise Unavailable(docs.ALREADY_IN_SWARM)
            remotes = body.get("RemoteAddrs") or []
            if not remotes:
                raise InvalidParameter("at least 1 RemoteAddr is required to join")
            token = str(body.get("JoinToken") or "")
            tokens.parse(token)
            host, port = _split_hostport(str(remotes[0]), DEFAULT_PORT)
            manager = _join_hostport(host, port)
            ca_pem = str(
                (await call(manager, client_context(None), {"op": "ca"}, None)).get("ca", "")
            ).encode()
            tokens.check_ca(token, ca_pem)
            key = new_key()
            public = key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            answer = await call(
                manager,
                client_context(ca_pem),
                {
                    "op": "join",
                    "token": token,
                    "public_key": public.decode(),
                    "description": self._describe(),
                    "advertise_addr": str(body.get("AdvertiseAddr") or ""),
                    "availability": str(body.get("Availability") or "active"),
                },
                MANAGER_ROLE,
            )
            listen_host, listen_port = _split_hostport(
                str(body.get("ListenAddr") or "0.0.0.0:2377"), DEFAULT_PORT
            )
            state = LocalState(
                node_id=str(answer["node_id"]),
                cluster_id=str(answer["cluster_id"]),
                role="worker",
                listen_addr=_join_hostport(listen_host, listen_port),
                advertise_addr=_join_hostport(str(answer["addr"]), listen_port),
                manager_id=str(answer["manager_id"]),
                manager_addr=manager,
            )
            try:
                self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
                certs = self.root / "certificates"
                certs.mkdir(mode=0o700, exist_ok=True)
                (certs / "swarm-root-ca.crt").write_bytes(ca_pem)
                (certs / "swarm-node.crt").write_bytes(str(answer["cert"]).encode())
                _write_secret(certs / "swarm-node.key", key_pem(key))
                self._state_file.write_text(json.dumps(asdict(state)))
            except BaseException:
                await asyncio.to_thread(shutil.rmtree, self.root, True)
                raise
            self.state = state
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

        async def known(tx: ReadTx) -> Node | None:
            return await tx.get(Node, ident.node_id)

        if await self.store.view(known) is None:
            raise Forbidden(f"node {ident.node_id} was removed from the swarm")
        if op == "leave":
            self._departed.add(ident.node_id)
            self._beats.pop(ident.node_id, None)
            await self._mark(ident.node_id, "down")
            return {}
        if op == "heartbeat":
            if ident.node_id in self._departed:
                raise Forbidden(f"node {ident.node_id} left the swarm")
            self._beats[ident.node_id] = time.monotonic()
            await self._mark(ident.node_id, "ready", only_if_not=True)
            return {"period": self._heartbeat_period()}
        handler = self._ops.get(str(op))
        if handler is not None:
            return await handler(request, ident.node_id, peer_ip)
        raise InvalidParameter(f"unknown operation {op!r}")

    async def _admit(
        self, ca: RootCA, state: LocalState, request: dict[str, Any], peer_ip: str
    ) -> dict[str, Any]:
        store = self.manager_store()
        token = request.get("token")
        cluster = await store.view(self._cluster)
        if not isinstance(token, str):
            raise InvalidParameter("invalid join token")
        jt = cluster.doc["JoinTokens"]
        if tokens.matches(token, jt["Manager"]):
            raise NotImplementedYet("joining as a manager is not supported by gorae yet")
        if not tokens.matches(token, jt["Worker"]):
            raise InvalidParameter(
                "rpc error: code = InvalidArgument desc = A valid join token is necessary to join this cluster"
            )
        try:
            public = serialization.load_pem_public_key(str(request.get("public_key", "")).encode())
        except ValueError:
            raise InvalidParameter("invalid public key") from None
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise InvalidParameter("invalid public key")
        description = request.get("description")
        if not isinstance(description, dict):
            description = {}
        availability = request.get("availability") or "active"
        if availability not in ("active", "pause", "drain"):
            raise InvalidParameter(f"invalid availability {availability!r}")
        advertise = str(request.get("advertise_addr") or "")
        addr = _split_hostport(advertise, 0)[0] if advertise else peer_ip
        if not _is_ip(addr):
            addr = peer_ip
        node_id = new_id()
        cert = ca.issue(public, node_id, WORKER_ROLE, state.cluster_id)
        now = _now()
        doc = {
            "ID": node_id,
            "CreatedAt": now,
            "UpdatedAt": now,
            "Spec": {"Labels": {}, "Role": "worker", "Availability": availability},
            "Description": {**description, "TLSInfo": docs.tls_info(ca.cert_pem)},
            "Status": {"State": "ready", "Addr": addr},
        }

        async def write(tx: WriteTx) -> None:
            await tx.create(Node(node_id, doc))

        await store.update(write)
        await self._refresh_info()
        return {
            "node_id": node_id,
            "cluster_id": state.cluster_id,
            "cert": cert.decode(),
            "addr": addr,
            "manager_id": state.node_id,
        }

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

    # -- heartbeats ---------------------------------------------------------------------------

    def _heartbeat_period(self) -> float:
        """The cluster's Dispatcher.HeartbeatPeriod in seconds (5 s by default), at least 0.2 s."""
        spec = (self._cluster_info or {}).get("Spec") or {}
        ns = (spec.get("Dispatcher") or {}).get("HeartbeatPeriod") or 5_000_000_000
        try:
            return max(float(ns) / 1e9, 0.2)
        except (TypeError, ValueError):
            return 5.0

    def _start_background(self) -> None:
        if self.state is None or self._background:
            return
        loop = self._watch_heartbeats() if self.state.role == "manager" else self._send_heartbeats()
        self._background.append(asyncio.ensure_future(loop))
        self._background.append(asyncio.ensure_future(self._start_components()))

    async def _stop_background(self) -> None:
        await self._stop_components()
        tasks, self._background = self._background, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except BaseException:  # noqa: BLE001, S110 - cancelled on purpose; errors were logged
                pass

    async def _send_heartbeats(self) -> None:
        """A worker: heartbeat to its manager every period (the manager's answer sets the period)."""
        period = 5.0
        while self.state is not None:
            try:
                answer = await call(
                    self.state.manager_addr, self._member_context(), {"op": "heartbeat"}, MANAGER_ROLE
                )
                period = max(float(answer.get("period", period)), 0.2)
            except GoraeError as e:
                log.warning("swarm heartbeat to %s failed: %s", self.state.manager_addr, e.message)
            except Exception:
                log.exception("swarm heartbeat")
            await asyncio.sleep(period)

    async def _watch_heartbeats(self) -> None:
        """A manager: a worker not heard from for 3 periods is marked down (swarmkit's grace multiplier)."""
        while self.state is not None:
            period = self._heartbeat_period()
            await asyncio.sleep(period)
            try:
                store = self.manager_store()

                async def read(tx: ReadTx) -> list[Node]:
                    return await tx.find(Node)

                now = time.monotonic()
                changed = False
                for node in await store.view(read):
                    if node.doc.get("Spec", {}).get("Role") != "worker":
                        continue
                    if (node.doc.get("Status") or {}).get("State") != "ready":
                        continue
                    last = self._beats.setdefault(node.id, now)  # unheard since this manager started: grace
                    if now - last > 3 * period:
                        await self._mark(node.id, "down")
                        changed = True
                if changed:
                    await self._refresh_info()
            except GoraeError as e:
                log.warning("swarm heartbeat check: %s", e.message)
            except Exception:
                log.exception("swarm heartbeat check")

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
            out.append(_public(doc, node.version))
        return out

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
        return _public(node.doc, node.version)

    async def update_node(self, ref: str, raw_version: str | None, spec: dict[str, Any]) -> None:
        """POST /nodes/{id}/update: labels, role, availability at `version`."""
        store = self.manager_store()
        version = _parse_version(raw_version, "node")
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
                raise NotImplementedYet("demoting a manager is not supported by gorae yet")
            if old_role == "worker" and role == "manager":
                raise NotImplementedYet("promoting a worker is not supported by gorae yet")
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
