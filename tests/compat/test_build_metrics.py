"""Builds are timed into the engine metrics: `docker build` (DOCKER_BUILDKIT=0) against a daemon with
--metrics-addr, then `engine_daemon_build_actions_seconds{action="build"}` and the failure counter scraped."""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path

from conftest import new_daemon
from monitoring_peers import free_port
from prometheus_client.parser import text_string_to_metric_families


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def test_a_build_is_timed_and_a_failed_one_counted(tmp_path: Path) -> None:
    port = free_port()
    d = new_daemon(["--metrics-addr", f"127.0.0.1:{port}"], with_busybox=False)
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        build = frozenset({("action", "build")})
        failed = frozenset({("kind", "build"), ("action", "build")})
        before = scrape(url)
        assert before.get(("engine_daemon_build_actions_seconds_count", build), 0.0) == 0.0
        ok, bad = tmp_path / "ok", tmp_path / "bad"
        ok.mkdir()
        bad.mkdir()
        (ok / "Dockerfile").write_text("FROM scratch\nLABEL metrics=yes\n")
        (bad / "Dockerfile").write_text("FROM scratch\nRUN true\n")  # no shell in scratch: the step fails
        env = dict(d.env, DOCKER_BUILDKIT="0")
        r = subprocess.run(
            ["docker", "build", "-q", str(ok)], env=env, capture_output=True, text=True, timeout=120
        )
        assert r.returncode == 0, r.stderr
        after = scrape(url)
        assert after[("engine_daemon_build_actions_seconds_count", build)] == 1.0
        assert after[("engine_daemon_build_actions_seconds_sum", build)] > 0.0
        assert after.get(("engine_daemon_actions_failed_total", failed), 0.0) == 0.0
        r = subprocess.run(
            ["docker", "build", "-q", str(bad)], env=env, capture_output=True, text=True, timeout=120
        )
        assert r.returncode == 1, r.stderr
        last = scrape(url)
        assert last[("engine_daemon_build_actions_seconds_count", build)] == 2.0
        assert last[("engine_daemon_actions_failed_total", failed)] == 1.0
    finally:
        d.cleanup()
