"""`archive.names` exactly: the lexical cleaning of entry names, the whiteout vocabulary and the overlay
xattrs a layer may not carry (mutation testing, docs/mutation.md, found these unchecked)."""

from __future__ import annotations

import io
import os

import pytest
from test_archive_support import d, f, scratch, tar_bytes

from gorae.archive import apply_layer
from gorae.archive.names import clean_parts, whiteout_target
from gorae.errors import InvalidParameter


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("a/./b", ["a", "b"]),
        ("./", []),
        (".", []),
        ("a//b/", ["a", "b"]),
        ("../../a", ["a"]),
        ("a/../../b", ["b"]),
        ("a/b/..", ["a"]),
        (".../a", ["...", "a"]),
        ("..a/.b", ["..a", ".b"]),
    ],
)
def test_clean_parts_as_go_filepath_clean(name: str, parts: list[str]) -> None:
    assert clean_parts(name) == parts


def test_a_nul_byte_in_a_name_is_refused_in_words() -> None:
    with pytest.raises(InvalidParameter) as e:
        clean_parts("a\x00b")
    assert str(e.value) == "invalid archive entry name 'a\\x00b': contains a NUL byte"


def test_whiteout_target_names_an_entry_of_its_own_directory() -> None:
    assert whiteout_target(".wh.x") == "x"
    assert whiteout_target(".wh..x") == ".x"
    assert whiteout_target(".wh....") == "..."


@pytest.mark.parametrize("base", [".wh.", ".wh..", ".wh...", ".wh.a/b", ".wh./"])
def test_whiteouts_that_would_reach_outside_are_refused(base: str) -> None:
    with pytest.raises(InvalidParameter) as e:
        whiteout_target(base)
    assert str(e.value) == f"invalid whiteout entry {base!r}: it must name an entry of its own directory"


@pytest.mark.parametrize("mode", ["overlay", "remove"])
def test_aufs_metadata_whiteouts_are_not_content(mode: str) -> None:
    tar = tar_bytes(d("dir"), f("dir/.wh..wh.plnk", b""), f(".wh..wh.aufs", b""), f("dir/kept", b"k"))
    with scratch() as s:
        apply_layer(s.root, io.BytesIO(tar), whiteouts=mode)  # type: ignore[arg-type]
        assert sorted(os.listdir(s.root)) == ["dir"]
        assert sorted(os.listdir(s.path("dir"))) == ["kept"]


def test_neither_overlay_xattr_namespace_comes_from_a_layer() -> None:
    entry = f("x", b"x", xattrs={"user.overlay.origin": b"o", "trusted.overlay.origin": b"t", "user.k": b"v"})
    with scratch() as s:
        apply_layer(s.root, io.BytesIO(tar_bytes(entry)))
        assert os.listxattr(s.path("x")) == ["user.k"]
