"""Conformance cases every `Runtime` must pass (containerd's testsuite habit, as snapshot/testsuite.py).

A case takes a `Harness`: the runtime under test and a way to make a bundle that runs a command. The
commands used are a tiny vocabulary any implementation can honour (a fake interprets them):
`["sh", "-c", "exit N"]` exits with N, `["echo", "TEXT"]` writes TEXT and a newline to stdout and exits 0,
`["sleep", "60"]` runs until signalled. Each case is a coroutine that raises AssertionError on failure;
`CASES` maps names to cases so a test file can parametrize over them for any implementation. The harness
cleans up after each case (it owns the ids it handed out).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from typing import Protocol

from gorae.errors import Conflict, GoraeError, NotFound
from gorae.runtime.types import ExitStatus, Resources, Runtime

WAIT = 20.0


class Harness(Protocol):
    runtime: Runtime

    def bundle(self, cmd: list[str]) -> tuple[str, str, str]:
        """A new container id, its bundle directory (config.json written) and its log path."""
        ...


Case = Callable[[Harness], Awaitable[None]]


async def _started(h: Harness, cmd: list[str]) -> tuple[str, str]:
    cid, bundle, log = h.bundle(cmd)
    await h.runtime.create(cid, bundle, tty=False, stdin=False, stdin_once=False, log_path=log)
    await h.runtime.start(cid)
    return cid, log


async def _raises(exc: type[GoraeError], aw: Awaitable[object]) -> None:
    try:
        await aw
    except exc:
        return
    raise AssertionError(f"expected {exc.__name__}")


async def case_exit_code(h: Harness) -> None:
    rt = h.runtime
    cid, _ = await _started(h, ["sh", "-c", "exit 3"])
    status = await asyncio.wait_for(rt.wait_exit(cid), WAIT)
    assert status == ExitStatus(3, False), status
    assert isinstance(status, ExitStatus)
    assert rt.exists(cid)
    await rt.delete(cid)
    assert rt.state(cid) is None
    assert not rt.exists(cid)


async def case_create_then_start(h: Harness) -> None:
    rt = h.runtime
    cid, bundle, log = h.bundle(["sleep", "60"])
    await rt.create(cid, bundle, tty=False, stdin=False, stdin_once=False, log_path=log)
    st = rt.state(cid)
    assert st is not None and st.status == "created", st
    await _raises(Conflict, rt.create(cid, bundle, tty=False, stdin=False, stdin_once=False, log_path=log))
    await rt.start(cid)
    st = rt.state(cid)
    assert st is not None and st.status == "running" and st.alive, st
    assert rt.init_pid(cid) > 0
    await rt.kill(cid, signal.SIGKILL)
    status = await asyncio.wait_for(rt.wait_exit(cid), WAIT)
    assert status.code == 128 + signal.SIGKILL, status
    await rt.delete(cid, force=True)


async def case_pause_resume(h: Harness) -> None:
    rt = h.runtime
    cid, _ = await _started(h, ["sleep", "60"])
    await rt.pause(cid)
    st = rt.state(cid)
    assert st is not None and st.status == "paused", st
    await rt.resume(cid)
    st = rt.state(cid)
    assert st is not None and st.status == "running", st
    await rt.kill(cid, signal.SIGKILL, all=True)
    status = await asyncio.wait_for(rt.wait_exit(cid), WAIT)
    assert status.code == 128 + signal.SIGKILL, status
    await rt.delete(cid, force=True)


async def case_kill_after_exit(h: Harness) -> None:
    rt = h.runtime
    cid, _ = await _started(h, ["sh", "-c", "exit 0"])
    assert (await asyncio.wait_for(rt.wait_exit(cid), WAIT)).code == 0
    await _raises(Conflict, rt.kill(cid, signal.SIGKILL))
    await rt.delete(cid, force=True)


async def case_unknown_container(h: Harness) -> None:
    rt = h.runtime
    cid, _, _ = h.bundle(["sleep", "60"])
    assert rt.state(cid) is None
    assert not rt.exists(cid)
    await rt.delete(cid)  # missing is not an error
    await rt.delete(cid, force=True)
    await _raises(NotFound, rt.wait_exit(cid))


async def case_log(h: Harness) -> None:
    rt = h.runtime
    cid, log = await _started(h, ["echo", "hi"])
    assert (await asyncio.wait_for(rt.wait_exit(cid), WAIT)).code == 0
    assert list(rt.read_log(log)) == [(1, b"hi\n")]
    assert list(rt.read_log(log, stdout=False)) == []
    followed = [c async for c in rt.follow_log(log, exited=lambda: True)]
    assert followed == [(1, b"hi\n")], followed
    await rt.delete(cid, force=True)


async def case_no_log(h: Harness) -> None:
    """An empty log path (the `none` log driver): the container runs and nothing is written."""
    rt = h.runtime
    cid, bundle, log = h.bundle(["echo", "hi"])
    await rt.create(cid, bundle, tty=False, stdin=False, stdin_once=False, log_path="")
    await rt.start(cid)
    assert (await asyncio.wait_for(rt.wait_exit(cid), WAIT)).code == 0
    assert list(rt.read_log(log)) == []
    await rt.delete(cid, force=True)


async def case_update(h: Harness) -> None:
    rt = h.runtime
    cid, _ = await _started(h, ["sleep", "60"])
    await rt.update(cid, Resources(pids_limit=64))
    await rt.update(cid, Resources())  # nothing to change
    await rt.kill(cid, signal.SIGKILL)
    await asyncio.wait_for(rt.wait_exit(cid), WAIT)
    await rt.delete(cid, force=True)


CASES: dict[str, Case] = {
    "exit_code": case_exit_code,
    "create_then_start": case_create_then_start,
    "pause_resume": case_pause_resume,
    "kill_after_exit": case_kill_after_exit,
    "unknown_container": case_unknown_container,
    "log": case_log,
    "no_log": case_no_log,
    "update": case_update,
}
