"""Swarm object IDs as swarmkit makes them: 128 random bits in base 36, zero-padded to 25 characters."""

from __future__ import annotations

import secrets

_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
ID_LEN = 25  # ceil(log36(2**128))


def base36(n: int, width: int = 0) -> str:
    """`n` (>= 0) in lower-case base 36, left-padded with zeros to `width`."""
    if n < 0:
        raise ValueError("negative")
    out = ""
    while n:
        n, d = divmod(n, 36)
        out = _DIGITS[d] + out
    return (out or "0").rjust(width, "0")


def new_id() -> str:
    return base36(secrets.randbits(128), ID_LEN)
