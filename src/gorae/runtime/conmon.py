"""The conmon+runc driver: create/start/kill/delete/pause containers, wait for their exit (also for
a conmon left running by a previous daemon), attach, resize, exec.

Layout under the exec root:
  runc/                       runc --root
  conmon/<id>/                conmon.pid, pidfile (container pid), exits/<id>, exit, oom,
                              conmon.err, <id> -> bundle (attach symlink), exec/<exec-id>/...
The container bundle (conmon -b) gets conmon's `attach` socket and `ctl`/`winsz` FIFOs.

OOM: conmon itself watches the memory cgroup (v1: eventfd on memory.oom_control; v2: inotify on
memory.events) and creates the file `oom` in its persist dir (and cwd), both `conmon/<id>/` here;
`wait_exit` reports oom_killed when that file exists.

Exec goes through `conmon --exec --exec-attach` (not `runc exec` from the daemon): the session gets
the same attach socket, framing, ctl FIFO resize and exit file as a container, the API layer needs
one code path, and the exec survives a daemon restart.

Never builds specs, reads logs or touches images; every runc/conmon failure becomes a gorae error
carrying the runtime's message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal as _signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from gorae.errors import CommandFailed, Conflict, NotFound, SystemError_
from gorae.runtime import pipes
from gorae.runtime.attach import Attachment
from gorae.runtime.logs import follow_log, read_log
from gorae.runtime.types import ExitStatus, LogChunk, Resources, RuntimeState

# `runc update`'s flag for each Resources field
_UPDATE_FLAGS = (
    ("memory", "--memory"),
    ("memory_swap", "--memory-swap"),
    ("memory_reservation", "--memory-reservation"),
    ("cpu_shares", "--cpu-share"),
    ("cpu_period", "--cpu-period"),
    ("cpu_quota", "--cpu-quota"),
    ("cpuset_cpus", "--cpuset-cpus"),
    ("cpuset_mems", "--cpuset-mems"),
    ("pids_limit", "--pids-limit"),
    ("blkio_weight", "--blkio-weight"),
)


@dataclass
class ExecHandle:
    """A started exec session. `attachment` is connected before the process started (when asked),
    so no output is lost; `wait()` gives its exit code."""

    container_id: str
    exec_id: str
    pid: int
    dir: str
    attach_path: str
    tty: bool
    attachment: Attachment | None = None
    _sync_fd: int = field(default=-1, repr=False)
    _runtime: ConmonRuntime | None = field(default=None, repr=False)

    async def wait(self) -> int:
        assert self._runtime is not None
        try:
            code, _ = await self._runtime._wait_conmon(
                self.dir, os.path.join(self.dir, "exits", self.container_id)
            )
        finally:
            self._close_sync()
        return code

    def resize(self, height: int, width: int) -> None:
        _write_ctl(self.dir, height, width)

    def _close_sync(self) -> None:
        if self._sync_fd >= 0:
            os.close(self._sync_fd)
            self._sync_fd = -1


def _write_ctl(bundle: str, height: int, width: int) -> None:
    """conmon's ctl FIFO: "1 HEIGHT WIDTH\\n" is a window resize (type 1 = WIN_RESIZE_EVENT)."""
    path = os.path.join(bundle, "ctl")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (FileNotFoundError, OSError) as e:
        raise Conflict(f"cannot resize: control FIFO {path} unavailable: {e.strerror}") from e
    try:
        os.write(fd, f"1 {int(height)} {int(width)}\n".encode())
    finally:
        os.close(fd)


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (FileNotFoundError, ValueError):
        return None


