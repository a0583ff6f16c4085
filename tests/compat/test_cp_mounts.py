"""`docker cp` (and docker-py's get_archive/put_archive) through a container's mounts, as dockerd: the review's
F11 (issue 15) — a copy into a bind mount or a named volume of a running container was silently lost, and a
file in the bind mount was "Could not find the file". Running, stopped and created-but-not-started containers;
`:ro` mounts and a read-only rootfs refused with docker's texts; a symlink to `/` (or `..` up) inside a volume
resolves inside the container, never on the host; tmpfs mounts are not seen (as dockerd: the copy sees the
rootfs under them); overlapping copies out of a stopped container all succeed and leave the rootfs unmounted.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import pytest
from conftest import GoraeDaemon, inspect

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


@pytest.fixture
def d(tidy_daemon: GoraeDaemon) -> GoraeDaemon:
    return tidy_daemon


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _members(d: GoraeDaemon, src: str) -> dict[str, bytes]:
    """`docker cp CT:PATH -`: the tar's regular files and their contents (names of other entries → b"")."""
    res = subprocess.run(["docker", "cp", src, "-"], env=d.env, capture_output=True, timeout=60)
    assert res.returncode == 0, res.stderr.decode()
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(res.stdout)) as tar:
        for m in tar.getmembers():
            f = tar.extractfile(m) if m.isreg() else None
            name = m.name[2:] if m.name.startswith("./") else m.name.lstrip("/")
            out[name] = f.read() if f is not None else b""
    return out


def test_cp_into_and_out_of_bind_mount_and_named_volume(d: GoraeDaemon, tmp_path: Path) -> None:
    """The review's reproduction: `-v $PWD/bindsrc:/data -v namedvol1:/vol`, a running container."""
    bindsrc = tmp_path / "bindsrc"
    bindsrc.mkdir()
    (bindsrc / "inbind").write_text("from the host\n")
    payload = tmp_path / "payload"
    payload.write_text("copied in\n")
    ct, vol = _name("cpvol"), _name("namedvol")
    d.docker("run", "-d", "--name", ct, "-v", f"{bindsrc}:/data", "-v", f"{vol}:/vol", "busybox", "sleep", "600")

    d.docker("cp", str(payload), f"{ct}:/data/")
    assert (bindsrc / "payload").read_text() == "copied in\n"
    assert d.docker("exec", ct, "cat", "/data/payload").stdout == "copied in\n"
    d.docker("cp", str(payload), f"{ct}:/vol/")
    assert d.docker("exec", ct, "cat", "/vol/payload").stdout == "copied in\n"
    src = inspect(d, ct)["Mounts"]
    (vsrc,) = [m["Source"] for m in src if m["Destination"] == "/vol"]
    assert Path(vsrc, "payload").read_text() == "copied in\n"

    assert _members(d, f"{ct}:/data/inbind") == {"inbind": b"from the host\n"}
    d.docker("exec", ct, "sh", "-c", "echo made inside > /vol/inside")
    got = _members(d, f"{ct}:/vol")
    assert got["vol/inside"] == b"made inside\n" and got["vol/payload"] == b"copied in\n"
    # a copy of a directory holding mounts archives what is mounted there
    whole = _members(d, f"{ct}:/")
    assert whole["data/inbind"] == b"from the host\n" and whole["vol/inside"] == b"made inside\n"
    # the network files are the container's, as dockerd's cp shows them
    assert _members(d, f"{ct}:/etc/hostname")["hostname"].decode().strip() == inspect(d, ct)["Config"]["Hostname"]

    # stopped: the same view
    d.docker("stop", "-t", "0", ct)
    (bindsrc / "later").write_text("after stop\n")
    assert _members(d, f"{ct}:/data/later") == {"later": b"after stop\n"}
    d.docker("cp", str(payload), f"{ct}:/vol/again")
    assert Path(vsrc, "again").read_text() == "copied in\n"


