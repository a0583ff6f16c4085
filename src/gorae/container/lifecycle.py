"""`ContainerLifecycle`: start, stop, kill, restart, pause, remove; exits, the restart policy and auto-remove.

Owns the per-container watcher task that awaits the runtime's exit status, the back-off restarts and
the order of every step (runtime, mounts, network, rootfs). Every status change goes through
`ContainerRepository.transition` (table, persist, event, waiters in one call); every guard through the
state tables (`cs.check`, `cs.require`). Depends only on protocols: `Runtime`, the repository, the
filesystem, networking, streams and a `MountResolver`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal as _signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

from gorae.container import state as cs
from gorae.container.fs import ContainerFS
from gorae.container.logging import ContainerLogging
from gorae.container.networking import ContainerNetworking
from gorae.container.record import Container, cgroups_path
from gorae.container.repository import ContainerRepository
from gorae.container.restart import decide, parse_policy
from gorae.container.signals import parse_signal
from gorae.container.state import Event, Op
from gorae.container.streams import ContainerStreams
from gorae.container.types import MountResolver
from gorae.errors import CommandFailed, Conflict, GoraeError, InvalidParameter, NotFound, SystemError_
from gorae.runtime.types import ExitStatus, Runtime
from gorae.timefmt import rfc3339nano

log = logging.getLogger("gorae.containers")


def _nothing() -> None:
    """Nothing to announce."""

DEFAULT_STOP_TIMEOUT = 10
KILL_WAIT = 10.0  # how long SIGKILL may take before we call the container stuck


class ContainerLifecycle:
    def __init__(
        self,
        repo: ContainerRepository,
        runtime: Runtime,
        fs: ContainerFS,
        networking: ContainerNetworking,
        streams: ContainerStreams,
        mounts: MountResolver | None,
        logging: ContainerLogging,
    ) -> None:
        self.logging = logging
        self.repo = repo
        self.runtime = runtime
        self.fs = fs
        self.net = networking
        self.streams = streams
        self.mounts = mounts
        self.closing = False
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        """Stop watching (containers keep running under the runtime's monitor)."""
        self.closing = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        await self.logging.close()

    # ---- start -------------------------------------------------------------------------------

    async def start(self, ref: str) -> None:
        ct = self.repo.get(ref)
        async with ct.lock:
            await self.start_locked(ct, auto=False)

    async def start_locked(self, ct: Container, *, auto: bool) -> None:
        cs.check(ct.state, Event.START, ct.id)
        if not auto:
            ct.book.manually_stopped = False
            ct.book.restart_delay = 0.0
            ct.doc["RestartCount"] = 0
            if ct.restart_task is not None:
                ct.restart_task.cancel()
                ct.restart_task = None
        directory = self.fs.dir(ct.id)
        rt = self.runtime
        # a leftover runtime container (crash between create and record) is removed first
        if rt.exists(ct.id) and await asyncio.to_thread(rt.state, ct.id) is not None:
            with contextlib.suppress(Exception):
                await rt.delete(ct.id, force=True)
        rootfs = await self.fs.mount(ct)
        try:  # the logging driver first, as dockerd ("failed to initialize logging driver: ...")
            await self.logging.open(ct)
        except BaseException as e:
            await self._start_failed(ct, e)
            raise
        try:  # network errors keep docker's own text ("driver failed programming external connectivity ...")
            for req in ct.host_config.get("DeviceRequests") or []:
                # no device drivers (nvidia, cdi) are registered: docker's error for --gpus without nvidia
                caps = "[" + " ".join("[" + " ".join(c) + "]" for c in req.get("Capabilities") or []) + "]"
                raise SystemError_(
                    f'could not select device driver "{req.get("Driver") or ""}" with capabilities: {caps}'
                )
            await self.net.setup(ct)
        except BaseException as e:
            await self._start_failed(ct, e)
            raise
        try:
            extra_mounts = await self._oci_mounts(ct, rootfs)
            spec = await asyncio.to_thread(self._build_spec, ct, rootfs, extra_mounts)
            with open(os.path.join(directory, "config.json.tmp"), "w", encoding="utf-8") as f:
                json.dump(spec, f)
            os.replace(os.path.join(directory, "config.json.tmp"), os.path.join(directory, "config.json"))
            cfg = ct.config
            log_path, log_size_max = self.logging.runtime_log(ct)
            await rt.create(
                ct.id,
                directory,
                tty=bool(cfg.get("Tty")),
                stdin=bool(cfg.get("OpenStdin")),
                stdin_once=bool(cfg.get("StdinOnce")),
                log_path=log_path,
                log_size_max=log_size_max,
            )
        except GoraeError as e:
            await self._start_failed(ct, e)
            raise _start_error(e, ct) from None
        except Exception as e:
            await self._start_failed(ct, e)
            raise
        await self.streams.run_pre_start(ct)
        try:
            await rt.start(ct.id)
        except Exception as e:
            with contextlib.suppress(Exception):
                await rt.delete(ct.id, force=True)
            await self._start_failed(ct, e)
            if isinstance(e, GoraeError):
                raise _start_error(e, ct) from None
            raise
        pid = rt.init_pid(ct.id)
        if not pid:
            rstate = await asyncio.to_thread(rt.state, ct.id)
            pid = rstate.pid if rstate is not None else 0
        now = time.time_ns()
        ct.book.started_ns = now
        ct.book.started_before = True
        self.repo.transition(
            ct,
            Event.START,
            action="start",
            Pid=pid,
            StartedAt=rfc3339nano(now),
            ExitCode=0,
            Error="",
            OOMKilled=False,
        )
        ct.watcher = self.spawn(self.watch(ct))

    def _build_spec(self, ct: Container, rootfs: str, extra_mounts: list[dict[str, Any]]) -> dict[str, Any]:
        from gorae.runtime.spec import build_spec

        hc = ct.host_config
        config = ct.config
        if ct.book.link_env:
            config = {**config, "Env": list(config.get("Env") or []) + list(ct.book.link_env)}
        return build_spec(
            config,
            hc,
            rootfs=rootfs,
            hostname_path=ct.doc.get("HostnamePath"),
            hosts_path=ct.doc.get("HostsPath"),
            resolv_path=ct.doc.get("ResolvConfPath"),
            cgroups_path=ct.book.cgroups_path or cgroups_path(hc, ct.id),
            netns_path=ct.book.netns_path,
            extra_mounts=extra_mounts,
        )

    async def _oci_mounts(self, ct: Container, rootfs: str) -> list[dict[str, Any]]:
        if self.mounts is None:
            return []
        priv = ct.book.mounts
        fresh = [m for m in priv if m.get("_fresh")]
        if fresh:
            await asyncio.to_thread(self.mounts.copy_up, rootfs, fresh)
            for m in fresh:
                m["_fresh"] = False
        return await asyncio.to_thread(self.mounts.oci_mounts, priv, ct.host_config)

    async def _release_mounts(self, ct: Container) -> None:
        if self.mounts is None or not ct.book.mounts:
            return
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.mounts.release, ct.book.mounts)

    async def _start_failed(self, ct: Container, err: BaseException) -> None:
        text = err.stderr if isinstance(err, CommandFailed) else getattr(err, "message", str(err))
        code = _start_exit_code(text, ct.doc.get("Path") or "")
        await self.logging.finish(ct)
        await self._release_mounts(ct)
        await self.net.teardown(ct)
        await self.fs.unmount(ct)
        fields: dict[str, Any] = {"ExitCode": code, "Error": text.strip()}
        if cs.check(ct.state, Event.START_FAILED, ct.id) == cs.Status.EXITED:  # ran before: it finished now
            ct.book.finished_ns = time.time_ns()
            fields["FinishedAt"] = rfc3339nano(ct.book.finished_ns)
        self.repo.transition(ct, Event.START_FAILED, **fields)
        if ct.host_config.get("AutoRemove"):  # docker removes a --rm container whose start failed
            self.spawn(self.auto_remove(ct))

    # ---- exit --------------------------------------------------------------------------------

    async def watch(self, ct: Container) -> None:
        try:
            status = await self.runtime.wait_exit(ct.id)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.warning("waiting for %s: %s; recording exit status 255", ct.id[:12], e)
            status = ExitStatus(255, False)
        if self.closing:
            return
        async with ct.lock:
            if ct.watcher is asyncio.current_task():
                ct.watcher = None
            try:
                await self.handle_exit(ct, status)
            except Exception:  # the exit is recorded (in memory at least) and its waiters answered, always
                log.exception("recording the exit of %s", ct.id[:12])
                if ct.status in cs.HAS_PROCESS:
                    with contextlib.suppress(Exception):
                        self.repo.transition(ct, Event.EXIT, action="die", ExitCode=int(status.code))
                self.repo.wake_exit_waiters(ct)

    async def handle_exit(
        self, ct: Container, status: ExitStatus, *, at_daemon_start: bool = False, error: str = ""
    ) -> None:
        """Record an exit (with `error` as State.Error), clean up the runtime, and apply the restart policy or
        AutoRemove."""
        code, oom = int(status.code), bool(status.oom_killed)
        # The exit status lives only in the runtime, which the delete below makes forget it, while the record
        # still says running until the cleanup is done: keep it in the record first, so that a daemon
        # killed in between finds it on restore (instead of "exit status unknown").
        if ct.status in cs.HAS_PROCESS:
            ct.book.pending_exit = ExitStatus(code, oom)
            self.repo.save(ct)
        try:  # every line the container wrote is in its log before its exit is recorded
            await self.logging.finish(ct)
        except Exception as e:
            log.warning("finishing the log of %s: %s", ct.id[:12], e)
        with contextlib.suppress(Exception):
            await self.runtime.delete(ct.id, force=True)
        await self._release_mounts(ct)
        announce: Callable[[], None] = _nothing
        try:  # a teardown that fails (a full disk) must not keep the exit from being recorded
            announce = await self.net.teardown(ct, announce=False)  # `disconnect` after `die`, as dockerd
        except Exception as e:
            log.warning("tearing down the network of %s: %s", ct.id[:12], e)
        try:
            await self._record_exit(ct, code, oom, error, announce, at_daemon_start=at_daemon_start)
        finally:
            announce()

    async def _record_exit(
        self,
        ct: Container,
        code: int,
        oom: bool,
        error: str,
        announce: Callable[[], None],
        *,
        at_daemon_start: bool,
    ) -> None:
        """The exit's second half: unmount, record it (`die`), announce the networks left, restart or remove."""
        await self.fs.unmount(ct)
        now = time.time_ns()
        started = ct.book.started_ns
        ran_for = (now - started) / 1e9 if started else 0.0
        fields = {"ExitCode": code, "OOMKilled": oom, "FinishedAt": rfc3339nano(now), "Error": error}
        die = {"exitCode": str(code), "execDuration": str(int(ran_for))}
        ct.book.finished_ns = now
        ct.book.pending_exit = None
        if oom:
            self.repo.event(ct, "oom")
        if cs.is_removing(ct.status):
            self.repo.transition(ct, Event.EXIT, action="die", attrs=die, **fields)
            return
        decision = decide(
            parse_policy(ct.host_config.get("RestartPolicy")),
            exit_code=code,
            restart_count=int(ct.doc.get("RestartCount") or 0),
            manually_stopped=ct.book.manually_stopped,
            ran_for=ran_for,
            previous_delay=ct.book.restart_delay,
            cancelled=False if at_daemon_start else None,
        )
        if decision.restart and not self.closing:
            ct.doc["RestartCount"] = int(ct.doc.get("RestartCount") or 0) + 1
            ct.book.restart_delay = decision.next_delay_state
            self.repo.transition(ct, Event.EXIT_RESTART, action="die", attrs=die, **fields)
            ct.restart_task = self.spawn(self.restart_later(ct, decision.delay))
            return
        ct.book.restart_delay = 0.0
        self.repo.transition(ct, Event.EXIT, action="die", attrs=die, **fields)
        announce()
        if ct.host_config.get("AutoRemove"):
            self.spawn(self.auto_remove(ct))

    async def restart_later(self, ct: Container, delay: float) -> None:
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            return
        async with ct.lock:
            if ct.restart_task is asyncio.current_task():
                ct.restart_task = None
            if not cs.is_restarting(ct.status) or ct.removed or self.closing:
                return
            try:
                await self.start_locked(ct, auto=True)
            except Exception as e:
                log.warning("restarting %s failed: %s", ct.id[:12], e)
                if cs.is_restarting(ct.status):
                    self.repo.transition(ct, Event.START_FAILED, Error=str(e))

    async def auto_remove(self, ct: Container) -> None:
        try:
            await self.remove(ct.id, force=True, volumes=True)
        except NotFound:
            pass
        except Exception as e:
            log.warning("auto-removing %s: %s", ct.id[:12], e)

    # ---- stop / kill / restart ---------------------------------------------------------------

    def _stop_signal(self, ct: Container) -> int:
        return parse_signal(ct.config.get("StopSignal"), default=_signal.SIGTERM)

    def _stop_timeout(self, ct: Container, timeout: int | None) -> int:
        if timeout is not None:
            return timeout
        st = ct.config.get("StopTimeout")
        return int(st) if st is not None else DEFAULT_STOP_TIMEOUT

    async def _cancel_restart(self, ct: Container) -> None:
        """A stop or kill while a restart is pending: the container stays down."""
        async with ct.lock:
            if ct.restart_task is not None:
                ct.restart_task.cancel()
                ct.restart_task = None
            if cs.is_restarting(ct.status):
                ct.book.manually_stopped = True
                self.repo.transition(ct, Event.CANCEL_RESTART)

    async def _signal(self, ct: Container, sig: int, *, all_processes: bool = False) -> None:
        await self.runtime.kill(ct.id, sig, all=all_processes)
        self.repo.event(ct, "kill", {"signal": str(sig)})

    @staticmethod
    async def _exit_recorded(fut: asyncio.Future[dict[str, Any]], timeout: float | None) -> bool:
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout)
            return True
        except TimeoutError:
            return False

    async def stop(self, ref: str, timeout: int | None = None, signal: str | None = None) -> None:
        """StopSignal, then SIGKILL after `timeout` seconds (-1 waits forever); 304 if not running."""
        ct = self.repo.get(ref)
        if cs.is_restarting(ct.status):
            await self._cancel_restart(ct)
            if ct.status not in cs.HAS_PROCESS:
                self.repo.event(ct, "stop")
                return
            # the pending restart had begun (it held the lock): the run it started is stopped too
        cs.require(ct.status, Op.STOP, ct.id)
        await self._stop_running(ct, self._stop_timeout(ct, timeout), signal)
        self.repo.event(ct, "stop")

    async def _stop_running(self, ct: Container, timeout: int, signal: str | None = None) -> None:
        sig = parse_signal(signal, default=self._stop_signal(ct)) if signal else self._stop_signal(ct)
        ct.book.manually_stopped = True
        self.repo.save(ct)
        fut = self.repo.wait(ct, "next-exit")
        paused = cs.is_paused(ct.status)
        try:
            await self._signal(ct, sig)
        except Conflict:
            pass  # it is exiting already
        except NotFound:
            pass
        if paused:
            with contextlib.suppress(Exception):
                await self.runtime.resume(ct.id)
        if await self._exit_recorded(fut, None if timeout < 0 else float(timeout)):
            return
        with contextlib.suppress(Conflict, NotFound):
            await self._signal(ct, _signal.SIGKILL, all_processes=True)
        if not await self._exit_recorded(fut, KILL_WAIT):
            raise SystemError_(f"tried to kill container, but did not receive an exit event: {ct.id}")

    async def kill(self, ref: str, signal: str | None = None) -> None:
        ct = self.repo.get(ref)
        sig = parse_signal(signal, default=_signal.SIGKILL)
        cs.require(ct.status, Op.KILL, ct.id)
        configured = ct.config.get("StopSignal")
        stops_for_good = not configured or sig == _signal.SIGKILL or sig == self._stop_signal(ct)
        if stops_for_good:
            ct.book.manually_stopped = True
            self.repo.save(ct)
        if cs.is_restarting(ct.status):
            if stops_for_good:
                await self._cancel_restart(ct)
            return
        fut = self.repo.wait(ct, "next-exit")
        try:
            await self._signal(ct, sig, all_processes=sig == _signal.SIGKILL)
        except Conflict:
            raise Conflict(f"Container {ct.id} is not running") from None
        if stops_for_good and cs.is_paused(ct.status):
            with contextlib.suppress(Exception):
                await self.runtime.resume(ct.id)
        if sig == _signal.SIGKILL:
            await self._exit_recorded(fut, KILL_WAIT)

    async def restart(self, ref: str, timeout: int | None = None, signal: str | None = None) -> None:
        ct = self.repo.get(ref)
        if cs.is_restarting(ct.status):
            await self._cancel_restart(ct)
        elif ct.status in cs.ALIVE:
            await self._stop_running(ct, self._stop_timeout(ct, timeout), signal)
        async with ct.lock:
            await self.start_locked(ct, auto=False)
        self.repo.event(ct, "restart")

    # ---- pause -------------------------------------------------------------------------------

    async def pause(self, ref: str) -> None:
        await self._freeze(ref, Event.PAUSE)

    async def unpause(self, ref: str) -> None:
        await self._freeze(ref, Event.UNPAUSE)

    async def _freeze(self, ref: str, ev: Event) -> None:
        """Pause (freeze the cgroup) or unpause a container; `ev` is Event.PAUSE or Event.UNPAUSE."""
        ct = self.repo.get(ref)
        async with ct.lock:
            cs.check(ct.state, ev, ct.id)
            if ev == Event.PAUSE:
                await self.runtime.pause(ct.id)
            else:
                await self.runtime.resume(ct.id)
            try:
                self.repo.transition(ct, ev, action=ev.value)
            except BaseException:  # not recorded: the runtime goes back to what the record says
                with contextlib.suppress(Exception):
                    await (self.runtime.resume(ct.id) if ev == Event.PAUSE else self.runtime.pause(ct.id))
                raise

    # ---- remove ------------------------------------------------------------------------------

    async def _remove_link(self, ref: str) -> None:
        """`docker rm --link PARENT/ALIAS` (dockerd's rmLink): the parent forgets the legacy link; its
        running sandbox keeps the link's hosts entry until its next start, as dockerd's."""
        name = "/" + ref.strip("/")
        parent_path, _, alias = name.rpartition("/")
        if not parent_path:
            raise SystemError_("Conflict, cannot remove the default link name of the container")
        try:
            parent = self.repo.get(parent_path.lstrip("/"))
        except NotFound:
            raise NotFound(f"No such container: {ref}") from None
        async with parent.lock:
            links = list(parent.host_config.get("Links") or [])
            kept = [lk for lk in links if _link_alias(str(lk)) != alias]
            if len(kept) == len(links):
                raise NotFound(f"No such container: {ref}")
            parent.doc["HostConfig"]["Links"] = kept or None
            self.repo.save(parent)

    async def remove(
        self, ref: str, *, force: bool = False, volumes: bool = False, link: bool = False
    ) -> None:
        if link:
            await self._remove_link(ref)
            return
        ct = self.repo.get(ref)
        cs.require(ct.status, Op.REMOVE_FORCE if force else Op.REMOVE, ct.id)
        if cs.is_restarting(ct.status):
            await self._cancel_restart(ct)
        elif ct.status in cs.HAS_PROCESS:
            ct.book.manually_stopped = True
            fut = self.repo.wait(ct, "next-exit")
            with contextlib.suppress(Conflict, NotFound):
                await self._signal(ct, _signal.SIGKILL, all_processes=True)
            if cs.is_paused(ct.status):
                with contextlib.suppress(Exception):
                    await self.runtime.resume(ct.id)
            if not await self._exit_recorded(fut, KILL_WAIT):
                raise SystemError_(f"Could not kill running container {ct.id}, cannot remove")
        async with ct.lock:
            if ct.removed:
                return
            cs.require(ct.status, Op.REMOVE, ct.id)
            self.repo.transition(ct, Event.REMOVE)
            if ct.restart_task is not None:
                ct.restart_task.cancel()
                ct.restart_task = None
            try:
                await self._destroy(ct, volumes)
            except Exception as e:
                self.repo.transition(ct, Event.REMOVE_FAILED, Error=str(e))
                raise SystemError_(f"unable to remove container {ct.id}: {e}") from e
            self.repo.destroyed(ct)

    async def _destroy(self, ct: Container, volumes: bool) -> None:
        with contextlib.suppress(Exception):
            await self.runtime.delete(ct.id, force=True)
        await self.net.teardown(ct)
        ct.mount_refs = 0
        await self.fs.unmount(ct)
        if ct.mounted:
            raise SystemError_(f"rootfs of {ct.id} is still mounted")
        await self.fs.remove_layer(ct)
        await asyncio.to_thread(shutil.rmtree, self.fs.dir(ct.id), True)
        self.repo.delete_record(ct)
        if (
            volumes and self.mounts is not None
        ):  # after the record: a volume is "in use" while a record mounts it
            await asyncio.to_thread(self.mounts.remove_anonymous, ct.book.mounts)


def _start_exit_code(text: str, path: str) -> int:
    """docker's translateContainerdStartErr: 127 for a missing command, 126 for permission denied."""
    low = text.lower()
    if ("executable file not found" in low or "no such file or directory" in low) and (
        not path or path.lower() in low or "exec:" in low
    ):
        return 127
    if "permission denied" in low:
        return 126
    if "not a directory" in low:
        return 127
    return 128


def _start_error(err: GoraeError, ct: Container) -> GoraeError:
    text = err.stderr if isinstance(err, CommandFailed) else err.message
    text = text.strip()
    code = _start_exit_code(text, ct.doc.get("Path") or "")
    msg = f"failed to create task for container: OCI runtime create failed: {text}: unknown"
    if code in (126, 127):
        return InvalidParameter(msg)
    if isinstance(err, CommandFailed):
        return SystemError_(msg)
    return err


def _link_alias(link: str) -> str:
    """The alias of a legacy link as given ("child:alias", "child") or as dockerd stores it
    ("/child:/parent/alias")."""
    child, _, alias = link.partition(":")
    return (alias or child).rsplit("/", 1)[-1]
