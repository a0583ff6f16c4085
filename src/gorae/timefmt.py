"""Time values on the wire (a leaf): Go's RFC 3339 formatting and the `since`/`until` parsing, once for all.

Formatting follows Go's `time.RFC3339Nano` in UTC (fraction without trailing zeros, `Z`), which is what dockerd
prints everywhere (inspect `Created`, `State.StartedAt`, events, `docker cp` stat); Go's zero time is
`ZERO_TIME`. Parsing takes what clients send in `since`/`until`: docker clients send either a unix time with an optional fraction ("1700000000", "1700000000.123456789")
or an RFC 3339 time; the CLI turns durations ("10m") into unix times before sending, but older clients may
send a Go duration, which we also accept (relative to now). Returns nanoseconds since the epoch.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from gorae.errors import InvalidParameter

_UNIX = re.compile(r"^(-?\d{1,12})(?:\.(\d{1,9}))?$")
_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(h|m|s|ms|us|ns))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|ns)")
_UNITS = {"h": 3600e9, "m": 60e9, "s": 1e9, "ms": 1e6, "us": 1e3, "ns": 1}


def parse_timestamp(value: str, *, now_ns: int | None = None) -> int:
    """Nanoseconds since the epoch for a `since`/`until` value; InvalidParameter if it is none of the forms."""
    v = value.strip()
    if not v:
        raise InvalidParameter("empty timestamp")
    m = _UNIX.match(v)
    if m:
        secs = int(m.group(1))
        frac = (m.group(2) or "").ljust(9, "0")
        return secs * 1_000_000_000 + (int(frac) if frac else 0)
    if _DURATION.match(v):
        total = sum(float(n) * _UNITS[u] for n, u in _DURATION_PART.findall(v))
        return (now_ns if now_ns is not None else time.time_ns()) - int(total)
    iso = v.replace("Z", "+00:00")
    # Python's fromisoformat takes at most 6 fractional digits: cut nanoseconds, keep them apart
    nanos = 0
    fm = re.match(r"^(.*T\d\d:\d\d:\d\d)\.(\d+)(.*)$", iso)
    if fm:
        digits = fm.group(2)[:9].ljust(9, "0")
        nanos = int(digits)
        iso = fm.group(1) + fm.group(3)
    try:
        dt = datetime.fromisoformat(iso)
    except ValueError as e:
        raise InvalidParameter(f"failed to parse value as time or duration: {value!r}") from e
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp()) * 1_000_000_000 + nanos


ZERO_TIME = "0001-01-01T00:00:00Z"


def rfc3339nano(ns: int) -> str:
    """Go's time.RFC3339Nano in UTC for nanoseconds since the epoch: trailing zeros of the fraction dropped,
    no fraction when it is zero, 'Z' suffix."""
    secs, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    if frac:
        base += "." + f"{frac:09d}".rstrip("0")
    return base + "Z"


def rfc3339nano_fixed(ns: int) -> str:
    """Docker's RFC3339NanoFixed (log timestamps, stats `read`): always nine fraction digits."""
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def rfc3339nano_or_zero(ns: int) -> str:
    """`rfc3339nano`, with 0 meaning "never" (Go's zero time), as docker prints unset times."""
    return rfc3339nano(ns) if ns else ZERO_TIME


def now_rfc3339nano() -> str:
    return rfc3339nano(time.time_ns())


def rfc3339_seconds(ts: float) -> str:
    """RFC 3339 to the second in UTC (volume `CreatedAt`, as dockerd's local driver prints it)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
