"""`--help` of every swarm command (`swarm`, `node`, `secret`, `config`, `service` and their subcommands) is
the docker CLI's, byte for byte, with gorae's name in the usage lines."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from cli_daemon import SRC
from test_cli_output import _normalise_docker_help

COMMANDS = [
    "swarm", "swarm init", "swarm join", "swarm join-token", "swarm leave", "swarm update", "swarm unlock-key",
    "swarm unlock", "swarm ca", "node", "node ls", "node list", "node inspect", "node update", "node promote",
    "node demote", "node rm", "node ps", "secret", "secret create", "secret ls", "secret inspect", "secret rm",
    "config", "config create", "config ls", "config inspect", "config rm", "service", "service ls",
    "service inspect", "service ps", "service rm", "service scale", "service rollback", "service logs",
    "service create", "service update",
]  # fmt: skip


@pytest.mark.parametrize("cmd", COMMANDS)
def test_swarm_help_matches_docker(cmd: str) -> None:
    if not shutil.which("docker"):
        pytest.skip("docker CLI not installed")
    env = dict(os.environ, PYTHONPATH=SRC, COLUMNS="80")
    env.pop("DOCKER_HOST", None)  # no daemon: docker shows every flag, whatever the API version
    mine = subprocess.run(
        [sys.executable, "-m", "gorae.cli.main", *cmd.split(), "--help"], capture_output=True, text=True, env=env
    )
    theirs = subprocess.run(["docker", *cmd.split(), "--help"], capture_output=True, text=True, env=env)
    assert mine.returncode == theirs.returncode == 0
    assert mine.stdout == _normalise_docker_help(theirs.stdout)
