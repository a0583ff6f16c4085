"""`archive.pathstat` exactly: Go's os.FileMode bits, the stat header's JSON, docker's ResolvePath rules for
the last element, base names, mount points and the writable check (mutation testing, docs/mutation.md,
found these unchecked by the unit tests)."""

from __future__ import annotations

import base64
import json
import os
import socket
import stat
from pathlib import Path

import pytest

from gorae.archive.inroot import RO_MOUNT, RO_ROOT, MountSpec, Root
from gorae.archive.pathstat import (
    MODE_CHAR_DEVICE,
    MODE_DEVICE,
    MODE_DIR,
    MODE_IRREGULAR,
    MODE_NAMED_PIPE,
    MODE_SETGID,
    MODE_SETUID,
    MODE_SOCKET,
    MODE_STICKY,
    MODE_SYMLINK,
    PathStat,
    check_writable,
    go_file_mode,
    locate,
    stat_path,
)
from gorae.errors import InvalidParameter, NotFound


def test_go_mode_bits_are_gos() -> None:
    assert (MODE_DIR, MODE_SYMLINK, MODE_DEVICE, MODE_NAMED_PIPE, MODE_SOCKET) == (
        0x80000000, 0x08000000, 0x04000000, 0x02000000, 0x01000000)  # fmt: skip
    assert (MODE_SETUID, MODE_SETGID, MODE_CHAR_DEVICE, MODE_STICKY, MODE_IRREGULAR) == (
        0x00800000, 0x00400000, 0x00200000, 0x00100000, 0x00080000)  # fmt: skip


@pytest.mark.parametrize(
    ("st_mode", "go"),
    [
        (stat.S_IFREG | 0o644, 0o644),
        (stat.S_IFDIR | 0o755, MODE_DIR | 0o755),
        (stat.S_IFLNK | 0o777, MODE_SYMLINK | 0o777),
        (stat.S_IFIFO | 0o600, MODE_NAMED_PIPE | 0o600),
        (stat.S_IFSOCK | 0o755, MODE_SOCKET | 0o755),
        (stat.S_IFBLK | 0o660, MODE_DEVICE | 0o660),
        (stat.S_IFCHR | 0o666, MODE_DEVICE | MODE_CHAR_DEVICE | 0o666),
        (0o170000 & ~stat.S_IFREG | 0o600, MODE_IRREGULAR | 0o600),  # no known type: Go's irregular
        (stat.S_IFREG | stat.S_ISUID | 0o755, MODE_SETUID | 0o755),
        (stat.S_IFREG | stat.S_ISGID | 0o750, MODE_SETGID | 0o750),
        (stat.S_IFDIR | stat.S_ISVTX | 0o777, MODE_DIR | MODE_STICKY | 0o777),
        (stat.S_IFREG | 0o7777, MODE_SETUID | MODE_SETGID | MODE_STICKY | 0o777),
    ],
)
def test_go_file_mode(st_mode: int, go: int) -> None:
    assert go_file_mode(st_mode) == go


def test_the_header_is_base64_json_in_dockers_key_order() -> None:
    ps = PathStat("f", 3, 0o644, "2020-01-01T00:00:00Z", "/t")
    assert ps.to_json() == {
        "name": "f",
        "size": 3,
        "mode": 420,
        "mtime": "2020-01-01T00:00:00Z",
        "linkTarget": "/t",
    }
    raw = base64.b64decode(ps.to_header())
    assert (
        raw == b'{"name": "f", "size": 3, "mode": 420, "mtime": "2020-01-01T00:00:00Z", "linkTarget": "/t"}'
    )
    assert json.loads(raw)["linkTarget"] == "/t"
    assert PathStat("d", 0, MODE_DIR | 0o755, "").is_dir and not ps.is_dir


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hosts").write_bytes(b"12345")
    os.utime(root / "etc" / "hosts", ns=(1, 1_600_000_000_123_456_789))
    os.symlink("/etc", root / "link")  # absolute: resolved inside the root
    os.symlink("hosts", root / "etc" / "rel")
    os.mkfifo(root / "fifo")
    os.chmod(root / "etc", 0o750)
    return root


def test_stat_of_a_file(tree: Path) -> None:
    assert stat_path(str(tree), "/etc/hosts") == PathStat(
        "hosts", 5, 0o644, "2020-09-13T12:26:40.123456789Z", ""
    )


