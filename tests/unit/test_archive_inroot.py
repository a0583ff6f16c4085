"""archive.inroot exactly: opening a root (its errors in docker's words), the walk's answers (fd, canonical
parts, rest) for symlinks, `..`, missing components and mounts, and its guard against a directory swapped
between its lstat and its open.

Written for docs/mutation.md (mutants of inroot.py the suite let through). A swap "between lstat and
open" is a real change of the tree made right after the walk's own lstat returns (the os.lstat the walk
calls is wrapped to act once at that moment; its result is the real one)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from gorae.archive.inroot import Root, Walked
from gorae.errors import InvalidParameter, NotFound


def _ino(fd: int) -> int:
    return os.fstat(fd).st_ino


@contextmanager
def _walked(root: Root, parts: list[str], **kw: object) -> Iterator[Walked]:
    w = root.walk(parts, **kw)  # type: ignore[arg-type]
    try:
        yield w
    finally:
        os.close(w.fd)


def test_a_root_that_is_missing_or_not_a_directory_in_docker_words(tmp_path: Path) -> None:
    with pytest.raises(NotFound) as nf:
        Root(str(tmp_path / "nope"))
    assert str(nf.value) == f"root directory {tmp_path / 'nope'} does not exist"
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(InvalidParameter) as ip:
        Root(str(tmp_path / "f"))
    assert str(ip.value) == f"root {tmp_path / 'f'} is not a directory"


@pytest.mark.parametrize("swap", ["file", "symlink"])
def test_a_directory_swapped_between_lstat_and_open_stops_the_walk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, swap: str
) -> None:
    r = tmp_path / "root"
    (r / "d").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    real = os.lstat
    done: list[bool] = []

    def lstat(path: str, *args: object, **kw: object) -> os.stat_result:
        st = real(path, *args, **kw)  # type: ignore[arg-type]
        if not done and path == "d" and "dir_fd" in kw:
            done.append(True)
            os.rmdir(r / "d")
            if swap == "file":
                (r / "d").write_bytes(b"")
            else:
                os.symlink(str(tmp_path / "outside"), r / "d")
        return st

    with Root(str(r)) as root:
        with monkeypatch.context() as m:
            m.setattr(os, "lstat", lstat)
            with pytest.raises(InvalidParameter) as e:
                root.walk(["d"])
        assert done == [True]
        assert str(e.value) == "path 'd' changed while it was resolved"
