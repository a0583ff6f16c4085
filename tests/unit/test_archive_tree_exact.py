"""archive.tree exactly: the walk's steps, depths and fds, its guards against a tree changing under it,
`remove_tree`'s and `tree_usage`'s edges, and what `copy_tree` refuses, skips and keeps.

Written for docs/mutation.md (mutants of tree.py the suite let through). `descend` is called between
the walk's lstat and its open of a directory, so it stands in for a concurrent writer at that moment.
Needs root (mknod, chown, trusted.* xattrs, a tmpfs mount)."""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from gorae.archive import tree
from gorae.archive.tree import Step, copy_tree, remove_tree, tree_usage, walk

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 and not os.environ.get("CI"),
    reason="mknod, chown, mount and trusted.* xattrs need root",
)


def _steps(root: Path, **kw: object) -> list[tuple[str, str, int]]:
    return [(v.step.value, v.name, v.depth) for v in walk(str(root), **kw)]  # type: ignore[arg-type]


def _tree(root: Path) -> None:
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "f").write_bytes(b"1")
    (root / "a" / "g").write_bytes(b"22")
    (root / "z").write_bytes(b"")


def test_walk_steps_and_depths(tmp_path: Path) -> None:
    _tree(tmp_path / "r")
    assert _steps(tmp_path / "r") == [
        ("enter", "a", 0),
        ("enter", "b", 1),
        ("file", "f", 2),
        ("leave", "b", 1),
        ("file", "g", 1),
        ("leave", "a", 0),
        ("file", "z", 0),
    ]
    assert _steps(tmp_path / "r", descend=lambda root, d: False) == [("file", "a", 0), ("file", "z", 0)]


def test_walk_fds_are_the_right_directories_and_close_on_exec(tmp_path: Path) -> None:
    _tree(tmp_path / "r")
    r = tmp_path / "r"
    want = {"a": os.lstat(r / "a").st_ino, "b": os.lstat(r / "a" / "b").st_ino}
    seen = []
    for v in walk(str(r)):
        assert fcntl.fcntl(v.fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
        ino = os.fstat(v.fd).st_ino
        if v.step is Step.ENTER:
            assert ino == want[v.name] == v.st.st_ino
        elif v.step is Step.LEAVE:
            assert ino == (os.lstat(r).st_ino if v.name == "a" else want["a"])
            assert v.st.st_ino == want[v.name]
        seen.append(v.name)
    assert seen == ["a", "b", "f", "b", "g", "a", "z"]


def test_walk_never_follows_a_symlink_at_the_root_nor_opens_a_file_as_one(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    os.symlink("d", tmp_path / "link")
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(NotADirectoryError):  # O_DIRECTORY | O_NOFOLLOW on a symlink: ENOTDIR
        list(walk(str(tmp_path / "link")))
    with pytest.raises(NotADirectoryError):
        list(walk(str(tmp_path / "f")))
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert [v.name for v in walk("d", dir_fd=fd)] == []
    finally:
        os.close(fd)


def test_an_entry_gone_before_its_lstat_is_skipped(tmp_path: Path) -> None:
    r = tmp_path / "r"
    (r / "d").mkdir(parents=True)
    for n in ("a", "b", "c"):
        (r / "d" / n).write_bytes(b"")
    (r / "e").write_bytes(b"")
    got = []
    for v in walk(str(r)):
        got.append((v.step.value, v.name))
        if v.step is Step.ENTER:
            os.unlink(r / "d" / "a")  # listed on entering d, gone before its lstat
    assert got == [("enter", "d"), ("file", "b"), ("file", "c"), ("leave", "d"), ("file", "e")]


@pytest.mark.parametrize("swap", ["removed", "symlink", "file", "other dir"])
def test_a_directory_swapped_between_lstat_and_open_is_skipped(tmp_path: Path, swap: str) -> None:
    r = tmp_path / "r"
    (r / "b" / "inner").mkdir(parents=True)
    (r / "c").write_bytes(b"")
    (tmp_path / "other" / "secret").mkdir(parents=True)

    def descend(root_st: os.stat_result, st: os.stat_result) -> bool:
        os.rmdir(r / "b" / "inner")
        os.rmdir(r / "b")
        if swap == "symlink":
            os.symlink(str(tmp_path / "other"), r / "b")
        elif swap == "file":
            (r / "b").write_bytes(b"")
        elif swap == "other dir":
            os.rename(tmp_path / "other", r / "b")
        return True

    assert _steps(r, descend=descend) == [("file", "c", 0)]


def test_a_tree_moved_during_the_walk_says_so(tmp_path: Path) -> None:
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    (root / "a" / "b").mkdir(parents=True)
    elsewhere.mkdir()
    with pytest.raises(OSError) as e:
        for v in walk(str(root)):
            if v.step is Step.ENTER and v.name == "b":
                os.rename(root / "a", elsewhere / "a")
    assert (e.value.errno, e.value.strerror) == (errno.ESTALE, "directory tree changed during the walk")


@needs_root
def test_remove_tree_refuses_a_mount_in_docker_words(tmp_path: Path) -> None:
    t = tmp_path / "t"
    (t / "m").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(t / "m")], check=True)
    try:
        with pytest.raises(OSError) as e:
            remove_tree(str(t))
        assert (e.value.errno, e.value.strerror, e.value.filename) == (
            errno.EBUSY,
            f"a mount is still inside {t}",
            "m",
        )
    finally:
        subprocess.run(["umount", str(t / "m")], check=True)
    remove_tree(str(t))
    assert not t.exists()


