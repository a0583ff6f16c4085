"""Entry point of the `gorae` command: `gorae daemon ...` starts the engine, `gorae registry ...` the standalone
registry server, every other word is the CLI.

The daemon is imported only when asked for, so the CLI's start-up cost stays the CLI's own, and the CLI package
never imports the daemon (it gets the `daemon` command handed in). `run` is what the launcher and the console
script call: a CLI command ends without the interpreter's finalisation (`gorae.cli.main.exit_now`); the daemon
and the registry server exit normally.
"""

from __future__ import annotations

import sys

from gorae.cli.main import exit_now
from gorae.cli.main import main as cli_main

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

_server_ran = False  # `daemon` or `registry`: they exit the ordinary way


def _daemon(argv: list[str]) -> int:
    global _server_ran
    _server_ran = True
    from gorae.cmd.daemon import main as daemon_main

    return daemon_main(argv)


def _registry(argv: list[str]) -> int:
    global _server_ran
    _server_ran = True
    from gorae.cmd.registry import main as registry_main

    return registry_main(argv)


def main(argv: list[str] | None = None) -> int:
    return cli_main(argv, commands={"daemon": _daemon, "registry": _registry})


def run() -> NoReturn:
    code = main()
    if _server_ran:
        sys.exit(code)
    exit_now(code)


if __name__ == "__main__":
    run()
