"""`archive` through a root's mounts (`MountSpec`, docker cp into/out of volumes and bind mounts): a path is
resolved into the mount its destination falls in, with the same in-root guard — a symlink inside a mount
pointing to `/` or `..` up resolves against the root, never the host; read-only mounts and a read-only root
refuse writes in docker's words; a file mounted at a path shadows the root's own file; mount points missing in
the root are made (a created container)."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from gorae.archive import MountSpec, check_writable, extract_to, stat_path, tar_path
from gorae.errors import InvalidParameter


def _tar(files: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def _names(root: Path, path: str, mounts: list[MountSpec]) -> dict[str, bytes]:
    out = io.BytesIO()
    tar_path(str(root), path, out, mounts=mounts)
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        return {m.name: (tar.extractfile(m).read() if m.isreg() else b"") for m in tar}  # type: ignore[union-attr]


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path, Path, list[MountSpec]]:
    root, vol, host = tmp_path / "root", tmp_path / "vol", tmp_path / "host"
    for p in (root / "etc", vol, host):
        p.mkdir(parents=True)
    (root / "etc" / "passwd").write_text("container\n")
    (host / "secret").write_text("host secret\n")
    os.symlink("/", vol / "toroot")
    os.symlink("../../../../../../..", vol / "up")
    fmount = tmp_path / "hosts"
    fmount.write_text("mounted file\n")
    mounts = [
        MountSpec("/data", str(vol)),
        MountSpec("/data/nested/ro", str(host), readonly=True),
        MountSpec("/etc/hosts", str(fmount)),
    ]
    return root, vol, host, mounts


def test_writes_land_in_the_mount_and_links_stay_inside(tree) -> None:  # type: ignore[no-untyped-def]
    root, vol, host, mounts = tree
    extract_to(str(root), "/data", _tar({"a": b"1"}), mounts=mounts)
    assert (vol / "a").read_bytes() == b"1" and not (root / "data" / "a").exists()
    # mount points are made in the root, as runc makes them (a created container)
    assert (root / "data").is_dir() and (root / "etc" / "hosts").is_file()
    for via in ("/data/toroot", "/data/up", "/data/toroot/data/up/"):
        extract_to(str(root), via, _tar({"esc": b"x"}), mounts=mounts)
        assert (root / "esc").read_bytes() == b"x"
        (root / "esc").unlink()
    assert not (vol.parent.parent / "esc").exists() and not Path("/esc").exists()
    # reading through a link inside the mount reads the root's file, never the host's
    assert _names(root, "/data/toroot/etc/passwd", mounts) == {"passwd": b"container\n"}
    assert _names(root, "/data/up/etc/hosts", mounts) == {"hosts": b"mounted file\n"}
    assert stat_path(str(root), "/etc/hosts", mounts).size == len("mounted file\n")


def test_directory_copies_follow_mounts(tree) -> None:  # type: ignore[no-untyped-def]
    root, vol, host, mounts = tree
    got = _names(root, "/", mounts)
    assert got["./data/nested/ro/secret"] == b"host secret\n"
    assert got["./etc/hosts"] == b"mounted file\n"
    assert got["./data/toroot"] == b""  # a link, archived as a link


def test_read_only_mounts_and_root_refuse(tree) -> None:  # type: ignore[no-untyped-def]
    root, vol, host, mounts = tree
    with pytest.raises(InvalidParameter, match="^mounted volume is marked read-only$"):
        check_writable(str(root), "/data/nested/ro", mounts)
    with pytest.raises(InvalidParameter, match="mounted volume is marked read-only"):
        extract_to(str(root), "/data/nested", _tar({"ro/x": b"1"}), mounts=mounts)
    assert sorted(os.listdir(host)) == ["secret"]
    check_writable(str(root), "/data", mounts, readonly=True)  # a writable volume in a read-only root
    with pytest.raises(InvalidParameter, match="^container rootfs is marked read-only$"):
        extract_to(str(root), "/etc", _tar({"x": b"1"}), mounts=mounts, readonly=True)


def test_mount_points_are_not_replaced(tree) -> None:  # type: ignore[no-untyped-def]
    root, vol, host, mounts = tree
    with pytest.raises(Exception, match="busy"):
        extract_to(str(root), "/", _tar({"data": b"not a dir"}), mounts=mounts)
    with pytest.raises(Exception, match="busy"):
        extract_to(str(root), "/etc", _tar({"hosts": b"replaced"}), mounts=mounts)
    assert (vol / "toroot").is_symlink() and (root / "etc" / "hosts").read_text() == ""
