"""Container lifecycle stories against the fake runtime (no root, no runc): create, start, exits, stop,
kill, the restart policy with back-off, kill while restarting, remove, the three wait conditions,
auto-remove, start failures, pause guards, exec cleanup and live restore."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
from fakes.runtime import FakeRuntime
from fakes.services import EventRecorder, FakeImages, FakeMounter, FakeNetworks, FakeSnapshotter, MemoryStore

from gorae.container.record import KIND, Container
from gorae.container.service import ContainerService
from gorae.errors import CommandFailed, Conflict, InvalidParameter, NotFound, NotModified


class World:
    """One daemon's worth of collaborators; `service()` builds a container service over them (call it
    again to play a daemon restart: records, runtime processes and mounts survive)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.store = MemoryStore()
        self.events = EventRecorder()
        self.runtime = FakeRuntime()
        self.images = FakeImages()
        self.snapshotter = FakeSnapshotter(os.path.join(root, "snapshots"))
        self.networks = FakeNetworks()
        self.mounter = FakeMounter()
        os.makedirs(os.path.join(root, "containers"), exist_ok=True)

    def service(self) -> ContainerService:
        return ContainerService(
            root=os.path.join(self.root, "containers"),
            store=self.store,
            publish=self.events,
            runtime=self.runtime,
            images=self.images,
            snapshotter=self.snapshotter,
            networks=self.networks,
            mounter=self.mounter,
        )


@pytest.fixture
def world(tmp_path):
    return World(str(tmp_path))


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


