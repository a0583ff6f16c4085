"""Exact messages and edge behaviours of `archive.apply` that mutation testing (docs/mutation.md) found
unchecked: the error texts callers show, a directory entry landing on a mount point, the parent cache."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from test_archive_support import E, d, f, link, scratch, sym, tar_bytes

from gorae.archive import MountSpec, apply_layer, apply_tar, extract_to
from gorae.archive.streams import BUF
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


def test_a_gnu_sparse_file_is_written_with_its_holes(tmp_path: Path) -> None:
    body = bytearray(500_003)
    body[200_000:200_006] = b"middle"
    body[500_000:] = b"end"
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "s", "wb") as fh:
        fh.seek(200_000)
        fh.write(b"middle")
        fh.seek(500_000)
        fh.write(b"end")
    tar = tmp_path / "sparse.tar"
    subprocess.run(["tar", "--sparse", "--format=gnu", "-cf", str(tar), "-C", str(src), "s"], check=True)
    with tarfile.open(tar) as tf:
        assert tf.getmember("s").sparse is not None  # GNU tar did make a sparse entry
    with scratch() as s:
        res = apply_layer(s.root, io.BytesIO(tar.read_bytes()))
        assert s.read("s") == bytes(body)
        assert res.size == 500_003


def test_a_truncated_sparse_body_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "s", "wb") as fh:
        fh.seek(100_000)
        fh.write(b"x" * 5000)
    tar = tmp_path / "sparse.tar"
    subprocess.run(["tar", "--sparse", "--format=gnu", "-cf", str(tar), "-C", str(src), "s"], check=True)
    data = tar.read_bytes()
    with scratch() as s:
        with pytest.raises(InvalidParameter) as e:
            apply_layer(s.root, io.BytesIO(data[: 512 + 1024]))
        assert str(e.value) == "invalid archive: unexpected end of data"


def test_sizes_add_up_and_the_cap_is_inclusive() -> None:
    tar = tar_bytes(f("a", b"12345"), f("b", b"678"), d("c"), sym("a", "l"))
    with scratch() as s:
        assert apply_layer(s.root, io.BytesIO(tar), max_bytes=len(tar)).size == 8
    with scratch() as s:  # content is capped at 8 bytes: exactly 8 fit, 7 do not
        assert apply_tar(s.root, _chunks(tar), max_bytes=8) == 8
    with scratch() as s:
        with pytest.raises(InvalidParameter) as e:
            apply_tar(s.root, _chunks(tar), max_bytes=7)
        assert str(e.value) == "archive exceeds the maximum size of 7 bytes"


def _chunks(data: bytes, n: int = 1000) -> Callable[[], bytes]:
    parts = [data[i : i + n] for i in range(0, len(data), n)]
    return lambda: parts.pop(0) if parts else b""


def test_overlay_whiteout_is_a_0000_char_device_0_0() -> None:
    with scratch() as s:
        apply_layer(s.root, io.BytesIO(tar_bytes(d("etc"), f("etc/.wh.gone"))))
        st = os.lstat(s.path("etc/gone"))
        assert stat.S_ISCHR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0 and st.st_rdev == os.makedev(0, 0)


def test_an_opaque_marker_at_the_root_hides_nothing() -> None:
    for mode in ("remove", "overlay"):
        with scratch() as s:
            apply_layer(s.root, io.BytesIO(tar_bytes(f("lower", b"l"))))
            apply_layer(s.root, io.BytesIO(tar_bytes(f(".wh..wh..opq"), f("upper", b"u"))), whiteouts=mode)  # type: ignore[arg-type]
            assert sorted(os.listdir(s.root)) == ["lower", "upper"]
            assert os.listxattr(s.root) == []


def test_no_overwrite_names_the_full_path_in_docker_words() -> None:
    with scratch() as s:
        os.makedirs(s.path("dst/a/sub"))
        with open(s.path("dst/b"), "wb") as fh:
            fh.write(b"file")
        with pytest.raises(InvalidParameter) as e:
            extract_to(s.root, "/dst", io.BytesIO(tar_bytes(f("a", b"x"))), no_overwrite_dir_non_dir=True)
        assert str(e.value) == "cannot overwrite directory '/dst/a' with non-directory"
        with pytest.raises(InvalidParameter) as e:
            extract_to(s.root, "/dst", io.BytesIO(tar_bytes(d("b"))), no_overwrite_dir_non_dir=True)
        assert str(e.value) == "cannot overwrite non-directory '/dst/b' with directory"
        assert os.path.isdir(s.path("dst/a/sub")) and s.read("dst/b") == b"file"


def test_an_unknown_entry_type_is_refused_by_name() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("odd")
        info.type = b"Z"
        tf.addfile(info)
    with scratch() as s:
        with pytest.raises(InvalidParameter) as e:
            apply_layer(s.root, io.BytesIO(buf.getvalue()))
        assert str(e.value) == "invalid archive: unsupported entry type b'Z' for 'odd'"
        assert os.listdir(s.root) == []


def test_a_sparse_file_one_byte_past_a_read_buffer_keeps_its_last_byte(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "s", "wb") as fh:
        fh.seek(BUF)
        fh.write(b"Z")
    tar = tmp_path / "sparse.tar"
    subprocess.run(["tar", "--sparse", "--format=gnu", "-cf", str(tar), "-C", str(src), "s"], check=True)
    with scratch() as s:
        assert apply_layer(s.root, io.BytesIO(tar.read_bytes())).size == BUF + 1
        assert s.read("s") == bytes(BUF) + b"Z"


def test_a_body_cut_short_is_truncated_by_name() -> None:
    data = tar_bytes(f("a", b"x" * 10_000))
    with scratch() as s:
        with pytest.raises(InvalidParameter) as e:
            apply_layer(s.root, io.BytesIO(data[: 512 * 3 + 5000]))
        assert str(e.value) == "invalid archive: 'a' is truncated"


def test_empty_symlinks_and_hardlinks_to_the_root_are_refused_by_name() -> None:
    with scratch() as s:
        with pytest.raises(InvalidParameter) as e:
            apply_layer(s.root, io.BytesIO(tar_bytes(sym("", "l"))))
        assert str(e.value) == "invalid archive: symlink 'l' has an empty target"
        with pytest.raises(InvalidParameter) as e:
            apply_layer(s.root, io.BytesIO(tar_bytes(link("./..", "h"))))
        assert str(e.value) == "invalid archive: hardlink 'h' points to the root"
        assert os.listdir(s.root) == []


def test_hardlinks_to_missing_or_directories_are_refused_by_name() -> None:
    with scratch() as s:
        for target, text in [
            ("nodir/x", "invalid archive: hardlink 'h' to missing 'nodir/x'"),
            ("d/none", "invalid archive: hardlink 'h' to missing 'd/none'"),
            ("d", "invalid archive: hardlink 'h' to directory 'd'"),
        ]:
            with pytest.raises(InvalidParameter) as e:
                apply_layer(s.root, io.BytesIO(tar_bytes(d("d"), link(target, "h"))))
            assert str(e.value) == text
        assert os.listdir(s.root) == ["d"]


def test_links_devices_and_whiteouts_replace_what_is_there() -> None:
    with scratch() as s:
        lower = tar_bytes(f("a", b"A"), f("b", b"B"), d("x"), f("x/in"), d("y"), f("y/in"), d("z"), f("z/in"))
        apply_layer(s.root, io.BytesIO(lower))
        upper = tar_bytes(link("a", "b"), link("a", "x"), E("fifo", "y", mode=0o640), f(".wh.z"))
        apply_layer(s.root, io.BytesIO(upper), whiteouts="overlay")
        assert s.read("b") == b"A" and os.path.samefile(s.path("a"), s.path("b"))
        assert s.read("x") == b"A" and os.path.samefile(s.path("a"), s.path("x"))
        st = os.lstat(s.path("y"))
        assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o640
        st = os.lstat(s.path("z"))
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
        assert os.lstat(s.path("a")).st_nlink == 3


def test_an_opaque_dir_drops_a_symlink_to_a_directory_not_the_directory() -> None:
    with scratch() as s:
        apply_layer(s.root, io.BytesIO(tar_bytes(d("t"), f("t/keep", b"k"), d("o"), sym("../t", "o/l"))))
        apply_layer(s.root, io.BytesIO(tar_bytes(d("o"), f("o/.wh..wh..opq"))), whiteouts="remove")
        assert os.listdir(s.path("o")) == [] and s.read("t/keep") == b"k"


def test_an_overlay_xattr_skips_only_itself() -> None:
    entry = f("x", b"x", xattrs={"trusted.overlay.opaque": b"y", "user.after": b"kept"})
    with scratch() as s:
        apply_layer(s.root, io.BytesIO(tar_bytes(entry)))
        assert os.listxattr(s.path("x")) == ["user.after"]
        assert os.getxattr(s.path("x"), "user.after") == b"kept"
