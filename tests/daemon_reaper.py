"""The watcher that cleans up after a test daemon whose pytest process died without doing it (SIGKILL, a CI
timeout, a crash), and `Reaper`, its handle in pytest: `conftest.GoraeDaemon` and the CLI tests' daemons
(tests/compat/cli_daemon.py: gorae and the reference dockerd) start one beside each daemon.

    python tests/daemon_reaper.py gorae '{"data_root": ..., "exec_root": ..., "socket": ..., "log_path": ...}'
    python tests/daemon_reaper.py roots '{"roots": [...], "files": [...], "exec_root": ..., "gorae": true}'

pytest holds the only write end of the pipe on the watcher's stdin and writes one line per event: `pid N` when
it started the daemon (again, after a restart), `done` when its own cleanup has run. The watcher runs in a
session of its own (a signal to pytest's process group does not reach it) and idles in a blocking read; end of
file before `done` means pytest is gone, and the watcher does what the fixture's cleanup does: SIGTERM to the
daemon (through a pidfd opened when the pid arrived, so a reused pid is never hit; SIGKILL after 30 s), then
`gorae`: `GoraeDaemon.cleanup()` (runtime leftovers, mounts, roots, socket, log, bridges, iptables chains,
namespaces); `roots`: the processes naming the exec root killed (conmon, containerd shims), the mounts under the
roots unmounted, the roots and files removed, and for a gorae daemon its kernel state purged. It imports
nothing heavy until then.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator

HERE = os.path.dirname(os.path.abspath(__file__))


class Reaper:
    """pytest's side: starts the watcher for one daemon and tells it the daemon's pids, then that it is done."""

    def __init__(self, kind: str, spec: dict[str, object]) -> None:
        r, w = os.pipe()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), kind, json.dumps(spec)],
                stdin=r,
                start_new_session=True,
            )
        except BaseException:
            os.close(w)
            raise
        finally:
            os.close(r)
        self.pipe: int | None = w

    def watch(self, pid: int) -> None:
        """The daemon's (new) process."""
        if self.pipe is not None:
            os.write(self.pipe, f"pid {pid}\n".encode())

    def dismiss(self) -> None:
        """The fixture's cleanup has run: the watcher exits without doing anything."""
        if self.pipe is None:
            return
        try:
            os.write(self.pipe, b"done\n")
        except BrokenPipeError:  # it is gone already
            pass
        os.close(self.pipe)
        self.pipe = None
        self.proc.wait()


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
    """SIGTERM (the daemon's own shutdown), SIGKILL after 30 s; returns when the process is gone."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            signal.pidfd_send_signal(pidfd, sig)
        except ProcessLookupError:
            return
        if poller.poll(30000):
            return


def _kill_naming(text: str) -> None:
    """SIGKILL every process but this one whose command line mentions `text`."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
            if text.encode() in cmd:
                os.kill(int(entry), signal.SIGKILL)
        except OSError:
            continue


def clean_roots(spec: dict[str, object]) -> None:
    from conftest import unmount_under

    from gorae.archive.tree import remove_tree

    exec_root = str(spec["exec_root"])
    _kill_naming(exec_root)
    roots = [str(r) for r in spec["roots"]]  # type: ignore[attr-defined]
    for root in roots:
        unmount_under(root)
    for root in roots:
        if os.path.lexists(root):
            remove_tree(root)
    for f in spec["files"]:  # type: ignore[attr-defined]
        if os.path.lexists(str(f)):
            os.unlink(str(f))
    if spec.get("gorae"):
        from gorae.network.leftovers import purge_daemon

        purge_daemon(exec_root)


def main(argv: list[str]) -> int:
    kind, spec = argv[0], json.loads(argv[1])
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
    if kind == "gorae":
        from conftest import GoraeDaemon

        GoraeDaemon(**spec).cleanup()
    else:
        clean_roots(spec)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
