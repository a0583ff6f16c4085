"""The ClusterStore on etcd (through `aetcd`, etcd's v3 gRPC API).

Layout: one key per object, `/gorae/swarm/<kind>/<id>`, whose value is the object's document as JSON; the
object's version is the key's `mod_revision`, so versions are etcd revisions and only grow.

An `update` is optimistic: its reads are pinned to the revision of its first read, its writes are buffered
(and seen by its own later reads), and the commit is one etcd transaction guarded by a compare for every key
read (its mod_revision unchanged) and for every listed kind (no key of that prefix modified since the read
revision). When the guard fails another writer got there first, and the update function runs again on the
new state. Limit (documented, tested): a deletion inside a listed kind does not trip the guard.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

# gRPC's fork handlers run in every child the daemon forks (runc, conmon, ...) and may abort it there
# ("ev_epoll1_linux.cc ... Check failed"): the children exec at once and need none of them. Before grpc loads.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import aetcd  # noqa: E402
import aetcd.watcher  # noqa: E402
import grpc  # noqa: E402
from aetcd import rpc  # noqa: E402

from gorae.errors import Unavailable  # noqa: E402
from gorae.swarm.store.types import (  # noqa: E402
    TYPES,
    Action,
    Change,
    CheckedWrites,
    Kind,
    NoLeader,
    ReadTx,
    SequenceConflict,
    StoredObject,
    WriteTx,
)

PREFIX = b"/gorae/swarm/"
RETRIES = 20

T = TypeVar("T")
Obj = TypeVar("Obj", bound=StoredObject)


def _key(root: bytes, kind: Kind, obj_id: str) -> bytes:
    return root + kind.encode() + b"/" + obj_id.encode()


def _prefix(root: bytes, kind: Kind) -> bytes:
    return root + kind.encode() + b"/"


def _range_end(prefix: bytes) -> bytes:
    return prefix[:-1] + bytes([prefix[-1] + 1])


def _decode(root: bytes, kv: Any) -> StoredObject:
    rest = bytes(kv.key)[len(root) :].decode()
    kind, _, obj_id = rest.partition("/")
    cls = TYPES[kind]  # type: ignore[index]
    return cls(id=obj_id, doc=json.loads(bytes(kv.value)), version=int(kv.mod_revision))


def _quorum_text(text: str) -> bool:
    """etcd's words for a request that found no quorum (no leader, timed out, deadline exceeded)."""
    return any(w in text for w in ("no leader", "timed out", "leader changed", "deadline exceeded"))


def store_error(e: Exception) -> Unavailable:
    """An etcd failure as the API answers it: no reachable quorum (unavailable, timed out, no leader) is
    dockerd's "The swarm does not have a leader" (503); anything else names the store's error."""
    if isinstance(e, rpc.AioRpcError):
        text = str(e.details() or "")
        if e.code() in (rpc.StatusCode.UNAVAILABLE, rpc.StatusCode.DEADLINE_EXCEEDED) or _quorum_text(text):
            return NoLeader()
        return Unavailable(f"cluster store: {text}")
    if isinstance(e, (aetcd.exceptions.ConnectionFailedError, aetcd.exceptions.ConnectionTimeoutError)):
        return NoLeader()
    text = str(e)
    if _quorum_text(text):
        return NoLeader()
    return Unavailable(f"cluster store: {e}")


class _Retry(Exception):
    """The commit's guard failed: run the update function again."""


