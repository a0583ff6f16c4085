"""Debian's docker-registry (the reference Go registry, distribution 2.8) as a peer of the daemon-side registry client tests (test_distribution_*.py; the CLI tests have theirs in registry_peer.py): a temp config.yml,
filesystem storage in a temp dir, a free port on the address asked for, optional htpasswd auth and TLS
(an openssl-made CA and server certificate). Started and stopped by the tests (always removed)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

import pytest
from conftest import skip_outside_ci

REGISTRY = "/usr/bin/docker-registry"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def make_ca(dir: str, host_ip: str) -> tuple[str, str, str]:
    """(ca.crt, server.crt, server.key) for `host_ip` signed by a fresh CA."""
    ca_key, ca_crt = os.path.join(dir, "ca.key"), os.path.join(dir, "ca.crt")
    key, csr, crt = (os.path.join(dir, n) for n in ("server.key", "server.csr", "server.crt"))
    ext = os.path.join(dir, "ext.cnf")
    with open(ext, "w") as f:
        f.write(f"subjectAltName=IP:{host_ip},DNS:localhost\n")
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca_crt,
        "-days", "2", "-subj", "/CN=gorae test CA")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", f"/CN={host_ip}")
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
        "-out", crt, "-days", "2", "-extfile", ext)
    return ca_crt, crt, key


@dataclass
class Registry:
    host_ip: str = "127.0.0.1"
    htpasswd: tuple[str, str] | None = None
    tls: bool = False
    dir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="gorae-reg-"))
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    ca: str = ""

    @property
    def addr(self) -> str:
        return f"{self.host_ip}:{self.port}"

    def start(self) -> Registry:
        if not os.path.exists(REGISTRY):
            skip_outside_ci("Debian's docker-registry is not installed")
        self.port = free_port(self.host_ip)
        cfg = [
            "version: 0.1",
            "log:",
            "  level: warn",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {self.dir}/data",
            "  delete:",
            "    enabled: true",
            "http:",
            f"  addr: {self.addr}",
        ]
        if self.tls:
            self.ca, crt, key = make_ca(self.dir, self.host_ip)
            cfg += ["  tls:", f"    certificate: {crt}", f"    key: {key}"]
        if self.htpasswd:
            import bcrypt

            user, pw = self.htpasswd
            hashed = bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds=5)).decode()
            with open(os.path.join(self.dir, "htpasswd"), "w") as f:
                f.write(f"{user}:{hashed}\n")
            cfg += ["auth:", "  htpasswd:", "    realm: gorae-test", f"    path: {self.dir}/htpasswd"]
        path = os.path.join(self.dir, "config.yml")
        with open(path, "w") as f:
            f.write("\n".join(cfg) + "\n")
        self.proc = subprocess.Popen(
            [REGISTRY, "serve", path],
            stdout=open(os.path.join(self.dir, "log"), "wb"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {self.log()}")
            try:
                with socket.create_connection((self.host_ip, self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"docker-registry did not listen: {self.log()}")

    def log(self) -> str:
        try:
            with open(os.path.join(self.dir, "log"), errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def registry():  # type: ignore[no-untyped-def]
    r = Registry().start()
    try:
        yield r
    finally:
        r.stop()
