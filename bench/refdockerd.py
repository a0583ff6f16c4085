"""The reference dockerd the benchmarks compare gorae with, on its own throw-away roots.

`Dockerd()` starts Debian's dockerd with `--iptables=false --ip-masq=false --ip-forward=false
--bridge=none` (it never touches the host's firewall or sysctls), on a unique unix socket, data root
and exec root, and imports the test busybox image; `close()` stops it and removes everything it made.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from conftest import busybox_tar, reference_dockerd, unmount_under  # noqa: E402


class Dockerd:
    """A dockerd on its own data root, exec root and socket; `env` points the docker CLI at it."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:8]
        self.root = tempfile.mkdtemp(prefix=f"dref-{tag}-")
        self.xroot = f"/tmp/drefx-{tag}"
        self.sock = f"/tmp/dref-{tag}.sock"
        self.log_path = os.path.join(tempfile.gettempdir(), f"dref-{tag}.log")
        self.log = open(self.log_path, "wb")
        argv, env = reference_dockerd(self.root, self.xroot, "unix://" + self.sock, self.root + ".pid")
        self.proc = subprocess.Popen(
            argv, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )
        self.env = dict(os.environ, DOCKER_HOST="unix://" + self.sock)
        for _ in range(200):
            if subprocess.run(["docker", "version"], env=self.env, capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        with open(busybox_tar(), "rb") as f:
            subprocess.run(
                ["docker", "import", "-c", 'CMD ["sh"]', "-", "busybox:latest"],
                stdin=f,
                env=self.env,
                check=True,
                capture_output=True,
            )

    def close(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        for root in (self.root, self.xroot):  # e.g. <exec-root>/netns, bound onto itself
            unmount_under(root)
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.xroot, ignore_errors=True)
        self.log.close()
        for path in (self.log_path, self.sock, self.root + ".pid"):
            with contextlib.suppress(OSError):
                os.unlink(path)
