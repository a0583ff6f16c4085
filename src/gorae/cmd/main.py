"""Entry point of the `gorae` command: `gorae daemon ...` starts the engine, `gorae registry ...` the standalone
registry server, every other word is the CLI.

The daemon is imported only when asked for, so the CLI's start-up cost stays the CLI's own, and the CLI package
never imports the daemon (it gets the `daemon` command handed in).
"""

from __future__ import annotations

import sys

from gorae.cli.main import main as cli_main


def _daemon(argv: list[str]) -> int:
    from gorae.cmd.daemon import main as daemon_main

    return daemon_main(argv)


def _registry(argv: list[str]) -> int:
    from gorae.cmd.registry import main as registry_main

    return registry_main(argv)


def main(argv: list[str] | None = None) -> int:
    return cli_main(argv, commands={"daemon": _daemon, "registry": _registry})


if __name__ == "__main__":
    sys.exit(main())
