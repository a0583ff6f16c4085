"""Containers through real clients (docker-py and the docker CLI): run, logs, wait, exec, attach, lifecycle,
restart policies, --rm, names, and docker's error texts."""

from __future__ import annotations

import json
import os
import socket
import time
import uuid

import docker
import pytest
from conftest import GoraeDaemon, inspect
from conftest import unique_name as _name
from conftest import wait_for as _wait_for

# ---- docker-py ----------------------------------------------------------------------------------


def test_docker_py_run_returns_output(docker_client) -> None:  # type: ignore[no-untyped-def]
    out = docker_client.containers.run("busybox", ["sh", "-c", "echo hi; echo err >&2"], remove=True)
    assert out == b"hi\n"


def test_docker_py_run_nonzero_raises_container_error(docker_client) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(docker.errors.ContainerError) as err:
        docker_client.containers.run("busybox", ["sh", "-c", "echo bad >&2; exit 3"], remove=True)
    assert err.value.exit_status == 3


def test_docker_py_detached_logs_wait_and_remove(docker_client, cleanup) -> None:  # type: ignore[no-untyped-def]
    name = _name()
    cleanup.append(name)
    ct = docker_client.containers.run(
        "busybox", ["sh", "-c", "echo out; echo err >&2; sleep 0.3; exit 7"], detach=True, name=name
    )
    assert ct.wait(timeout=20) == {"StatusCode": 7, "Error": None}
    assert ct.logs() == b"out\nerr\n"
    assert ct.logs(stderr=False) == b"out\n"
    ct.reload()
    state = ct.attrs["State"]
    assert ct.status == "exited" and state["ExitCode"] == 7 and state["FinishedAt"] != "0001-01-01T00:00:00Z"
    assert ct.attrs["Name"] == "/" + name
    ct.remove()
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(name)


def test_docker_py_logs_stream_follows_until_exit(docker_client, cleanup) -> None:  # type: ignore[no-untyped-def]
    name = _name()
    cleanup.append(name)
    ct = docker_client.containers.run(
        "busybox", ["sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.2; done"], detach=True, name=name
    )
    lines = b"".join(ct.logs(stream=True, follow=True))
    assert lines == b"line1\nline2\nline3\n"


def test_docker_py_exec_run(docker_client, cleanup) -> None:  # type: ignore[no-untyped-def]
    name = _name()
    cleanup.append(name)
    ct = docker_client.containers.run("busybox", ["sleep", "30"], detach=True, name=name)
    res = ct.exec_run(["sh", "-c", "echo $FOO; pwd; exit 4"], environment={"FOO": "bar"}, workdir="/tmp")
    assert res.exit_code == 4 and res.output == b"bar\n/tmp\n"
    res = ct.exec_run("id -u", user="nobody")
    assert res.output.strip() == b"65534"
    out = ct.exec_run(["sh", "-c", "echo a; echo b >&2"], demux=True).output
    assert out == (b"a\n", b"b\n")
    ct.kill()


def test_docker_py_exec_inspect_and_detach(docker_client, cleanup) -> None:  # type: ignore[no-untyped-def]
    name = _name()
    cleanup.append(name)
    ct = docker_client.containers.run("busybox", ["sleep", "30"], detach=True, name=name)
    api = docker_client.api
    exec_id = api.exec_create(ct.id, ["sh", "-c", "sleep 0.3; exit 2"])["Id"]
    assert api.exec_start(exec_id, detach=True) in (b"", "")
    info = _wait_for(lambda: (i := api.exec_inspect(exec_id)) and not i["Running"] and i)
    assert info["ExitCode"] == 2 and info["ContainerID"] == ct.id
    assert info["ProcessConfig"]["entrypoint"] == "sh"
    assert exec_id in api.inspect_container(ct.id)["ExecIDs"]
    ct.kill()


