"""How managers coordinate through etcd, beside the cluster store's objects: presence, the leader election,
worker heartbeats seen by any manager, and the etcd membership (`Coordinator`).

Keys (outside the store's `/gorae/swarm/` objects, so store watchers never see them):
  `/gorae/coord/managers/<node ID>`   on the manager's lease: it is reachable while the key exists
  `/gorae/coord/leader`               the leader's node ID, on its lease; created only when absent (a
                                      transaction on create_revision 0), so there is exactly one leader
  `/gorae/coord/heartbeats/<node ID>` written by whichever manager a worker's heartbeat reached; the leader
                                      watches their revisions to see a worker alive
A manager keeps its lease alive every `LEASE_TTL / 4`; when its daemon dies, the lease expires within
`LEASE_TTL` (plus one etcd election when the etcd leader died with it: etcd extends leases on a leader
change) and the next manager's campaign wins.

Membership: a new manager's etcd member is added as a learner (it does not count for quorum until it has
caught up, so a joiner that never starts cannot wedge the cluster), then promoted to a voter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# the store module first: it loads grpc (with the process settings it needs) before anything else does
from gorae.errors import Unavailable
from gorae.swarm.store.etcd import store_error

# isort: split
from aetcd import rpc

ROOT = b"/gorae/coord/"
MANAGERS = ROOT + b"managers/"
LEADER = ROOT + b"leader"
HEARTBEATS = ROOT + b"heartbeats/"
LEASE_TTL = 2  # seconds (etcd's minimum with its default 1 s election timeout is 1.5 s)
RPC_TIMEOUT = 1.5


def _end(prefix: bytes) -> bytes:
    return prefix[:-1] + bytes([prefix[-1] + 1])


@dataclass(frozen=True)
class Member:
    id: int
    name: str
    peer_urls: tuple[str, ...]
    learner: bool


class Coordinator:
    """This manager's coordination calls over its etcd client (`EtcdStore.client`)."""

    def __init__(self, client: Any, node_id: str) -> None:  # an aetcd.Client
        self._c = client
        self.node_id = node_id
        self.lease = 0
        self.leader_lease = 0  # the lease the leader key hangs on, as the last campaign saw it

    async def _call(self, stub: str, method: str, request: Any) -> Any:
        await self._c.connect()
        try:
            return await getattr(getattr(self._c, stub), method)(request, timeout=RPC_TIMEOUT)
        except rpc.AioRpcError as e:
            raise store_error(e) from e

    # -- presence and election ---------------------------------------------------------------

    async def grant(self) -> None:
        """A new lease for this manager and its presence key on it."""
        resp = await self._call("leasestub", "LeaseGrant", rpc.LeaseGrantRequest(TTL=LEASE_TTL, ID=0))
        self.lease = int(resp.ID)
        put = rpc.PutRequest(key=MANAGERS + self.node_id.encode(), value=b"", lease=self.lease)
        await self._call("kvstub", "Put", put)

    async def keepalive(self) -> bool:
        """Refresh the lease; False when it has expired (a new one must be granted)."""
        if not self.lease:
            return False
        await self._c.connect()
        try:
            async for reply in self._c.leasestub.LeaseKeepAlive(
                [rpc.LeaseKeepAliveRequest(ID=self.lease)], timeout=RPC_TIMEOUT
            ):
                if int(reply.TTL) <= 0:
                    self.lease = 0
                    return False
                return True
        except rpc.AioRpcError as e:
            raise store_error(e) from e
        return False

    async def campaign(self) -> str:
        """Take the leader key if nobody holds it; answers the leader's node ID ("" if none)."""
        if not self.lease:
            return await self.leader()
        txn = rpc.TxnRequest(
            compare=[
                rpc.Compare(
                    result=rpc.Compare.EQUAL, target=rpc.Compare.CREATE, key=LEADER, create_revision=0
                )
            ],
            success=[
                rpc.RequestOp(
                    request_put=rpc.PutRequest(key=LEADER, value=self.node_id.encode(), lease=self.lease)
                )
            ],
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=LEADER))],
        )
        resp = await self._call("kvstub", "Txn", txn)
        if resp.succeeded:
            self.leader_lease = self.lease
            return self.node_id
        kvs = resp.responses[0].response_range.kvs
        if not kvs:
            return ""
        holder = bytes(kvs[0].value).decode()
        self.leader_lease = int(kvs[0].lease)
        if holder == self.node_id and int(kvs[0].lease) != self.lease:
            # this node's key from before its daemon restarted (that daemon is gone): take it over
            takeover = rpc.TxnRequest(
                compare=[
                    rpc.Compare(
                        result=rpc.Compare.EQUAL, target=rpc.Compare.MOD, key=LEADER,
                        mod_revision=int(kvs[0].mod_revision),
                    )
                ],
                success=[
                    rpc.RequestOp(
                        request_put=rpc.PutRequest(key=LEADER, value=self.node_id.encode(), lease=self.lease)
                    )
                ],
            )  # fmt: skip
            if (await self._call("kvstub", "Txn", takeover)).succeeded:
                self.leader_lease = self.lease
                return self.node_id
            return ""
        return holder

    async def depose(self, lease: int) -> None:
        """Revoke a dead leader's lease (its key and presence go at once, the next campaign wins)."""
        if lease and lease != self.lease:
            await self._revoke(lease)

    async def leader(self) -> str:
        resp = await self._call("kvstub", "Range", rpc.RangeRequest(key=LEADER))
        return bytes(resp.kvs[0].value).decode() if resp.kvs else ""

    async def present(self) -> set[str]:
        """The managers whose lease is alive."""
        resp = await self._call("kvstub", "Range", rpc.RangeRequest(key=MANAGERS, range_end=_end(MANAGERS)))
        return {bytes(kv.key)[len(MANAGERS) :].decode() for kv in resp.kvs}

    async def resign(self) -> None:
        """Give up the lease (presence and, if held, leadership go with it)."""
        lease, self.lease = self.lease, 0
        if lease:
            await self._revoke(lease)

    async def _revoke(self, lease: int) -> None:
        try:
            await self._call("leasestub", "LeaseRevoke", rpc.LeaseRevokeRequest(ID=lease))
        except Unavailable as e:
            if "lease not found" not in e.message:  # expired or revoked already: gone either way
                raise

    # -- worker heartbeats -------------------------------------------------------------------

    async def beat(self, node_id: str) -> None:
        await self._call("kvstub", "Put", rpc.PutRequest(key=HEARTBEATS + node_id.encode(), value=b""))

    async def beats(self) -> dict[str, int]:
        """Node ID -> the revision of its last heartbeat (it moves while the worker beats)."""
        resp = await self._call(
            "kvstub", "Range", rpc.RangeRequest(key=HEARTBEATS, range_end=_end(HEARTBEATS))
        )
        return {bytes(kv.key)[len(HEARTBEATS) :].decode(): int(kv.mod_revision) for kv in resp.kvs}

    async def forget(self, node_id: str) -> None:
        await self._call("kvstub", "DeleteRange", rpc.DeleteRangeRequest(key=HEARTBEATS + node_id.encode()))

    # -- etcd membership ---------------------------------------------------------------------

    async def members(self) -> list[Member]:
        resp = await self._call("clusterstub", "MemberList", rpc.MemberListRequest())
        return [Member(int(m.ID), str(m.name), tuple(m.peerURLs), bool(m.isLearner)) for m in resp.members]

    async def add_learner(self, peer_url: str) -> int:
        resp = await self._call(
            "clusterstub", "MemberAdd", rpc.MemberAddRequest(peerURLs=[peer_url], isLearner=True)
        )
        return int(resp.member.ID)

    async def promote(self, member_id: int) -> None:
        await self._call("clusterstub", "MemberPromote", rpc.MemberPromoteRequest(ID=member_id))

    async def remove(self, member_id: int) -> None:
        await self._call("clusterstub", "MemberRemove", rpc.MemberRemoveRequest(ID=member_id))


def initial_cluster(members: list[Member], new_id: int, new_name: str) -> str:
    """etcd's --initial-cluster for a member just added (as `etcdctl member add` prints it)."""
    parts = []
    for m in members:
        name = new_name if m.id == new_id else m.name
        parts += [f"{name}={url}" for url in m.peer_urls]
    return ",".join(parts)
