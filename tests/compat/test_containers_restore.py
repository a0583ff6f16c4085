"""Live restore: the daemon is killed with SIGKILL while containers run, then started again."""

from __future__ import annotations

import os
import time

from conftest import GoraeDaemon, inspect


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def _wait_for(pred, timeout: float = 15.0, step: float = 0.1):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")


def test_kill9_daemon_keeps_containers_and_records_real_exit_codes(fresh_daemon: GoraeDaemon) -> None:
    d = fresh_daemon
    d.docker(
        "run",
        "-d",
        "--name",
        "runner",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.2; done",
    )
    d.docker("run", "-d", "--name", "quitter", "busybox", "sh", "-c", "sleep 1; exit 7")
    pid_before = inspect(d, "runner")["State"]["Pid"]
    quitter_id = inspect(d, "quitter")["Id"]
    d.kill9()
    # quitter exits while nobody watches: wait for conmon's exit file (what the restarted daemon reads)
    exit_file = os.path.join(d.exec_root, "conmon", quitter_id, "exits", quitter_id)
    assert not d.ping()
    _wait_for(lambda: _read(exit_file) == "7", timeout=30)
    d.start()

    runner = inspect(d, "runner")
    assert runner["State"]["Status"] == "running" and runner["State"]["Pid"] == pid_before
    quitter = _wait_for(lambda: (i := inspect(d, "quitter"))["State"]["Status"] == "exited" and i)
    assert quitter["State"]["ExitCode"] == 7
    assert "Exited (7)" in d.docker("ps", "-a", "--filter", "name=quitter", "--format", "{{.Status}}").stdout

    assert "tick" in d.docker("logs", "--tail", "1", "runner").stdout
    assert d.docker("exec", "runner", "echo", "still-here").stdout == "still-here\n"
    # the restored watcher still sees the exit
    d.docker("stop", "-t", "1", "runner")
    assert inspect(d, "runner")["State"]["Status"] == "exited"
    d.docker("rm", "runner", "quitter")


def test_restart_policy_survives_daemon_restart(fresh_daemon: GoraeDaemon) -> None:
    d = fresh_daemon
    d.docker(
        "run", "-d", "--name", "looper", "--restart", "always", "busybox", "sh", "-c", "sleep 0.5; exit 3"
    )
    _wait_for(lambda: inspect(d, "looper")["RestartCount"] >= 1)
    d.kill9()
    time.sleep(1.0)
    d.start()
    count = inspect(d, "looper")["RestartCount"]
    _wait_for(lambda: inspect(d, "looper")["RestartCount"] >= count + 2)
    d.docker("rm", "-f", "looper")


def test_sigterm_leaves_containers_running(fresh_daemon: GoraeDaemon) -> None:
    d = fresh_daemon
    d.docker("run", "-d", "--name", "keeper", "busybox", "sleep", "60")
    d.stop()
    d.start()
    assert inspect(d, "keeper")["State"]["Running"]
    d.docker("kill", "keeper")
    assert d.docker("wait", "keeper").stdout.strip() == "137"
