"""The local terminal during `-t` sessions: raw mode that is always restored, window size, SIGWINCH, and the
detach-key sequence (default ctrl-p ctrl-q, `--detach-keys` / config.json `detachKeys`)."""

from __future__ import annotations

import atexit
import os
import struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal  # typeshed has no `_signal`; `signal` re-exports its functions and constants
    from collections.abc import Callable
    from typing import Any
else:
    import _signal as signal  # the C module: `signal` imports enum

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"


def detach_key_bytes(spec: str) -> bytes:
    """docker's detach-keys syntax: comma-separated `ctrl-<c>` or single characters."""
    out = bytearray()
    for part in spec.split(","):
        part = part.strip()
        if part.startswith("ctrl-") and len(part) == 6:
            c = part[5]
            if c.isalpha():
                out.append(ord(c.lower()) - ord("a") + 1)
            elif c in "@[\\]^_":
                out.append(ord(c) - 64)
            else:
                raise ValueError(f"Unknown character: '{part}'")
        elif len(part) == 1:
            out.append(ord(part))
        else:
            raise ValueError(f"Unknown character: '{part}'")
    return bytes(out)


class DetachScanner:
    """Finds the detach sequence in stdin bytes, holding back a partial match until it is decided."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """Returns (bytes to forward, detached?)."""
        if not self.keys:
            return data, False
        out = bytearray()
        for b in data:
            cand = self.held + bytes([b])
            if self.keys.startswith(cand):
                if cand == self.keys:
                    self.held = b""
                    return bytes(out), True
                self.held = cand
            else:
                out += cand
                self.held = b""
        return bytes(out), False


def get_winsize(fd: int) -> tuple[int, int] | None:
    """(rows, cols) of the terminal on fd, or None."""
    import fcntl
    import termios

    try:
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        return None
    return (rows, cols) if rows and cols else None


class RawTerminal:
    """Context manager: puts fd in raw mode and restores it on every exit path (including atexit)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.saved: list[Any] | None = None

    def __enter__(self) -> RawTerminal:
        import termios
        import tty

        if os.isatty(self.fd):
            self.saved = termios.tcgetattr(self.fd)
            atexit.register(self.restore)
            tty.setraw(self.fd, termios.TCSANOW)
        return self

    def restore(self) -> None:
        import termios

        if self.saved is not None:
            try:
                termios.tcsetattr(self.fd, termios.TCSANOW, self.saved)
            except (OSError, termios.error):
                pass
            self.saved = None

    def __exit__(self, *exc: object) -> None:
        self.restore()


def on_resize(handler: Callable[[], None]) -> Callable[[], None]:
    """Call handler on SIGWINCH; returns a function that uninstalls it."""
    old = signal.signal(signal.SIGWINCH, lambda *_: handler())

    def uninstall() -> None:
        signal.signal(signal.SIGWINCH, old)

    return uninstall
