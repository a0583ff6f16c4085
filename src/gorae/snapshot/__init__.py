"""Snapshots: layered filesystems in containerd's shape (prepare/view/commit return mount specs; callers mount).

`types.py` holds the `Snapshotter` protocol and its records, `overlay.py` the overlayfs implementation,
`mount.py` the mount/unmount primitives, `testsuite.py` the conformance cases every snapshotter must pass.
"""

from gorae.snapshot.mount import mount_all, unmount
from gorae.snapshot.overlay import OverlaySnapshotter
from gorae.snapshot.types import Kind, Mount, SnapshotInfo, Snapshotter

__all__ = ["Kind", "Mount", "OverlaySnapshotter", "SnapshotInfo", "Snapshotter", "mount_all", "unmount"]
