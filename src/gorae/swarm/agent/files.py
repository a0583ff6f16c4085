"""The files of a task's secrets and configs on this node, never on disk: one tmpfs (mode 0700) at
`<exec-root>/swarm`, a directory per task under it, one file per reference with the reference's mode and
owner. The task's container bind-mounts each file read-only at its target (`/run/secrets/<name>`, the
config's target). A task's directory goes when its container is removed."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

from gorae.errors import SystemError_

TMPFS_SIZE = "64m"


class TaskFiles:
    def __init__(self, root: Path) -> None:
        self.root = root
        # two tasks prepared at once (threads) must not both mount: the second tmpfs would hide the first
        # task's files under it (its container then fails: "bind source path does not exist")
        self._mount_lock = threading.Lock()

    def _ensure_tmpfs(self) -> None:
        with self._mount_lock:
            self._mount()

    def _mount(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        if os.path.ismount(self.root):
            return
        r = subprocess.run(
            [
                "mount",
                "-t",
                "tmpfs",
                "-o",
                f"mode=0700,size={TMPFS_SIZE},nosuid,nodev,noexec",
                "tmpfs",
                str(self.root),
            ],
            capture_output=True,
            text=True,
        )
        if r.returncode != 0:
            raise SystemError_(f"cannot mount the tmpfs for swarm secrets at {self.root}: {r.stderr.strip()}")

    def write(self, task_id: str, files: list[tuple[str, bytes, int, int, int]]) -> list[str]:
        """Write (file name, data, mode, uid, gid) for a task (blocking: run it in a thread); their paths."""
        self._ensure_tmpfs()
        task_dir = self.root / task_id
        task_dir.mkdir(mode=0o755, exist_ok=True)
        paths = []
        for name, data, mode, uid, gid in files:
            path = task_dir / name
            tmp = task_dir / f".{name}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chown(tmp, uid, gid)
            os.chmod(tmp, mode)
            os.replace(tmp, path)
            paths.append(str(path))
        return paths

    def task_ids(self) -> list[str]:
        """The tasks that have a directory here."""
        try:
            return [p.name for p in self.root.iterdir() if p.is_dir()]
        except FileNotFoundError:
            return []

    def remove(self, task_id: str) -> None:
        """Forget a task's files (blocking)."""
        if "/" in task_id or task_id in ("", ".", ".."):
            return
        shutil.rmtree(self.root / task_id, ignore_errors=True)
