"""Exact behaviour of the second half of `archive.apply` that mutation testing (docs/mutation.md) found
unchecked: `docker cp`'s owner override, directory times set last (nested, past a directory that cannot be
reached, never through a symlink), `_ns`'s conversion and clamps, the refusals of the entry points."""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable
from typing import Any

import pytest
from test_archive_support import d, f, scratch, sym, tar_bytes

from gorae.archive import apply_layer, apply_tar, extract_to
from gorae.archive.apply import _ns
from gorae.errors import InvalidParameter

T = 1_600_000_000  # the default mtime of test_archive_support's entries
T_NS = T * 10**9


def test_cp_owner_replaces_every_entrys_uid_and_gid() -> None:
    with scratch() as s:
        tar = tar_bytes(d("dir", uid=7, gid=8), f("dir/file", b"x", uid=9, gid=10))
        extract_to(s.root, "/", io.BytesIO(tar), owner=(1234, 5678))
        for rel in ("dir", "dir/file"):
            st = os.lstat(s.path(rel))
            assert (st.st_uid, st.st_gid) == (1234, 5678)


def test_cp_without_owner_keeps_the_headers_uid_and_gid() -> None:
    with scratch() as s:
        tar = tar_bytes(d("dir", uid=7, gid=8), f("dir/file", b"x", uid=9, gid=10))
        extract_to(s.root, "/", io.BytesIO(tar))
        assert (os.lstat(s.path("dir")).st_uid, os.lstat(s.path("dir")).st_gid) == (7, 8)
        assert (os.lstat(s.path("dir/file")).st_uid, os.lstat(s.path("dir/file")).st_gid) == (9, 10)


def test_a_nested_directorys_time_is_set_after_its_children() -> None:
    with scratch() as s:
        apply_layer(
            s.root, io.BytesIO(tar_bytes(d("a", mtime=T + 1), d("a/b", mtime=T + 2), f("a/b/c", b"x")))
        )
        assert os.lstat(s.path("a/b")).st_mtime_ns == (T + 2) * 10**9
        assert os.lstat(s.path("a")).st_mtime_ns == (T + 1) * 10**9
        assert os.lstat(s.path("a/b/c")).st_mtime_ns == T_NS


def test_directory_times_go_on_past_a_directory_that_cannot_be_reached() -> None:
    # `a/b` cannot be reached when the times are set (a symlink loop `a` -> `a` replaced its parent: the walk
    # to it fails), and the directories before it in the archive still get their times
    with scratch() as s:
        tar = tar_bytes(d("first", mtime=T + 5), d("a"), d("a/b"), f("first/x", b"1"), sym("a", "a"))
        apply_layer(s.root, io.BytesIO(tar))
        assert os.readlink(s.path("a")) == "a"
        assert os.lstat(s.path("first")).st_mtime_ns == (T + 5) * 10**9


def test_a_symlink_replacing_a_directory_never_passes_the_directorys_time_to_its_target() -> None:
    # `a` (a directory with a time to set last) is replaced by a symlink leading out of the root: setting the
    # directory times must not follow it
    with scratch() as s:
        outside = os.path.join(s.base, "outside")
        os.utime(outside, ns=(7 * 10**9, 7 * 10**9))
        apply_layer(s.root, io.BytesIO(tar_bytes(d("a", mtime=T + 3), sym("../outside", "a"))))
        assert os.readlink(s.path("a")) == "../outside"
        assert os.stat(outside).st_mtime_ns == 7 * 10**9


def test_ns_converts_and_clamps_exactly() -> None:
    assert _ns(1.5) == 1_500_000_000
    assert _ns(-1.25) == -1_250_000_000
    assert _ns(1e10) == 2**62  # past year 2116: the clamp
    assert _ns(-1e10) == -(2**62)
    assert _ns(4.611686018427387904e9) == 2**62
    assert _ns(float("inf")) == 0  # OverflowError
    assert _ns(float("nan")) == 0  # ValueError


def _refusal(call: Callable[[], object]) -> str:
    with pytest.raises(InvalidParameter) as e:
        call()
    return str(e.value)


def test_a_stream_that_is_no_tar_is_refused_with_tarfiles_reason() -> None:
    with scratch() as s:
        assert _refusal(lambda: apply_layer(s.root, io.BytesIO(b""))) == "invalid archive: empty file"
        assert (
            _refusal(lambda: apply_layer(s.root, io.BytesIO(b"x" * 512))) == "invalid archive: invalid header"
        )
        assert _refusal(lambda: apply_tar(s.root, iter([b"x" * 100, b""]).__next__)) == (
            "invalid archive: truncated header"
        )
        assert os.listdir(s.root) == []


def test_an_unknown_whiteout_mode_is_refused_by_both_entry_points() -> None:
    with scratch() as s:
        tar = tar_bytes(f("a", b"1"))
        bogus: Any = "bogus"
        assert _refusal(lambda: apply_layer(s.root, io.BytesIO(tar), whiteouts=bogus)) == (
            "unknown whiteout mode 'bogus'"
        )
        assert _refusal(lambda: apply_tar(s.root, iter([tar, b""]).__next__, whiteouts=bogus)) == (
            "unknown whiteout mode 'bogus'"
        )
        assert os.listdir(s.root) == []


def test_apply_tar_takes_both_whiteout_modes() -> None:
    tar = tar_bytes(f(".wh.gone"))
    with scratch() as s:
        with open(s.path("gone"), "wb") as fh:
            fh.write(b"lower")
        assert apply_tar(s.root, iter([tar, b""]).__next__, whiteouts="remove") == 0
        assert os.listdir(s.root) == []
    with scratch() as s:
        assert apply_tar(s.root, iter([tar, b""]).__next__, whiteouts="overlay") == 0
        st = os.lstat(s.path("gone"))
        assert (stat.S_ISCHR(st.st_mode), st.st_rdev) == (True, 0)
        assert os.listdir(s.root) == ["gone"]
