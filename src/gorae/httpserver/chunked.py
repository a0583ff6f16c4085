"""The chunked transfer-coding decoder for request bodies read past h11 (RFC 9112 section 7.1).

Owns `ChunkedDecoder`: fed the bytes that follow a request head in whatever pieces they arrive, it returns
the payload as views of those pieces (no copy of chunk data) and stops at the end of the body, keeping what
follows it (a pipelined request). It accepts and rejects exactly what h11 does — chunk-size of 1 to 20 hex
digits, any extension after ";" (ignored), optional spaces before the CRLF, exactly CRLF after the chunk
data, trailer fields (obs-fold allowed) ending in an empty line — so a body framed badly is refused the same
on every path; a trailer section is rare and is checked by h11 itself. An unfinished chunk-size line or
trailer section longer than `max_line` is refused too (h11's incomplete-event cap).
"""

from __future__ import annotations

import re

import h11

_CHUNK_HEADER = re.compile(rb"([0-9A-Fa-f]{1,20})(?:;[^\n]*)?[ \t]*\r\n")
_BLANK_LINE = re.compile(rb"\n\r?\n")
_CRLF = re.compile(rb"\r\n")
_TRAILER_PROBE = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"

_SIZE, _DATA, _FOOTER, _TRAILER, _DONE = range(5)


class ChunkedError(ValueError):
    """The body's chunked framing is malformed (the request is answered 400 and the connection closed)."""


class ChunkedDecoder:
    """Decodes one chunked body; `feed` until `done`, then `leftover` holds the bytes after it."""

    def __init__(self, max_line: int = 1024 * 1024) -> None:
        self.max_line = max_line
        self._state = _SIZE
        self._left = 0  # payload bytes left in the current chunk
        self._crlf_left = b""  # the part of the CRLF after chunk data still to come
        self._buf = bytearray()  # an unfinished chunk-size line or trailer section
        self.leftover = b""

    @property
    def done(self) -> bool:
        return self._state == _DONE

    def feed(self, data: bytes | bytearray | memoryview) -> list[memoryview]:
        """The payload in `data` (views into it); raises ChunkedError on bad framing. After the end of the
        body the rest of `data` goes to `leftover` (and later feeds are kept there too)."""
        view = memoryview(data).cast("B") if not isinstance(data, memoryview) else data.cast("B")
        out: list[memoryview] = []
        pos, end = 0, len(view)
        while pos < end:
            state = self._state
            if state == _DATA:
                take = min(self._left, end - pos)
                out.append(view[pos : pos + take])
                pos += take
                self._left -= take
                if not self._left:
                    self._state, self._crlf_left = _FOOTER, b"\r\n"
            elif state == _SIZE:
                pos = self._size_line(view, pos)
            elif state == _FOOTER:
                want = self._crlf_left
                got = bytes(view[pos : pos + len(want)])
                if got != want[: len(got)]:
                    raise ChunkedError(f"malformed chunk footer: {got!r} (expected {want!r})")
                pos += len(got)
                self._crlf_left = want[len(got) :]
                if not self._crlf_left:
                    self._state = _SIZE
            elif state == _TRAILER:
                pos = self._trailer(view, pos)
            else:
                self.leftover += bytes(view[pos:])
                pos = end
        return out

    def _size_line(self, view: memoryview, pos: int) -> int:
        buf = self._buf
        if buf:  # the line began in an earlier piece (its CRLF may straddle the two)
            start = len(buf)
            buf += view[pos : pos + max(self.max_line + 2 - start, 2)]
            idx = buf.find(b"\r\n", max(0, start - 1))
            if idx < 0:
                if len(buf) > self.max_line:
                    raise ChunkedError("chunk size line too long")
                return len(view)
            line = bytes(buf[: idx + 2])
            consumed = idx + 2 - start
            buf.clear()
        else:
            stop = min(len(view), pos + self.max_line + 2)
            found = _CRLF.search(view, pos, stop)
            if found is None:
                if stop - pos > self.max_line:
                    raise ChunkedError("chunk size line too long")
                buf += view[pos:stop]
                return stop
            line = bytes(view[pos : found.end()])
            consumed = found.end() - pos
        match = _CHUNK_HEADER.fullmatch(line)
        if match is None:
            raise ChunkedError(f"illegal chunk header: {line!r}")
        size = int(match.group(1), 16)
        if size:
            self._state, self._left = _DATA, size
        else:
            self._state = _TRAILER
        return pos + consumed

    def _trailer(self, view: memoryview, pos: int) -> int:
        buf = self._buf
        start = len(buf)
        buf += view[pos:]
        if buf[:1] == b"\n":
            self._finish(1)
        elif buf[:2] == b"\r\n":
            self._finish(2)
        else:
            match = _BLANK_LINE.search(buf, max(0, start - 2))
            if match is None:
                if len(buf) > self.max_line:
                    raise ChunkedError("trailer section too long")
            else:
                _check_trailers(bytes(buf[: match.end()]))
                self._finish(match.end())
        return len(view)

    def _finish(self, used: int) -> None:
        """The body ended `used` bytes into the kept buffer (which holds the rest of the piece fed)."""
        self.leftover = bytes(self._buf[used:])
        self._buf.clear()
        self._state = _DONE


def _check_trailers(section: bytes) -> None:
    """Let h11 judge a trailer section (rare: docker's clients never send one), so its verdict is ours."""
    probe = h11.Connection(h11.SERVER)
    probe.receive_data(_TRAILER_PROBE + section)
    try:
        while True:
            event = probe.next_event()
            if isinstance(event, h11.EndOfMessage):
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                raise ChunkedError("incomplete trailer section")
    except h11.RemoteProtocolError as e:
        raise ChunkedError(str(e)) from None
