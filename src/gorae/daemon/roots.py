"""The daemon's roots: their layout and modes, and the claim that makes one daemon their only user.

Modes are dockerd's (measured on a dockerd 20.10 data root): only root may traverse the data root (0710) and
the layers under it, so setuid files inside images and containers are out of other local users' reach
(CVE-2021-41091), and the metadata database — which holds containers' environments — is 0600. They are set on
every start, so a data root made by an older gorae is fixed too.

A second daemon on the same data root, exec root or default bridge would corrupt the first one's state and
rules, so `claim` takes an exclusive lock on each root (flock, released by the kernel when the daemon dies,
even by kill -9) and on the default bridge's name (`network.kernel.claims`), and refuses with a clear error
when another daemon holds one.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
from dataclasses import dataclass, field

from gorae.archive.tree import remove_tree
from gorae.errors import Conflict
from gorae.network.kernel.claims import claim_interface

DATA_ROOT_MODE = 0o710
# subdirectory of the data root → mode (as dockerd's containers/, image/, overlay2/, tmp/, volumes/)
LAYOUT = {
    "containers": 0o710,
    "content": 0o700,
    "overlay": 0o710,
    "tmp": 0o700,
    "volumes": 0o701,
}
EXEC_ROOT_MODE = 0o700
DATABASES = ("gorae.db", "overlay/snapshots.db")
PRIVATE_FILE_MODE = 0o600
LOCK_NAME = "gorae.lock"

log = logging.getLogger("gorae.daemon")


class RootInUse(Conflict):
    """Another daemon holds this daemon's data root or exec root."""


def prepare(data_root: str, exec_root: str) -> None:
    """Create the roots (or fix their modes) and empty tmp/, before any service opens them; after `claim`."""
    os.makedirs(data_root, mode=DATA_ROOT_MODE, exist_ok=True)
    os.chmod(data_root, DATA_ROOT_MODE)
    for sub, mode in LAYOUT.items():
        path = os.path.join(data_root, sub)
        os.makedirs(path, mode=mode, exist_ok=True)
        os.chmod(path, mode)
    for db in DATABASES:
        path = os.path.join(data_root, db)
        # SQLite gives the -wal and -shm files the database file's mode: make the file first, private
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE_MODE))
        for f in (path, path + "-wal", path + "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.chmod(f, PRIVATE_FILE_MODE)
    os.makedirs(exec_root, mode=EXEC_ROOT_MODE, exist_ok=True)
    os.chmod(exec_root, EXEC_ROOT_MODE)
    _empty(os.path.join(data_root, "tmp"))


def _empty(directory: str) -> None:
    """Spools a crash left in tmp/ (half-received `docker load` archives, commit diffs): nobody else can be
    using them while this daemon holds the roots. Debris that will not go is logged, never fatal."""
    for name in os.listdir(directory):
        try:
            remove_tree(os.path.join(directory, name))
        except OSError as e:
            log.warning("could not remove %s: %s", os.path.join(directory, name), e)


@dataclass
class Claim:
    """What one daemon holds while it runs; `release()` (or the process's end) lets the next one in."""

    fds: list[int] = field(default_factory=list)
    sockets: list[socket.socket] = field(default_factory=list)

    def release(self) -> None:
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        for s in self.sockets:
            s.close()
        self.fds.clear()
        self.sockets.clear()


def claim(data_root: str, exec_root: str, bridge: str | None) -> Claim:
    """Lock the roots and the bridge name for this process; RootInUse names the holder's pid."""
    held = Claim()
    try:
        for what, root in (("data root", data_root), ("exec root", exec_root)):
            held.fds.append(_lock_file(what, root))
        if bridge and bridge != "none":
            held.sockets.append(claim_interface(bridge))
    except BaseException:
        held.release()
        raise
    return held


def _lock_file(what: str, root: str) -> int:
    os.makedirs(root, mode=0o700, exist_ok=True)
    path = os.path.join(root, LOCK_NAME)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise RootInUse(f"{what} {root} is in use by another gorae daemon (pid {holder})") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
