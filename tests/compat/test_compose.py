"""docker-compose v1 (Debian's `docker-compose`, docker-py underneath) against each target daemon (gorae, and a
real dockerd for the reference): a two-service project with a user network, an alias, a named volume and
depends_on — `up -d`, `ps`, `logs`, `exec`, `down -v` (issue 14). Compose creates each container, then
disconnects and reconnects it to its networks before starting it: the path that needs connect/disconnect of a
created container."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from cli_daemon import gorae_env
from conftest import skip_outside_ci

COMPOSE_FILE = """\
version: "2.4"
services:
  db:
    image: busybox
    command: sh -c 'echo db-up; echo hello > /data/x; exec httpd -f -p 8080 -h /data'
    networks:
      back:
        aliases: [database]
    volumes:
      - dbdata:/data
  web:
    image: busybox
    command: sh -c 'echo web-up; exec sleep 300'
    depends_on: [db]
    networks: [back]
volumes:
  dbdata:
networks:
  back:
"""


def _compose(daemon: Any, project: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = gorae_env(daemon)
    return subprocess.run(
        ["docker-compose", "--ansi", "never", "-p", project.name, *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def project(daemon: Any, tmp_path: Path):  # type: ignore[no-untyped-def]
    if not shutil.which("docker-compose"):
        skip_outside_ci("docker-compose not installed (scripts/test.sh installs Debian's)")
    d = tmp_path / f"cp{uuid.uuid4().hex[:8]}"
    d.mkdir()
    (d / "docker-compose.yml").write_text(COMPOSE_FILE)
    try:
        yield d
    finally:
        _compose(daemon, d, "down", "-v", "--remove-orphans")


def test_compose_up_ps_logs_exec_down(daemon: Any, project: Path, dk) -> None:  # type: ignore[no-untyped-def]
    name = project.name
    r = _compose(daemon, project, "up", "-d")
    assert r.returncode == 0, r.stderr
    r = _compose(daemon, project, "ps", "-q")
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.split()) == 2
    states = dk("ps", "--filter", f"label=com.docker.compose.project={name}", "--format", "{{.Names}} {{.State}}")
    assert sorted(states.stdout.split("\n")[:-1]) == [f"{name}_db_1 running", f"{name}_web_1 running"]
    # the alias and the service name resolve on the project network; the volume holds what db wrote
    r = _compose(daemon, project, "exec", "-T", "web", "wget", "-qO-", "http://database:8080/x")
    assert (r.returncode, r.stdout) == (0, "hello\n"), r.stderr
    r = _compose(daemon, project, "exec", "-T", "web", "wget", "-qO-", "http://db:8080/x")
    assert (r.returncode, r.stdout) == (0, "hello\n"), r.stderr
    # stats carry the `networks` section: the web container's traffic shows in NET I/O
    netio = dk("stats", "--no-stream", "--format", "{{.NetIO}}", f"{name}_web_1")
    assert netio.returncode == 0 and netio.stdout.strip() not in ("", "0B / 0B"), (netio.stdout, netio.stderr)
    aliases = dk("inspect", "-f", f"{{{{json .NetworkSettings.Networks.{name}_back.Aliases}}}}", f"{name}_db_1")
    assert "database" in aliases.stdout and '"db"' in aliases.stdout, aliases.stdout
    r = _compose(daemon, project, "logs", "--no-color", "db")
    assert r.returncode == 0, r.stderr
    assert "db-up" in r.stdout
    r = _compose(daemon, project, "down", "-v")
    assert r.returncode == 0, r.stderr
    assert dk("ps", "-aq", "--filter", f"label=com.docker.compose.project={name}").stdout == ""
    assert dk("volume", "ls", "-q", "--filter", f"name={name}_dbdata").stdout == ""
    assert dk("network", "ls", "-q", "--filter", f"name={name}_back").stdout == ""