def test_docker_py_attach_socket_stdin_roundtrip(docker_client, cleanup) -> None:  # type: ignore[no-untyped-def]
    name = _name()
    cleanup.append(name)
    ct = docker_client.containers.create(
        "busybox", ["sh", "-c", "read x; echo got:$x; exit 0"], stdin_open=True, name=name
    )
    sock = docker_client.api.attach_socket(ct.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
    raw = sock._sock
    ct.start()
    raw.sendall(b"hello\n")
    data = b""
    raw.settimeout(10)
    while True:
        chunk = raw.recv(4096)
        if not chunk:
            break
        data += chunk
    sock.close()
    # one multiplexed stdout frame
    assert data[:1] == b"\x01" and data[8:] == b"got:hello\n"
    assert ct.wait(timeout=10)["StatusCode"] == 0


def test_put_and_get_archive(docker_client, cleanup) -> None:  # type: ignore[no-untyped-def]
    import io
    import tarfile

    name = _name()
    cleanup.append(name)
    ct = docker_client.containers.run("busybox", ["sleep", "30"], detach=True, name=name)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = b"payload\n"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    assert ct.put_archive("/tmp", buf.getvalue())
    assert ct.exec_run("cat /tmp/hello.txt").output == b"payload\n"
    stream, stat = ct.get_archive("/tmp/hello.txt")
    assert stat["name"] == "hello.txt" and stat["size"] == 8
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.extractfile("hello.txt")
        assert member is not None and member.read() == b"payload\n"
    with pytest.raises(docker.errors.NotFound):
        ct.get_archive("/nope")
    ct.kill()


# ---- the docker CLI -------------------------------------------------------------------------------


def test_cli_run_rm_prints_and_returns_exit_code(gorae_daemon: GoraeDaemon) -> None:
    res = gorae_daemon.docker("run", "--rm", "busybox", "sh", "-c", "echo hello; exit 3", check=False)
    assert res.returncode == 3 and res.stdout == "hello\n"


def test_cli_run_rm_removes_the_container(gorae_daemon: GoraeDaemon) -> None:
    name = _name()
    gorae_daemon.docker("run", "--rm", "--name", name, "busybox", "true")
    _wait_for(lambda: name not in gorae_daemon.docker("ps", "-a", "--format", "{{.Names}}").stdout)


def test_cli_run_interactive_stdin(gorae_daemon: GoraeDaemon) -> None:
    res = gorae_daemon.docker("run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo end", input="abc\n")
    assert res.stdout == "abc\nend\n"


def test_cli_run_env_workdir_user_entrypoint(gorae_daemon: GoraeDaemon) -> None:
    res = gorae_daemon.docker(
        "run",
        "--rm",
        "-e",
        "X=1",
        "-w",
        "/tmp",
        "-u",
        "65534",
        "--entrypoint",
        "sh",
        "busybox",
        "-c",
        "echo $X $(pwd) $(id -u)",
    )
    assert res.stdout == "1 /tmp 65534\n"


def test_cli_missing_command_exits_127(gorae_daemon: GoraeDaemon) -> None:
    res = gorae_daemon.docker("run", "--rm", "busybox", "no-such-binary", check=False)
    assert res.returncode == 127
    assert "executable file not found" in res.stderr


def test_cli_lifecycle_ps_stop_start_restart_kill_rm(gorae_daemon: GoraeDaemon, cleanup) -> None:  # type: ignore[no-untyped-def]
    name = _name()
    cleanup.append(name)
    d = gorae_daemon
    cid = d.docker("run", "-d", "--name", name, "busybox", "sleep", "300").stdout.strip()
    assert len(cid) == 64
    ps = d.docker("ps", "--format", "{{.ID}} {{.Names}} {{.Status}}").stdout
    assert f"{cid[:12]} {name} Up" in ps
    info = inspect(d, name)
    assert info["State"]["Running"] and info["State"]["Pid"] > 0
    assert info["Config"]["Hostname"] == cid[:12] and info["HostConfig"]["NetworkMode"] == "bridge"
    res = d.docker("rm", name, check=False)
    assert res.returncode != 0
    assert (
        f"You cannot remove a running container {cid}. Stop the container before attempting removal or force remove"
        in res.stderr
    )
    started = time.monotonic()
    d.docker("stop", "-t", "1", name)
    assert time.monotonic() - started < 8
    assert inspect(d, name)["State"]["ExitCode"] == 137  # sh as pid 1 ignores SIGTERM: killed after 1 s
    d.docker("start", name)
    assert inspect(d, name)["State"]["Status"] == "running"
    d.docker("restart", "-t", "0", name)
    assert inspect(d, name)["State"]["Status"] == "running"
    d.docker("pause", name)
    assert inspect(d, name)["State"]["Status"] == "paused"
    assert "(Paused)" in d.docker("ps", "--filter", f"name={name}", "--format", "{{.Status}}").stdout
    d.docker("unpause", name)
    top = d.docker("top", name).stdout
    assert "sleep 300" in top
    d.docker("kill", name)
    assert d.docker("wait", name).stdout.strip() == "137"
    d.docker("rm", name)
    assert name not in d.docker("ps", "-a", "--format", "{{.Names}}").stdout


def test_cli_name_conflict_and_rename(gorae_daemon: GoraeDaemon, cleanup) -> None:  # type: ignore[no-untyped-def]
    a, b = _name("a"), _name("b")
    cleanup.extend([a, b])
    d = gorae_daemon
    cid = d.docker("create", "--name", a, "busybox", "true").stdout.strip()
    res = d.docker("create", "--name", a, "busybox", "true", check=False)
    assert res.returncode != 0
    assert (
        f'Conflict. The container name "/{a}" is already in use by container "{cid}". '
        "You have to remove (or rename) that container to be able to reuse that name." in res.stderr
    )
    d.docker("rename", a, b)
    assert inspect(d, b)["Name"] == "/" + b
    res = d.docker("create", "--name", "bad name", "busybox", "true", check=False)
    assert "Invalid container name (bad name)" in res.stderr


def test_cli_no_such_image_and_container(gorae_daemon: GoraeDaemon) -> None:
    res = gorae_daemon.docker("inspect", "--type", "container", "nope-" + uuid.uuid4().hex[:6], check=False)
    assert res.returncode != 0 and "No such container" in res.stderr
    res = gorae_daemon.docker("create", "--pull", "never", "busybox:nope", "true", check=False)
    assert res.returncode != 0 and "No such image: busybox:nope" in res.stderr


def test_cli_logs_follow_tail_timestamps(gorae_daemon: GoraeDaemon, cleanup) -> None:  # type: ignore[no-untyped-def]
    name = _name()
    cleanup.append(name)
    d = gorae_daemon
    d.docker(
        "run", "-d", "--name", name, "busybox", "sh", "-c", "for i in 1 2 3 4; do echo n$i; sleep 0.2; done"
    )
    out = d.docker("logs", "-f", name).stdout
    assert out == "n1\nn2\nn3\nn4\n"
    assert d.docker("logs", "--tail", "2", name).stdout == "n3\nn4\n"
    stamped = d.docker("logs", "-t", "--tail", "1", name).stdout
    assert stamped.endswith(" n4\n") and stamped[:4].isdigit() and "T" in stamped


def test_cli_list_filters(gorae_daemon: GoraeDaemon, cleanup) -> None:  # type: ignore[no-untyped-def]
    a, b = _name("fa"), _name("fb")
    cleanup.extend([a, b])
    d = gorae_daemon
    d.docker("run", "-d", "--name", a, "--label", "team=x", "busybox", "sleep", "60")
    d.docker("run", "--name", b, "busybox", "sh", "-c", "exit 2", check=False)
    names = d.docker("ps", "-a", "--filter", "label=team=x", "--format", "{{.Names}}").stdout.split()
    assert names == [a]
    assert d.docker(
        "ps", "--filter", "status=exited", "--filter", f"name={b}", "--format", "{{.Names}}"
    ).stdout.split() == [b]
    assert d.docker(
        "ps", "-a", "--filter", "exited=2", "--filter", f"name={b}", "--format", "{{.Status}}"
    ).stdout.startswith("Exited (2)")
    assert b not in d.docker("ps", "--format", "{{.Names}}").stdout.split()
    assert d.docker("ps", "-a", "-n", "1", "--format", "{{.Names}}").stdout.split() == [b]
    res = d.docker("ps", "--filter", "bogus=1", check=False)
    assert res.returncode != 0 and "invalid filter 'bogus'" in res.stderr


def test_restart_policy_on_failure_counts(gorae_daemon: GoraeDaemon, cleanup) -> None:  # type: ignore[no-untyped-def]
    name = _name()
    cleanup.append(name)
    d = gorae_daemon
    d.docker(
        "run", "-d", "--name", name, "--restart", "on-failure:2", "busybox", "sh", "-c", "echo run; exit 1"
    )

    def settled() -> dict | None:
        info = inspect(d, name)
        return info if info["State"]["Status"] == "exited" and info["RestartCount"] == 2 else None

    info = _wait_for(settled, timeout=15)
    assert info["State"]["ExitCode"] == 1
    assert d.docker("logs", name).stdout == "run\nrun\nrun\n"


def test_restart_policy_always_stops_on_stop(gorae_daemon: GoraeDaemon, cleanup) -> None:  # type: ignore[no-untyped-def]
    name = _name()
    cleanup.append(name)
    d = gorae_daemon
    d.docker("run", "-d", "--name", name, "--restart", "always", "busybox", "sh", "-c", "sleep 0.2")
    _wait_for(lambda: inspect(d, name)["RestartCount"] >= 2, timeout=15)
    d.docker("stop", "-t", "1", name)
    count = inspect(d, name)["RestartCount"]
    time.sleep(1.0)
    info = inspect(d, name)
    assert info["State"]["Status"] == "exited" and info["RestartCount"] == count


def test_start_with_host_config_body_is_rejected(gorae_daemon: GoraeDaemon, cleanup) -> None:  # type: ignore[no-untyped-def]
    name = _name()
    cleanup.append(name)
    gorae_daemon.docker("create", "--name", name, "busybox", "true")
    body = json.dumps({"Binds": ["/tmp:/tmp"]}).encode()
    req = (
        f"POST /v1.45/containers/{name}/start HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(gorae_daemon.socket)
        s.sendall(req)
        resp = b""
        while chunk := s.recv(65536):
            resp += chunk
    assert resp.startswith(b"HTTP/1.1 400")
    assert (
        b"starting container with non-empty request body was deprecated since API v1.22 and removed in v1.24"
        in resp
    )
    assert inspect(gorae_daemon, name)["State"]["Status"] == "created"


def test_wait_next_exit_before_start_catches_a_fast_exit(
    gorae_daemon: GoraeDaemon, docker_client: docker.DockerClient, cleanup: list[str]
) -> None:
    name = _name()
    cleanup.append(name)
    ct = docker_client.containers.create("busybox", ["sh", "-c", "exit 9"], name=name)
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(20)
        s.connect(gorae_daemon.socket)
        s.sendall(
            f"POST /v1.45/containers/{ct.id}/wait?condition=next-exit HTTP/1.1\r\n"
            "Host: docker\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
        )
        # like dockerd, the daemon sends the headers once the wait is registered and the body at the exit
        resp = b""
        while b"\r\n\r\n" not in resp:
            chunk = s.recv(4096)
            assert chunk, resp
            resp += chunk
        assert resp.startswith(b"HTTP/1.1 200 "), resp
        ct.start()
        while chunk := s.recv(4096):  # to the end of the response (Connection: close)
            resp += chunk
    body = resp.split(b"\r\n\r\n", 1)[1]
    doc = json.loads(body[body.index(b"{") : body.rindex(b"}") + 1])
    assert doc["StatusCode"] == 9


def test_cli_exec_and_cp_both_ways(gorae_daemon: GoraeDaemon, cleanup, tmp_path) -> None:  # type: ignore[no-untyped-def]
    name = _name()
    cleanup.append(name)
    d = gorae_daemon
    d.docker("run", "-d", "--name", name, "busybox", "sleep", "60")
    assert d.docker("exec", name, "sh", "-c", "echo in > /tmp/f; cat /tmp/f").stdout == "in\n"
    d.docker("cp", f"{name}:/tmp/f", str(tmp_path / "f"))
    assert (tmp_path / "f").read_text() == "in\n"
    (tmp_path / "g").write_text("out\n")
    d.docker("cp", str(tmp_path / "g"), f"{name}:/tmp/g")
    assert d.docker("exec", name, "cat", "/tmp/g").stdout == "out\n"
    res = d.docker("exec", name, "no-such-binary", check=False)
    assert res.returncode == 127 or res.returncode == 126


def test_cli_diff_export_commit(gorae_daemon: GoraeDaemon, cleanup, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import tarfile

    name = _name()
    cleanup.append(name)
    d = gorae_daemon
    d.docker("run", "--name", name, "busybox", "sh", "-c", "echo x > /added; rm /bin/vi")
    diff = d.docker("diff", name).stdout.splitlines()
    assert "A /added" in diff and "D /bin/vi" in diff
    out = tmp_path / "fs.tar"
    d.docker("export", "-o", str(out), name)
    with tarfile.open(out) as tar:
        names = tar.getnames()
    assert "added" in names or "./added" in names
    tag = f"committed-{uuid.uuid4().hex[:6]}"
    d.docker("commit", "-c", 'CMD ["cat", "/added"]', name, tag)
    try:
        assert d.docker("run", "--rm", tag).stdout == "x\n"
    finally:
        d.docker("rmi", tag, check=False)


def test_stats_one_shot_and_prune(docker_client, cleanup) -> None:  # type: ignore[no-untyped-def]
    name = _name()
    cleanup.append(name)
    ct = docker_client.containers.run(
        "busybox", ["sleep", "30"], detach=True, name=name, mem_limit="48m", pids_limit=20
    )
    st = ct.stats(stream=False)
    assert st["id"] == ct.id and st["name"] == "/" + name
    assert st["memory_stats"]["limit"] == 48 * 1024 * 1024
    assert 0 < st["memory_stats"]["usage"] < 48 * 1024 * 1024
    assert st["pids_stats"] == {"current": 1, "limit": 20}  # just `sleep`
    # a one-shot read still takes two samples: precpu is the earlier one, and starting busybox cost CPU time
    cpu, precpu = st["cpu_stats"]["cpu_usage"]["total_usage"], st["precpu_stats"]["cpu_usage"]["total_usage"]
    assert 0 < precpu <= cpu
    assert st["cpu_stats"]["online_cpus"] == os.cpu_count()
    ct.kill()
    ct.wait(timeout=10)
    pruned = docker_client.containers.prune(filters={"label": "no-such-label"})
    assert not pruned.get("ContainersDeleted")
    pruned = docker_client.containers.prune()
    assert ct.id in (pruned.get("ContainersDeleted") or [])
