"""20,000 idle connections against a real daemon (security review F9): the daemon keeps answering `_ping` on a
new connection, its log does not flood, and it serves normally once the clients are gone."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from conftest import GoraeDaemon

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

HOLDER = r"""
import resource, socket, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
path, n = sys.argv[1], int(sys.argv[2])
held = []
for _ in range(n):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
    except OSError:
        s.close()
        continue
    held.append(s)
print(len(held), flush=True)
sys.stdin.read()
"""


def _ping_seconds(path: str) -> float:
    import socket

    start = time.monotonic()
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 200 OK")
    return time.monotonic() - start


def test_twenty_thousand_idle_connections(fresh_daemon: GoraeDaemon) -> None:
    d = fresh_daemon
    log_before = os.path.getsize(d.log_path)
    holders = [
        subprocess.Popen(
            [sys.executable, "-c", HOLDER, d.socket, "10000"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        opened = sum(int(h.stdout.readline()) for h in holders)  # type: ignore[union-attr]
        assert opened == 20_000
        times = sorted(_ping_seconds(d.socket) for _ in range(20))
        print(
            f"_ping with 20,000 idle connections open: median {times[10] * 1000:.1f} ms, worst {times[-1] * 1000:.1f} ms"
        )
        assert times[-1] < 5, f"_ping took {times[-1]:.2f}s with 20,000 idle connections open"
    finally:
        for h in holders:
            h.stdin.close()  # type: ignore[union-attr]
            h.wait(60)
    assert os.path.getsize(d.log_path) - log_before < 100_000, "the daemon's log flooded"
    d.docker("run", "--rm", "busybox", "true")
