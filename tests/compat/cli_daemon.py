"""Helpers for the CLI compatibility tests (tests/compat/test_cli*.py): one daemon per target for the whole session — the gorae daemon
and, where Debian's docker.io is installed, a real dockerd — each on temporary roots and socket, with a
busybox image imported. `GORAE_TEST_TARGET=gorae` (or `=dref`) picks one. The `daemon` fixture lives in tests/conftest.py
(a second conftest.py would shadow `from conftest import ...`); modules import `g` (the gorae CLI) and `dk`
(the real docker CLI) against the current target, both with an empty private DOCKER_CONFIG directory."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import reference_dockerd, unmount_under
from daemon_reaper import Reaper

SRC = str(Path(__file__).resolve().parents[2] / "src")
TARGETS = [t for t in os.environ.get("GORAE_TEST_TARGET", "gorae,dref").split(",") if t]
NET = ["--network", "none"]


def _make_rootfs(root: Path) -> None:
    busybox = shutil.which("busybox") or "/bin/busybox"
    (root / "bin").mkdir(parents=True)
    shutil.copy(busybox, root / "bin" / "busybox")
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for a in applets:
        if a != "busybox":
            os.symlink("busybox", root / "bin" / a)
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "tmp").mkdir()


class Daemon:
    def __init__(self, base: Path, target: str) -> None:
        self.target = target
        rand = uuid.uuid4().hex[:8]
        self.data = Path(f"/tmp/dref-{rand}")
        self.exec_root = Path(f"/tmp/drefx-{rand}")
        self.sock = f"/tmp/dref-{rand}.sock"
        self.pidfile = f"/tmp/dref-{rand}.pid"
        self.host = f"unix://{self.sock}"
        self.log = base / "daemon.log"
        self.config_dir = base / "docker-config"
        self.config_dir.mkdir()
        if target == "gorae":
            argv = [
                sys.executable,
                "-m",
                "gorae.cmd.main",  # the entry point: `daemon` is not the CLI package's
                "daemon",
                "--data-root",
                str(self.data),
                "--exec-root",
                str(self.exec_root),
                "-H",
                self.host,
                "--config-file",
                str(base / "daemon.json"),
            ]
            (base / "daemon.json").write_text("{}")
            env = dict(os.environ)
        else:
            argv, env = reference_dockerd(self.data, self.exec_root, self.host, self.pidfile)
        env["PYTHONPATH"] = SRC
        # should pytest die before `stop()`, this watcher stops the daemon and removes what it made
        self.reaper = Reaper(
            "roots",
            {
                "roots": [str(self.exec_root), str(self.data)],
                "files": [self.sock, self.pidfile],
                "exec_root": str(self.exec_root),
                "gorae": target == "gorae",
            },
        )
        self.proc = subprocess.Popen(argv, stdout=open(self.log, "wb"), stderr=subprocess.STDOUT, env=env)
        self.reaper.watch(self.proc.pid)
        deadline = time.time() + 60
        while time.time() < deadline:
            if os.path.exists(self.sock) and self.docker("version").returncode == 0:
                break
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited: {self.log.read_text()[-2000:]}")
            time.sleep(0.2)
        else:
            self.stop()
            raise RuntimeError("daemon did not come up")
        rootfs = base / "rootfs"
        _make_rootfs(rootfs)
        tar = base / "rootfs.tar"
        with tarfile.open(tar, "w") as tf:
            for p in sorted(rootfs.iterdir()):
                tf.add(p, arcname=p.name)
        r = self.docker("import", "-c", 'CMD ["sh"]', str(tar), "busybox:latest")
        assert r.returncode == 0, r.stderr

    def docker(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, DOCKER_CONFIG=str(self.config_dir))
        env.pop("DOCKER_HOST", None)
        return subprocess.run(
            ["docker", "-H", self.host, *args], capture_output=True, text=True, timeout=120, env=env
        )

    def stop(self) -> None:
        ids = self.docker("ps", "-aq").stdout.split()
        if ids:
            self.docker("rm", "-f", *ids)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.target == "gorae":  # its bridge, veths, namespaces and iptables chains
            from gorae.network.leftovers import purge_daemon

            purge_daemon(str(self.exec_root))
        for d in (self.exec_root, self.data):
            unmount_under(str(d))
            shutil.rmtree(d, ignore_errors=True)
        for f in (self.sock, self.pidfile):
            if os.path.exists(f):
                os.unlink(f)
        self.reaper.dismiss()


def target_daemons(target: str, base: Path) -> Iterator[Daemon]:
    """The session fixture `daemon` (tests/conftest.py) delegates here: one daemon of `target` per session."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run containers")
    if target == "dref" and not shutil.which("dockerd"):
        pytest.skip("dockerd not installed")
    d = Daemon(base, target)
    try:
        yield d
    finally:
        d.stop()


def wait_for_event(
    env: dict[str, str], name: str, action: str, since: str, *, timeout: float = 30.0, count: int = 1
) -> list[str]:
    """The actions of container `name`'s events from `since` up to and including the `count`th `action`: a
    blocking `docker events` read (no polling); fails after `timeout` seconds."""
    import select

    proc = subprocess.Popen(
        ["docker", "events", "--since", since, "-f", f"container={name}", "--format", "{{.Action}}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        assert proc.stdout is not None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {action!r} event for {name} in {timeout}s; saw {seen}")
            ready, _, _ = select.select([proc.stdout], [], [], left)
            if not ready:
                continue
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(f"events ended before {action!r}; saw {seen}")
            seen.append(line.strip())
            if line.strip() == action and seen.count(action) == count:
                return seen
    finally:
        proc.kill()
        proc.wait()


def gorae_env(daemon: Daemon) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=SRC, DOCKER_HOST=daemon.host, DOCKER_CONFIG=str(daemon.config_dir))
    env.pop("GORAE_HOST", None)
    return env


def gorae_runner(daemon: Daemon):  # noqa: ANN201 - returns a runner
    """The `g` fixture: run the gorae CLI against `daemon`."""

    def run(
        *args: str, input: str | bytes | None = None, text: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "gorae.cli.main", *args],
            input=input,
            capture_output=True,
            text=text,
            env=gorae_env(daemon),
            timeout=timeout,
        )

    return run


def docker_runner(daemon: Daemon):  # noqa: ANN201 - returns a runner
    """The `dk` fixture: the real docker CLI against `daemon` (skips when it is not installed)."""
    if not shutil.which("docker"):
        pytest.skip("docker CLI not installed")

    def run(*args: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        env = dict(gorae_env(daemon))
        return subprocess.run(
            ["docker", *args], input=input, capture_output=True, text=True, env=env, timeout=timeout
        )

    return run