class ConmonRuntime:
    """Drives runc through conmon. Holds no per-container state in memory: everything it needs is on
    disk under `exec_root`, so a new instance (after a daemon restart) manages existing containers."""

    def __init__(self, exec_root: str, runc: str = "runc", conmon: str = "conmon") -> None:
        self.exec_root = os.path.abspath(exec_root)
        self.runc = shutil.which(runc) or runc
        self.conmon = shutil.which(conmon) or conmon
        self.runc_root = os.path.join(self.exec_root, "runc")
        # id -> (pidfd of the container's init, own pid namespace): a cache filled by `create`, so that
        # signals skip a `runc kill` process; anything not in it (after a daemon restart, while paused)
        # goes through runc as before.
        self._inits: dict[str, tuple[int, bool]] = {}
        os.makedirs(self.runc_root, exist_ok=True)
        os.makedirs(os.path.join(self.exec_root, "conmon"), exist_ok=True)

    # ---- paths ---------------------------------------------------------------------------------
    def conmon_dir(self, id: str) -> str:
        return os.path.join(self.exec_root, "conmon", id)

    def attach_socket_path(self, id: str) -> str:
        return os.path.join(self.conmon_dir(id), id, "attach")

    def _exit_file(self, id: str) -> str:
        return os.path.join(self.conmon_dir(id), "exits", id)

    def _bundle(self, id: str) -> str:
        return os.path.realpath(os.path.join(self.conmon_dir(id), id))

    # ---- runc ----------------------------------------------------------------------------------
    async def _runc(self, *args: str) -> str:
        argv = [self.runc, "--root", self.runc_root, *args]
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            msg = pipes.clean_runtime_message(err.decode("utf-8", "replace"))
            if "does not exist" in msg or "not found" in msg:
                raise NotFound(f"No such container: {args[-1] if args else ''}: {msg}")
            raise CommandFailed(argv, proc.returncode or 1, msg)
        return out.decode("utf-8", "replace")

    def _conmon_base_args(self, *, cid: str, cuuid: str, bundle: str, dir: str, log: str) -> list[str]:
        return [
            self.conmon,
            "--api-version",
            "1",
            "-c",
            cid,
            "-u",
            cuuid,
            "-r",
            self.runc,
            "-b",
            bundle,
            "-p",
            os.path.join(dir, "pidfile"),
            "-P",
            os.path.join(dir, "conmon.pid"),
            "-l",
            log,
            "--exit-dir",
            os.path.join(dir, "exits"),
            "--socket-dir-path",
            dir,
            "--persist-dir",
            dir,
            "--runtime-arg",
            "--root",
            "--runtime-arg",
            self.runc_root,
            "--log-level",
            "error",
        ]

    async def _spawn_conmon(
        self, argv: list[str], dir: str, *, attach_pipe: bool = False
    ) -> tuple[asyncio.subprocess.Process, int, int, int]:
        """Start conmon with its pipes; returns (proc, sync_r, start_w, attach_r)."""
        sync_r, sync_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        start_r, start_w = os.pipe2(os.O_CLOEXEC)
        attach_r, attach_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK) if attach_pipe else (-1, -1)
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "_OCI_SYNCPIPE": str(sync_w),
            "_OCI_STARTPIPE": str(start_r),
        }
        passed = [sync_w, start_r]
        if attach_pipe:
            # conmon (blocking) writes to it; only our read end is non-blocking
            os.set_blocking(attach_w, True)
            env["_OCI_ATTACHPIPE"] = str(attach_w)
            passed.append(attach_w)
        os.set_blocking(sync_w, True)
        try:
            with open(os.path.join(dir, "conmon.err"), "wb") as errf:
                proc = await asyncio.create_subprocess_exec(
                    *argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=errf,
                    env=env,
                    cwd=dir,
                    pass_fds=passed,
                    start_new_session=True,
                )
        except BaseException:
            for fd in (sync_r, start_w, attach_r, *passed):
                if fd >= 0:
                    os.close(fd)
            raise
        for fd in passed:
            os.close(fd)
        return proc, sync_r, start_w, attach_r

    def _conmon_error(self, argv: list[str], dir: str, rc: int, msg: dict[str, Any] | None) -> Exception:
        if msg and msg.get("message"):
            text = pipes.clean_runtime_message(str(msg["message"]))
        else:
            try:
                with open(os.path.join(dir, "conmon.err"), errors="replace") as f:
                    text = f.read()
            except OSError:
                text = ""
        return CommandFailed(argv, rc or 1, text or "conmon failed without a message")

    # ---- lifecycle -----------------------------------------------------------------------------
    async def create(
        self,
        id: str,
        bundle: str,
        *,
        tty: bool,
        stdin: bool,
        stdin_once: bool,
        log_path: str,
        log_size_max: int = 0,
    ) -> int:
        """`runc create` under a new conmon; returns conmon's pid. The runc error text is in the exception."""
        dir = self.conmon_dir(id)
        if os.path.exists(os.path.join(self.runc_root, id)):
            raise Conflict(f"container {id} already exists in the runtime")
        shutil.rmtree(dir, ignore_errors=True)
        os.makedirs(os.path.join(dir, "exits"))
        argv = self._conmon_base_args(
            cid=id,
            cuuid=id,
            bundle=os.path.abspath(bundle),
            dir=dir,
            log=f"k8s-file:{log_path}" if log_path else "none:",
        )
        if log_path and log_size_max > 0:
            argv += ["--log-size-max", str(log_size_max)]
        if tty:
            argv.append("-t")
        if stdin:
            argv.append("-i")
            # moby closes a container's stdin when a StdinOnce attach ends only without a tty: a `run -it`
            # the user detached from (ctrl-p ctrl-q) takes input again at the next attach
            if not stdin_once or tty:
                argv.append("--leave-stdin-open")
        proc, sync_r, start_w, _ = await self._spawn_conmon(argv, dir)
        try:
            pipes.signal_start(start_w)
            os.close(start_w)
            start_w = -1
            msg = await pipes.read_message(sync_r)
            rc = await proc.wait()
        finally:
            os.close(sync_r)
            if start_w >= 0:
                os.close(start_w)
        if msg is None or pipes.message_value(msg) <= 0:
            with contextlib.suppress(Exception):
                await self._runc("delete", "-f", id)
            raise self._conmon_error(argv, dir, rc, msg)
        conmon_pid = _read_int(os.path.join(dir, "conmon.pid"))
        if conmon_pid is None:
            raise SystemError_(f"conmon for {id} wrote no pid file")
        self._forget(id)
        init = self._open_init(id)
        if init is not None:
            self._inits[id] = init
        return conmon_pid

    def _open_init(self, id: str) -> tuple[int, bool] | None:
        """A pidfd on the container's init process, checked against runc's state (pid and start time,
        as `runc kill` checks them), and whether the container has its own pid namespace."""
        state = _runc_state_file(self.runc_root, id)
        if state is None:
            return None
        try:
            pid = int(state["init_process_pid"])
            start = int(state["init_process_start"])
            namespaces = state["config"]["namespaces"] or []
        except (KeyError, TypeError, ValueError):
            return None
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            return None
        # checked after opening: the pidfd now pins this very process, so a pid reuse cannot slip in
        if _proc_start_time(pid) != start:
            os.close(fd)
            return None
        own_pidns = any(ns.get("type") == "NEWPID" and not ns.get("path") for ns in namespaces)
        return fd, own_pidns

    def _forget(self, id: str) -> None:
        init = self._inits.pop(id, None)
        if init is not None:
            os.close(init[0])

    async def start(self, id: str) -> None:
        await self._runc("start", id)

    async def kill(self, id: str, signal: int, all: bool = False) -> None:
        init = self._inits.get(id)
        # Through the pidfd: one signal to init, or SIGKILL to all when init is its pid namespace's
        # init (the kernel then kills every process of the namespace, which is all of the container's).
        if init is not None and (not all or (init[1] and int(signal) == _signal.SIGKILL)):
            try:
                _signal.pidfd_send_signal(init[0], int(signal))
                return
            except ProcessLookupError:
                raise Conflict(f"Container {id} is not running") from None
            except OSError:
                pass  # fall back to runc
        args = ["kill", *(["--all"] if all else []), id, str(int(signal))]
        try:
            await self._runc(*args)
        except CommandFailed as e:
            if "not running" in e.stderr or "process already finished" in e.stderr:
                raise Conflict(f"Container {id} is not running") from e
            raise

    async def delete(self, id: str, force: bool = False) -> None:
        """`runc delete` and removal of conmon's files. Missing containers are not an error.

        A container whose init is verifiably gone is deleted here as `runc delete` would (remove its
        cgroups and its runc state directory), without starting a runc process; anything unusual
        (hooks, a live or unverifiable init, a busy cgroup) goes through runc."""
        self._forget(id)
        if os.path.isdir(os.path.join(self.runc_root, id)) and not _delete_stopped(self.runc_root, id):
            with contextlib.suppress(NotFound):
                await self._runc("delete", *(["-f"] if force else []), id)
        pid = self._conmon_pid(id)
        if pid and force:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, _signal.SIGKILL)
        shutil.rmtree(self.conmon_dir(id), ignore_errors=True)

    async def pause(self, id: str) -> None:
        self._forget(id)  # a frozen init would not act on a signal: signals go through runc from now on
        await self._runc("pause", id)

    async def resume(self, id: str) -> None:
        await self._runc("resume", id)

    def state(self, id: str) -> RuntimeState | None:
        """runc's state (`status`: created|running|paused|stopped, `pid`) or None."""
        p = subprocess.run(
            [self.runc, "--root", self.runc_root, "state", id],
            stdin=subprocess.DEVNULL,
            capture_output=True,
        )
        if p.returncode != 0:
            return None
        try:
            doc = json.loads(p.stdout)
            return RuntimeState(status=str(doc.get("status") or ""), pid=int(doc.get("pid") or 0))
        except (ValueError, TypeError, AttributeError):
            return None

    def exists(self, id: str) -> bool:
        """conmon's directory for the container exists (a half-created or exited one counts)."""
        return os.path.isdir(self.conmon_dir(id))

    def init_pid(self, id: str) -> int:
        """The container's init pid from conmon's pidfile (a file read, no process); 0 when unknown."""
        return _read_int(os.path.join(self.conmon_dir(id), "pidfile")) or 0

    async def update(self, id: str, resources: Resources) -> None:
        """`runc update` with the settings that are not None."""
        args: list[str] = []
        for name, flag in _UPDATE_FLAGS:
            value = getattr(resources, name)
            if value is not None:
                args += [flag, str(value)]
        if not args:
            return
        argv = [self.runc, "--root", self.runc_root, "update", *args, id]
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        _, err = await proc.communicate()
        if proc.returncode != 0:
            raise CommandFailed(argv, proc.returncode or 1, err.decode("utf-8", "replace"))

    # ---- exit ----------------------------------------------------------------------------------
    def _conmon_pid(self, id: str) -> int | None:
        return _read_int(os.path.join(self.conmon_dir(id), "conmon.pid"))

    async def wait_exit(self, id: str) -> ExitStatus:
        """(exit code, oom_killed) once the container has exited; signals give 128+N as docker."""
        dir = self.conmon_dir(id)
        if not os.path.isdir(dir):
            raise NotFound(f"No such container: {id}")
        return await self._wait_conmon(dir, self._exit_file(id))

    async def _wait_conmon(self, dir: str, exit_file: str) -> ExitStatus:
        oom_file = os.path.join(dir, "oom")
        code = _read_int(exit_file)
        if code is None:
            pid = _read_int(os.path.join(dir, "conmon.pid"))
            pidfd = -1
            if pid:
                with contextlib.suppress(ProcessLookupError):
                    pidfd = os.pidfd_open(pid)
            # the pid could have been reused: it must still be a conmon running from this dir
            if pidfd >= 0 and (pid is None or not _is_conmon_of(pid, dir)):
                os.close(pidfd)
                pidfd = -1
            if pidfd >= 0:
                try:
                    await pipes.wait_readable(pidfd)
                finally:
                    os.close(pidfd)
            code = _read_int(exit_file)
            if code is None:
                raise SystemError_(f"conmon ({dir}) exited without writing an exit status")
        return ExitStatus(code, os.path.exists(oom_file))

    # ---- attach / resize -----------------------------------------------------------------------
    def open_attach(self, id: str) -> Attachment:
        """Connect to the container's attach socket (works for any exec-root length)."""
        return Attachment.connect(self.attach_socket_path(id))

    def resize(self, id: str, height: int, width: int) -> None:
        _write_ctl(self._bundle(id), height, width)

    # ---- exec ----------------------------------------------------------------------------------
    async def exec(
        self, id: str, exec_id: str, process: dict[str, Any], *, tty: bool, stdin: bool, attach: bool = True
    ) -> ExecHandle:
        """Run `process` (an OCI process object) in container `id` through `conmon --exec`.
        With `attach`, the attach socket is connected before the process starts."""
        dir = os.path.join(self.conmon_dir(id), "exec", exec_id)
        if not os.path.isdir(self.conmon_dir(id)):
            raise NotFound(f"No such container: {id}")
        shutil.rmtree(dir, ignore_errors=True)
        os.makedirs(os.path.join(dir, "exits"))
        spec_path = os.path.join(dir, "process.json")
        with open(spec_path, "w") as f:
            json.dump({**process, "terminal": bool(tty)}, f)
        argv = self._conmon_base_args(cid=id, cuuid=exec_id, bundle=dir, dir=dir, log="none:")
        if tty:
            argv.append("-t")
        if stdin:
            argv.append("-i")
        argv += ["-e", "--exec-attach", "--exec-process-spec", spec_path]
        proc, sync_r, start_w, attach_r = await self._spawn_conmon(argv, dir, attach_pipe=True)
        attachment: Attachment | None = None
        ok = False
        try:
            pipes.signal_start(
                start_w
            )  # first read: "you may proceed" (podman moves conmon to a cgroup here)
            ready = await pipes.read_message(attach_r)  # the attach socket exists
            if ready is None or pipes.message_value(ready) < 0:
                rc = await proc.wait()
                raise self._conmon_error(argv, dir, rc, ready)
            attach_path = os.path.join(dir, exec_id, "attach")
            if attach:
                attachment = Attachment.connect(attach_path)
            pipes.signal_start(start_w)  # second read: run `runc exec` now
            msg = await pipes.read_message(sync_r)
            rc = await proc.wait()
            if msg is None or pipes.message_value(msg) <= 0:
                raise self._conmon_error(argv, dir, rc, msg)
            ok = True
        finally:
            os.close(start_w)
            os.close(attach_r)
            if not ok:
                os.close(sync_r)
                if attachment is not None:
                    attachment.close()
        return ExecHandle(
            container_id=id,
            exec_id=exec_id,
            pid=pipes.message_value(msg),
            dir=dir,
            attach_path=attach_path,
            tty=tty,
            attachment=attachment,
            _sync_fd=sync_r,
            _runtime=self,
        )

    # ---- stats / top ---------------------------------------------------------------------------
    def stats(
        self, id: str, cgroups_path: str, *, name: str = "", prev: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """One docker stats sample from the container's cgroup."""
        from gorae.runtime.stats import container_stats, network_stats

        doc = container_stats(cgroups_path, id=id, name=name, prev=prev)
        st = self.state(id)
        nets = network_stats(st.pid) if st is not None and st.pid else {}
        if nets:  # dockerd leaves the section out when the container has no interface but lo
            doc["networks"] = nets
        return doc

    def top(self, id: str, ps_args: str, cgroups_path: str | None = None) -> dict[str, Any]:
        from gorae.runtime.top import top

        st = self.state(id)
        if st is None or st.status not in ("running", "paused"):
            raise Conflict(f"Container {id} is not running")
        return top(st.pid, ps_args, cgroups_path)

    # ---- logs (conmon's k8s-file format) -------------------------------------------------------
    def read_log(self, path: str, **options: Any) -> Iterator[LogChunk]:
        return read_log(path, **options)

    def follow_log(self, path: str, *, exited: Any = None, **options: Any) -> AsyncIterator[LogChunk]:
        return follow_log(path, exited=exited, **options)


def _is_conmon_of(pid: int, dir: str) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    return (
        bool(argv)
        and os.path.basename(argv[0]) == b"conmon"
        and os.path.join(dir, "conmon.pid").encode() in argv
    )


def _runc_state_file(runc_root: str, id: str) -> dict[str, Any] | None:
    try:
        with open(os.path.join(runc_root, id, "state.json"), "rb") as f:
            state = json.load(f)
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _proc_start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks), None if gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    if not fields or fields[0] in (b"Z", b"X"):
        return None
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def _delete_stopped(runc_root: str, id: str) -> bool:
    """What `runc delete` does for a stopped container (runc 1.1 `destroy`): remove its cgroups and
    its state directory. Only when there are no hooks, no Intel RDT group, and init (checked by pid
    and start time) is gone; False leaves everything to runc."""
    state = _runc_state_file(runc_root, id)
    if state is None:
        return False
    try:
        config = state["config"]
        if config.get("hooks") or state.get("intel_rdt_path"):
            return False
        if _proc_start_time(int(state["init_process_pid"])) == int(state["init_process_start"]):
            return False  # still running
        paths = sorted(set((state.get("cgroup_paths") or {}).values()), key=len, reverse=True)
    except (KeyError, TypeError, ValueError, AttributeError):
        return False
    for path in paths:
        try:
            os.rmdir(path)
        except FileNotFoundError:
            pass
        except OSError:
            return False  # busy (a leftover process or a child cgroup): runc kills and removes
    shutil.rmtree(os.path.join(runc_root, id), ignore_errors=True)
    return True
