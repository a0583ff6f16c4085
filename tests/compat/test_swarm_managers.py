"""Several managers (issue 10): managers join with the manager token (their etcd members join the cluster),
one leader elected through etcd, a kill -9 of the leader's daemon gives a new leader within seconds with no
node or cluster object lost, losing quorum answers dockerd's "no leader" 503 and changes nothing, workers
fail over to another manager; token rotation, a forged certificate, promote/demote, a manager's leave,
certificate renewal. Driven with the docker CLI and docker-py over the multi-node harness (swarm_cluster)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import SRC, wait_for
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID
from swarm_cluster import Host, etcd_pids, init, join, lan, leader_of

from gorae.swarm.ca.authority import MANAGER_ROLE, RootCA, key_pem, new_key

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run daemons in namespaces")

NO_LEADER = (
    "rpc error: code = Unknown desc = The swarm does not have a leader. It's possible that too few managers "
    "are online. Make sure more than half of the managers are online."
)


def _rows(host: Host, check: bool = True) -> dict[str, tuple[str, str]]:
    """node ls on `host`: node ID -> (status, manager status); without `check`, {} when it fails (a wait
    across a leader change)."""
    r = host.docker(
        "node", "ls", "--format", "{{.ID}}|{{.Status}}|{{.ManagerStatus}}", timeout=20, check=check
    )
    return {i: (s, m) for i, s, m in (line.split("|") for line in r.stdout.splitlines())}


def _swarm_call(host: Host, op: dict[str, object], cert: bytes, key: bytes, ca: bytes) -> dict[str, object]:
    """One swarm-port request from inside `host`'s namespace with the given client certificate; answers
    {"ok": answer} or {"error": message, "status": code}."""
    script = textwrap.dedent(
        """
        import asyncio, json, sys
        from gorae.errors import GoraeError
        from gorae.swarm.remote import call, client_context
        a = json.loads(sys.stdin.read())
        ctx = client_context(a["ca"].encode(), a["cert"].encode(), a["key"].encode())
        try:
            out = {"ok": asyncio.run(call(a["addr"], ctx, a["op"], "swarm-manager"))}
        except GoraeError as e:
            out = {"error": e.message, "status": e.status}
        print(json.dumps(out))
        """
    )
    args = {
        "ca": ca.decode(),
        "cert": cert.decode(),
        "key": key.decode(),
        "addr": f"{host.addr}:2377",
        "op": op,
    }
    r = subprocess.run(
        ["ip", "netns", "exec", host.ns, sys.executable, "-c", script],
        input=json.dumps(args),
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC},
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def test_three_managers_two_workers_leader_failover_and_quorum_loss() -> None:
    with lan(5) as hosts:
        m0, m1, m2, w0, w1 = hosts
        leader_id, tokens = init(m0)
        # two managers join at once (etcd takes one learner at a time: the second waits for the first)
        with ThreadPoolExecutor(2) as pool:
            outs = list(
                pool.map(
                    lambda h: h.docker(
                        "swarm", "join", "--token", tokens["manager"], f"{m0.addr}:2377", timeout=120
                    ),
                    (m1, m2),
                )
            )
        assert [o.stdout for o in outs] == ["This node joined a swarm as a manager.\n"] * 2
        ids = {h.addr: h.node_id for h in (m0, m1, m2)}
        out = w0.docker("swarm", "join", "--token", tokens["worker"], f"{m0.addr}:2377").stdout
        assert out == "This node joined a swarm as a worker.\n"
        join(w1, m2, tokens["worker"])  # through a manager that joined: any manager admits
        worker_ids = [w0.node_id, w1.node_id]

        # every manager sees the same five nodes, one leader, the other managers reachable
        for m in (m0, m1, m2):
            assert m.swarm_info()["ControlAvailable"] is True
            rows = wait_for(
                lambda m=m: (
                    r
                    if len(r := _rows(m, False)) == 5 and all(r[i][0] == "Ready" for i in ids.values())
                    else None
                )
            )
            assert rows[leader_id] == ("Ready", "Leader")
            assert rows[ids[m1.addr]] == ("Ready", "Reachable") and rows[ids[m2.addr]] == (
                "Ready",
                "Reachable",
            )
            assert all(rows[w] == ("Ready", "") for w in worker_ids)
        node = m2.client().nodes.get(ids[m1.addr])
        assert node.attrs["ManagerStatus"] == {"Reachability": "reachable", "Addr": f"{m1.addr}:2377"}
        assert node.attrs["Spec"]["Role"] == "manager"
        assert m1.client().nodes.get(leader_id).attrs["ManagerStatus"] == {
            "Leader": True,
            "Reachability": "reachable",
            "Addr": f"{m0.addr}:2377",
        }
        info = m2.swarm_info()
        assert (info["Nodes"], info["Managers"]) == (5, 3)
        assert sorted(r["Addr"] for r in info["RemoteManagers"]) == sorted(
            f"{h.addr}:2377" for h in (m0, m1, m2)
        )
        # a worker knows every manager (the join and heartbeat answers carry them)
        assert sorted(r["NodeID"] for r in w1.swarm_info()["RemoteManagers"]) == sorted(ids.values())
        assert all(len(etcd_pids(h.daemon.data_root)) == 1 for h in (m0, m1, m2))
        assert all(etcd_pids(h.daemon.data_root) == [] for h in (w0, w1))
        swarm = m1.client().swarm
        swarm.reload()
        cluster_before = swarm.attrs

        # kill -9 the leader's daemon: a new leader among the other two within seconds, nothing lost
        m0.kill9()
        start = time.monotonic()
        new_leader = wait_for(lambda: x if (x := leader_of(m1)) not in ("", leader_id) else None, timeout=15)
        elected = time.monotonic() - start
        assert new_leader in (ids[m1.addr], ids[m2.addr])
        assert elected < 10, elected
        assert wait_for(lambda: leader_of(m2) == new_leader, timeout=5)
        wait_for(lambda: _rows(m1, False).get(leader_id) == ("Down", "Unreachable"), timeout=10)
        rows = _rows(m2)
        assert set(rows) == {leader_id, *ids.values(), *worker_ids}
        swarm = m2.client().swarm
        swarm.reload()
        assert swarm.attrs["ID"] == cluster_before["ID"] and swarm.attrs["Spec"] == cluster_before["Spec"]
        # API writes work again
        assert m1.docker("swarm", "update", "--task-history-limit", "9").stdout == "Swarm updated.\n"
        m2.docker("node", "update", "--label-add", "zone=b", worker_ids[0])
        assert json.loads(
            m1.docker("node", "inspect", worker_ids[0], "--format", "{{json .Spec.Labels}}").stdout
        ) == {"zone": "b"}
        # the workers keep heartbeating through the managers left (w0's own manager is gone): still Ready
        # after more than 3 heartbeat periods
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            rows = _rows(m1)
            assert all(rows[w][0] == "Ready" for w in worker_ids), rows
        assert w0.swarm_info()["RemoteManagers"]

        # a second manager gone: no quorum; the survivor answers dockerd's no-leader 503 and changes nothing
        survivor, victim = (m1, m2) if new_leader == ids[m2.addr] else (m2, m1)
        victim.kill9()
        r = wait_for(
            lambda: x if (x := survivor.docker("node", "ls", check=False, timeout=30)).returncode else None,
            timeout=20,
        )
        assert r.stderr == f"Error response from daemon: {NO_LEADER}\n"
        r = survivor.docker("swarm", "update", "--task-history-limit", "3", check=False, timeout=30)
        assert (r.returncode, r.stderr) == (1, f"Error response from daemon: {NO_LEADER}\n")
        assert (
            json.loads(survivor.docker("info", "--format", "{{json .Swarm.ControlAvailable}}").stdout) is True
        )

        # both come back: quorum again, a leader, every object as it was (the refused write never landed)
        victim.start()
        m0.start()
        wait_for(lambda: leader_of(survivor) != "", timeout=30)
        for m in (m0, m1, m2):
            rows = wait_for(
                lambda m=m: (
                    r
                    if all(
                        (r := _rows(m, False)).get(i, ("", ""))[1] in ("Leader", "Reachable")
                        for i in ids.values()
                    )
                    else None
                ),
                timeout=30,
            )
            assert set(rows) == {*ids.values(), *worker_ids}
        spec = json.loads(m0.docker("info", "--format", "{{json .Swarm.Cluster.Spec}}").stdout)
        assert spec["Orchestration"] == {"TaskHistoryRetentionLimit": 9}
        assert sum(1 for v in _rows(m0).values() if v[1] == "Leader") == 1


def _certs(host: Host) -> tuple[bytes, bytes, bytes]:
    """(CA, node certificate, node key) of `host`'s swarm identity."""
    d = Path(host.daemon.data_root, "swarm", "certificates")
    return tuple((d / n).read_bytes() for n in ("swarm-root-ca.crt", "swarm-node.crt", "swarm-node.key"))  # type: ignore[return-value]