async def until(pred, timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


async def created(svc: ContainerService, **host_config) -> str:
    body = {"Image": "busybox", "HostConfig": host_config}
    return (await svc.create(body))["Id"]


async def started(svc: ContainerService, **host_config) -> str:
    cid = await created(svc, **host_config)
    await svc.start(cid)
    return cid


def status(svc: ContainerService, cid: str) -> str:
    return svc.get(cid).state["Status"]


# ---- create / start / exit ---------------------------------------------------------------------------


def test_create_persists_record_with_bookkeeping_and_publishes(world):
    async def go():
        svc = world.service()
        cid = await created(svc)
        doc = world.store.docs[(KIND, cid)]
        assert doc["State"]["Status"] == "created"
        assert doc["_gorae"]["Snapshot"] == cid and doc["_gorae"]["CreatedNs"] > 0
        assert world.events.actions(cid) == ["create"]
        assert cid in world.snapshotter.keys

    run(go())


def test_start_runs_the_image_command_and_records_pid(world):
    async def go():
        svc = world.service()
        cid = await started(svc)
        proc = world.runtime.procs[cid]
        assert proc.argv == ["sleep", "60"] and proc.status == "running"
        ct = svc.get(cid)
        assert ct.state["Status"] == "running" and ct.state["Running"] is True
        assert ct.state["Pid"] == proc.pid
        assert world.store.docs[(KIND, cid)]["State"]["Status"] == "running"
        assert world.events.actions(cid) == ["create", "start"]
        with pytest.raises(NotModified):
            await svc.start(cid)

    run(go())


def test_exit_is_recorded_with_code_and_die_event(world):
    async def go():
        svc = world.service()
        cid = await started(svc)
        fut = svc.wait(cid, "not-running")
        world.runtime.exit(cid, 3)
        assert await fut == {"StatusCode": 3, "Error": None}
        ct = svc.get(cid)
        assert ct.state["Status"] == "exited" and ct.state["ExitCode"] == 3 and ct.state["Pid"] == 0
        assert world.store.docs[(KIND, cid)]["State"]["ExitCode"] == 3
        die = [e for e in world.events.events if e[1] == "die"]
        assert die and die[0][3]["exitCode"] == "3"
        assert cid not in world.runtime.procs  # the runtime forgot it
        assert cid not in world.networks.sandboxes
        assert svc.fs.rootfs_path(cid) not in world.mounter.mounted

    run(go())


def test_oom_exit_publishes_oom_and_sets_flag(world):
    async def go():
        svc = world.service()
        cid = await started(svc)
        fut = svc.wait(cid, "next-exit")
        world.runtime.exit(cid, 137, oom=True)
        await fut
        assert svc.get(cid).state["OOMKilled"] is True
        assert world.events.actions(cid)[-2:] == ["oom", "die"]

    run(go())


def test_start_failure_maps_missing_command_to_127(world):
    async def go():
        svc = world.service()
        cid = await created(svc)
        world.runtime.fail_start[cid] = CommandFailed(
            ["runc"], 1, 'exec: "nope": executable file not found in $PATH'
        )
        with pytest.raises(InvalidParameter, match="OCI runtime create failed"):
            await svc.start(cid)
        ct = svc.get(cid)
        assert ct.state["Status"] == "created" and ct.state["ExitCode"] == 127
        assert cid not in world.networks.sandboxes

    run(go())


# ---- stop / kill ---------------------------------------------------------------------------------------


def test_stop_sends_stop_signal_then_records_exit(world):
    async def go():
        svc = world.service()
        cid = await started(svc)
        await svc.stop(cid, timeout=5)
        ct = svc.get(cid)
        assert world.runtime.procs.get(cid) is None
        assert ct.state["Status"] == "exited" and ct.state["ExitCode"] == 128 + signal.SIGTERM
        assert ct.book.manually_stopped
        assert world.events.actions(cid)[-3:] == ["kill", "die", "stop"]
        with pytest.raises(NotModified, match="already stopped"):
            await svc.stop(cid)

    run(go())


def test_stop_escalates_to_sigkill_after_timeout(world):
    async def go():
        svc = world.service()
        world.runtime.ignore_signals = {signal.SIGTERM}
        cid = await started(svc)
        await svc.stop(cid, timeout=0)
        assert svc.get(cid).state["ExitCode"] == 128 + signal.SIGKILL

    run(go())


def test_kill_refuses_a_container_that_is_not_running(world):
    async def go():
        svc = world.service()
        cid = await created(svc)
        with pytest.raises(Conflict, match=f"Container {cid} is not running"):
            await svc.kill(cid)

    run(go())


def test_pause_guards_exec_and_attach(world):
    async def go():
        svc = world.service()
        cid = await started(svc)
        await svc.pause(cid)
        assert status(svc, cid) == "paused" and world.runtime.procs[cid].status == "paused"
        with pytest.raises(Conflict, match="is paused, unpause the container before exec"):
            svc.execs.create(cid, {"Cmd": ["true"]})
        with pytest.raises(Conflict, match="unpause the container before attach"):
            svc.attach(cid, stream=True)
        with pytest.raises(Conflict, match="You cannot remove a paused container"):
            await svc.remove(cid)
        await svc.unpause(cid)
        assert status(svc, cid) == "running"
        assert world.events.actions(cid)[-2:] == ["pause", "unpause"]

    run(go())


# ---- restart policy ------------------------------------------------------------------------------------


def test_restart_always_restarts_with_back_off(world):
    async def go():
        svc = world.service()
        cid = await started(svc, RestartPolicy={"Name": "always"})
        world.runtime.exit(cid, 1)
        await until(lambda: status(svc, cid) == "restarting")
        ct = svc.get(cid)
        assert ct.doc["RestartCount"] == 1 and ct.book.restart_delay == pytest.approx(0.1)
        await until(lambda: status(svc, cid) == "running")
        world.runtime.exit(cid, 1)
        await until(lambda: svc.get(cid).doc["RestartCount"] == 2)
        assert ct.book.restart_delay == pytest.approx(0.2)  # doubled: the container ran < 10 s
        await until(lambda: status(svc, cid) == "running")
        await svc.stop(cid, timeout=1)
        assert status(svc, cid) == "exited"
        await asyncio.sleep(0.3)
        assert status(svc, cid) == "exited"  # a manual stop is not restarted
        await svc.close()

    run(go())


def test_on_failure_stops_after_max_retries(world):
    async def go():
        svc = world.service()
        cid = await started(svc, RestartPolicy={"Name": "on-failure", "MaximumRetryCount": 1})
        world.runtime.exit(cid, 2)
        await until(lambda: status(svc, cid) == "running" and svc.get(cid).doc["RestartCount"] == 1)
        fut = svc.wait(cid, "next-exit")
        world.runtime.exit(cid, 2)
        assert (await fut)["StatusCode"] == 2
        assert status(svc, cid) == "exited"

    run(go())


def test_kill_while_restarting_cancels_the_restart(world):
    async def go():
        svc = world.service()
        cid = await started(svc, RestartPolicy={"Name": "always"})
        world.runtime.exit(cid, 1)
        await until(lambda: status(svc, cid) == "restarting")
        await svc.kill(cid)
        ct = svc.get(cid)
        assert ct.state["Status"] == "exited" and ct.book.manually_stopped
        await asyncio.sleep(0.3)
        assert status(svc, cid) == "exited" and cid not in world.runtime.procs

    run(go())


def test_stop_during_a_restart_in_progress_stops_the_new_run(world):
    """`stop` finds the container restarting while the restart's start holds the container (slow: a log
    driver opening, a create): the run that start makes is stopped too, not left running."""

    async def go():
        svc = world.service()
        cid = await started(svc, RestartPolicy={"Name": "always"})
        world.runtime.create_gate = asyncio.Event()
        world.runtime.exit(cid, 1)
        await until(lambda: world.runtime.calls.count(("create", cid)) == 2)  # the restart's start is under way
        assert status(svc, cid) == "restarting"
        stopping = asyncio.ensure_future(svc.stop(cid, timeout=1))
        await asyncio.sleep(0.05)
        world.runtime.create_gate.set()
        await stopping
        assert status(svc, cid) == "exited" and svc.get(cid).book.manually_stopped
        await asyncio.sleep(0.3)
        assert status(svc, cid) == "exited"
        await svc.close()

    run(go())


# ---- remove / wait / auto-remove ------------------------------------------------------------------------


def test_remove_running_needs_force_then_destroys_everything(world):
    async def go():
        svc = world.service()
        cid = await started(svc)
        with pytest.raises(Conflict, match="You cannot remove a running container"):
            await svc.remove(cid)
        removed = svc.wait(cid, "removed")
        await svc.remove(cid, force=True)
        assert (await removed)["StatusCode"] == 128 + signal.SIGKILL
        assert (KIND, cid) not in world.store.docs
        assert cid not in world.snapshotter.keys and not os.path.exists(svc.fs.dir(cid))
        assert world.events.actions(cid)[-1] == "destroy"
        with pytest.raises(NotFound):
            svc.get(cid)

    run(go())


def test_wait_next_exit_registered_before_start(world):
    async def go():
        svc = world.service()
        cid = await created(svc)
        fut = svc.wait(cid, "next-exit")
        assert not fut.done()
        await svc.start(cid)
        assert not fut.done()
        world.runtime.exit(cid, 5)
        assert (await fut)["StatusCode"] == 5

    run(go())


def test_wait_not_running_answers_at_once_for_a_stopped_container(world):
    async def go():
        svc = world.service()
        cid = await created(svc)
        fut = svc.wait(cid)
        assert fut.done() and fut.result() == {"StatusCode": 0, "Error": None}
        with pytest.raises(InvalidParameter):
            svc.wait(cid, "bogus")

    run(go())


def test_auto_remove_after_exit(world):
    async def go():
        svc = world.service()
        cid = await started(svc, AutoRemove=True)
        removed = svc.wait(cid, "removed")
        world.runtime.exit(cid, 0)
        await removed
        with pytest.raises(NotFound):
            svc.get(cid)
        assert (KIND, cid) not in world.store.docs

    run(go())


def test_exec_sessions_are_forgotten_when_the_container_dies(world):
    async def go():
        svc = world.service()
        cid = await started(svc)
        exec_id = svc.execs.create(cid, {"Cmd": ["true"]})
        assert svc.inspect(cid)["ExecIDs"] == [exec_id]
        fut = svc.wait(cid, "next-exit")
        world.runtime.exit(cid, 0)
        await fut
        assert svc.execs.ids_of(cid) == []
        with pytest.raises(NotFound):
            svc.execs.inspect(exec_id)

    run(go())


# ---- live restore ----------------------------------------------------------------------------------------


def test_live_restore_reattaches_and_records_exits_while_down(world):
    async def go():
        svc = world.service()
        alive = await started(svc)
        exited_while_down = await started(svc)
        vanished = await started(svc)
        stopped = await started(svc, RestartPolicy={"Name": "always"})
        await svc.stop(stopped, timeout=1)
        await svc.close()  # the daemon goes away; the runtime's processes stay

        world.runtime.exit(exited_while_down, 7)
        world.runtime.procs.pop(vanished)  # no process, no exit status

        svc2 = world.service()
        await svc2.restore()
        assert status(svc2, alive) == "running"
        await until(lambda: status(svc2, exited_while_down) == "exited")
        assert svc2.get(exited_while_down).state["ExitCode"] == 7
        ct = svc2.get(vanished)
        assert ct.state["Status"] == "exited" and ct.state["ExitCode"] == 255
        assert "exit status unknown" in ct.state["Error"]
        # always + started before: restarted at daemon start, even though it was stopped by hand
        await until(lambda: status(svc2, stopped) == "running")
        # the re-attached watcher sees the next exit
        fut = svc2.wait(alive, "next-exit")
        world.runtime.exit(alive, 9)
        assert (await fut)["StatusCode"] == 9
        await svc2.close()

    run(go())


def test_restore_finishes_an_exit_that_was_being_recorded(world):
    async def go():
        svc = world.service()
        cid = await started(svc)
        await svc.close()
        doc = world.store.docs[(KIND, cid)]
        doc["_gorae"]["PendingExit"] = [4, False]  # the daemon died while handling this exit
        world.runtime.procs.pop(cid)
        svc2 = world.service()
        await svc2.restore()
        ct = svc2.get(cid)
        assert ct.state["Status"] == "exited" and ct.state["ExitCode"] == 4
        assert "PendingExit" not in world.store.docs[(KIND, cid)]["_gorae"]

    run(go())


# ---- records ---------------------------------------------------------------------------------------------


def test_record_reads_the_format_earlier_versions_wrote():
    old = {
        "Id": "c" * 64,
        "Name": "/old",
        "State": {"Status": "exited", "ExitCode": 1},
        "Config": {"Image": "busybox"},
        "HostConfig": {},
        "_gorae": {
            "CreatedNs": 5,
            "StartedNs": 6,
            "FinishedNs": 7,
            "ManuallyStopped": True,
            "StartedBefore": True,
            "RestartDelay": 0.4,
            "CgroupsPath": "/gorae/" + "c" * 64,
            "ImageRef": "busybox",
            "Mounts": [{"Type": "volume", "Name": "v"}],
            "EndpointsConfig": {"net": {}},
            "HasAutoRemoved": False,  # written by no version; dropped
        },
    }
    ct = Container.from_doc(old)
    assert ct.book.snapshot == "c" * 64  # absent: the container id, as before
    assert ct.book.restart_delay == 0.4 and ct.book.manually_stopped and ct.book.started_before
    doc = ct.to_doc()
    assert "HasAutoRemoved" not in doc["_gorae"]
    assert {k: v for k, v in doc.items() if k != "_gorae"} == {k: v for k, v in old.items() if k != "_gorae"}
    again = Container.from_doc(doc)
    assert again.book == ct.book
