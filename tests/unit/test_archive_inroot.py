"""archive.inroot exactly: opening a root (its errors in docker's words), the walk's answers (fd, canonical
parts, rest) for symlinks, `..`, missing components and mounts, and its guard against a directory swapped
between its lstat and its open.

Written for docs/mutation.md (mutants of inroot.py the suite let through). A swap "between lstat and
open" is a real change of the tree made right after the walk's own lstat returns (the os.lstat the walk
calls is wrapped to act once at that moment; its result is the real one)."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from gorae.archive.inroot import MountSpec, Root, Walked
from gorae.errors import InvalidParameter, NotFound


def _ino(fd: int) -> int:
    return os.fstat(fd).st_ino


@contextmanager
def _walked(root: Root, parts: list[str], **kw: object) -> Iterator[Walked]:
    w = root.walk(parts, **kw)  # type: ignore[arg-type]
    try:
        yield w
    finally:
        os.close(w.fd)


def test_a_root_that_is_missing_or_not_a_directory_in_docker_words(tmp_path: Path) -> None:
    with pytest.raises(NotFound) as nf:
        Root(str(tmp_path / "nope"))
    assert str(nf.value) == f"root directory {tmp_path / 'nope'} does not exist"
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(InvalidParameter) as ip:
        Root(str(tmp_path / "f"))
    assert str(ip.value) == f"root {tmp_path / 'f'} is not a directory"


@pytest.mark.parametrize("swap", ["file", "symlink"])
def test_a_directory_swapped_between_lstat_and_open_stops_the_walk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, swap: str
) -> None:
    r = tmp_path / "root"
    (r / "d").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    real = os.lstat
    done: list[bool] = []

    def lstat(path: str, *args: object, **kw: object) -> os.stat_result:
        st = real(path, *args, **kw)  # type: ignore[arg-type]
        if not done and path == "d" and "dir_fd" in kw:
            done.append(True)
            os.rmdir(r / "d")
            if swap == "file":
                (r / "d").write_bytes(b"")
            else:
                os.symlink(str(tmp_path / "outside"), r / "d")
        return st

    with Root(str(r)) as root:
        with monkeypatch.context() as m:
            m.setattr(os, "lstat", lstat)
            with pytest.raises(InvalidParameter) as e:
                root.walk(["d"])
        assert done == [True]
        assert str(e.value) == "path 'd' changed while it was resolved"


def test_a_mount_of_the_host_root_and_fds_closed_on_exec(tmp_path: Path) -> None:
    r = tmp_path / "root"
    r.mkdir()
    (tmp_path / "vol").mkdir()
    with Root(str(r), [MountSpec("/hostroot", "/"), MountSpec("/v", str(tmp_path / "vol"))]) as root:
        with _walked(root, ["hostroot"]) as w:
            assert (_ino(w.fd), w.parts, w.rest) == (os.stat("/").st_ino, ["hostroot"], [])
        for fd in (root.fd, *(m.parent_fd for m in root._mounts.values())):
            assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
        with _walked(root, ["v"]) as w:
            assert fcntl.fcntl(w.fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    assert (r / "hostroot").is_dir() and (r / "v").is_dir()  # the mount points, made in the root


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "a" / "b").mkdir(parents=True)
    (r / "a" / "f").write_bytes(b"")
    os.symlink("/a", r / "abs")  # absolute: restarts at the root
    os.symlink("../../a/b", r / "a" / "rel")  # `..` clamped at the root
    os.symlink("nope/x", r / "dangling")
    return r


@pytest.mark.parametrize(
    ("parts", "canon", "rest"),
    [
        ([], [], []),
        (["a", "b"], ["a", "b"], []),
        (["", ".", "a", "", ".", "b", "."], ["a", "b"], []),
        (["abs", "b"], ["a", "b"], []),
        (["a", "rel"], ["a", "b"], []),
        (["a", "b", "..", "..", "..", "a"], ["a"], []),
        (["a", "f"], ["a"], ["f"]),
        (["a", "f", "g"], ["a"], ["f", "g"]),
        (["a", "m", "n"], ["a"], ["m", "n"]),
        (["a", "m", "..", "b"], ["a", "b"], []),  # `..` of a missing name pops it, not a directory
        (["a", "m", "n", "..", "o"], ["a"], ["m", "o"]),
        (["dangling", "y"], [], ["nope", "x", "y"]),
    ],
)
def test_walk_answers(tree: Path, parts: list[str], canon: list[str], rest: list[str]) -> None:
    with Root(str(tree)) as root, _walked(root, parts) as w:
        assert (w.parts, w.rest) == (canon, rest)
        assert _ino(w.fd) == os.lstat(tree.joinpath(*canon)).st_ino
        assert root.canonical(parts) == canon + [p for p in rest if p not in ("", ".")]


def test_walk_creates_missing_directories_with_the_mode_given(tree: Path) -> None:
    old = os.umask(0)
    try:
        with Root(str(tree)) as root:
            with _walked(root, ["a", "new", "..", "n2", "n3"], create=True, mode=0o750) as w:
                assert (w.parts, w.rest) == (["a", "n2", "n3"], [])
                assert _ino(w.fd) == os.lstat(tree / "a" / "n2" / "n3").st_ino
            with _walked(root, ["dangling", "z"], create=True) as w:  # made where the dangling link points
                assert (w.parts, w.rest) == (["nope", "x", "z"], [])
    finally:
        os.umask(old)
    assert not (tree / "a" / "new").exists()
    assert oct(os.lstat(tree / "a" / "n2").st_mode & 0o777) == oct(0o750)
    assert oct(os.lstat(tree / "nope" / "x" / "z").st_mode & 0o777) == oct(0o755)


def test_symlink_loops_stop_at_forty_links_in_docker_words(tmp_path: Path) -> None:
    r = tmp_path / "root"
    r.mkdir()
    (r / "end").mkdir()
    for i in range(40):  # l0 -> l1 -> ... -> l39 -> end: exactly 40 links
        os.symlink(f"l{i + 1}" if i < 39 else "end", r / f"l{i}")
    os.symlink("loop", r / "loop")
    with Root(str(r)) as root:
        with _walked(root, ["l0"]) as w:
            assert w.parts == ["end"]
        with pytest.raises(InvalidParameter) as e:
            root.walk(["x", "..", "loop", "y"])
        assert str(e.value) == "too many levels of symbolic links resolving 'x/../loop/y'"


def test_open_dir_errors_in_docker_words(tree: Path) -> None:
    with Root(str(tree)) as root:
        with pytest.raises(NotFound) as nf:
            root.open_dir(["a", "m", "n"])
        assert str(nf.value) == "no such file or directory: /a/m/n"
        with pytest.raises(InvalidParameter) as ip:
            root.open_dir(["a", "f", "g"])
        assert str(ip.value) == "not a directory: /a/f/g"
        w = root.open_dir(["abs", "b"])
        try:
            assert (w.parts, w.rest) == (["a", "b"], [])
        finally:
            os.close(w.fd)
        w = root.open_dir(["a", "m"], create=True)
        os.close(w.fd)
    assert (tree / "a" / "m").is_dir()


def test_file_mounts_at_any_depth(tmp_path: Path) -> None:
    r = tmp_path / "root"
    r.mkdir()
    (tmp_path / "src.txt").write_bytes(b"host file")
    src = str(tmp_path / "src.txt")
    with Root(str(r), [MountSpec("/top.txt", src), MountSpec("/x/y/deep.txt", src, readonly=True)]) as root:
        assert sorted(root._mounts) == [("top.txt",), ("x", "y", "deep.txt")]
        for key, ro in ((("top.txt",), False), (("x", "y", "deep.txt"), True)):
            m = root.mount_at(key)
            assert m is not None and (m.name, m.is_dir, m.readonly) == ("src.txt", False, ro)
        with _walked(root, ["x", "y", "deep.txt"]) as w:  # a file mount is not walked into
            assert (w.parts, w.rest) == (["x", "y"], ["deep.txt"])
    assert (r / "top.txt").is_file() and (r / "x" / "y" / "deep.txt").is_file()  # the mount points
    assert sorted(os.listdir(r)) == ["top.txt", "x"]


def test_a_file_mount_point_is_made_once_with_its_mode_never_through_a_symlink(tmp_path: Path) -> None:
    r = tmp_path / "root"
    r.mkdir()
    (tmp_path / "src.txt").write_bytes(b"")
    os.symlink(str(tmp_path / "outside.txt"), r / "link.txt")  # a dangling link where a mount point goes
    old = os.umask(0o022)
    try:
        Root(
            str(r),
            [
                MountSpec("/made.txt", str(tmp_path / "src.txt")),
                MountSpec("/link.txt", str(tmp_path / "src.txt")),
            ],
        ).close()
    finally:
        os.umask(old)
    assert oct(os.lstat(r / "made.txt").st_mode) == oct(0o100755)
    assert os.path.islink(r / "link.txt") and not os.path.lexists(tmp_path / "outside.txt")


def test_the_same_destination_twice_keeps_the_last_and_leaks_no_fd(tmp_path: Path) -> None:
    r = tmp_path / "root"
    r.mkdir()
    for n in ("one", "two"):
        (tmp_path / n).mkdir()
    before = sorted(os.listdir("/proc/self/fd"))
    root = Root(
        str(r),
        [MountSpec("/v", str(tmp_path / "one")), MountSpec("/v/", str(tmp_path / "two"), readonly=True)],
    )
    try:
        m = root.mount_at(["v"])
        assert m is not None and (m.name, m.readonly) == ("two", True)
        assert len(os.listdir("/proc/self/fd")) == len(before) + 2  # the root and one mount's parent
    finally:
        root.close()
    assert sorted(os.listdir("/proc/self/fd")) == before


def test_dot_dot_below_a_mount_comes_back_into_the_mount(tmp_path: Path) -> None:
    r = tmp_path / "root"
    (r / "a" / "v").mkdir(parents=True)  # the root's own mount point: hidden by the mount
    src = tmp_path / "vol"
    (src / "w" / "q").mkdir(parents=True)
    with Root(str(r), [MountSpec("/a/v", str(src))]) as root:
        with _walked(root, ["a", "v", "w", "q", ".."]) as w:
            assert (w.parts, w.rest) == (["a", "v", "w"], [])
            assert _ino(w.fd) == os.lstat(src / "w").st_ino


def test_the_innermost_directory_mount_decides_whether_a_path_is_writable(tmp_path: Path) -> None:
    r = tmp_path / "root"
    r.mkdir()
    for n in ("ro", "rw"):
        (tmp_path / n).mkdir()
    mounts = [
        MountSpec("/v", str(tmp_path / "ro"), readonly=True),
        MountSpec("/v/in/rw", str(tmp_path / "rw")),
    ]
    with Root(str(r), mounts) as root:
        for parts in (["v"], ["v", "f"], ["v", "in", "f"]):
            with pytest.raises(InvalidParameter) as e:
                root.check_writable(parts)
            assert str(e.value) == "mounted volume is marked read-only"
        root.check_writable(["v", "in", "rw"])
        root.check_writable(["v", "in", "rw", "f"])
        root.check_writable(["elsewhere"])
    with Root(str(r), mounts, readonly=True) as root:
        root.check_writable(["v", "in", "rw", "f"])
        with pytest.raises(InvalidParameter) as e:
            root.check_writable(["elsewhere", "f"])
        assert str(e.value) == "container rootfs is marked read-only"


@pytest.mark.parametrize("swap", ["file", "removed"])
def test_a_directory_swapped_before_dot_dot_reopens_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, swap: str
) -> None:
    """`..` reopens the parent from the root: when the parent was replaced meanwhile the walk fails (in
    docker's words for a non-directory), closing only its own fds."""
    r = tmp_path / "root"
    (r / "a" / "b").mkdir(parents=True)
    real = os.lstat
    done: list[bool] = []

    def lstat(path: str, *args: object, **kw: object) -> os.stat_result:
        st = real(path, *args, **kw)  # type: ignore[arg-type]
        if not done and path == "b" and "dir_fd" in kw:
            done.append(True)
            os.rename(r / "a", tmp_path / "a-moved")
            if swap == "file":
                (r / "a").write_bytes(b"")
        return st

    stdout = os.fstat(1)
    before = sorted(os.listdir("/proc/self/fd"))
    with Root(str(r)) as root:
        with monkeypatch.context() as m:
            m.setattr(os, "lstat", lstat)
            with pytest.raises(OSError if swap == "removed" else InvalidParameter) as e:
                root.walk(["a", "b", "..", "x"])
    assert done == [True]
    if swap == "file":
        assert str(e.value) == "path 'a/b/../x' changed while it was resolved"
    else:
        assert isinstance(e.value, FileNotFoundError)
    assert (os.fstat(1).st_dev, os.fstat(1).st_ino) == (stdout.st_dev, stdout.st_ino)
    assert sorted(os.listdir("/proc/self/fd")) == before
