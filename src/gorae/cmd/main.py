"""Entry point of the `gorae` command: `gorae daemon ...` starts the engine, every other word is the CLI.

The daemon is imported only when asked for, so the CLI's start-up cost stays the CLI's own, and the CLI package
never imports the daemon (it gets the `daemon` command handed in). `run` is what the launcher and the console
script call: a CLI command ends without the interpreter's finalisation (`gorae.cli.main.exit_now`); the daemon
exits normally.
"""

from __future__ import annotations

import sys

from gorae.cli.main import exit_now
from gorae.cli.main import main as cli_main

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

_daemon_ran = False


def _daemon(argv: list[str]) -> int:
    global _daemon_ran
    _daemon_ran = True
    from gorae.cmd.daemon import main as daemon_main

    return daemon_main(argv)


def main(argv: list[str] | None = None) -> int:
    return cli_main(argv, commands={"daemon": _daemon})


def run() -> NoReturn:
    code = main()
    if _daemon_ran:
        sys.exit(code)
    exit_now(code)


if __name__ == "__main__":
    run()
