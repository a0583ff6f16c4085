"""A real dockerd in swarm mode for the swarm CLI tests (tests/compat/test_cli_swarm*.py): its own data and exec
roots, socket and pidfile, off the host firewall, `swarm init` on 127.0.0.1 with a free port, a busybox image
imported; `run("docker"|"gorae", ...)` drives it with either CLI. `stop()` leaves the swarm, stops the daemon
and removes every directory and file it made, also after a failure."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import uuid
from pathlib import Path

from conftest import reference_dockerd, unmount_under

SRC = str(Path(__file__).resolve().parents[2] / "src")
GWBRIDGE = "/sys/class/net/docker_gwbridge"
# there while a docker_gwbridge made by a test's dockerd exists: one started beside another test's (the bridge
# already there) may remove it too when it is the last one attached
GWBRIDGE_MARK = "/run/gorae-tests-gwbridge"
APPLETS = ("sh", "echo", "sleep", "cat", "true", "false", "ls")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SwarmDockerd:
    def __init__(self, base: Path) -> None:
        rand = uuid.uuid4().hex[:8]
        self.base = base
        self.data = Path(f"/tmp/scli-{rand}")
        self.exec_root = Path(f"/tmp/scli-x-{rand}")
        self.sock = f"/tmp/scli-{rand}.sock"
        self.pidfile = f"/tmp/scli-{rand}.pid"
        self.host = f"unix://{self.sock}"
        self.config_dir = base / "docker-config"
        self.config_dir.mkdir(exist_ok=True)
        self.log = base / "dockerd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = free_port()
        # swarm init attaches an ingress sandbox to a host bridge `docker_gwbridge` that dockerd never removes:
        # ours to remove unless it was there before any test's dockerd made it (the host's own docker)
        if not os.path.exists(GWBRIDGE):
            Path(GWBRIDGE_MARK).touch()
        self.gwbridge_ours = os.path.exists(GWBRIDGE_MARK)

    def __enter__(self) -> SwarmDockerd:
        """`with SwarmDockerd(base) as ref:` started, and stopped with everything it made, also when the start
        fails half way."""
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        argv, env = reference_dockerd(self.data, self.exec_root, self.host, self.pidfile)
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 60
        while self.run("docker", "version").returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dockerd did not come up: {self.log.read_text()[-2000:]}")
            time.sleep(0.2)
        addr = f"127.0.0.1:{self.port}"
        r = self.run("docker", "swarm", "init", "--advertise-addr", addr, "--listen-addr", addr)
        if r.returncode != 0:
            raise RuntimeError(f"swarm init failed: {r.stderr}")
        root = self.base / "rootfs"
        (root / "bin").mkdir(parents=True)
        shutil.copy(shutil.which("busybox") or "/bin/busybox", root / "bin" / "busybox")
        for a in APPLETS:
            os.symlink("busybox", root / "bin" / a)
        tar = self.base / "rootfs.tar"
        with tarfile.open(tar, "w") as tf:
            tf.add(root / "bin", arcname="bin")
        r = self.run("docker", "import", "-c", 'CMD ["sh"]', str(tar), "busybox:latest")
        if r.returncode != 0:
            raise RuntimeError(f"import failed: {r.stderr}")

    def env(self) -> dict[str, str]:
        env = dict(os.environ, DOCKER_CONFIG=str(self.config_dir), DOCKER_HOST=self.host, PYTHONPATH=SRC)
        env.pop("GORAE_HOST", None)
        return env

    def run(
        self, cli: str, *args: str, input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        argv = ["docker", *args] if cli == "docker" else [sys.executable, "-m", "gorae.cli.main", *args]
        return subprocess.run(
            argv, input=input, capture_output=True, text=True, env=self.env(), timeout=timeout
        )

    def stop(self) -> None:
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.run("docker", "swarm", "leave", "--force", timeout=60)
                ids = self.run("docker", "ps", "-aq").stdout.split()
                if ids:
                    self.run("docker", "rm", "-f", *ids)
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(60)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        finally:
            for d in (self.exec_root, self.data):
                unmount_under(str(d))
                shutil.rmtree(d, ignore_errors=True)
            for f in (self.sock, self.pidfile):
                if os.path.exists(f):
                    os.unlink(f)
            # the bridge a test's dockerd made, once nothing (another swarm-mode dockerd) is attached to it
            if self.gwbridge_ours:
                # the ingress sandbox's veth leaves the bridge when the kernel frees its namespace: a moment
                # after the daemon is gone (checking at once left the bridge behind now and then)
                deadline = time.monotonic() + 10
                while (
                    os.path.exists(GWBRIDGE)
                    and os.listdir(f"{GWBRIDGE}/brif")
                    and time.monotonic() < deadline
                ):
                    time.sleep(0.2)
                if os.path.exists(GWBRIDGE) and not os.listdir(f"{GWBRIDGE}/brif"):
                    subprocess.run(["ip", "link", "del", "docker_gwbridge"], capture_output=True)
                if not os.path.exists(GWBRIDGE):
                    Path(GWBRIDGE_MARK).unlink(missing_ok=True)


_AGO = re.compile(
    r"(?i)\b(less than a second|about a minute|about an hour|an hour|a minute|\d+ (?:seconds?|minutes?|hours?|days?|weeks?|months?|years?)) ago"
)
_TS = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z| [+-]\d{4} \w+|[+-]\d\d:\d\d)?")
_ID25 = re.compile(r"\b[0-9a-z]{25}\b")
# truncated IDs: where tables, JSON and log prefixes put them (they may have no digit), or any with a digit
_ID12 = re.compile(
    r'(?m)(?:^|(?<=\.))[0-9a-z]{12}(?=\s|@|$)|(?<=")[0-9a-z]{12}(?=")|\b(?=[0-9a-z]*[0-9])[0-9a-z]{12}\b'
)


def normalise(text: str, names: dict[str, str] | None = None) -> str:
    """Placeholders for what differs between two runs: ages, timestamps, object IDs, given names."""
    for old, new in (names or {}).items():
        text = re.sub(rf"\b{re.escape(old)}\b", new, text)
    text = _AGO.sub("<ago>", text)
    text = _TS.sub("<time>", text)
    text = _ID25.sub("<id>", text)
    text = re.sub(r'"Index": \d+', '"Index": <n>', text)  # object versions
    text = _ID12.sub("<id12>", text)
    if "<ago>" in text:  # the columns' widths follow the ages' texts
        text = re.sub(r" {2,}", "   ", text)
    return text
