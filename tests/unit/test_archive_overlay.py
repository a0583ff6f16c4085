"""Whiteouts both ways through a real overlay mount: tar_overlay_diff of an upper dir, apply_layer in
overlay mode seen through overlayfs, and overlay_changes (docker diff)."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from test_archive_support import d, f, sym, tar_bytes

from gorae.archive import apply_layer, overlay_changes, tar_overlay_diff

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="overlay mounts need root")


@dataclass
class Ovl:
    base: str
    lowers: list[str]  # top first
    upper: str
    merged: str


@contextmanager
def overlay(*layers: bytes) -> Iterator[Ovl]:
    """Apply each layer (bottom first) into its own dir in overlay mode, mount them with a fresh upper."""
    base = tempfile.mkdtemp(prefix="gorae-archive-ovl-")
    merged = os.path.join(base, "merged")
    mounted = False
    try:
        lowers = []
        for i, layer in enumerate(layers):
            p = os.path.join(base, f"l{i}")
            os.mkdir(p)
            apply_layer(p, io.BytesIO(layer), whiteouts="overlay")
            lowers.insert(0, p)
        upper, work = os.path.join(base, "upper"), os.path.join(base, "work")
        for p in (upper, work, merged):
            os.mkdir(p)
        opts = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}"
        subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", opts, merged], check=True, capture_output=True
        )
        mounted = True
        yield Ovl(base, lowers, upper, merged)
    finally:
        if mounted:
            subprocess.run(["umount", merged], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


BASE = tar_bytes(
    d("etc"),
    f("etc/passwd", b"root:x:0:0\n"),
    f("etc/group", b"root:x:0:\n"),
    d("var"),
    d("var/cache"),
    f("var/cache/a", b"a"),
    f("var/cache/b", b"b"),
    d("gone"),
    f("gone/x"),
    sym("/etc", "etclink"),
)


def _names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        return [m.name for m in tf.getmembers()]


def test_applied_whiteouts_hide_lower_files_in_a_real_mount() -> None:
    layer2 = tar_bytes(
        f("etc/.wh.group"), f(".wh.gone"), d("var/cache"), f("var/cache/.wh..wh..opq"), f("var/cache/c")
    )
    with overlay(BASE, layer2) as o:
        assert sorted(os.listdir(os.path.join(o.merged, "etc"))) == ["passwd"]
        assert not os.path.lexists(os.path.join(o.merged, "gone"))
        assert os.listdir(os.path.join(o.merged, "var", "cache")) == ["c"]
        assert os.readlink(os.path.join(o.merged, "etclink")) == "/etc"


def test_overlay_diff_turns_deletions_into_whiteouts() -> None:
    with overlay(BASE) as o:
        m = o.merged
        os.unlink(os.path.join(m, "etc", "group"))
        shutil.rmtree(os.path.join(m, "gone"))
        shutil.rmtree(os.path.join(m, "var", "cache"))
        os.mkdir(os.path.join(m, "var", "cache"))  # recreated: overlayfs marks it opaque
        with open(os.path.join(m, "var", "cache", "new"), "w") as fh:
            fh.write("new")
        with open(os.path.join(m, "etc", "passwd"), "a") as fh:
            fh.write("me:x:1000:1000\n")
        out = io.BytesIO()
        tar_overlay_diff(o.upper, out)
        data = out.getvalue()
        names = _names(data)
        assert "etc/.wh.group" in names
        assert ".wh.gone" in names
        assert "var/cache/.wh..wh..opq" in names
        assert "var/cache/new" in names and "etc/passwd" in names
        assert names.index("var/cache") < names.index("var/cache/.wh..wh..opq")
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
            for mem in tf.getmembers():
                assert not any(k.startswith("SCHILY.xattr.trusted.overlay") for k in mem.pax_headers)

        # changes as docker diff reports them
        changes = overlay_changes(o.upper, o.lowers)
        assert (2, "/etc/group") in changes
        assert (2, "/gone") in changes
        assert (0, "/etc") in changes and (0, "/etc/passwd") in changes
        assert (0, "/var/cache") in changes
        assert (1, "/var/cache/new") in changes
        assert (2, "/var/cache/a") in changes and (2, "/var/cache/b") in changes
        assert changes == sorted(changes, key=lambda c: c[1])

        # and the diff applied as the next layer reproduces the merged view
        with overlay(BASE, data) as o2:
            for top, want in ((o2.merged, m),):
                assert sorted(os.listdir(os.path.join(top, "etc"))) == sorted(
                    os.listdir(os.path.join(want, "etc"))
                )
                assert sorted(os.listdir(os.path.join(top, "var", "cache"))) == ["new"]
                assert not os.path.lexists(os.path.join(top, "gone"))
                with open(os.path.join(top, "etc", "passwd")) as fh:
                    assert fh.read().endswith("me:x:1000:1000\n")


def test_overlay_changes_added_and_nested() -> None:
    with overlay(BASE) as o:
        m = o.merged
        os.makedirs(os.path.join(m, "new", "deep"))
        with open(os.path.join(m, "new", "deep", "f"), "w") as fh:
            fh.write("x")
        os.chmod(os.path.join(m, "etc", "group"), 0o600)  # metadata-only copy-up
        os.unlink(os.path.join(m, "etclink"))
        assert overlay_changes(o.upper, o.lowers) == [
            (0, "/etc"),
            (0, "/etc/group"),
            (2, "/etclink"),
            (1, "/new"),
            (1, "/new/deep"),
            (1, "/new/deep/f"),
        ]


def test_empty_upper_diff_is_the_empty_tar() -> None:
    with overlay(BASE) as o:
        out = io.BytesIO()
        tar_overlay_diff(o.upper, out)
        assert out.getvalue() == bytes(1024)
        assert overlay_changes(o.upper, o.lowers) == []
