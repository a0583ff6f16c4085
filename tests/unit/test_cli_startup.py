"""What keeps the CLI's start-up cheap, pinned: the command modules of `ps`, `images`, `inspect`, `logs`, `run`
and `system` (version, info), and the template engine, import none of the slow modules (README's Performance figures depend on it), the
environment read without `os` is `os.environ`, and `exit_now` (the end without the interpreter's finalisation)
still flushes, runs the atexit handlers, waits for threads and passes the exit status on."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "src")
# each costs from 1 ms (os) to 10 ms (typing, json with re and enum) of a command that takes ~13 ms in all
SLOW = [
    "os",
    "typing",
    "json",
    "re",
    "enum",
    "functools",
    "collections",
    "contextlib",
    "socket",
    "unicodedata",
]


def _python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run code the way the launcher runs the CLI: `python -IS`, the source tree on sys.path."""
    prog = f"import sys\nsys.path[:0] = [{SRC!r}]\n{code}"
    return subprocess.run(
        [sys.executable, "-IS", "-c", prog], capture_output=True, text=True, timeout=60, env=env
    )


@pytest.mark.parametrize(
    "module",
    [
        *(f"gorae.cli.commands.{c}" for c in ("ps", "images", "inspect", "logs", "run", "system")),
        "gorae.gotemplate, gorae.cli.inspect_types",  # `inspect -f`, `ps --format`
    ],
)
def test_command_modules_import_nothing_slow(module: str) -> None:
    res = _python(
        "import gorae.cmd.main, gorae.cli.context, gorae.client.api, gorae.client.host\n"
        f"import {module}\n"
        f"print(sorted(m for m in {SLOW!r} if m in sys.modules))"
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout == "[]\n"


def test_run_checks_a_plain_image_reference_without_the_parser() -> None:
    res = _python(
        "from gorae.cli.commands.run import _reference_error\n"
        "assert _reference_error('busybox:latest') == ''\n"
        "print(sorted(m for m in ('gorae.reference', 're', 'dataclasses') if m in sys.modules))"
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout == "[]\n"


def test_environ_without_os_is_os_environ() -> None:
    env = {"PATH": "/usr/bin", "HOME": "/home/x/", "DOCKER_HOST": "unix:///é", "ODD": "\udcff-bytes"}
    code = (
        "from gorae.client.host import environ, expand_home\n"
        "assert 'os' not in sys.modules\n"
        "e = dict(environ()); h = expand_home('~/.docker'), expand_home('~'), expand_home('x')\n"
        "import os\n"
        "assert e == dict(os.environ), (e, dict(os.environ))\n"
        "assert environ() is os.environ\n"
        "assert h == (os.path.expanduser('~/.docker'), os.path.expanduser('~'), 'x'), h\n"
        "print(h)"
    )
    envb = {k: v.encode("utf-8", "surrogateescape") for k, v in env.items()}
    res = subprocess.run(
        [sys.executable, "-IS", "-c", f"import sys\nsys.path[:0] = [{SRC!r}]\n{code}"],
        capture_output=True,
        text=True,
        timeout=60,
        env={k.encode(): v for k, v in envb.items()},
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout == "('/home/x/.docker', '/home/x', 'x')\n"


def test_expand_home_without_home_is_expanduser() -> None:
    res = _python(
        "from gorae.client.host import expand_home\nimport os\nprint(expand_home('~/.docker') == "
        "os.path.expanduser('~/.docker'), expand_home('~/.docker'))",
        env={"PATH": "/usr/bin"},
    )
    assert res.returncode == 0, res.stderr
    import pwd

    assert res.stdout == f"True {pwd.getpwuid(os.getuid()).pw_dir.rstrip('/') or ''}/.docker\n"


def test_exit_now_flushes_runs_atexit_waits_for_threads() -> None:
    res = _python(
        "import atexit, threading, time\n"
        "from gorae.cli.main import exit_now\n"
        "atexit.register(lambda: sys.stdout.write('atexit\\n'))\n"
        "def late():\n"  # still running when exit_now starts: it waits for the shutdown flag exit_now sets
        "    while not threading._SHUTTING_DOWN:\n"
        "        time.sleep(0.001)\n"
        "    sys.stdout.write('thread\\n')\n"
        "threading.Thread(target=late).start()\n"
        "sys.stdout.write('x' * 200000 + '\\n')\n"
        "sys.stderr.write('err')\n"
        "exit_now(300)"
    )
    assert res.stdout == "x" * 200000 + "\nthread\natexit\n"
    assert res.stderr == "err"
    assert res.returncode == 300 & 0xFF


def test_cli_exit_status_and_output_through_the_entry_point() -> None:
    res = _python("sys.argv[1:] = ['nosuchcommand']\nfrom gorae.cmd.main import run\nrun()")
    assert res.returncode == 1
    assert res.stdout == ""
    assert (
        res.stderr
        == "gorae: unknown command: gorae nosuchcommand\n\nRun 'gorae --help' for more information\n"
    )
    res = _python("sys.argv[1:] = ['--help']\nfrom gorae.cmd.main import run\nrun()")
    assert res.returncode == 0
    assert res.stdout.startswith("Usage:  gorae [OPTIONS] COMMAND\n")
    assert res.stdout.endswith("Run 'gorae COMMAND --help' for more information on a command.\n")
