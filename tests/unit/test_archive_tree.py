"""archive.tree: remove, measure and copy trees deeper than Python's recursion limit, and copy-up that
recreates special files instead of opening them (security review F1 and F3)."""

from __future__ import annotations

import errno
import io
import os
import resource
import shutil
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from gorae.archive.apply import apply_layer
from gorae.archive.changes import overlay_changes
from gorae.archive.tree import Step, copy_tree, remove_tree, tree_usage, walk

DEPTH = sys.getrecursionlimit() + 500  # deeper than any recursive walk survives
LAYER_DEPTH = sys.getrecursionlimit() + 100  # layers resolve each entry from the root: keep the test quick


def _deep(root: Path, depth: int = DEPTH) -> None:
    root.mkdir(exist_ok=True)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for i in range(depth):
            if not os.path.lexists(f"/proc/self/fd/{fd}/d"):
                os.mkdir("d", dir_fd=fd)
            nfd = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
            if i % 100 == 0:
                f = os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
                os.write(f, b"x" * 10)
                os.close(f)
    finally:
        os.close(fd)


def test_a_recursive_walk_fails_where_ours_does_not(tmp_path: Path) -> None:
    tree = tmp_path / "t"
    _deep(tree)
    try:
        with pytest.raises(RecursionError):
            shutil.rmtree(tree)  # Python 3.11's rmtree: the failure the daemon used to die of
        _deep(tree)  # what the failed rmtree left, made whole again
        files = (DEPTH + 99) // 100
        assert tree_usage(str(tree)) == 10 * files
        steps = [v.step for v in walk(str(tree))]
        assert steps.count(Step.ENTER) == steps.count(Step.LEAVE) == DEPTH
        assert steps.count(Step.FILE) == files
        remove_tree(str(tree))
        assert not tree.exists()
    finally:  # pytest's own clean-up of tmp_path recurses
        remove_tree(str(tree))


def test_copy_of_a_deep_tree(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    _deep(src)
    try:
        copy_tree(str(src), str(dst))
        assert tree_usage(str(dst)) == tree_usage(str(src)) > 0
        assert sum(1 for v in walk(str(dst)) if v.step is Step.ENTER) == DEPTH
    finally:  # pytest's own clean-up of tmp_path recurses
        remove_tree(str(src))
        remove_tree(str(dst))


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod and chown need root")
def test_copy_recreates_device_nodes_and_never_reads_them(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    # /dev/zero and a block device: reading either would copy host content (or never end)
    os.mknod(src / "zero", stat.S_IFCHR | 0o666, os.makedev(1, 5))
    os.mknod(src / "disk", stat.S_IFBLK | 0o600, os.makedev(7, 0))
    os.mkfifo(src / "fifo", 0o640)
    (src / "suid").write_bytes(b"#!/bin/sh\n")
    os.chown(src / "suid", 0, 0)
    os.chmod(src / "suid", 0o4755)
    os.symlink("/etc/passwd", src / "link")
    (src / "sub").mkdir(mode=0o750)
    os.chown(src / "sub", 1234, 5678)
    (src / "sub" / "hard").write_bytes(b"h")
    os.link(src / "sub" / "hard", src / "hard2")
    os.setxattr(src / "suid", "user.k", b"v")
    os.utime(src / "sub" / "hard", ns=(1_000_000_000, 2_000_000_000))

    copy_tree(str(src), str(dst))

    zero, disk, fifo = (os.lstat(dst / n) for n in ("zero", "disk", "fifo"))
    assert stat.S_ISCHR(zero.st_mode) and zero.st_rdev == os.makedev(1, 5) and zero.st_size == 0
    assert stat.S_ISBLK(disk.st_mode) and disk.st_rdev == os.makedev(7, 0)
    assert stat.S_ISFIFO(fifo.st_mode) and stat.S_IMODE(fifo.st_mode) == 0o640
    assert stat.S_IMODE(os.lstat(dst / "suid").st_mode) == 0o4755
    assert os.getxattr(dst / "suid", "user.k") == b"v"
    assert os.readlink(dst / "link") == "/etc/passwd" and os.path.islink(dst / "link")
    sub = os.lstat(dst / "sub")
    assert (sub.st_uid, sub.st_gid, stat.S_IMODE(sub.st_mode)) == (1234, 5678, 0o750)
    assert os.lstat(dst / "sub" / "hard").st_ino == os.lstat(dst / "hard2").st_ino
    assert os.lstat(dst / "sub" / "hard").st_mtime_ns == 2_000_000_000


@pytest.mark.skipif(os.geteuid() != 0, reason="mount needs root")
def test_remove_never_empties_a_mount_inside(tmp_path: Path) -> None:
    tree = tmp_path / "t"
    (tree / "a" / "m").mkdir(parents=True)
    (tree / "a" / "other").write_bytes(b"x")
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(tree / "a" / "m")], check=True)
    try:
        (tree / "a" / "m" / "precious").write_bytes(b"keep")
        with pytest.raises(OSError) as e:
            remove_tree(str(tree))
        assert e.value.errno == errno.EBUSY
        assert (tree / "a" / "m" / "precious").read_bytes() == b"keep"
    finally:
        subprocess.run(["umount", str(tree / "a" / "m")], check=True)
    remove_tree(str(tree))
    assert not tree.exists()


