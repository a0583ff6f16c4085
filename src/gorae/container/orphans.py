"""Start-up collection of what a crash or a failed create left without a container record: container
directories (`containers/<id>/`) and container snapshots (active snapshots keyed by a container id).

A create makes its directory and snapshot before its record (so a record never points at nothing); a kill
between the two leaves them without an owner. Nothing else can be using them at start-up, before the API
listens. Every removal that fails is logged and tried again at the next start, never fatal.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable

from gorae.archive.tree import remove_tree
from gorae.container.record import Container
from gorae.container.types import RootfsProvider
from gorae.snapshot.types import Kind

log = logging.getLogger("gorae.containers")

CONTAINER_ID = re.compile(r"^[0-9a-f]{64}$")


def collect(root: str, snapshotter: RootfsProvider, records: Iterable[Container]) -> list[str]:
    """Remove the container directories under `root` and the container snapshots no record owns; returns
    what was removed ("dir <id>" / "snapshot <key>")."""
    records = list(records)
    ids = {ct.id for ct in records}
    snapshots = {ct.book.snapshot for ct in records}
    removed: list[str] = []
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        names = []
    for name in names:
        if CONTAINER_ID.match(name) and name not in ids:
            if os.path.ismount(os.path.join(root, name, "rootfs")):  # never delete through a mount
                log.warning("orphan container directory %s has a mounted rootfs: left in place", name)
                continue
            try:
                remove_tree(os.path.join(root, name))
                removed.append(f"dir {name}")
            except OSError as e:
                log.warning("could not remove the orphan container directory %s: %s", name, e)
    try:
        infos = snapshotter.list()
    except Exception as e:  # noqa: BLE001 - never fatal at start-up
        log.warning("listing snapshots: %s", e)
        infos = []
    for info in infos:
        if info.kind == Kind.ACTIVE and CONTAINER_ID.match(info.name) and info.name not in snapshots:
            try:
                snapshotter.remove(info.name)
                removed.append(f"snapshot {info.name}")
            except Exception as e:  # noqa: BLE001 - never fatal at start-up
                log.warning("could not remove the orphan container snapshot %s: %s", info.name[:12], e)
    if removed:
        log.warning("removed %d leftovers without a container record: %s", len(removed), ", ".join(removed))
    return removed
