"""Translating a Docker/containers seccomp profile (`/usr/share/containers/seccomp.json` format) into
the OCI `linux.seccomp` object for one container's final capability set and this host's arch.

Owns the filter logic only (includes/excludes by caps, arches, minKernel; errnoRet); never loads
a filter into the kernel.
"""

from __future__ import annotations

import json
import os
import platform
from typing import Any

from gorae.errors import InvalidParameter

# Docker's own default profile (moby profiles/seccomp/default.json, Debian golang-github-docker-docker-dev);
# containers-common's profile is a fallback only: it allows mount/unshare/keyctl without CAP_SYS_ADMIN.
DOCKER_PROFILE = "/usr/share/gocode/src/github.com/docker/docker/profiles/seccomp/default.json"
CONTAINERS_PROFILE = "/usr/share/containers/seccomp.json"
DEFAULT_PROFILE = DOCKER_PROFILE if os.path.exists(DOCKER_PROFILE) else CONTAINERS_PROFILE

# uname machine -> (Go arch name used in profile "arches", SCMP arch)
_ARCHES = {
    "x86_64": ("amd64", "SCMP_ARCH_X86_64"),
    "aarch64": ("arm64", "SCMP_ARCH_AARCH64"),
    "i686": ("386", "SCMP_ARCH_X86"),
    "ppc64le": ("ppc64le", "SCMP_ARCH_PPC64LE"),
    "s390x": ("s390x", "SCMP_ARCH_S390X"),
}


def _kernel_tuple(release: str) -> tuple[int, int]:
    parts = release.split(".")
    try:
        major = int(parts[0])
        minor = int("".join(ch for ch in parts[1] if ch.isdigit()) or 0) if len(parts) > 1 else 0
    except ValueError:
        return (0, 0)
    return (major, minor)


def load_profile(path: str = DEFAULT_PROFILE) -> dict[str, Any]:
    with open(path, "rb") as f:
        profile: dict[str, Any] = json.load(f)
    return profile


def parse_profile(text: str) -> dict[str, Any]:
    try:
        prof = json.loads(text)
    except ValueError as e:
        raise InvalidParameter(f"Decoding seccomp profile failed: {e}") from e
    if not isinstance(prof, dict):
        raise InvalidParameter("Decoding seccomp profile failed: not a JSON object")
    return prof


def _arg(a: dict[str, Any]) -> dict[str, Any]:
    out = {"index": int(a["index"]), "value": int(a.get("value", 0)), "op": a["op"]}
    if a.get("valueTwo"):
        out["valueTwo"] = int(a["valueTwo"])
    return out


def to_oci(
    profile: dict[str, Any],
    caps: list[str],
    *,
    machine: str | None = None,
    kernel: str | None = None,
) -> dict[str, Any]:
    """The OCI seccomp object for `profile`, given the container's capabilities."""
    machine = machine or platform.machine()
    kernel = kernel or os.uname().release
    goarch, scmp_arch = _ARCHES.get(machine, (machine, ""))
    kver = _kernel_tuple(kernel)
    capset = set(caps)

    out: dict[str, Any] = {"defaultAction": profile.get("defaultAction", "SCMP_ACT_ERRNO")}
    if "defaultErrnoRet" in profile:
        out["defaultErrnoRet"] = int(profile["defaultErrnoRet"])

    arches: list[str] = []
    if profile.get("archMap"):
        for m in profile["archMap"]:
            if m.get("architecture") == scmp_arch:
                arches = [m["architecture"], *m.get("subArchitectures", [])]
    elif profile.get("architectures"):
        arches = list(profile["architectures"])
    if arches:
        out["architectures"] = arches

    syscalls: list[dict[str, Any]] = []
    for call in profile.get("syscalls") or []:
        inc = call.get("includes") or {}
        exc = call.get("excludes") or {}
        if inc.get("caps") and not all(c in capset for c in inc["caps"]):
            continue
        if inc.get("arches") and goarch not in inc["arches"]:
            continue
        if inc.get("minKernel") and kver < _kernel_tuple(inc["minKernel"]):
            continue
        if exc.get("caps") and any(c in capset for c in exc["caps"]):
            continue
        if exc.get("arches") and goarch in exc["arches"]:
            continue
        names = list(call.get("names") or ([call["name"]] if call.get("name") else []))
        if not names:
            continue
        entry: dict[str, Any] = {"names": names, "action": call["action"]}
        if call.get("args"):
            entry["args"] = [_arg(a) for a in call["args"]]
        if call.get("errnoRet") is not None:
            entry["errnoRet"] = int(call["errnoRet"])
        syscalls.append(entry)
    out["syscalls"] = syscalls
    return out