class _Tx(CheckedWrites):
    """Reads pinned to one revision plus buffered writes (ReadTx and WriteTx)."""

    def __init__(self, client: Any, root: bytes) -> None:
        self._client = client
        self._root = root
        self.rev = 0
        self.read_mods: dict[bytes, int] = {}
        self.listed: set[bytes] = set()
        self.writes: dict[bytes, StoredObject | None] = {}
        self.guards: list[Any] = []

    async def _range(self, key: bytes, range_end: bytes | None = None) -> list[Any]:
        await self._client.connect()
        req = rpc.RangeRequest(key=key, range_end=range_end or b"", revision=self.rev)
        try:
            resp = await self._client.kvstub.Range(req, timeout=self._client._timeout)  # noqa: SLF001
        except rpc.AioRpcError as e:
            raise store_error(e) from e
        if not self.rev:
            self.rev = int(resp.header.revision)
        return list(resp.kvs)

    async def get(self, cls: type[Obj], obj_id: str) -> Obj | None:
        key = _key(self._root, cls.KIND, obj_id)
        if key in self.writes:
            pending = self.writes[key]
            return pending if isinstance(pending, cls) else None
        kvs = await self._range(key)
        self.read_mods.setdefault(key, int(kvs[0].mod_revision) if kvs else 0)
        return _decode(self._root, kvs[0]) if kvs else None  # type: ignore[return-value]

    async def find(self, cls: type[Obj]) -> list[Obj]:
        prefix = _prefix(self._root, cls.KIND)
        kvs = await self._range(prefix, _range_end(prefix))
        self.listed.add(prefix)
        found: dict[bytes, StoredObject] = {bytes(kv.key): _decode(self._root, kv) for kv in kvs}
        for key, pending in self.writes.items():
            if key.startswith(prefix):
                if pending is None:
                    found.pop(key, None)
                else:
                    found[key] = pending
        return [o for _, o in sorted(found.items()) if isinstance(o, cls)]

    def _buffer(self, kind: Kind, obj_id: str, obj: StoredObject | None) -> None:
        self.writes[_key(self._root, kind, obj_id)] = obj

    async def commit(self) -> None:
        if not self.writes:
            return
        t = self._client.transactions
        compare = [t.mod(key) == mod for key, mod in self.read_mods.items()]
        for prefix in self.listed:
            compare.append(aetcd.transactions.Mod(prefix, _range_end(prefix)) < self.rev + 1)
        ops = [
            t.delete(key) if obj is None else t.put(key, json.dumps(obj.doc).encode())
            for key, obj in self.writes.items()
        ]
        try:
            ok, _ = await self._client.transaction(compare=compare, success=ops, failure=[])
        except aetcd.exceptions.ClientError as e:
            raise store_error(e) from e
        if not ok:
            raise _Retry()


class _TLSClient(aetcd.Client):  # type: ignore[misc]
    """aetcd's client on a mutual-TLS channel (aetcd 1.0 opens insecure channels only)."""

    def __init__(self, host: str, port: int, timeout: int, credentials: Any) -> None:
        super().__init__(host=host, port=port, timeout=timeout)
        self._credentials = credentials

    async def connect(self) -> None:
        if self._connected.is_set():
            return
        self.channel = rpc.secure_channel(f"{self._host}:{self._port}", self._credentials)
        self.kvstub = rpc.KVStub(self.channel)
        self.clusterstub = rpc.ClusterStub(self.channel)
        self.leasestub = rpc.LeaseStub(self.channel)
        self.maintenancestub = rpc.MaintenanceStub(self.channel)
        self._watcher = aetcd.watcher.Watcher(rpc.WatchStub(self.channel), timeout=self._timeout)
        self._connected.set()


class EtcdStore:
    """ClusterStore over an etcd client endpoint (host, port); `tls` = (CA, certificate, key) PEMs for a
    member that requires client certificates."""

    def __init__(
        self,
        host: str,
        port: int,
        timeout: int = 5,
        root: bytes = PREFIX,
        tls: tuple[bytes, bytes, bytes] | None = None,
    ) -> None:
        if tls is None:
            self._client = aetcd.Client(host=host, port=port, timeout=timeout)
        else:
            ca, cert, key = tls
            creds = grpc.ssl_channel_credentials(
                root_certificates=ca, private_key=key, certificate_chain=cert
            )
            self._client = _TLSClient(host, port, timeout, creds)
        self._root = root

    @property
    def client(self) -> aetcd.Client:
        """The etcd client itself (the managers' coordination: leases, election, membership)."""
        return self._client

    async def view(self, fn: Callable[[ReadTx], Awaitable[T]]) -> T:
        return await fn(_Tx(self._client, self._root))

    async def update(self, fn: Callable[[WriteTx], Awaitable[T]]) -> T:
        for _ in range(RETRIES):
            tx = _Tx(self._client, self._root)
            result = await fn(tx)
            try:
                await tx.commit()
            except _Retry:
                continue
            return result
        raise SequenceConflict()

    async def revision(self) -> int:
        tx = _Tx(self._client, self._root)
        await tx._range(self._root)  # noqa: SLF001
        return tx.rev

    async def watch(self, after: int = 0) -> AsyncIterator[Change]:
        await self._client.connect()
        try:
            stream = await self._client.watch_prefix(self._root, start_revision=after + 1, prev_kv=True)
        except aetcd.exceptions.ClientError as e:
            raise store_error(e) from e
        try:
            async for event in stream:
                rev = int(event.kv.mod_revision)
                if event.kind == "DELETE":
                    if event.prev_kv is None:
                        continue
                    obj = _decode(self._root, event.prev_kv)
                    obj = type(obj)(id=obj.id, doc=obj.doc, version=rev)
                    yield Change("delete", obj, rev)
                else:
                    action: Action = "create" if int(event.kv.version) == 1 else "update"
                    yield Change(action, _decode(self._root, event.kv), rev)
        finally:
            await stream.cancel()

    async def close(self) -> None:
        await self._client.close()
