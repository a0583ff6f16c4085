"""archive.tarwriter exactly: header fields, padding, the end of archive, write gathering, xattrs,
hardlinks, special files and overlay whiteouts, each checked against the bytes written.

Written for docs/mutation.md (mutants of tarwriter.py the suite let through). Needs root (mknod,
trusted.* xattrs, chown): fails under CI when not root, as the suite's other root-only tests."""

from __future__ import annotations

import io
import itertools
import os
import signal
import socket
import stat
import struct
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from gorae.archive.streams import BUF
from gorae.archive.tarwriter import TarWriter, TreeWriter

MTIME = 1_600_000_000

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 and not os.environ.get("CI"), reason="mknod, chown and trusted.* xattrs need root"
)


class Recorder:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.flushes = 0

    def write(self, data: bytes) -> int:
        self.writes.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        self.flushes += 1

    @property
    def data(self) -> bytes:
        return b"".join(self.writes)


@contextmanager
def dirfd(path: Path) -> Iterator[int]:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield fd
    finally:
        os.close(fd)


def _tar(top: Path, **kw: object) -> bytes:
    out = io.BytesIO()
    w = TarWriter(out)  # type: ignore[arg-type]
    with dirfd(top) as fd:
        TreeWriter(w, **kw).children(fd)  # type: ignore[arg-type]
    w.close()
    return out.getvalue()


def _members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        return {m.name: m for m in tf.getmembers()}


def _difference(got: bytes, want: bytes) -> tuple[int, int, bytes, bytes] | None:
    """None when equal, else (lengths, the first differing offset's neighbourhood): pytest's own diff of two
    1 MiB values takes minutes."""
    if got == want:
        return None
    i = next((i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b), min(len(got), len(want)))
    return (len(got), len(want), got[i : i + 16], want[i : i + 16])


def test_empty_archive_is_two_zero_blocks_and_flushed() -> None:
    rec = Recorder()
    w = TarWriter(rec)  # type: ignore[arg-type]
    w.close()
    assert rec.writes == [bytes(1024)]
    assert rec.flushes == 1
    w2 = TarWriter(io.BytesIO())  # type: ignore[arg-type]
    w2.close()


def test_close_on_an_output_without_flush() -> None:
    class NoFlush:
        def __init__(self) -> None:
            self.got = b""

        def write(self, data: bytes) -> int:
            self.got += data
            return len(data)

    out = NoFlush()
    TarWriter(out).close()  # type: ignore[arg-type]
    assert out.got == bytes(1024)


def test_small_writes_are_gathered_into_one_mib_chunks() -> None:
    def runs(writes: list[bytes]) -> list[list[tuple[int, int]]]:
        """Each write as its (byte, count) runs: exact, and a failure's diff stays short (1 MiB writes)."""
        return [[(b, len(list(g))) for b, g in itertools.groupby(data)] for data in writes]

    rec = Recorder()
    w = TarWriter(rec)  # type: ignore[arg-type]
    w._write(b"a" * (BUF - 1))
    assert rec.writes == []
    w._write(b"b")  # exactly BUF gathered: written
    assert runs(rec.writes) == [[(ord("a"), BUF - 1), (ord("b"), 1)]]
    w._write(b"c" * 10)
    w._write(b"d" * BUF)  # exactly BUF: what is gathered goes first, then it, as is
    assert runs(rec.writes[1:]) == [[(ord("c"), 10)], [(ord("d"), BUF)]]
    w._write(b"e" * (BUF - 1))
    assert len(rec.writes) == 3
    w._flush_buf()
    w._flush_buf()
    assert runs(rec.writes[3:]) == [[(ord("e"), BUF - 1)]]


def test_pad() -> None:
    for size, padding in ((0, 0), (1, 511), (511, 1), (512, 0), (513, 511)):
        rec = Recorder()
        w = TarWriter(rec)  # type: ignore[arg-type]
        w.pad(size)
        w._flush_buf()
        assert rec.data == bytes(padding)


