"""Swarm tasks on the node side, against real daemons: the dispatcher and the agent run tasks written
straight into the cluster store (as the orchestrator and scheduler will) as ordinary containers with Docker's
names, labels, states and messages; secrets (encrypted in the store, a tmpfs file in the container),
`docker secret`/`docker config` against the reference texts, `service logs` through the nodes, shutdown and
removal, re-adoption after a kill -9 of the daemon (no duplicate container)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SRC, GoraeDaemon, import_busybox, new_daemon, wait_for
from swarm_cluster import init, join, lan

from gorae.swarm.ids import new_id
from gorae.swarm.manager import _store_for
from gorae.swarm.store.member import EtcdMember
from gorae.swarm.store.types import Service, Task, WriteTx
from gorae.timefmt import rfc3339nano

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a daemon")

def _etcd_pids(data_root: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"etcd") and any(data_root.encode() in a for a in cmd):
            if stat.split(") ", 1)[1][0] != "Z":
                pids.append(int(entry))
    return pids


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


async def _store_op(data_root: str, op: str, arg: Any) -> Any:
    """One operation on a daemon's cluster store, through its etcd member's client port and certificate."""
    cfg = EtcdMember(Path(data_root, "swarm", "etcd")).configured()
    assert cfg is not None
    store = _store_for(cfg)
    try:
        if op == "get_task":

            async def get(tx: Any) -> dict[str, Any] | None:
                task = await tx.get(Task, arg)
                return task.doc if task is not None else None

            return await store.view(get)

        async def write(tx: WriteTx) -> None:
            if op == "put_task":
                await tx.create(Task(arg["ID"], arg))
            elif op == "put_service":
                await tx.create(Service(arg["ID"], arg))
            elif op == "set_desired":
                task = await tx.get(Task, arg[0])
                assert task is not None
                await tx.update(task.with_doc({**task.doc, "DesiredState": arg[1]}))
            elif op == "delete_task":
                await tx.delete(Task, arg)

        await store.update(write)
        return None
    finally:
        await store.close()


def store_op(d: GoraeDaemon, op: str, arg: Any) -> Any:
    """`_store_op` here, or inside the daemon's network namespace (its member listens on its 127.0.0.1)."""
    if not d.command_prefix:
        return asyncio.run(_store_op(d.data_root, op, arg))
    code = (
        "import asyncio, json, sys; sys.path[:0] = sys.argv[1].split(':'); from test_swarm_tasks import _store_op; "
        "print(json.dumps(asyncio.run(_store_op(sys.argv[2], sys.argv[3], json.loads(sys.argv[4])))))"
    )
    here = f"{Path(__file__).parent}:{Path(__file__).parent.parent}"
    env = dict(os.environ, PYTHONPATH=SRC)
    r = subprocess.run(
        [*d.command_prefix, sys.executable, "-c", code, here, d.data_root, op, json.dumps(arg)],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def node_id(d: GoraeDaemon) -> str:
    return str(json.loads(d.docker("info", "--format", "{{json .Swarm}}").stdout)["NodeID"])


def task_doc(node: str, service_id: str, container_spec: dict[str, Any], slot: int = 1) -> dict[str, Any]:
    now = rfc3339nano(time.time_ns())
    return {
        "ID": new_id(),
        "CreatedAt": now,
        "UpdatedAt": now,
        "Labels": {},
        "Spec": {"ContainerSpec": container_spec, "Resources": {"Limits": {}, "Reservations": {}}},
        "ServiceID": service_id,
        "Slot": slot,
        "NodeID": node,
        "Status": {"Timestamp": now, "State": "assigned", "Message": "scheduler assigned task to node"},
        "DesiredState": "running",
        "_gorae": {"ServiceName": "web"},
    }


def put_task(d: GoraeDaemon, doc: dict[str, Any]) -> None:
    store_op(d, "put_task", doc)


def put_service(d: GoraeDaemon, service_id: str, name: str, container_spec: dict[str, Any]) -> None:
    now = rfc3339nano(time.time_ns())
    doc = {
        "ID": service_id,
        "CreatedAt": now,
        "UpdatedAt": now,
        "Spec": {"Name": name, "Labels": {}, "TaskTemplate": {"ContainerSpec": container_spec}},
    }
    store_op(d, "put_service", doc)


def task_of(d: GoraeDaemon, task_id: str) -> dict[str, Any] | None:
    return store_op(d, "get_task", task_id)  # type: ignore[no-any-return]


def set_desired(d: GoraeDaemon, task_id: str, desired: str) -> None:
    store_op(d, "set_desired", [task_id, desired])


def delete_task(d: GoraeDaemon, task_id: str) -> None:
    store_op(d, "delete_task", task_id)


def state_of(d: GoraeDaemon, task_id: str) -> str:
    doc = task_of(d, task_id)
    return str((doc or {}).get("Status", {}).get("State", ""))


def containers(d: GoraeDaemon) -> list[str]:
    return d.docker("ps", "-a", "--format", "{{.Names}}").stdout.split()


def test_a_task_runs_as_a_container_with_its_secret_and_stops_when_told(manager: GoraeDaemon) -> None:
    d = manager
    me = node_id(d)
    sid = d.docker("secret", "create", "s1", "-", input="top secret\n").stdout.strip()
    service_id = new_id()
    spec = {
        "Image": "busybox:latest",
        "Args": ["sh", "-c", "echo out; echo err >&2; exec sleep 1d"],
        "Env": ["A=1"],
        "Labels": {"mine": "yes"},
        "Secrets": [
            {"File": {"Name": "s1", "UID": "5", "GID": "0", "Mode": 0o400}, "SecretID": sid, "SecretName": "s1"}
        ],
    }
    put_service(d, service_id, "web", spec)
    task = task_doc(me, service_id, spec)
    put_task(d, task)
    tid = task["ID"]
    name = f"web.1.{tid}"
    wait_for(lambda: state_of(d, tid) == "running", timeout=30)
    doc = task_of(d, tid)
    assert doc is not None
    status = doc["Status"]
    assert (status["State"], status["Message"], status["PortStatus"]) == ("running", "started", {})
    cid = status["ContainerStatus"]["ContainerID"]
    assert status["ContainerStatus"]["PID"] > 0 and status["ContainerStatus"]["ExitCode"] == 0
    ct = json.loads(d.docker("inspect", name).stdout)[0]
    assert ct["Id"] == cid
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
    etcd_data = Path(d.data_root, "swarm", "etcd", "data")
    for path in etcd_data.rglob("*"):
        if path.is_file():
            assert b"top secret" not in path.read_bytes(), path
    r = d.docker("secret", "rm", "s1", check=False)
    assert (r.returncode, r.stderr) == (
        1,
        "Error response from daemon: rpc error: code = InvalidArgument desc = secret 's1' is in use by the "
        "following service: web\n",
    )

    # logs through the node's agent: dockerd's stream with the context details the CLI reads
    status_code, body = _get(d, f"/v1.45/tasks/{tid}/logs?stdout=1&stderr=1&details=1")
    assert status_code == 200
    context = f"com.docker.swarm.node.id={me},com.docker.swarm.service.id={service_id},com.docker.swarm.task.id={tid}"
    assert sorted(_frames(body)) == sorted([(1, f"{context} out\n".encode()), (2, f"{context} err\n".encode())])

    # following the service's logs takes in a task that starts later
    follower = _stream(d, f"/v1.45/services/{service_id}/logs?stdout=1&stderr=1&follow=1")
    try:
        assert sorted([_next_frame(follower), _next_frame(follower)]) == [(1, b"out\n"), (2, b"err\n")]
        later = task_doc(me, service_id, {"Image": "busybox:latest", "Args": ["sh", "-c", "echo later; exec sleep 1d"]}, slot=2)
        put_task(d, later)
        assert _next_frame(follower) == (1, b"later\n")
    finally:
        follower.close()
    wait_for(lambda: state_of(d, later["ID"]) == "running", timeout=30)
    set_desired(d, later["ID"], "remove")
    wait_for(lambda: f"web.2.{later['ID']}" not in containers(d), timeout=30)
    assert state_of(d, later["ID"]) == "shutdown"

    set_desired(d, tid, "shutdown")
    wait_for(lambda: state_of(d, tid) == "shutdown", timeout=30)
    assert d.docker("inspect", "-f", "{{.State.Running}}", name).stdout == "false\n"
    delete_task(d, tid)
    wait_for(lambda: name not in containers(d), timeout=30)
    assert not Path(d.exec_root, "swarm", tid).exists()


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
    me = node_id(d)
    ok = task_doc(me, "svcok", {"Image": "busybox:latest", "Args": ["true"]})
    bad = task_doc(me, "svcbad", {"Image": "busybox:latest", "Args": ["sh", "-c", "exit 3"]})
    missing = task_doc(me, "svcmissing", {"Image": "127.0.0.1:1/nothing:here"})
    for t in (ok, bad, missing):
        put_task(d, t)
    wait_for(lambda: state_of(d, ok["ID"]) == "complete", timeout=30)
    wait_for(lambda: state_of(d, bad["ID"]) == "failed", timeout=30)
    wait_for(lambda: state_of(d, missing["ID"]) == "rejected", timeout=60)
    s = task_of(d, ok["ID"])["Status"]  # type: ignore[index]
    assert (s["Message"], s["ContainerStatus"]["ExitCode"], "Err" in s) == ("finished", 0, False)
    s = task_of(d, bad["ID"])["Status"]  # type: ignore[index]
    assert (s["Message"], s["Err"], s["ContainerStatus"]["ExitCode"]) == ("started", "task: non-zero exit (3)", 3)
    s = task_of(d, missing["ID"])["Status"]  # type: ignore[index]
    assert (s["Message"], s["Err"]) == ("preparing", "No such image: 127.0.0.1:1/nothing:here")
    # a task container removed under a running task (rm -f kills it first) fails it
    gone = task_doc(me, "svcgone", {"Image": "busybox:latest", "Args": ["sleep", "1d"]})
    put_task(d, gone)
    wait_for(lambda: state_of(d, gone["ID"]) == "running", timeout=30)
    d.docker("rm", "-f", f"web.1.{gone['ID']}")
    wait_for(lambda: state_of(d, gone["ID"]) == "failed", timeout=30)
    assert task_of(d, gone["ID"])["Status"]["Err"] == "task: non-zero exit (137)"  # type: ignore[index]


def test_a_healthcheck_holds_the_task_in_starting_until_healthy(manager: GoraeDaemon) -> None:
    d = manager
    me = node_id(d)
    t = task_doc(
        me,
        "svchc",
        {
            "Image": "busybox:latest",
            "Args": ["sh", "-c", "while [ ! -e /tmp/go ]; do sleep 0.1; done; touch /tmp/ok; exec sleep 1d"],
            "HealthCheck": {"Test": ["CMD", "test", "-e", "/tmp/ok"], "Interval": 200_000_000, "Retries": 3},
        },
    )
    put_task(d, t)
    wait_for(lambda: state_of(d, t["ID"]) == "starting", timeout=30)
    name = f"web.1.{t['ID']}"
    wait_for(lambda: d.docker("inspect", "-f", "{{json .State.Health}}", name).stdout != "null\n", timeout=30)
    assert d.docker("inspect", "-f", "{{.State.Health.Status}}", name).stdout == "starting\n"
    assert state_of(d, t["ID"]) == "starting"
    d.docker("exec", name, "touch", "/tmp/go")
    wait_for(lambda: state_of(d, t["ID"]) == "running", timeout=30)
    assert d.docker("inspect", "-f", "{{.State.Health.Status}}", name).stdout == "healthy\n"
    # unhealthy while running: the container is stopped and the task fails (moby's controller)
    d.docker("exec", name, "rm", "/tmp/ok")
    wait_for(lambda: state_of(d, t["ID"]) == "failed", timeout=30)
    status = task_of(d, t["ID"])["Status"]  # type: ignore[index]
    assert (status["Message"], status["Err"]) == ("started", "dockerexec: unhealthy container")
    assert d.docker("inspect", "-f", "{{.State.Running}}", name).stdout == "false\n"
    # leaving the swarm removes the node's task containers, as dockerd does
    assert d.docker("swarm", "leave", "--force").stdout == "Node left the swarm.\n"
    assert containers(d) == []


def test_a_restarted_daemon_adopts_its_task_containers(manager: GoraeDaemon) -> None:
    d = manager
    me = node_id(d)
    t = task_doc(me, "svcre", {"Image": "busybox:latest", "Args": ["sleep", "1d"]})
    put_task(d, t)
    wait_for(lambda: state_of(d, t["ID"]) == "running", timeout=30)
    cid = task_of(d, t["ID"])["Status"]["ContainerStatus"]["ContainerID"]  # type: ignore[index]
    d.kill9()
    d.start()
    set_desired(d, t["ID"], "shutdown")
    wait_for(lambda: state_of(d, t["ID"]) == "shutdown", timeout=40)
    assert d.docker("ps", "-aq", "--no-trunc").stdout.split() == [cid]


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
    """A task assigned to a worker (own netns, data root, exec root) runs there with its secret (sent only
    to it), its logs come back to the manager over the swarm port, and after a kill -9 of the worker's daemon
    and a restart the same container carries on: no duplicate."""
    with lan(2) as (host1, host2):
        manager, worker = host1.daemon, host2.daemon
        import_busybox(worker)
        _, tokens = init(host1)
        join(host2, host1, tokens["worker"])
        worker_id = node_id(worker)
        sid = manager.docker("secret", "create", "s1", "-", input="for the worker\n").stdout.strip()
        spec = {
            "Image": "busybox:latest",
            "Args": ["sh", "-c", "echo started; exec sleep 1d"],
            "Secrets": [{"File": {"Name": "s1", "UID": "0", "GID": "0", "Mode": 0o444}, "SecretID": sid, "SecretName": "s1"}],
        }
        task = task_doc(worker_id, "svcw", spec)
        put_task(manager, task)
        tid = task["ID"]
        wait_for(lambda: state_of(manager, tid) == "running", timeout=60)
        name = f"web.1.{tid}"
        assert worker.docker("exec", name, "cat", "/run/secrets/s1").stdout == "for the worker\n"
        assert containers(manager) == []  # nothing of it on the manager, nor its secret file
        assert not Path(manager.exec_root, "swarm", tid).exists()
        status, body = _get(manager, f"/v1.45/tasks/{tid}/logs?stdout=1&stderr=1&details=1")
        context = f"com.docker.swarm.node.id={worker_id},com.docker.swarm.service.id=svcw,com.docker.swarm.task.id={tid}"
        assert (status, _frames(body)) == (200, [(1, f"{context} started\n".encode())])

        cid = worker.docker("inspect", "-f", "{{.Id}}", name).stdout.strip()
        worker.kill9()
        worker.start()
        assert worker.docker("ps", "-aq", "--no-trunc").stdout.split() == [cid]
        set_desired(manager, tid, "shutdown")
        wait_for(lambda: state_of(manager, tid) == "shutdown", timeout=60)
        assert worker.docker("ps", "-aq", "--no-trunc").stdout.split() == [cid]
        assert worker.docker("inspect", "-f", "{{.State.Running}}", name).stdout == "false\n"
        delete_task(manager, tid)
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
        manager1, manager2, worker = host1.daemon, host2.daemon, host3.daemon
        import_busybox(worker)
        _, tokens = init(host1)
        join(host2, host1, tokens["manager"])
        join(host3, host1, tokens["worker"])  # it polls manager1
        worker_id = node_id(worker)
        service_id = new_id()
        spec = {"Image": "busybox:latest", "Args": ["sh", "-c", "echo from the worker; exec sleep 1d"]}
        put_service(manager1, service_id, "web", spec)
        task = task_doc(worker_id, service_id, spec)
        put_task(manager1, task)
        wait_for(lambda: state_of(manager1, task["ID"]) == "running", timeout=60)
        context = (
            f"com.docker.swarm.node.id={worker_id},com.docker.swarm.service.id={service_id},"
            f"com.docker.swarm.task.id={task['ID']}"
        )
        for manager in (manager2, manager1):
            status, body = _get(manager, f"/v1.45/services/{service_id}/logs?stdout=1&details=1")
            assert (status, _frames(body)) == (200, [(1, f"{context} from the worker\n".encode())])
