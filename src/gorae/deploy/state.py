"""What gorae keeps about each deployed application, outside the daemon: `<state dir>/<name>/` holds `repo`
(the repository's git dir), `history.jsonl` (one record per deploy, rollback or failure), `current.json` (what
serves now), `swap.json` (a swap in progress, for recovery) and `lock` (one deploy at a time, in arrival order).

The state dir is `$GORAE_DEPLOY_DIR`, else /var/lib/gorae-deploy; the hook carries the one `deploy init` used.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

DEFAULT_DIR = "/var/lib/gorae-deploy"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


def state_dir() -> str:
    return os.environ.get("GORAE_DEPLOY_DIR") or DEFAULT_DIR


def check_name(name: str) -> str:
    """An application name: also the image repository and the container name prefix, so lower case."""
    if not NAME_RE.match(name):
        raise ValueError(
            f"invalid application name {name!r}: lower-case letters, digits, '_', '.', '-' (first a letter or "
            "digit), at most 63 characters"
        )
    return name


class App:
    """One application's state directory."""

    def __init__(self, name: str, root: str | None = None) -> None:
        self.name = check_name(name)
        self.dir = os.path.join(root or state_dir(), name)

    def _path(self, leaf: str) -> str:
        return os.path.join(self.dir, leaf)

    def exists(self) -> bool:
        return os.path.exists(self._path("repo"))

    def create(self, git_dir: str) -> None:
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        _write(self._path("repo"), git_dir + "\n")

    @property
    def git_dir(self) -> str:
        with open(self._path("repo"), encoding="utf-8") as f:
            return f.read().strip()

    # -- the lock -----------------------------------------------------------------------------------
    def lock(self, on_wait: Any = None) -> Lock:
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        return Lock(self._path("lock"), on_wait)

    # -- history ------------------------------------------------------------------------------------
    def record(self, entry: dict[str, Any]) -> dict[str, Any]:
        entry = {"time": time.time(), **entry}
        with open(self._path("history.jsonl"), "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return entry

    def history(self) -> list[dict[str, Any]]:
        """Oldest first; a torn last line (a crash while writing) is skipped."""
        try:
            with open(self._path("history.jsonl"), encoding="utf-8") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict):
                out.append(doc)
        return out

    def next_seq(self) -> int:
        return 1 + max((int(h.get("seq") or 0) for h in self.history()), default=0)

    # -- what serves, and a swap in progress --------------------------------------------------------
    def current(self) -> dict[str, Any] | None:
        return _read_json(self._path("current.json"))

    def set_current(self, doc: dict[str, Any]) -> None:
        _write(self._path("current.json"), json.dumps(doc, sort_keys=True))

    def swap(self) -> dict[str, Any] | None:
        return _read_json(self._path("swap.json"))

    def begin_swap(self, doc: dict[str, Any]) -> None:
        _write(self._path("swap.json"), json.dumps(doc, sort_keys=True))

    def end_swap(self) -> None:
        try:
            os.unlink(self._path("swap.json"))
        except FileNotFoundError:
            pass


def all_apps(root: str | None = None) -> Iterator[App]:
    base = root or state_dir()
    try:
        names = sorted(os.listdir(base))
    except FileNotFoundError:
        return
    for n in names:
        if NAME_RE.match(n) and os.path.exists(os.path.join(base, n, "repo")):
            yield App(n, base)


class Lock:
    """An exclusive flock on the app's lock file: one deploy at a time; a second one waits for the first."""

    def __init__(self, path: str, on_wait: Any = None) -> None:
        self.path = path
        self.on_wait = on_wait
        self.fd = -1

    def __enter__(self) -> Lock:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if self.on_wait is not None:
                self.on_wait()
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def hold_until_exit(self, pid: int) -> None:
        """Keep the lock held (by a small detached process that inherits it) until process `pid` ends. The
        pre-receive hook hands it to `git receive-pack`, so the next push's hook runs only once this push's ref
        update is done, and never deploys on top of a ref that is about to move."""
        import subprocess
        import sys

        if self.fd < 0:
            return
        waiter = (
            "import os, select, sys\n"
            "try:\n"
            "    fd = os.pidfd_open(int(sys.argv[1]))\n"
            "except OSError:\n"
            "    sys.exit(0)\n"
            "select.select([fd], [], [], 600)\n"
        )
        subprocess.Popen(
            [sys.executable, "-I", "-c", waiter, str(pid)],
            pass_fds=(self.fd,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # releases the flock
            self.fd = -1


def _write(path: str, text: str) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (FileNotFoundError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None
