"""System routes: `/_ping`, `/version`, `/info`, `/events`, `/system/df`, `/auth` (not yet).

`SystemRouter` answers Docker's JSON shapes from a narrow `SystemBackend` (facts about the daemon, the
event feed, disk usage); it holds no state of its own and never reaches into the services behind it.
Host facts (kernel, OS name, memory, CPUs) are read here: they describe the machine, not the engine.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import platform
import socket
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import gorae
from gorae.api.http import Handler, Request, Response, StreamResponse, json_response, raw_response
from gorae.events import Subscription
from gorae.platform import host_arch
from gorae.swarm.docs import inactive_info
from gorae.timefmt import parse_timestamp, rfc3339nano


@dataclass(frozen=True)
class DaemonFacts:
    """What `/info` reports about the engine itself."""

    node_id: str
    container_states: Mapping[str, int]  # status ("running", "exited", ...) -> count
    images: int
    event_listeners: int
    debug: bool
    data_root: str
    runtime_path: str
    registry_mirrors: list[str] = field(default_factory=list)
    logging_driver: str = "json-file"  # the containers' default
    insecure_registries: list[str] = field(default_factory=list)  # as configured: hosts and CIDRs
    init_binary: str = "docker-init"  # the binary `--init` runs (its name, as dockerd reports it)
    init_path: str = ""  # and its path (for its version)


def _registry_config(facts: DaemonFacts) -> dict[str, Any]:
    """dockerd's RegistryConfig: the insecure CIDRs (127.0.0.0/8 last), insecure hosts as index configs,
    mirrors with a trailing slash."""
    mirrors = [m.rstrip("/") + "/" for m in facts.registry_mirrors]
    cidrs = [r for r in facts.insecure_registries if "/" in r] + ["127.0.0.0/8"]
    indexes: dict[str, Any] = {
        "docker.io": {"Name": "docker.io", "Mirrors": mirrors, "Secure": True, "Official": True}
    }
    for r in facts.insecure_registries:
        if "/" not in r:
            indexes[r] = {"Name": r, "Mirrors": [], "Secure": False, "Official": False}
    return {
        "AllowNondistributableArtifactsCIDRs": None,
        "AllowNondistributableArtifactsHostnames": None,
        "InsecureRegistryCIDRs": list(dict.fromkeys(cidrs)),
        "IndexConfigs": indexes,
        "Mirrors": mirrors,
    }


class SystemBackend(Protocol):
    """What the system routes need from the daemon."""

    def daemon_facts(self) -> DaemonFacts: ...

    def subscribe_events(self) -> Subscription:
        """A live event feed; subscribed before `event_history` is read so nothing falls in between."""
        ...

    def event_history(self, since_ns: int, until_ns: int | None) -> list[dict[str, Any]]: ...

    def disk_usage(self) -> dict[str, Any]:
        """`GET /system/df` in Docker's shape."""
        ...


class SwarmStatus(Protocol):
    """This node's swarm membership as `_ping` and `/info` show it."""

    def ping_state(self) -> str:
        """The `Swarm` header: inactive, active/manager, active/worker."""
        ...

    def info(self) -> dict[str, Any]:
        """/info's Swarm section."""
        ...


# Api-Version, Docker-Experimental and Ostype are on every response (api/server.py)
_PING_HEADERS = {
    "Builder-Version": "1",
    "Swarm": "inactive",
    "Cache-Control": "no-cache, no-store, must-revalidate",
    "Pragma": "no-cache",
}


def _kernel() -> str:
    return platform.release()


def _os_name() -> str:
    try:
        with open("/etc/os-release", encoding="utf-8") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def _mem_total() -> int:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _cgroup_version() -> str:
    return "2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1"


@functools.lru_cache(maxsize=8)
def _tool_version(path: str, name: str) -> dict[str, Any] | None:
    """A `Components` entry for a helper binary from its `--version` ("runc version 1.1.5\ncommit: ..." or
    "tini version 0.19.0 - git.de40ad0"), as dockerd lists runc and its init; None when it does not answer."""
    import re
    import subprocess

    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"version (\S+)", out)
    if not m:
        return None
    commit = re.search(r"^commit: (\S+)", out, re.MULTILINE)
    return {"Name": name, "Version": m.group(1), "Details": {"GitCommit": commit.group(1) if commit else ""}}


