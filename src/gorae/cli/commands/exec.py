"""`gorae exec`: create an exec instance, then start it detached or attached (hijacked), and exit with its
exit code."""

from __future__ import annotations

import sys
from typing import Any

from gorae.cli.context import Cli, StatusError
from gorae.cli.flags import O, Spec
from gorae.cli.opts import OptError, parse_env_list, read_kv_file
from gorae.cli.terminal import get_winsize
from gorae.client.api import q

EXEC = Spec(
    "exec",
    "[OPTIONS] CONTAINER COMMAND [ARG...]",
    "Execute a command in a running container",
    [
        O("detach", "d", help="Detached mode: run command in the background"),
        O("detach-keys", None, "string", "Override the key sequence for detaching a container"),
        O("env", "e", "list", "Set environment variables"),
        O("env-file", None, "list", "Read in a file of environment variables"),
        O("interactive", "i", help="Keep STDIN open even if not attached"),
        O("privileged", None, help="Give extended privileges to the command"),
        O("tty", "t", help="Allocate a pseudo-TTY"),
        O("user", "u", "string", 'Username or UID (format: "<name|uid>[:<group|gid>]")'),
        O("workdir", "w", "string", "Working directory inside the container"),
    ],
    min_args=2,
    interspersed=False,
)


def cmd_exec(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    from gorae.cli.session import AttachSession

    name, cmd = args[0], args[1:]
    try:
        env: list[str] = []
        for f in v["env_file"]:
            env += read_kv_file(f, env=True)
        env += parse_env_list(v["env"])
    except OptError as e:
        raise StatusError(125, str(e)) from None
    tty, interactive, detach = v["tty"], v["interactive"], v["detach"]
    if tty and interactive and not sys.stdin.isatty():
        raise StatusError(1, "the input device is not a TTY")
    body: dict[str, Any] = {
        "User": v["user"] or "",
        "Privileged": v["privileged"],
        "Tty": tty,
        "AttachStdin": interactive and not detach,
        "AttachStdout": not detach,
        "AttachStderr": not detach,
        "Env": env or None,
        "WorkingDir": v["workdir"] or "",
        "Cmd": cmd,
    }
    keys = v["detach_keys"] or cli.config.get("detachKeys")
    if keys:  # the daemon detects them (the flag, else config.json's detachKeys, as the docker CLI)
        body["DetachKeys"] = keys
    size = (get_winsize(1) or get_winsize(0)) if tty else None
    if size:  # the exec's terminal has the right size from its start (docker's ConsoleSize)
        body["ConsoleSize"] = [size[0], size[1]]
    api = cli.api
    exec_id = api.post_json(f"/containers/{q(name)}/exec", None, body)["Id"]
    if detach:
        api.post(f"/exec/{exec_id}/start", None, {"Detach": True, "Tty": tty})
        return 0
    s = AttachSession(
        cli, name, tty=tty, stdin=interactive, detach_keys=v["detach_keys"], sig_proxy=False, exec_id=exec_id
    )
    s.open({"Detach": False, "Tty": tty, **({"ConsoleSize": body["ConsoleSize"]} if size else {})})
    if s.run():  # docker 28 reports the detach as an error, as `attach` does
        raise StatusError(1, "read escape sequence")
    doc = api.get_json(f"/exec/{exec_id}/json") or {}
    code = doc.get("ExitCode")
    return 126 if code is None else int(code)


COMMANDS = {"exec": (EXEC, cmd_exec)}
