"""Attach stream bytes: frames, detach keys, and the pump between a client and a container, with in-memory ends."""

from __future__ import annotations

import asyncio

import pytest

from gorae.api.attach_stream import DetachMatcher, frame, parse_detach_keys, pump
from gorae.errors import InvalidParameter


def test_frame_header() -> None:
    assert frame(1, b"hi") == b"\x01\x00\x00\x00\x00\x00\x00\x02hi"
    assert frame(2, b"") == b"\x02\x00\x00\x00\x00\x00\x00\x00"


def test_detach_key_parsing() -> None:
    assert parse_detach_keys(None) == b"\x10\x11"
    assert parse_detach_keys("ctrl-a,x") == b"\x01x"
    assert parse_detach_keys("ctrl-@,ctrl-[,ctrl-_") == b"\x00\x1b\x1f"
    with pytest.raises(InvalidParameter, match="Invalid detach keys"):
        parse_detach_keys("ctrl-1")
    with pytest.raises(InvalidParameter):
        parse_detach_keys("alt-x")


def test_detach_matcher_holds_back_partial_sequences() -> None:
    m = DetachMatcher(b"\x10\x11")
    assert m.feed(b"ab\x10") == (b"ab", False)
    assert m.feed(b"c") == (b"\x10c", False)
    assert m.feed(b"\x10\x10") == (b"\x10", False)
    assert m.feed(b"\x11rest") == (b"", True)


class FakeClient:
    def __init__(self, inputs: list[bytes]) -> None:
        self.inputs = list(inputs)
        self.out = bytearray()

    async def read(self, n: int = 65536) -> bytes:
        await asyncio.sleep(0)
        return self.inputs.pop(0) if self.inputs else b""

    async def write(self, data: bytes) -> None:
        self.out += data


class FakeSource:
    def __init__(self, outputs: list[tuple[int, bytes]], hold: bool = False) -> None:
        self.outputs = list(outputs)
        self.stdin = bytearray()
        self.stdin_closed = False
        self.hold = hold

    async def read(self) -> tuple[int, bytes] | None:
        await asyncio.sleep(0.01)
        if self.outputs:
            return self.outputs.pop(0)
        if self.hold:
            await asyncio.sleep(3600)
        return None

    async def write(self, data: bytes) -> None:
        self.stdin += data

    def close_stdin(self) -> None:
        self.stdin_closed = True

    def close(self) -> None:
        pass


def test_pump_frames_output_and_half_closes_stdin() -> None:
    client = FakeClient([b"hello", b""])
    source = FakeSource([(1, b"out"), (2, b"err")])
    outcome = asyncio.run(
        pump(client, source, tty=False, stdin=True, stdout=True, stderr=True, detach_keys=b"\x10\x11")
    )
    assert outcome == "eof"
    assert bytes(client.out) == frame(1, b"out") + frame(2, b"err")
    assert bytes(source.stdin) == b"hello" and source.stdin_closed


def test_pump_tty_is_raw_and_filters_streams() -> None:
    client = FakeClient([])
    source = FakeSource([(1, b"a"), (2, b"b")])
    asyncio.run(pump(client, source, tty=True, stdin=False, stdout=True, stderr=False, detach_keys=b""))
    assert bytes(client.out) == b"a"


def test_pump_detaches_on_keys() -> None:
    client = FakeClient([b"ls\n\x10", b"\x11"])
    source = FakeSource([], hold=True)
    outcome = asyncio.run(
        pump(client, source, tty=True, stdin=True, stdout=True, stderr=True, detach_keys=b"\x10\x11")
    )
    assert outcome == "detached"
    assert bytes(source.stdin) == b"ls\n" and not source.stdin_closed
