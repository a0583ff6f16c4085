"""Conformance cases every `Snapshotter` must pass (containerd's snapshots/testsuite idea).

Each case takes a factory (root directory -> Snapshotter), a fresh root and a scratch directory for mount
points; it raises AssertionError on failure and unmounts what it mounted even then. `CASES` maps case
names to functions so a test file can parametrize over them for any implementation.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Iterator

from gorae.errors import Conflict, GoraeError, InvalidParameter, NotFound
from gorae.snapshot.mount import mount_all, unmount
from gorae.snapshot.types import Kind, Snapshotter

Factory = Callable[[str], Snapshotter]
Case = Callable[[Factory, str, str], None]


@contextlib.contextmanager
def mounted(s: Snapshotter, key: str, work: str, name: str) -> Iterator[str]:
    target = os.path.join(work, name)
    os.makedirs(target, exist_ok=True)
    mount_all(s.mounts(key), target)
    try:
        yield target
    finally:
        unmount(target)


def _raises(exc: type[GoraeError], fn: Callable[[], object]) -> None:
    try:
        fn()
    except exc:
        return
    raise AssertionError(f"expected {exc.__name__}")


def _write(path: str, data: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(data)


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def case_layers_and_whiteouts(factory: Factory, root: str, work: str) -> None:
    s = factory(root)
    s.prepare("a", None)
    with mounted(s, "a", work, "m1") as m:
        os.makedirs(os.path.join(m, "etc/sub"))
        _write(os.path.join(m, "etc/keep"), "keep")
        _write(os.path.join(m, "etc/gone"), "gone")
        _write(os.path.join(m, "etc/sub/x"), "x")
    s.commit("l1", "a")
    assert s.stat("l1").kind == Kind.COMMITTED and s.stat("l1").parent is None
    _raises(NotFound, lambda: s.stat("a"))
    s.prepare("b", "l1")
    assert s.stat("b").kind == Kind.ACTIVE and s.stat("b").parent == "l1"
    with mounted(s, "b", work, "m2") as m:
        assert _read(os.path.join(m, "etc/keep")) == "keep"
        os.unlink(os.path.join(m, "etc/gone"))
        _write(os.path.join(m, "etc/new"), "new")
        _write(os.path.join(m, "etc/keep"), "changed")
    assert os.path.exists(os.path.join(s.upper_dir("b"), "etc/new"))
    s.commit("l2", "b")
    assert s.lower_dirs("l2") == [s.upper_dir("l1")]
    s.view("v", "l2")
    assert s.stat("v").kind == Kind.VIEW
    with mounted(s, "v", work, "m3") as m:
        assert sorted(os.listdir(os.path.join(m, "etc"))) == ["keep", "new", "sub"]
        assert _read(os.path.join(m, "etc/keep")) == "changed"
        try:
            _write(os.path.join(m, "etc/ro"), "no")
            raise AssertionError("a view must be read-only")
        except OSError as e:
            assert e.errno == errno.EROFS
    s.remove("v")
    s.prepare("c", "l2")
    assert s.lower_dirs("c") == [s.upper_dir("l2"), s.upper_dir("l1")]
    s.remove("c")
    s.remove("l2")
    s.remove("l1")
    assert s.list() == []


def case_errors(factory: Factory, root: str, work: str) -> None:
    s = factory(root)
    s.prepare("a", None)
    _raises(Conflict, lambda: s.prepare("a", None))
    _raises(NotFound, lambda: s.prepare("b", "missing"))
    _raises(InvalidParameter, lambda: s.prepare("b", "a"))  # parent not committed
    _raises(NotFound, lambda: s.mounts("missing"))
    _raises(NotFound, lambda: s.remove("missing"))
    _raises(NotFound, lambda: s.commit("x", "missing"))
    s.commit("l1", "a")
    _raises(InvalidParameter, lambda: s.commit("l9", "l1"))
    s.prepare("b", "l1")
    _raises(Conflict, lambda: s.commit("l1", "b"))
    _raises(Conflict, lambda: s.remove("l1"))  # has a child
    s.view("v", None)
    _raises(InvalidParameter, lambda: s.commit("l2", "v"))
    s.remove("v")
    s.remove("b")
    s.remove("l1")


def case_views(factory: Factory, root: str, work: str) -> None:
    s = factory(root)
    s.view("empty", None)
    with mounted(s, "empty", work, "e") as m:
        assert os.listdir(m) == []
    s.prepare("a", None)
    _write(os.path.join(s.upper_dir("a"), "f"), "1")
    s.commit("l1", "a")
    s.view("one", "l1")
    with mounted(s, "one", work, "o") as m:
        assert _read(os.path.join(m, "f")) == "1"
        assert not os.access(os.path.join(m, "f"), os.W_OK) or _is_ro(m)
    # a writable snapshot without parent is writable
    s.prepare("w", None)
    with mounted(s, "w", work, "w") as m:
        _write(os.path.join(m, "g"), "2")
    assert _read(os.path.join(s.upper_dir("w"), "g")) == "2"
    for k in ("empty", "one", "w", "l1"):
        s.remove(k)


def _is_ro(path: str) -> bool:
    return bool(os.statvfs(path).f_flag & os.ST_RDONLY)


def case_usage(factory: Factory, root: str, work: str) -> None:
    s = factory(root)
    s.prepare("a", None)
    assert s.usage("a") == 0
    with mounted(s, "a", work, "u") as m:
        _write(os.path.join(m, "f"), "x" * 5000)
        os.link(os.path.join(m, "f"), os.path.join(m, "hard"))
    assert s.usage("a") == 5000
    s.commit("l1", "a")
    assert s.usage("l1") == 5000
    s.remove("l1")


def case_deep_chain(factory: Factory, root: str, work: str) -> None:
    """150 layers: absolute lowerdir options exceed a page; the mount must still work."""
    s = factory(root)
    parent: str | None = None
    n = 150
    for i in range(n):
        s.prepare(f"tmp{i}", parent)
        _write(os.path.join(s.upper_dir(f"tmp{i}"), f"f{i}"), str(i))
        s.commit(f"layer{i}", f"tmp{i}")
        parent = f"layer{i}"
    s.prepare("top", parent)
    assert len(s.lower_dirs("top")) == n
    with mounted(s, "top", work, "deep") as m:
        assert len(os.listdir(m)) == n
        assert _read(os.path.join(m, "f0")) == "0"
        _write(os.path.join(m, "f0"), "new")
    assert _read(os.path.join(s.upper_dir("top"), "f0")) == "new"
    s.view("deepview", parent)
    with mounted(s, "deepview", work, "deepview") as m:
        assert _read(os.path.join(m, "f0")) == "0"
    s.remove("deepview")
    s.remove("top")
    for i in reversed(range(n)):
        s.remove(f"layer{i}")


def case_reopen(factory: Factory, root: str, work: str) -> None:
    s = factory(root)
    s.prepare("a", None)
    _write(os.path.join(s.upper_dir("a"), "f"), "1")
    s.commit("l1", "a")
    s.prepare("c", "l1")
    close = getattr(s, "close", None)
    if close:
        close()
    s2 = factory(root)
    assert s2.stat("l1").kind == Kind.COMMITTED
    assert s2.stat("c").parent == "l1"
    with mounted(s2, "c", work, "r") as m:
        assert _read(os.path.join(m, "f")) == "1"
    s2.prepare("d", "l1")  # a new snapshot does not reuse a directory
    assert s2.upper_dir("d") not in (s2.upper_dir("c"), s2.upper_dir("l1"))
    for k in ("d", "c", "l1"):
        s2.remove(k)


CASES: dict[str, Case] = {
    "layers_and_whiteouts": case_layers_and_whiteouts,
    "errors": case_errors,
    "views": case_views,
    "usage": case_usage,
    "deep_chain": case_deep_chain,
    "reopen": case_reopen,
}


def run_all(factory: Factory, base: str) -> None:
    for name, case in CASES.items():
        root = os.path.join(base, name, "root")
        work = os.path.join(base, name, "mnt")
        os.makedirs(root, exist_ok=True)
        os.makedirs(work, exist_ok=True)
        case(factory, root, work)