def test_remove_tree_relative_to_a_dir_fd_and_of_a_symlink(tmp_path: Path) -> None:
    _tree(tmp_path / "r")
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "k").write_bytes(b"k")
    os.symlink("keep", tmp_path / "link")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        remove_tree("r", dir_fd=fd)
        remove_tree("link", dir_fd=fd)  # the link goes, not what it points to
        remove_tree("nope", dir_fd=fd)
    finally:
        os.close(fd)
    assert sorted(os.listdir(tmp_path)) == ["keep"]
    assert (tmp_path / "keep" / "k").read_bytes() == b"k"


def test_tree_usage_counts_hardlinks_once_and_blocks_on_request(tmp_path: Path) -> None:
    r = tmp_path / "r"
    (r / "d").mkdir(parents=True)
    (r / "d" / "f").write_bytes(b"x" * 10)
    os.link(r / "d" / "f", r / "h")  # two names, one inode: counted once
    (r / "g").write_bytes(b"y" * 5000)
    os.symlink("d/f", r / "s")
    (r / "sparse").write_bytes(b"")
    os.truncate(r / "sparse", 1 << 20)  # a hole: no block allocated, counted by its size
    s_len = len("d/f")
    assert tree_usage(str(r)) == 10 + 5000 + s_len + (1 << 20)
    blocks = sum(os.lstat(r / n).st_blocks * 512 for n in ("d/f", "g"))
    assert blocks > 10 + 5000  # the file system allocates whole blocks
    sym_blocks = os.lstat(r / "s").st_blocks
    assert tree_usage(str(r), blocks=True) == blocks + (sym_blocks * 512 if sym_blocks else s_len) + (1 << 20)


@needs_root
def test_copy_tree_skips_overlay_xattrs_only(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "d").mkdir(parents=True)
    dst.mkdir()
    (src / "d" / "f").write_bytes(b"f")
    for p in (src / "d", src / "d" / "f"):
        os.setxattr(p, "trusted.overlay.opaque", b"y")
        os.setxattr(p, "trusted.other", b"o")
        os.setxattr(p, "user.u", b"u")
    copy_tree(str(src), str(dst))
    for p in (dst / "d", dst / "d" / "f"):
        assert sorted(os.listxattr(p)) == ["trusted.other", "user.u"]
        assert os.getxattr(p, "trusted.other") == b"o"


def test_copy_tree_keeps_modes_owners_and_times_of_every_kind(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "a" / "b").mkdir(parents=True)
    dst.mkdir()
    (src / "a" / "b" / "f").write_bytes(b"data")
    os.symlink("b/f", src / "a" / "s")
    os.mkfifo(src / "a" / "p", 0o600)
    for p, mode in (
        (src / "a" / "b" / "f", 0o2751),
        (src / "a" / "p", 0o604),
        (src / "a" / "b", 0o711),
        (src / "a", 0o705),
    ):
        os.chown(p, 1000, 2000)
        os.chmod(p, mode)
    os.chown(src / "a" / "s", 1001, 2001, follow_symlinks=False)
    paths = ("a/b/f", "a/s", "a/p", "a/b", "a")
    for n, p in enumerate(paths):
        os.utime(src / p, ns=(1_000_000_007 + n, 2_000_000_009 + n), follow_symlinks=False)
    copy_tree(str(src), str(dst))

    def meta(p: str) -> tuple[int, int, int, int, int]:
        st = os.lstat(dst / p)
        return (st.st_mode, st.st_uid, st.st_gid, st.st_atime_ns, st.st_mtime_ns)

    assert [meta(p) for p in paths] == [
        (stat.S_IFREG | 0o2751, 1000, 2000, 1_000_000_007, 2_000_000_009),
        (stat.S_IFLNK | 0o777, 1001, 2001, 1_000_000_008, 2_000_000_010),
        (stat.S_IFIFO | 0o604, 1000, 2000, 1_000_000_009, 2_000_000_011),
        (stat.S_IFDIR | 0o711, 1000, 2000, 1_000_000_010, 2_000_000_012),
        (stat.S_IFDIR | 0o705, 1000, 2000, 1_000_000_011, 2_000_000_013),
    ]
    assert (dst / "a" / "b" / "f").read_bytes() == b"data"
    assert os.readlink(dst / "a" / "s") == "b/f"