def version_doc(facts: DaemonFacts | None = None) -> dict[str, Any]:
    """GET /version. With the daemon's facts, its runtime and init are listed as Components too."""
    arch = host_arch()
    helpers = []
    if facts is not None:
        for path, name in ((facts.runtime_path, "runc"), (facts.init_path, facts.init_binary)):
            entry = _tool_version(path, name) if path else None
            if entry is not None:
                helpers.append(entry)
    return {
        "Platform": {"Name": "gorae"},
        "Components": [
            {
                "Name": "Engine",
                "Version": gorae.__version__,
                "Details": {
                    "ApiVersion": gorae.API_VERSION,
                    "Arch": arch,
                    "BuildTime": "",
                    "Experimental": "false",
                    "GitCommit": "",
                    "GoVersion": "python" + platform.python_version(),
                    "KernelVersion": _kernel(),
                    "MinAPIVersion": gorae.MIN_API_VERSION,
                    "Os": "linux",
                },
            },
            *helpers,
        ],
        "Version": gorae.__version__,
        "ApiVersion": gorae.API_VERSION,
        "MinAPIVersion": gorae.MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "python" + platform.python_version(),
        "Os": "linux",
        "Arch": arch,
        "KernelVersion": _kernel(),
        "BuildTime": "",
    }


class SystemRouter:
    """`/_ping`, `/version`, `/info`, `/events`, `/system/df` over a `SystemBackend`."""

    def __init__(self, backend: SystemBackend, swarm: SwarmStatus | None = None) -> None:
        self.backend = backend
        self.swarm = swarm

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("GET", "/_ping", self.ping),
            ("HEAD", "/_ping", self.ping),
            ("GET", "/version", self.version),
            ("GET", "/info", self.info),
            ("GET", "/events", self.events),
            ("GET", "/system/df", self.system_df),
        ]

    async def ping(self, req: Request) -> Response:
        body = b"" if req.method == "HEAD" else b"OK"
        headers = dict(_PING_HEADERS)
        if self.swarm is not None:
            headers["Swarm"] = self.swarm.ping_state()
        return raw_response(body, "text/plain; charset=utf-8", headers=list(headers.items()))

    async def version(self, req: Request) -> Response:
        return json_response(await asyncio.to_thread(version_doc, self.backend.daemon_facts()))

    async def info(self, req: Request) -> Response:
        doc = info_doc(self.backend.daemon_facts())
        if self.swarm is not None:
            doc["Swarm"] = self.swarm.info()
        return json_response(doc)

    async def events(self, req: Request) -> Response:
        now = time.time_ns()
        since_q = req.q("since")
        until_q = req.q("until")
        since = parse_timestamp(since_q, now_ns=now) if since_q else None
        until = parse_timestamp(until_q, now_ns=now) if until_q else None
        filters = req.qfilters()
        backend = self.backend
        sub = backend.subscribe_events()  # subscribe before replay so nothing falls in between

        async def gen() -> AsyncIterator[bytes]:
            last = 0
            try:
                if since is not None:
                    for ev in backend.event_history(since, until):
                        if event_matches(ev, filters):
                            last = ev["timeNano"]
                            yield json.dumps(ev).encode() + b"\n"
                if until is not None and until <= time.time_ns():
                    return
                while True:
                    timeout = None if until is None else max(0.0, (until - time.time_ns()) / 1e9)
                    try:
                        live = await asyncio.wait_for(sub.queue.get(), timeout)
                    except TimeoutError:
                        return
                    if live is None:
                        return
                    if live["timeNano"] <= last:
                        continue
                    if until is not None and live["timeNano"] > until:
                        return
                    if event_matches(live, filters):
                        yield json.dumps(live).encode() + b"\n"
            finally:
                sub.close()

        return StreamResponse(gen(), content_type="application/json")

    async def system_df(self, req: Request) -> Response:
        return json_response(self.backend.disk_usage())


