"""Swarm mode on one node, driven with the docker CLI and docker-py: dockerd's 503s outside a swarm,
`swarm init` / `node ls` / `swarm update` / `join-token --rotate` / `swarm leave --force`, the etcd member
the manager supervises (gone with `leave`, with a daemon stop and with a kill -9), and the same texts as the
reference dockerd where both targets run the same commands (`dk` against gorae and a real dockerd)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import GoraeDaemon, new_daemon, wait_for
from swarm_cluster import etcd_pids, lan

from gorae.swarm.ids import base36

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a daemon")

NOT_MANAGER = (
    'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this '
    "node to swarm and try again."
)
ID = r"[0-9a-z]{25}"
TOKEN = r"SWMTKN-1-[0-9a-z]{50}-[0-9a-z]{25}"


def _init_text(port: int) -> str:
    return (
        rf"Swarm initialized: current node \(({ID})\) is now a manager\.\n\n"
        r"To add a worker to this swarm, run the following command:\n\n"
        rf"    docker swarm join --token ({TOKEN}) 127\.0\.0\.1:{port}\n\n"
        r"To add a manager to this swarm, run 'docker swarm join-token manager' and follow the instructions\.\n"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _api(d: GoraeDaemon, method: str, path: str, body: object = None) -> tuple[int, object, dict[str, str]]:
    import http.client

    class Conn(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(d.socket)

    c = Conn("localhost")
    try:
        data = json.dumps(body).encode() if body is not None else None
        c.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        r = c.getresponse()
        raw = r.read()
        doc = (
            json.loads(raw) if raw and r.getheader("Content-Type", "").startswith("application/json") else raw
        )
        return r.status, doc, {k.lower(): v for k, v in r.getheaders()}
    finally:
        c.close()


@pytest.fixture
def swarm_daemon() -> Iterator[GoraeDaemon]:
    """A daemon of its own (swarm state is per daemon); leaves no etcd behind, pass or fail."""
    d = new_daemon(with_busybox=False)
    try:
        yield d
    finally:
        try:
            d.cleanup()
        finally:
            for pid in etcd_pids(d.data_root):
                os.kill(pid, signal.SIGKILL)
    assert etcd_pids(d.data_root) == []


def test_outside_a_swarm_every_route_answers_dockerds_503(gorae_daemon: GoraeDaemon) -> None:
    d = gorae_daemon
    for method, path in [
        ("GET", "/v1.41/swarm"),
        ("GET", "/v1.41/swarm/unlockkey"),
        ("POST", "/v1.41/swarm/update?version=1"),
        ("POST", "/v1.41/swarm/unlock"),
        ("GET", "/v1.41/nodes"),
        ("GET", "/v1.41/nodes/abc"),
        ("POST", "/v1.41/nodes/abc/update?version=1"),
        ("DELETE", "/v1.41/nodes/abc"),
        ("GET", "/v1.41/services"),
        ("GET", "/v1.41/tasks"),
        ("GET", "/v1.41/secrets"),
        ("GET", "/v1.41/configs"),
        ("POST", "/v1.41/services/create"),
    ]:
        status, doc, _ = _api(d, method, path, {} if method == "POST" else None)
        assert (status, doc) == (503, {"message": NOT_MANAGER}), (method, path)
    assert _api(d, "POST", "/v1.41/swarm/leave?force=1")[:2] == (
        503,
        {"message": "This node is not part of a swarm"},
    )
    assert _api(d, "GET", "/_ping")[2]["swarm"] == "inactive"
    info = d.docker("info", "--format", "{{json .Swarm}}").stdout
    assert json.loads(info) == {
        "NodeID": "",
        "NodeAddr": "",
        "LocalNodeState": "inactive",
        "ControlAvailable": False,
        "Error": "",
        "RemoteManagers": None,
    }
    r = d.docker("swarm", "leave", "--force", check=False)
    assert (r.returncode, r.stderr) == (1, "Error response from daemon: This node is not part of a swarm\n")
    r = d.docker("node", "ls", check=False)
    assert (r.returncode, r.stderr) == (1, f"Error response from daemon: {NOT_MANAGER}\n")
    # docker-py's tear-down: leave(force=True) on a daemon outside a swarm is not an error
    assert d.client().swarm.leave(force=True) is True


def test_single_node_swarm_with_the_docker_cli(swarm_daemon: GoraeDaemon) -> None:
    d = swarm_daemon
    port = _free_port()
    out = d.docker(
        "swarm", "init", "--advertise-addr", f"127.0.0.1:{port}", "--listen-addr", f"127.0.0.1:{port}"
    ).stdout
    m = re.fullmatch(_init_text(port), out)
    assert m, out
    node_id, worker_token = m.group(1), m.group(2)
    etcd = etcd_pids(d.data_root)
    assert len(etcd) == 1 and Path(d.data_root, "swarm", "etcd", "data").is_dir()

    # the token's CA digest is the sha256 of the cluster's root certificate, as swarmkit encodes it
    status, cluster, _ = _api(d, "GET", "/v1.41/swarm")
    assert status == 200 and isinstance(cluster, dict)
    trust_root = cluster["TLSInfo"]["TrustRoot"].encode()
    digest = base36(int(hashlib.sha256(trust_root).hexdigest(), 16), 50)
    assert worker_token.split("-")[2] == digest
    assert cluster["JoinTokens"]["Worker"] == worker_token
    assert sorted(cluster) == sorted(
        ["ID", "Version", "CreatedAt", "UpdatedAt", "Spec", "TLSInfo", "RootRotationInProgress",
         "DefaultAddrPool", "SubnetSize", "DataPathPort", "JoinTokens"]
    )  # fmt: skip
    assert cluster["Spec"]["Orchestration"] == {"TaskHistoryRetentionLimit": 5}
    assert (
        cluster["TLSInfo"]["CertIssuerSubject"] == "MBMxETAPBgNVBAMTCHN3YXJtLWNh"
    )  # CN=swarm-ca as Go writes it

    host = socket.gethostname()
    lines = d.docker("node", "ls").stdout.splitlines()
    assert lines[0].split() == [
        "ID",
        "HOSTNAME",
        "STATUS",
        "AVAILABILITY",
        "MANAGER",
        "STATUS",
        "ENGINE",
        "VERSION",
    ]
    assert lines[1].split()[:6] == [node_id, "*", host, "Ready", "Active", "Leader"]
    assert len(lines) == 2

    info = json.loads(d.docker("info", "--format", "{{json .Swarm}}").stdout)
    assert {
        k: info[k] for k in ("NodeID", "NodeAddr", "LocalNodeState", "ControlAvailable", "Nodes", "Managers")
    } == {
        "NodeID": node_id,
        "NodeAddr": "127.0.0.1",
        "LocalNodeState": "active",
        "ControlAvailable": True,
        "Nodes": 1,
        "Managers": 1,
    }
    assert info["RemoteManagers"] == [{"NodeID": node_id, "Addr": f"127.0.0.1:{port}"}]
    assert info["Cluster"]["ID"] == cluster["ID"] and "JoinTokens" not in info["Cluster"]
    assert _api(d, "HEAD", "/_ping")[2]["swarm"] == "active/manager"

    # version-checked updates: a stale version is swarmkit's "update out of sequence"
    version = cluster["Version"]["Index"]
    assert d.docker("swarm", "update", "--task-history-limit", "7").stdout == "Swarm updated.\n"
    status, doc, _ = _api(d, "POST", f"/v1.41/swarm/update?version={version}", cluster["Spec"])
    assert (status, doc) == (500, {"message": "rpc error: code = Unknown desc = update out of sequence"})
    status, doc, _ = _api(d, "POST", "/v1.41/swarm/update", cluster["Spec"])
    assert (status, doc) == (
        400,
        {"message": "invalid swarm version '': strconv.ParseUint: parsing \"\": invalid syntax"},
    )
    assert _api(d, "GET", "/v1.41/swarm")[1]["Spec"]["Orchestration"] == {"TaskHistoryRetentionLimit": 7}  # type: ignore[index]

    rotated = d.docker("swarm", "join-token", "--rotate", "worker").stdout
    assert rotated.startswith("Successfully rotated worker join token.\n")
    new_token = d.docker("swarm", "join-token", "-q", "worker").stdout.strip()
    assert re.fullmatch(TOKEN, new_token) and new_token != worker_token
    assert new_token.split("-")[2] == digest  # same CA, new secret
    r = d.docker("swarm", "unlock-key", check=False)
    assert (r.returncode, r.stderr) == (1, "no unlock key is set\n")

    # nodes: labels and availability, the manager cannot be removed
    d.docker("node", "update", "--label-add", "zone=a", "--availability", "drain", node_id)
    spec = d.docker("node", "inspect", "self", "--format", "{{json .Spec}}").stdout
    assert json.loads(spec) == {"Labels": {"zone": "a"}, "Role": "manager", "Availability": "drain"}
    assert d.docker("node", "ls", "-q", "--filter", "node.label=zone=a").stdout.split() == [node_id]
    assert d.docker("node", "ls", "-q", "--filter", "node.label=zone=b").stdout == ""
    status, node, _ = _api(d, "GET", f"/v1.41/nodes/{node_id}")
    stale = node["Version"]["Index"] - 1  # type: ignore[index]
    status, doc, _ = _api(d, "POST", f"/v1.41/nodes/{node_id}/update?version={stale}", node["Spec"])  # type: ignore[index]
    assert (status, doc) == (500, {"message": "rpc error: code = Unknown desc = update out of sequence"})
    r = d.docker("node", "rm", node_id, check=False)
    assert r.returncode == 1
    assert r.stderr == (
        f"Error response from daemon: rpc error: code = FailedPrecondition desc = node {node_id} is a cluster "
        "manager and is a member of the raft cluster. It must be demoted to worker before removal\n"
    )
    r = d.docker("node", "inspect", "nope", check=False)
    assert (r.returncode, r.stderr) == (1, "Error response from daemon: node nope not found\n")
    assert d.docker("service", "ls", "-q").stdout == ""

    r = d.docker("swarm", "leave", check=False)
    assert r.returncode == 1 and "Use `--force` to ignore this message." in r.stderr
    assert d.docker("swarm", "leave", "--force").stdout == "Node left the swarm.\n"
    assert etcd_pids(d.data_root) == []
    assert not Path(d.data_root, "swarm").exists()
    assert json.loads(d.docker("info", "--format", "{{json .Swarm}}").stdout)["LocalNodeState"] == "inactive"


def test_swarm_state_survives_restart_and_etcd_dies_with_the_daemon(swarm_daemon: GoraeDaemon) -> None:
    d = swarm_daemon
    client = d.client()
    node_id = client.swarm.init(advertise_addr="127.0.0.1", listen_addr=f"127.0.0.1:{_free_port()}")
    assert re.fullmatch(ID, node_id)
    (etcd,) = etcd_pids(d.data_root)
    d.stop()  # SIGTERM: the daemon stops its member
    assert etcd_pids(d.data_root) == []
    d.start()
    assert d.docker("node", "ls", "-q").stdout.split() == [node_id]
    (etcd2,) = etcd_pids(d.data_root)
    assert etcd2 != etcd
    d.kill9()  # no chance to clean up: the kernel takes etcd along (PR_SET_PDEATHSIG)
    wait_for(lambda: etcd_pids(d.data_root) == [], timeout=10)
    d.start()
    client = d.client()
    assert [n.id for n in client.nodes.list()] == [node_id]
    swarm = client.swarm
    swarm.reload()
    assert swarm.attrs["JoinTokens"]["Manager"] != swarm.attrs["JoinTokens"]["Worker"]
    node = client.nodes.get(node_id)
    assert node.attrs["ManagerStatus"]["Leader"] is True
    assert node.update({"Role": "manager", "Availability": "pause", "Labels": {"x": "1"}}) is True
    node.reload()
    assert node.attrs["Spec"] == {"Role": "manager", "Availability": "pause", "Labels": {"x": "1"}}
    assert swarm.leave(force=True) is True
    assert etcd_pids(d.data_root) == []


def test_init_without_etcd_says_what_to_install() -> None:
    """`swarm init` on a machine without etcd: dockerd-style error naming the package; nothing is left."""
    tag_env = {"PATH": "/usr/sbin:/sbin"}  # etcd is in /usr/bin: this daemon cannot find it
    d = new_daemon(with_busybox=False)
    try:
        d.stop()
        env_path = os.environ["PATH"]
        os.environ["PATH"] = (
            tag_env["PATH"]
            + ":"
            + ":".join(p for p in env_path.split(":") if not os.path.exists(os.path.join(p, "etcd")))
        )
        try:
            d.start()
        finally:
            os.environ["PATH"] = env_path
        r = d.docker("swarm", "init", "--advertise-addr", "127.0.0.1", check=False)
        assert r.returncode == 1
        assert r.stderr == (
            "Error response from daemon: swarm mode needs etcd (the cluster store): install it with "
            "`apt-get install etcd-server` (Debian/Ubuntu), then retry\n"
        )
        assert not Path(d.data_root, "swarm").exists()
        assert d.docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout == "inactive\n"
    finally:
        d.cleanup()


def test_init_texts_match_the_reference_dockerd(dk) -> None:  # noqa: ANN001
    """The same docker CLI commands against gorae and the real dockerd print the same texts."""
    port = _free_port()
    try:
        out = dk(
            "swarm", "init", "--advertise-addr", f"127.0.0.1:{port}", "--listen-addr", f"127.0.0.1:{port}"
        )
        assert out.returncode == 0, out.stderr
        assert re.fullmatch(_init_text(port), out.stdout), out.stdout
        again = dk("swarm", "init")
        assert (again.returncode, again.stderr) == (
            1,
            'Error response from daemon: This node is already part of a swarm. Use "docker swarm leave" to '
            "leave this swarm and join another one.\n",
        )
        lines = dk(
            "node", "ls", "--format", "{{.Self}} {{.Status}} {{.Availability}} {{.ManagerStatus}}"
        ).stdout
        assert lines == "true Ready Active Leader\n"
        r = dk("swarm", "leave")
        assert r.returncode == 1 and r.stderr == (
            "Error response from daemon: You are attempting to leave the swarm on a node that is participating "
            "as a manager. Removing the last manager erases all current state of the swarm. Use `--force` to "
            "ignore this message.\n"
        )
        jt = dk("swarm", "join-token", "manager").stdout
        assert re.fullmatch(
            rf"To add a manager to this swarm, run the following command:\n\n"
            rf"    docker swarm join --token {TOKEN} 127\.0\.0\.1:{port}\n\n",
            jt,
        ), jt
    finally:
        left = dk("swarm", "leave", "--force")
    assert (left.returncode, left.stdout) == (0, "Node left the swarm.\n")
    r = dk("node", "ls")
    assert (r.returncode, r.stderr) == (1, f"Error response from daemon: {NOT_MANAGER}\n")


def test_two_nodes_in_network_namespaces() -> None:
    """`swarm join` from a second daemon in its own netns over the manager's swarm port (TLS; the CA checked
    against the token's digest); `node ls` on the manager lists both; a bad token and a forged CA digest are
    refused; a killed worker goes Down and comes back Ready; the worker's `leave` marks it Down; nothing is
    left behind (the harness checks)."""
    with lan(2) as hosts:
        (manager, addr1), (worker, addr2) = ((h.daemon, h.addr) for h in hosts)
        out = manager.docker(
            "swarm", "init", "--advertise-addr", addr1, "--dispatcher-heartbeat", "1s"
        ).stdout
        m = re.fullmatch(_init_text(2377).replace(r"127\.0\.0\.1", re.escape(addr1)), out)
        assert m, out
        manager_id, token = m.group(1), m.group(2)

        wrong_secret = token[:-5] + ("00000" if not token.endswith("00000") else "11111")
        r = worker.docker("swarm", "join", "--token", wrong_secret, f"{addr1}:2377", check=False)
        assert (r.returncode, r.stderr) == (
            1,
            "Error response from daemon: rpc error: code = InvalidArgument desc = A valid join token is "
            "necessary to join this cluster\n",
        )
        forged = "-".join(
            token.split("-")[:2]
            + ["1kxftv4ofnc6mt30lmgipg6ngf9luhwqopfk1tz6bdmnkubg0e"]
            + token.split("-")[3:]
        )
        r = worker.docker("swarm", "join", "--token", forged, f"{addr1}:2377", check=False)
        assert r.returncode == 1
        assert r.stderr.startswith(
            "Error response from daemon: remote CA does not match fingerprint. Expected: "
        )
        assert not Path(worker.data_root, "swarm").exists()

        out = worker.docker("swarm", "join", "--token", token, f"{addr1}:2377").stdout
        assert out == "This node joined a swarm as a worker.\n"
        worker_id = json.loads(worker.docker("info", "--format", "{{json .Swarm}}").stdout)["NodeID"]
        info = json.loads(worker.docker("info", "--format", "{{json .Swarm}}").stdout)
        assert info == {
            "NodeID": worker_id,
            "NodeAddr": addr2,
            "LocalNodeState": "active",
            "ControlAvailable": False,
            "Error": "",
            "RemoteManagers": [{"NodeID": manager_id, "Addr": f"{addr1}:2377"}],
        }
        assert _api(worker, "HEAD", "/_ping")[2]["swarm"] == "active/worker"
        r = worker.docker("node", "ls", check=False)
        assert r.returncode == 1 and "Worker nodes can't be used to view or modify cluster state." in r.stderr

        rows = manager.docker(
            "node", "ls", "--format", "{{.ID}} {{.Status}} {{.ManagerStatus}} {{.Self}}"
        ).stdout
        assert sorted(rows.splitlines()) == sorted(
            [f"{manager_id} Ready Leader true", f"{worker_id} Ready  false"]
        )
        node = manager.client().nodes.get(worker_id)
        assert node.attrs["Status"] == {"State": "ready", "Addr": addr2}
        assert node.attrs["Spec"] == {"Labels": {}, "Role": "worker", "Availability": "active"}
        assert json.loads(manager.docker("info", "--format", "{{json .Swarm}}").stdout)["Nodes"] == 2

        # heartbeats: a worker whose daemon is killed is Down after 3 missed periods, Ready when it is back
        def status() -> str:
            return manager.docker(
                "node", "inspect", worker_id, "--format", "{{.Status.State}}"
            ).stdout.strip()

        worker.kill9()
        wait_for(lambda: status() == "down", timeout=20)
        worker.start()
        wait_for(lambda: status() == "ready", timeout=20)

        assert worker.docker("swarm", "leave").stdout == "Node left the swarm.\n"
        assert not Path(worker.data_root, "swarm").exists()
        rows = manager.docker("node", "ls", "--format", "{{.ID}} {{.Status}}").stdout
        assert f"{worker_id} Down" in rows.splitlines()
        manager.docker("node", "rm", worker_id)
        assert manager.docker("node", "ls", "-q").stdout.split() == [manager_id]
        assert manager.docker("swarm", "leave", "--force").stdout == "Node left the swarm.\n"
