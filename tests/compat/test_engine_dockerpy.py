"""Engine core (issue 2) through docker-py: run detached and not, wait, events with since/until, images
save/load, archives both ways, and the inspect JSON key set compared with a real dockerd."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import uuid

import docker
import pytest
from conftest import GoraeDaemon, reference_dockerd, skip_outside_ci, unmount_under


def _name(prefix: str = "epy") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def names(gorae_daemon: GoraeDaemon):  # type: ignore[no-untyped-def]
    registered: list[str] = []
    yield registered
    for n in registered:
        gorae_daemon.docker("rm", "-f", n, check=False)


def test_run_detach_and_not_wait_and_remove(docker_client, names) -> None:  # type: ignore[no-untyped-def]
    assert docker_client.containers.run("busybox", "echo hi") == b"hi\n"
    assert (
        docker_client.containers.run("busybox", ["sh", "-c", "echo $X"], environment={"X": "y"}, remove=True)
        == b"y\n"
    )
    name = _name()
    names.append(name)
    ct = docker_client.containers.run(
        "busybox",
        ["sh", "-c", "sleep 0.3; exit 4"],
        detach=True,
        name=name,
        working_dir="/tmp",
        user="nobody",
    )
    assert ct.status in ("created", "running")
    assert ct.wait(timeout=20)["StatusCode"] == 4
    ct.reload()
    assert ct.attrs["State"]["ExitCode"] == 4 and ct.attrs["Config"]["User"] == "nobody"
    with pytest.raises(docker.errors.APIError) as err:
        docker_client.api.wait(ct.id, condition="bogus")
    assert err.value.status_code == 400
    ct.remove()
    with pytest.raises(docker.errors.NotFound):
        ct.reload()


def test_events_since_until_and_filters(docker_client) -> None:  # type: ignore[no-untyped-def]
    since = time.time() - 1
    name = _name()
    docker_client.containers.run("busybox", "true", name=name, remove=True)
    until = time.time() + 1
    evs = list(
        docker_client.events(
            since=since, until=until, decode=True, filters={"container": name, "type": "container"}
        )
    )
    actions = [e["Action"] for e in evs]
    for a in ("create", "start", "die", "destroy"):
        assert a in actions, actions
    die = next(e for e in evs if e["Action"] == "die")
    assert die["Type"] == "container" and die["Actor"]["Attributes"]["name"] == name
    assert die["Actor"]["Attributes"]["exitCode"] == "0" and die["scope"] == "local"
    assert isinstance(die["timeNano"], int) and die["time"] == die["timeNano"] // 10**9
    # an until in the past ends the stream at once with nothing after it
    t0 = time.monotonic()
    assert (
        list(docker_client.events(since=since, until=since + 0.001, decode=True, filters={"container": name}))
        == []
    )
    assert time.monotonic() - t0 < 5


def test_images_save_load_roundtrip(docker_client) -> None:  # type: ignore[no-untyped-def]
    tag = f"epy-saved-{uuid.uuid4().hex[:6]}:v1"
    img = docker_client.images.get("busybox")
    img.tag(tag)  # docker-py sends repo=name:tag without a tag parameter
    assert tag in docker_client.images.get(tag).tags
    try:
        data = b"".join(docker_client.api.get_image(tag))
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        assert manifest[0]["RepoTags"] == [tag]
        docker_client.images.remove(tag)
        loaded = docker_client.images.load(data)
        assert tag in [t for i in loaded for t in i.tags]
        assert docker_client.images.get(tag).id == img.id
    finally:
        try:
            docker_client.images.remove(tag)
        except docker.errors.NotFound:
            pass


def test_put_archive_get_archive_and_stat(docker_client, names) -> None:  # type: ignore[no-untyped-def]
    name = _name()
    names.append(name)
    ct = docker_client.containers.run("busybox", ["sleep", "60"], detach=True, name=name)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("dir/hello.txt")
        payload = b"hello archive\n"
        info.size = len(payload)
        info.mode = 0o640
        tar.addfile(info, io.BytesIO(payload))
    assert ct.put_archive("/tmp", buf.getvalue()) is True
    assert ct.exec_run(["cat", "/tmp/dir/hello.txt"]).output == b"hello archive\n"
    stream, stat = ct.get_archive("/tmp/dir/hello.txt")
    assert stat["name"] == "hello.txt" and stat["size"] == 14 and stat["mode"] & 0o777 == 0o640
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        assert tar.extractfile("hello.txt").read() == b"hello archive\n"  # type: ignore[union-attr]
    with pytest.raises(docker.errors.NotFound):
        ct.get_archive("/no/such/path")
    with pytest.raises(docker.errors.NotFound):
        ct.put_archive("/no/such/dir", buf.getvalue())
    # a hostile tar cannot write outside the container's root
    evil = io.BytesIO()
    with tarfile.open(fileobj=evil, mode="w") as tar:
        info = tarfile.TarInfo("../../../../../../tmp/gorae-escape-" + name)
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    try:
        ct.put_archive("/tmp", evil.getvalue())
    except docker.errors.APIError as e:
        assert e.status_code < 500
    assert not os.path.exists("/tmp/gorae-escape-" + name)


# ---- the inspect JSON shape against a real dockerd -----------------------------------------------


def _keys(obj: object, prefix: str = "") -> set[str]:
    out: set[str] = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            p = f"{prefix}.{k}"
            out.add(p)
            # maps keyed by user data (labels, ports, networks, driver data) are not part of the shape
            user_map = k in ("Labels", "Ports", "Networks", "ExposedPorts", "Volumes", "Data", "Options")
            if not user_map and p != ".HostConfig.LogConfig.Config":
                out |= _keys(v, p)
    return out


@pytest.fixture(scope="module")
def dockerd(gorae_daemon: GoraeDaemon):  # type: ignore[no-untyped-def]
    """A real dockerd on its own temporary roots, with gorae's busybox loaded into it."""
    if not shutil.which("dockerd"):
        pytest.skip("dockerd (Debian docker.io) is not installed")
    tag = uuid.uuid4().hex[:8]
    root, xroot = tempfile.mkdtemp(prefix=f"dref-{tag}-"), f"/tmp/drefx-{tag}"
    sock = f"/tmp/dref-{tag}.sock"
    log = open(os.path.join(root, "dockerd.log"), "wb")
    argv, dockerd_env = reference_dockerd(
        os.path.join(root, "data"), xroot, f"unix://{sock}", os.path.join(root, "dockerd.pid")
    )
    proc = subprocess.Popen(
        argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=dockerd_env
    )
    env = dict(os.environ, DOCKER_HOST=f"unix://{sock}")
    try:
        deadline = time.monotonic() + 30
        while subprocess.run(["docker", "version"], env=env, capture_output=True).returncode != 0:
            if time.monotonic() > deadline or proc.poll() is not None:
                skip_outside_ci("dockerd did not start here")
            time.sleep(0.3)
        saved = subprocess.run(
            ["docker", "save", "busybox:latest"], env=gorae_daemon.env, capture_output=True, check=True
        ).stdout
        subprocess.run(["docker", "load"], env=env, input=saved, capture_output=True, check=True)
        yield env
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        unmount_under(root)
        unmount_under(xroot)
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(xroot, ignore_errors=True)
        if os.path.exists(sock):
            os.unlink(sock)


