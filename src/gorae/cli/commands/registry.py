"""Registry commands: pull, push, login and logout, as docker 28's.

pull and push send the credentials stored for the image's registry (`X-Registry-Auth`, from
`gorae.client.credentials`) and draw the daemon's progress stream with `gorae.cli.progress`; when the daemon
answers 401 they ask for credentials once ("Login prior to pull:") and retry, as docker's PrivilegeFunc does.
login prompts (username echoed, password not), checks the credentials with `POST /auth` and stores them
where docker would (the config file's `auths` or a credential helper); logout erases them.
"""

from __future__ import annotations

import sys

from gorae.cli.context import StatusError
from gorae.cli.flags import O, Spec
from gorae.client.errors import APIError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TextIO

    from gorae.cli.context import Cli
    from gorae.client.credentials import Credentials
    from gorae.client.dockerconfig import AuthConfig
    from gorae.reference import Reference

REGISTER_SUGGEST = (
    "Log in with your Docker ID or email address to push and pull images from Docker Hub. "
    "If you don't have a Docker ID, head over to https://hub.docker.com/ to create one."
)
PAT_SUGGEST = (
    "You can log in with your password or a Personal Access "
    "Token (PAT). Using a limited-scope PAT grants better security and is required "
    "for organizations using SSO. Learn more at https://docs.docker.com/go/access-tokens/"
)
INFO_PLAIN = " Info -> "
INFO_FANCY = "\x1b[1m\x1b[106m\x1b[30mi\x1b[0m\x1b[0m \x1b[96mInfo → \x1b[0m\x1b[0m"


def print_note(out: TextIO, text: str) -> None:
    """docker's tui PrintNote: a blank line, the "Info ->" header, continuation lines indented under it."""
    tty = out.isatty()
    header = INFO_FANCY if tty else INFO_PLAIN
    out.write("\n" + header)
    for i, line in enumerate(text.split("\n")):
        if i:
            out.write(" " * 9)
        out.write((f"\x1b[3m{line}\x1b[0m" if tty else line) + "\n")
    out.flush()


def parse_reference(text: str) -> Reference:
    from gorae.errors import InvalidParameter
    from gorae.reference import parse

    try:
        return parse(text)
    except InvalidParameter as e:
        raise StatusError(1, str(e)) from None


def credentials(cli: Cli) -> Credentials:
    from gorae.client.credentials import Credentials

    return Credentials(cli.config_file)


def auth_header(cli: Cli, domain: str) -> dict[str, str]:
    from gorae.client.credentials import registry_auth_header

    return {"X-Registry-Auth": registry_auth_header(credentials(cli).for_domain(domain))}


def _privileged(cli: Cli, domain: str, command: str, send: Any) -> Any:
    """send(headers) once with the stored credentials; on 401 ask for new ones and send again."""
    try:
        return send(auth_header(cli, domain))
    except APIError as e:
        if e.status != 401:
            raise
    from gorae.client.credentials import INDEX_SERVER, CredentialsError, auth_config_key, registry_auth_header
    from gorae.client.dockerconfig import AuthConfig

    key = auth_config_key(domain)
    cli.out.write(f"\nLogin prior to {command}:\n")
    cli.out.flush()
    try:
        stored = credentials(cli).get(key)
    except (CredentialsError, OSError) as err:
        # docker 28 names Docker Hub's key here and below whatever the registry (its own slip, kept)
        cli.eprint(f"Unable to retrieve stored credentials for {INDEX_SERVER}, error: {err}.")
        stored = AuthConfig()
    auth = prompt_credentials(cli, "", "", stored.username, INDEX_SERVER)
    return send({"X-Registry-Auth": registry_auth_header(auth)})


# --- pull ----------------------------------------------------------------------------------------------

