"""archive.export exactly: the entries of `tar_dir` / `tar_overlay_diff` / `tar_path` and the PathStat
`tar_path` returns (what `docker cp` puts in X-Docker-Container-Path-Stat), field by field.

Written for docs/mutation.md (mutants of export.py the suite let through)."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

from gorae.archive import PathStat, tar_dir, tar_overlay_diff, tar_path
from gorae.archive.pathstat import MODE_DIR, MODE_SYMLINK
from gorae.timefmt import rfc3339nano

MTIME_NS = 1_600_000_000_123_456_789


def _names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        return tf.getnames()


def _tree(top: Path) -> None:
    (top / "dir" / "sub").mkdir(parents=True)
    (top / "dir" / "file").write_bytes(b"12345")
    (top / "dir" / "sub" / "deep").write_bytes(b"")
    (top / "etc").mkdir()
    (top / "etc" / "hosts").write_bytes(b"h")
    (top / "etc" / "hostname").write_bytes(b"n")
    os.symlink("/dir/file", top / "abs")
    os.symlink("dir", top / "rel")
    os.chmod(top / "dir" / "file", 0o640)
    os.chmod(top / "dir", 0o750)
    for p in ("dir/file", "dir", "abs"):
        os.utime(top / p, ns=(MTIME_NS, MTIME_NS), follow_symlinks=False)


def test_tar_dir_has_the_children_not_the_root(tmp_path: Path) -> None:
    _tree(tmp_path)
    out = io.BytesIO()
    tar_dir(str(tmp_path), out)
    assert sorted(_names(out.getvalue())) == [
        "abs", "dir", "dir/file", "dir/sub", "dir/sub/deep", "etc", "etc/hostname", "etc/hosts", "rel",
    ]
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tf:
        assert tf.getmember("abs").linkname == "/dir/file"
        fh = tf.extractfile("dir/file")
        assert fh is not None and fh.read() == b"12345"


def test_tar_overlay_diff_excludes_absolute_paths_and_what_is_below(tmp_path: Path) -> None:
    _tree(tmp_path)
    out = io.BytesIO()
    tar_overlay_diff(str(tmp_path), out, exclude={"/etc/hosts", "/dir/sub"})
    assert sorted(_names(out.getvalue())) == ["abs", "dir", "dir/file", "etc", "etc/hostname", "rel"]


def test_tar_path_of_a_file(tmp_path: Path) -> None:
    _tree(tmp_path)
    out = io.BytesIO()
    st = tar_path(str(tmp_path), "/rel/file", out)
    assert st == PathStat("file", 5, 0o640, rfc3339nano(MTIME_NS), "")
    assert st.mtime == "2020-09-13T12:26:40.123456789Z"
    assert _names(out.getvalue()) == ["file"]


def test_tar_path_of_a_symlink_names_its_in_root_target(tmp_path: Path) -> None:
    _tree(tmp_path)
    out = io.BytesIO()
    st = tar_path(str(tmp_path), "/abs", out)
    assert st == PathStat("abs", len("/dir/file"), MODE_SYMLINK | 0o777, rfc3339nano(MTIME_NS), "/dir/file")
    assert _names(out.getvalue()) == ["abs"]
    out = io.BytesIO()
    st = tar_path(str(tmp_path), "/rel", out)
    assert (st.name, st.link_target, st.mode) == ("rel", "/dir", MODE_SYMLINK | 0o777)


def test_tar_path_of_a_directory_through_a_symlink(tmp_path: Path) -> None:
    """`rel/` follows the link: the directory's own stat (not the link's), entries named after `rel`."""
    _tree(tmp_path)
    out = io.BytesIO()
    st = tar_path(str(tmp_path), "/rel/", out)
    dst = os.stat(tmp_path / "dir")
    assert st == PathStat("rel", dst.st_size, MODE_DIR | 0o750, rfc3339nano(MTIME_NS), "")
    assert sorted(_names(out.getvalue())) == ["rel", "rel/file", "rel/sub", "rel/sub/deep"]


def test_tar_path_renamed_and_the_root(tmp_path: Path) -> None:
    _tree(tmp_path)
    out = io.BytesIO()
    tar_path(str(tmp_path), "/dir/sub", out, rename_to="/new/")
    assert _names(out.getvalue()) == ["new", "new/deep"]
    out = io.BytesIO()
    tar_path(str(tmp_path), "/dir/sub", out, rename_to="")
    assert _names(out.getvalue()) == [".", "./deep"]
    out = io.BytesIO()
    st = tar_path(str(tmp_path), "/", out)
    assert st.name == "/" and st.mode & MODE_DIR
    assert sorted(_names(out.getvalue()))[:3] == [".", "./abs", "./dir"]


def test_tar_path_leaves_no_fd_open(tmp_path: Path) -> None:
    _tree(tmp_path)
    before = len(os.listdir("/proc/self/fd"))
    for p in ("/dir/file", "/rel/", "/abs"):
        tar_path(str(tmp_path), p, io.BytesIO())
    assert len(os.listdir("/proc/self/fd")) == before


def test_names_ending_in_any_character_are_kept_whole(tmp_path: Path) -> None:
    """Only "/" is stripped from an exclude or an entry name (not, say, a trailing "X")."""
    (tmp_path / "Xetc").mkdir()
    (tmp_path / "Xetc" / "hostsX").write_bytes(b"")
    (tmp_path / "Xetc" / "keep").write_bytes(b"")
    out = io.BytesIO()
    tar_overlay_diff(str(tmp_path), out, exclude={"/Xetc/hostsX"})
    assert _names(out.getvalue()) == ["Xetc", "Xetc/keep"]
    out = io.BytesIO()
    st = tar_path(str(tmp_path), "/Xetc/hostsX", out)
    assert st.name == "hostsX"
    assert _names(out.getvalue()) == ["hostsX"]
    out = io.BytesIO()
    tar_path(str(tmp_path), "/Xetc/keep", out, rename_to="/X/")
    assert _names(out.getvalue()) == ["X"]


def test_owner_names_only_for_docker_cp(tmp_path: Path) -> None:
    """`docker cp` out names owners as the daemon's host does (Go's tar.FileInfoHeader); layers and
    exports stay numeric only, as moby writes them."""
    _tree(tmp_path)
    os.chown(tmp_path / "dir" / "file", 0, 0)
    os.chown(tmp_path / "etc" / "hosts", 4242424, 4242424)  # no such user or group
    out = io.BytesIO()
    tar_path(str(tmp_path), "/dir/file", out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tf:
        m = tf.getmember("file")
        assert (m.uid, m.gid, m.uname, m.gname) == (0, 0, "root", "root")
    out = io.BytesIO()
    tar_path(str(tmp_path), "/etc/hosts", out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tf:
        m = tf.getmember("hosts")
        assert (m.uid, m.gid, m.uname, m.gname) == (4242424, 4242424, "", "")
    for fn in (tar_dir, tar_overlay_diff):
        out = io.BytesIO()
        fn(str(tmp_path), out)
        with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tf:
            m = tf.getmember("dir/file")
            assert (m.uid, m.uname, m.gname) == (0, "", "")
