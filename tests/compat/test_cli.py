"""The gorae CLI against real daemons: the gorae daemon and, where Debian's docker.io is installed, a real
dockerd (the CLI talks only through the Engine API, so both must work). GORAE_TEST_TARGET=gorae or =dref
picks one. Each target starts its own daemon on temporary roots and socket."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cli_daemon import NET, SRC, gorae_env
from conftest import wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run containers")


def test_run_output_and_exit_codes(g) -> None:  # noqa: ANN001
    r = g("run", "--rm", *NET, "busybox", "echo", "hi")
    assert (r.returncode, r.stdout) == (0, "hi\n")
    r = g("run", "--rm", *NET, "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\n")
    r = g("run", "--rm", *NET, "busybox", "nonexist")
    assert r.returncode == 127 and "Error response from daemon:" in r.stderr
    r = g("run", "--rm", *NET, "busybox", "/etc")
    assert r.returncode == 126
    r = g("run", "--bogus", "busybox")
    assert r.returncode == 125 and "unknown flag: --bogus" in r.stderr


def test_run_stdin_pipe_and_args_after_image(g) -> None:  # noqa: ANN001
    r = g("run", "--rm", "-i", *NET, "busybox", "cat", input="hi\n")
    assert (r.returncode, r.stdout) == (0, "hi\n")
    r = g("run", "--rm", *NET, "busybox", "echo", "-n", "--rm", "x")
    assert r.stdout == "--rm x"


def test_detached_lifecycle_ps_inspect_logs_exec(g, daemon) -> None:  # noqa: ANN001
    r = g(
        "run",
        "-d",
        "--name",
        "life",
        "-l",
        "k=v",
        *NET,
        "busybox",
        "sh",
        "-c",
        "echo started; echo oops >&2; sleep 300",
    )
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    assert len(cid) == 64
    # both lines are logged (and the container is up) before the listings are compared
    wait_for(lambda: ((r := g("logs", "life")).stdout, r.stderr) == ("started\n", "oops\n"))
    # other tests share this daemon: look at this container only
    ps = g("ps", "--filter", f"id={cid}")
    header = ps.stdout.splitlines()[0]
    assert header.split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    norm = re.compile(r"\d+ (second|minute)s? ago|About a minute ago|Less than a second ago|Up \S+( \S+)?")

    def same_but_times(out: str) -> str:  # "Up 9 seconds" and "Up 10 seconds" also pad differently
        return re.sub(" {3,}", "   ", norm.sub("T", out))

    assert same_but_times(ps.stdout) == same_but_times(daemon.docker("ps", "--filter", f"id={cid}").stdout)
    assert g("ps", "-q").stdout.split()[0] == cid[:12]
    assert g("ps", "--format", '{{.Names}}\t{{.Label "k"}}').stdout.splitlines() == ["life\tv"]
    assert g("inspect", "-f", "{{.State.Status}} {{.Config.Labels.k}}", "life").stdout == "running v\n"
    logs = g("logs", "life")
    assert (logs.stdout, logs.stderr) == ("started\n", "oops\n")
    ex = g("exec", "life", "sh", "-c", "echo in; exit 4")
    assert (ex.returncode, ex.stdout) == (4, "in\n")
    assert g("exec", "-i", "life", "cat", input="piped\n").stdout == "piped\n"
    assert g("exec", "-e", "A=1", "-w", "/bin", "life", "sh", "-c", "echo $A $PWD").stdout == "1 /bin\n"
    assert g("stop", "-t", "1", "life").stdout == "life\n"
    assert g("inspect", "-f", "{{.State.Running}}", "life").stdout == "false\n"
    assert g("rm", "life").stdout == "life\n"


def test_kill_wait_and_rm_force(g) -> None:  # noqa: ANN001
    cid = g("run", "-d", *NET, "busybox", "sleep", "300").stdout.strip()
    assert g("kill", "-s", "KILL", cid).returncode == 0
    assert g("wait", cid).stdout == "137\n"
    cid2 = g("run", "-d", *NET, "busybox", "sleep", "300").stdout.strip()
    assert g("rm", "-f", cid, cid2).returncode == 0
    assert cid2[:12] not in g("ps", "-a").stdout


def test_rm_flag_removes_container(g) -> None:  # noqa: ANN001
    r = g("run", "--rm", "--name", "gone", *NET, "busybox", "true")
    assert r.returncode == 0
    assert "gone" not in g("ps", "-a", "--format", "{{.Names}}").stdout.split()


def test_errors_match_docker(g) -> None:  # noqa: ANN001
    r = g("rm", "nope")
    assert (r.returncode, r.stderr) == (1, "Error response from daemon: No such container: nope\n")
    r = g("stop")
    assert r.returncode == 1 and "'gorae stop' requires at least 1 argument" in r.stderr
    r = g("inspect", "nope")
    assert (r.returncode, r.stdout, r.stderr) == (1, "[]\n", "Error: No such object: nope\n")


def test_cannot_connect_message() -> None:
    env = dict(os.environ, PYTHONPATH=SRC, DOCKER_HOST="unix:///tmp/gorae-no-such.sock")
    r = subprocess.run(
        [sys.executable, "-m", "gorae.cli.main", "ps"], capture_output=True, text=True, env=env
    )
    assert r.returncode == 1
    assert (
        r.stderr
        == "Cannot connect to the Docker daemon at unix:///tmp/gorae-no-such.sock. Is the docker daemon running?\n"
    )
    env.pop("DOCKER_HOST")
    env.pop("GORAE_HOST", None)
    # the default host, in a private mount namespace whose /run is empty (a gorae on this host does not answer)
    r = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            'mount -t tmpfs gorae-test-run /run && exec "$@"',
            "sh",
            sys.executable,
            "-m",
            "gorae.cli.main",
            "ps",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 1
    assert r.stderr == (
        "Cannot connect to the Docker daemon at unix:///run/gorae.sock. Is the docker daemon running?\n"
    )


def test_cp_both_ways(g, tmp_path: Path) -> None:  # noqa: ANN001
    cid = g("run", "-d", *NET, "busybox", "sleep", "300").stdout.strip()
    try:
        f = tmp_path / "hello.txt"
        f.write_text("hello\n")
        assert g("cp", str(f), f"{cid}:/tmp/").returncode == 0
        assert g("exec", cid, "cat", "/tmp/hello.txt").stdout == "hello\n"
        d = tmp_path / "dir"
        (d / "sub").mkdir(parents=True)
        (d / "sub" / "a").write_text("a")
        assert g("cp", str(d), f"{cid}:/tmp/dir").returncode == 0
        back = tmp_path / "back"
        assert g("cp", f"{cid}:/tmp/dir", str(back)).returncode == 0
        assert (back / "sub" / "a").read_text() == "a"
        out = tmp_path / "copied.txt"
        assert g("cp", f"{cid}:/tmp/hello.txt", str(out)).returncode == 0
        assert out.read_text() == "hello\n"
        r = g("cp", f"{cid}:/nope", str(tmp_path))
        assert r.returncode == 1 and "Could not find the file /nope" in r.stderr
    finally:
        g("rm", "-f", cid)


def test_images_tag_rmi_save_load(g, tmp_path: Path) -> None:  # noqa: ANN001
    r = g("images")
    assert r.stdout.splitlines()[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert g("tag", "busybox", "bbtest:v1").returncode == 0
    assert "bbtest:v1" in g("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    tar = tmp_path / "bb.tar"
    assert g("save", "-o", str(tar), "bbtest:v1").returncode == 0
    assert g("rmi", "bbtest:v1").stdout == "Untagged: bbtest:v1\n"
    assert g("load", "-i", str(tar)).stdout == "Loaded image: bbtest:v1\n"
    saved = g("save", "bbtest:v1", text=False).stdout
    assert g("rmi", "bbtest:v1").returncode == 0
    assert g("load", input=saved, text=False).returncode == 0
    assert g("rmi", "bbtest:v1").returncode == 0
    r = g("rmi", "nope")
    assert r.returncode == 1 and "No such image" in r.stderr


def test_export_import(g) -> None:  # noqa: ANN001
    cid = g("create", *NET, "busybox", "true").stdout.strip()
    tar = g("export", cid, text=False).stdout
    assert g("rm", cid).returncode == 0
    r = g("import", "-", "imported:1", input=tar, text=False)
    assert r.returncode == 0 and r.stdout.startswith(b"sha256:")
    assert g("run", "--rm", *NET, "imported:1", "/bin/echo", "ok").stdout == "ok\n"
    g("rmi", "imported:1")


def test_help_shape(g) -> None:  # noqa: ANN001
    r = g("ps", "--help")
    assert r.returncode == 0
    assert r.stdout.startswith("Usage:  gorae ps [OPTIONS]\n\nList containers\n\nAliases:\n")
    assert "  -a, --all             Show all containers (default shows just running)\n" in r.stdout
    assert g("run", "--help").stdout.startswith("Usage:  gorae run [OPTIONS] IMAGE [COMMAND] [ARG...]\n")
    assert "Usage:  gorae container ls [OPTIONS]" in g("container", "ls", "--help").stdout
    assert "Common Commands:" in g("--help").stdout
    assert g("completion", "bash").stdout.startswith("# bash completion")


def test_interactive_tty(daemon) -> None:  # noqa: ANN001
    pexpect = pytest.importorskip("pexpect")
    child = pexpect.spawn(
        sys.executable,
        ["-m", "gorae.cli.main", "run", "-it", "--rm", *NET, "busybox", "sh"],
        env=gorae_env(daemon),
        timeout=30,
        encoding="utf-8",
    )
    child.expect(r"[#$] ")
    child.sendline("echo $((40+2))")
    child.expect("42")
    child.sendline("exit 3")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 3


def test_tty_detach_keys(daemon, g) -> None:  # noqa: ANN001
    pexpect = pytest.importorskip("pexpect")
    child = pexpect.spawn(
        sys.executable,
        ["-m", "gorae.cli.main", "run", "-it", "--name", "det", *NET, "busybox", "sh"],
        env=gorae_env(daemon),
        timeout=30,
        encoding="utf-8",
    )
    child.expect(r"[#$] ")
    child.send("\x10\x11")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert g("inspect", "-f", "{{.State.Running}}", "det").stdout == "true\n"
    g("rm", "-f", "det")