def test_cp_read_only_mounts_refused_with_dockers_text(d: GoraeDaemon, tmp_path: Path) -> None:
    payload = tmp_path / "payload"
    payload.write_text("x\n")
    rosrc = tmp_path / "rosrc"
    rosrc.mkdir()
    (rosrc / "f").write_text("readable\n")
    ct, vol = _name("cpro"), _name("rovol")
    d.docker("run", "-d", "--name", ct, "-v", f"{rosrc}:/ro:ro", "-v", f"{vol}:/rovol:ro", "busybox", "sleep", "600")
    for dest in ("/ro/", "/rovol/", "/ro"):
        r = d.docker("cp", str(payload), f"{ct}:{dest}", check=False)
        assert r.returncode == 1 and "Error response from daemon: mounted volume is marked read-only" in r.stderr
    assert sorted(os.listdir(rosrc)) == ["f"]
    assert _members(d, f"{ct}:/ro/f") == {"f": b"readable\n"}
    # a read-only rootfs: a writable volume takes the copy, the rootfs refuses it
    ct2 = _name("cpreadonly")
    d.docker("run", "-d", "--name", ct2, "--read-only", "-v", "/w", "busybox", "sleep", "600")
    d.docker("cp", str(payload), f"{ct2}:/w/")
    assert d.docker("exec", ct2, "cat", "/w/payload").stdout == "x\n"
    r = d.docker("cp", str(payload), f"{ct2}:/tmp/", check=False)
    assert r.returncode == 1 and "container rootfs is marked read-only" in r.stderr


def test_cp_into_created_container_volume_before_start(d: GoraeDaemon, tmp_path: Path) -> None:
    """The fidelity review's 404: `docker cp` into a created container's `-v /vol1` path."""
    payload = tmp_path / "payload"
    payload.write_text("before start\n")
    bindsrc = tmp_path / "b"
    bindsrc.mkdir()
    ct = _name("cpcreated")
    d.docker("create", "--name", ct, "-v", "/vol1", "-v", f"{bindsrc}:/deep/bind", "busybox", "sleep", "600")
    d.docker("cp", str(payload), f"{ct}:/vol1/")
    d.docker("cp", str(payload), f"{ct}:/deep/bind/")
    assert (bindsrc / "payload").read_text() == "before start\n"
    assert _members(d, f"{ct}:/vol1/payload") == {"payload": b"before start\n"}
    d.docker("start", ct)
    assert d.docker("exec", ct, "cat", "/vol1/payload", "/deep/bind/payload").stdout == "before start\n" * 2


@pytest.mark.parametrize("running", [True, False])
def test_cp_symlink_to_root_inside_volume_stays_in_container(
    d: GoraeDaemon, tmp_path: Path, running: bool
) -> None:
    bindsrc = tmp_path / "bindsrc"
    bindsrc.mkdir()
    os.symlink("/", bindsrc / "toroot")
    os.symlink("../../../../../..", bindsrc / "up")
    os.symlink("/etc", bindsrc / "etc")
    marker = f"gorae-cp-escape-{uuid.uuid4().hex[:8]}"
    payload = tmp_path / marker
    payload.write_text("must stay inside\n")
    ct = _name("cpesc")
    d.docker("run", "-d", "--name", ct, "-v", f"{bindsrc}:/data", "-v", "/vol", "busybox", "sleep", "600")
    d.docker("exec", ct, "ln", "-s", "/", "/vol/inroot")
    if not running:
        d.docker("stop", "-t", "0", ct)
    try:
        for via in ("/data/toroot/", "/data/up/", "/vol/inroot/", "/vol/inroot/data/toroot/tmp/"):
            d.docker("cp", str(payload), f"{ct}:{via}")
        assert not os.path.exists(f"/{marker}") and not os.path.exists(f"/tmp/{marker}")
        # where the container sees it: its own root, and its /tmp
        assert _members(d, f"{ct}:/{marker}") == {marker: b"must stay inside\n"}
        assert _members(d, f"{ct}:/data/toroot/tmp/{marker}") == {marker: b"must stay inside\n"}
        # reading through the links reads the container's files, never the host's
        host_name = Path("/etc/hostname").read_text() if os.path.exists("/etc/hostname") else ""
        got = _members(d, f"{ct}:/data/etc/hostname")["hostname"].decode()
        assert got.strip() == inspect(d, ct)["Config"]["Hostname"] and got != host_name
        got = _members(d, f"{ct}:/vol/inroot/data/up/etc/passwd")["passwd"]
        assert got != Path("/etc/passwd").read_bytes()
    finally:
        for p in (f"/{marker}", f"/tmp/{marker}"):
            if os.path.lexists(p):
                os.unlink(p)


