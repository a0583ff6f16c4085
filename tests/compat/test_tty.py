"""`docker run -it busybox sh` through a real pty, and the seed's -i alone / -t alone behaviours."""

from __future__ import annotations

import os
import subprocess

import pexpect
from conftest import GoraeDaemon


def _spawn(d: GoraeDaemon, *args: str) -> pexpect.spawn:
    return pexpect.spawn("docker", list(args), env=d.env, encoding="utf-8", timeout=20, dimensions=(30, 100))


def test_run_it_shell_prompt_commands_and_exit_code(gorae_daemon: GoraeDaemon) -> None:
    child = _spawn(gorae_daemon, "run", "-it", "--rm", "busybox", "sh")
    try:
        child.expect(r"/ # ")  # the prompt is drawn
        child.sendline("echo $((6*7))")
        child.expect("42")
        child.expect(r"/ # ")
        child.sendline("stty size")
        child.expect(r"30 100")  # the window size reached the container's pty
        child.sendline("exit 3")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 3


def test_run_i_alone_pipes_stdin_without_prompt(gorae_daemon: GoraeDaemon) -> None:
    res = subprocess.run(
        ["docker", "run", "-i", "--rm", "busybox", "sh"],
        input="echo piped-$((1+1))\n",
        env=gorae_daemon.env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout == "piped-2\n"  # output works, no prompt was drawn


def test_stdin_from_pipe_to_cat(gorae_daemon: GoraeDaemon) -> None:
    res = subprocess.run(
        ["docker", "run", "-i", "--rm", "busybox", "cat"],
        input="hi\n",
        env=gorae_daemon.env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.stdout == "hi\n"


def test_run_t_alone_draws_prompt_but_takes_no_input(gorae_daemon: GoraeDaemon) -> None:
    name = "tonly-" + os.urandom(3).hex()
    child = _spawn(gorae_daemon, "run", "-t", "--name", name, "busybox", "sh")
    try:
        child.expect(r"/ # ")  # a tty: the prompt is drawn
        child.sendline("echo typed-$((2+2))")
        idx = child.expect([r"typed-4", pexpect.TIMEOUT], timeout=3)
        assert idx == 1, "input reached a container started without -i"
    finally:
        child.close(force=True)
        gorae_daemon.docker("rm", "-f", name, check=False)
