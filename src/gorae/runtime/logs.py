"""Reading and following conmon's k8s-file container logs for `docker logs`.

A log line is `<RFC3339Nano time> <stdout|stderr> <F|P> <data>\\n`; P marks a partial line whose
continuation follows (conmon splits long or newline-less writes). This module returns the bytes per
stream exactly as the container wrote them (partials joined, no newline added after a partial at
end of output), with Docker's since/until/tail/timestamps filters. Never writes the log.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from gorae.timefmt import rfc3339nano_fixed

STDOUT = 1
STDERR = 2
_STREAMS = {b"stdout": STDOUT, b"stderr": STDERR}


@dataclass
class LogRecord:
    """One logical line: consecutive P entries of a stream plus the closing F entry."""

    stream: int
    time_ns: int
    data: bytes  # ends with b"\n" unless the line is still partial
    attrs: bytes = b""  # the entry's extra attributes as `logs --details` shows them: b"k=v,k2=v2"


def parse_time_ns(ts: bytes | str) -> int:
    """ "2026-11-28T02:03:49.123456789+00:00" (or ...Z) -> Unix ns."""
    s = ts.decode() if isinstance(ts, bytes) else ts
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    frac = 0
    if "." in s:
        head, rest = s.split(".", 1)
        i = 0
        while i < len(rest) and rest[i].isdigit():
            i += 1
        digits, tz = rest[:i], rest[i:]
        frac = int((digits + "000000000")[:9])
        s = head + tz
    dt = datetime.fromisoformat(s)
    return int(dt.timestamp()) * 10**9 + frac


format_time = rfc3339nano_fixed  # docker's log timestamps: 2026-11-28T02:03:49.123456789Z


def _parse_line(line: bytes) -> tuple[int, int, bool, bytes] | None:
    """(stream, time_ns, partial, data) of one k8s-file line (without its newline)."""
    parts = line.split(b" ", 3)
    if len(parts) < 3:
        return None
    stream = _STREAMS.get(parts[1])
    if stream is None:
        return None
    try:
        t = parse_time_ns(parts[0])
    except ValueError:
        return None
    data = parts[3] if len(parts) == 4 else b""
    return stream, t, parts[2] == b"P", data


def parse_k8s_line(line: bytes) -> LogRecord | None:
    """One k8s-file entry as a record: a full line keeps its newline, a partial one (P) has none."""
    parsed = _parse_line(line)
    if parsed is None:
        return None
    stream, t, partial, data = parsed
    return LogRecord(stream, t, data if partial else data + b"\n")


class _Assembler:
    """Joins partial entries per stream into LogRecords."""

    def __init__(self) -> None:
        self.pending: dict[int, LogRecord] = {}

    def feed(self, line: bytes) -> LogRecord | None:
        parsed = _parse_line(line)
        if parsed is None:
            return None
        stream, t, partial, data = parsed
        rec = self.pending.pop(stream, None)
        if rec is None:
            rec = LogRecord(stream, t, b"")
        rec.data += data
        if partial:
            self.pending[stream] = rec
            return None
        rec.data += b"\n"
        return rec

    def flush(self) -> list[LogRecord]:
        out = sorted(self.pending.values(), key=lambda r: r.time_ns)
        self.pending.clear()
        return out


@dataclass
class LogFilter:
    stdout: bool = True
    stderr: bool = True
    since_ns: int = 0  # keep records at or after this time (0 = all)
    until_ns: int = 0  # keep records at or before this time (0 = no bound)
    timestamps: bool = False
    details: bool = False  # each line after its attributes and a space (dockerd's `details`)

    def keep(self, rec: LogRecord) -> bool:
        if rec.stream == STDOUT and not self.stdout:
            return False
        if rec.stream == STDERR and not self.stderr:
            return False
        if self.since_ns and rec.time_ns < self.since_ns:
            return False
        if self.until_ns and rec.time_ns > self.until_ns:
            return False
        return True

    def render(self, rec: LogRecord) -> tuple[int, bytes]:
        data = rec.attrs + b" " + rec.data if self.details else rec.data
        if self.timestamps:
            return rec.stream, format_time(rec.time_ns).encode() + b" " + data
        return rec.stream, data


def to_ns(t: float | int | str | None) -> int:
    """Docker API since/until ("1700000000", "1700000000.123456789", float seconds) -> ns."""
    if t is None or t == "" or t == 0:
        return 0
    if isinstance(t, str):
        sec, _, frac = t.partition(".")
        return int(sec) * 10**9 + int((frac + "000000000")[:9] if frac else 0)
    return int(round(float(t) * 10**9))


def _records(path: str) -> Iterator[LogRecord]:
    asm = _Assembler()
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return
    with f:
        for raw in f:
            if not raw.endswith(b"\n"):
                break  # being written; the follower picks it up
            rec = asm.feed(raw[:-1])
            if rec is not None:
                yield rec
    yield from asm.flush()


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
    """(stream, bytes) chunks of the log so far; stream is 1 (stdout) or 2 (stderr).
    `tail` counts lines of both streams, as dockerd does; None or negative means all."""
    flt = LogFilter(stdout, stderr, to_ns(since), to_ns(until), timestamps, details)
    for rec in tail_of(_records(path), tail):
        if flt.keep(rec):
            yield flt.render(rec)


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
    poll_interval: float = 0.1,
) -> AsyncIterator[tuple[int, bytes]]:
    """Like read_log, then keeps yielding new output until `exited` (a predicate, or an awaitable
    that completes when the container exits) says the container is gone, then drains the rest.
    Live output is passed on per log entry: a partial line's chunks arrive as they are written
    (with `timestamps`, each chunk carries its own time, like dockerd's json-file)."""
    flt = LogFilter(stdout, stderr, to_ns(since), to_ns(until), timestamps, details)
    asm = _Assembler()
    watch = ExitWatch(exited)
    while not os.path.exists(path) and not watch.done():
        await asyncio.sleep(poll_interval)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return
    try:
        # history, with tail
        history: list[LogRecord] = []
        buf = b""
        data = f.read()
        lines = data.split(b"\n")
        buf = lines.pop()  # incomplete last line (or b"")
        for raw in lines:
            rec = asm.feed(raw)
            if rec is not None:
                history.append(rec)
        for rec in tail_of(history, tail):
            if flt.keep(rec):
                yield flt.render(rec)
        if flt.until_ns and flt.until_ns < now_ns():
            return
        # live: a partial line already written is passed on now, not when its line completes
        for rec in asm.flush():
            if flt.keep(rec):
                yield flt.render(rec)
        while True:
            done = watch.done()
            chunk = f.read()
            if chunk:
                buf += chunk
                *complete, buf = buf.split(b"\n")
                for raw in complete:
                    parsed = _parse_line(raw)
                    if parsed is None:
                        continue
                    stream, t, partial, data = parsed
                    rec = LogRecord(stream, t, data if partial else data + b"\n")
                    if flt.until_ns and rec.time_ns > flt.until_ns:
                        return
                    if flt.keep(rec):
                        yield flt.render(rec)
                continue
            if done:
                return
            await watch.pause(poll_interval)
    finally:
        f.close()
        watch.close()


def now_ns() -> int:
    return time.time_ns()


class ExitWatch:
    """Whether a log's writer is done for good, for the followers of both log formats: `exited` is a
    predicate, or an awaitable that completes when the container exits (None: never done)."""

    def __init__(self, exited: Callable[[], bool] | Awaitable[object] | None) -> None:
        self._exited = exited
        self._task: asyncio.Future[object] | None = None
        if exited is not None and not callable(exited):
            self._task = asyncio.ensure_future(exited)

    def done(self) -> bool:
        if self._task is not None:
            return self._task.done()
        if callable(self._exited):
            return bool(self._exited())
        return False

    async def pause(self, seconds: float) -> None:
        """Wait `seconds`, or less when the awaitable completes first."""
        if self._task is None:
            await asyncio.sleep(seconds)
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), seconds)
        except TimeoutError:
            pass

    def close(self) -> None:
        """Cancel the task made from a bare coroutine (an awaitable the caller passed is left alone)."""
        if self._task is not None and not self._task.done() and self._task is not self._exited:
            self._task.cancel()


def tail_of(records: Iterable[LogRecord], tail: int | None) -> Iterable[LogRecord]:
    """The last `tail` records (None or negative: all of them), as `docker logs --tail`."""
    if tail is not None and tail >= 0:
        return deque(records, maxlen=tail) if tail > 0 else deque()
    return records
