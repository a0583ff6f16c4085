"""mypy over src/gorae with the settings in pyproject.toml ([tool.mypy]: every package checked, the leaves and
the CLI held to strict rules), so CI enforces the types like any other test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_mypy_is_clean() -> None:
    env = dict(os.environ, MYPY_CACHE_DIR=os.path.join(ROOT, ".mypy_cache"))
    res = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, f"mypy found type errors:\n{res.stdout}{res.stderr}"
