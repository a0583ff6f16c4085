"""apply_layer: formats, digests, caps, metadata, devices, whiteouts in "remove" mode, round trips."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import stat
import subprocess

import pytest
from test_archive_support import E, d, f, link, scratch, snapshot, sym, tar_bytes

from gorae.archive import apply_layer, tar_dir
from gorae.errors import InvalidParameter

LAYER = tar_bytes(d("etc"), f("etc/hosts", b"127.0.0.1 localhost\n"), link("etc/hosts", "etc/hosts.allow"))


class OneWay(io.RawIOBase):
    """A non-seekable stream that hands out small reads, as a socket would."""

    def __init__(self, data: bytes, chunk: int = 7000) -> None:
        self._b = io.BytesIO(data)
        self._chunk = chunk

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        return self._b.read(min(n if n >= 0 else self._chunk, self._chunk))

    def seekable(self) -> bool:
        return False


def _zstd(data: bytes) -> bytes:
    import zstandard  # a dependency of gorae itself (zstd layers): missing is a failure, not a skip

    return zstandard.ZstdCompressor().compress(data)


@pytest.mark.parametrize("codec", ["plain", "gzip", "zstd", "bzip2", "xz"])
def test_formats_sniffed_and_diff_id_is_uncompressed_digest(codec: str) -> None:
    comp = {
        "plain": lambda b: b,
        "gzip": gzip.compress,
        "zstd": _zstd,
        "bzip2": bz2.compress,
        "xz": lzma.compress,
    }[codec](LAYER)
    with scratch() as s:
        res = apply_layer(s.root, OneWay(comp))  # type: ignore[arg-type]
        assert res.diff_id == "sha256:" + hashlib.sha256(LAYER).hexdigest()
        assert res.size == len(b"127.0.0.1 localhost\n")
        assert s.read("etc/hosts.allow") == b"127.0.0.1 localhost\n"
        assert os.path.samefile(s.path("etc/hosts"), s.path("etc/hosts.allow"))


def test_trailing_bytes_after_end_marker_are_hashed() -> None:
    data = LAYER + bytes(10240)
    with scratch() as s:
        assert apply_layer(s.root, io.BytesIO(data)).diff_id == "sha256:" + hashlib.sha256(data).hexdigest()


def test_empty_tar_digest() -> None:
    with scratch() as s:
        res = apply_layer(s.root, io.BytesIO(bytes(1024)))
        assert res.diff_id == "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
        assert res.size == 0 and os.listdir(s.root) == []


@pytest.mark.parametrize(
    "data",
    [b"", b"not a tar at all" * 100, gzip.compress(LAYER)[:-20], b"\x28\xb5\x2f\xfd" + b"garbage" * 10],
    ids=["empty", "garbage", "truncated-gzip", "bad-zstd"],
)
def test_malformed_input_is_invalid_parameter(data: bytes) -> None:
    with scratch() as s, pytest.raises(InvalidParameter):
        apply_layer(s.root, io.BytesIO(data))


def test_truncated_file_data_is_invalid() -> None:
    data = tar_bytes(f("big", b"x" * 5000))
    with scratch() as s, pytest.raises(InvalidParameter):
        apply_layer(s.root, io.BytesIO(data[:2048]))


def test_decompression_bomb_is_capped() -> None:
    bomb = gzip.compress(tar_bytes(f("zeros", bytes(8 << 20))))
    assert len(bomb) < 64 << 10
    with scratch() as s:
        with pytest.raises(InvalidParameter, match="maximum"):
            apply_layer(s.root, io.BytesIO(bomb), max_bytes=1 << 20)
        assert apply_layer(s.root, io.BytesIO(bomb), max_bytes=16 << 20).size == 8 << 20


def test_metadata_owner_mode_setuid_mtime_xattrs() -> None:
    entries = [
        d("bin", 0o755, uid=1, gid=2, mtime=1_500_000_000),
        f("bin/su", b"#!", 0o4755, uid=0, gid=0, mtime=1_400_000_000),
        f("bin/mine", b"m", 0o2640, uid=1234, gid=5678, xattrs={"user.k": b"v\xff\x00bin"}),
        f(
            "bin/cap",
            b"c",
            0o755,
            xattrs={"security.capability": bytes.fromhex("0000000201000000" + "00" * 12)},
        ),
        f("bin/ovl", b"o", xattrs={"trusted.overlay.redirect": b"/etc", "trusted.overlay.opaque": b"y"}),
        sym("su", "bin/link"),
        E("sym", "bin/link2", target="/etc/shadow", uid=7, gid=8, mtime=1_300_000_000),
    ]
    with scratch() as s:
        apply_layer(s.root, io.BytesIO(tar_bytes(*entries)))
        st = os.lstat(s.path("bin/su"))
        assert stat.S_IMODE(st.st_mode) == 0o4755 and st.st_mtime == 1_400_000_000
        st = os.lstat(s.path("bin/mine"))
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 5678, 0o2640)
        assert os.getxattr(s.path("bin/mine"), "user.k") == b"v\xff\x00bin"
        assert os.getxattr(s.path("bin/cap"), "security.capability")[:4] == bytes.fromhex("00000002")
        assert os.listxattr(s.path("bin/ovl")) == []  # overlayfs' own xattrs never come from a layer
        st = os.lstat(s.path("bin/link2"))
        assert (st.st_uid, st.st_gid, st.st_mtime) == (7, 8, 1_300_000_000)
        st = os.lstat(s.path("bin"))
        assert (st.st_uid, st.st_gid, st.st_mtime) == (1, 2, 1_500_000_000)  # dir time set last


def test_devices_and_fifo() -> None:
    entries = [
        E("chr", "dev/null", mode=0o666, major=1, minor=3),
        E("blk", "dev/loopx", mode=0o660, major=7, minor=200),
        E("fifo", "run/pipe", mode=0o620),
    ]
    with scratch() as s:
        apply_layer(s.root, io.BytesIO(tar_bytes(*entries)))
        st = os.lstat(s.path("dev/null"))
        assert (
            stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3) and stat.S_IMODE(st.st_mode) == 0o666
        )
        st = os.lstat(s.path("dev/loopx"))
        assert stat.S_ISBLK(st.st_mode) and st.st_rdev == os.makedev(7, 200)
        st = os.lstat(s.path("run/pipe"))
        assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o620


def test_replacing_entries_never_writes_through_old_ones() -> None:
    with scratch() as s:
        outside = os.path.join(s.base, "outside", "etc", "passwd")
        apply_layer(
            s.root, io.BytesIO(tar_bytes(sym(outside, "p"), f("q", b"q"), d("dir"), f("dir/x", b"x")))
        )
        # second layer: file over symlink, symlink over file, file over directory, dir over file
        apply_layer(
            s.root, io.BytesIO(tar_bytes(f("p", b"mine"), sym("p", "q"), f("dir", b"now a file"), d("q")))
        )
        with open(outside, "rb") as fh:
            assert fh.read() == b"outside"
        assert s.read("p") == b"mine" and s.read("dir") == b"now a file"
        assert stat.S_ISDIR(os.lstat(s.path("q")).st_mode)


def test_remove_mode_whiteouts_and_opaque() -> None:
    base = tar_bytes(
        d("a"), f("a/1", b"1"), f("a/2", b"2"), d("b"), f("b/keep", b"k"), d("c"), f("c/x"), f("top")
    )
    upper = tar_bytes(
        f(".wh.top"),
        d("a"),
        f("a/.wh..wh..opq"),
        f("a/new", b"n"),
        f("b/.wh.keep"),
        f(".wh.c"),
        f(".wh.never-existed"),
        f("a/.wh..wh.plnk"),
    )
    with scratch() as s:
        apply_layer(s.root, io.BytesIO(base), whiteouts="remove")
        apply_layer(s.root, io.BytesIO(upper), whiteouts="remove")
        assert sorted(os.listdir(s.root)) == ["a", "b"]
        assert os.listdir(s.path("a")) == ["new"]
        assert os.listdir(s.path("b")) == []


def test_opaque_in_remove_mode_keeps_entries_of_the_same_layer_listed_before_it() -> None:
    base = tar_bytes(d("a"), f("a/old"))
    upper = tar_bytes(d("a"), f("a/new", b"n"), f("a/.wh..wh..opq"))
    with scratch() as s:
        apply_layer(s.root, io.BytesIO(base), whiteouts="remove")
        apply_layer(s.root, io.BytesIO(upper), whiteouts="remove")
        assert os.listdir(s.path("a")) == ["new"]


def test_overlay_mode_writes_whiteout_devices_and_opaque_xattr() -> None:
    with scratch() as s:
        apply_layer(s.root, io.BytesIO(tar_bytes(f("etc/.wh.gone"), d("var"), f("var/.wh..wh..opq"))))
        st = os.lstat(s.path("etc/gone"))
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
        assert os.getxattr(s.path("var"), "trusted.overlay.opaque") == b"y"
        assert not os.path.lexists(s.path("var/.wh..wh..opq"))


def test_roundtrip_tar_dir_apply_layer_and_gnu_tar_agrees() -> None:
    with scratch() as src, scratch() as dst:
        r = src.root
        os.makedirs(f"{r}/usr/local/lib")
        with open(f"{r}/usr/local/lib/libnothing.so", "wb") as fh:
            fh.write(b"\0\0")
        os.chmod(f"{r}/usr/local/lib/libnothing.so", 0o755)
        os.symlink("libnothing.so", f"{r}/usr/local/lib/libnothing.so.2")
        os.makedirs(f"{r}/home/derek", mode=0o700)
        os.makedirs(f"{r}/etc")
        with open(f"{r}/etc/hosts", "w") as fh:
            fh.write("127.0.0.1 localhost")
        os.link(f"{r}/etc/hosts", f"{r}/etc/hosts.allow")
        os.chown(f"{r}/home/derek", 1000, 1000)
        os.chmod(f"{r}/etc/hosts", 0o4711)
        os.chown(f"{r}/etc/hosts", 0, 0)
        os.chmod(f"{r}/etc/hosts", 0o4711)
        os.setxattr(f"{r}/etc/hosts", "user.color", b"blue")
        os.mkfifo(f"{r}/fifo")
        long = "x" * 120
        os.makedirs(f"{r}/{long}/{long}")
        with open(f"{r}/{long}/{long}/ünïcode", "w") as fh:
            fh.write("deep")
        buf = io.BytesIO()
        tar_dir(r, buf)
        data = buf.getvalue()
        res = apply_layer(dst.root, io.BytesIO(data))
        assert res.diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
        assert snapshot(src.root) == snapshot(dst.root)
        assert os.path.samefile(dst.path("etc/hosts"), dst.path("etc/hosts.allow"))
        assert os.getxattr(dst.path("etc/hosts"), "user.color") == b"blue"
        # GNU tar can read what we wrote
        listing = subprocess.run(
            ["tar", "-tvf", "-"], input=data, capture_output=True, check=True
        ).stdout.decode()
        assert "usr/local/lib/libnothing.so.2 -> libnothing.so" in listing
        assert f"{long}/{long}/ünïcode" in listing


def test_root_must_exist() -> None:
    from gorae.errors import NotFound

    with scratch() as s, pytest.raises(NotFound):
        apply_layer(os.path.join(s.base, "nope"), io.BytesIO(LAYER))


def test_bad_whiteout_mode() -> None:
    with scratch() as s, pytest.raises(InvalidParameter):
        apply_layer(s.root, io.BytesIO(LAYER), whiteouts="aufs")  # type: ignore[arg-type]
