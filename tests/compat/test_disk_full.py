"""A full disk (security review F6 and F7, issue 15 item 5), for real: a daemon whose data root is a small tmpfs,
filled from inside a container.

Each round: an attached `docker run` that fills the disk returns, its exit is recorded (ps shows Exited, `docker
wait` returns) and `rm` works with the disk still full; a running container that filled the disk can be
committed (which fails with "no space left on device" and leaves it running, not paused), paused, unpaused,
stopped and removed with `rm -f`, as can a container with an anonymous volume (`rm -v`); once the fillers are
gone, the same daemon (no restart) runs containers again. Reports "disk-full rounds recovered without a
restart: N/N" (GORAE_DISKFULL_ROUNDS rounds, 3 by default).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import pytest
from conftest import GoraeDaemon, small_disk_daemon

TMPFS_MB = 80
ROUNDS = int(os.environ.get("GORAE_DISKFULL_ROUNDS", "3"))
FILL = f"head -c {TMPFS_MB * 2}m /dev/zero > /big"


@pytest.fixture
def small_daemon() -> Iterator[GoraeDaemon]:
    with small_disk_daemon(TMPFS_MB, "gorae-diskfull") as d:
        yield d


def _free(d: GoraeDaemon) -> int:
    st = os.statvfs(d.data_root)
    return st.f_bavail * st.f_frsize


def _until(what: str, cond: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _state(d: GoraeDaemon, name: str) -> dict:
    return json.loads(d.docker("inspect", "-f", "{{json .State}}", name).stdout)


def _names(d: GoraeDaemon) -> set[str]:
    return set(d.docker("ps", "-a", "--format", "{{.Names}}").stdout.split())


def _full(d: GoraeDaemon) -> bool:
    return _free(d) < 512 * 1024


def _one_round(d: GoraeDaemon, n: int) -> None:
    reserve = os.path.join(d.data_root, "reserve")
    _until("the disk reserve", lambda: os.path.exists(reserve))
    d.docker("create", "--name", f"zv{n}", "-v", "/data", "busybox", "true")

    # F6: the exit of the container that filled the disk is recorded; run and wait return
    res = d.docker("run", "--name", f"f6-{n}", "busybox", "sh", "-c", FILL, check=False, timeout=60)
    assert res.returncode == 1, (res.returncode, res.stderr, d.log()[-3000:])
    # the disk was full when the exit was recorded (it took the reserve, unless SQLite had room in its WAL)
    assert _free(d) < 2 << 20, _free(d)
    assert _state(d, f"f6-{n}")["Status"] == "exited"
    assert "Exited (1)" in d.docker("ps", "-a", "--filter", f"name=f6-{n}", "--format", "{{.Status}}").stdout
    assert d.docker("wait", f"f6-{n}", timeout=20).stdout.strip() == "1"
    # F7: removals work with the disk still full (and free it)
    d.docker("rm", "-v", f"zv{n}", timeout=30)
    d.docker("rm", "-f", f"f6-{n}", timeout=30)
    assert not (_names(d) & {f"zv{n}", f"f6-{n}"})
    _until("the disk reserve after space returned", lambda: os.path.exists(reserve))

    # F7: a running container that filled the disk
    hog = f"hog{n}"
    d.docker("run", "-d", "--name", hog, "busybox", "sh", "-c", FILL + "; exec sleep 1000")
    _until("the disk to fill", lambda: _full(d))
    res = d.docker("commit", hog, f"hogimg:{n}", check=False, timeout=60)
    assert res.returncode != 0 and "no space left on device" in res.stderr, res.stderr
    assert "Errno" not in res.stderr and "invalid" not in res.stderr
    st = _state(d, hog)
    assert st["Status"] == "running" and not st["Paused"], st
    d.docker("pause", hog, timeout=20)
    assert _state(d, hog)["Paused"]
    d.docker("unpause", hog, timeout=20)
    assert not _state(d, hog)["Paused"]
    d.docker("stop", "-t", "1", hog, timeout=30)
    assert _state(d, hog)["Status"] == "exited"
    d.docker("rm", "-f", hog, timeout=30)
    assert hog not in _names(d)

    # space is back: the same daemon works again
    _until("the disk reserve after space returned", lambda: os.path.exists(reserve))
    out = d.docker("run", "--rm", "busybox", "echo", f"round-{n}-ok", timeout=60).stdout
    assert out.strip() == f"round-{n}-ok"
    assert _names(d) == set()


def test_disk_full_rounds_recover_without_a_restart(small_daemon: GoraeDaemon) -> None:
    d = small_daemon
    assert d.proc is not None
    pid = d.proc.pid
    recovered = 0
    for n in range(ROUNDS):
        _one_round(d, n)
        assert d.proc.poll() is None and d.proc.pid == pid  # no restart
        recovered += 1
    print(f"\ndisk-full rounds recovered without a restart: {recovered}/{ROUNDS}")
    assert "Task exception was never retrieved" not in d.log()
