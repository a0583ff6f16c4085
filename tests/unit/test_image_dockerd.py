"""gorae's `save` output loaded by the real dockerd (`docker load`), and a real `docker save` loaded by gorae.

dockerd runs on its own data root, exec root and socket, and is stopped and cleaned up after the module.
Skipped when dockerd is not installed or does not come up in this sandbox.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator

import pytest
from conftest import reference_dockerd, skip_outside_ci, unmount_under

from gorae.image.bootstrap import import_busybox
from gorae.image.service import ImageService
from gorae.snapshot.overlay import OverlaySnapshotter
from gorae.store.content import ContentStore
from gorae.store.metadata import MetadataStore

if shutil.which("dockerd") is None:  # in CI the session's preflight (tests/conftest.py) fails instead
    pytest.skip("dockerd is not installed", allow_module_level=True)


class RefDockerd:
    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:8]
        self.data = f"/tmp/dref-{tag}"
        self.exec_root = f"/tmp/drefx-{tag}"
        self.sock = f"/tmp/dref-{tag}.sock"
        self.pidfile = f"/tmp/dref-{tag}.pid"
        self.log = f"/tmp/dref-{tag}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "wb") as log:
            argv, env = reference_dockerd(
                self.data, self.exec_root, f"unix://{self.sock}", self.pidfile, "--storage-driver", "overlay2"
            )
            self.proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env
            )
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if self.docker("version", check=False).returncode == 0:
                return
            time.sleep(0.3)
        raise RuntimeError("dockerd did not start:\n" + self.read_log())

    def read_log(self) -> str:
        with open(self.log, encoding="utf-8", errors="replace") as f:
            return f.read()[-4000:]

    def docker(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, DOCKER_HOST=f"unix://{self.sock}")
        env.pop("DOCKER_CONTEXT", None)
        res = subprocess.run(["docker", *args], env=env, capture_output=True, text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(
                f"docker {args}: {res.returncode}\n{res.stdout}\n{res.stderr}\n{self.read_log()}"
            )
        return res

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        for root in (self.data, self.exec_root):
            unmount_under(root)
            shutil.rmtree(root, ignore_errors=True)
        for p in (self.sock, self.pidfile, self.log):
            if os.path.exists(p):
                os.unlink(p)


@pytest.fixture(scope="module")
def dockerd() -> Iterator[RefDockerd]:
    d = RefDockerd()
    try:
        try:
            d.start()
        except RuntimeError as e:
            skip_outside_ci(f"dockerd unavailable here: {e}")
        yield d
    finally:
        d.stop()


@pytest.fixture
def images() -> Iterator[ImageService]:
    base = tempfile.mkdtemp(prefix=f"gorae-imgd-{uuid.uuid4().hex[:6]}-")
    meta = MetadataStore(os.path.join(base, "gorae.db"))
    snap = OverlaySnapshotter(os.path.join(base, "overlay"))
    try:
        yield ImageService(meta, ContentStore(os.path.join(base, "content")), snap, os.path.join(base, "tmp"))
    finally:
        meta.close()
        snap.close()
        unmount_under(base)
        shutil.rmtree(base, ignore_errors=True)


def test_docker_loads_gorae_save(dockerd: RefDockerd, images: ImageService) -> None:
    iid = import_busybox(images, tag="gorae-busybox:test")
    path = os.path.join(images.tmp, "save.tar")
    with open(path, "wb") as f:
        images.save(["gorae-busybox:test"], f)
    out = dockerd.docker("load", "-i", path).stdout
    assert "Loaded image: gorae-busybox:test" in out
    got = dockerd.docker(
        "image", "inspect", "-f", "{{.Id}} {{json .Config.Cmd}}", "gorae-busybox:test"
    ).stdout
    assert got.split() == [iid, '["sh"]']
    run = dockerd.docker("run", "--rm", "--network", "none", "gorae-busybox:test", "echo", "ok", check=False)
    if run.returncode != 0:
        skip_outside_ci(
            f"image loaded with the same ID, but dockerd cannot run containers here: {run.stderr[-300:]}"
        )
    assert run.stdout.strip() == "ok"


def test_gorae_loads_docker_save(dockerd: RefDockerd, images: ImageService) -> None:
    base_id = import_busybox(images, tag="roundtrip:base")
    path = os.path.join(images.tmp, "in.tar")
    with open(path, "wb") as f:
        images.save(["roundtrip:base"], f)
    dockerd.docker("load", "-i", path)
    dockerd.docker("tag", "roundtrip:base", "roundtrip:again")
    out_path = os.path.join(images.tmp, "docker-save.tar")
    dockerd.docker("save", "-o", out_path, "roundtrip:again")
    images.remove("roundtrip:base", True, False, None)
    with open(out_path, "rb") as f:
        lines = list(images.load(io.BytesIO(f.read())))
    assert lines == ["Loaded image: roundtrip:again"]
    assert images.resolve("roundtrip:again").id == base_id
