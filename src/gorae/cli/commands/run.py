"""`gorae run` and `gorae create`: build the create request from docker's flags, pull a missing image,
attach before start, wait for the exit (or removal with --rm) and exit with the container's status.

Exit statuses as docker's: 125 for flag and daemon errors, 126 when the command cannot be invoked
(permission denied, is a directory), 127 when it is not found, otherwise the container's own code.
"""

from __future__ import annotations

import sys

from gorae.cli.commands.container_flags import build_create_body, check_platform_flags, container_opts
from gorae.cli.context import StatusError
from gorae.cli.flags import PROG, Spec
from gorae.cli.opts import FlagValueError, OptError
from gorae.client.api import q
from gorae.client.errors import APIError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from gorae.cli.context import Cli

RUN = Spec(
    "run",
    "[OPTIONS] IMAGE [COMMAND] [ARG...]",
    "Create and run a new container from an image",
    container_opts(),
    min_args=1,
    interspersed=False,
)
CREATE = Spec(
    "create",
    "[OPTIONS] IMAGE [COMMAND] [ARG...]",
    "Create a new container",
    [x for x in container_opts() if x.long not in ("detach", "detach-keys", "rm", "sig-proxy")] + [],
    min_args=1,
    interspersed=False,
)
# create keeps --rm (AutoRemove) as docker does
CREATE.opts.append(next(x for x in container_opts() if x.long == "rm"))
CREATE.opts.sort(key=lambda x: x.long)
for _o in CREATE.opts:
    if _o.long == "pull":
        # docker 28's text for create, stray "|" included
        _o.help = 'Pull image before creating ("always", "|missing", "never")'


def _flag_fail(cmd: str, msg: str) -> StatusError:
    return StatusError(125, f"{PROG}: {msg}\n\nRun '{PROG} {cmd} --help' for more information")


def _usage_fail(cmd: str, msg: str) -> StatusError:
    """pflag's refusal of a flag value: the message bare, then the usage line (docker's FlagErrorFunc)."""
    from gorae.cli.flags import usage_error

    return StatusError(125, usage_error(RUN if cmd == "run" else CREATE, msg).rstrip("\n"))


def pull_image(cli: Cli, image: str, *, quiet: bool = False, platform: str = "") -> None:
    """docker's create-path pullImage: POST /images/create with the registry's stored credentials (no
    login prompt on 401), the progress on stderr."""
    from gorae.cli.commands.registry import auth_header, parse_reference, pull_params
    from gorae.cli.progress import show_progress

    ref = parse_reference(image)
    params = pull_params(ref, platform=platform)
    resp = cli.api.request("POST", "/images/create", params, headers=auth_header(cli, ref.domain))
    show_progress(resp.iter_json(), cli.err, quiet=quiet)


def create_container(
    cli: Cli, v: dict[str, Any], args: list[str], *, attach: list[str], cmd_name: str
) -> str:
    image, cmd = args[0], args[1:]
    bad = check_platform_flags(v, api_version=cli.api.version)
    if bad:
        raise StatusError(1, bad)
    try:
        api_socket = None
        if v["use_api_socket"]:
            if cli.api.host.scheme != "unix":
                raise StatusError(125, f"{PROG}: flag --use-api-socket can only be used with unix sockets")
            api_socket = cli.api.host.path
        body = build_create_body(
            v, image, cmd, attach=attach, api_socket=api_socket, api_version=cli.api.version
        )
    except FlagValueError as e:
        raise _usage_fail(cmd_name, str(e)) from None
    except OptError as e:
        raise _flag_fail(cmd_name, str(e)) from None
    if v["rm"] and (body.get("HostConfig") or {}).get("RestartPolicy", {}).get("Name") not in (None, "", "no"):
        raise _flag_fail(cmd_name, "conflicting options: cannot specify both --restart and --rm")
    if v["cidfile"] and _exists(v["cidfile"]):  # docker checks before creating anything
        raise _flag_fail(
            cmd_name,
            f"container ID file found, make sure the other container isn't running or delete {v['cidfile']}",
        )
    bad_ref = _reference_error(image)
    if bad_ref:  # the docker CLI parses the image reference before asking the daemon
        raise _flag_fail(cmd_name, bad_ref) if cmd_name == "run" else StatusError(1, bad_ref)
    params: dict[str, Any] = {"name": v["name"]}
    if v["platform"]:
        params["platform"] = v["platform"]
    if v["pull"] not in ("missing", "always", "never"):
        raise _flag_fail(
            cmd_name, f'invalid pull option: \'{v["pull"]}\': must be one of "always", "missing" or "never"'
        )
    platform = v["platform"] or ""
    if v["pull"] == "always":
        pull_image(cli, image, quiet=v["quiet"], platform=platform)
    try:
        resp = cli.api.post_json("/containers/create", params, body)
    except APIError as e:
        if e.status != 404 or v["pull"] == "never" or not _is_reference(image):
            raise
        if not v["quiet"]:
            cli.err.write(f"Unable to find image '{_display_ref(image)}' locally\n")
            cli.err.flush()
        pull_image(cli, image, quiet=v["quiet"], platform=platform)
        resp = cli.api.post_json("/containers/create", params, body)
    for w in resp.get("Warnings") or []:
        sys.stderr.write(f"WARNING: {w}\n")
    cid: str = resp["Id"]
    if v["cidfile"]:
        try:
            with open(v["cidfile"], "x") as f:
                f.write(cid)
        except OSError as e:
            raise StatusError(125, f"{PROG}: failed to write the container ID to the file: {e}") from None
    return cid


_LOWER_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_TAG_CHARS = _LOWER_ALNUM | frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ_.-")


