"""Mounting snapshot mount specs: mount(2)/umount2(2) through ctypes, `mount(8)` only for over-long options.

overlayfs takes its options in one page; a long lowerdir chain does not fit. As containerd and moby do, such
a mount is made with the layer paths relative to their common directory, from a child process whose working
directory is that directory (a thread of the daemon must never chdir).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import subprocess
import time

from gorae.errors import CommandFailed, InvalidParameter, SystemError_
from gorae.snapshot.types import Mount

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MNT_DETACH = 0x2

_FLAGS = {
    "ro": MS_RDONLY,
    "rw": 0,
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "bind": MS_BIND,
    "rbind": MS_BIND | MS_REC,
}

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def _sys_mount(source: str, target: str, fstype: str, flags: int, data: str) -> None:
    rc = _libc.mount(
        source.encode(), target.encode(), fstype.encode(), flags, data.encode() if data else None
    )
    if rc != 0:
        e = ctypes.get_errno()
        raise SystemError_(f"mount {fstype} on {target} ({data[:200]}): {os.strerror(e)}")


def _split(options: list[str]) -> tuple[int, list[str]]:
    flags = 0
    data: list[str] = []
    for opt in options:
        if opt in _FLAGS:
            flags |= _FLAGS[opt]
        else:
            data.append(opt)
    return flags, data


def _relative_overlay(data: list[str]) -> tuple[str, list[str]]:
    """The common directory of the overlay's layer paths and the options relative to it."""
    paths: list[str] = []
    for opt in data:
        key, _, value = opt.partition("=")
        if key in ("lowerdir", "upperdir", "workdir"):
            paths.extend(value.split(":"))
    if not paths or not all(p.startswith("/") for p in paths):
        raise InvalidParameter("overlay options are longer than a page and not made of absolute layer paths")
    common = os.path.commonpath(paths)
    out: list[str] = []
    for opt in data:
        key, _, value = opt.partition("=")
        if key in ("lowerdir", "upperdir", "workdir"):
            value = ":".join(os.path.relpath(p, common) for p in value.split(":"))
            out.append(f"{key}={value}")
        else:
            out.append(opt)
    return common, out


def mount_one(m: Mount, target: str) -> None:
    flags, data = _split(m.options)
    if m.type == "bind" or flags & MS_BIND:
        _sys_mount(m.source, target, "none", flags & ~MS_RDONLY | MS_BIND, "")
        if flags & MS_RDONLY:  # a bind mount ignores MS_RDONLY on creation: remount read-only
            _sys_mount("none", target, "none", MS_BIND | MS_REMOUNT | MS_RDONLY | (flags & ~MS_REC), "")
        return
    opts = ",".join(data)
    if len(opts) < PAGE_SIZE - 1:
        _sys_mount(m.source, target, m.type, flags, opts)
        return
    if m.type != "overlay":
        raise InvalidParameter(f"mount options of {m.type} are longer than a page")
    cwd, rel = _relative_overlay(data)
    opts = ",".join(rel)
    if len(opts) >= PAGE_SIZE - 1:
        raise InvalidParameter(f"overlay mount options too long even with relative paths: {len(opts)} bytes")
    argv = ["mount", "-t", "overlay", "-o", opts]
    if flags & MS_RDONLY:
        argv[-1] = "ro," + opts
    argv += [m.source, os.path.abspath(target)]
    res = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if res.returncode != 0:
        raise CommandFailed(argv, res.returncode, res.stderr)


def mount_all(mounts: list[Mount], target: str) -> None:
    """Mount each spec on `target` in order; on failure, the ones already made are undone."""
    done = 0
    try:
        for m in mounts:
            mount_one(m, target)
            done += 1
    except BaseException:
        for _ in range(done):
            _libc.umount2(target.encode(), MNT_DETACH)
        raise


def is_mountpoint(path: str) -> bool:
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp == real:
                return True
    return False


def unmount(target: str, *, retries: int = 20) -> None:
    """Unmount everything stacked on `target`. Not mounted: nothing to do. Busy: retried, then an error."""
    path = target.encode()
    busy = 0
    while True:
        if _libc.umount2(path, 0) == 0:
            continue
        e = ctypes.get_errno()
        if e in (errno.EINVAL, errno.ENOENT):
            return
        if e == errno.EBUSY and busy < retries:
            busy += 1
            time.sleep(0.05)
            continue
        raise SystemError_(f"unmount {target}: {os.strerror(e)}")
