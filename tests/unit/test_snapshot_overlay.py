"""The overlay snapshotter against the shared snapshotter conformance suite, plus its own specifics."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator

import pytest

from gorae.snapshot.mount import is_mountpoint, mount_all, unmount
from gorae.snapshot.overlay import OverlaySnapshotter
from gorae.snapshot.testsuite import CASES
from gorae.snapshot.types import Mount


def _unmount_under(root: str) -> None:
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        points = [line.split()[4] for line in f]
    for p in sorted((p for p in points if p.startswith(root + "/")), key=len, reverse=True):
        try:
            unmount(p)
        except Exception:
            os.system(f"umount -l {p!r}")


@pytest.fixture
def base() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix=f"gorae-snap-{uuid.uuid4().hex[:6]}-")
    try:
        yield d
    finally:
        _unmount_under(d)
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("case", list(CASES))
def test_overlay_conformance(case: str, base: str) -> None:
    root = os.path.join(base, "root")
    work = os.path.join(base, "mnt")
    os.makedirs(work)
    CASES[case](OverlaySnapshotter, root, work)


def test_mount_specs(base: str) -> None:
    s = OverlaySnapshotter(os.path.join(base, "o"))
    m = s.prepare("a", None)
    assert m[0].type == "bind" and "rw" in m[0].options
    s.commit("l1", "a")
    m = s.prepare("b", "l1")
    assert m[0].type == "overlay"
    opts = dict(o.split("=", 1) for o in m[0].options if "=" in o)
    assert opts["upperdir"] == s.upper_dir("b")
    assert opts["lowerdir"] == s.upper_dir("l1")
    # short numeric directory names
    assert os.path.relpath(s.upper_dir("b"), s.root).split("/")[0].isdigit()


def test_orphan_dirs_collected(base: str) -> None:
    root = os.path.join(base, "o")
    s = OverlaySnapshotter(root)
    s.prepare("a", None)
    s.close()
    os.makedirs(os.path.join(root, "999", "diff"))
    os.makedirs(os.path.join(root, "rm-5", "diff"))
    s = OverlaySnapshotter(root)
    assert not os.path.exists(os.path.join(root, "999"))
    assert not os.path.exists(os.path.join(root, "rm-5"))
    assert os.path.isdir(s.upper_dir("a"))


def test_unmount_not_mounted_and_stacked(base: str) -> None:
    t = os.path.join(base, "t")
    src = os.path.join(base, "src")
    os.makedirs(t)
    os.makedirs(src)
    unmount(t)  # nothing mounted: no error
    mount_all([Mount("bind", src, ["rbind"]), Mount("bind", src, ["ro", "rbind"])], t)
    assert is_mountpoint(t)
    unmount(t)
    assert not is_mountpoint(t)


def test_mount_failure_is_clear(base: str) -> None:
    from gorae.errors import GoraeError

    t = os.path.join(base, "t")
    os.makedirs(t)
    with pytest.raises(GoraeError, match="mount"):
        mount_all([Mount("overlay", "overlay", ["lowerdir=/nonexistent-gorae"])], t)
    assert not is_mountpoint(t)
