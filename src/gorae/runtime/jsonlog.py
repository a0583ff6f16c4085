"""docker's json-file log storage: the line format, the rotating writer and the reader across rotated files.

A line is `{"log":"hi\\n","stream":"stdout","time":"2026-12-06T07:16:16.61792921Z"}` (Go's RFC3339Nano: trailing
zeros of the fraction dropped; an entry without a
trailing newline in "log" is a partial line), escaped as dockerd's encoder does (`<`, `>`, `&`, U+2028/9 and
control characters as \\u escapes; invalid UTF-8 as U+FFFD). The writer rotates as dockerd's LogFile does:
before a write, a file that reached `max_size` is rotated — with `max_file` < 2 it is truncated, else it
becomes `.1` (`.1.gz` with `compress`), the older ones shift up, and the oldest beyond `max_file` goes; so a
container never keeps much more than `max_size × max_file`. The reader reads the rotated files oldest first,
then the current one, and the follower goes on across rotations. The `local` driver stores its log in the
same format (its path is not shown to users). Never touches conmon or the container.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import BinaryIO

from gorae.runtime.logs import (
    STDERR,
    STDOUT,
    ExitWatch,
    LogFilter,
    LogRecord,
    now_ns,
    parse_time_ns,
    tail_of,
    to_ns,
)
from gorae.timefmt import rfc3339nano

_STREAM_NAMES = {STDOUT: "stdout", STDERR: "stderr"}
_STREAM_IDS = {"stdout": STDOUT, "stderr": STDERR}

_ESCAPES = {i: f"\\u{i:04x}" for i in range(0x20)}
_ESCAPES.update(
    {
        ord("\n"): "\\n",
        ord("\r"): "\\r",
        ord("\t"): "\\t",
        ord('"'): '\\"',
        ord("\\"): "\\\\",
        ord("<"): "\\u003c",
        ord(">"): "\\u003e",
        ord("&"): "\\u0026",
        0x2028: "\\u2028",
        0x2029: "\\u2029",
    }
)


def _quote(s: str) -> str:
    return '"' + s.translate(_ESCAPES) + '"'


def encode_attrs(attrs: dict[str, str] | None) -> str:
    """The `"attrs":{...},` part of a line (keys sorted, as Go encodes a map); "" without attrs."""
    if not attrs:
        return ""
    return '"attrs":{' + ",".join(f"{_quote(k)}:{_quote(v)}" for k, v in sorted(attrs.items())) + "},"


def encode_entry(rec: LogRecord, attrs: str = "") -> bytes:
    """One json-file line (with its newline) as dockerd writes it; `attrs` from `encode_attrs`."""
    text = _quote(rec.data.decode("utf-8", "replace"))
    stream = _STREAM_NAMES.get(rec.stream, "stdout")
    return f'{{"log":{text},"stream":"{stream}",{attrs}"time":"{rfc3339nano(rec.time_ns)}"}}\n'.encode()


def _details(attrs: object) -> bytes:
    """An entry's attrs as dockerd's `logs --details` prints them: sorted `k=v` pairs, both query-escaped
    (Go's url.QueryEscape), joined by commas."""
    from urllib.parse import quote_plus

    if not isinstance(attrs, dict):
        return b""
    pairs = (f"{quote_plus(str(k), safe='~')}={quote_plus(str(v), safe='~')}" for k, v in sorted(attrs.items()))
    return ",".join(pairs).encode()


def decode_entry(line: bytes) -> LogRecord | None:
    """A json-file line back to a record; None for a line that is not one (torn or foreign)."""
    try:
        doc = json.loads(line)
        stream = _STREAM_IDS[doc["stream"]]
        data = str(doc["log"]).encode("utf-8", "surrogateescape")
        attrs = doc.get("attrs")
        return LogRecord(stream, parse_time_ns(doc["time"]), data, _details(attrs) if attrs else b"")
    except (ValueError, KeyError, TypeError):
        return None


def rotated_paths(path: str) -> list[str]:
    """The rotated files of the log at `path` that exist, oldest first (`path.N[.gz]` ... `path.1[.gz]`)."""
    found: list[tuple[int, str]] = []
    directory, base = os.path.split(path)
    try:
        names = os.listdir(directory or ".")
    except FileNotFoundError:
        return []
    for name in names:
        if not name.startswith(base + "."):
            continue
        suffix = name[len(base) + 1 :]
        if suffix.endswith(".gz"):
            suffix = suffix[:-3]
        if suffix.isdigit():
            found.append((int(suffix), os.path.join(directory, name)))
    return [p for _, p in sorted(found, reverse=True)]


class RotatingWriter:
    """Appends json-file lines to `path`, rotating as dockerd does (see the module docstring)."""

    def __init__(
        self,
        path: str,
        *,
        max_size: int = -1,
        max_file: int = 1,
        compress: bool = False,
        attrs: dict[str, str] | None = None,
    ) -> None:
        self.path = path
        self._attrs = encode_attrs(attrs)
        self.max_size = max_size
        self.max_file = max(1, max_file)
        self.compress = compress
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self._f = open(path, "ab")  # noqa: SIM115 - held open for the container's life
        os.chmod(path, 0o640)
        self.size = self._f.tell()

    def write(self, rec: LogRecord) -> None:
        line = encode_entry(rec, self._attrs)
        if 0 < self.max_size <= self.size:
            self._rotate()
        self._f.write(line)
        self.size += len(line)

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        self._f.close()

    def _rotate(self) -> None:
        self._f.flush()
        if self.max_file < 2:
            self._f.truncate(0)
            self._f.seek(0)
            self.size = 0
            return
        ext = ".gz" if self.compress else ""
        for n in range(self.max_file - 1, 0, -1):  # the oldest goes, the others move up one
            for e in (".gz", ""):
                src = f"{self.path}.{n}{e}"
                if not os.path.exists(src):
                    continue
                if n == self.max_file - 1:
                    os.unlink(src)
                else:
                    os.replace(src, f"{self.path}.{n + 1}{e}")
        self._f.close()
        os.replace(self.path, f"{self.path}.1")
        if ext:
            with open(f"{self.path}.1", "rb") as src_f, gzip.open(f"{self.path}.1.gz.tmp", "wb") as dst:
                shutil.copyfileobj(src_f, dst)
            os.replace(f"{self.path}.1.gz.tmp", f"{self.path}.1.gz")
            os.unlink(f"{self.path}.1")
        self._f = open(self.path, "ab")  # noqa: SIM115
        os.chmod(self.path, 0o640)
        self.size = 0


def _file_records(path: str) -> Iterator[LogRecord]:
    try:
        f = open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        return
    with f:
        yield from _raw_records(path, f)


def records(path: str) -> Iterator[LogRecord]:
    """Every entry of the log at `path`, the rotated files first."""
    for p in [*rotated_paths(path), path]:
        yield from _file_records(p)


def read_log(
    path: str,
    *,
    stdout: bool = True,
    stderr: bool = True,
    since: float | int | str | None = None,
    until: float | int | str | None = None,
    tail: int | None = None,
    timestamps: bool = False,
    details: bool = False,
) -> Iterator[tuple[int, bytes]]:
    """(stream, bytes) chunks of a json-file log so far, with docker's filters (`tail` counts entries)."""
    flt = LogFilter(stdout, stderr, to_ns(since), to_ns(until), timestamps, details)
    for rec in tail_of((r for r in records(path) if flt.keep(r)), tail):
        yield flt.render(rec)


class _Chain:
    """The rotated files and the current one, opened together so that a rotation in between cannot make the
    follower read a file twice or skip one: every file is opened, then each path is checked to still hold
    the file opened from it; if a rotation moved them, all are opened again."""

    def __init__(self, path: str) -> None:
        self.path = path

    def open(self) -> list[tuple[str, BinaryIO]] | None:
        """(path, raw file) oldest first, the current file last; None while the current file does not exist."""
        for _ in range(100):
            opened: list[tuple[str, BinaryIO]] = []
            consistent = True
            for p in [*rotated_paths(self.path), self.path]:
                try:
                    opened.append((p, open(p, "rb")))  # noqa: SIM115 - closed by the caller
                except FileNotFoundError:
                    consistent = False
                    break
            if consistent:
                consistent = all(_same_file(p, f) for p, f in opened)
            if consistent:
                return opened
            for _, f in opened:
                f.close()
            if not os.path.exists(self.path):
                return None
        return None


def _same_file(path: str, f: BinaryIO) -> bool:
    try:
        cur = os.stat(path)
    except FileNotFoundError:
        return False
    st = os.fstat(f.fileno())
    return (cur.st_ino, cur.st_dev) == (st.st_ino, st.st_dev)


def _raw_records(path: str, f: BinaryIO) -> Iterator[LogRecord]:
    """The complete entries of an already opened rotated file (gzip-compressed when its name says so)."""
    stream: BinaryIO = gzip.GzipFile(fileobj=f, mode="rb") if path.endswith(".gz") else f  # type: ignore[assignment]
    try:
        for raw in stream:
            if not raw.endswith(b"\n"):
                break
            rec = decode_entry(raw)
            if rec is not None:
                yield rec
    except (OSError, EOFError):  # a compressed file cut short
        return


async def follow_log(
    path: str,
    *,
    stdout: bool = True,
    stderr: bool = True,
    since: float | int | str | None = None,
    until: float | int | str | None = None,
    tail: int | None = None,
    timestamps: bool = False,
    details: bool = False,
    exited: Callable[[], bool] | Awaitable[object] | None = None,
    poll_interval: float = 0.05,
) -> AsyncIterator[tuple[int, bytes]]:
    """read_log, then new entries (across rotations) until `exited` says the writer is done for good.

    After the current file is rotated away, it is read to its end (the writer closes it before renaming),
    then the files rotated after it, oldest first, then the new current one: a follower that lags several
    rotations behind loses nothing still on disk."""
    flt = LogFilter(stdout, stderr, to_ns(since), to_ns(until), timestamps, details)
    watch = ExitWatch(exited)
    chain = _Chain(path)
    f: BinaryIO | None = None
    try:
        opened = chain.open()
        while opened is None:
            if watch.done():
                return
            await asyncio.sleep(poll_interval)
            opened = chain.open()
        # history: rotated files, then the current one up to where it is now
        history: list[LogRecord] = []
        for p, rf in opened[:-1]:
            with rf:
                history.extend(r for r in _raw_records(p, rf) if flt.keep(r))
        f = opened[-1][1]
        *lines, buf = f.read().split(b"\n")
        for raw in lines:
            rec = decode_entry(raw)
            if rec is not None and flt.keep(rec):
                history.append(rec)
        for rec in tail_of(history, tail):
            yield flt.render(rec)
        if flt.until_ns and flt.until_ns < now_ns():
            return
        while True:
            done = watch.done()
            chunk = f.read()
            if chunk:
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for raw in lines:
                    rec = decode_entry(raw)
                    if rec is None:
                        continue
                    if flt.until_ns and rec.time_ns > flt.until_ns:
                        return
                    if flt.keep(rec):
                        yield flt.render(rec)
                continue
            if _rotated_away(f, path):
                last = buf + f.read()  # what was written between the empty read and the rotation
                old, f = f, None
                missed, f = await asyncio.to_thread(_successors, chain, old)
                buf = b""
                for rec in [*filter(None, map(decode_entry, last.split(b"\n"))), *missed]:
                    if flt.until_ns and rec.time_ns > flt.until_ns:
                        return
                    if flt.keep(rec):
                        yield flt.render(rec)
                if f is None:
                    return
                continue
            if done:
                return
            await watch.pause(poll_interval)
    finally:
        if f is not None:
            f.close()
        watch.close()


def _successors(chain: _Chain, old: BinaryIO) -> tuple[list[LogRecord], BinaryIO | None]:
    """After `old` (the current file, read to its end) was rotated away: the entries of the files rotated
    after it, oldest first, and the new current file, opened. When `old` is not among the rotated files any
    more (compressed into a new file, or already removed), only the new current file."""
    st = os.fstat(old.fileno())
    ident = (st.st_ino, st.st_dev)
    old.close()
    opened = chain.open()
    if opened is None:
        return [], None
    missed: list[LogRecord] = []
    try:
        idents = [(os.fstat(rf.fileno()).st_ino, os.fstat(rf.fileno()).st_dev) for _, rf in opened]
        start = idents.index(ident) + 1 if ident in idents else len(opened) - 1
        for p, rf in opened[start:-1]:
            missed.extend(_raw_records(p, rf))
    finally:
        for _, rf in opened[:-1]:
            rf.close()
    return missed, opened[-1][1]


def _rotated_away(f: object, path: str) -> bool:
    """The open file is no longer the one at `path` (renamed to .1) or was truncated under us."""
    fileno = getattr(f, "fileno", None)
    if fileno is None:
        return False
    st = os.fstat(fileno())
    try:
        cur = os.stat(path)
    except FileNotFoundError:
        return False
    if (cur.st_ino, cur.st_dev) != (st.st_ino, st.st_dev):
        return True
    tell = getattr(f, "tell", None)
    return tell is not None and st.st_size < tell()
