"""Network namespaces as files: create one bind-mounted at a path, run code inside one, delete one.

A namespace is created by a short-lived thread that `unshare(CLONE_NEWNET)`s itself and bind-mounts its
`/proc/thread-self/ns/net` onto the target file, so the namespace outlives the thread (and the daemon).
Code runs "inside" a namespace the same way: a fresh thread `setns()`s into it, so sockets it opens
(netlink, the embedded DNS server's) belong to that namespace while the rest of the daemon stays put.
The directory holding the files is made a shared bind mount of itself (as `ip netns` does) so an unmount
propagates into mount namespaces that copied it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

from gorae.errors import SystemError_
from gorae.network.kernel import rtnl as _rtnl

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MS_REC = 16384
MS_SHARED = 1 << 20
MNT_DETACH = 2

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_mounted_dirs: set[str] = set()
_dir_lock = threading.Lock()


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str, target: str, flags: int) -> None:
    _check(_libc.mount(source.encode(), target.encode(), None, flags, None), f"mount {source} on {target}")


def _is_mountpoint(path: str) -> bool:
    target = os.path.realpath(path)
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        return any(line.split()[4] == target for line in f)


def prepare_dir(directory: str) -> None:
    """Create `directory` and make it a shared bind mount of itself (idempotent)."""
    with _dir_lock:
        if directory in _mounted_dirs:
            return
        os.makedirs(directory, mode=0o755, exist_ok=True)
        if not _is_mountpoint(directory):
            _mount(directory, directory, MS_BIND | MS_REC)
        _mount("none", directory, MS_SHARED | MS_REC)
        _mounted_dirs.add(directory)


def run_in_thread(fn: Callable[[], T]) -> T:
    """Run fn in a fresh thread (so namespace changes die with it) and return its result or raise."""
    box: dict[str, Any] = {}

    def body() -> None:
        try:
            box["result"] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller
            box["error"] = e

    t = threading.Thread(target=body, name="gorae-netns", daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return cast(T, box["result"])


def enter(path: str) -> None:
    """setns() the *calling thread* into the namespace at path. Only call from a throwaway thread."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check(_libc.setns(fd, CLONE_NEWNET), f"setns {path}")
    finally:
        os.close(fd)


def run_in_netns(path: str, fn: Callable[[], T]) -> T:
    """Run fn inside the network namespace at path (in a throwaway thread)."""

    def body() -> T:
        enter(path)
        return fn()

    return run_in_thread(body)


def set_ipv6(enabled: bool, *interfaces: str, namespace_wide: bool = True) -> None:
    """IPv6 on (or off) in the calling thread's network namespace for `interfaces`, and with `namespace_wide`
    for `all`, `default` and `lo` too (dockerd turns it off in a sandbox none of whose networks has IPv6: no
    `::1`, no link-local addresses; a later IPv6 endpoint gets it back on its interface only)."""
    for name in (*(("all", "default", "lo") if namespace_wide else ()), *interfaces):
        try:
            with open(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6", "w", encoding="ascii") as f:
                f.write("0" if enabled else "1")
        except OSError:  # a kernel without IPv6
            pass


def create(path: str, *, rtnl: bool = False, ipv6: bool = True) -> Any:
    """A new network namespace kept alive by a bind mount at path, with `lo` up (and IPv6 off unless `ipv6`).
    With rtnl=True, returns a `rtnl.Rtnl` socket that belongs to the new namespace (usable from any thread;
    the caller closes it)."""
    prepare_dir(os.path.dirname(path))
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    os.close(fd)

    def body() -> Any:
        _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        _mount(f"/proc/self/task/{threading.get_native_id()}/ns/net", path, MS_BIND)
        if not ipv6:
            set_ipv6(False)
        sock = _rtnl.Rtnl()
        try:
            sock.set_up(_rtnl.LOOPBACK_INDEX)
        except BaseException:
            sock.close()
            raise
        if rtnl:
            return sock
        sock.close()
        return None

    try:
        return run_in_thread(body)
    except OSError as e:
        try:
            delete(path)
        except (OSError, SystemError_):
            pass
        raise SystemError_(f"failed to create network namespace {path}: {e}") from e


def exists(path: str) -> bool:
    """True when path is a live bind-mounted namespace (not just a leftover file)."""
    try:
        return os.path.exists(path) and _is_mountpoint(path)
    except OSError:
        return False


def delete(path: str) -> None:
    """Unmount and remove the namespace file; a missing one is fine."""
    rc = _libc.umount2(path.encode(), MNT_DETACH)
    if rc != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            raise SystemError_(f"failed to unmount network namespace {path}: {os.strerror(err)}")
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def release_dir(directory: str) -> None:
    """Undo prepare_dir (tests): lazily unmount the self bind mount."""
    with _dir_lock:
        _mounted_dirs.discard(directory)
        _libc.umount2(directory.encode(), MNT_DETACH)