def test_data_from_fd_pads_a_file_that_shrank(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abc")
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    try:
        rec = Recorder()
        w = TarWriter(rec)  # type: ignore[arg-type]
        w.data_from_fd(fd, 5)
        w._flush_buf()
        assert rec.data == b"abc" + bytes(2) + bytes(507)
    finally:
        os.close(fd)


def test_data_from_fd_zero_fill_past_one_mib(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"")
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    try:
        rec = Recorder()
        w = TarWriter(rec)  # type: ignore[arg-type]
        w.data_from_fd(fd, BUF + 3)
        w._flush_buf()
        assert _difference(rec.data, bytes(BUF + 3) + bytes(509)) is None
    finally:
        os.close(fd)


def test_data_from_fd_reads_only_size_bytes_of_a_bigger_file(tmp_path: Path) -> None:
    body = os.urandom(BUF + 100)
    (tmp_path / "f").write_bytes(body)
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    try:
        rec = Recorder()
        w = TarWriter(rec)  # type: ignore[arg-type]
        w.data_from_fd(fd, BUF + 50)
        w._flush_buf()
        assert _difference(rec.data, body[: BUF + 50] + bytes(462)) is None
    finally:
        os.close(fd)


@needs_root
def test_headers_of_every_kind(tmp_path: Path) -> None:
    t = tmp_path / "t"
    (t / "dir").mkdir(parents=True)
    (t / "dir" / "file").write_bytes(b"x" * 700)
    os.chown(t / "dir" / "file", 1234, 5678)
    os.chmod(t / "dir" / "file", 0o4751)  # after chown, which clears set-user-ID
    os.setxattr(t / "dir" / "file", "user.b", b"2")
    os.setxattr(t / "dir" / "file", "user.a", b"\xff1")
    os.setxattr(t / "dir" / "file", "trusted.overlay.origin", b"x")
    os.setxattr(t / "dir" / "file", "user.overlay.redirect", b"x")
    os.link(t / "dir" / "file", t / "hard")
    os.symlink("dir/file", t / "sym")
    os.mknod(t / "chr", stat.S_IFCHR | 0o620, os.makedev(4, 65))
    os.chmod(t / "chr", 0o620)
    os.mknod(t / "blk", stat.S_IFBLK | 0o600, os.makedev(7, 3))
    os.mkfifo(t / "fifo", 0o640)
    os.chmod(t / "fifo", 0o640)
    os.setxattr(t / "fifo", "trusted.f", b"fifo")
    os.setxattr(t / "dir", "user.d", b"dir")
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(str(t / "sock"))
    finally:
        s.close()
    for p in ("dir/file", "dir", "sym", "chr", "blk", "fifo"):
        os.utime(t / p, (MTIME, MTIME + 0.9), follow_symlinks=False)
    m = _members(_tar(t))
    assert list(m) == ["blk", "chr", "dir", "dir/file", "fifo", "hard", "sym"]  # no socket
    f = m["dir/file"]
    assert (f.type, f.mode, f.uid, f.gid, f.uname, f.gname, f.mtime, f.size) == (
        tarfile.REGTYPE,
        0o4751,
        1234,
        5678,
        "",
        "",
        MTIME,
        700,
    )
    # a value that is not UTF-8 goes out raw (surrogateescape), marked hdrcharset=BINARY
    assert f.pax_headers == {
        "hdrcharset": "BINARY",
        "SCHILY.xattr.user.a": "\udcff1",
        "SCHILY.xattr.user.b": "2",
    }
    h = m["hard"]
    assert (h.type, h.linkname, h.size, h.mode) == (tarfile.LNKTYPE, "dir/file", 0, 0o4751)
    d = m["dir"]
    assert (d.type, d.mode, d.mtime, d.size) == (tarfile.DIRTYPE, 0o755, MTIME, 0)
    assert d.pax_headers == {"SCHILY.xattr.user.d": "dir"}
    sy = m["sym"]
    assert (sy.type, sy.linkname, sy.mode, sy.mtime) == (tarfile.SYMTYPE, "dir/file", 0o777, MTIME)
    c = m["chr"]
    assert (c.type, c.mode, c.devmajor, c.devminor, c.size) == (tarfile.CHRTYPE, 0o620, 4, 65, 0)
    b = m["blk"]
    assert (b.type, b.devmajor, b.devminor) == (tarfile.BLKTYPE, 7, 3)
    fi = m["fifo"]
    assert (fi.type, fi.mode, fi.devmajor, fi.devminor) == (tarfile.FIFOTYPE, 0o640, 0, 0)
    assert fi.pax_headers == {"SCHILY.xattr.trusted.f": "fifo"}
    with tarfile.open(fileobj=io.BytesIO(_tar(t)), mode="r:") as tf:
        fh = tf.extractfile("dir/file")
        assert fh is not None and fh.read() == b"x" * 700


def test_a_single_link_is_a_file_and_a_second_name_a_link(tmp_path: Path) -> None:
    t = tmp_path / "t"
    t.mkdir()
    (t / "a").write_bytes(b"1")
    (t / "b").write_bytes(b"1")
    os.link(t / "b", t / "c")
    m = _members(_tar(t))
    assert [(n, i.type) for n, i in m.items()] == [
        ("a", tarfile.REGTYPE),
        ("b", tarfile.REGTYPE),
        ("c", tarfile.LNKTYPE),
    ]
    assert m["c"].linkname == "b"


def test_children_with_a_prefix_and_the_skip_set(tmp_path: Path) -> None:
    t = tmp_path / "t"
    (t / "a" / "b").mkdir(parents=True)
    (t / "a" / "b" / "f").write_bytes(b"")
    (t / "a" / "g").write_bytes(b"")
    out = io.BytesIO()
    w = TarWriter(out)  # type: ignore[arg-type]
    with dirfd(t) as fd:
        TreeWriter(w).children(fd, "pre")
        TreeWriter(w, skip=["a/b"]).children(fd)
    w.close()
    with tarfile.open(fileobj=io.BytesIO(out.getvalue()), mode="r:") as tf:
        assert tf.getnames() == ["pre/a", "pre/a/b", "pre/a/b/f", "pre/a/g", "a", "a/g"]


def test_entry_of_a_missing_name_emits_nothing(tmp_path: Path) -> None:
    out = io.BytesIO()
    w = TarWriter(out)  # type: ignore[arg-type]
    with dirfd(tmp_path) as fd:
        TreeWriter(w).entry(fd, "gone", "gone")
    w.close()
    assert out.getvalue() == bytes(1024)


@needs_root
def test_overlay_whiteouts_and_opaque_dirs(tmp_path: Path) -> None:
    t = tmp_path / "t"
    (t / "d" / "e").mkdir(parents=True)
    os.mknod(t / "gone", stat.S_IFCHR | 0o600, 0)
    os.mknod(t / "d" / "old", stat.S_IFCHR | 0o600, 0)
    os.mknod(t / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.chmod(t / "null", 0o666)
    os.utime(t / "gone", (MTIME, MTIME))
    os.setxattr(t / "d", "trusted.overlay.opaque", b"y")
    os.setxattr(t / "d" / "e", "trusted.overlay.opaque", b"n")
    with tarfile.open(fileobj=io.BytesIO(_tar(t, overlay=True)), mode="r:") as tf:
        got = [(m.name, m.type, m.mode, m.mtime, m.size) for m in tf.getmembers()]
        assert tf.getmember("d").pax_headers == {}
        assert {(m.uname, m.gname, m.uid, m.gid) for m in tf.getmembers()} == {("", "", 0, 0)}
    assert got == [
        ("d", tarfile.DIRTYPE, 0o755, got[0][3], 0),
        ("d/.wh..wh..opq", tarfile.REGTYPE, 0o644, 0, 0),
        ("d/e", tarfile.DIRTYPE, 0o755, got[2][3], 0),
        ("d/.wh.old", tarfile.REGTYPE, 0o644, got[3][3], 0),
        (".wh.gone", tarfile.REGTYPE, 0o644, MTIME, 0),
        ("null", tarfile.CHRTYPE, 0o666, got[5][3], 0),
    ]
    # without overlay=True a 0:0 char device is just a device
    m = _members(_tar(t))
    assert (m["gone"].type, m["gone"].devmajor, m["gone"].devminor) == (tarfile.CHRTYPE, 0, 0)
    assert "d/.wh..wh..opq" not in m


@needs_root
def test_an_opaque_directory_at_the_top_of_an_entry(tmp_path: Path) -> None:
    t = tmp_path / "t"
    t.mkdir()
    os.setxattr(t, "trusted.overlay.opaque", b"y")
    out = io.BytesIO()
    w = TarWriter(out)  # type: ignore[arg-type]
    with dirfd(tmp_path) as fd:
        TreeWriter(w, overlay=True).entry(fd, "t", "")
    w.close()
    with tarfile.open(fileobj=io.BytesIO(out.getvalue()), mode="r:") as tf:
        assert [m.name for m in tf.getmembers()] == ["", ".wh..wh..opq"]


@pytest.mark.parametrize(("body", "size"), [(b"x", 1), (b"ab", 3)])
def test_data_from_fd_to_the_last_byte(tmp_path: Path, body: bytes, size: int) -> None:
    """A one-byte file, and a file one byte short of its header's size (the last byte zero-filled)."""
    (tmp_path / "f").write_bytes(body)
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    try:
        rec = Recorder()
        w = TarWriter(rec)  # type: ignore[arg-type]
        w.data_from_fd(fd, size)
        w._flush_buf()
        assert rec.data == body + bytes(size - len(body)) + bytes(512 - size)
    finally:
        os.close(fd)


@needs_root
def test_selinux_labels_and_system_xattrs_stay_out(tmp_path: Path) -> None:
    t = tmp_path / "t"
    t.mkdir()
    (t / "f").write_bytes(b"")
    acl = struct.pack("<I", 2) + b"".join(
        struct.pack("<HHI", tag, perm, ident)
        for tag, perm, ident in (
            (1, 6, 0xFFFFFFFF),
            (2, 4, 1000),
            (4, 4, 0xFFFFFFFF),
            (0x10, 4, 0xFFFFFFFF),
            (0x20, 4, 0xFFFFFFFF),
        )
    )
    os.setxattr(t / "f", "system.posix_acl_access", acl)
    os.setxattr(t / "f", "security.selinux", b"system_u:object_r:tmp_t:s0")
    os.setxattr(t / "f", "user.kept", b"1")
    assert sorted(os.listxattr(t / "f")) == ["security.selinux", "system.posix_acl_access", "user.kept"]
    assert _members(_tar(t))["f"].pax_headers == {"SCHILY.xattr.user.kept": "1"}


@contextmanager
def _after(
    monkeypatch: pytest.MonkeyPatch, fn: str, match: str, action: Callable[[], None]
) -> Iterator[None]:
    """Run `action` once right after the real `os.<fn>` call whose first argument is `match`: a concurrent
    writer acting at exactly that moment (the tree changes for real; no result is faked)."""
    real = getattr(os, fn)
    done = []

    def wrapper(*args: object, **kw: object) -> object:
        res = real(*args, **kw)
        if not done and args and str(args[0]).endswith(match):
            done.append(True)
            action()
        return res

    with monkeypatch.context() as m:
        m.setattr(os, fn, wrapper)
        yield


@pytest.mark.parametrize("swap", ["file", "symlink"])
def test_a_directory_swapped_after_its_lstat_is_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, swap: str
) -> None:
    t = tmp_path / "t"
    (t / "d").mkdir(parents=True)
    (t / "e").write_bytes(b"e")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_bytes(b"host")

    def replace() -> None:
        os.rmdir(t / "d")
        if swap == "file":
            (t / "d").write_bytes(b"")
        else:
            os.symlink(str(tmp_path / "outside"), t / "d")

    with _after(monkeypatch, "lstat", "d", replace):
        data = _tar(t)
    assert list(_members(data)) == ["e"]


def test_an_xattr_gone_after_the_listing_is_left_out_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = tmp_path / "t"
    t.mkdir()
    (t / "f").write_bytes(b"")
    for name in ("user.a", "user.b", "user.c"):
        os.setxattr(t / "f", name, b"v")
    with _after(monkeypatch, "listxattr", "", lambda: os.removexattr(t / "f", "user.b")):
        data = _tar(t)
    assert _members(data)["f"].pax_headers == {"SCHILY.xattr.user.a": "v", "SCHILY.xattr.user.c": "v"}


@pytest.mark.parametrize("swap", ["removed", "symlink", "fifo"])
def test_a_file_swapped_after_its_lstat_is_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, swap: str
) -> None:
    """Never read through a symlink, never block on a fifo that replaced a file of a running container."""
    t = tmp_path / "t"
    t.mkdir()
    (t / "f").write_bytes(b"f")
    (t / "g").write_bytes(b"g")
    (tmp_path / "secret").write_bytes(b"host")

    def replace() -> None:
        os.unlink(t / "f")
        if swap == "symlink":
            os.symlink(str(tmp_path / "secret"), t / "f")
        elif swap == "fifo":
            os.mkfifo(t / "f")

    def hung(signum: int, frame: object) -> None:
        raise TimeoutError("opened the fifo blocking")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(10)
    try:
        with _after(monkeypatch, "lstat", "f", replace):
            data = _tar(t)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert list(_members(data)) == ["g"]


