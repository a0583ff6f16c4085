"""archive.changes exactly: `docker diff`'s classification over layer dirs (whiteouts as 0:0 char devices,
opaque directories as trusted.overlay.opaque=y), each layer-probing helper on its edges, and which
init-layer entries `init_artifacts` leaves out.

Written for docs/mutation.md (mutants of changes.py the suite let through). Plain directories stand
for the layers (no overlay mount needed); mknod and trusted.* xattrs need root."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from gorae.archive import changes
from gorae.archive.changes import ADDED, DELETED, MODIFIED, init_artifacts, overlay_changes

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 and not os.environ.get("CI"), reason="mknod and trusted.* xattrs need root"
)


def wh(p: Path) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    os.mknod(p, stat.S_IFCHR | 0o600, 0)


def opaque(p: Path) -> None:
    p.mkdir(parents=True, exist_ok=True)
    os.setxattr(p, "trusted.overlay.opaque", b"y")


def put(p: Path, data: bytes = b"x") -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)


def test_kinds() -> None:
    assert (MODIFIED, ADDED, DELETED) == (0, 1, 2)


def test_layer_state(tmp_path: Path) -> None:
    low = tmp_path / "l"
    put(low / "d" / "f")
    put(low / "file")
    wh(low / "gone")
    wh(low / "d2" / "gone")
    opaque(low / "o")
    put(low / "o" / "kept")
    os.symlink("/etc", low / "sym")
    ls = changes._layer_state
    state, st = ls(str(low), ["d", "f"])
    assert state == "present" and st is not None and stat.S_ISREG(st.st_mode)
    assert ls(str(low), ["d", "nope"]) == ("absent", None)
    assert ls(str(low), ["nope", "x"]) == ("absent", None)
    assert ls(str(low), ["gone"]) == ("hidden", None)
    assert ls(str(low), ["gone", "below"]) == ("hidden", None)  # a whited-out ancestor
    assert ls(str(low), ["file", "below"]) == ("hidden", None)  # a file shadows the directory
    assert ls(str(low), ["sym", "passwd"]) == ("hidden", None)  # never followed
    assert ls(str(low), ["o", "missing"]) == ("blocked", None)
    assert ls(str(low), ["o", "kept"])[0] == "present"
    assert ls(str(low), ["d2", "gone"]) == ("hidden", None)
    state, st = ls(str(low), [])
    assert state == "present" and st is not None and st.st_ino == os.lstat(low).st_ino


def test_in_lowers_and_lower_stat_take_the_top_layer_that_decides(tmp_path: Path) -> None:
    top, bottom = tmp_path / "top", tmp_path / "bottom"
    put(bottom / "a", b"bottom")
    put(bottom / "b")
    put(bottom / "o" / "c")
    wh(top / "b")
    opaque(top / "o")
    put(top / "a", b"top!")
    top.mkdir(exist_ok=True)
    lowers = [str(top), str(bottom)]
    assert changes._in_lowers(lowers, ["a"]) is True
    assert changes._in_lowers(lowers, ["b"]) is False
    assert changes._in_lowers(lowers, ["o", "c"]) is False
    assert changes._in_lowers(lowers, ["nope"]) is False
    assert changes._in_lowers([str(bottom)], ["b"]) is True
    st = changes._lower_stat(lowers, ["a"])
    assert st is not None and st.st_size == 4
    assert changes._lower_stat(lowers, ["b"]) is None
    assert changes._lower_stat(lowers, ["o", "c"]) is None
    assert changes._lower_stat(lowers, ["nope"]) is None
    st = changes._lower_stat([str(bottom)], ["b"])
    assert st is not None and st.st_size == 1


def test_lower_children_merge(tmp_path: Path) -> None:
    top, mid, bottom = tmp_path / "top", tmp_path / "mid", tmp_path / "bottom"
    put(top / "d" / "x")
    wh(top / "d" / "y")
    put(mid / "d" / "y")
    put(mid / "d" / "z")
    put(bottom / "d" / "w")
    put(bottom / "d" / "x")
    lowers = [str(top), str(mid), str(bottom)]
    assert changes._lower_children(lowers, ["d"]) == {"w", "x", "z"}
    opaque(mid / "d")  # mid's d hides bottom's
    assert changes._lower_children(lowers, ["d"]) == {"x", "z"}
    assert changes._lower_children([str(tmp_path / "none"), str(bottom)], ["d"]) == {"w", "x"}
    put(tmp_path / "f" / "d")  # a file where the directory is: nothing below
    assert changes._lower_children([str(tmp_path / "f"), str(bottom)], ["d"]) == set()
    wh(tmp_path / "h" / "d")
    assert changes._lower_children([str(tmp_path / "h"), str(bottom)], ["d"]) == set()


def test_overlay_changes(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    put(lower / "etc" / "passwd")
    put(lower / "etc" / "group")
    put(lower / "usr" / "bin" / "a")
    put(lower / "usr" / "bin" / "b")
    put(lower / "usr" / "bin" / "c")
    put(lower / "keep")
    put(upper / "etc" / "passwd", b"changed")
    put(upper / "new" / "file")
    wh(upper / "keep")
    wh(upper / "never")  # a whiteout of nothing: not a change
    opaque(upper / "usr" / "bin")
    put(upper / "usr" / "bin" / "b")
    put(upper / "usr" / "bin" / "d")
    opaque(upper / "fresh")  # opaque but new: no deletions listed
    put(upper / "fresh" / "f")
    assert overlay_changes(str(upper), [str(lower)]) == [
        (MODIFIED, "/etc"),
        (MODIFIED, "/etc/passwd"),
        (ADDED, "/fresh"),
        (ADDED, "/fresh/f"),
        (DELETED, "/keep"),
        (ADDED, "/new"),
        (ADDED, "/new/file"),
        (MODIFIED, "/usr"),
        (MODIFIED, "/usr/bin"),
        (DELETED, "/usr/bin/a"),
        (MODIFIED, "/usr/bin/b"),
        (DELETED, "/usr/bin/c"),
        (ADDED, "/usr/bin/d"),
    ]


def test_overlay_changes_does_not_follow_symlinks(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    put(lower / "x")
    put(tmp_path / "host" / "secret")
    upper.mkdir()
    os.symlink(str(tmp_path / "host"), upper / "link")
    assert overlay_changes(str(upper), [str(lower)]) == [(ADDED, "/link")]


def test_upper_lstat(tmp_path: Path) -> None:
    put(tmp_path / "etc" / "hosts", b"")
    os.symlink("etc", tmp_path / "etclink")
    st = changes._upper_lstat(str(tmp_path), "/etc/hosts")
    assert st is not None and stat.S_ISREG(st.st_mode)
    st = changes._upper_lstat(str(tmp_path), "/etclink")
    assert st is not None and stat.S_ISLNK(st.st_mode)
    assert changes._upper_lstat(str(tmp_path), "/etclink/hosts") is None
    assert changes._upper_lstat(str(tmp_path), "/etc/hosts/x") is None
    assert changes._upper_lstat(str(tmp_path), "/nope") is None
    assert changes._upper_lstat(str(tmp_path), "/") is None


def _init_layer(upper: Path) -> None:
    for name in ("hostname", "hosts", "resolv.conf"):
        put(upper / "etc" / name, b"")
    put(upper / ".dockerenv", b"")
    put(upper / "dev" / "console", b"")
    for d in ("proc", "sys", "dev/pts", "dev/shm"):
        (upper / d).mkdir(parents=True)


ALL = {
    "/.dockerenv",
    "/etc",
    "/etc/hostname",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/dev",
    "/dev/console",
    "/dev/pts",
    "/dev/shm",
    "/proc",
    "/sys",
}


def test_init_artifacts_of_an_image_without_etc(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    lower.mkdir()
    _init_layer(upper)
    assert init_artifacts(str(upper), [str(lower)]) == ALL
    assert overlay_changes(str(upper), [str(lower)]) == []


def test_init_artifacts_keep_what_the_container_changed(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    put(lower / "proc" / "x")  # the image has /proc: it is not a mount point the engine made
    (lower / "etc").mkdir()
    os.chmod(lower / "etc", 0o700)  # the image's /etc differs from the upper one: a real change
    _init_layer(upper)
    os.chmod(upper / "etc", 0o755)
    put(upper / "etc" / "hosts", b"127.0.0.1 x\n")  # written to: a change
    put(upper / "dev" / "extra", b"")
    got = init_artifacts(str(upper), [str(lower)])
    assert got == {
        "/.dockerenv",
        "/etc/hostname",
        "/etc/resolv.conf",
        "/dev/console",
        "/dev/pts",
        "/dev/shm",
        "/sys",
    }


def test_init_artifacts_parent_same_as_the_image(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "etc").mkdir(parents=True)
    _init_layer(upper)
    os.chmod(lower / "etc", 0o751)
    os.chmod(upper / "etc", 0o751)
    assert "/etc" in init_artifacts(str(upper), [str(lower)])
    os.chown(upper / "etc", 0, 1)  # another group: a change
    assert "/etc" not in init_artifacts(str(upper), [str(lower)])
    os.chown(upper / "etc", 1, 0)
    assert "/etc" not in init_artifacts(str(upper), [str(lower)])
    os.chown(upper / "etc", 0, 0)
    os.setxattr(upper / "etc", "trusted.overlay.opaque", b"y")  # the container replaced /etc
    assert "/etc" not in init_artifacts(str(upper), [str(lower)])


def test_init_artifacts_parent_a_file_in_the_image(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    put(lower / "etc", b"not a dir")
    _init_layer(upper)
    assert "/etc" not in init_artifacts(str(upper), [str(lower)])


def test_init_artifacts_not_files_or_not_empty(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    lower.mkdir()
    (upper / "etc" / "hosts").mkdir(parents=True)  # a directory named like a mount-point file
    put(upper / ".dockerenv", b"x")
    put(upper / "sys", b"")  # a file where a mount-point directory would be
    assert init_artifacts(str(upper), [str(lower)]) == set()


def test_overlay_changes_never_follows_an_upper_that_is_a_symlink(tmp_path: Path) -> None:
    lower = tmp_path / "lower"
    lower.mkdir()
    put(tmp_path / "real" / "f")
    os.symlink("real", tmp_path / "upper")
    with pytest.raises(NotADirectoryError):  # O_DIRECTORY | O_NOFOLLOW on a symlink: ENOTDIR
        overlay_changes(str(tmp_path / "upper"), [str(lower)])


def test_lower_children_stop_at_a_layer_that_blocks_the_directory(tmp_path: Path) -> None:
    top, mid, bottom = tmp_path / "top", tmp_path / "mid", tmp_path / "bottom"
    put(top / "o" / "d" / "y")
    opaque(mid / "o")  # mid: an opaque o without d — nothing of o/d below mid shows
    put(bottom / "o" / "d" / "x")
    assert changes._layer_state(str(mid), ["o", "d"]) == ("blocked", None)
    assert changes._lower_children([str(top), str(mid), str(bottom)], ["o", "d"]) == {"y"}


def test_lower_children_read_a_whole_directory_past_names_already_seen(tmp_path: Path) -> None:
    top, bottom = tmp_path / "top", tmp_path / "bottom"
    for i in range(8):
        put(bottom / "d" / f"n{i}")
    first = next(e.name for e in os.scandir(bottom / "d"))  # the order the file system lists them in
    put(top / "d" / first)  # the first name listed below is one the top layer already showed
    assert changes._lower_children([str(top), str(bottom)], ["d"]) == {f"n{i}" for i in range(8)}
    os.unlink(top / "d" / first)
    wh(top / "d" / first)  # ... or one it whited out
    assert changes._lower_children([str(top), str(bottom)], ["d"]) == {f"n{i}" for i in range(8)} - {first}


def test_lower_children_never_follow_a_symlink_in_a_layer(tmp_path: Path) -> None:
    low = tmp_path / "low"
    (low / "d").mkdir(parents=True)
    os.symlink("/nonexistent/target", low / "d" / "dangling")
    wh(tmp_path / "wh")
    os.symlink(str(tmp_path / "wh"), low / "d" / "to-a-whiteout")  # a link, not a whiteout
    assert changes._lower_children([str(low)], ["d"]) == {"dangling", "to-a-whiteout"}


def test_init_artifacts_dev_the_image_lacks_even_when_opaque(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    lower.mkdir()
    _init_layer(upper)
    os.setxattr(upper / "dev", "trusted.overlay.opaque", b"y")
    assert init_artifacts(str(upper), [str(lower)]) == ALL


@pytest.mark.parametrize("etc", ["changed", "absent"])
def test_init_artifacts_dev_same_as_the_image_whatever_etc_is(tmp_path: Path, etc: str) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "dev").mkdir(parents=True)
    _init_layer(upper)
    os.chmod(lower / "dev", 0o751)
    os.chmod(upper / "dev", 0o751)
    if etc == "changed":
        put(upper / "etc" / "passwd")
        want = ALL - {"/etc"}
    else:
        for name in ("hostname", "hosts", "resolv.conf"):
            os.unlink(upper / "etc" / name)
        os.rmdir(upper / "etc")
        want = ALL - {"/etc", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf"}
    assert init_artifacts(str(upper), [str(lower)]) == want
    os.chmod(upper / "dev", 0o755)
    assert init_artifacts(str(upper), [str(lower)]) == want - {"/dev"}


def test_upper_entries_are_never_followed(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    lower.mkdir()
    upper.mkdir()
    wh(tmp_path / "wh")
    os.symlink(str(tmp_path / "wh"), upper / "to-a-whiteout")  # a link, not a whiteout
    os.symlink("/nonexistent/target", upper / "dangling")
    assert overlay_changes(str(upper), [str(lower)]) == [(ADDED, "/dangling"), (ADDED, "/to-a-whiteout")]


@pytest.mark.parametrize("swap", ["removed", "symlink", "file"])
def test_a_directory_swapped_before_it_is_opened_is_listed_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, swap: str
) -> None:
    """The upper dir of a running container changes under the walk: `d` is swapped after the walk listed
    it (right after its lookup in the lower layer, the last step before it is opened)."""
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    lower.mkdir()
    put(upper / "d" / "inner")
    put(upper / "e")
    (tmp_path / "outside").mkdir()
    put(tmp_path / "outside" / "secret")
    real = os.lstat
    done: list[bool] = []

    def lstat(path: str, *args: object, **kw: object) -> os.stat_result:
        try:
            return real(path, *args, **kw)  # type: ignore[arg-type]
        finally:
            if not done and str(path) == str(lower / "d"):
                done.append(True)
                os.unlink(upper / "d" / "inner")
                os.rmdir(upper / "d")
                if swap == "symlink":
                    os.symlink(str(tmp_path / "outside"), upper / "d")
                elif swap == "file":
                    put(upper / "d")

    with monkeypatch.context() as m:
        m.setattr(os, "lstat", lstat)
        got = overlay_changes(str(upper), [str(lower)])
    assert done == [True]
    assert got == [(ADDED, "/d"), (ADDED, "/e")]