def _plain_component(c: str) -> bool:
    """A path component of the reference grammar: lowercase alphanumeric runs joined by ".", "_", "__" or
    dashes."""
    if not c or c[0] not in _LOWER_ALNUM or c[-1] not in _LOWER_ALNUM:
        return False
    sep = ""
    for ch in c:
        if ch in _LOWER_ALNUM:
            if sep and sep not in (".", "_", "__") and sep.strip("-"):
                return False
            sep = ""
        else:
            sep += ch
    return True


def _plain_reference(image: str) -> bool:
    """True for the common shapes `gorae.reference.parse` accepts (`busybox`, `library/busybox:1.36`, no
    registry host, no digest), checked without it: it imports `re` and `dataclasses` and compiles its
    grammar, a third of a `run`'s client-side cost. False means "not sure": the full parser decides."""
    if not 0 < len(image) <= 200 or "@" in image or image.count(":") > 1:  # 200 + "docker.io/library/" < 255
        return False
    name, colon, tag = image.partition(":")
    if colon and not (tag and len(tag) <= 128 and tag[0] not in ".-" and all(c in _TAG_CHARS for c in tag)):
        return False
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or parts[0] == "localhost"):  # a registry host
        return False
    if len(image) == 64 and all(c in "0123456789abcdef" for c in image):  # refused as an ID-like name
        return False
    return all(_plain_component(p) for p in parts)


def _reference_error(image: str) -> str:
    """docker's ParseAnyReference: an image ID or a reference; the error for anything else ("" when fine)."""
    if _plain_reference(image):
        return ""
    import string

    from gorae.errors import InvalidParameter
    from gorae.reference import parse

    bare = image.removeprefix("sha256:")
    if len(bare) == 64 and all(c in string.hexdigits.lower() for c in bare):
        return ""
    try:
        parse(image)
    except InvalidParameter as e:
        msg = str(e)
        return msg if msg.startswith("invalid reference format") else ""
    return ""


def _is_reference(image: str) -> bool:
    """docker pulls only what parses as a reference (not an image ID)."""
    from gorae.errors import InvalidParameter
    from gorae.reference import parse

    try:
        parse(image)
    except InvalidParameter:
        return False
    return True


def _display_ref(image: str) -> str:
    """reference.FamiliarString(TagNameOnly(ParseNormalizedNamed(image))): "busybox:latest"."""
    from gorae.reference import parse

    return parse(image).with_default_tag().familiar()


def cmd_create(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    attach = [a.lower() for a in v["attach"]]
    if (
        not attach
    ):  # docker's default for a container that is not detached: stdout, stderr (and stdin with -i)
        attach = ["stdout", "stderr"] + (["stdin"] if v["interactive"] else [])
    cid = create_container(cli, v, args, attach=attach, cmd_name="create")
    cli.print(cid)
    return 0


def start_error_status(message: str) -> int:
    """docker's mapping of a start failure to 126/127/125."""
    if (
        "executable file not found" in message
        or "no such file or directory" in message
        or "system cannot find the file specified" in message
    ):
        return 127
    if "permission denied" in message or "is a directory" in message:
        return 126
    return 125


def cmd_run(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    detach = v["detach"]
    attach = [a.lower() for a in v["attach"]]
    for a in attach:
        if a not in ("stdin", "stdout", "stderr"):
            raise _usage_fail(
                "run",
                f'invalid argument "{a}" for "-a, --attach" flag: valid streams are STDIN, STDOUT and STDERR',
            )
    if detach and attach:
        raise _flag_fail("run", "Conflicting options: -a and -d")
    if not detach and not attach:
        attach = ["stdout", "stderr"] + (["stdin"] if v["interactive"] else [])
    if v["tty"] and "stdin" in attach and not sys.stdin.isatty():
        raise StatusError(1, "the input device is not a TTY")
    cid = create_container(cli, v, args, attach=[] if detach else attach, cmd_name="run")
    api = cli.api
    if detach:
        try:
            api.post(f"/containers/{cid}/start")
        except APIError as e:
            raise StatusError(
                start_error_status(e.message), f"{PROG}: {e}\n\nRun '{PROG} run --help' for more information"
            ) from None
        cli.print(cid)
        return 0
    from gorae.cli.session import AttachSession  # threads, terminal and stream handling: after the create

    session = AttachSession(
        cli,
        cid,
        tty=v["tty"],
        stdin="stdin" in attach,
        stdout="stdout" in attach,
        stderr="stderr" in attach,
        detach_keys=v["detach_keys"],
        sig_proxy=v["sig_proxy"],
    )
    session.open()
    waiter = session.wait_for_exit("removed" if v["rm"] else "next-exit")
    try:
        api.post(f"/containers/{cid}/start")
    except APIError as e:
        session.close()
        code = start_error_status(e.message)
        if v["rm"]:
            _force_remove(cli, cid)
        raise StatusError(code, f"{PROG}: {e}\n\nRun '{PROG} run --help' for more information") from None
    detached = session.run()
    if detached:
        return 0
    status = waiter.result()
    return status


def _force_remove(cli: Cli, cid: str) -> None:
    try:
        cli.api.request("DELETE", f"/containers/{q(cid)}", {"force": 1, "v": 1}).read()
    except APIError:
        pass


COMMANDS = {"run": (RUN, cmd_run), "create": (CREATE, cmd_create)}


def _exists(path: str) -> bool:
    """os.path.exists without importing os (the CLI's start-up keeps it out: tests/unit/test_cli_startup.py)."""
    import posix

    try:
        posix.stat(path)
    except OSError:
        return False
    return True