def test_cp_tmpfs_is_not_seen_as_dockerd(d: GoraeDaemon, tmp_path: Path) -> None:
    """dockerd's cp leaves tmpfs mounts out (moby setupMounts skips them): a copy goes to the rootfs under
    the tmpfs, and a file made in the tmpfs is not found (checked against dockerd 26)."""
    payload = tmp_path / "payload"
    payload.write_text("x\n")
    ct = _name("cptmpfs")
    d.docker("run", "-d", "--name", ct, "--tmpfs", "/tmpfsd", "busybox", "sleep", "600")
    d.docker("exec", ct, "sh", "-c", "echo x > /tmpfsd/inside")
    r = d.docker("cp", f"{ct}:/tmpfsd/inside", str(tmp_path / "out"), check=False)
    assert r.returncode == 1 and "Could not find the file /tmpfsd/inside" in r.stderr


def test_docker_py_archive_through_volume(d: GoraeDaemon, tmp_path: Path) -> None:
    bindsrc = tmp_path / "bindsrc"
    bindsrc.mkdir()
    name = _name("cppy")
    client = d.client()
    try:
        ct = client.containers.create(
            "busybox", ["sleep", "600"], name=name, volumes={str(bindsrc): {"bind": "/data", "mode": "rw"}}
        )
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo("sub/hello.txt")
            info.size = 6
            tar.addfile(info, io.BytesIO(b"hello\n"))
        assert ct.put_archive("/data", buf.getvalue()) is True
        assert (bindsrc / "sub" / "hello.txt").read_text() == "hello\n"
        stream, st = ct.get_archive("/data/sub/hello.txt")
        assert st["name"] == "hello.txt" and st["size"] == 6
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            assert tar.extractfile("hello.txt").read() == b"hello\n"  # type: ignore[union-attr]
        ct.start()
        assert ct.exec_run(["cat", "/data/sub/hello.txt"]).output == b"hello\n"
        ro = client.containers.run(
            "busybox", ["sleep", "600"], name=name + "-ro", detach=True,
            volumes={str(bindsrc): {"bind": "/data", "mode": "ro"}},
        )
        with pytest.raises(docker.errors.APIError) as e:
            ro.put_archive("/data", buf.getvalue())
        assert e.value.status_code == 400 and "mounted volume is marked read-only" in str(e.value)
    finally:
        for n in (name, name + "-ro"):
            try:
                client.containers.get(n).remove(force=True)
            except docker.errors.NotFound:
                pass
        client.close()


def test_overlapping_cp_out_of_stopped_container(d: GoraeDaemon, tmp_path: Path) -> None:
    """The fidelity review's random failures: overlapping copies out of a stopped container (the rootfs was
    unmounted while still in use). All succeed, and the rootfs is unmounted when the last one is done."""
    ct = _name("cpconc")
    d.docker("run", "--name", ct, "-v", "/vol", "busybox", "sh", "-c", "head -c 300000 /dev/urandom > /big; "
             "cp /big /vol/big")
    merged = inspect(d, ct)["GraphDriver"]["Data"]["MergedDir"]

    def one(i: int) -> int:
        src = f"{ct}:/big" if i % 2 else f"{ct}:/vol/big"
        res = subprocess.run(["docker", "cp", src, "-"], env=d.env, capture_output=True, timeout=60)
        assert res.returncode == 0, res.stderr.decode()
        with tarfile.open(fileobj=io.BytesIO(res.stdout)) as tar:
            return len(tar.extractfile("big").read())  # type: ignore[union-attr]

    with ThreadPoolExecutor(8) as pool:
        sizes = list(pool.map(one, range(48)))
    assert sizes == [300000] * 48
    with open("/proc/self/mountinfo") as f:
        assert f" {merged} " not in f.read()
