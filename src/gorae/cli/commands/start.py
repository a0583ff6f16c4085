"""`gorae start` (with -a/-i attaching before the start) and `gorae attach`."""

from __future__ import annotations

from typing import Any

from gorae.cli.context import Cli, StatusError
from gorae.cli.flags import O, Spec
from gorae.client.api import q
from gorae.client.errors import APIError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from gorae.cli.session import AttachSession

START = Spec(
    "start",
    "[OPTIONS] CONTAINER [CONTAINER...]",
    "Start one or more stopped containers",
    [
        O("attach", "a", help="Attach STDOUT/STDERR and forward signals"),
        O("checkpoint", None, "string", "Restore from this checkpoint"),
        O("checkpoint-dir", None, "string", "Use a custom checkpoint storage directory"),
        O("detach-keys", None, "string", "Override the key sequence for detaching a container"),
        O("interactive", "i", help="Attach container's STDIN"),
    ],
    min_args=1,
)

ATTACH = Spec(
    "attach",
    "[OPTIONS] CONTAINER",
    "Attach local standard input, output, and error streams to a running container",
    [
        O("detach-keys", None, "string", "Override the key sequence for detaching a container"),
        O("no-stdin", None, help="Do not attach STDIN"),
        O(
            "sig-proxy",
            None,
            help="Proxy all received signals to the process",
            default=True,
            default_text="true",
        ),
    ],
    min_args=1,
    max_args=1,
    exact_args=True,
)


def _session(
    cli: Cli, name: str, *, stdin: bool, keys: str | None, sig_proxy: bool
) -> tuple[AttachSession, dict[str, Any]]:
    from gorae.cli.session import AttachSession

    info = cli.api.get_json(f"/containers/{q(name)}/json")
    cfg = info.get("Config") or {}
    tty = bool(cfg.get("Tty"))
    use_stdin = stdin and bool(cfg.get("OpenStdin"))
    s = AttachSession(cli, info["Id"], tty=tty, stdin=use_stdin, detach_keys=keys, sig_proxy=sig_proxy)
    return s, info


def cmd_start(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    if v["checkpoint"] or v["checkpoint_dir"]:
        raise StatusError(1, "Error response from daemon: checkpoint is only supported in experimental mode")
    if v["attach"] or v["interactive"]:
        if len(args) > 1:
            raise StatusError(1, "you cannot start and attach multiple containers at once")
        from gorae.cli.commands.run import start_error_status

        s, info = _session(cli, args[0], stdin=v["interactive"], keys=v["detach_keys"], sig_proxy=True)
        if (info.get("State") or {}).get("Running"):
            pass
        s.open()
        waiter = s.wait_for_exit("next-exit")
        try:
            cli.api.post(f"/containers/{q(info['Id'])}/start")
        except APIError as e:
            s.close()
            raise StatusError(start_error_status(e.message), str(e)) from None
        if s.run():
            return 0
        return waiter.result()
    failed: list[str] = []
    for n in args:
        try:
            cli.api.post(f"/containers/{q(n)}/start", ok=(304,))
            cli.print(n)
        except APIError as e:
            cli.eprint(str(e))
            failed.append(n)
    if failed:
        raise StatusError(1, "Error: failed to start containers: " + ", ".join(failed))
    return 0


def cmd_attach(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    s, info = _session(cli, args[0], stdin=not v["no_stdin"], keys=v["detach_keys"], sig_proxy=v["sig_proxy"])
    state = info.get("State") or {}
    if not state.get("Running"):
        raise StatusError(1, "You cannot attach to a stopped container, start it first")
    if state.get("Paused"):
        raise StatusError(1, "You cannot attach to a paused container, unpause it first")
    s.open()
    if s.run():  # docker attach reports the detach as an error
        raise StatusError(1, "read escape sequence")
    try:
        doc = cli.api.post_json(f"/containers/{q(info['Id'])}/wait", {"condition": "not-running"}) or {}
    except APIError:
        return 0
    return int(doc.get("StatusCode", 0))


COMMANDS = {"start": (START, cmd_start), "attach": (ATTACH, cmd_attach)}
