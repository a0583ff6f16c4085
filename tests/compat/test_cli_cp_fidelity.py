"""`docker cp` / `gorae cp` / docker-py's archive calls as dockerd answers them (issue 14's review W5-W8), on gorae
and a real dockerd: copies out of a stopped container never fail when requests overlap or a client leaves a
body unread (the rootfs stays mounted while referenced, and is mounted again if a cancelled release took it
away); `ctr:/dir/.` copies the contents; a symlink is copied as a link (with `-L`, its target under the link's
name); a host file keeps its owner without `-a` (and with it, in a container without a `User`); a created, never
started container's anonymous volume takes a copy."""

from __future__ import annotations

import io
import os
import tarfile
import uuid
from pathlib import Path

import docker
import pytest
from cli_daemon import NET

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run containers")

SETUP = "ln -s /nowhere /dangling; ln -s /x /lnk; echo x > /x; mkdir -p /newdir/sub /d2; echo a > /newdir/f; echo b > /newdir/sub/g"


def _ok(res) -> str:  # noqa: ANN001
    assert res.returncode == 0, (res.args, res.stdout, res.stderr)
    return str(res.stdout)


@pytest.fixture
def stopped(dk):  # noqa: ANN001, ANN201
    name = f"cpf-{uuid.uuid4().hex[:8]}"
    _ok(dk("run", "--name", name, *NET, "busybox", "sh", "-c", SETUP))
    yield name
    dk("rm", "-f", name)


def test_copies_out_of_a_stopped_container_never_lose_the_rootfs(
    dk, daemon, stopped, tmp_path: Path  # noqa: ANN001
) -> None:
    for i in range(4):  # alternate runs failed: a release cancelled by the client's hang-up left `mounted` set
        _ok(dk("cp", f"{stopped}:/lnk", str(tmp_path / f"l{i}")))
        assert os.readlink(tmp_path / f"l{i}") == "/x"
    api = docker.APIClient(base_url=daemon.host)
    try:
        for _ in range(3):
            _body, st = api.get_archive(stopped, "/lnk")  # the body is left unread
            assert st["linkTarget"] == "/x"
        body, st = api.get_archive(stopped, "/newdir/f")
        with tarfile.open(fileobj=io.BytesIO(b"".join(body))) as tf:
            assert [m.name for m in tf.getmembers()] == ["f"]
    finally:
        api.close()


@pytest.mark.parametrize("cli", ["g", "dk"])
def test_cp_out_dir_contents_and_symlinks(
    cli: str, request: pytest.FixtureRequest, stopped: str, tmp_path: Path
) -> None:
    run = request.getfixturevalue(cli)
    out = tmp_path / "out"
    out.mkdir()
    _ok(run("cp", f"{stopped}:/newdir/.", f"{out}/"))
    assert sorted(os.listdir(out)) == ["f", "sub"] and (out / "sub" / "g").read_text() == "b\n"
    _ok(run("cp", f"{stopped}:/newdir/.", str(tmp_path / "fresh")))  # a missing destination is made
    assert sorted(os.listdir(tmp_path / "fresh")) == ["f", "sub"]
    _ok(run("cp", f"{stopped}:/lnk", f"{out}/"))
    assert os.readlink(out / "lnk") == "/x"
    _ok(run("cp", "-L", f"{stopped}:/lnk", str(out / "l2")))
    assert (out / "l2").read_text() == "x\n" and not os.path.islink(out / "l2")
    _ok(run("cp", "-L", f"{stopped}:/lnk", f"{out}/sub/"))
    assert (out / "sub" / "lnk").read_text() == "x\n"  # the target, under the link's name
    missing = run("cp", "-L", f"{stopped}:/dangling", str(out / "d"))
    assert missing.returncode == 1
    assert missing.stderr == f"Error response from daemon: Could not find the file /nowhere in container {stopped}\n"


@pytest.mark.parametrize("cli", ["g", "dk"])
def test_cp_in_keeps_the_owner_unless_archive(
    cli: str, request: pytest.FixtureRequest, daemon, stopped: str, tmp_path: Path  # noqa: ANN001
) -> None:
    run = request.getfixturevalue(cli)
    f = tmp_path / "owned"
    f.write_text("o\n")
    os.chown(f, 1234, 1234)
    _ok(run("cp", str(f), f"{stopped}:/d2/"))
    _ok(run("cp", "-a", str(f), f"{stopped}:/d2/archived"))

    def owner(path: str) -> tuple[int, int]:
        api = docker.APIClient(base_url=daemon.host)
        try:
            body, _ = api.get_archive(stopped, path)
            with tarfile.open(fileobj=io.BytesIO(b"".join(body))) as tf:
                m = tf.getmembers()[0]
                return m.uid, m.gid
        finally:
            api.close()

    assert owner("/d2/owned") == (1234, 1234)
    # -a (copyUIDGID): the container's Config.User owns the files; a container without one keeps the header's
    assert owner("/d2/archived") == (1234, 1234)


def test_cp_into_a_created_containers_anonymous_volume(g, dk, tmp_path: Path) -> None:  # noqa: ANN001
    name = f"cpv-{uuid.uuid4().hex[:8]}"
    src = tmp_path / "payload"
    src.write_text("into the volume\n")
    _ok(dk("create", "--name", name, *NET, "-v", "/vol1", "busybox", "sh", "-c", "cat /vol1/payload /vol1/p2"))
    try:
        _ok(dk("cp", str(src), f"{name}:/vol1/"))
        _ok(g("cp", str(src), f"{name}:/vol1/p2"))
        assert _ok(dk("start", "-a", name)) == "into the volume\ninto the volume\n"
    finally:
        dk("rm", "-f", "-v", name)


def test_cp_with_a_driver_option_volume_of_a_stopped_container(dk, tmp_path: Path) -> None:  # noqa: ANN001
    """A volume with driver options (`type=none,o=bind` onto a host directory) is mounted for the copy, as
    moby's mountVolumes: a copy into a stopped container lands in the volume, and a copy out reads it."""
    vol, name = f"cpo-{uuid.uuid4().hex[:8]}", f"cpo-{uuid.uuid4().hex[:8]}"
    hostdir = tmp_path / "hostdir"
    hostdir.mkdir()
    (hostdir / "there").write_text("already\n")
    src = tmp_path / "payload"
    src.write_text("copied in\n")
    _ok(dk("volume", "create", "--opt", "type=none", "--opt", f"device={hostdir}", "--opt", "o=bind", vol))
    try:
        _ok(dk("create", "--name", name, *NET, "-v", f"{vol}:/data", "busybox", "cat", "/data/payload"))
        _ok(dk("cp", str(src), f"{name}:/data/"))
        assert (hostdir / "payload").read_text() == "copied in\n"
        out = tmp_path / "back"
        _ok(dk("cp", f"{name}:/data/there", str(out)))
        assert out.read_text() == "already\n"
        assert _ok(dk("start", "-a", name)) == "copied in\n"
        _ok(dk("cp", f"{name}:/data/there", str(tmp_path / "again")))  # stopped now
        assert (tmp_path / "again").read_text() == "already\n"
    finally:
        dk("rm", "-f", name)
        dk("volume", "rm", vol)
