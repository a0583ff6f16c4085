"""Exact messages and edge behaviours of `archive.apply` that mutation testing (docs/mutation.md) found
unchecked: the error texts callers show, a directory entry landing on a mount point, the parent cache."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest
from test_archive_support import d, f, scratch, sym, tar_bytes

from gorae.archive import MountSpec, apply_layer, extract_to
from gorae.errors import InvalidParameter


def test_a_file_as_parent_is_refused_with_its_path() -> None:
    with scratch() as s:
        with pytest.raises(InvalidParameter) as e:
            apply_layer(s.root, io.BytesIO(tar_bytes(f("a", b"1"), f("a/b/c", b"2"))))
        assert str(e.value) == "cannot create 'a/b': a parent is not a directory"
        assert s.read("a") == b"1"


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def _mounted(tmp_path: Path) -> tuple[Path, Path, list[MountSpec]]:
    root, vol = tmp_path / "root", tmp_path / "vol"
    root.mkdir()
    vol.mkdir()
    os.chmod(vol, 0o751)
    os.utime(vol, ns=(5_000_000_000, 5_000_000_000))
    return root, vol, [MountSpec("/data", str(vol))]


def test_a_file_at_a_mount_point_is_busy_in_strerror_words(tmp_path: Path) -> None:
    root, vol, mounts = _mounted(tmp_path)
    with pytest.raises(InvalidParameter) as e:
        extract_to(str(root), "/", io.BytesIO(tar_bytes(f("data", b"x"))), mounts=mounts)
    assert str(e.value) == "invalid archive: failed to extract 'data': Device or resource busy"
    assert os.listdir(vol) == []


def test_a_directory_at_a_mount_point_leaves_the_mount_as_it_is(tmp_path: Path) -> None:
    root, vol, mounts = _mounted(tmp_path)
    tar = tar_bytes(d("data", mode=0o700), f("data/new", b"in the volume"))
    extract_to(str(root), "/", io.BytesIO(tar), mounts=mounts)
    st = os.stat(vol)
    assert stat.S_IMODE(st.st_mode) == 0o751  # the entry's 0700 was not applied to the mount
    assert st.st_mtime_ns != 1_600_000_000 * 10**9
    # nor to the mount point the root has under it (made 0755 with the umask applied)
    assert stat.S_IMODE(os.stat(root / "data").st_mode) == 0o755 & ~_umask()
    assert os.stat(root / "data").st_mtime_ns != 1_600_000_000 * 10**9
    assert (vol / "new").read_bytes() == b"in the volume"
    assert not (root / "data" / "new").exists()


def test_an_owner_beyond_uid_t_is_a_bad_header() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("f")
        info.size = 1
        info.pax_headers = {"uid": str(2**70)}
        tf.addfile(info, io.BytesIO(b"x"))
    with scratch() as s:
        with pytest.raises(InvalidParameter) as e:
            apply_layer(s.root, io.BytesIO(buf.getvalue()))
        assert str(e.value) == "invalid archive: bad header for 'f': uid is greater than maximum"
