"""`gorae daemon`'s own command line: `--help` describes every flag, bad flags refuse to start and touch
nothing (security review, low findings: a `--group` that does not exist is an error, as in dockerd)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid

import pytest
from conftest import SRC, GoraeDaemon

from gorae.daemon.config import build_parser


def _gorae(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=SRC)
    return subprocess.run(
        [sys.executable, "-m", "gorae.cmd.main", *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_help_describes_every_flag() -> None:
    res = _gorae("daemon", "--help")
    assert res.returncode == 0 and res.stderr == ""
    assert res.stdout.startswith("usage: gorae daemon [OPTIONS]")
    for action in build_parser()._actions:
        for opt in action.option_strings:
            assert opt in res.stdout
        assert action.help, f"{action.option_strings} has no help text"


def test_bad_flag_is_an_error() -> None:
    res = _gorae("daemon", "--no-such-flag")
    assert res.returncode == 1 and "unrecognized arguments: --no-such-flag" in res.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="the daemon runs as root")
def test_a_missing_group_refuses_to_start_and_touches_nothing() -> None:
    tag = uuid.uuid4().hex[:8]
    data_root = os.path.join(tempfile.gettempdir(), f"gorae-test-{tag}-nogroup")
    d = GoraeDaemon(
        data_root=data_root,
        exec_root=f"/run/gorae-t-{tag}",
        socket=f"/run/gorae-t-{tag}.sock",
        log_path=os.path.join(tempfile.gettempdir(), f"gorae-test-{tag}.log"),
        extra_args=["--group", f"nosuch{tag}"],
    )
    os.makedirs(data_root)
    try:
        with pytest.raises(RuntimeError, match=f"group nosuch{tag} not found"):
            d.start()
        assert sorted(os.listdir(data_root)) == ["daemon.json"]  # nothing made before the refusal
        assert not os.path.exists(d.exec_root)
    finally:
        d.cleanup()
