"""`LogShipper`: moves a container's output from conmon's spool to its logging driver.

conmon writes the container's stdout/stderr to a k8s-file spool (`ctr.log`). What the shipper has shipped
is punched out of the file (fallocate PUNCH_HOLE: the file keeps its length, its blocks are freed), so a
running container's spool holds on disk only what is not shipped yet, with no race against conmon's
appends. `--log-size-max` (64 MiB) bounds it while no daemon ships: when full, conmon replaces the file with
an empty one. The shipper tails the spool — across those replacements, by finishing the old file through
the descriptor it holds before opening the new one (a file replaced twice within one poll is lost) — and
hands each line to the driver's sink with the time conmon stamped on it. conmon cuts lines at its buffer's
edge; those pieces are joined again, so a line is one entry as with dockerd, whose copier passes a line on
in pieces only past 16 KiB or when the container ends without a final newline.
Its position (inode and offset) is saved next to the spool after every batch, so a restarted daemon
(live restore) carries on where the last one stopped; what conmon wrote while no daemon ran is shipped
then, except output that overflowed the spool more than once meanwhile (bounded disk use wins over it).
`finish` (the container exited: conmon wrote everything) ships the rest and removes the spool;
`detach` (the daemon stops) ships the rest and keeps the spool and position. File work runs in a worker
thread; the loop polls between 20 ms (busy) and 250 ms (idle). Never interprets the driver's options.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import json
import logging
import os
import threading
from typing import BinaryIO

from gorae.runtime.logdrivers import LogSink
from gorae.runtime.logs import LogRecord, parse_k8s_line

log = logging.getLogger("gorae.logs")

SPOOL_MAX = 64 * 1024 * 1024  # conmon's --log-size-max for the spool (what is shipped is punched out)
PUNCH_STEP = 64 * 1024  # free shipped bytes once this many have gathered
LINE_MAX = 16 * 1024  # dockerd's copier buffer: longer lines go on in partial pieces
BUSY_POLL = 0.02
IDLE_POLL = 0.25


_FALLOC_PUNCH = 0x01 | 0x02  # FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE
_libc: ctypes.CDLL | None = None


KEEP_HEAD = 4096  # the first page stays: its first bytes tell this file from a later one on the same inode


def punch_hole(fd: int, start: int, end: int) -> bool:
    """Free the blocks of bytes [start, end) of a file, keeping its size (False where unsupported)."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    return bool(end > start and _libc.fallocate(fd, _FALLOC_PUNCH, start, end - start) == 0)


