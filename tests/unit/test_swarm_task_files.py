"""The agent's task files (gorae.swarm.agent.files): one tmpfs however many tasks are prepared at once — two
threads that both mounted one hid the first task's files under the second mount (its container then failed:
"bind source path does not exist"), found by `docker stack deploy` of two services with secrets."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest

from gorae.swarm.agent.files import TaskFiles

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounts a tmpfs")


def _mounts_at(path: Path) -> int:
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        return sum(1 for line in f if line.split()[4] == str(path))


def test_tasks_prepared_at_once_share_one_tmpfs(tmp_path: Path) -> None:
    files = TaskFiles(tmp_path / "swarm")
    start = threading.Barrier(8)
    paths: dict[int, list[str]] = {}

    def prepare(i: int) -> None:
        start.wait()
        paths[i] = files.write(f"task{i}", [("secret-0", f"data {i}".encode(), 0o400, 0, 0)])

    threads = [threading.Thread(target=prepare, args=(i,)) for i in range(8)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert _mounts_at(files.root) == 1
        for i, (path,) in paths.items():
            assert Path(path).read_bytes() == f"data {i}".encode()
            assert oct(os.stat(path).st_mode & 0o7777) == "0o400"
        assert sorted(files.task_ids()) == sorted(f"task{i}" for i in range(8))
        files.remove("task0")
        assert not Path(paths[0][0]).exists() and len(files.task_ids()) == 7
    finally:
        while _mounts_at(files.root):
            subprocess.run(["umount", str(files.root)], check=True)
