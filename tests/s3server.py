"""moto's S3 server (`moto_server`, a real S3-compatible HTTP server) as a process on a free port, for the S3
storage driver's tests and `gorae registry serve --storage s3`.

`moto_s3()` starts one and stops it (also when the test fails); `new_bucket()` makes a bucket with a unique
name. Credentials are moto's dummies; nothing leaves the machine.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3

ACCESS_KEY = "gorae-test-key"
SECRET_KEY = "gorae-test-secret"
REGION = "us-east-1"


@dataclass
class MotoS3:
    proc: subprocess.Popen[bytes]
    endpoint: str

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def new_bucket(self) -> str:
        name = f"gorae-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def env(self) -> dict[str, str]:
        """The environment a `gorae registry` process reads its S3 credentials from."""
        return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every key of the bucket under `prefix`, sorted."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents") or [])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def moto_s3() -> Iterator[MotoS3]:
    """A moto S3 server on 127.0.0.1 (retries a port taken between probing and binding)."""
    exe = os.path.join(os.path.dirname(sys.executable), "moto_server")
    with tempfile.TemporaryFile() as log:
        yield from _start(exe, log)


def _start(exe: str, log: Any) -> Iterator[MotoS3]:
    for _ in range(3):
        port = _free_port()
        proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log)
        endpoint = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2):
                        break
                except OSError:
                    select.select([], [], [], 0.05)  # not listening yet: nothing to wait on but time
            else:
                continue
            yield MotoS3(proc, endpoint)
            return
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
    log.seek(0)
    raise RuntimeError(f"moto_server did not start: {log.read()[-2000:]!r}")
