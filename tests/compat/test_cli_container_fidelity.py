"""What a container looks like from inside and to `diff`/`commit`/`exec`, through the real docker CLI against
gorae and a real dockerd (the same assertions pass on both; issue 14's review W2, W4, W9-W13):
`--device` nodes and cgroup rules, supplementary groups in `run` and `exec`, `--tmpfs` mounted once,
`/.dockerenv`, the engine's mount points (/etc/hostname, /etc/hosts, /etc/resolv.conf) left out of `diff` and
`commit`, exec start failures (126, docker's message), `exec -e VAR` with VAR unset (dropped), `exec -t`
output through a real terminal (`\\r\\n`, read with docker-py)."""

from __future__ import annotations

import os
import tarfile
import uuid

import docker
import pytest
from cli_daemon import NET

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run containers")


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _ok(res) -> str:  # noqa: ANN001
    assert res.returncode == 0, (res.args, res.stdout, res.stderr)
    return str(res.stdout)


def test_device_reaches_the_container_with_its_permissions(dk) -> None:  # noqa: ANN001
    out = _ok(
        dk(
            "run", "--rm", *NET, "--device", "/dev/null:/dev/mynull", "--device", "/dev/zero:/dev/myzero:r",
            "busybox", "sh", "-c",
            "stat -c '%t:%T %F' /dev/mynull /dev/myzero; echo x > /dev/mynull && echo wrote;"
            " head -c 2 /dev/myzero | od -An -tx1",
        )
    )
    assert out.splitlines() == [
        "1:3 character special file",
        "1:5 character special file",
        "wrote",
        " 00 00",
    ]


def test_device_cgroup_rule_opens_a_node(dk) -> None:  # noqa: ANN001
    # c 1:42 does not exist: the cgroup denies the open (EPERM) unless a rule allows it, then the kernel
    # says ENXIO
    script = "mknod /tmp/n c 1 42 && (cat /tmp/n 2>&1 | sed 's/.*: //')"
    assert _ok(dk("run", "--rm", *NET, "busybox", "sh", "-c", script)) == "Operation not permitted\n"
    got = _ok(dk("run", "--rm", *NET, "--device-cgroup-rule", "c 1:42 rwm", "busybox", "sh", "-c", script))
    assert got == "No such device or address\n"
    bad = dk("run", "--rm", *NET, "--device-cgroup-rule", "x 1:42 rwm", "busybox", "true")
    assert bad.returncode != 0 and "invalid device cgroup" in bad.stderr


def test_supplementary_groups_in_run_and_exec(dk) -> None:  # noqa: ANN001
    assert _ok(dk("run", "--rm", *NET, "busybox", "id", "-G")) == "0\n"
    assert _ok(dk("run", "--rm", *NET, "-u", "1000:1000", "busybox", "id", "-G")) == "1000\n"
    got = _ok(dk("run", "--rm", *NET, "-u", "1000:1000", "--group-add", "50", "busybox", "id", "-G"))
    assert got == "1000 50\n"  # busybox prints the primary gid first
    ct = _name("grp")
    _ok(dk("run", "-d", "--name", ct, *NET, "--group-add", "50", "busybox", "sleep", "600"))
    try:
        assert _ok(dk("exec", ct, "id", "-G")) == "0 50\n"
        assert _ok(dk("exec", "-u", "1000:1000", ct, "id", "-G")) == "1000 50\n"
    finally:
        dk("rm", "-f", ct)


def test_tmpfs_mounted_once_and_dockerenv(dk) -> None:  # noqa: ANN001
    out = _ok(
        dk(
            "run", "--rm", *NET, "--tmpfs", "/run:size=1m", "busybox", "sh", "-c",
            "grep -c ' /run ' /proc/mounts; stat -c '%a %s %F' /.dockerenv",
        )
    )
    assert out == "1\n755 0 regular empty file\n"


def test_export_has_dockerenv(dk, tmp_path) -> None:  # noqa: ANN001
    name = _name("exp")
    _ok(dk("create", "--name", name, *NET, "busybox", "true"))
    try:
        _ok(dk("export", "-o", str(tmp_path / "x.tar"), name))
        with tarfile.open(tmp_path / "x.tar") as tf:
            names = {m.name.removeprefix("./"): m for m in tf.getmembers()}
        assert names[".dockerenv"].isreg() and names[".dockerenv"].size == 0
    finally:
        dk("rm", "-f", name)


def test_diff_and_commit_leave_the_engine_files_out(dk) -> None:  # noqa: ANN001
    ct, ct2, img = _name("diff"), _name("diff2"), f"fx1img-{uuid.uuid4().hex[:8]}:1"
    try:
        _ok(dk("run", "--name", ct, *NET, "busybox", "true"))
        assert _ok(dk("diff", ct)) == ""
        base = _ok(dk("image", "inspect", "-f", "{{len .RootFS.Layers}}", "busybox")).strip()
        _ok(dk("commit", ct, img))
        assert _ok(dk("image", "inspect", "-f", "{{len .RootFS.Layers}}", img)).strip() == base
        _ok(dk("run", "--name", ct2, *NET, "busybox", "sh", "-c", "mkdir /newdir; touch /newdir/f /etc/added"))
        # dockerd lists changes in no fixed order
        assert sorted(_ok(dk("diff", ct2)).splitlines()) == ["A /etc/added", "A /newdir", "A /newdir/f", "C /etc"]
    finally:
        dk("rm", "-f", ct, ct2)
        dk("rmi", img)


def test_exec_failures_env_and_tty(dk, daemon) -> None:  # noqa: ANN001
    ct = _name("exec")
    _ok(dk("run", "-d", "--name", ct, *NET, "-e", "KEEP=1", "busybox", "sleep", "600"))
    try:
        missing = dk("exec", ct, "nosuchcmd")
        assert missing.returncode == 126
        said = missing.stdout + missing.stderr  # the docker CLI prints it on stdout
        assert said.startswith("OCI runtime exec failed: exec failed: unable to start container process: "), said
        assert '"nosuchcmd": executable file not found in $PATH' in said
        assert dk("exec", "-w", "/nonexist", ct, "pwd").returncode == 126
        # a bare name the client cannot resolve is dropped
        assert "FX1_UNSET" not in os.environ
        out = _ok(dk("exec", "-e", "FX1_UNSET", "-e", "SET=2", ct, "sh", "-c", "echo ${FX1_UNSET-none} $SET $KEEP"))
        assert out == "none 2 1\n"
        # docker-py reads the raw stream: a terminal's line discipline turns \n into \r\n
        api = docker.APIClient(base_url=daemon.host)
        try:
            for tty, want in ((True, b"a\r\nb\r\n"), (False, b"a\nb\n")):
                ex = api.exec_create(ct, ["sh", "-c", "echo a; echo b"], tty=tty)
                assert api.exec_start(ex["Id"], tty=tty) == want
        finally:
            api.close()
    finally:
        dk("rm", "-f", ct)
