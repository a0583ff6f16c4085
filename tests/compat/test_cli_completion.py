"""`gorae completion bash|zsh|fish|powershell`: docker 28's subcommands and help, and scripts that the shells
accept and that complete commands, flags and (through `gorae ps`/`gorae images`) container names."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cli_daemon import NET, gorae_env

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run containers")


@pytest.fixture
def shell_env(daemon, tmp_path: Path) -> dict[str, str]:  # noqa: ANN001
    """An environment whose PATH has a `gorae` that talks to the test daemon."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "gorae"
    exe.write_text(f'#!/bin/sh\nexec {sys.executable} -m gorae.cli.main "$@"\n')
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    env = gorae_env(daemon)
    env["PATH"] = f"{bindir}:{env['PATH']}"
    return env


def _sh(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)


def test_completion_subcommands_and_help(g) -> None:  # noqa: ANN001
    r = g("completion", "--help")
    assert r.returncode == 0
    assert r.stdout.startswith(
        "Usage:  gorae completion COMMAND\n\nGenerate the autocompletion script for gorae"
    )
    for line in (
        "  bash        Generate the autocompletion script for bash\n",
        "  fish        Generate the autocompletion script for fish\n",
        "  powershell  Generate the autocompletion script for powershell\n",
        "  zsh         Generate the autocompletion script for zsh\n",
    ):
        assert line in r.stdout
    assert g("completion").stdout == r.stdout
    for shell in ("bash", "zsh", "fish", "powershell"):
        h = g("completion", shell, "--help")
        assert h.returncode == 0 and "--no-descriptions   disable completion descriptions" in h.stdout
        assert g("completion", shell).returncode == 0
    if shutil.which("docker"):
        for shell in ("bash", "zsh", "fish", "powershell"):
            theirs = subprocess.run(["docker", "completion", shell, "--help"], capture_output=True, text=True)
            assert g("completion", shell, "--help").stdout == theirs.stdout.replace("docker", "gorae")
    r = g("completion", "tcsh")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "completion" not in g("--help").stdout  # hidden, as docker's


def test_bash_completion(g, shell_env) -> None:  # noqa: ANN001
    name = "compl-ctr"
    r = g("create", "--name", name, *NET, "busybox", "true")
    assert r.returncode == 0, r.stderr
    try:
        r = _sh(["bash", "-c", "source <(gorae completion bash); complete -p gorae"], shell_env)
        assert (r.returncode, r.stdout) == (0, "complete -F _gorae gorae\n"), r.stderr
        script = (
            "source <(gorae completion bash)\n"
            'c() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _gorae; echo "${COMPREPLY[*]}"; }\n'
            "c gorae ru\n"
            "c gorae rm ''\n"
            "c gorae run --deta\n"
            "c gorae completion ''\n"
            "c gorae container ins\n"
            "c gorae run --name ''\n"
        )
        r = _sh(["bash", "-c", script], shell_env)
        lines = r.stdout.splitlines()
        assert lines[0] == "run", r.stderr
        assert name in lines[1].split()
        assert lines[2] == "--detach --detach-keys"
        assert lines[3] == "bash fish powershell zsh"
        assert lines[4] == "inspect"
        assert lines[5] == ""  # a flag's value is not a container name
    finally:
        g("rm", "-f", name)


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_completion(g, shell_env) -> None:  # noqa: ANN001
    script = g("completion", "zsh").stdout
    assert script.startswith("#compdef gorae\n")
    assert "_arguments" in script and "_describe" in script
    assert "gorae ps -a --format '{{.Names}}'" in script
    assert "gorae images --format '{{.Repository}}:{{.Tag}}'" in script
    r = subprocess.run(["zsh", "-n"], input=script, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # loads into a zsh with compinit and defines a completer per command
    r = _sh(
        [
            "zsh",
            "-fc",
            "autoload -U compinit; compinit -u -D; source <(gorae completion zsh); "
            "whence -w _gorae __gorae_cmd_run __gorae_cmd_container_ls __gorae_subcommands_volume; "
            "print -r -- ${_comps[gorae]}",
        ],
        shell_env,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "_gorae"
    nodesc = g("completion", "zsh", "--no-descriptions").stdout
    assert "'run:Create and run" not in nodesc and "'run:Create and run" in script


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_completion(g, shell_env) -> None:  # noqa: ANN001
    script = g("completion", "fish").stdout
    r = subprocess.run(["fish", "-n"], input=script, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    name = "compl-fish"
    assert g("create", "--name", name, *NET, "busybox", "true").returncode == 0
    try:
        r = _sh(
            [
                "fish",
                "-c",
                "gorae completion fish | source; complete -C 'gorae ru'; echo ---; complete -C 'gorae rm '; "
                "echo ---; complete -C 'gorae run --deta'; echo ---; complete -C 'gorae volume l'",
            ],
            shell_env,
        )
        parts = [p.strip().splitlines() for p in r.stdout.split("---")]
        assert [x.split("\t")[0] for x in parts[0]] == ["run"], r.stderr
        assert name in [x.split("\t")[0] for x in parts[1]]
        assert [x.split("\t")[0] for x in parts[2]] == ["--detach", "--detach-keys"]
        assert {x.split("\t")[0] for x in parts[3]} == {"ls", "list"}
    finally:
        g("rm", "-f", name)