def test_a_tree_moved_during_the_walk_stops_it(tmp_path: Path) -> None:
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    (root / "a" / "b").mkdir(parents=True)
    elsewhere.mkdir()
    visits = walk(str(root))
    with pytest.raises(OSError) as e:
        for v in visits:
            if v.step is Step.ENTER and v.name == "b":
                os.rename(root / "a", elsewhere / "a")  # `..` of a now leads outside root
    assert e.value.errno == errno.ESTALE


def test_remove_and_usage_of_missing_or_plain_paths(tmp_path: Path) -> None:
    remove_tree(str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError):
        remove_tree(str(tmp_path / "nope"), missing_ok=False)
    (tmp_path / "f").write_bytes(b"abc")
    remove_tree(str(tmp_path / "f"))
    assert not (tmp_path / "f").exists()
    assert tree_usage(str(tmp_path / "nope")) == 0


def _deep_layer(depth: int, then: tarfile.TarInfo) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for i in range(1, depth + 1):
            info = tarfile.TarInfo("/".join(["a"] * i))
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tf.addfile(info)
        tf.addfile(then, io.BytesIO(b"x" * then.size))
    buf.seek(0)
    return buf


@pytest.mark.parametrize("replacement", ["file", "whiteout"])
def test_layer_replacing_a_deep_tree(tmp_path: Path, replacement: str) -> None:
    """A layer that makes a tree deeper than the recursion limit and then replaces or whites it out: the
    review's RecursionError (a 500 through PUT /archive); the result must be exact, not an error."""
    root = tmp_path / "root"
    root.mkdir()
    if replacement == "file":
        then = tarfile.TarInfo("a")
        then.size = 1
    else:
        then = tarfile.TarInfo(".wh.a")
        then.size = 0
    try:
        apply_layer(str(root), _deep_layer(LAYER_DEPTH, then), whiteouts="remove")
        if replacement == "file":
            assert (root / "a").read_bytes() == b"x"
        else:
            assert not (root / "a").exists()
    finally:
        remove_tree(str(root))


def test_diff_of_a_wide_directory_within_a_small_fd_limit(tmp_path: Path) -> None:
    upper, lower = tmp_path / "upper", tmp_path / "lower"
    (upper / "w").mkdir(parents=True)
    lower.mkdir()
    for i in range(1500):
        (upper / "w" / f"d{i}").mkdir()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        changes = overlay_changes(str(upper), [str(lower)])
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert len(changes) == 1501 and all(kind == 1 for kind, _ in changes)
