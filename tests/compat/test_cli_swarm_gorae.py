"""The gorae CLI's swarm commands against a gorae daemon in swarm mode, beside the docker CLI against the same
daemon: `swarm init` prints docker's join command, and `join-token`, `node ls/inspect/update`, `swarm update`,
the object lists and `swarm leave` print exactly what the docker CLI prints (whatever the daemon answers)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
from conftest import SRC, GoraeDaemon, new_daemon
from swarm_cluster import etcd_pids as _etcd_pids
from swarm_peer import free_port, normalise

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a daemon")


@pytest.fixture
def gd() -> Iterator[GoraeDaemon]:
    d = new_daemon(with_busybox=False)
    try:
        yield d
    finally:
        try:
            d.cleanup()
        finally:
            for pid in _etcd_pids(d.data_root):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def gorae(d: GoraeDaemon, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(d.env, PYTHONPATH=SRC)
    return subprocess.run(
        [sys.executable, "-m", "gorae.cli.main", *args], env=env, capture_output=True, text=True, timeout=120
    )


def same(d: GoraeDaemon, *args: str) -> tuple[int, str, str]:
    r = d.docker(*args, check=False)
    g = gorae(d, *args)
    want = (r.returncode, normalise(r.stdout), normalise(r.stderr))
    got = (
        g.returncode,
        normalise(g.stdout.replace("gorae", "docker")),
        normalise(g.stderr.replace("gorae", "docker")),
    )
    assert got == want, f"{args}: gorae {got!r} != docker {want!r}"
    return want


def test_gorae_cli_drives_a_gorae_swarm_as_the_docker_cli_does(gd: GoraeDaemon) -> None:
    d = gd
    # outside a swarm: the daemon's 503s, printed alike
    for args in (
        ("node", "ls"),
        ("swarm", "leave", "--force"),
        ("swarm", "join-token", "worker"),
        ("service", "ls"),
    ):
        assert same(d, *args)[0] == 1, args
    port = free_port()
    r = gorae(
        d, "swarm", "init", "--advertise-addr", f"127.0.0.1:{port}", "--listen-addr", f"127.0.0.1:{port}"
    )
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(
        r"Swarm initialized: current node \([0-9a-z]{25}\) is now a manager\.\n\n"
        r"To add a worker to this swarm, run the following command:\n\n"
        rf"    docker swarm join --token SWMTKN-1-[0-9a-z]{{50}}-[0-9a-z]{{25}} 127\.0\.0\.1:{port}\n\n"
        r"To add a manager to this swarm, run 'docker swarm join-token manager' and follow the instructions\.\n",
        r.stdout,
    ), r.stdout
    node_id = re.search(r"\(([0-9a-z]{25})\)", r.stdout).group(1)  # type: ignore[union-attr]
    assert same(d, "swarm", "init")[0] == 1
    for args in (
        ("swarm", "join-token", "worker"),
        ("swarm", "join-token", "manager"),
        ("swarm", "join-token", "-q", "worker"),
        ("swarm", "join-token", "--rotate", "worker"),
        ("swarm", "join-token", "--rotate", "-q", "manager"),
        ("node", "ls"),
        ("node", "ls", "-q"),
        ("node", "ls", "--format", "json"),
        ("node", "inspect", "self"),
        ("node", "inspect", "--pretty", "self"),
        ("node", "update", "--label-add", "zone=a", node_id),
        ("node", "inspect", "--format", "{{json .Spec.Labels}}", node_id),
        ("node", "promote", node_id),
        ("swarm", "update", "--task-history-limit", "7"),
        ("swarm", "ca"),
    ):
        assert same(d, *args)[0] == 0, args
    out = same(d, "node", "ls")[1].splitlines()
    assert out[0].split()[:4] == ["ID", "HOSTNAME", "STATUS", "AVAILABILITY"] and " * " in out[1]
    assert gorae(d, "node", "inspect", "--format", "{{.Spec.Labels.zone}}", "self").stdout == "a\n"
    # what the other parts of swarm mode answer (services, secrets, configs), both CLIs print alike
    for args in (
        ("service", "ls"),
        ("service", "ps", "nosuch"),
        ("secret", "ls"),
        ("config", "ls"),
        ("node", "ps"),
        ("swarm", "join-token", "foo"),
        ("swarm", "unlock-key"),
        ("swarm", "leave"),
    ):
        same(d, *args)
    r = gorae(d, "swarm", "leave", "--force")
    assert (r.returncode, r.stdout, r.stderr) == (0, "Node left the swarm.\n", "")
    assert same(d, "node", "ls")[0] == 1
