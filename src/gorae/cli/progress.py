"""Showing a daemon's JSON message stream (pull, push, load, run's auto-pull) as docker's jsonmessage does.

Owns the rendering only: on a terminal each layer id gets one line that later messages redraw in place
(cursor up, erase line, `\\r`, cursor down) with docker's progress bar drawn from `progressDetail`
(`[=====>     ]  1.2MB/3.4MB 4s`, the bar only when the terminal is wider than 110 columns); elsewhere every
message without a running count is printed once and the counting ones are dropped. `aux` messages go to a
callback. An `errorDetail` (or a bare `error`, which docker ignores but which a daemon only sends on failure)
ends the stream as a StreamError carrying the daemon's text. It never reads the network: callers hand in
decoded messages, so any sequence of JSON values can be rendered without raising anything else.
"""

from __future__ import annotations

import time

from gorae.cli.formatting import human_size
from gorae.client.errors import StreamError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any, TextIO

DEFAULT_WIDTH = 200  # docker's width when the output is not a terminal
BAR_MIN_WIDTH = 110  # the bar is drawn only on terminals wider than this
TIME_MIN_WIDTH = 50  # and the time left only on terminals wider than this
INT64_MAX = 2**63 - 1


def _int(v: Any) -> int:
    """A JSON number as Go's int64 field decodes it (non-numbers count as 0)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return 0
    try:
        n = int(v)
    except (OverflowError, ValueError):
        return 0
    return max(min(n, INT64_MAX), -INT64_MAX - 1)


def go_duration(ns: int) -> str:
    """Go's time.Duration.String() for a whole number of seconds: "0s", "45s", "2m0s", "1h2m3s"."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    secs = abs(ns) // 1_000_000_000
    h, rem = divmod(secs, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{sign}{h}h{m}m{s}s"
    if m:
        return f"{sign}{m}m{s}s"
    return f"{sign}{s}s"


def _round_second(ns: int) -> int:
    """Go's Duration.Round(time.Second): halves away from zero."""
    q, r = divmod(abs(ns), 1_000_000_000)
    if r * 2 >= 1_000_000_000:
        q += 1
    return q * 1_000_000_000 * (-1 if ns < 0 else 1)


def progress_string(detail: dict[str, Any], width: int, now: float | None = None) -> str:
    """jsonmessage's JSONProgress.String(): bar, counts and time left from current/total/start/units."""
    current = _int(detail.get("current"))
    total = _int(detail.get("total"))
    start = _int(detail.get("start"))
    units = detail.get("units") if isinstance(detail.get("units"), str) else ""
    hide = detail.get("hidecounts") is True
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        return f"{human_size(current, 4):>8}" if not units else f"{current} {units}"
    percentage = int(current / total * 100) // 2 if current >= 0 else -(int(-current / total * 100) // 2)
    percentage = min(percentage, 50)
    bar = ""
    if width > BAR_MIN_WIDTH:
        bar = "[" + "=" * percentage + ">" + " " * max(50 - percentage, 0) + "] "
    numbers = ""
    if hide:
        pass
    elif not units:
        numbers = f"{human_size(current, 4):>8}/{human_size(total, 4)}"
        if current > total:
            numbers = f"{human_size(current, 4):>8}"
    else:
        numbers = f"{current}/{total} {units}"
        if current > total:
            numbers = f"{current} {units}"
    left = ""
    if width > TIME_MIN_WIDTH and current > 0 and start > 0 and percentage < 50:
        now_ns = int((time.time() if now is None else now) * 1_000_000_000)
        elapsed = now_ns - start * 1_000_000_000
        per_entry = abs(elapsed) // current * (-1 if elapsed < 0 else 1)  # Go's truncating division
        left = " " + go_duration(_round_second((total - current) * per_entry))
    return bar + numbers + left


def _timestamp(msg: dict[str, Any]) -> str:
    """RFC3339 with nanoseconds fixed to nine digits, in local time as Go formats it ("Z" for UTC)."""
    import datetime

    nano = _int(msg.get("timeNano"))
    if not nano:
        nano = _int(msg.get("time")) * 1_000_000_000
    secs, frac = divmod(nano, 1_000_000_000)
    try:
        dt = datetime.datetime.fromtimestamp(secs).astimezone()
    except (OverflowError, OSError, ValueError):
        return ""
    off = dt.utcoffset()
    zone = "Z"
    if off:
        mins = int(off.total_seconds()) // 60
        zone = f"{'+' if mins >= 0 else '-'}{abs(mins) // 60:02d}:{abs(mins) % 60:02d}"
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}{zone} "


