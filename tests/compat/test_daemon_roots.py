"""The daemon's roots: dockerd's modes (also fixed on an older data root), and one daemon per data root, exec root
and bridge (security review F2 and F4's second half)."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import uuid

import pytest
from conftest import GoraeDaemon

from gorae.daemon.config import DaemonConfig
from gorae.network.names import network_names


def _mode(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _modes(d: GoraeDaemon) -> dict[str, int]:
    root = d.data_root
    return {
        "data root": _mode(root),
        "db": _mode(os.path.join(root, "gorae.db")),
        "db-wal": _mode(os.path.join(root, "gorae.db-wal")),
        "overlay": _mode(os.path.join(root, "overlay")),
        "snapshots.db": _mode(os.path.join(root, "overlay", "snapshots.db")),
        "content": _mode(os.path.join(root, "content")),
        "containers": _mode(os.path.join(root, "containers")),
        "tmp": _mode(os.path.join(root, "tmp")),
        "exec root": _mode(d.exec_root),
    }


DOCKERD_MODES = {
    "data root": 0o710,
    "db": 0o600,
    "db-wal": 0o600,
    "overlay": 0o710,
    "snapshots.db": 0o600,
    "content": 0o700,
    "containers": 0o710,
    "tmp": 0o700,
    "exec root": 0o700,
}


def test_roots_have_dockerds_modes_and_are_fixed_on_start(fresh_daemon: GoraeDaemon) -> None:
    d = fresh_daemon
    d.docker("create", "--name", "secret", "-e", "DB_PASSWORD=s3cr3t", "busybox", "true")
    assert _modes(d) == DOCKERD_MODES
    # a data root as an older gorae left it: world-traversable, world-readable database
    d.stop()
    for path, mode in ((d.data_root, 0o711), (os.path.join(d.data_root, "gorae.db"), 0o644)):
        os.chmod(path, mode)
    os.chmod(os.path.join(d.data_root, "overlay"), 0o711)
    # spools a crash left behind (a half-received `docker load`, a commit diff) are collected at start
    for spool in ("load-123", "commit-456"):
        with open(os.path.join(d.data_root, "tmp", spool), "wb") as f:
            f.write(b"x" * 1024)
    d.start()
    assert os.listdir(os.path.join(d.data_root, "tmp")) == []
    assert _modes(d) == DOCKERD_MODES
    d.docker("rm", "secret")


def _second(first: GoraeDaemon, *, data_root: str | None = None, exec_root: str | None = None,
            extra: list[str] | None = None) -> GoraeDaemon:
    tag = uuid.uuid4().hex[:8]
    return GoraeDaemon(
        data_root=data_root or tempfile.mkdtemp(prefix=f"gorae-test-{tag}-"),
        exec_root=exec_root or f"/run/gorae-t-{tag}",
        socket=f"/run/gorae-t-{tag}.sock",
        log_path=os.path.join(tempfile.gettempdir(), f"gorae-test-{tag}.log"),
        extra_args=list(extra or []),
    )


@pytest.mark.parametrize("shared", ["data root", "exec root", "bridge"])
def test_a_second_daemon_on_a_held_root_or_bridge_refuses(fresh_daemon: GoraeDaemon, shared: str) -> None:
    first = fresh_daemon
    bridge = network_names(DaemonConfig(exec_root=first.exec_root)).bridge
    second = _second(
        first,
        data_root=first.data_root if shared == "data root" else None,
        exec_root=first.exec_root if shared == "exec root" else None,
        extra=["--bridge", bridge] if shared == "bridge" else None,
    )
    try:
        with pytest.raises(RuntimeError) as e:
            second.start()
        assert "is in use by another gorae daemon" in str(e.value)
        if shared != "bridge":
            assert f"(pid {first.proc.pid})" in str(e.value)  # type: ignore[union-attr]
        assert first.ping()
        first.docker("run", "--rm", "busybox", "true")  # the first daemon lost nothing
    finally:
        second.stop()
        if shared != "data root":
            shutil.rmtree(second.data_root, ignore_errors=True)
        if shared != "exec root":
            shutil.rmtree(second.exec_root, ignore_errors=True)
        for p in (second.socket, second.log_path):
            if os.path.exists(p):
                os.unlink(p)
        second._dismiss_reaper()  # its watcher (started with it) would otherwise wait for pytest's end