class SpoolReader:
    """Reads the k8s-file spool incrementally (blocking calls; one thread at a time)."""

    def __init__(self, spool: str, position_path: str) -> None:
        self.spool = spool
        self.position_path = position_path
        self._f: BinaryIO | None = None
        self._buf = b""
        self._pending: dict[int, LogRecord] = {}  # per stream: a line begun, not yet ended
        self._punched = 0

    def _open(self) -> bool:
        try:
            f = open(self.spool, "r+b")  # noqa: SIM115 - held across calls; writable for punch_hole
        except FileNotFoundError:
            return False
        ino = os.fstat(f.fileno()).st_ino
        try:
            with open(self.position_path, encoding="utf-8") as pf:
                pos = json.load(pf)
            # the same file: its inode (numbers are reused once a replaced spool is gone) and its first bytes
            if int(pos.get("ino", -1)) == ino and pos.get("head") == _head(f):
                f.seek(int(pos.get("off", 0)))
                for stream, (t, data) in (pos.get("pending") or {}).items():
                    self._pending[int(stream)] = LogRecord(int(stream), int(t), base64.b64decode(data))
        except (OSError, ValueError, AttributeError, TypeError):
            pass
        self._f, self._buf = f, b""
        return True

    def pending(self) -> bool:
        """Cheap check (one stat): whether the spool may have entries not read yet."""
        if self._f is None:
            return os.path.exists(self.spool)
        try:
            st = os.stat(self.spool)
        except FileNotFoundError:
            return False
        fst = os.fstat(self._f.fileno())
        return st.st_ino != fst.st_ino or fst.st_size > self._f.tell()

    def read(self) -> list[LogRecord]:
        """Every complete entry written since the last call, in order."""
        if self._f is None and not self._open():
            return []
        assert self._f is not None
        out: list[LogRecord] = []
        replaced = False  # the spool's name points at a newer file: ours is complete once read to its end
        while True:
            data = self._f.read(1 << 20)
            if data:
                self._buf += data
                *lines, self._buf = self._buf.split(b"\n")
                for line in lines:
                    rec = parse_k8s_line(line)
                    if rec is not None:
                        self._join(rec, out)
                continue
            try:
                st = os.stat(self.spool)
            except FileNotFoundError:
                break
            if st.st_ino != os.fstat(self._f.fileno()).st_ino:
                if not replaced:  # conmon closes the old file before the rename: read what came meanwhile
                    replaced = True
                    continue
                replaced = False
                self._f.close()
                self._f = None
                try:
                    self._f = open(self.spool, "r+b")  # noqa: SIM115
                except FileNotFoundError:
                    break
                self._buf = b""
                self._punched = 0
                continue
            break
        return out

    def _join(self, rec: LogRecord, out: list[LogRecord]) -> None:
        held = self._pending.pop(rec.stream, None)
        if held is not None:
            rec = LogRecord(rec.stream, held.time_ns, held.data + rec.data)
        if rec.data.endswith(b"\n"):
            out.append(rec)
        elif len(rec.data) >= LINE_MAX:
            out.append(LogRecord(rec.stream, rec.time_ns, rec.data[:LINE_MAX]))
            if len(rec.data) > LINE_MAX:
                self._pending[rec.stream] = LogRecord(rec.stream, rec.time_ns, rec.data[LINE_MAX:])
        else:
            self._pending[rec.stream] = rec

    def flush_pending(self) -> list[LogRecord]:
        """The lines begun but not ended (the container is gone): partial entries, oldest first."""
        out = sorted(self._pending.values(), key=lambda r: r.time_ns)
        self._pending.clear()
        return out

    def save(self) -> None:
        if self._f is None:
            return
        pos: dict[str, object] = {
            "ino": os.fstat(self._f.fileno()).st_ino,
            "off": self._f.tell() - len(self._buf),
            "head": _head(self._f),
            "pending": {
                str(s): [r.time_ns, base64.b64encode(r.data).decode()] for s, r in self._pending.items()
            },
        }
        tmp = self.position_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(pos, f)
        os.replace(tmp, self.position_path)
        # the position (with any line still being joined) is on disk: the bytes before it are not needed again
        shipped = self._f.tell() - len(self._buf)
        shipped -= shipped % 4096
        if shipped - max(self._punched, KEEP_HEAD) >= PUNCH_STEP and punch_hole(
            self._f.fileno(), KEEP_HEAD, shipped
        ):
            self._punched = shipped

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


def _head(f: BinaryIO) -> str:
    """The first bytes of a spool (its first entry's timestamp): tells a file from a later one on the inode."""
    return base64.b64encode(os.pread(f.fileno(), 48, 0)).decode()


class LogShipper:
    def __init__(self, spool: str, sink: LogSink | None) -> None:
        self.spool = spool
        self.sink = sink
        self.reader = SpoolReader(spool, spool + ".pos")
        self._lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    def pump(self, *, final: bool = False) -> int:
        """Ship what the spool holds now (blocking); how many entries. `final`: lines never ended too."""
        with self._lock:
            if self._closed:
                return 0
            recs = self.reader.read()
            if final:
                recs += self.reader.flush_pending()
            if not recs:
                self.reader.save()
                return 0
            if self.sink is not None:
                for rec in recs:
                    self.sink.write(rec)
                self.sink.flush()
            self.reader.save()
            return len(recs)

    async def _run(self) -> None:
        delay = BUSY_POLL
        while True:
            moved = 0
            if self.reader.pending():
                try:
                    moved = await asyncio.to_thread(self.pump)
                except Exception as e:  # a full disk, a vanished directory: try again later
                    log.warning("shipping the log of %s: %s", self.spool, e)
            delay = BUSY_POLL if moved else min(IDLE_POLL, delay * 2)
            await asyncio.sleep(delay)

    async def _stop_loop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
            self._task = None

    def _close(self, *, remove: bool) -> None:
        with self._lock:
            self._closed = True
            self.reader.close()
            if self.sink is not None:
                with contextlib.suppress(Exception):
                    self.sink.close()
            if remove:
                for p in (self.spool, self.reader.position_path):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(p)

    async def finish(self) -> None:
        """The container exited: ship the rest, close the sink, remove the spool."""
        await self._stop_loop()
        try:
            await asyncio.to_thread(lambda: self.pump(final=True))
        except Exception as e:
            log.warning("shipping the log of %s: %s", self.spool, e)
        await asyncio.to_thread(self._close, remove=True)

    async def detach(self) -> None:
        """The daemon stops: ship the rest, keep the spool and position for the next daemon."""
        await self._stop_loop()
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.pump)
        await asyncio.to_thread(self._close, remove=False)
