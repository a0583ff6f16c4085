"""conmon's parent pipes (_OCI_SYNCPIPE, _OCI_STARTPIPE, _OCI_ATTACHPIPE) seen from asyncio.

Owns reading conmon's newline-terminated JSON messages ({"data": N, "message": "..."}) without
blocking the event loop, and the start signal. Never spawns processes.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any


async def wait_readable(fd: int) -> None:
    """Wait until `fd` is readable (or hung up), via the running loop's selector."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not fut.done():
            fut.set_result(None)

    loop.add_reader(fd, ready)
    try:
        await fut
    finally:
        loop.remove_reader(fd)


async def read_message(fd: int) -> dict[str, Any] | None:
    """One JSON line from a non-blocking pipe, or None if the writer closed it first."""
    buf = b""
    while b"\n" not in buf:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            await wait_readable(fd)
            continue
        if not chunk:
            break
        buf += chunk
    line = buf.split(b"\n", 1)[0].strip()
    if not line:
        return None
    try:
        msg = json.loads(line)
    except ValueError:
        return {"data": -1, "message": line.decode("utf-8", "replace")}
    return msg if isinstance(msg, dict) else None


def message_value(msg: dict[str, Any]) -> int:
    """The integer of a conmon message (api v1 "data"; older "pid"/"exit_code")."""
    for key in ("data", "pid", "exit_code"):
        if key in msg:
            return int(msg[key])
    return -1


def clean_runtime_message(text: str) -> str:
    """runc logs logrus lines (time="..." level=error msg="..."); keep just the msg."""
    out = []
    for line in text.strip().splitlines():
        marker = ' msg="'
        i = line.find(marker)
        if i >= 0 and line.endswith('"'):
            raw = line[i + len(marker) : -1]
            try:
                line = json.loads('"' + raw + '"')
            except ValueError:
                line = raw
        out.append(line)
    return "\n".join(out).strip()


def signal_start(fd: int) -> None:
    """Write the start message conmon waits for on _OCI_STARTPIPE."""
    try:
        os.write(fd, b"0")
    except BrokenPipeError:
        pass
