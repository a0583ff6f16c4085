"""The container record: docker's inspect document plus gorae's typed bookkeeping, and its in-memory
companions (lock, watcher and restart tasks, waiters, pre-start hooks, rootfs mount count).

`Container.to_doc()`/`from_doc()` are the persisted form (kind "container"): the Docker-shaped fields at
the top level and the bookkeeping under "_gorae", in the key names gorae has always written, so data roots
written by earlier versions load unchanged (unknown or retired keys are dropped on load). Docker-shaped
answers (inspect, summary) are built from the record at the edge, never stored separately. This module
never persists, publishes or touches the runtime.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from gorae.container.state import Status, status_of
from gorae.runtime.types import ExitStatus

KIND = "container"
BOOKKEEPING_KEY = "_gorae"


@dataclass
class Bookkeeping:
    """What gorae keeps about a container that docker's inspect document does not show."""

    created_ns: int = 0
    started_ns: int = 0
    finished_ns: int = 0
    manually_stopped: bool = False  # stopped by hand: unless-stopped stays down at daemon start
    started_before: bool = False
    restart_delay: float = 0.0  # the back-off state of the restart policy
    snapshot: str = ""
    cgroups_path: str = ""
    image_ref: str = ""  # the image reference as given at create
    mounts: list[dict[str, Any]] = field(default_factory=list)  # volume/mounts.py's private form
    endpoints_config: dict[str, Any] = field(default_factory=dict)  # networks to join at the next start
    netns_path: str | None = None  # set while a network sandbox exists
    link_env: list[str] = field(default_factory=list)  # --link environment of the current sandbox
    pending_exit: ExitStatus | None = None  # an exit seen but not yet fully recorded
    commit_paused: bool = False  # frozen by a `docker commit` (set before the freeze): thawed at daemon start

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "CreatedNs": self.created_ns,
            "StartedNs": self.started_ns,
            "FinishedNs": self.finished_ns,
            "ManuallyStopped": self.manually_stopped,
            "StartedBefore": self.started_before,
            "RestartDelay": self.restart_delay,
            "Snapshot": self.snapshot,
            "CgroupsPath": self.cgroups_path,
            "ImageRef": self.image_ref,
            "Mounts": self.mounts,
            "EndpointsConfig": self.endpoints_config,
        }
        if self.netns_path is not None:
            doc["NetnsPath"] = self.netns_path
        if self.link_env:
            doc["LinkEnv"] = self.link_env
        if self.commit_paused:
            doc["CommitPaused"] = True
        if self.pending_exit is not None:
            doc["PendingExit"] = [self.pending_exit.code, self.pending_exit.oom_killed]
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any], container_id: str) -> Bookkeeping:
        pending = doc.get("PendingExit")
        return cls(
            created_ns=int(doc.get("CreatedNs") or 0),
            started_ns=int(doc.get("StartedNs") or 0),
            finished_ns=int(doc.get("FinishedNs") or 0),
            manually_stopped=bool(doc.get("ManuallyStopped")),
            started_before=bool(doc.get("StartedBefore")),
            restart_delay=float(doc.get("RestartDelay") or 0.0),
            snapshot=str(doc.get("Snapshot") or container_id),
            cgroups_path=str(doc.get("CgroupsPath") or ""),
            image_ref=str(doc.get("ImageRef") or ""),
            mounts=list(doc.get("Mounts") or []),
            endpoints_config=dict(doc.get("EndpointsConfig") or {}),
            netns_path=doc.get("NetnsPath") or None,
            link_env=list(doc.get("LinkEnv") or []),
            commit_paused=bool(doc.get("CommitPaused")),
            pending_exit=(
                ExitStatus(int(pending[0]), bool(pending[1]))
                if isinstance(pending, list) and len(pending) == 2
                else None
            ),
        )


class Container:
    """One container: `doc` is docker's inspect document (State, Config, HostConfig, NetworkSettings, ...),
    `book` gorae's bookkeeping; the rest lives only in memory."""

    def __init__(self, doc: dict[str, Any], book: Bookkeeping) -> None:
        self.doc = doc
        self.book = book
        self.lock = asyncio.Lock()
        self.watcher: asyncio.Task[None] | None = None
        self.restart_task: asyncio.Task[None] | None = None
        self.exit_waiters: list[asyncio.Future[dict[str, Any]]] = []
        self.removed_waiters: list[asyncio.Future[dict[str, Any]]] = []
        # run between runtime create and start (attach sessions connect here: no output is lost)
        self.pre_start: list[Callable[[], Awaitable[None]]] = []
        self.mount_refs = 0
        self.mounted = False
        self.removed = False

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Container:
        """A record as persisted (by this or an earlier gorae)."""
        public = {k: v for k, v in doc.items() if k != BOOKKEEPING_KEY}
        bag = doc.get(BOOKKEEPING_KEY)
        return cls(public, Bookkeeping.from_doc(bag if isinstance(bag, dict) else {}, str(doc["Id"])))

    def to_doc(self) -> dict[str, Any]:
        return {**self.doc, BOOKKEEPING_KEY: self.book.to_doc()}

    @property
    def id(self) -> str:
        return str(self.doc["Id"])

    @property
    def name(self) -> str:
        return str(self.doc["Name"])

    @property
    def state(self) -> dict[str, Any]:
        value: dict[str, Any] = self.doc["State"]
        return value

    @property
    def status(self) -> Status:
        return status_of(self.doc["State"])

    @property
    def config(self) -> dict[str, Any]:
        value: dict[str, Any] = self.doc["Config"]
        return value

    @property
    def host_config(self) -> dict[str, Any]:
        value: dict[str, Any] = self.doc["HostConfig"]
        return value

    @property
    def tty(self) -> bool:
        return bool(self.doc["Config"].get("Tty"))

    @property
    def log_path(self) -> str:
        return str(self.doc["LogPath"])

    @property
    def image_id(self) -> str:
        return str(self.doc.get("Image") or "")

    def exit_result(self) -> dict[str, Any]:
        """The body of `POST /containers/{id}/wait` for the container's last exit."""
        err = self.state.get("Error") or ""
        return {
            "StatusCode": int(self.state.get("ExitCode") or 0),
            "Error": {"Message": err} if err else None,
        }

    def attributes(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """Event attributes: the labels, image and name (docker's container event actor)."""
        attrs = {str(k): str(v) for k, v in (self.config.get("Labels") or {}).items()}
        attrs["image"] = str(self.config.get("Image") or "")
        attrs["name"] = self.name.lstrip("/")
        if extra:
            attrs.update(extra)
        return attrs


def cgroups_path(host_config: dict[str, Any], cid: str) -> str:
    parent = str(host_config.get("CgroupParent") or "/gorae")
    if not parent.startswith("/"):
        parent = "/" + parent
    return parent.rstrip("/") + "/" + cid
