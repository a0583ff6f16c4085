"""`docker swarm init --force-new-cluster`: a swarm of 3 managers that lost two of them (no quorum: dockerd's
"The swarm does not have a leader" on every request) goes on from the last manager's data, as dockerd's does —
the same swarm (cluster and node IDs, services, secrets), a leader again, writes accepted, the lost managers
shown down."""

from __future__ import annotations

import os

import pytest
from conftest import wait_for
from swarm_cluster import Host, init, join, lan, leader_of

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a daemon")

NO_LEADER = (
    "Error response from daemon: rpc error: code = Unknown desc = The swarm does not have a leader. It's possible "
    "that too few managers are online. Make sure more than half of the managers are online.\n"
)


def _states(host: Host) -> dict[str, str]:
    rows = host.docker("node", "ls", "--format", "{{.ID}} {{.Status}}").stdout.split("\n")
    return dict(r.split(" ", 1) for r in rows if r)


def test_force_new_cluster_recovers_a_swarm_that_lost_its_quorum() -> None:
    with lan(3) as hosts:
        m0, m1, m2 = hosts
        node_id, tokens = init(m0)
        cluster_id = m0.swarm_info()["Cluster"]["ID"]
        ids = [node_id, join(m1, m0, tokens["manager"]), join(m2, m0, tokens["manager"])]
        m0.docker("service", "create", "-d", "--name", "kept", "--replicas", "0", "busybox", "true")
        wait_for(lambda: leader_of(m0) != "", timeout=30)
        m1.kill9()
        m2.kill9()
        r = wait_for(lambda: (x := m0.docker("node", "ls", check=False)).returncode != 0 and x, timeout=60)
        assert (r.returncode, r.stderr) == (1, NO_LEADER)
        r = m0.docker("swarm", "init", "--force-new-cluster", timeout=120)
        assert r.stdout.startswith(f"Swarm initialized: current node ({node_id}) is now a manager.\n"), r.stdout
        info = m0.swarm_info()
        assert (info["NodeID"], info["Cluster"]["ID"], info["ControlAvailable"]) == (node_id, cluster_id, True)
        assert m0.docker("service", "ls", "--format", "{{.Name}} {{.Replicas}}").stdout == "kept 0/0\n"
        wait_for(lambda: _states(m0) == {ids[0]: "Ready", ids[1]: "Down", ids[2]: "Down"}, timeout=60)
        assert leader_of(m0) == node_id
        m0.docker("service", "create", "-d", "--name", "new", "--replicas", "0", "busybox", "true")
        assert m0.docker("service", "ls", "--format", "{{.Name}}").stdout == "kept\nnew\n"
        # in a swarm without --force-new-cluster: dockerd's refusal
        r = m0.docker("swarm", "init", check=False)
        assert r.returncode == 1 and "This node is already part of a swarm." in r.stderr, r.stderr