def _text(v: Any) -> str:
    return v if isinstance(v, str) else ""


class ProgressRenderer:
    """Feeds messages one by one to `out` the way docker's DisplayJSONMessagesStream draws them."""

    def __init__(
        self,
        out: TextIO,
        *,
        terminal: bool,
        width: Callable[[], int] | None = None,
        on_aux: Callable[[Any], None] | None = None,
        now: Callable[[], float] | None = None,
    ) -> None:
        self.out = out
        self.terminal = terminal
        self._width = width or (lambda: DEFAULT_WIDTH)
        self.on_aux = on_aux
        self._now = now
        self.lines: dict[str, int] = {}  # layer id -> its line, counted from the first progress line

    def feed(self, msg: Any) -> None:
        """Render one decoded message; raises StreamError on an in-band error."""
        if not isinstance(msg, dict):
            msg = {}
        if msg.get("aux") is not None:
            if self.on_aux is not None:
                self.on_aux(msg["aux"])
            return
        detail = msg.get("progressDetail")
        has_progress = isinstance(detail, dict)
        progress = detail if isinstance(detail, dict) else {}
        ident = _text(msg.get("id"))
        legacy = _text(msg.get("progress"))
        diff = 0
        if ident and (has_progress or legacy):
            line = self.lines.get(ident)
            if line is None:
                line = len(self.lines)
                self.lines[ident] = line
                if self.terminal:
                    self.out.write("\n")
            diff = len(self.lines) - line
            if self.terminal and diff:
                self.out.write(f"\x1b[{diff}A")
        else:
            self.lines = {}
        try:
            self._display(msg, has_progress, progress, ident, legacy)
        finally:
            if ident and self.terminal and diff:
                self.out.write(f"\x1b[{diff}B")
            self.out.flush()

    def _display(
        self, msg: dict[str, Any], has_progress: bool, progress: dict[str, Any], ident: str, legacy: str
    ) -> None:
        err = msg.get("errorDetail")
        if err is not None or msg.get("error"):
            text = _text(err.get("message")) if isinstance(err, dict) else ""
            raise StreamError(text or _text(msg.get("error")))
        stream = _text(msg.get("stream"))
        status = _text(msg.get("status"))
        endl = ""
        width = self._width()
        now = self._now() if self._now is not None else None
        if self.terminal and not stream and has_progress:
            self.out.write("\x1b[2K\r")
            endl = "\r"
        elif has_progress and progress_string(progress, width, now):
            return  # no bars when not on a terminal
        w = self.out.write
        if msg.get("timeNano") or msg.get("time"):
            w(_timestamp(msg))
        if ident:
            w(f"{ident}: ")
        if _text(msg.get("from")):
            w(f"(from {msg['from']}) ")
        if has_progress and self.terminal:
            w(f"{status} {progress_string(progress, width, now)}{endl}")
        elif legacy:
            w(f"{status} {legacy}{endl}")
        elif stream:
            w(f"{stream}{endl}")
        else:
            w(f"{status}{endl}\n")


def terminal_width(out: Any) -> Callable[[], int]:
    """Reads the width of `out`'s terminal at each call (docker asks per message), 200 when unknown."""

    def width() -> int:
        from gorae.cli.terminal import get_winsize

        try:
            fd = out.fileno()
        except (AttributeError, OSError, ValueError):
            return DEFAULT_WIDTH
        size = get_winsize(fd)
        return size[1] if size else DEFAULT_WIDTH

    return width


def is_terminal(out: Any) -> bool:
    try:
        return bool(out.isatty())
    except (AttributeError, OSError, ValueError):
        return False


def show_progress(
    stream: Iterable[Any],
    out: TextIO,
    *,
    quiet: bool = False,
    on_aux: Callable[[Any], None] | None = None,
) -> None:
    """Render the whole stream on `out` (nothing but aux callbacks and errors when quiet)."""
    if quiet:
        import io

        target: TextIO = io.StringIO()
        renderer = ProgressRenderer(target, terminal=False, on_aux=on_aux)
        for msg in stream:
            renderer.feed(msg)
            target.seek(0)
            target.truncate()
        return
    renderer = ProgressRenderer(out, terminal=is_terminal(out), width=terminal_width(out), on_aux=on_aux)
    for msg in stream:
        renderer.feed(msg)
