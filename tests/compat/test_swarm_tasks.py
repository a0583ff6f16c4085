"""Swarm tasks on the nodes, against real daemons and the docker CLI: services' tasks run as ordinary
containers with Docker's names, labels, states and messages (the dispatcher and agent under the orchestrator
and scheduler); secrets (sealed in the store, a tmpfs file in the container), `docker secret`/`docker config`,
`service logs` through the nodes' agents, healthchecks, removal, leave, re-adoption after a kill -9 of the
daemon (no duplicate container), a worker in its own network namespace."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import GoraeDaemon, import_busybox, new_daemon, wait_for
from swarm_cluster import etcd_pids as _etcd_pids
from swarm_cluster import init, join, lan

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a daemon")


@pytest.fixture
def manager() -> Iterator[GoraeDaemon]:
    """A one-node swarm (busybox imported); nothing left behind, pass or fail."""
    d = new_daemon()
    try:
        d.docker("swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", "127.0.0.1:0")
        yield d
    finally:
        try:
            d.cleanup()
        finally:
            for pid in _etcd_pids(d.data_root):
                os.kill(pid, signal.SIGKILL)


def node_id(d: GoraeDaemon) -> str:
    return str(json.loads(d.docker("info", "--format", "{{json .Swarm}}").stdout)["NodeID"])


def containers(d: GoraeDaemon) -> list[str]:
    return d.docker("ps", "-a", "--format", "{{.Names}}").stdout.split()


def service_tasks(d: GoraeDaemon, service: str) -> list[dict[str, Any]]:
    ids = d.docker("service", "ps", "-q", "--no-trunc", service).stdout.split()
    return json.loads(d.docker("inspect", "--type", "task", *ids).stdout) if ids else []  # type: ignore[no-any-return]


def running_tasks(d: GoraeDaemon, service: str) -> list[dict[str, Any]]:
    return [t for t in service_tasks(d, service) if t["Status"]["State"] == "running" and t["DesiredState"] == "running"]


def test_a_service_runs_as_containers_with_its_secret_logs_and_goes(manager: GoraeDaemon) -> None:
    d = manager
    me = node_id(d)
    d.docker("secret", "create", "s", "-", input="top secret\n")
    d.docker(
        "service", "create", "--detach", "--name", "web", "--replicas", "2",
        "--secret", "source=s,target=s1,uid=5,mode=0400", "--env", "A=1", "--container-label", "mine=yes",
        "busybox", "sh", "-c", "echo out; echo err >&2; exec sleep 1d",
    )  # fmt: skip
    service_id = d.docker("service", "inspect", "-f", "{{.ID}}", "web").stdout.strip()
    wait_for(lambda: len(running_tasks(d, "web")) == 2, timeout=60)
    for task in running_tasks(d, "web"):
        tid, status = task["ID"], task["Status"]
        assert (status["Message"], status["PortStatus"]) == ("started", {})
        assert status["ContainerStatus"]["PID"] > 0 and status["ContainerStatus"]["ExitCode"] == 0
        name = f"web.{task['Slot']}.{tid}"
        ct = json.loads(d.docker("inspect", name).stdout)[0]
        assert ct["Id"] == status["ContainerStatus"]["ContainerID"]
        assert ct["Config"]["Labels"] == {
            "mine": "yes",
            "com.docker.swarm.node.id": me,
            "com.docker.swarm.service.id": service_id,
            "com.docker.swarm.service.name": "web",
            "com.docker.swarm.task": "",
            "com.docker.swarm.task.id": tid,
            "com.docker.swarm.task.name": name,
        }
        assert "A=1" in ct["Config"]["Env"]
        out = d.docker("exec", name, "sh", "-c", "cat /run/secrets/s1; stat -c '%a %u' /run/secrets/s1").stdout
        assert out == "top secret\n400 5\n"
    # the secret is sealed in the store: its bytes appear nowhere in etcd's data
    for path in Path(d.data_root, "swarm", "etcd", "data").rglob("*"):
        if path.is_file():
            assert b"top secret" not in path.read_bytes(), path
    r = d.docker("secret", "rm", "s", check=False)
    assert (r.returncode, r.stderr) == (
        1,
        "Error response from daemon: rpc error: code = InvalidArgument desc = secret 's' is in use by the "
        "following service: web\n",
    )
    # logs through the nodes' agents: the raw stream as dockerd's, then the docker CLI's lines
    tid = running_tasks(d, "web")[0]["ID"]
    status_code, body = _get(d, f"/v1.45/tasks/{tid}/logs?stdout=1&stderr=1&details=1")
    context = f"com.docker.swarm.node.id={me},com.docker.swarm.service.id={service_id},com.docker.swarm.task.id={tid}"
    assert (status_code, sorted(_frames(body))) == (
        200, sorted([(1, f"{context} out\n".encode()), (2, f"{context} err\n".encode())])
    )  # fmt: skip
    host = d.docker("info", "--format", "{{.Name}}").stdout.strip()
    r = d.docker("service", "logs", "web")
    prefixes = sorted(f"web.{t['Slot']}.{t['ID'][:12]}@{host}    |" for t in running_tasks(d, "web"))
    assert sorted(r.stdout.splitlines() + r.stderr.splitlines()) == sorted(
        [f"{p} {line}" for p in prefixes for line in ("out", "err")]
    )
    # following the service's logs takes in the tasks a scale-up starts later
    follower = _stream(d, "/v1.45/services/web/logs?stdout=1&follow=1")
    try:
        assert [_next_frame(follower), _next_frame(follower)] == [(1, b"out\n"), (1, b"out\n")]
        d.docker("service", "scale", "--detach", "web=3")
        assert _next_frame(follower) == (1, b"out\n")
    finally:
        follower.close()
    wait_for(lambda: len(running_tasks(d, "web")) == 3, timeout=60)
    d.docker("service", "scale", "--detach", "web=1")  # slots 2 and 3 go, containers too
    wait_for(lambda: [n.rsplit(".", 1)[0] for n in containers(d)] == ["web.1"], timeout=60)
    d.docker("service", "rm", "web")
    wait_for(lambda: containers(d) == [], timeout=60)
    # the agent removes a task's files right after its container: wait for them too, not only the container
    wait_for(lambda: [p.name for p in Path(d.exec_root, "swarm").iterdir()] == [], timeout=10)


def _get(d: GoraeDaemon, path: str) -> tuple[int, bytes]:
    import http.client
    import socket

    class Conn(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(d.socket)

    c = Conn("localhost", timeout=60)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def _stream(d: GoraeDaemon, path: str) -> Any:
    """A streaming GET (its response, to read frames from; close it when done)."""
    import http.client
    import socket

    class Conn(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.settimeout(60)
            self.sock.connect(d.socket)

    c = Conn("localhost", timeout=60)
    c.request("GET", path)
    r = c.getresponse()
    assert r.status == 200
    return r


def _next_frame(r: Any) -> tuple[int, bytes]:
    head = r.read(8)
    return head[0], r.read(int.from_bytes(head[4:8], "big"))


def _frames(body: bytes) -> list[tuple[int, bytes]]:
    out = []
    while body:
        size = int.from_bytes(body[4:8], "big")
        out.append((body[0], body[8 : 8 + size]))
        body = body[8 + size :]
    return out


def test_exit_codes_and_a_missing_image(manager: GoraeDaemon) -> None:
    d = manager
    for name, args in (
        ("ok", ["busybox", "true"]),
        ("bad", ["busybox", "sh", "-c", "exit 3"]),
        ("missing", ["127.0.0.1:1/nothing:here"]),
    ):
        d.docker("service", "create", "--detach", "--restart-condition", "none", "--name", name, *args)
    states = {"ok": "complete", "bad": "failed", "missing": "rejected"}
    for name, state in states.items():
        wait_for(lambda n=name, s=state: [t["Status"]["State"] for t in service_tasks(d, n)] == [s], timeout=60)
    s = service_tasks(d, "ok")[0]["Status"]
    assert (s["Message"], s["ContainerStatus"]["ExitCode"], "Err" in s) == ("finished", 0, False)
    s = service_tasks(d, "bad")[0]["Status"]
    assert (s["Message"], s["Err"], s["ContainerStatus"]["ExitCode"]) == ("started", "task: non-zero exit (3)", 3)
    s = service_tasks(d, "missing")[0]["Status"]
    assert (s["Message"], s["Err"]) == ("preparing", "No such image: 127.0.0.1:1/nothing:here")
    ps = d.docker("service", "ps", "--no-trunc", "--format", "{{.Error}}", "bad").stdout
    assert ps == '"task: non-zero exit (3)"\n'
    # a task container removed under a running task (rm -f kills it first) fails it
    d.docker("service", "create", "--detach", "--restart-condition", "none", "--name", "gone", "busybox", "sleep", "1d")
    wait_for(lambda: len(running_tasks(d, "gone")) == 1, timeout=60)
    task = running_tasks(d, "gone")[0]
    d.docker("rm", "-f", task["Status"]["ContainerStatus"]["ContainerID"])
    wait_for(lambda: [t["Status"]["State"] for t in service_tasks(d, "gone")] == ["failed"], timeout=60)
    assert service_tasks(d, "gone")[0]["Status"]["Err"] == "task: non-zero exit (137)"


def test_a_healthcheck_holds_the_task_in_starting_until_healthy(manager: GoraeDaemon) -> None:
    d = manager
    d.docker(
        "service", "create", "--detach", "--restart-condition", "none", "--name", "hc",
        "--health-cmd", "test -e /tmp/ok", "--health-interval", "200ms", "--health-retries", "3",
        "busybox", "sh", "-c", "while [ ! -e /tmp/go ]; do sleep 0.1; done; touch /tmp/ok; exec sleep 1d",
    )  # fmt: skip

    def state() -> str:
        tasks = service_tasks(d, "hc")
        return str(tasks[0]["Status"]["State"]) if tasks else ""

    wait_for(lambda: state() == "starting", timeout=60)
    name = containers(d)[0]
    wait_for(lambda: d.docker("inspect", "-f", "{{json .State.Health}}", name).stdout != "null\n", timeout=30)
    assert d.docker("inspect", "-f", "{{.State.Health.Status}}", name).stdout == "starting\n"
    assert state() == "starting"
    d.docker("exec", name, "touch", "/tmp/go")
    wait_for(lambda: state() == "running", timeout=30)
    assert d.docker("inspect", "-f", "{{.State.Health.Status}}", name).stdout == "healthy\n"
    # unhealthy while running: the container is stopped and the task fails (moby's controller)
    d.docker("exec", name, "rm", "/tmp/ok")
    wait_for(lambda: state() == "failed", timeout=30)
    status = service_tasks(d, "hc")[0]["Status"]
    assert (status["Message"], status["Err"]) == ("started", "dockerexec: unhealthy container")
    assert d.docker("inspect", "-f", "{{.State.Running}}", name).stdout == "false\n"
    # leaving the swarm removes the node's task containers, as dockerd does
    assert d.docker("swarm", "leave", "--force").stdout == "Node left the swarm.\n"
    assert containers(d) == []


def test_a_restarted_daemon_adopts_its_task_containers(manager: GoraeDaemon) -> None:
    d = manager
    d.docker("service", "create", "--detach", "--name", "re", "busybox", "sleep", "1d")
    wait_for(lambda: len(running_tasks(d, "re")) == 1, timeout=60)
    task = running_tasks(d, "re")[0]
    cid = task["Status"]["ContainerStatus"]["ContainerID"]
    d.kill9()
    d.start()
    wait_for(lambda: [t["ID"] for t in running_tasks(d, "re")] == [task["ID"]], timeout=60)
    assert d.docker("ps", "-aq", "--no-trunc").stdout.split() == [cid]
    d.docker("service", "rm", "re")
    wait_for(lambda: containers(d) == [], timeout=60)


def test_secret_and_config_commands(manager: GoraeDaemon) -> None:
    """`docker secret`/`docker config` end to end (texts as the reference dockerd's, see the unit tests)."""
    d = manager
    sid = d.docker("secret", "create", "--label", "a=b", "pw", "-", input="hunter2").stdout.strip()
    assert len(sid) == 25
    r = d.docker("secret", "create", "pw", "-", input="x", check=False)
    assert (r.returncode, r.stderr) == (
        1,
        "Error response from daemon: rpc error: code = AlreadyExists desc = secret pw already exists\n",
    )
    assert d.docker("secret", "ls", "--format", "{{.ID}} {{.Name}}").stdout == f"{sid} pw\n"
    doc = json.loads(d.docker("secret", "inspect", "pw").stdout)[0]
    assert (doc["ID"], doc["Spec"]) == (sid, {"Name": "pw", "Labels": {"a": "b"}})
    cid = d.docker("config", "create", "cfg", "-", input="k=v\n").stdout.strip()
    doc = json.loads(d.docker("config", "inspect", cid).stdout)[0]
    assert doc["Spec"] == {"Name": "cfg", "Labels": {}, "Data": "az12Cg=="}
    assert d.docker("secret", "rm", "pw").stdout == "pw\n"
    assert d.docker("config", "rm", "cfg").stdout == "cfg\n"
    r = d.docker("secret", "inspect", "pw", check=False)
    assert (r.returncode, r.stderr) == (1, "Error response from daemon: secret pw not found\n")
    assert d.docker("secret", "ls", "-q").stdout == ""


def test_a_worker_in_its_own_namespace_runs_tasks_and_readopts_them() -> None:
    """A service constrained to the worker (own netns, data root, exec root) runs there with its secret (sent
    only to it), its logs come back to the manager over the swarm port; after a kill -9 of the worker's daemon
    and a restart the node runs one task of the service, never two."""
    with lan(2) as (host1, host2):
        manager, worker = host1.daemon, host2.daemon
        import_busybox(worker)
        _, tokens = init(host1)
        join(host2, host1, tokens["worker"])
        worker_id = node_id(worker)
        manager.docker("secret", "create", "s1", "-", input="for the worker\n")
        manager.docker(
            "service", "create", "--detach", "--name", "w", "--constraint", "node.role==worker", "--secret", "s1",
            "busybox", "sh", "-c", "echo started; exec sleep 1d",
        )  # fmt: skip
        wait_for(lambda: len(running_tasks(manager, "w")) == 1, timeout=60)
        task = running_tasks(manager, "w")[0]
        tid = task["ID"]
        assert task["NodeID"] == worker_id
        name = f"w.1.{tid}"
        assert worker.docker("exec", name, "cat", "/run/secrets/s1").stdout == "for the worker\n"
        assert containers(manager) == []  # nothing of it on the manager, nor its secret file
        assert not Path(manager.exec_root, "swarm", tid).exists()
        worker_name = worker.docker("info", "--format", "{{.Name}}").stdout.strip()
        wait_for(lambda: manager.docker("service", "logs", "w").stdout == f"w.1.{tid[:12]}@{worker_name}    | started\n", timeout=30)

        # kill -9 of the worker's daemon: its container lives on (conmon); back, the node runs one task of the
        # service, never two (the same container if the manager did not mark it down meanwhile, else the old
        # one stopped for the new task)
        worker.kill9()
        worker.start()
        wait_for(lambda: len(running_tasks(manager, "w")) == 1, timeout=60)

        def running_here() -> list[str]:
            return worker.docker("ps", "-q", "--filter", "label=com.docker.swarm.service.name=w").stdout.split()

        wait_for(lambda: len(running_here()) == 1, timeout=60)
        assert running_here() == [running_tasks(manager, "w")[0]["Status"]["ContainerStatus"]["ContainerID"][:12]]
        manager.docker("service", "rm", "w")
        wait_for(lambda: containers(worker) == [], timeout=60)


def test_a_second_manager_opens_what_the_first_sealed() -> None:
    """A manager that joins fetches the cluster data key from another manager (never makes its own): a config
    created through one manager reads back through the other, and the other way round."""
    with lan(2) as (host1, host2):
        _, tokens = init(host1)
        join(host2, host1, tokens["manager"])
        host1.daemon.docker("config", "create", "c1", "-", input="from one\n")
        wait_for(lambda: Path(host2.daemon.data_root, "swarm", "data.key").exists(), timeout=30)
        assert Path(host2.daemon.data_root, "swarm", "data.key").read_bytes() == Path(
            host1.daemon.data_root, "swarm", "data.key"
        ).read_bytes()
        doc = json.loads(host2.docker("config", "inspect", "c1").stdout)[0]
        assert doc["Spec"]["Data"] == "ZnJvbSBvbmUK"
        host2.daemon.docker("config", "create", "c2", "-", input="from two\n")
        assert json.loads(host1.docker("config", "inspect", "c2").stdout)[0]["Spec"]["Data"] == "ZnJvbSB0d28K"


def test_logs_of_a_worker_polling_another_manager() -> None:
    """`service logs` through a manager the worker does not poll: the subscription is relayed to the other
    managers, the worker's manager passes its lines on."""
    with lan(3) as (host1, host2, host3):
        import_busybox(host3.daemon)
        _, tokens = init(host1)
        join(host2, host1, tokens["manager"])
        join(host3, host1, tokens["worker"])  # it polls host1
        host1.docker(
            "service", "create", "--detach", "--name", "w", "--constraint", "node.role==worker",
            "busybox", "sh", "-c", "echo from the worker; exec sleep 1d",
        )  # fmt: skip
        wait_for(lambda: len(running_tasks(host1.daemon, "w")) == 1, timeout=60)
        task = running_tasks(host1.daemon, "w")[0]
        worker_name = host3.docker("info", "--format", "{{.Name}}").stdout.strip()
        for host in (host2, host1):
            out = host.docker("service", "logs", "w").stdout
            assert out == f"w.1.{task['ID'][:12]}@{worker_name}    | from the worker\n"
