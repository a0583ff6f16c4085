"""The conformance suite every storage driver passes (distribution's `driver/testsuites`, our own cases).

A test module runs it against a driver by subclassing `DriverSuite` under a `Test...` name and providing
`make_driver()` (a fresh, empty driver) and, if needed, `destroy_driver()`; pytest collects the `test_*`
methods. Plain asserts only, so the product package does not depend on pytest:

    class TestFilesystemDriver(DriverSuite):
        def make_driver(self) -> StorageDriver:
            self.tmp = tempfile.mkdtemp()
            return FilesystemDriver(self.tmp)

        def destroy_driver(self, driver: StorageDriver) -> None:
            shutil.rmtree(self.tmp)

`check_roundtrip` and `check_rejected` are the single-case checks a property test (hypothesis, over random
paths and contents) drives against the same factory.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from gorae.registry.storage.driver import (
    InvalidOffset,
    InvalidPath,
    PathNotFound,
    StorageDriver,
    StorageError,
)

INVALID_PATHS = [
    "",
    "a",
    "a/b",
    "/a/",
    "//a",
    "/a//b",
    "/a/../b",
    "/..",
    "/.",
    "/a/./b",
    "/a b",
    "/a\x00b",
    "/é",
    "/a\\b",
    "/a/b/",
]


def _raises(kind: type[BaseException], fn: Callable[..., Any], *args: Any) -> BaseException:
    try:
        fn(*args)
    except kind as e:
        return e
    raise AssertionError(f"{getattr(fn, '__name__', fn)}{args!r} did not raise {kind.__name__}")


def _read_all(driver: StorageDriver, path: str, offset: int = 0) -> bytes:
    r = driver.reader(path, offset)
    try:
        parts = []
        while chunk := r.read(65536):
            parts.append(chunk)
        return b"".join(parts)
    finally:
        r.close()


def check_roundtrip(driver: StorageDriver, path: str, content: bytes) -> None:
    """Put, get, stat, stream, list the parent and delete one file at `path`."""
    driver.put_content(path, content)
    assert driver.get_content(path) == content
    info = driver.stat(path)
    assert (info.path, info.size, info.is_dir) == (path, len(content), False)
    assert _read_all(driver, path) == content
    parent = path.rsplit("/", 1)[0] or "/"
    assert path in driver.list(parent)
    driver.delete(path)
    _raises(PathNotFound, driver.get_content, path)


def check_rejected(driver: StorageDriver, path: str) -> None:
    """An invalid path is refused by every operation with InvalidPath, and nothing is written."""
    before = [i.path for i in driver.walk("/")]
    ops: list[tuple[Callable[..., Any], tuple[Any, ...]]] = [
        (driver.put_content, (path, b"x")),
        (driver.get_content, (path,)),
        (driver.reader, (path, 0)),
        (driver.writer, (path, False)),
        (driver.delete, (path,)),
        (driver.move, (path, "/ok")),
        (driver.move, ("/ok", path)),
    ]
    for op, args in ops:
        _raises(InvalidPath, op, *args)
    assert [i.path for i in driver.walk("/")] == before


class DriverSuite:
    """The cases; subclasses supply the driver."""

    driver: StorageDriver

    def make_driver(self) -> StorageDriver:
        raise NotImplementedError

    def destroy_driver(self, driver: StorageDriver) -> None:
        """Remove whatever `make_driver` created (the driver's data included)."""

    def setup_method(self, method: object) -> None:
        self.driver = self.make_driver()

    def teardown_method(self, method: object) -> None:
        self.destroy_driver(self.driver)

    # -- whole files ------------------------------------------------------------------------------

    def test_put_get_roundtrip(self) -> None:
        check_roundtrip(self.driver, "/a/b/c", b"hello")
        check_roundtrip(self.driver, "/empty", b"")
        check_roundtrip(self.driver, "/x/" + "n" * 200, bytes(range(256)) * 4)

    def test_put_replaces(self) -> None:
        self.driver.put_content("/f", b"one, longer")
        self.driver.put_content("/f", b"two")
        assert self.driver.get_content("/f") == b"two"

    def test_large_content(self) -> None:
        data = os.urandom(3 * 1024 * 1024 + 17)
        self.driver.put_content("/big/blob", data)
        assert self.driver.get_content("/big/blob") == data
        assert self.driver.stat("/big/blob").size == len(data)

    def test_missing_is_path_not_found(self) -> None:
        ops: list[tuple[Callable[..., Any], tuple[Any, ...]]] = [
            (self.driver.get_content, ("/nope",)),
            (self.driver.reader, ("/nope", 0)),
            (self.driver.stat, ("/nope",)),
            (self.driver.list, ("/nope",)),
            (self.driver.delete, ("/nope",)),
            (self.driver.move, ("/nope", "/other")),
            (self.driver.walk, ("/nope",)),
        ]
        for op, args in ops:
            e = _raises(PathNotFound, op, *args)
            assert isinstance(e, StorageError) and e.path == "/nope"

    def test_invalid_paths_are_refused(self) -> None:
        self.driver.put_content("/ok", b"ok")
        for path in INVALID_PATHS:
            check_rejected(self.driver, path)
        _raises(InvalidPath, self.driver.get_content, "/")
        _raises(InvalidPath, self.driver.put_content, "/", b"")

    def test_directory_is_not_content(self) -> None:
        self.driver.put_content("/d/f", b"x")
        _raises(PathNotFound, self.driver.get_content, "/d")
        info = self.driver.stat("/d")
        assert info.is_dir and info.path == "/d"

    # -- streams ----------------------------------------------------------------------------------

    def test_reader_offsets(self) -> None:
        data = bytes(range(256)) * 1000
        self.driver.put_content("/r", data)
        assert _read_all(self.driver, "/r") == data
        assert _read_all(self.driver, "/r", 1000) == data[1000:]
        assert _read_all(self.driver, "/r", len(data)) == b""
        e = _raises(InvalidOffset, self.driver.reader, "/r", len(data) + 1)
        assert isinstance(e, InvalidOffset) and e.offset == len(data) + 1
        _raises(InvalidOffset, self.driver.reader, "/r", -1)

    def test_writer_commit(self) -> None:
        w = self.driver.writer("/up/data")
        assert w.size == 0
        for i in range(64):
            w.write(bytes([i]) * 16384)
        assert w.size == 64 * 16384
        w.commit()
        w.close()
        assert self.driver.get_content("/up/data") == b"".join(bytes([i]) * 16384 for i in range(64))

    def test_writer_resumes_across_writers(self) -> None:
        w = self.driver.writer("/up/data")
        w.write(b"first ")
        w.close()  # the request ends; the upload goes on in another
        w = self.driver.writer("/up/data", append=True)
        assert w.size == 6
        w.write(b"second ")
        w.close()
        w = self.driver.writer("/up/data", append=True)
        assert w.size == 13
        w.write(b"third")
        assert w.size == 18
        w.commit()
        assert self.driver.get_content("/up/data") == b"first second third"
        assert self.driver.stat("/up/data").size == 18

    def test_closed_writer_is_a_file_between_requests(self) -> None:
        """What the registry does with an upload between its requests: a closed (not committed) writer's
        bytes can be stat'ed, read from an offset and moved into place, by this or another driver instance."""
        w = self.driver.writer("/u/1/data")
        assert w.size == 0
        w.close()
        assert self.driver.stat("/u/1/data").size == 0  # an upload just started
        assert _read_all(self.driver, "/u/1/data") == b""
        w = self.driver.writer("/u/1/data", append=True)
        w.write(b"chunk one;")
        w.close()
        info = self.driver.stat("/u/1/data")
        assert (info.size, info.is_dir) == (10, False)
        w = self.driver.writer("/u/1/data", append=True)
        w.write(b"chunk two")
        w.close()
        assert _read_all(self.driver, "/u/1/data", 6) == b"one;chunk two"
        self.driver.move("/u/1/data", "/blobs/x/data")
        assert self.driver.get_content("/blobs/x/data") == b"chunk one;chunk two"
        _raises(PathNotFound, self.driver.stat, "/u/1/data")

    def test_writer_without_append_starts_over(self) -> None:
        self.driver.put_content("/up/data", b"old content")
        w = self.driver.writer("/up/data", append=False)
        assert w.size == 0
        w.write(b"new")
        w.commit()
        assert self.driver.get_content("/up/data") == b"new"

    def test_writer_append_to_nothing_starts_empty(self) -> None:
        w = self.driver.writer("/fresh/data", append=True)
        assert w.size == 0
        w.write(b"abc")
        w.commit()
        assert self.driver.get_content("/fresh/data") == b"abc"

    def test_writer_cancel_removes(self) -> None:
        w = self.driver.writer("/up/data")
        w.write(b"abandoned")
        w.cancel()
        _raises(PathNotFound, self.driver.get_content, "/up/data")
        _raises(StorageError, w.write, b"more")

    def test_writer_after_commit_refuses(self) -> None:
        w = self.driver.writer("/w")
        w.write(b"x")
        w.commit()
        _raises(StorageError, w.write, b"y")
        assert self.driver.get_content("/w") == b"x"

    # -- the tree ---------------------------------------------------------------------------------

    def test_stat(self) -> None:
        before = time.time()
        self.driver.put_content("/s/file", b"12345")
        info = self.driver.stat("/s/file")
        assert (info.size, info.is_dir) == (5, False)
        assert before - 5 <= info.mtime <= time.time() + 5
        assert self.driver.stat("/s").is_dir

    def test_list_direct_children(self) -> None:
        assert self.driver.list("/") == []
        for p in ["/l/a", "/l/b/c", "/l/b/d/e", "/l/c", "/lx/a"]:
            self.driver.put_content(p, b"")
        assert self.driver.list("/l") == ["/l/a", "/l/b", "/l/c"]
        assert self.driver.list("/l/b") == ["/l/b/c", "/l/b/d"]
        assert self.driver.list("/") == ["/l", "/lx"]
        _raises(PathNotFound, self.driver.list, "/l/a")  # a file, not a directory

    def test_move(self) -> None:
        self.driver.put_content("/m/src", b"moved")
        self.driver.put_content("/m/dst", b"replaced")
        self.driver.move("/m/src", "/m/dst")
        assert self.driver.get_content("/m/dst") == b"moved"
        _raises(PathNotFound, self.driver.get_content, "/m/src")
        self.driver.move("/m/dst", "/n/deep/er/dst")
        assert self.driver.get_content("/n/deep/er/dst") == b"moved"

    def test_delete_recursive_and_exact(self) -> None:
        for p in ["/d/a/1", "/d/a/2/3", "/d/ab", "/d/b"]:
            self.driver.put_content(p, p.encode())
        self.driver.delete("/d/a")
        _raises(PathNotFound, self.driver.stat, "/d/a")
        _raises(PathNotFound, self.driver.get_content, "/d/a/2/3")
        # a sibling sharing the prefix survives (key-prefix backends must not delete /d/ab)
        assert self.driver.get_content("/d/ab") == b"/d/ab"
        self.driver.delete("/d/b")
        assert self.driver.list("/d") == ["/d/ab"]

    def test_walk(self) -> None:
        for p in ["/w/b/x", "/w/a", "/w/b/y/z"]:
            self.driver.put_content(p, b"12")
        got = [(i.path, i.is_dir, i.size) for i in self.driver.walk("/w")]
        assert got == [
            ("/w/a", False, 2),
            ("/w/b", True, 0),
            ("/w/b/x", False, 2),
            ("/w/b/y", True, 0),
            ("/w/b/y/z", False, 2),
        ]
        assert [i.path for i in self.driver.walk("/")][:1] == ["/w"]

    def test_put_content_is_atomic(self) -> None:
        """Readers racing a writer see one whole version or the other, never a mix or a truncation."""
        a, b = b"a" * (1 << 20), b"b" * (1 << 19)
        self.driver.put_content("/atomic", a)
        stop = threading.Event()
        bad: list[int] = []

        def read() -> None:
            while not stop.is_set():
                got = self.driver.get_content("/atomic")
                if got not in (a, b):
                    bad.append(len(got))

        readers = [threading.Thread(target=read) for _ in range(2)]
        for t in readers:
            t.start()
        try:
            for i in range(30):
                self.driver.put_content("/atomic", a if i % 2 else b)
        finally:
            stop.set()
            for t in readers:
                t.join()
        assert bad == []

    def test_local_path_has_the_bytes(self) -> None:
        self.driver.put_content("/lp/data", b"zero copy")
        local = self.driver.local_path("/lp/data")
        if local is not None:
            with open(local, "rb") as f:
                assert f.read() == b"zero copy"
