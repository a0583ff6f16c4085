"""The daemon's glibc settings (`gorae.cmd.malloc`): applied on glibc, left alone when the user set glibc's own
variables. Run in child interpreters, so this test process keeps its allocator as it was."""

from __future__ import annotations

import os
import subprocess
import sys

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "src")


def _tune(env: dict[str, str]) -> str:
    r = subprocess.run(
        [sys.executable, "-c", "from gorae.cmd import malloc; print(malloc.tune())"],
        env=dict({k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}, PYTHONPATH=SRC, **env),
        capture_output=True,
        text=True,
        check=True,
    )
    return r.stdout.strip()


def test_applied_on_glibc() -> None:
    assert _tune({}) == "True"


def test_left_alone_when_the_user_tuned_glibc() -> None:
    assert _tune({"MALLOC_TRIM_THRESHOLD_": "1048576"}) == "False"
    assert _tune({"MALLOC_MMAP_THRESHOLD_": "1048576"}) == "False"
