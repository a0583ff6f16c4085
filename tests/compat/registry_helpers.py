"""Helpers for the registry server's tests: `gorae registry serve` (and Debian's docker-registry) as real
processes on free ports with temporary roots, and OCI image layouts written from bytes for skopeo to copy.

Everything started here is stopped, and every temporary directory removed, by the context managers, also
when the test fails.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")


@dataclass
class Registry:
    """A running registry process."""

    proc: subprocess.Popen[bytes]
    host: str
    port: int
    root: str
    scheme: str = "http"
    log: list[str] = field(default_factory=list)

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.addr}"

    def files(self) -> list[str]:
        """Every file under the storage root (relative paths), sorted."""
        out = []
        for d, _, files in os.walk(self.root):
            out += [os.path.relpath(os.path.join(d, f), self.root) for f in files]
        return sorted(out)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextlib.contextmanager
def gorae_registry(
    *args: str,
    tls: tuple[str, str] | None = None,
    env: dict[str, str] | None = None,
    command: str = "serve",
    src: str = SRC,
) -> Iterator[Registry]:
    """`gorae registry serve` (or `token-server`) on 127.0.0.1 (a free port) with a temporary root; `src`: the
    code to run (another copy for benchmarks)."""
    tmp = tempfile.mkdtemp(prefix="gorae-registry-test-")
    root = os.path.join(tmp, "root")
    argv = [
        sys.executable,
        "-m",
        "gorae.cmd.main",
        "registry",
        command,
        "--addr",
        "127.0.0.1:0",
    ]
    if command == "serve":
        argv += ["--root", root]
    if tls is not None:
        argv += ["--tls-cert", tls[0], "--tls-key", tls[1]]
    argv += list(args)
    with open(os.path.join(tmp, "stderr.log"), "wb") as err:  # the child keeps its own copy of the fd
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=err, env=dict(os.environ, PYTHONPATH=src, **(env or {}))
        )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        line = proc.stdout.readline().decode() if ready else ""
        if "listening on" not in line:
            _stop(proc)
            raise RuntimeError(f"registry did not start: {line!r} {Path(tmp, 'stderr.log').read_text()}")
        url = line.split()[-1]
        scheme, _, hostport = url.partition("://")
        host, _, port = hostport.rpartition(":")
        yield Registry(proc, host, int(port), root, scheme)
    finally:
        _stop(proc)
        if proc.stdout is not None:
            proc.stdout.close()
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def skopeo_workdir(prefix: str) -> Iterator[Path]:
    """A scratch directory for a module's skopeo round trips (skopeo required: in CI its absence fails),
    removed afterwards."""
    from conftest import skip_outside_ci

    if shutil.which("skopeo") is None:
        skip_outside_ci("skopeo is not installed")
    d = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(host: str, port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Until something accepts on host:port (the process must stay alive meanwhile)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        with socket.socket() as s:
            s.settimeout(1)
            if s.connect_ex((host, port)) == 0:
                return
        select.select([], [], [], 0.05)  # the port is not open yet: nothing to wait on but time
    raise TimeoutError(f"nothing listening on {host}:{port}")


@contextlib.contextmanager
def reference_registry() -> Iterator[Registry]:
    """Debian's docker-registry (distribution) with a filesystem root on a free port."""
    tmp = tempfile.mkdtemp(prefix="docker-registry-test-")
    root = os.path.join(tmp, "root")
    port = free_port()
    config = os.path.join(tmp, "config.yml")
    with open(config, "w") as f:
        f.write(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: "
            f"{root}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n"
        )
    with open(os.path.join(tmp, "stderr.log"), "wb") as err:
        proc = subprocess.Popen(["docker-registry", "serve", config], stdout=subprocess.DEVNULL, stderr=err)
    try:
        wait_port("127.0.0.1", port, proc)
        yield Registry(proc, "127.0.0.1", port, root)
    finally:
        _stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


# -- OCI image layouts ------------------------------------------------------------------------------


def _put_blob(layout: str, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(layout, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def tar_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write_oci_layout(
    layout: str, layers: list[bytes], tag: str = "latest", cmd: list[str] | None = None, gzip_level: int = 6
) -> str:
    """An OCI image layout holding one image of tar `layers` (gzipped, as registries carry them: a client
    pushing uncompressed layers compresses them on the way); returns the manifest digest."""
    descs = []
    diff_ids = []
    for layer in layers:
        diff_ids.append(f"sha256:{hashlib.sha256(layer).hexdigest()}")
        packed = gzip.compress(layer, compresslevel=gzip_level, mtime=0)
        descs.append(
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **_put_blob(layout, packed)}
        )
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Cmd": cmd or ["sh"],
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    config_desc = {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        **_put_blob(layout, json.dumps(config).encode()),
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_desc,
        "layers": descs,
    }
    mdesc = _put_blob(layout, json.dumps(manifest).encode())
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                **mdesc,
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump(index, f)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    return str(mdesc["digest"])
