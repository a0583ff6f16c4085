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
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from conftest import GoraeDaemon, new_daemon, wait_for

from gorae.swarm.ids import new_id
from gorae.swarm.manager import _store_for
from gorae.swarm.store.etcd import EtcdStore
from gorae.swarm.store.member import EtcdMember
from gorae.swarm.store.types import Service, Task, WriteTx
from gorae.timefmt import rfc3339nano

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a daemon")

T = TypeVar("T")


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


def in_store(d: GoraeDaemon, fn: Callable[[EtcdStore], Awaitable[T]]) -> T:
    """Run `fn` against the daemon's cluster store (its etcd member, with its client certificate)."""

    async def run() -> T:
        cfg = EtcdMember(Path(d.data_root, "swarm", "etcd")).configured()
        assert cfg is not None
        store = _store_for(cfg)
        try:
            return await fn(store)
        finally:
            await store.close()

    return asyncio.run(run())


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
    async def write(store: EtcdStore) -> None:
        async def tx(t: WriteTx) -> None:
            await t.create(Task(doc["ID"], doc))

        await store.update(tx)

    in_store(d, write)


def put_service(d: GoraeDaemon, service_id: str, name: str, container_spec: dict[str, Any]) -> None:
    now = rfc3339nano(time.time_ns())
    doc = {
        "ID": service_id,
        "CreatedAt": now,
        "UpdatedAt": now,
        "Spec": {"Name": name, "Labels": {}, "TaskTemplate": {"ContainerSpec": container_spec}},
    }

    async def write(store: EtcdStore) -> None:
        async def tx(t: WriteTx) -> None:
            await t.create(Service(service_id, doc))

        await store.update(tx)

    in_store(d, write)


def task_of(d: GoraeDaemon, task_id: str) -> dict[str, Any] | None:
    async def read(store: EtcdStore) -> dict[str, Any] | None:
        async def get(tx: Any) -> Task | None:
            return await tx.get(Task, task_id)  # type: ignore[no-any-return]

        task = await store.view(get)
        return task.doc if task is not None else None

    return in_store(d, read)


def set_desired(d: GoraeDaemon, task_id: str, desired: str) -> None:
    async def write(store: EtcdStore) -> None:
        async def tx(t: WriteTx) -> None:
            task = await t.get(Task, task_id)
            assert task is not None
            await t.update(task.with_doc({**task.doc, "DesiredState": desired}))

        await store.update(tx)

    in_store(d, write)


def delete_task(d: GoraeDaemon, task_id: str) -> None:
    async def write(store: EtcdStore) -> None:
        async def tx(t: WriteTx) -> None:
            await t.delete(Task, task_id)

        await store.update(tx)

    in_store(d, write)


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