PULL = Spec(
    "pull",
    "[OPTIONS] NAME[:TAG|@DIGEST]",
    "Download an image from a registry",
    [
        O("all-tags", "a", help="Download all tagged images in the repository"),
        O("disable-content-trust", None, help="Skip image verification", default=True, default_text="true"),
        O("platform", None, "string", "Set platform if server is multi-platform capable"),
        O("quiet", "q", help="Suppress verbose output"),
    ],
    min_args=1,
    max_args=1,
    exact_args=True,
)


def pull_params(ref: Reference, *, all_tags: bool = False, platform: str = "") -> dict[str, str]:
    """POST /images/create's query as docker's client builds it (full name; the digest travels as `tag`)."""
    params = {"fromImage": ref.name}
    if not all_tags:
        params["tag"] = ref.digest or ref.tag or "latest"
    if platform:
        params["platform"] = platform.lower()
    return params


def pull(
    cli: Cli, ref: Reference, out: TextIO, *, quiet: bool, all_tags: bool = False, platform: str = ""
) -> None:
    """Pull and render the progress (docker's imagePullPrivileged)."""
    from gorae.cli.progress import show_progress

    params = pull_params(ref, all_tags=all_tags, platform=platform)

    def send(headers: dict[str, str]) -> Any:
        return cli.api.request("POST", "/images/create", params, headers=headers)

    resp = _privileged(cli, ref.domain, "pull", send)
    show_progress(resp.iter_json(), out, quiet=quiet)


