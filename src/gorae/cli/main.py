"""Entry point `gorae`: global flags, command lookup (top-level words, management commands and docker's
aliases), lazy import of the one command module needed, and docker's exit statuses and error texts.

Nothing heavy is imported before the command is known. Commands that are not the CLI's (`gorae daemon`) are
handed in by the entry point `gorae.cmd.main` as `commands` and get their arguments untouched: this package
talks to a daemon only through `gorae.client`, and never imports one.
"""

from __future__ import annotations

import sys

from gorae.cli.flags import (
    PROG,
    FlagError,
    HelpRequested,
    O,
    Spec,
    args_error,
    check_args,
    parse,
    render_help,
    usage_error,
)

# key -> (module under gorae.cli.commands, one-line description)
HANDLERS: dict[str, tuple[str, str]] = {
    "run": ("run", "Create and run a new container from an image"),
    "create": ("run", "Create a new container"),
    "start": ("start", "Start one or more stopped containers"),
    "attach": ("start", "Attach local standard input, output, and error streams to a running container"),
    "exec": ("exec", "Execute a command in a running container"),
    "ps": ("ps", "List containers"),
    "stop": ("lifecycle", "Stop one or more running containers"),
    "restart": ("lifecycle", "Restart one or more containers"),
    "kill": ("lifecycle", "Kill one or more running containers"),
    "rm": ("lifecycle", "Remove one or more containers"),
    "pause": ("lifecycle", "Pause all processes within one or more containers"),
    "unpause": ("lifecycle", "Unpause all processes within one or more containers"),
    "wait": ("lifecycle", "Block until one or more containers stop, then print their exit codes"),
    "rename": ("lifecycle", "Rename a container"),
    "update": ("lifecycle", "Update configuration of one or more containers"),
    "port": ("lifecycle", "List port mappings or a specific mapping for the container"),
    "diff": ("lifecycle", "Inspect changes to files or directories on a container's filesystem"),
    "top": ("lifecycle", "Display the running processes of a container"),
    "commit": ("lifecycle", "Create a new image from a container's changes"),
    "export": ("lifecycle", "Export a container's filesystem as a tar archive"),
    "container prune": ("lifecycle", "Remove all stopped containers"),
    "logs": ("logs", "Fetch the logs of a container"),
    "cp": ("cp", "Copy files/folders between a container and the local filesystem"),
    "inspect": ("inspect", "Return low-level information on Docker objects"),
    "container inspect": ("inspect", "Display detailed information on one or more containers"),
    "image inspect": ("inspect", "Display detailed information on one or more images"),
    "stats": ("stats", "Display a live stream of container(s) resource usage statistics"),
    "images": ("images", "List images"),
    "rmi": ("image_ops", "Remove one or more images"),
    "tag": ("image_ops", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE"),
    "history": ("image_ops", "Show the history of an image"),
    "save": ("image_ops", "Save one or more images to a tar archive (streamed to STDOUT by default)"),
    "load": ("image_ops", "Load an image from a tar archive or STDIN"),
    "build": ("build", "Build an image from a Dockerfile"),
    "builder prune": ("build", "Remove build cache"),
    "import": ("image_ops", "Import the contents from a tarball to create a filesystem image"),
    "pull": ("registry", "Download an image from a registry"),
    "push": ("registry", "Upload an image to a registry"),
    "login": ("registry", "Authenticate to a registry"),
    "logout": ("registry", "Log out from a registry"),
    "image prune": ("image_ops", "Remove unused images"),
    "info": ("system", "Display system-wide information"),
    "version": ("system", "Show the gorae version information"),
    "events": ("system", "Get real time events from the server"),
    "system df": ("system", "Show docker disk usage"),
    "system prune": ("system", "Remove unused data"),
    "completion bash": ("completion", "Generate the autocompletion script for bash"),
    "completion fish": ("completion", "Generate the autocompletion script for fish"),
    "completion powershell": ("completion", "Generate the autocompletion script for powershell"),
    "completion zsh": ("completion", "Generate the autocompletion script for zsh"),
    "volume create": ("volume", "Create a volume"),
    "volume inspect": ("volume", "Display detailed information on one or more volumes"),
    "volume ls": ("volume", "List volumes"),
    "volume prune": ("volume", "Remove unused local volumes"),
    "volume rm": ("volume", "Remove one or more volumes"),
    "network connect": ("network", "Connect a container to a network"),
    "network create": ("network", "Create a network"),
    "network disconnect": ("network", "Disconnect a container from a network"),
    "network inspect": ("network", "Display detailed information on one or more networks"),
    "network ls": ("network", "List networks"),
    "network prune": ("network", "Remove all unused networks"),
    "network rm": ("network", "Remove one or more networks"),
    "swarm ca": ("swarm", "Display and rotate the root CA"),
    "swarm init": ("swarm", "Initialize a swarm"),
    "swarm join": ("swarm", "Join a swarm as a node and/or manager"),
    "swarm join-token": ("swarm", "Manage join tokens"),
    "swarm leave": ("swarm", "Leave the swarm"),
    "swarm unlock": ("swarm", "Unlock swarm"),
    "swarm unlock-key": ("swarm", "Manage the unlock key"),
    "swarm update": ("swarm", "Update the swarm"),
    "node demote": ("node", "Demote one or more nodes from manager in the swarm"),
    "node inspect": ("node", "Display detailed information on one or more nodes"),
    "node ls": ("node", "List nodes in the swarm"),
    "node promote": ("node", "Promote one or more nodes to manager in the swarm"),
    "node ps": ("tasks", "List tasks running on one or more nodes, defaults to current node"),
    "node rm": ("node", "Remove one or more nodes from the swarm"),
    "node update": ("node", "Update a node"),
    "secret create": ("secret", "Create a secret from a file or STDIN as content"),
    "secret inspect": ("secret", "Display detailed information on one or more secrets"),
    "secret ls": ("secret", "List secrets"),
    "secret rm": ("secret", "Remove one or more secrets"),
    "config create": ("secret", "Create a config from a file or STDIN"),
    "config inspect": ("secret", "Display detailed information on one or more configs"),
    "config ls": ("secret", "List configs"),
    "config rm": ("secret", "Remove one or more configs"),
    "service create": ("service", "Create a new service"),
    "service inspect": ("service", "Display detailed information on one or more services"),
    "service logs": ("service_logs", "Fetch the logs of a service or task"),
    "service ls": ("service", "List services"),
    "service ps": ("tasks", "List the tasks of one or more services"),
    "service rm": ("service", "Remove one or more services"),
    "service rollback": ("service", "Revert changes to a service's configuration"),
    "service scale": ("service", "Scale one or multiple replicated services"),
    "service update": ("service", "Update a service"),
    "deploy init": ("deploy", "Create (or adopt) a git repository whose pushes deploy an application"),
    "deploy ls": ("deploy", "List deployed applications"),
    "deploy log": ("deploy", "Show an application's deploys"),
    "deploy rollback": ("deploy", "Serve a previous version again"),
    "deploy hook": ("deploy", "Deploy the pushed commit (run by the repository's pre-receive hook)"),
}

# docker's "Swarm Commands" section of `--help`
SWARM_MANAGEMENT = ("config", "node", "secret", "service", "swarm")

TOP: dict[str, str] = {
    k: k
    for k in (
        "run create start attach exec ps stop restart kill rm pause unpause wait rename update port diff top "
        "commit export logs cp inspect stats images rmi tag history save load import build pull push login logout info version events"
    ).split()
}

MANAGEMENT: dict[str, tuple[str, dict[str, str]]] = {
    "builder": ("Manage builds", {"build": "build", "prune": "builder prune"}),
    "container": (
        "Manage containers",
        {
            **{
                k: k
                for k in "attach commit cp create diff exec export kill logs pause port rename restart rm run start stats stop top unpause update wait".split()
            },
            "ls": "ps",
            "list": "ps",
            "ps": "ps",
            "remove": "rm",
            "inspect": "container inspect",
            "prune": "container prune",
        },
    ),
    "deploy": (
        "Deploy applications by git push",
        {
            "init": "deploy init",
            "ls": "deploy ls",
            "list": "deploy ls",
            "log": "deploy log",
            "rollback": "deploy rollback",
            "hook": "deploy hook",
        },
    ),
    "image": (
        "Manage images",
        {
            "build": "build",
            "history": "history",
            "import": "import",
            "inspect": "image inspect",
            "load": "load",
            "ls": "images",
            "list": "images",
            "prune": "image prune",
            "pull": "pull",
            "push": "push",
            "rm": "rmi",
            "remove": "rmi",
            "save": "save",
            "tag": "tag",
        },
    ),
    "network": (
        "Manage networks",
        {
            "connect": "network connect",
            "create": "network create",
            "disconnect": "network disconnect",
            "inspect": "network inspect",
            "ls": "network ls",
            "list": "network ls",
            "prune": "network prune",
            "rm": "network rm",
            "remove": "network rm",
        },
    ),
    "system": (
        "Manage gorae",
        {"df": "system df", "events": "events", "info": "info", "prune": "system prune"},
    ),
    "completion": (  # hidden from `gorae --help`, as docker's
        "Generate the autocompletion script for gorae for the specified shell.\n"
        "See each sub-command's help for details on how to use the generated script.",
        {s: f"completion {s}" for s in ("bash", "fish", "powershell", "zsh")},
    ),
    "swarm": (
        "Manage Swarm",
        {k.split()[1]: k for k in HANDLERS if k.startswith("swarm ")},
    ),
    "node": (
        "Manage Swarm nodes",
        {
            **{k.split()[1]: k for k in HANDLERS if k.startswith("node ")},
            "list": "node ls",
            "remove": "node rm",
        },
    ),
    "secret": (
        "Manage Swarm secrets",
        {
            **{k.split()[1]: k for k in HANDLERS if k.startswith("secret ")},
            "list": "secret ls",
            "remove": "secret rm",
        },
    ),
    "config": (
        "Manage Swarm configs",
        {
            **{k.split()[1]: k for k in HANDLERS if k.startswith("config ")},
            "list": "config ls",
            "remove": "config rm",
        },
    ),
    "service": (
        "Manage Swarm services",
        {
            **{k.split()[1]: k for k in HANDLERS if k.startswith("service ")},
            "list": "service ls",
            "remove": "service rm",
        },
    ),
    "volume": (
        "Manage volumes",
        {
            "create": "volume create",
            "inspect": "volume inspect",
            "ls": "volume ls",
            "list": "volume ls",
            "prune": "volume prune",
            "rm": "volume rm",
            "remove": "volume rm",
        },
    ),
}

HIDDEN = {"completion"}

GLOBAL = Spec(
    "",
    "[OPTIONS] COMMAND",
    "A self-sufficient runtime for containers",
    [
        O("config", None, "string", "Location of client config files", default_text='"/root/.docker"'),
        O(
            "context",
            "c",
            "string",
            'Name of the context to use to connect to the daemon (overrides DOCKER_HOST env var and default context set with "docker context use")',
        ),
        O("debug", "D", help="Enable debug mode"),
        O("host", "H", "list", "Daemon socket to connect to"),
        O(
            "log-level",
            "l",
            "string",
            'Set the logging level ("debug", "info", "warn", "error", "fatal")',
            default_text='"info"',
        ),
        O("tls", None, help="Use TLS; implied by --tlsverify"),
        O(
            "tlscacert",
            None,
            "string",
            "Trust certs signed only by this CA",
            default_text='"/root/.docker/ca.pem"',
        ),
        O("tlscert", None, "string", "Path to TLS certificate file", default_text='"/root/.docker/cert.pem"'),
        O("tlskey", None, "string", "Path to TLS key file", default_text='"/root/.docker/key.pem"'),
        O("tlsverify", None, help="Use TLS and verify the remote"),
        O("version", "v", help="Print version information and quit"),
    ],
    interspersed=False,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any, NoReturn

    # extra top-level commands the entry point adds (name -> its main taking the remaining arguments)
    Commands = Mapping[str, Callable[[list[str]], int]]


def aliases_of(key: str) -> list[str]:
    """Every command path that reaches `key`, docker's order: management forms first, then the top-level word."""
    out = [f"{m} {sub}" for m, (_, subs) in MANAGEMENT.items() for sub, k in subs.items() if k == key]
    out += [w for w, k in TOP.items() if k == key]
    return out if len(out) > 1 else []


def main_help() -> str:
    lines = [
        f"Usage:  {PROG} [OPTIONS] COMMAND\n",
        "\nA self-sufficient runtime for containers\n",
        "\nCommon Commands:\n",
    ]
    common = ["run", "exec", "ps", "build", "pull", "push", "images", "login", "logout", "version", "info"]
    w = 12
    for c in common:
        lines.append(f"  {c:<{w}}{HANDLERS[c][1]}\n")
    lines.append("\nManagement Commands:\n")
    for m, (desc, _) in MANAGEMENT.items():
        if m in HIDDEN or m in SWARM_MANAGEMENT:
            continue
        lines.append(f"  {m:<{w}}{desc}\n")
    lines.append(f"  {'daemon':<{w}}Run the gorae daemon\n")
    lines.append(f"  {'registry':<{w}}Run a private image registry\n")
    lines.append("\nSwarm Commands:\n")
    for m in SWARM_MANAGEMENT:
        lines.append(f"  {m:<{w}}{MANAGEMENT[m][0]}\n")
    lines.append("\nCommands:\n")
    for c in sorted(TOP):
        if c not in common:
            lines.append(f"  {c:<{w}}{HANDLERS[c][1]}\n")
    from gorae.cli.flags import flag_usages, terminal_width

    lines.append("\nGlobal Options:\n" + flag_usages(GLOBAL.opts, terminal_width()))
    lines.append(f"\nRun '{PROG} COMMAND --help' for more information on a command.\n")
    return "".join(lines)


def management_help(word: str) -> str:
    desc, subs = MANAGEMENT[word]
    lines = [f"Usage:  {PROG} {word} COMMAND\n", f"\n{desc}\n", "\nCommands:\n"]
    canonical: dict[str, str] = {}
    for sub, key in subs.items():
        canonical.setdefault(key, sub)
    pad = max([11, *(len(sub) for sub in canonical.values())])
    for key, sub in sorted(canonical.items(), key=lambda kv: kv[1]):
        lines.append(f"  {sub:<{pad}} {HANDLERS[key][1]}\n")
    lines.append(f"\nRun '{PROG} {word} COMMAND --help' for more information on a command.\n")
    return "".join(lines)


def _version_text() -> str:
    from gorae import __version__

    return f"Gorae version {__version__}"


def main(argv: list[str] | None = None, *, commands: Commands | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        code = _main(argv, commands or {})
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        code = 0
    try:
        sys.stdout.flush()
    except (BrokenPipeError, OSError):
        # the reader went away (`gorae logs c | head -1`): nothing more reaches it, and the interpreter's
        # own flush at exit must not print a BrokenPipeError either
        import os

        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except OSError:
            pass
    return code


def entry() -> None:
    exit_now(main())


def exit_now(code: int) -> NoReturn:
    """End the process the way `sys.exit(code)` would, minus the interpreter's finalisation: tearing down every
    module and collecting them costs ~2 ms, a sixth of a whole `gorae ps`. What a normal exit does that matters
    is done here: non-daemon `threading` threads are waited for, the atexit handlers run (the terminal's raw
    mode is restored there), stdout and stderr are flushed. Every file the CLI writes is closed by a `with`."""
    threading = sys.modules.get("threading")
    if threading is not None:
        threading._shutdown()  # what Py_Finalize does first
    import atexit

    atexit._run_exitfuncs()
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except (OSError, ValueError):
            pass
    import posix

    posix._exit(code & 0xFF)


def _main(argv: list[str], commands: Commands) -> int:
    try:
        gopts, rest = parse(GLOBAL, argv)
    except HelpRequested:
        sys.stdout.write(main_help())
        return 0
    except FlagError as e:
        sys.stderr.write(
            f"{e}\n\nUsage:  {PROG} [OPTIONS] COMMAND [ARG...]\n\nRun '{PROG} --help' for more information\n"
        )
        return 125
    if gopts["version"]:
        print(_version_text())
        return 0
    if not rest:  # docker: the usage goes to stderr unless asked for with --help
        sys.stderr.write(main_help())
        return 0
    word, rest = rest[0], rest[1:]
    if word in commands:
        return int(commands[word](rest) or 0)
    if word == "help":
        if rest:
            return _main(rest + ["--help"], commands)
        sys.stdout.write(main_help())
        return 0
    if word in MANAGEMENT:
        subs = MANAGEMENT[word][1]
        if not rest or rest[0] in ("--help", "-h", "help"):
            # docker: a bare management command prints its usage on stderr (cobra's completion: stdout)
            (sys.stdout if rest or word == "completion" else sys.stderr).write(management_help(word))
            return 0
        if rest[0] not in subs:
            sys.stderr.write(
                f"{PROG}: unknown command: {PROG} {word} {rest[0]}\n\nRun '{PROG} {word} --help' for more information\n"
            )
            return 1 if rest[0].startswith("-") is False else 125
        key = subs[rest[0]]
        canonical = next(sub for sub, k in subs.items() if k == key)
        path, rest = f"{word} {canonical}", rest[1:]
    elif word in TOP:
        path, key = word, TOP[word]
    else:
        sys.stderr.write(
            f"{PROG}: unknown command: {PROG} {word}\n\nRun '{PROG} --help' for more information\n"
        )
        return 1
    return run_command(path, key, rest, gopts)


def run_command(path: str, key: str, argv: list[str], gopts: dict[str, Any]) -> int:
    modname = f"gorae.cli.commands.{HANDLERS[key][0]}"
    __import__(modname)
    mod = sys.modules[modname]
    spec, handler = mod.COMMANDS[key]
    spec = spec.renamed(path)
    spec.aliases = aliases_of(key)
    try:
        opts, args = parse(spec, argv)
    except HelpRequested:
        sys.stdout.write(render_help(spec))
        return 0
    except FlagError as e:
        sys.stderr.write(usage_error(spec, str(e)))
        return 125
    msg = check_args(spec, args)
    if msg:
        sys.stderr.write(args_error(spec, msg))
        return 1
    from gorae.cli.context import Cli, StatusError
    from gorae.client.errors import APIError, ConnectionFailed, ProtocolError

    cli = Cli(gopts)
    prefix = f"{PROG}: " if key == "run" else ""  # docker 28's create prints daemon errors bare, status 1
    try:
        return int(handler(cli, opts, args) or 0)
    except StatusError as e:
        if e.message:
            sys.stderr.write(e.message.rstrip("\n") + "\n")
        return e.status
    except APIError as e:
        sys.stderr.write(f"{prefix}{e}\n")
        if prefix:
            sys.stderr.write(f"\nRun '{PROG} {path} --help' for more information\n")
        return 125 if prefix else 1
    except ConnectionFailed as e:
        sys.stderr.write(f"{prefix}{e}\n")
        return 125 if prefix else 1
    except ProtocolError as e:
        sys.stderr.write(f"{prefix}error during connect: {e}\n")
        return 125 if prefix else 1
    finally:
        if cli._api is not None:
            cli._api.close()


if __name__ == "__main__":
    entry()
