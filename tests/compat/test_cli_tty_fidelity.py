"""Interactive sessions through a real pty, with the docker CLI and the gorae CLI, against gorae and a real dockerd
(issue 14's review W1, W30 and the `gorae attach` detach): after ctrl-p ctrl-q out of `run -it`, `attach` takes
input and shows output again, detaching from `attach` says "read escape sequence" and exits 1, and `exit 7`
ends the attach with 7; `exec -it` has the terminal's size from its start; `exec` honours config.json's
`detachKeys` (and reports the detach as docker 28 does)."""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path

import pexpect
import pytest
from cli_daemon import NET, SRC, Daemon

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run containers")


def _spawn(daemon: Daemon, cli: str, *args: str, config: Path | None = None) -> pexpect.spawn:
    env = dict(os.environ, PYTHONPATH=SRC, DOCKER_HOST=daemon.host)
    env["DOCKER_CONFIG"] = str(config or daemon.config_dir)
    env.pop("GORAE_HOST", None)
    argv = ["docker", *args] if cli == "docker" else [sys.executable, "-m", "gorae.cli.main", *args]
    return pexpect.spawn(argv[0], argv[1:], env=env, encoding="utf-8", timeout=30, dimensions=(40, 120))


def _finish(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF)
    child.close()
    return int(child.exitstatus if child.exitstatus is not None else -1)


@pytest.mark.parametrize("cli", ["docker", "gorae"])
def test_reattach_after_detaching_from_run_it(daemon: Daemon, cli: str) -> None:
    name = f"reatt-{uuid.uuid4().hex[:8]}"
    try:
        run = _spawn(daemon, cli, "run", "-it", "--name", name, *NET, "busybox", "sh")
        run.expect(r"/ # ")
        run.send("\x10\x11")  # ctrl-p ctrl-q
        assert _finish(run) == 0
        for round in (1, 2):
            att = _spawn(daemon, cli, "attach", name)
            att.send(f"echo round-$((40+{round}))\r")
            att.expect(f"round-{40 + round}")  # input arrives, output flows
            att.send("\x10\x11")
            att.expect("read escape sequence")
            assert _finish(att) == 1
        att = _spawn(daemon, cli, "attach", name)
        att.send("exit 7\r")
        assert _finish(att) == 7
    finally:
        daemon.docker("rm", "-f", name)


@pytest.mark.parametrize("cli", ["docker", "gorae"])
def test_exec_it_size_and_config_detach_keys(daemon: Daemon, cli: str, tmp_path: Path) -> None:
    name = f"exsz-{uuid.uuid4().hex[:8]}"
    assert daemon.docker("run", "-d", "--name", name, *NET, "busybox", "sleep", "600").returncode == 0
    try:
        ex = _spawn(daemon, cli, "exec", "-it", name, "sh")
        ex.expect(r"/ # ")
        ex.send("stty size\r")
        ex.expect(r"40 120")  # before any SIGWINCH
        ex.send("exit 4\r")
        assert _finish(ex) == 4
        config = tmp_path / "cfg"
        config.mkdir()
        (config / "config.json").write_text(json.dumps({"detachKeys": "ctrl-a,a"}))
        ex = _spawn(daemon, cli, "exec", "-it", name, "sh", config=config)
        ex.expect(r"/ # ")
        ex.send("\x01a")  # the config's keys detach (docker 28: an error, as for attach)
        ex.expect("read escape sequence")
        assert _finish(ex) == 1
    finally:
        daemon.docker("rm", "-f", name)


@pytest.mark.parametrize("cli", ["docker", "gorae"])
def test_attach_no_stdin_to_a_tty_counts_interrupts(daemon: Daemon, cli: str) -> None:
    """A tty container attached without the keyboard: ctrl-c is not proxied (tty) and does not end the
    client; the third one does, with docker's message and status 1."""
    name = f"nostdin-{uuid.uuid4().hex[:8]}"
    try:
        daemon.docker("run", "-dit", "--name", name, *NET, "busybox", "sh")
        att = _spawn(daemon, cli, "attach", "--no-stdin", name)
        for _ in range(30):  # until the client is attached (output written before that is not replayed)
            daemon.docker("exec", name, "sh", "-c", "echo attached > /proc/1/fd/1")
            if att.expect(["attached", pexpect.TIMEOUT], timeout=1) == 0:
                break
        else:
            raise AssertionError(f"{cli} attach never showed the container's output")
        for n in (1, 2):
            att.sendintr()
            # still attached: what the container writes to its terminal arrives
            daemon.docker("exec", name, "sh", "-c", f"echo still-here-{n} > /proc/1/fd/1")
            att.expect(f"still-here-{n}")
        att.sendintr()
        att.expect("got 3 SIGTERM/SIGINTs, forcefully exiting")
        assert _finish(att) == 1
        assert daemon.docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip() == "true"
    finally:
        daemon.docker("rm", "-f", name)
