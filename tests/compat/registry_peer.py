"""Debian's docker-registry (the reference Go registry) as a peer for the CLI registry tests: filesystem storage
in a temp dir, plain HTTP on 127.0.0.1:<free port> (dockerd and the gorae daemon treat loopback registries as
insecure-allowed), optionally htpasswd (bcrypt) Basic auth. Plus the two CLIs run side by side with their own
DOCKER_CONFIG, through a pipe or under a pty, and a tiny terminal that replays cursor movement into the final
screen so docker's and gorae's redraws can be compared."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pexpect
from cli_daemon import SRC, Daemon
from conftest import skip_outside_ci

REGISTRY = "/usr/bin/docker-registry"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Registry:
    """One docker-registry process; `host` is "127.0.0.1:<port>"."""

    def __init__(self, base: Path, users: dict[str, str] | None = None) -> None:
        if not os.path.exists(REGISTRY):
            skip_outside_ci("docker-registry not installed")
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        self.root = base / "storage"
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        auth = ""
        if users:
            import bcrypt

            lines = [
                f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=4)).decode()}"
                for u, p in users.items()
            ]
            (base / "htpasswd").write_text("\n".join(lines) + "\n")
            auth = f"auth:\n  htpasswd:\n    realm: gorae-test\n    path: {base / 'htpasswd'}\n"
        (base / "config.yml").write_text(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
            f"    rootdirectory: {self.root}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.host}\n{auth}"
        )
        self.log = open(base / "registry.log", "wb")
        self.proc = subprocess.Popen(
            [REGISTRY, "serve", str(base / "config.yml")], stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 20
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"docker-registry did not start: {(base / 'registry.log').read_text()}")
            time.sleep(0.05)

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1).close()
            return True
        except urllib.error.HTTPError as e:
            return e.code == 401
        except OSError:
            return False

    def get(
        self, path: str, user: str = "", password: str = "", accept: str = ""
    ) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(f"http://{self.host}{path}")
        if user:
            import base64

            req.add_header(
                "Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            )
        if accept:
            req.add_header("Accept", accept)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def blob_path(self, digest: str) -> Path:
        hexd = digest.split(":", 1)[1]
        return self.root / "docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.base, ignore_errors=True)


def cli_env(daemon: Daemon, config_dir: Path | str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=SRC, DOCKER_HOST=daemon.host, DOCKER_CONFIG=str(config_dir))
    env.pop("GORAE_HOST", None)
    env.update(extra or {})
    return env


def argv(which: str, *args: str) -> list[str]:
    return ["docker", *args] if which == "docker" else [sys.executable, "-m", "gorae.cli.main", *args]


def run(
    which: str,
    daemon: Daemon,
    config_dir: Path | str,
    *args: str,
    input: str | None = None,
    extra_env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """One CLI ("docker" or "gorae") through pipes, stdin from `input` (else /dev/null)."""
    return subprocess.run(
        argv(which, *args),
        input=input if input is not None else "",
        capture_output=True,
        text=True,
        env=cli_env(daemon, config_dir, extra_env),
        timeout=timeout,
    )


def spawn(
    which: str, daemon: Daemon, config_dir: Path | str, *args: str, columns: int = 150
) -> pexpect.spawn:
    """One CLI under a pty of 40 rows and `columns` columns."""
    import io

    cmd = argv(which, *args)
    child = pexpect.spawn(
        cmd[0], cmd[1:], env=cli_env(daemon, config_dir), timeout=60, dimensions=(40, columns), encoding=None
    )
    child.logfile_read = io.BytesIO()
    return child


def transcript(child: pexpect.spawn) -> bytes:
    """Everything the program wrote to the pty, from its start to its exit."""
    child.expect(pexpect.EOF)
    child.close()
    log = child.logfile_read
    assert log is not None
    return bytes(log.getvalue())


_CSI = re.compile(rb"\x1b\[(\d*)([A-Za-z])")


def screen(raw: bytes) -> list[str]:
    """The lines a terminal shows after `raw`: handles \\r, \\n, ESC[nA, ESC[nB, ESC[2K and ESC[...m."""
    lines: list[list[str]] = [[]]
    row = col = 0
    i = 0
    text = raw
    while i < len(text):
        m = _CSI.match(text, i)
        if m:
            n = int(m.group(1) or 1)
            code = m.group(2)
            if code == b"A":
                row = max(row - n, 0)
            elif code == b"B":
                row += n
            elif code == b"K":
                lines[row] = []
            i = m.end()
            while len(lines) <= row:
                lines.append([])
            continue
        ch = text[i : i + 1]
        i += 1
        if ch == b"\r":
            col = 0
        elif ch == b"\n":
            row += 1
            while len(lines) <= row:
                lines.append([])
        else:
            line = lines[row]
            while len(line) < col:
                line.append(" ")
            c = ch.decode("latin-1")
            if col < len(line):
                line[col] = c
            else:
                line.append(c)
            col += 1
    out = ["".join(x).rstrip() for x in lines]
    while out and not out[-1]:
        out.pop()
    return out


def need(tool: str) -> None:
    if not shutil.which(tool):
        skip_outside_ci(f"{tool} not installed")