def test_a_symlink_is_not_followed_at_the_end_but_its_target_is_shown(tree: Path) -> None:
    ps = stat_path(str(tree), "/link")
    assert (ps.name, ps.mode & MODE_SYMLINK, ps.link_target, ps.size) == ("link", MODE_SYMLINK, "/etc", 4)
    rel = stat_path(str(tree), "etc/rel")
    assert (rel.name, rel.link_target) == ("rel", "/etc/hosts")


@pytest.mark.parametrize(
    ("path", "name"), [("/link/", "link"), ("/link/.", "."), ("/", "/"), (".", "."), ("", "/")]
)
def test_a_trailing_slash_or_dot_follows_the_last_element(tree: Path, path: str, name: str) -> None:
    ps = stat_path(str(tree), path)
    assert ps.name == name and ps.is_dir and ps.link_target == ""
    want = tree if path in ("/", ".", "") else tree / "etc"
    assert ps.mode & 0o777 == stat.S_IMODE(os.stat(want).st_mode)


def test_special_files_keep_their_type(tree: Path) -> None:
    assert stat_path(str(tree), "/fifo").mode == MODE_NAMED_PIPE | (0o666 & ~_umask())
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tree / "s"))
        assert stat_path(str(tree), "/s").mode & MODE_SOCKET
    finally:
        sock.close()


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


@pytest.mark.parametrize("path", ["/nope", "/nope/x", "/etc/hosts/x", "/etc/nope/"])
def test_missing_paths_are_not_found_in_dockers_words(tree: Path, path: str) -> None:
    with pytest.raises(NotFound) as e:
        stat_path(str(tree), path)
    assert str(e.value).startswith("no such file or directory") or "not a directory" in str(e.value)
    if path in ("/nope", "/nope/x"):
        assert str(e.value) == f"no such file or directory: {path}"


def test_locate_answers_the_directory_fd_name_and_canonical_parts(tree: Path) -> None:
    with Root(str(tree)) as r:
        loc = locate(r, "/link/hosts")  # the directory part is resolved (in the root)
        try:
            assert (loc.name, loc.base, loc.parts) == ("hosts", "hosts", ["etc", "hosts"])
            assert os.path.samestat(os.fstat(loc.dir_fd), os.stat(tree / "etc"))
        finally:
            os.close(loc.dir_fd)
        loc = locate(r, "/etc/")
        try:
            assert (loc.name, loc.base, loc.parts) == (None, "etc", ["etc"])
        finally:
            os.close(loc.dir_fd)


def test_a_mount_point_shows_what_is_mounted(tree: Path, tmp_path: Path) -> None:
    vol = tmp_path / "vol"
    vol.mkdir()
    os.chmod(vol, 0o701)
    (tree / "data").mkdir(mode=0o755)
    mounts = [MountSpec("/data", str(vol))]
    ps = stat_path(str(tree), "/data", mounts)
    assert (ps.name, ps.mode) == ("data", MODE_DIR | 0o701)
    with Root(str(tree), mounts) as r:
        loc = locate(r, "data")
        try:
            assert loc.parts == ["data"] and loc.name is not None
            assert os.path.samestat(loc.st, os.stat(vol))
        finally:
            os.close(loc.dir_fd)


def test_writable_checks_in_dockers_words(tree: Path, tmp_path: Path) -> None:
    ro, rw = tmp_path / "ro", tmp_path / "rw"
    ro.mkdir()
    rw.mkdir()
    (tree / "ro").mkdir()
    (tree / "rw").mkdir()
    mounts = [MountSpec("/ro", str(ro), readonly=True), MountSpec("/rw", str(rw))]
    check_writable(str(tree), "/etc", mounts)
    check_writable(str(tree), "/rw", mounts, readonly=True)  # a writable mount in a read-only root
    with pytest.raises(InvalidParameter) as e:
        check_writable(str(tree), "/ro", mounts)
    assert str(e.value) == RO_MOUNT
    with pytest.raises(InvalidParameter) as e:
        check_writable(str(tree), "/etc", mounts, readonly=True)
    assert str(e.value) == RO_ROOT
    with pytest.raises(NotFound):
        check_writable(str(tree), "/nope", mounts)
