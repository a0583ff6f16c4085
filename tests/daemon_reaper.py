"""The watcher that cleans up after a test daemon whose pytest process died without doing it (SIGKILL, a CI
timeout, a crash): started by `conftest.GoraeDaemon.start()` beside each daemon, in a session of its own.

    python tests/daemon_reaper.py DATA_ROOT EXEC_ROOT SOCKET LOG_PATH     (stdin: the pipe from pytest)

pytest holds the only write end of the pipe on the watcher's stdin and writes one line per event: `pid N` when
it started the daemon (again, after a restart), `done` when its own cleanup has run. The watcher idles in a
blocking read; end of file before `done` means pytest is gone, and the watcher does what the fixtures' cleanup
does: SIGTERM to the daemon (through a pidfd opened when the pid arrived, so a reused pid is never hit; SIGKILL
after 15 s), then `GoraeDaemon.cleanup()` (runtime leftovers, mounts, roots, socket, log, bridges, iptables
chains, namespaces). It imports nothing heavy until then.
"""

from __future__ import annotations

import os
import select
import signal
import sys
from collections.abc import Iterator

HERE = os.path.dirname(os.path.abspath(__file__))


def _lines(fd: int) -> Iterator[str]:
    """The lines written to `fd` until end of file."""
    buf = b""
    while True:
        data = os.read(fd, 4096)
        if not data:
            return
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            yield line.decode()


def _stop(pidfd: int) -> None:
    """SIGTERM (the daemon's own shutdown), SIGKILL after 15 s; returns when the process is gone."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    for sig, wait_ms in ((signal.SIGTERM, 15000), (signal.SIGKILL, 15000)):
        try:
            signal.pidfd_send_signal(pidfd, sig)
        except ProcessLookupError:
            return
        if poller.poll(wait_ms):
            return


def main(argv: list[str]) -> int:
    data_root, exec_root, sock, log_path = argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a ^C meant for pytest is not for the watcher
    pidfd: int | None = None
    for line in _lines(0):
        if line == "done":
            return 0
        if line.startswith("pid "):
            if pidfd is not None:
                os.close(pidfd)
            try:
                pidfd = os.pidfd_open(int(line[4:]))
            except ProcessLookupError:  # it died already
                pidfd = None
    # pytest died before its cleanup ran (or finished)
    if pidfd is not None:
        _stop(pidfd)
    sys.path[:0] = [HERE, os.path.join(os.path.dirname(HERE), "src")]
    from conftest import GoraeDaemon

    GoraeDaemon(data_root=data_root, exec_root=exec_root, socket=sock, log_path=log_path).cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