def cmd_pull(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    ref = parse_reference(args[0])
    named_only = ref.tag is None and ref.digest is None
    if v["all_tags"] and not named_only:
        raise StatusError(1, "tag can't be used with --all-tags/-a")
    if not v["all_tags"] and named_only:
        ref = ref.with_default_tag()
        if not v["quiet"]:
            cli.print("Using default tag: latest")
            cli.out.flush()
    pull(cli, ref, cli.out, quiet=v["quiet"], all_tags=v["all_tags"], platform=v["platform"] or "")
    cli.print(str(ref))
    return 0


# --- push ----------------------------------------------------------------------------------------------

PUSH = Spec(
    "push",
    "[OPTIONS] NAME[:TAG]",
    "Upload an image to a registry",
    [
        O("all-tags", "a", help="Push all tags of an image to the repository"),
        O("disable-content-trust", None, help="Skip image signing", default=True, default_text="true"),
        O(
            "platform",
            None,
            "string",
            "Push a platform-specific manifest as a single-platform image to the registry.\n"
            "Image index won't be pushed, meaning that other manifests, including attestations won't be "
            "preserved.\n'os[/arch[/variant]]': Explicit platform (eg. linux/amd64)",
        ),
        O("quiet", "q", help="Suppress verbose output"),
    ],
    min_args=1,
    max_args=1,
    exact_args=True,
)


def cmd_push(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    from gorae.cli.progress import show_progress
    from gorae.client.api import q

    if v["platform"]:
        # docker checks the flag's API-version annotation first; this client speaks at most API 1.45, so a
        # platform-specific push always ends here, as the docker CLI's does against a 1.45 daemon
        if not cli.api.api_at_least("1.46"):
            raise StatusError(
                1,
                f'"--platform" requires API version 1.46, but the Docker daemon API version is {cli.api.version}',
            )
    ref = parse_reference(args[0])
    named_only = ref.tag is None and ref.digest is None
    if v["all_tags"] and not named_only:
        raise StatusError(1, "tag can't be used with --all-tags/-a")
    if not v["all_tags"] and named_only:
        ref = ref.with_default_tag()
        if not v["quiet"]:
            cli.print("Using default tag: latest")
            cli.out.flush()
    if ref.digest is not None:
        raise StatusError(1, "cannot push a digest reference")
    params: dict[str, str] = {}
    if not v["all_tags"] and ref.tag:
        params["tag"] = ref.tag
    path = "/images/" + "/".join(q(p) for p in ref.name.split("/")) + "/push"

    def send(headers: dict[str, str]) -> Any:
        return cli.api.request("POST", path, params, headers=headers)

    resp = _privileged(cli, ref.domain, "push", send)
    show_progress(resp.iter_json(), cli.out, quiet=v["quiet"])
    if v["quiet"]:
        cli.print(str(ref))
    return 0


# --- login / logout ------------------------------------------------------------------------------------

LOGIN = Spec(
    "login",
    "[OPTIONS] [SERVER]",
    "Authenticate to a registry.\nDefaults to Docker Hub if no server is specified.",
    [
        O("password", "p", "string", "Password or Personal Access Token (PAT)"),
        O("password-stdin", None, help="Take the Password or Personal Access Token (PAT) from stdin"),
        O("username", "u", "string", "Username"),
    ],
    max_args=1,
)

LOGOUT = Spec(
    "logout",
    "[SERVER]",
    "Log out from a registry.\nIf no server is specified, the default is defined by the daemon.",
    [],
    max_args=1,
)


def _read_line(cli: Cli, prompt: str) -> str:
    """docker's prompt.ReadInput: the prompt on stdout, one line from stdin, surrounding space trimmed.
    (docker waits for a line forever on a closed stdin; this gives back "" then.)"""
    cli.out.write(prompt)
    cli.out.flush()
    line = sys.stdin.readline()
    return line.strip()


def _read_password(cli: Cli, prompt: str) -> str:
    """The password prompt with the terminal's echo off, restored on every exit path."""
    import termios

    try:
        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd)
    except (termios.error, OSError, ValueError):  # not a terminal (or no descriptor): nothing to turn off
        fd, saved = -1, None
    if saved is not None:
        quiet = list(saved)
        quiet[3] = quiet[3] & ~termios.ECHO
        termios.tcsetattr(fd, termios.TCSANOW, quiet)
    try:
        return _read_line(cli, prompt)
    finally:
        if saved is not None:
            termios.tcsetattr(fd, termios.TCSANOW, saved)


def _hints_enabled() -> bool:
    import os

    v = os.environ.get("DOCKER_CLI_HINTS", "")
    if not v:
        return True
    return v.lower() not in ("0", "f", "false")


def prompt_credentials(cli: Cli, user: str, password: str, default_user: str, server: str) -> AuthConfig:
    """docker's PromptUserForCredentials."""
    from gorae.client.credentials import INDEX_SERVER
    from gorae.client.dockerconfig import AuthConfig

    user = user.strip()
    if not user:
        if server == INDEX_SERVER:
            cli.print(REGISTER_SUGGEST)
            if _hints_enabled():
                cli.print(PAT_SUGGEST)
                cli.print()
        default_user = default_user.strip()
        msg = f"Username ({default_user}): " if default_user else "Username: "
        user = _read_line(cli, msg) or default_user
        if not user:
            raise StatusError(1, "Error: Non-null Username Required")
    password = password.strip()
    if not password:
        if server == INDEX_SERVER:
            print_note(
                cli.err,
                "A Personal Access Token (PAT) can be used instead.\n"
                "To create a PAT, visit \x1b[4mhttps://app.docker.com/settings\x1b[0m\n\n",
            )
        password = _read_password(cli, "Password: ")
        cli.print()
        if not password:
            raise StatusError(1, "Error: Password Required")
    return AuthConfig(username=user, password=password, serveraddress=server)


def _registry_login(cli: Cli, auth: AuthConfig) -> tuple[str, str]:
    """POST /auth → (Status, IdentityToken)."""
    doc = cli.api.post_json("/auth", None, auth.to_json()) or {}
    status = doc.get("Status") if isinstance(doc, dict) else ""
    token = doc.get("IdentityToken") if isinstance(doc, dict) else ""
    return str(status or ""), str(token or "")


def _store(cli: Cli, auth: AuthConfig) -> None:
    from gorae.client.credentials import CredentialsError

    try:
        credentials(cli).store_for(auth.serveraddress).store(auth)
    except (CredentialsError, OSError) as e:
        raise StatusError(1, f"Error saving credentials: {e}") from None


def cmd_login(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    from dataclasses import replace

    from gorae.client.credentials import (
        DEFAULT_NAMESPACE,
        INDEX_SERVER,
        CredentialsError,
        convert_to_hostname,
    )
    from gorae.client.dockerconfig import AuthConfig

    user, password = v["username"] or "", v["password"] or ""
    changed = v["_set"]
    if "password_stdin" in changed:
        if "password" in changed:
            raise StatusError(1, "conflicting options: cannot specify both --password and --password-stdin")
        if "username" not in changed:
            raise StatusError(1, "the --password-stdin option requires --username to be set")
    if "username" in changed and not user:
        raise StatusError(1, "username is empty")
    if "password" in changed and not password:
        raise StatusError(1, "password is empty")
    if password:
        cli.eprint("WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
    if v["password_stdin"]:
        if not user:
            raise StatusError(1, "username is empty")
        password = sys.stdin.read().removesuffix("\n").removesuffix("\r")
    server = args[0] if args and args[0] not in ("", DEFAULT_NAMESPACE) else INDEX_SERVER
    is_default = server == INDEX_SERVER
    if not is_default:
        server = convert_to_hostname(server)
    creds = credentials(cli)
    stored, lookup_err = AuthConfig(serveraddress=server), None
    if not user and not password:
        try:
            stored = replace(creds.get(server), serveraddress=server, identitytoken="")
        except CredentialsError as e:
            lookup_err = e
    msg, failed = "", True
    if lookup_err is None and stored.username and stored.password:
        msg, failed = _login_stored(cli, stored)
    if failed:
        if (not user or not password) and not sys.stdin.isatty():
            raise StatusError(1, "Error: Cannot perform an interactive login from a non TTY device")
        if server == INDEX_SERVER and not user and not password:
            cli.err.write("Failed to start web-based login - falling back to command line login...\n\n")
            cli.err.flush()
        auth = prompt_credentials(cli, user, password, stored.username, server)
        msg, token = _registry_login(cli, auth)
        if token:
            auth = replace(auth, password="", identitytoken=token)
        _store(cli, auth)
    if msg:
        cli.print(msg)
    return 0


def _login_stored(cli: Cli, auth: AuthConfig) -> tuple[str, bool]:
    """docker's loginWithStoredCredentials: (status, failed?)."""
    from dataclasses import replace

    err = cli.err
    err.write("Authenticating with existing credentials...")
    if auth.username:
        err.write(f" [Username: {auth.username}]")
    err.write("\n")
    print_note(err, "To login with a different account, run 'docker logout' followed by 'docker login'")
    err.write("\n\n")
    err.flush()
    status, token, failed = "", "", False
    try:
        status, token = _registry_login(cli, auth)
    except APIError as e:
        failed = True
        if e.status == 401:
            cli.eprint("Stored credentials invalid or expired")
        else:
            cli.eprint(f"Login did not succeed, error: {e}")
    if token:
        auth = replace(auth, password="", identitytoken=token)
    _store(cli, auth)
    return status, failed


def cmd_logout(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    from gorae.client.credentials import INDEX_SERVER, CredentialsError, convert_to_hostname

    server = args[0] if args else ""
    is_default = not server
    if is_default:
        server = INDEX_SERVER
    regs, hostname = [server], server
    if not is_default:
        hostname = convert_to_hostname(server)
        regs += [hostname, "http://" + hostname, "https://" + hostname]
    cli.print(f"Removing login credentials for {hostname}")
    cli.out.flush()
    creds = credentials(cli)
    errs: dict[str, Exception] = {}
    for r in regs:
        try:
            creds.store_for(r).erase(r)
        except (CredentialsError, OSError) as e:
            errs[r] = e
    if len(errs) == len(regs):
        cli.eprint("WARNING: could not erase credentials:")
        for k, failure in errs.items():
            cli.eprint(f"{k}: {failure}")
    return 0


COMMANDS = {
    "pull": (PULL, cmd_pull),
    "push": (PUSH, cmd_push),
    "login": (LOGIN, cmd_login),
    "logout": (LOGOUT, cmd_logout),
}