def info_doc(facts: DaemonFacts) -> dict[str, Any]:
    """`GET /info` in Docker's shape."""
    states = facts.container_states
    arch = platform.machine()
    doc = {
        "ID": facts.node_id,
        "Containers": sum(states.values()),
        "ContainersRunning": states.get("running", 0),
        "ContainersPaused": states.get("paused", 0),
        "ContainersStopped": sum(v for k, v in states.items() if k not in ("running", "paused")),
        "Images": facts.images,
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"]],
        "Plugins": {
            "Volume": ["local"],
            "Network": ["bridge", "host", "null"],
            "Authorization": None,
            "Log": ["journald", "json-file", "local", "syslog"],
        },
        "MemoryLimit": True,
        "SwapLimit": False,
        "KernelMemory": False,
        "KernelMemoryTCP": False,
        "CpuCfsPeriod": True,
        "CpuCfsQuota": True,
        "CPUShares": True,
        "CPUSet": True,
        "PidsLimit": True,
        "IPv4Forwarding": True,
        "BridgeNfIptables": False,
        "BridgeNfIp6tables": False,
        "Debug": facts.debug,
        "NFd": len(os.listdir("/proc/self/fd")),
        "OomKillDisable": True,
        "NGoroutines": len(asyncio.all_tasks()),
        "SystemTime": rfc3339nano(time.time_ns()),
        "LoggingDriver": facts.logging_driver,
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": _cgroup_version(),
        "NEventsListener": facts.event_listeners,
        "KernelVersion": _kernel(),
        "OperatingSystem": _os_name(),
        "OSVersion": "",
        "OSType": "linux",
        "Architecture": arch,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": _registry_config(facts),
        "NCPU": os.cpu_count() or 1,
        "MemTotal": _mem_total(),
        "GenericResources": None,
        "DockerRootDir": facts.data_root,
        "HttpProxy": os.environ.get("HTTP_PROXY", ""),
        "HttpsProxy": os.environ.get("HTTPS_PROXY", ""),
        "NoProxy": os.environ.get("NO_PROXY", ""),
        "Name": socket.gethostname(),
        "Labels": [],
        "ExperimentalBuild": False,
        "ServerVersion": gorae.__version__,
        "Runtimes": {"runc": {"path": facts.runtime_path}},
        "DefaultRuntime": "runc",
        "Swarm": inactive_info(),
        "LiveRestoreEnabled": True,
        "Isolation": "",
        "InitBinary": facts.init_binary,
        "ContainerdCommit": {"ID": "", "Expected": ""},
        "RuncCommit": {"ID": "", "Expected": ""},
        "InitCommit": {"ID": "", "Expected": ""},
        "SecurityOptions": ["name=seccomp,profile=builtin"],
        "Warnings": [],
    }
    return doc


def event_matches(ev: dict[str, Any], filters: Mapping[str, list[str]]) -> bool:
    """Docker's events filters: type, event (action), container, image, label, scope, and the other object types."""
    if not filters:
        return True
    typ = ev.get("Type", "")
    action = ev.get("Action", "")
    actor = ev.get("Actor") or {}
    actor_id = actor.get("ID", "")
    attrs: dict[str, str] = actor.get("Attributes") or {}
    for key, values in filters.items():
        if not values:
            continue
        if key == "type":
            ok = typ in values
        elif key == "event":
            ok = action in values or action.split(":", 1)[0] in values
        elif key == "scope":
            ok = ev.get("scope", "local") in values
        elif key == "label":
            ok = False
            for v in values:
                k, sep, val = v.partition("=")
                if k in attrs and (not sep or attrs[k] == val):
                    ok = True
        elif key in (
            "container",
            "image",
            "network",
            "volume",
            "daemon",
            "node",
            "service",
            "secret",
            "config",
            "plugin",
        ):
            if typ != key and not (key == "image" and typ == "container"):
                ok = False
            elif key == "image" and typ == "container":
                ok = attrs.get("image", "") in values
            else:
                ok = any(
                    actor_id == v or (len(v) >= 1 and actor_id.startswith(v)) or attrs.get("name") == v
                    for v in values
                )
        else:
            ok = True
        if not ok:
            return False
    return True