def _role(host: Host) -> str:
    cert = x509.load_pem_x509_certificate(_certs(host)[1])
    return str(cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value)


def test_tokens_forged_certificate_promote_demote_leave_and_renewal() -> None:
    with lan(4) as hosts:
        m0, m1, w0, late = hosts
        m0_id, tokens = init(m0)
        m1_id = join(m1, m0, tokens["manager"])
        w0_id = join(w0, m1, tokens["worker"])
        assert _role(m1) == "swarm-manager" and _role(w0) == "swarm-worker"

        # rotate the manager token: the old one is refused, the new one admits a manager
        out = m1.docker("swarm", "join-token", "--rotate", "-q", "manager").stdout.strip()
        assert out != tokens["manager"]
        r = late.docker("swarm", "join", "--token", tokens["manager"], f"{m0.addr}:2377", check=False)
        assert (r.returncode, r.stderr) == (
            1,
            "Error response from daemon: rpc error: code = InvalidArgument desc = A valid join token is "
            "necessary to join this cluster\n",
        )
        assert not Path(late.daemon.data_root, "swarm").exists()

        # a certificate of another CA (same subject shape, a real node's ID) is refused at the handshake
        ca_pem, cert, key = _certs(w0)
        forger = RootCA.create()
        forged_key = new_key()
        forged = forger.issue(
            forged_key.public_key(),
            w0_id,
            MANAGER_ROLE,
            json.loads(m0.docker("info", "--format", "{{json .Swarm.Cluster.ID}}").stdout),
        )
        answer = _swarm_call(m0, {"op": "heartbeat"}, forged, key_pem(forged_key), ca_pem)
        assert "ok" not in answer and answer["status"] == 503, answer  # the TLS handshake fails
        # the genuine one works (the renewal op: a new certificate with the cluster's expiry)
        m0.docker("swarm", "update", "--cert-expiry", "2h")
        fresh = new_key()
        answer = _swarm_call(
            m0,
            {
                "op": "renew",
                "public_key": fresh.public_key()
                .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
                .decode(),
            },
            cert,
            key,
            ca_pem,
        )
        renewed = x509.load_pem_x509_certificate(str(answer["ok"]["cert"]).encode())  # type: ignore[index]
        assert renewed.not_valid_after_utc - renewed.not_valid_before_utc == dt.timedelta(
            hours=3
        )  # 1 h back-dated
        assert renewed.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == w0_id
        r = m0.docker("swarm", "update", "--cert-expiry", "30m", check=False)
        assert (r.returncode, r.stderr) == (
            1,
            "Error response from daemon: rpc error: code = InvalidArgument desc = minimum certificate expiry "
            "time is: 1h0m0s\n",
        )

        # a manager's leave: refused without --force (dockerd's texts), here with the quorum arithmetic
        r = m1.docker("swarm", "leave", check=False)
        assert (r.returncode, r.stderr) == (
            1,
            "Error response from daemon: You are attempting to leave the swarm on a node that is participating "
            "as a manager. Removing this node leaves 1 managers out of 2. Without a Raft quorum your swarm will "
            "be inaccessible. The only way to restore a swarm that has lost consensus is to reinitialize it with "
            "`--force-new-cluster`. Use `--force` to suppress this message.\n",
        )
        r = m0.docker("node", "rm", "--force", m1_id, check=False)
        assert (r.returncode, r.stderr) == (
            1,
            f"Error response from daemon: rpc error: code = FailedPrecondition desc = node {m1_id} is a cluster "
            "manager and is a member of the raft cluster. It must be demoted to worker before removal\n",
        )

        # promote the worker: it gets a manager certificate and an etcd member, and serves the API
        assert (
            m0.docker("node", "promote", w0_id).stdout
            == f"Node {w0_id} promoted to a manager in the swarm.\n"
        )
        wait_for(lambda: w0.swarm_info()["ControlAvailable"] is True, timeout=30)
        assert _role(w0) == "swarm-manager" and len(etcd_pids(w0.daemon.data_root)) == 1
        rows = wait_for(
            lambda: r if (r := _rows(m1, False)).get(w0_id) == ("Ready", "Reachable") else None, timeout=15
        )
        assert sorted(v[1] for v in rows.values()) == ["Leader", "Reachable", "Reachable"]
        assert w0.swarm_info()["Managers"] == 3

        # demote the first manager (the leader): another leads, it becomes a worker, its member is gone
        assert m1.docker("node", "demote", m0_id).stdout == f"Manager {m0_id} demoted in the swarm.\n"
        wait_for(lambda: m0.swarm_info()["ControlAvailable"] is False, timeout=30)
        assert etcd_pids(m0.daemon.data_root) == [] and _role(m0) == "swarm-worker"
        assert not Path(m0.daemon.data_root, "swarm", "certificates", "swarm-root-ca.key").exists()
        wait_for(lambda: leader_of(m1) in (m1_id, w0_id), timeout=15)
        wait_for(
            lambda: (
                (r := _rows(w0, False)).get(m0_id) == ("Ready", "")
                and sorted(v[1] for v in r.values()) == ["", "Leader", "Reachable"]
            ),
            timeout=15,
        )
        r = m0.docker("node", "ls", check=False)
        assert r.returncode == 1 and "Worker nodes can't be used to view or modify cluster state." in r.stderr
        wait_for(  # the heartbeat answers carry the managers' list
            lambda: sorted(x["NodeID"] for x in m0.swarm_info()["RemoteManagers"]) == sorted([m1_id, w0_id]),
            timeout=10,
        )

        # the new manager token admits a manager
        new_id = join(late, m1, out)
        assert late.swarm_info()["Managers"] == 3
        wait_for(
            lambda: (
                sorted(v[1] for v in _rows(m1, False).values()) == ["", "Leader", "Reachable", "Reachable"]
            )
        )
        # a manager down: demoting another would lose the quorum (swarmkit's safeguard); demoting the down one
        # is fine (the leader removes its etcd member), and when it comes back it goes on as a worker
        late.kill9()
        wait_for(lambda: _rows(m1, False).get(new_id, ("", ""))[1] == "Unreachable", timeout=15)
        r = m1.docker("node", "demote", w0_id, check=False)
        assert (r.returncode, r.stderr) == (
            1,
            "Error response from daemon: rpc error: code = FailedPrecondition desc = can't remove member from "
            "the raft: this would result in a loss of quorum\n",
        )
        m1.docker("node", "demote", new_id)
        wait_for(lambda: _rows(m1, False).get(new_id) == ("Down", ""), timeout=15)
        late.start()
        wait_for(lambda: late.swarm_info()["ControlAvailable"] is False, timeout=60)
        assert etcd_pids(late.daemon.data_root) == [] and _role(late) == "swarm-worker"
        wait_for(lambda: _rows(m1, False).get(new_id) == ("Ready", ""), timeout=15)
        assert late.docker("swarm", "leave").stdout == "Node left the swarm.\n"
        wait_for(lambda: _rows(m1, False).get(new_id, ("", ""))[0] == "Down", timeout=15)
        m1.docker("node", "rm", new_id)

        # a forced leave of a manager removes its etcd member first: the one left keeps its quorum
        assert w0.docker("swarm", "leave", "--force").stdout == "Node left the swarm.\n"
        assert etcd_pids(w0.daemon.data_root) == []
        wait_for(lambda: _rows(m1, check=False).get(w0_id) == ("Down", "Unreachable"), timeout=15)
        assert m1.docker("swarm", "update", "--task-history-limit", "4").stdout == "Swarm updated.\n"
        m1.docker("node", "demote", w0_id)
        m1.docker("node", "rm", w0_id)
        assert set(_rows(m1)) == {m1_id, m0_id}

        # a removed node's certificate is refused from then on
        ca_pem, cert, key = _certs(m0)
        m1.docker("node", "rm", "--force", m0_id)
        answer = _swarm_call(m1, {"op": "heartbeat"}, cert, key, ca_pem)
        assert answer == {"error": f"node {m0_id} was removed from the swarm", "status": 403}
