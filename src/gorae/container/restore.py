"""Live restore: at daemon start, load every container record and reconcile it with the runtime.

Record says running/paused, and the runtime still holds it -> watch it again (a paused one stays
paused). Record says running but the runtime has an exit status -> that exit is handled now, with the
restart policy as if we had seen it (docker does the same on restore). Nothing runs and no exit status
exists -> exit code 255 with an Error text, as docker's restore does for a task it cannot find. A record
caught mid-removal is marked dead (docker: RemovalInProgress -> Dead); a pending restart is started
again; stopped containers whose policy says so (always, unless-stopped not stopped by hand, on-failure
after a failure) are started. A container a `docker commit` had frozen when the daemon died is thawed.
Container directories and snapshots that no record owns (a crash or failed create) are collected first.
"""

from __future__ import annotations

import asyncio
import logging

from gorae.container import orphans
from gorae.container import state as cs
from gorae.container.lifecycle import ContainerLifecycle
from gorae.container.record import Container
from gorae.container.restart import parse_policy, restart_on_daemon_start
from gorae.container.state import Event
from gorae.runtime.types import ExitStatus

log = logging.getLogger("gorae.containers")

UNKNOWN_EXIT = "container exited while the daemon was down; exit status unknown"
EXIT_STATUS_WAIT = 5.0


async def restore(lc: ContainerLifecycle) -> None:
    records = await asyncio.to_thread(lc.repo.load)
    try:
        await asyncio.to_thread(orphans.collect, lc.fs.root, lc.fs.snapshotter, records)
    except Exception:
        log.exception("collecting leftovers without a container record")
    to_start: list[Container] = []
    for ct in records:
        try:
            await _restore_one(lc, ct, to_start)
        except Exception:
            log.exception("restoring container %s", ct.id[:12])
    for ct in to_start:
        lc.spawn(_start_on_boot(lc, ct))


async def _restore_one(lc: ContainerLifecycle, ct: Container, to_start: list[Container]) -> None:
    st = ct.status
    rt = lc.runtime
    repo = lc.repo
    commit_paused, ct.book.commit_paused = ct.book.commit_paused, False
    if commit_paused:
        repo.save(ct)
    if st in cs.HAS_PROCESS:
        rstate = await asyncio.to_thread(rt.state, ct.id)
        if rstate is not None and rstate.alive and commit_paused and rstate.status == "paused":
            # the daemon died during a `docker commit` that froze it: the commit is gone, the freeze goes too
            log.warning("thawing %s, frozen by a commit the daemon did not finish", ct.id[:12])
            try:
                await rt.resume(ct.id)
                rstate = await asyncio.to_thread(rt.state, ct.id)
            except Exception as e:
                log.warning("thawing %s: %s", ct.id[:12], e)
        if rstate is not None and rstate.alive:
            ct.mounted = True
            if rstate.status == "paused" and cs.is_running(ct.status):
                repo.transition(ct, Event.PAUSE)
            elif rstate.status == "running" and cs.is_paused(ct.status):
                repo.transition(ct, Event.UNPAUSE)
            ct.state["Pid"] = int(rstate.pid or ct.state.get("Pid") or 0)
            repo.save(ct)
            await lc.logging.resume(ct)
            ct.watcher = lc.spawn(lc.watch(ct))
            return
        ct.mounted = lc.fs.is_mounted(ct)
        if ct.book.pending_exit is not None:  # killed while handling this exit
            async with ct.lock:
                await lc.handle_exit(ct, ct.book.pending_exit, at_daemon_start=True)
            return
        try:
            status = await asyncio.wait_for(rt.wait_exit(ct.id), EXIT_STATUS_WAIT)
            async with ct.lock:
                await lc.handle_exit(ct, status, at_daemon_start=True)
        except Exception as e:
            log.warning("container %s vanished without an exit status: %s", ct.id[:12], e)
            async with ct.lock:
                await lc.handle_exit(ct, ExitStatus(255, False), at_daemon_start=True, error=UNKNOWN_EXIT)
        return
    if cs.is_restarting(ct.status):
        ct.mounted = lc.fs.is_mounted(ct)
        ct.restart_task = lc.spawn(lc.restart_later(ct, ct.book.restart_delay or 0.1))
        return
    if cs.is_removing(ct.status):  # caught mid-removal
        repo.transition(ct, Event.REMOVE_FAILED)
        return
    if ct.status not in cs.STOPPED:  # dead
        return
    if rt.exists(ct.id):
        # killed between the runtime's create and recording the start: the record keeps its state, and the
        # half-started runtime container (created, or already running unseen) is killed and deleted
        log.warning("removing the half-started runtime container of %s", ct.id[:12])
        try:
            await rt.delete(ct.id, force=True)
        except Exception as e:
            log.warning("deleting the runtime container of %s: %s", ct.id[:12], e)
        await lc.net.teardown(ct)
        repo.save(ct)
    ct.mounted = lc.fs.is_mounted(ct)
    if ct.mounted:
        await lc.fs.unmount(ct)
    if ct.host_config.get("AutoRemove") and ct.book.started_before:
        lc.spawn(lc.auto_remove(ct))
        return
    if restart_on_daemon_start(
        parse_policy(ct.host_config.get("RestartPolicy")),
        exit_code=int(ct.state.get("ExitCode") or 0),
        manually_stopped=ct.book.manually_stopped,
        restart_count=int(ct.doc.get("RestartCount") or 0),
        started_before=ct.book.started_before,
    ):
        to_start.append(ct)


async def _start_on_boot(lc: ContainerLifecycle, ct: Container) -> None:
    async with ct.lock:
        if ct.status not in cs.STOPPED or ct.removed:
            return
        try:
            await lc.start_locked(ct, auto=True)
        except Exception as e:
            log.warning("starting %s at daemon start: %s", ct.id[:12], e)
