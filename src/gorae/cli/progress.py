"""Showing a daemon's JSON progress stream (pull, load, import): docker's per-layer lines, redrawn in place
on a terminal and printed line by line otherwise; an in-band `error` ends the command as a daemon error."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TextIO

from gorae.client.errors import APIError


def _line(msg: dict[str, Any]) -> str:
    parts = []
    if msg.get("id"):
        parts.append(f"{msg['id']}: ")
    parts.append(str(msg.get("status", "")))
    prog = msg.get("progress")
    if prog:
        parts.append(f" {prog}")
    return "".join(parts)


def show_progress(
    stream: Iterable[dict[str, Any]], out: TextIO, *, quiet: bool = False
) -> list[dict[str, Any]]:
    """Consume the stream; returns the messages (callers look for `aux`); raises APIError on an error message."""
    tty = hasattr(out, "isatty") and out.isatty()
    ids: list[str] = []
    seen: list[dict[str, Any]] = []
    for msg in stream:
        if not isinstance(msg, dict):
            continue
        seen.append(msg)
        if msg.get("error") or msg.get("errorDetail"):
            detail = msg.get("errorDetail") or {}
            raise APIError(500, str(msg.get("error") or detail.get("message") or "unknown error"))
        if quiet:
            continue
        if "stream" in msg:
            out.write(str(msg["stream"]))
            out.flush()
            continue
        if "status" not in msg:
            continue
        line = _line(msg)
        mid = msg.get("id")
        if tty and mid:
            if mid not in ids:
                ids.append(mid)
                out.write(line + "\n")
            else:
                up = len(ids) - ids.index(mid)
                out.write(f"\x1b[{up}A\r\x1b[2K{line}\x1b[{up}B\r")
        elif not (mid and msg.get("progressDetail") and msg.get("progress")) or not tty:
            if msg.get("progress") and not tty:
                continue  # docker prints only the state changes when not on a terminal
            out.write(line + "\n")
        out.flush()
    return seen