def test_two_hardlinked_files_each_link_to_their_own_first_name(tmp_path: Path) -> None:
    t = tmp_path / "t"
    t.mkdir()
    for first, second in (("a1", "a2"), ("b1", "b2")):
        (t / first).write_bytes(first.encode())
        os.link(t / first, t / second)
    m = _members(_tar(t))
    assert [(n, i.type, i.linkname) for n, i in m.items()] == [
        ("a1", tarfile.REGTYPE, ""),
        ("a2", tarfile.LNKTYPE, "a1"),
        ("b1", tarfile.REGTYPE, ""),
        ("b2", tarfile.LNKTYPE, "b1"),
    ]


@needs_root
@pytest.mark.parametrize("swap", ["removed", "symlink"])
def test_a_special_file_swapped_after_its_lstat_keeps_its_header_without_xattrs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, swap: str
) -> None:
    t = tmp_path / "t"
    t.mkdir()
    os.mkfifo(t / "p", 0o640)
    os.chmod(t / "p", 0o640)
    os.setxattr(t / "p", "trusted.mine", b"fifo")
    (tmp_path / "target").write_bytes(b"")
    os.setxattr(tmp_path / "target", "user.secret", b"host")
    stdout = os.fstat(1)

    def replace() -> None:
        os.unlink(t / "p")
        if swap == "symlink":
            os.symlink(str(tmp_path / "target"), t / "p")

    with _after(monkeypatch, "lstat", "p", replace):
        data = _tar(t)
    p = _members(data)["p"]
    assert (p.type, p.mode, p.pax_headers) == (tarfile.FIFOTYPE, 0o640, {})  # as lstat saw it, no xattrs
    assert (os.fstat(1).st_dev, os.fstat(1).st_ino) == (stdout.st_dev, stdout.st_ino)  # fd 1 never touched
