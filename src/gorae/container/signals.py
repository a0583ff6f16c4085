"""Signal names and numbers as docker parses them (signal.ParseSignal), for stop/kill and StopSignal."""

from __future__ import annotations

import signal as _signal

from gorae.errors import InvalidParameter


def parse_signal(value: str | int | None, default: int = _signal.SIGKILL) -> int:
    """docker's signal.ParseSignal: a number, or a name with or without SIG (any case)."""
    if value is None or value == "":
        return int(default)
    text = str(value).strip()
    if text.isdigit():
        num = int(text)
        if num == 0:
            raise InvalidParameter(f"Invalid signal: {text}")
        return num
    name = text.upper()
    if name.startswith("SIG"):
        name = name[3:]
    if name.startswith("RTMIN+") or name.startswith("RTMAX-"):
        base = _signal.SIGRTMIN if name.startswith("RTMIN") else _signal.SIGRTMAX
        try:
            off = int(name[6:])
        except ValueError:
            raise InvalidParameter(f"Invalid signal: {text}") from None
        return int(base) + off if name.startswith("RTMIN") else int(base) - off
    try:
        return int(_signal.Signals["SIG" + name])
    except KeyError:
        raise InvalidParameter(f"Invalid signal: {text}") from None
