"""Progress messages of pull and push in docker's JSON shapes (jsonmessage.JSONMessage, key order kept).

`status(msg, id)` is progress.Message ({"status","id"}); `update(id, action, current, total)` is
progress.Update ({"status","progressDetail","progress","id"}) with the bar dockerd draws for a
200-column non-terminal; `aux` is the push result line. `Meter` counts bytes (a `MeteredReader` those read through it) and
reports at dockerd's pace (every 512 KiB, at most every 100 ms, and at the end).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, BinaryIO

Emit = Callable[[dict[str, Any]], None]

_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
UPDATE_EVERY = 512 * 1024
MIN_INTERVAL = 0.1


def human_size(size: float) -> str:
    """go-units HumanSize: 4 significant digits, decimal units ("1.23MB", "512B")."""
    i = 0
    while size >= 1000.0 and i < len(_UNITS) - 1:
        size /= 1000.0
        i += 1
    return f"{_g4(size)}{_UNITS[i]}"


def _g4(v: float) -> str:
    s = f"{v:.4g}"
    if "e" in s:
        s = f"{v:.0f}"
    return s


def bar(current: int, total: int) -> str:
    """jsonmessage.JSONProgress.String() for a 200-column writer and no start time."""
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        return f"{human_size(current):>8}"
    pct = min(int(current / total * 100) // 2, 50)
    box = "[" + "=" * pct + ">" + " " * max(50 - pct, 0) + "] "
    if current > total:
        return box + f"{human_size(current):>8}"
    return box + f"{human_size(current):>8}/{human_size(total)}"


def status(message: str, id: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"status": message}
    if id:
        out["id"] = id
    return out


def update(id: str, action: str, current: int = 0, total: int = 0) -> dict[str, Any]:
    detail: dict[str, int] = {}
    if current:
        detail["current"] = current
    if total:
        detail["total"] = total
    out: dict[str, Any] = {"status": action, "progressDetail": detail}
    text = bar(current, total)
    if text:
        out["progress"] = text
    if id:
        out["id"] = id
    return out


def aux(value: dict[str, Any]) -> dict[str, Any]:
    return {"progressDetail": {}, "aux": value}


def short(digest: str) -> str:
    """stringid.TruncateID: the first 12 hex digits."""
    return digest.split(":", 1)[-1][:12]


class Meter:
    """Counts bytes of one layer's `action` and reports them at dockerd's pace."""

    def __init__(self, emit: Emit, id: str, action: str, total: int, start: int = 0) -> None:
        self._emit = emit
        self._id = id
        self._action = action
        self._total = total
        self.current = start
        self._last_n = start
        self._last_t = 0.0

    def add(self, n: int) -> None:
        self.current += n
        self.tick()

    def tick(self, final: bool = False) -> None:
        now = time.monotonic()
        if (final and self.current != self._last_n) or (
            self.current - self._last_n >= UPDATE_EVERY and now - self._last_t >= MIN_INTERVAL
        ):
            self._last_n, self._last_t = self.current, now
            self._emit(update(self._id, self._action, self.current, self._total))


class MeteredReader:
    """A reader that feeds a `Meter` with the bytes read through it."""

    def __init__(self, raw: BinaryIO, meter: Meter) -> None:
        self._raw = raw
        self.meter = meter

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        if data:
            self.meter.add(len(data))
        else:
            self.meter.tick(final=True)
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._raw.close()