# keys dockerd 20.10 (API 1.41) shows that API 1.45 dropped
_DOCUMENTED = {".HostConfig.KernelMemory", ".HostConfig.KernelMemoryTCP", ".Config.NetworkDisabled"}


def _docker_json(env: dict[str, str], *args: str) -> dict:
    return json.loads(
        subprocess.run(["docker", *args], env=env, capture_output=True, text=True, check=True).stdout
    )[0]


@pytest.mark.parametrize("how", ["created", "running", "image"])
def test_inspect_key_sets_match_dockerd(gorae_daemon: GoraeDaemon, dockerd, how: str) -> None:  # type: ignore[no-untyped-def]
    shapes = []
    for env in (gorae_daemon.env, dockerd):
        if how == "image":
            shapes.append(_docker_json(env, "image", "inspect", "busybox"))
            continue
        name = _name("keys")
        args = ["create"] if how == "created" else ["run", "-d"]
        subprocess.run(
            [
                "docker",
                *args,
                "--name",
                name,
                "-e",
                "A=1",
                "-w",
                "/tmp",
                "-l",
                "x=y",
                "--memory",
                "64m",
                "--restart",
                "on-failure:2",
                "busybox",
                "sleep",
                "30",
            ],
            env=env,
            capture_output=True,
            check=True,
        )
        try:
            shapes.append(_docker_json(env, "inspect", name))
        finally:
            subprocess.run(["docker", "rm", "-f", name], env=env, capture_output=True)
    ours, theirs = (_keys(s) for s in shapes)
    assert ours - theirs == set()
    assert theirs - ours - _DOCUMENTED == set()
    if how != "image":
        g, r = shapes
        for key in (
            "IpcMode",
            "MemorySwap",
            "Memory",
            "RestartPolicy",
            "PidsLimit",
            "MemorySwappiness",
            "CgroupnsMode",
            "ShmSize",
            "Privileged",
            "LogConfig",
        ):
            assert g["HostConfig"][key] == r["HostConfig"][key], key
        for key in ("Env", "WorkingDir", "Cmd", "Labels", "Entrypoint", "User"):
            assert g["Config"][key] == r["Config"][key], key
        assert g["State"].keys() == r["State"].keys()
        assert g["State"]["Status"] == r["State"]["Status"]
