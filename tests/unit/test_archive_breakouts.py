"""containerd's pkg/archive TestBreakouts cases, ported: hostile layers must stay inside the root.

Each case prepares the target (optionally), applies a tar, then checks the result inside the root and
that nothing outside it (sibling dirs, a 0400 witness file, the host's /etc) changed.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from test_archive_support import E, Scratch, d, f, link, outside_state, scratch, sym, tar_bytes

from gorae.archive import apply_layer
from gorae.errors import InvalidParameter

Check = Callable[[Scratch], None]


def unbroken(s: Scratch) -> None:
    assert s.read("etc/unbroken") == b"unbroken"


def same_file(a: str, b: str) -> Check:
    def check(s: Scratch) -> None:
        # resolve as containerd's fs.RootPath does: within the root
        assert os.path.samefile(_in_root(s, a), _in_root(s, b))

    return check


def not_same_file(a: str, b: str) -> Check:
    def check(s: Scratch) -> None:
        assert not os.path.samefile(_in_root(s, a), _in_root(s, b))

    return check


def is_symlink(a: str) -> Check:
    def check(s: Scratch) -> None:
        assert stat.S_ISLNK(os.lstat(s.path(a)).st_mode)

    return check


def same_symlink(a: str, b: str) -> Check:
    def check(s: Scratch) -> None:
        is_symlink(a)(s)
        is_symlink(b)(s)
        assert os.readlink(s.path(a)) == os.readlink(s.path(b))

    return check


def value(a: str, data: bytes) -> Check:
    return lambda s: _eq(s.read(a), data)


def missing(a: str) -> Check:
    return lambda s: _eq(os.path.lexists(s.path(a)), False)


def all_of(*checks: Check) -> Check:
    def check(s: Scratch) -> None:
        for c in checks:
            c(s)

    return check


def _eq(a: object, b: object) -> None:
    assert a == b


def _in_root(s: Scratch, rel: str) -> str:
    """Resolve `rel` inside the root with symlinks taken relative to the root (test-side RootPath)."""
    from gorae.archive.inroot import Root
    from gorae.archive.names import clean_parts

    with Root(s.root) as r:
        parts = r.canonical(clean_parts(rel))
    return os.path.join(s.root, *parts)


@dataclass
class Case:
    name: str
    entries: list[E]
    prepare: Callable[[Scratch], None] | None = None
    check: Check | None = None
    error: bool = False
    whiteouts: str = "remove"
    extra: dict[str, object] = field(default_factory=dict)


def _prep_etc_passwd(
    data: bytes = b"inside", *, localetc: str | None = None, dirlocal: bool = False
) -> Callable:
    def prep(s: Scratch) -> None:
        os.makedirs(s.path("etc"), mode=0o755)
        with open(s.path("etc/passwd"), "wb") as fh:
            fh.write(data)
        if dirlocal:
            os.mkdir(s.path("localetc"))
        if localetc is not None:
            os.symlink(localetc, s.path("localetc"))

    return prep


def _prep_whitedout(s: Scratch) -> None:
    _prep_etc_passwd(b"all users", localetc="/etc")(s)
    with open(s.path("etc/whitedout"), "wb") as fh:
        fh.write(b"ahhhh whiteout")


def _prep_dead(s: Scratch) -> None:
    _prep_etc_passwd(b"all users", localetc="/dne")(s)


def _prep_override_hardlink(s: Scratch) -> None:
    _prep_etc_passwd(localetc="etc")(s)
    os.link(s.path("etc/passwd"), s.path("etc/localpasswd"))


UNB = b"unbroken"
CASES = [
    Case(
        "SymlinkAbsolute", [d("etc"), sym("/etc", "localetc"), f("/localetc/unbroken", UNB)], check=unbroken
    ),
    Case(
        "SymlinkUpAndOut",
        [d("etc"), d("dummy"), sym("/dummy/../etc", "localetc"), f("/localetc/unbroken", UNB)],
        check=unbroken,
    ),
    Case(
        "SymlinkMultipleAbsolute",
        [
            d("etc"),
            d("dummy"),
            sym("/etc", "/dummy/etc"),
            sym("/dummy/etc", "localetc"),
            f("/dummy/etc/unbroken", UNB),
        ],
        check=unbroken,
    ),
    Case(
        "SymlinkMultipleRelative",
        [
            d("etc"),
            d("dummy"),
            sym("/etc", "/dummy/etc"),
            sym("./dummy/etc", "localetc"),
            f("/dummy/etc/unbroken", UNB),
        ],
        check=unbroken,
    ),
    Case(
        "SymlinkEmptyFile",
        [d("etc"), f("etc/emptied", b"notempty"), sym("/etc", "localetc"), f("/localetc/emptied", b"")],
        check=value("etc/emptied", b""),
    ),
    Case(
        "HardlinkRelative",
        [
            d("etc", 0o770),
            f("/etc/passwd", b"inside"),
            d("breakouts"),
            sym("../../etc", "breakouts/d1"),
            link("/breakouts/d1/passwd", "breakouts/mypasswd"),
        ],
        check=same_file("/breakouts/mypasswd", "/etc/passwd"),
    ),
    Case(
        "HardlinkDownAndOut",
        [
            d("etc", 0o770),
            f("/etc/passwd", b"inside"),
            d("breakouts"),
            d("downandout"),
            sym("../downandout/../../etc", "breakouts/d1"),
            link("/breakouts/d1/passwd", "breakouts/mypasswd"),
        ],
        check=same_file("/breakouts/mypasswd", "/etc/passwd"),
    ),
    Case(
        "HardlinkAbsolute",
        [
            d("etc", 0o770),
            f("/etc/passwd", b"inside"),
            sym("/etc", "localetc"),
            link("/localetc/passwd", "localpasswd"),
        ],
        check=same_file("localpasswd", "/etc/passwd"),
    ),
    Case(
        "HardlinkRelativeLong",
        [
            d("etc", 0o770),
            f("/etc/passwd", b"inside"),
            sym("../../../../../../../etc", "localetc"),
            link("/localetc/passwd", "localpasswd"),
        ],
        check=same_file("localpasswd", "/etc/passwd"),
    ),
    Case(
        "HardlinkRelativeUpAndOut",
        [
            d("etc", 0o770),
            f("/etc/passwd", b"inside"),
            sym("upandout/../../../etc", "localetc"),
            link("/localetc/passwd", "localpasswd"),
        ],
        check=same_file("localpasswd", "/etc/passwd"),
    ),
    Case(
        "HardlinkDirectRelative",
        [d("etc", 0o770), f("/etc/passwd", b"inside"), link("../../../../../etc/passwd", "localpasswd")],
        check=same_file("localpasswd", "/etc/passwd"),
    ),
    Case(
        "HardlinkDirectAbsolute",
        [d("etc", 0o770), f("/etc/passwd", b"inside"), link("/etc/passwd", "localpasswd")],
        check=same_file("localpasswd", "/etc/passwd"),
    ),
    Case(
        "SymlinkParentDirectory",
        [
            d("etc", 0o770),
            f("/etc/passwd", b"inside"),
            sym("/etc/", ".."),
            link("/etc/passwd", "localpasswd"),
        ],
        check=same_file("/localpasswd", "/etc/passwd"),
    ),
    Case(
        "SymlinkEmptyFilename",
        [d("etc", 0o770), f("/etc/passwd", b"inside"), sym("/etc/", ""), link("/etc/passwd", "localpasswd")],
        check=same_file("/localpasswd", "/etc/passwd"),
    ),
    Case(
        "SymlinkParentRelative",
        [
            d("etc", 0o770),
            f("/etc/passwd", b"inside"),
            sym("/etc/", "localetc/sub/.."),
            link("/etc/passwd", "/localetc/localpasswd"),
        ],
        check=same_file("/localetc/localpasswd", "/etc/passwd"),
    ),
    Case(
        "SymlinkSlashEnded",
        [
            d("etc", 0o770),
            f("/etc/passwd", b"inside"),
            d("localetc/", 0o770),
            link("/etc/passwd", "/localetc/localpasswd"),
        ],
        check=same_file("/localetc/localpasswd", "/etc/passwd"),
    ),
    Case(
        "SymlinkOverrideDirectory",
        [sym("/etc", "localetc"), link("/etc/passwd", "/localetc/localpasswd")],
        prepare=_prep_etc_passwd(dirlocal=True),
        check=same_file("/localetc/localpasswd", "/etc/passwd"),
    ),
    Case(
        "SymlinkOverrideDirectoryRelative",
        [sym("../../etc", "localetc"), link("/etc/passwd", "/localetc/localpasswd")],
        prepare=_prep_etc_passwd(dirlocal=True),
        check=same_file("/localetc/localpasswd", "/etc/passwd"),
    ),
    Case(
        "DirectoryOverrideSymlink",
        [d("/localetc/"), link("/etc/passwd", "/localetc/localpasswd")],
        prepare=_prep_etc_passwd(localetc="/etc"),
        check=same_file("/localetc/localpasswd", "/etc/passwd"),
    ),
    Case(
        "DirectoryOverrideSymlinkAndHardlink",
        [d("/localetc/"), f("/localetc/localpasswd", b"different")],
        prepare=_prep_override_hardlink,
        check=all_of(not_same_file("/localetc/localpasswd", "/etc/passwd"), value("etc/passwd", b"inside")),
    ),
    Case("WhiteoutRootParent", [f(".wh...")], prepare=_prep_etc_passwd(), error=True),
    Case("WhiteoutParent", [f("etc/.wh...")], prepare=_prep_etc_passwd(), error=True),
    Case("WhiteoutRoot", [f(".wh..")], prepare=_prep_etc_passwd(), error=True),
    Case("WhiteoutCurrentDirectory", [f("etc/.wh..")], prepare=_prep_etc_passwd(), error=True),
    Case(
        "WhiteoutSymlink",
        [f(".wh.localetc")],
        prepare=_prep_etc_passwd(b"all users", localetc="/etc"),
        check=all_of(value("etc/passwd", b"all users"), missing("localetc")),
    ),
    Case(
        "WhiteoutSymlinkPath",
        [f("localetc/.wh.whitedout")],
        prepare=_prep_whitedout,
        check=all_of(value("etc/passwd", b"all users"), missing("etc/whitedout")),
    ),
    Case(
        "WhiteoutDirectoryName",
        [f(".wh.etc/somefile", b"non-empty")],
        prepare=_prep_whitedout,
        check=all_of(value("etc/passwd", b"all users"), value(".wh.etc/somefile", b"non-empty")),
    ),
    Case(
        "WhiteoutDeadSymlinkParent",
        [f("localetc/.wh.etc")],
        prepare=_prep_dead,
        check=value("etc/passwd", b"all users"),
    ),
    Case("WhiteoutRelativePath", [f("dne/../.wh.etc")], prepare=_prep_dead, check=missing("etc/passwd")),
    Case(
        "HardlinkSymlinkBeforeCreateTarget",
        [
            d("etc", 0o770),
            sym("/etc/passwd", "localpasswd"),
            link("localpasswd", "localpasswd-dup"),
            f("/etc/passwd", b"after"),
        ],
        check=same_file("localpasswd-dup", "/etc/passwd"),
    ),
    Case(
        "HardlinkSymlinkRelative",
        [
            d("etc", 0o770),
            f("/etc/passwd", b"inside"),
            sym("../../../../../etc/passwd", "passwdlink"),
            link("/passwdlink", "localpasswd"),
        ],
        check=all_of(same_symlink("/localpasswd", "/passwdlink"), same_file("/localpasswd", "/etc/passwd")),
    ),
    Case(
        "HardlinkSymlinkAbsolute",
        [
            d("etc", 0o770),
            f("/etc/passwd", b"inside"),
            sym("/etc/passwd", "passwdlink"),
            link("/passwdlink", "localpasswd"),
        ],
        check=all_of(same_symlink("/localpasswd", "/passwdlink"), same_file("/localpasswd", "/etc/passwd")),
    ),
    # ours, beyond containerd's list
    Case("HardlinkMissingTarget", [link("/nope", "x")], error=True),
    Case("HardlinkToDirectory", [d("etc"), link("/etc", "x")], error=True),
    Case("HardlinkToRoot", [link("../..", "x")], error=True),
    Case(
        "WriteThroughDanglingAbsoluteSymlink",
        [sym("/nonexistent/dir", "l"), f("l/file", b"in")],
        check=value("nonexistent/dir/file", b"in"),
    ),
    Case(
        "SymlinkLoop",
        [sym("b", "a"), sym("a", "b"), f("a/x", b"x")],
        error=True,
    ),
    Case("FileUnderFile", [f("a", b"1"), f("a/b", b"2")], error=True),
    Case(
        "OpaqueWhiteoutThroughSymlink",
        [sym("/etc", "l"), f("l/.wh..wh..opq")],
        prepare=_prep_etc_passwd(),
        check=missing("etc/passwd"),
    ),
]


def _outside_state_of_host_etc() -> set[str]:
    return set(os.listdir("/etc"))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_breakouts(case: Case) -> None:
    host_etc = _outside_state_of_host_etc()
    with scratch() as s:
        if case.prepare is not None:
            case.prepare(s)
        before = outside_state(s)
        data = tar_bytes(*case.entries)
        if case.error:
            with pytest.raises(InvalidParameter):
                apply_layer(s.root, io.BytesIO(data), whiteouts=case.whiteouts)  # type: ignore[arg-type]
        else:
            apply_layer(s.root, io.BytesIO(data), whiteouts=case.whiteouts)  # type: ignore[arg-type]
            assert case.check is not None
            case.check(s)
        assert outside_state(s) == before
    assert _outside_state_of_host_etc() == host_etc


def test_hardlink_symlink_chmod_outside_root() -> None:
    """HardlinkSymlinkChmod: a hardlink to a symlink naming a host file must not chmod that file."""
    with scratch() as s:
        p = os.path.join(s.base, "perm400")
        with open(p, "w") as fh:
            fh.write("...")
        os.chmod(p, 0o400)
        ep = os.path.join(s.base, "also-exists-outside-root")
        with open(ep, "w") as fh:
            fh.write("...")
        os.chmod(ep, 0o640)
        before = outside_state(s)
        entries = [sym(p, ep), link(ep, "sketchylink")]
        entries[1].mode = 0o777
        apply_layer(s.root, io.BytesIO(tar_bytes(*entries)))
        assert stat.S_IMODE(os.lstat(p).st_mode) == 0o400
        assert stat.S_IMODE(os.lstat(ep).st_mode) == 0o640
        assert outside_state(s) == before
        assert stat.S_ISLNK(os.lstat(s.path("sketchylink")).st_mode)


@pytest.mark.parametrize("mode", ["overlay", "remove"])
def test_breakouts_overlay_mode_symlink_parent(mode: str) -> None:
    """In either whiteout mode a whiteout under a symlinked parent lands inside the root."""
    with scratch() as s:
        _prep_etc_passwd(localetc="/etc")(s)
        before = outside_state(s)
        apply_layer(s.root, io.BytesIO(tar_bytes(f("localetc/.wh.passwd"))), whiteouts=mode)  # type: ignore[arg-type]
        st = os.lstat(s.path("etc/passwd")) if mode == "overlay" else None
        if mode == "overlay":
            assert st is not None and stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
        else:
            assert not os.path.lexists(s.path("etc/passwd"))
        assert outside_state(s) == before
