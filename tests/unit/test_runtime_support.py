"""Shared helpers for the runtime tests: a busybox rootfs, bundles, and unique ids (no tests here)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid

BUSYBOX = shutil.which("busybox") or "/bin/busybox"


def make_rootfs(root: str) -> str:
    """A busybox rootfs at root/rootfs with /etc/passwd and /etc/group (root, nobody)."""
    rootfs = os.path.join(root, "rootfs")
    for d in ("bin", "etc", "tmp", "proc", "sys", "dev", "root", "home"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    os.chmod(os.path.join(rootfs, "tmp"), 0o1777)
    shutil.copy2(BUSYBOX, os.path.join(rootfs, "bin", "busybox"))
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for a in applets:
        if a == "busybox" or "/" in a:
            continue
        link = os.path.join(rootfs, "bin", a)
        if not os.path.lexists(link):
            os.symlink("busybox", link)
    with open(os.path.join(rootfs, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    with open(os.path.join(rootfs, "etc", "group"), "w") as f:
        f.write("root:x:0:\nnogroup:x:65534:\n")
    return rootfs


def unique_id(prefix: str = "gtest") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def write_bundle(bundle: str, spec: dict) -> None:
    os.makedirs(bundle, exist_ok=True)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f)