def test_copy_tree_into_an_existing_name_or_a_non_directory_fails(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    (src / "f").write_bytes(b"new")
    (dst / "f").write_bytes(b"old")
    with pytest.raises(FileExistsError):
        copy_tree(str(src), str(dst))
    assert (dst / "f").read_bytes() == b"old"
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotADirectoryError):
        copy_tree(str(tmp_path / "empty"), str(dst / "f"))
    os.symlink("dst", tmp_path / "dlink")
    with pytest.raises(NotADirectoryError):
        copy_tree(str(tmp_path / "empty"), str(tmp_path / "dlink"))


def test_copy_tree_hardlinks_whose_first_path_is_too_long_become_copies(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    dst.mkdir()
    deep = src
    for i in range(17):  # 17 names of 250 characters: a path past PATH_MAX (4096)
        deep = deep / (chr(ord("a") + i) * 250)
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in deep.parts[1:]:
            if not os.path.lexists(f"/proc/self/fd/{fd}/{part}"):
                os.mkdir(part, dir_fd=fd)
            nfd = os.open(part, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        f = os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(f, b"shared")
        os.close(f)
        os.link("f", str(src / "z"), src_dir_fd=fd)  # "z" is walked after the deep "a..." first name
    finally:
        os.close(fd)
    (src / "y").write_bytes(b"")
    os.link(src / "y", src / "y2")
    copy_tree(str(src), str(dst))
    assert (dst / "z").read_bytes() == b"shared"
    assert os.lstat(dst / "z").st_nlink == 1  # a copy of its own
    assert os.lstat(dst / "y").st_ino == os.lstat(dst / "y2").st_ino  # a short path: linked
    remove_tree(str(src))
    remove_tree(str(dst))


def test_copy_file_copies_what_the_file_holds_now(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "d").mkdir()
    (tmp_path / "s" / "f").write_bytes(b"ab")
    st = os.lstat(tmp_path / "s" / "f")
    (tmp_path / "s" / "f").write_bytes(b"grown since the walk looked")
    with _dirs(tmp_path / "s", tmp_path / "d") as (s, d):
        tree._copy_file(s, "f", d, st)
    assert (tmp_path / "d" / "f").read_bytes() == b"grown since the walk looked"


@contextmanager
def _dirs(*paths: Path) -> Iterator[tuple[int, ...]]:
    fds = tuple(os.open(p, os.O_RDONLY | os.O_DIRECTORY) for p in paths)
    try:
        yield fds
    finally:
        for fd in fds:
            os.close(fd)


def test_copy_file_never_follows_or_blocks_on_what_replaced_the_file(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "d").mkdir()
    (tmp_path / "s" / "f").write_bytes(b"x")
    st = os.lstat(tmp_path / "s" / "f")
    (tmp_path / "secret").write_bytes(b"host")
    os.rename(tmp_path / "s" / "f", tmp_path / "s" / "old")
    os.symlink(str(tmp_path / "secret"), tmp_path / "s" / "f")
    with _dirs(tmp_path / "s", tmp_path / "d") as (s, d):
        with pytest.raises(OSError) as e:
            tree._copy_file(s, "f", d, st)
        assert e.value.errno == errno.ELOOP
        os.unlink(tmp_path / "s" / "f")
        os.mkfifo(tmp_path / "s" / "f")

        def hung(signum: int, frame: object) -> None:
            raise TimeoutError("opened the fifo blocking")

        old = signal.signal(signal.SIGALRM, hung)
        signal.alarm(5)
        try:
            tree._copy_file(s, "f", d, st)  # a fifo: opened non-blocking, never read, nothing written
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)
    assert os.listdir(tmp_path / "d") == []


def test_tree_usage_counts_each_hardlinked_inode_once(tmp_path: Path) -> None:
    r = tmp_path / "r"
    r.mkdir()
    for first, second, size in (("a1", "a2", 100), ("b1", "b2", 7)):
        (r / first).write_bytes(b"x" * size)
        os.link(r / first, r / second)
    assert tree_usage(str(r)) == 107


def test_copy_tree_keeps_a_hardlinked_symlink_a_link_to_the_symlink(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    (src / "target").write_bytes(b"t")
    os.symlink("target", src / "s1")
    os.link(src / "s1", src / "s2", follow_symlinks=False)  # two names of one symlink inode
    copy_tree(str(src), str(dst))
    s1, s2 = os.lstat(dst / "s1"), os.lstat(dst / "s2")
    assert stat.S_ISLNK(s2.st_mode) and s1.st_ino == s2.st_ino and s2.st_nlink == 2
    assert os.readlink(dst / "s2") == "target"
    assert os.lstat(dst / "target").st_nlink == 1
