"""`gorae cp` out of a container, local side: docker's placement rules and a hostile archive from the daemon
(symbolic links are kept with any target, but nothing is ever written through one or outside the destination)."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gorae.cli.commands.cp import _extract_local
from gorae.cli.context import StatusError


def _tar(entries: list[tuple[str, str, str]]) -> io.BytesIO:
    """(name, kind "f"/"d"/"l"/"h", data or link target)"""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, kind, data in entries:
            ti = tarfile.TarInfo(name)
            if kind == "d":
                ti.type = tarfile.DIRTYPE
                tf.addfile(ti)
            elif kind in ("l", "h"):
                ti.type = tarfile.SYMTYPE if kind == "l" else tarfile.LNKTYPE
                ti.linkname = data
                tf.addfile(ti)
            else:
                ti.size = len(data.encode())
                tf.addfile(ti, io.BytesIO(data.encode()))
    buf.seek(0)
    return buf


def test_dir_contents_symlink_and_rename(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    _extract_local(_tar([(".", "d", ""), ("f", "f", "a"), ("sub", "d", ""), ("sub/g", "f", "b")]), "/newdir/.", str(out), False)
    assert sorted(os.listdir(out)) == ["f", "sub"]
    _extract_local(_tar([("lnk", "l", "/x")]), "/lnk", str(out), False)
    assert os.readlink(out / "lnk") == "/x"
    _extract_local(_tar([("x", "f", "x\n")]), "/x", str(out / "l2"), False, rebase="lnk")
    assert (out / "l2").read_text() == "x\n"
    with pytest.raises(StatusError, match="must exist"):
        _extract_local(_tar([("x", "f", "x")]), "/x", str(tmp_path / "nope" / "x"), False)


def test_nothing_is_written_through_a_link(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(StatusError, match="invalid archive"):
        _extract_local(_tar([("a", "l", str(victim)), ("a/evil", "f", "x")]), "/a", str(out), False)
    assert os.listdir(victim) == []


_names = st.lists(st.sampled_from(["a", "b", "..", ".", "/", "a/b", "../x", "/etc/x", "a/../..", "c"]), min_size=1, max_size=3).map("/".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(_names, st.sampled_from("fdlh"), _names), min_size=1, max_size=6))
def test_hostile_archives_stay_inside(tmp_path: Path, entries: list[tuple[str, str, str]]) -> None:
    base = tmp_path / os.urandom(4).hex()
    (base / "victim").mkdir(parents=True)
    out = base / "out"
    out.mkdir()
    try:
        _extract_local(_tar(entries), "/src", str(out), False)
    except (StatusError, OSError):  # cmd_cp reports both as errors (rc 1), never a traceback
        pass
    assert os.listdir(base / "victim") == []
    assert sorted(os.listdir(base)) == ["out", "victim"]  # nothing beside the destination


def _member(name: str, kind: bytes, mode: int, uid: int = 1234, linkname: str = "") -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.uid, ti.gid, ti.linkname = kind, mode, uid, uid + 1, linkname
    ti.uname = ti.gname = "someone"
    return ti


def test_guard_modes_owners_and_refusals(tmp_path: Path) -> None:
    """The checks run by gorae itself (Debian 12's python 3.11.2 has no tarfile filters): set-id, sticky and
    group/other write bits dropped, a regular file readable and writable by its owner, a directory enterable;
    owners kept only in archive mode; hard links outside and special files refused."""
    from gorae.cli.commands.cp import _Guard, _Refused

    g = _Guard(archive=False)
    reg = g(_member("/x/f", tarfile.REGTYPE, 0o4775), str(tmp_path))
    assert (reg.name, reg.mode, reg.uid, reg.gid, reg.uname, reg.gname) == ("x/f", 0o755, os.getuid(), os.getgid(), "", "")
    assert g(_member("g", tarfile.REGTYPE, 0o044), str(tmp_path)).mode == 0o644
    assert g(_member("d", tarfile.DIRTYPE, 0o1557), str(tmp_path)).mode == 0o755
    assert g(_member("d2", tarfile.DIRTYPE, 0o000), str(tmp_path)).mode == 0o700
    assert g(_member("h", tarfile.LNKTYPE, 0o644, linkname="/x/f"), str(tmp_path)).linkname == "x/f"
    kept = _Guard(archive=True)(_member("f", tarfile.REGTYPE, 0o644, uid=1234), str(tmp_path))
    assert (kept.uid, kept.gid) == (1234, 1235)
    with pytest.raises(_Refused, match="outside the destination"):
        g(_member("h2", tarfile.LNKTYPE, 0o644, linkname="../../etc/passwd"), str(tmp_path))
    with pytest.raises(_Refused, match="special file"):
        g(_member("fifo", tarfile.FIFOTYPE, 0o644), str(tmp_path))
    with pytest.raises(_Refused, match="outside the destination"):
        g(_member("../up", tarfile.REGTYPE, 0o644), str(tmp_path))
    assert g(_member("l", tarfile.SYMTYPE, 0o777, linkname="/anywhere"), str(tmp_path)).linkname == "/anywhere"
    with pytest.raises(_Refused, match="through a link"):
        g(_member("l/inner", tarfile.REGTYPE, 0o644), str(tmp_path))


def test_files_keep_their_modes_on_every_python(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for m in (_member("d", tarfile.DIRTYPE, 0o750), _member("d/run", tarfile.REGTYPE, 0o700)):
            tf.addfile(m)
    buf.seek(0)
    _extract_local(buf, "/d", str(out), False)
    assert (os.stat(out / "d").st_mode & 0o7777, os.stat(out / "d" / "run").st_mode & 0o7777) == (0o750, 0o700)
