"""ExecService: `docker exec` sessions — create, start (attached or detached), inspect, resize.

Owns exec records (in memory, as docker keeps them: they vanish with the daemon and with their
container), the OCI process of an exec (the container's own process settings with the exec's command,
env, user, workdir, tty and privileges), and the exec events (`exec_create: CMD`, `exec_start: CMD`,
`exec_die`). The runtime runs the process under conmon; the API layer pumps the attach stream. A container's finished sessions are forgotten when it dies and
all of them when it is destroyed: the service listens to the container repository's events for that.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
from dataclasses import dataclass, field
from typing import Any

from gorae.container import state as cs
from gorae.container.fs import ContainerFS
from gorae.container.record import Container
from gorae.container.repository import ContainerRepository
from gorae.container.state import Op
from gorae.errors import Conflict, InvalidParameter, NotFound
from gorae.runtime.types import ExecProcess, Runtime

log = logging.getLogger("gorae.execs")


@dataclass
class ExecRecord:
    id: str
    container_id: str
    config: dict[str, Any]
    running: bool = False
    exit_code: int | None = None
    pid: int = 0
    started: bool = False
    handle: ExecProcess | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def command_line(self) -> str:
        return " ".join(self.config.get("Cmd") or [])


class ExecService:
    def __init__(self, repo: ContainerRepository, runtime: Runtime, fs: ContainerFS) -> None:
        self._repo = repo
        self._runtime = runtime
        self._fs = fs
        self._execs: dict[str, ExecRecord] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        repo.on_event(self._on_container_event)

    def _on_container_event(self, ct: Container, action: str) -> None:
        if action == "die":
            self.container_exited(ct.id)
        elif action == "destroy":
            self.container_removed(ct.id)

    # ---- lookup ------------------------------------------------------------------------------

    def get(self, exec_id: str) -> ExecRecord:
        rec = self._execs.get(exec_id)
        if rec is None:
            raise NotFound(f"No such exec instance: {exec_id}")
        return rec

    def ids_of(self, container_id: str) -> list[str]:
        return [e.id for e in self._execs.values() if e.container_id == container_id]

    def container_exited(self, container_id: str) -> None:
        """Docker forgets a container's exec sessions when it stops (finished ones only here)."""
        for rec in list(self._execs.values()):
            if rec.container_id == container_id and not rec.running:
                self._execs.pop(rec.id, None)

    def container_removed(self, container_id: str) -> None:
        for rec in list(self._execs.values()):
            if rec.container_id == container_id:
                self._execs.pop(rec.id, None)

    # ---- create ------------------------------------------------------------------------------

    def create(self, container_ref: str, body: dict[str, Any] | None) -> str:
        ct = self._repo.get(container_ref)
        if not isinstance(body, dict):
            raise InvalidParameter("No exec command specified")
        cmd = body.get("Cmd")
        if isinstance(cmd, str):
            cmd = [cmd]
        if not cmd or not isinstance(cmd, list) or not all(isinstance(c, str) for c in cmd):
            raise InvalidParameter("No exec command specified")
        # dockerd names a paused container as the client did, else by its ID
        cs.require(ct.status, Op.EXEC_CREATE, container_ref if ct.status == cs.Status.PAUSED else ct.id)
        env = body.get("Env") or []
        if not isinstance(env, list) or not all(isinstance(e, str) for e in env):
            raise InvalidParameter("invalid Env: expected a list of strings")
        wd = body.get("WorkingDir") or ""
        if wd and not wd.startswith("/"):
            raise InvalidParameter(
                f"the working directory '{wd}' is invalid, it needs to be an absolute path"
            )
        config = {
            "User": str(body.get("User") or ""),
            "Privileged": bool(body.get("Privileged")),
            "Tty": bool(body.get("Tty")),
            "AttachStdin": bool(body.get("AttachStdin")),
            "AttachStdout": bool(body.get("AttachStdout")),
            "AttachStderr": bool(body.get("AttachStderr")),
            "DetachKeys": str(body.get("DetachKeys") or ""),
            "Env": list(env),
            "WorkingDir": wd,
            "Cmd": list(cmd),
            "ConsoleSize": body.get("ConsoleSize"),
        }
        exec_id = secrets.token_hex(32)
        rec = ExecRecord(exec_id, ct.id, config)
        self._execs[exec_id] = rec
        self._repo.event(ct, f"exec_create: {rec.command_line}", {"execID": exec_id})
        return exec_id

    # ---- inspect -----------------------------------------------------------------------------

    def inspect(self, exec_id: str) -> dict[str, Any]:
        rec = self.get(exec_id)
        cfg = rec.config
        cmd = cfg["Cmd"]
        return {
            "ID": rec.id,
            "Running": rec.running,
            "ExitCode": rec.exit_code,
            "ProcessConfig": {
                "tty": cfg["Tty"],
                "entrypoint": cmd[0],
                "arguments": cmd[1:],
                "privileged": cfg["Privileged"],
                **({"user": cfg["User"]} if cfg["User"] else {}),
            },
            "OpenStdin": cfg["AttachStdin"],
            "OpenStderr": cfg["AttachStderr"],
            "OpenStdout": cfg["AttachStdout"],
            "CanRemove": False,
            "ContainerID": rec.container_id,
            "DetachKeys": cfg["DetachKeys"],
            "Pid": rec.pid,
        }

    # ---- start -------------------------------------------------------------------------------

    def check_startable(self, exec_id: str) -> ExecRecord:
        rec = self.get(exec_id)
        if rec.running:
            raise Conflict(f"Error: Exec command {rec.id} is already running")
        if rec.started:
            raise Conflict(f"Error: Exec command {rec.id} has already run")
        ct = self._repo.get(rec.container_id)
        cs.require(ct.status, Op.EXEC_START, ct.id)
        return rec

    async def start(
        self, exec_id: str, *, attach: bool, tty: bool | None = None, console_size: Any = None
    ) -> ExecProcess:
        """Run the exec's process; with `attach` its attach socket is connected before it starts.
        An attached start that fails records docker's exit code for the failure (126 or 127)."""
        rec = self.check_startable(exec_id)
        ct = self._repo.get(rec.container_id)
        if tty is not None:
            rec.config["Tty"] = bool(tty)
        if console_size:
            rec.config["ConsoleSize"] = console_size
        rec.started = True
        rec.running = True
        try:
            process = await asyncio.to_thread(self._process, ct.id, rec.config)
            handle = await self._runtime.exec(
                ct.id,
                rec.id,
                process,
                tty=rec.config["Tty"],
                stdin=rec.config["AttachStdin"] and attach,
                attach=attach,
            )
        except Exception:
            rec.running = False
            rec.exit_code = 126  # moby: any failed exec start, a missing command included (run says 127)
            rec.done.set()
            raise
        rec.handle = handle
        rec.pid = handle.pid
        self._repo.event(ct, f"exec_start: {rec.command_line}", {"execID": rec.id})
        task = asyncio.ensure_future(self._wait(rec, handle))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if rec.config.get("ConsoleSize") and rec.config["Tty"]:
            with contextlib.suppress(Exception):
                h, w = rec.config["ConsoleSize"]
                if h and w:
                    handle.resize(int(h), int(w))
        return handle

    async def _wait(self, rec: ExecRecord, handle: ExecProcess) -> None:
        try:
            code = await handle.wait()
        except Exception as e:
            log.warning("exec %s: %s", rec.id[:12], e)
            code = 126
        rec.exit_code = int(code)
        rec.running = False
        rec.done.set()
        with contextlib.suppress(NotFound):
            ct = self._repo.get(rec.container_id)
            self._repo.event(ct, "exec_die", {"execID": rec.id, "exitCode": str(code)})

    async def wait_recorded(self, exec_id: str, timeout: float) -> None:
        """Until the exec's exit code is recorded (clients read it right after the stream ends)."""
        rec = self.get(exec_id)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(rec.done.wait(), timeout)

    def forget(self, exec_id: str) -> None:
        """Drop a finished session at once (the daemon's own sessions: health probes)."""
        self._execs.pop(exec_id, None)

    def resize(self, exec_id: str, height: int, width: int) -> None:
        rec = self.get(exec_id)
        if rec.handle is None or not rec.running:
            raise Conflict(f"Exec {exec_id} is not running")
        rec.handle.resize(height, width)

    # ---- the OCI process ---------------------------------------------------------------------

    def _process(self, container_id: str, cfg: dict[str, Any]) -> dict[str, Any]:
        """The container's process settings, with the exec's command, env, user, cwd and tty."""
        from gorae.runtime.users import resolve_user

        bundle = self._fs.dir(container_id)
        with open(os.path.join(bundle, "config.json"), encoding="utf-8") as f:
            spec = json.load(f)
        proc: dict[str, Any] = dict(spec.get("process") or {})
        rootfs = (spec.get("root") or {}).get("path") or self._fs.rootfs_path(container_id)
        env = list(proc.get("env") or [])
        keys = {e.split("=", 1)[0]: i for i, e in enumerate(env)}
        if cfg["User"]:
            group_add = self._repo.get(container_id).host_config.get("GroupAdd")
            user = resolve_user(rootfs, cfg["User"], group_add)
            proc["user"] = {
                "uid": user.uid,
                "gid": user.gid,
                **({"additionalGids": user.additional_gids} if user.additional_gids else {}),
            }
            if "HOME" in keys:
                env[keys["HOME"]] = f"HOME={user.home}"
        extra = [e for e in cfg["Env"] if "=" in e]  # a bare "VAR" the client could not resolve: dropped, as dockerd
        if cfg["Tty"] and not any(e.startswith("TERM=") for e in env + extra):
            extra.append("TERM=xterm")
        for entry in extra:
            k = entry.split("=", 1)[0]
            if k in keys:
                env[keys[k]] = entry
            else:
                keys[k] = len(env)
                env.append(entry)
        proc["env"] = env
        proc["args"] = list(cfg["Cmd"])
        proc["terminal"] = bool(cfg["Tty"])
        if cfg["WorkingDir"]:
            proc["cwd"] = cfg["WorkingDir"]
        if cfg["Privileged"]:
            from gorae.runtime.caps import ALL_CAPS

            caps = list(ALL_CAPS)
            proc["capabilities"] = {"bounding": caps, "effective": caps, "permitted": caps}
        proc.pop("consoleSize", None)
        return proc
