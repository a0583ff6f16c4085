"""Moving bytes between the local stdio and a hijacked attach/exec connection.

One select loop, no threads: stdin goes to the connection (through the detach-key scanner when a tty is
attached; EOF half-closes the connection), output comes back raw (tty) or demultiplexed into stdout and
stderr. Signal handlers (SIGWINCH resize, sig-proxy) run between select calls.
"""

from __future__ import annotations

import os
import select
import sys

from gorae.cli.terminal import DetachScanner
from gorae.client.streams import STDERR, Demuxer, Hijacked

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO


class Detached(Exception):
    """The user typed the detach sequence."""


def _write(stream: BinaryIO, data: bytes) -> None:
    stream.write(data)
    stream.flush()


def pump(
    conn: Hijacked,
    *,
    tty: bool,
    stdin: bool,
    detach_keys: bytes = b"",
    out: BinaryIO | None = None,
    err: BinaryIO | None = None,
    stdin_fd: int = 0,
) -> None:
    """Copy until the output side ends. Raises Detached when the detach keys are typed (tty only)."""
    out = out or sys.stdout.buffer
    err = err or sys.stderr.buffer
    demux = None if tty else Demuxer()
    scanner = DetachScanner(detach_keys) if tty and detach_keys else None
    reading_stdin = stdin
    sock_fd = conn.fileno()
    while True:
        if conn.has_buffered():
            ready = [sock_fd]
        else:
            fds = [sock_fd] + ([stdin_fd] if reading_stdin else [])
            ready, _, _ = select.select(fds, [], [])
        if sock_fd in ready:
            data = conn.recv()
            if not data:
                return
            if demux is None:
                _write(out, data)
            else:
                for stream, payload in demux.feed(data):
                    _write(err if stream >= STDERR else out, payload)
        if reading_stdin and stdin_fd in ready:
            try:
                data = os.read(stdin_fd, 32768)
            except OSError:
                data = b""
            if not data:
                reading_stdin = False
                conn.close_write()
                continue
            if scanner is not None:
                data, detached = scanner.feed(data)
                if data:
                    conn.send(data)
                if detached:
                    raise Detached()
            else:
                try:
                    conn.send(data)
                except OSError:
                    reading_stdin = False
