"""docker cp support: stat_path / tar_path / extract_to resolve paths inside the container root only."""

from __future__ import annotations

import base64
import io
import json
import os
import stat
import tarfile

import pytest
from test_archive_support import Scratch, d, f, link, outside_state, scratch, sym, tar_bytes

from gorae.archive import PathStat, extract_to, stat_path, tar_path
from gorae.archive.pathstat import MODE_DIR, MODE_SYMLINK, go_file_mode
from gorae.errors import InvalidParameter, NotFound
from gorae.timefmt import rfc3339nano as rfc3339_nano


def _rootfs(s: Scratch) -> None:
    """A small container rootfs whose symlinks point at absolute paths (meaning the container's)."""
    r = s.root
    os.makedirs(f"{r}/etc")
    os.makedirs(f"{r}/bin")
    os.makedirs(f"{r}/data/sub")
    with open(f"{r}/etc/passwd", "w") as fh:
        fh.write("container")
    with open(f"{r}/bin/busybox", "w") as fh:
        fh.write("bb")
    os.symlink("busybox", f"{r}/bin/sh")
    os.symlink("/etc", f"{r}/etclink")
    os.symlink("../../../../etc", f"{r}/data/up")
    with open(f"{r}/data/sub/file", "w") as fh:
        fh.write("file")


def _members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        return {m.name: m for m in tf.getmembers()}


def test_stat_path_and_header() -> None:
    with scratch() as s:
        _rootfs(s)
        st = stat_path(s.root, "/bin/sh")
        assert st.name == "sh" and st.mode & MODE_SYMLINK and st.link_target == "/bin/busybox"
        st = stat_path(s.root, "/etclink")
        assert st.link_target == "/etc"
        st = stat_path(s.root, "/etclink/")
        assert st.mode & MODE_DIR and st.name == "etclink"
        st = stat_path(s.root, "/data/up/passwd")
        assert st.size == len("container") and st.name == "passwd"
        doc = json.loads(base64.b64decode(stat_path(s.root, "/etc/passwd").to_header()))
        assert set(doc) == {"name", "size", "mode", "mtime", "linkTarget"}
        assert doc["mode"] == 0o644 and doc["mtime"].endswith("Z")
        assert stat_path(s.root, "/").mode & MODE_DIR
        with pytest.raises(NotFound):
            stat_path(s.root, "/nope")
        with pytest.raises(NotFound):
            stat_path(s.root, "/nope/deeper")


def test_go_file_mode_bits() -> None:
    assert go_file_mode(stat.S_IFDIR | 0o1777) == MODE_DIR | (1 << 20) | 0o777
    assert go_file_mode(stat.S_IFREG | 0o4755) == (1 << 23) | 0o755
    assert go_file_mode(stat.S_IFCHR | 0o666) == (1 << 26) | (1 << 21) | 0o666
    assert rfc3339_nano(1_600_000_000_500_000_000) == "2020-09-13T12:26:40.5Z"
    assert rfc3339_nano(0) == "1970-01-01T00:00:00Z"
    assert PathStat("a", 1, 2, "t").to_json()["linkTarget"] == ""


def test_tar_path_follows_symlinks_inside_root_only() -> None:
    with scratch() as s:
        _rootfs(s)
        out = io.BytesIO()
        st = tar_path(s.root, "/etclink/passwd", out)
        assert st.name == "passwd"
        m = _members(out.getvalue())
        assert list(m) == ["passwd"]
        with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tf:
            fh = tf.extractfile("passwd")
            assert fh is not None and fh.read() == b"container"

        out = io.BytesIO()
        tar_path(s.root, "/etclink", out)  # the link itself, not followed
        m = _members(out.getvalue())
        assert list(m) == ["etclink"] and m["etclink"].issym()

        out = io.BytesIO()
        tar_path(s.root, "/data/", out)
        assert sorted(_members(out.getvalue())) == ["data", "data/sub", "data/sub/file", "data/up"]

        out = io.BytesIO()
        tar_path(s.root, "/data/sub", out, rename_to="renamed")
        assert sorted(_members(out.getvalue())) == ["renamed", "renamed/file"]

        out = io.BytesIO()
        tar_path(s.root, "/data/up/", out)  # ../../../../etc clamps to the container's /etc
        assert sorted(_members(out.getvalue())) == ["up", "up/passwd"]

        out = io.BytesIO()
        tar_path(s.root, "/data/sub/.", out)
        assert sorted(_members(out.getvalue())) == [".", "./file"]

        with pytest.raises(NotFound):
            tar_path(s.root, "/data/up/shadow", io.BytesIO())


def test_extract_to_resolves_destination_and_entries_in_root() -> None:
    with scratch() as s:
        _rootfs(s)
        before = outside_state(s)
        data = tar_bytes(
            f("hello", b"hi"),
            d("dir"),
            f("dir/x", b"x"),
            sym("/etc", "esc"),
            f("esc/injected", b"in the container"),
            f("../../../../etc/clamped", b"clamped"),
            link("hello", "hello2"),
            f(".wh.literal", b"not a whiteout here"),
        )
        extract_to(s.root, "/etclink", io.BytesIO(data))
        assert s.read("etc/hello") == b"hi"
        assert s.read("etc/dir/x") == b"x"
        assert s.read("etc/injected") == b"in the container"
        assert s.read("etc/etc/clamped") == b"clamped"  # `..` stops at the destination directory
        assert os.path.samefile(s.path("etc/hello"), s.path("etc/hello2"))
        assert s.read("etc/.wh.literal") == b"not a whiteout here"
        assert outside_state(s) == before
        assert not os.path.exists("/etc/injected") and not os.path.exists("/etc/clamped")


def test_extract_to_errors_and_no_overwrite() -> None:
    with scratch() as s:
        _rootfs(s)
        with pytest.raises(NotFound):
            extract_to(s.root, "/missing", io.BytesIO(tar_bytes(f("a"))))
        with pytest.raises(InvalidParameter):
            extract_to(s.root, "/etc/passwd", io.BytesIO(tar_bytes(f("a"))))
        with pytest.raises(InvalidParameter, match="overwrite"):
            extract_to(s.root, "/", io.BytesIO(tar_bytes(f("data", b"x"))), no_overwrite_dir_non_dir=True)
        with pytest.raises(InvalidParameter, match="overwrite"):
            extract_to(s.root, "/etc", io.BytesIO(tar_bytes(d("passwd"))), no_overwrite_dir_non_dir=True)
        assert os.path.isdir(s.path("data")) and s.read("etc/passwd") == b"container"
        extract_to(s.root, "/", io.BytesIO(tar_bytes(f("data", b"x"))))
        assert s.read("data") == b"x"
