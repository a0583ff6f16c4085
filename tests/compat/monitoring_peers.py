"""Real monitoring peers for the tests: Debian's carbon-cache (Graphite) and Prometheus, each in its own
temp dir on free loopback ports, stopped and removed by the caller's `stop()` (also when a test fails)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited {proc.returncode}: {_tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"port {port} not listening in {timeout}s: {_tail(log)}")


def _tail(path: str) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()[-3000:]
    except OSError:
        return ""


class _Peer:
    proc: subprocess.Popen[bytes] | None = None
    dir: str = ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)


class Carbon(_Peer):
    """carbon-cache with a 1 s retention, whisper files under its temp dir."""

    def __init__(self, port: int | None = None) -> None:
        self.dir = tempfile.mkdtemp(prefix="gorae-carbon-")
        self.port = port or free_port()
        d = self.dir
        with open(os.path.join(d, "carbon.conf"), "w") as f:
            f.write(
                f"[cache]\nSTORAGE_DIR = {d}/storage/\nLOCAL_DATA_DIR = {d}/storage/whisper/\n"
                f"WHITELISTS_DIR = {d}/storage/lists/\nCONF_DIR = {d}/\nLOG_DIR = {d}/log/\nPID_DIR = {d}/\n"
                "ENABLE_LOGROTATION = False\nUSER =\nENABLE_TAGS = False\nMAX_CACHE_SIZE = inf\n"
                "MAX_UPDATES_PER_SECOND = inf\nMAX_CREATES_PER_MINUTE = inf\nWHISPER_AUTOFLUSH = True\n"
                f"LINE_RECEIVER_INTERFACE = 127.0.0.1\nLINE_RECEIVER_PORT = {self.port}\n"
                f"ENABLE_UDP_LISTENER = False\nPICKLE_RECEIVER_INTERFACE = 127.0.0.1\n"
                f"PICKLE_RECEIVER_PORT = {free_port()}\nCACHE_QUERY_INTERFACE = 127.0.0.1\n"
                f"CACHE_QUERY_PORT = {free_port()}\n"
            )
        with open(os.path.join(d, "storage-schemas.conf"), "w") as f:
            f.write("[all]\npattern = .*\nretentions = 1s:1h\n")
        self.log = os.path.join(d, "carbon.out")
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                ["carbon-cache", f"--config={d}/carbon.conf", "--nodaemon", "start"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        try:
            _wait_port(self.port, self.proc, self.log)
        except BaseException:
            self.stop()
            raise

    def whisper(self, metric: str) -> str:
        return os.path.join(self.dir, "storage", "whisper", *metric.split(".")) + ".wsp"

    def values(self, metric: str) -> list[float]:
        """The non-empty points of `metric` in the last 10 minutes (whisper-fetch)."""
        out = subprocess.run(
            ["whisper-fetch", "--json", f"--from={int(time.time()) - 600}", self.whisper(metric)],
            capture_output=True, text=True, check=True,
        ).stdout
        return [v for v in json.loads(out)["values"] if v is not None]


class Prometheus(_Peer):
    """Prometheus scraping `target` (host:port) every second, its API on a free port."""

    def __init__(self, target: str) -> None:
        self.dir = tempfile.mkdtemp(prefix="gorae-prom-")
        self.port = free_port()
        cfg = os.path.join(self.dir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                f"scrape_configs:\n  - job_name: gorae\n    static_configs:\n      - targets: ['{target}']\n"
            )
        self.log = os.path.join(self.dir, "prometheus.out")
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                ["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={self.dir}/data",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        try:
            _wait_port(self.port, self.proc, self.log)
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float = 60.0) -> None:
        """Until /-/ready answers 200 (the API answers 503 while the TSDB opens)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:  # URLError/HTTPError (503) are OSErrors
                pass
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited {self.proc.returncode}: {_tail(self.log)}")
            time.sleep(0.2)
        raise RuntimeError(f"prometheus not ready in {timeout}s: {_tail(self.log)}")

    def api(self, path: str, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.load(r)

    def query(self, expr: str) -> list[dict[str, Any]]:
        body = self.api("query", query=expr)
        assert body["status"] == "success", body
        return list(body["data"]["result"])
