"""The bytes of attach and exec streams: docker's 8-byte stream frames, detach keys, and the pump
between a hijacked client connection and a conmon attach socket.

Owns framing (`frame`: `[stream, 0, 0, 0, size BE32]` exactly when there is no tty), the detach-key
parser (`ctrl-p,ctrl-q` as docker's term.ToBytes) and its stream matcher, and `pump`, which copies
client input to the container and container output to the client until the output ends or the client
detaches. Knows nothing about containers or execs beyond the two streams it is handed.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator
from typing import Protocol

from gorae.errors import InvalidParameter

STDIN, STDOUT, STDERR = 0, 1, 2
DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"


def frame(stream: int, data: bytes) -> bytes:
    """One multiplexed frame (used when the container has no tty)."""
    return struct.pack(">BxxxL", stream, len(data)) + data


def encode(stream: int, data: bytes, tty: bool) -> bytes:
    return data if tty else frame(stream, data)


def parse_detach_keys(spec: str | None) -> bytes:
    """docker's term.ToBytes: "ctrl-p,ctrl-q" -> b"\\x10\\x11"; single characters stand for themselves."""
    if spec is None or spec == "":
        spec = DEFAULT_DETACH_KEYS
    out = bytearray()
    for key in spec.split(","):
        k = key.strip().lower() if key.strip().lower().startswith("ctrl-") else key.strip()
        if len(k) == 1:
            out.append(ord(k))
            continue
        if not k.startswith("ctrl-") or len(k) != 6:
            raise InvalidParameter(f"Invalid detach keys ({spec}) provided")
        c = k[5]
        if "a" <= c <= "z":
            out.append(ord(c) - ord("a") + 1)
        elif c in "@[\\]^_":
            out.append({"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}[c])
        else:
            raise InvalidParameter(f"Invalid detach keys ({spec}) provided")
    return bytes(out)


class DetachMatcher:
    """Scans client input for the detach sequence; holds back a partial match until it resolves."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self._held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(bytes to pass on, detached?)."""
        if not self.keys:
            return data, False
        out = bytearray()
        for b in data:
            self._held += bytes([b])
            if self.keys.startswith(self._held):
                if len(self._held) == len(self.keys):
                    return bytes(out), True
                continue
            # mismatch: release what was held, except a new start of the sequence
            while self._held and not self.keys.startswith(self._held):
                out.append(self._held[0])
                self._held = self._held[1:]
        return bytes(out), False

    def flush(self) -> bytes:
        held, self._held = self._held, b""
        return held


class OutputSource(Protocol):
    async def read(self) -> tuple[int, bytes] | None: ...
    async def write(self, data: bytes) -> None: ...
    def close_stdin(self) -> None: ...
    def close(self) -> None: ...


class ClientStream(Protocol):
    async def read(self, n: int = 65536) -> bytes: ...
    async def write(self, data: bytes) -> None: ...


async def pump(
    client: ClientStream,
    source: OutputSource,
    *,
    tty: bool,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    detach_keys: bytes,
    prefix: AsyncIterator[bytes] | None = None,
) -> str:
    """Copy until the container's output ends ("eof") or the client detaches ("detached") or goes away
    ("gone"). `prefix` (encoded bytes, e.g. replayed logs) is sent first."""
    detached = asyncio.Event()
    gone = asyncio.Event()

    async def output() -> None:
        if prefix is not None:
            async for chunk in prefix:
                await client.write(chunk)
        while True:
            item = await source.read()
            if item is None:
                return
            stream, data = item
            if (stream == STDOUT and not stdout) or (stream == STDERR and not stderr):
                continue
            try:
                await client.write(encode(stream, data, tty))
            except (ConnectionError, OSError):
                gone.set()
                return

    async def input_() -> None:
        matcher = DetachMatcher(detach_keys)
        while True:
            try:
                data = await client.read(65536)
            except (ConnectionError, OSError):
                data = b""
            if not data:
                rest = matcher.flush()
                if rest:
                    with contextlib.suppress(OSError):
                        await source.write(rest)
                source.close_stdin()  # conmon closes the container's stdin unless it must stay open
                return
            passed, hit = matcher.feed(data)
            if passed:
                try:
                    await source.write(passed)
                except OSError:
                    return
            if hit:
                detached.set()
                return

    out_task = asyncio.ensure_future(output())
    in_task = asyncio.ensure_future(input_()) if stdin else None
    detach_wait = asyncio.ensure_future(detached.wait())
    try:
        waiting = {out_task, detach_wait}
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if detach_wait in done and not out_task.done():
            return "detached"
        if out_task.done() and out_task.exception() is not None:
            exc = out_task.exception()
            if isinstance(exc, ConnectionError | OSError):
                return "gone"
            raise exc  # type: ignore[misc]
        return "gone" if gone.is_set() else "eof"
    finally:
        for task in (out_task, in_task, detach_wait):
            if task is not None and not task.done():
                task.cancel()
        for task in (out_task, in_task, detach_wait):
            if task is not None:
                with contextlib.suppress(BaseException):
                    await task
