"""Volumes end to end with the real docker CLI and docker-py: the seed's `-v /data` recipe and its
`<data-root>/volumes/<id>/_data` source, named volumes surviving container removal and a daemon restart,
`docker volume create/ls/inspect/rm/prune` (in use → 409 with docker's text), `rm -v`, tmpfs mounts,
`--read-only` with a writable volume, copy-up of image content, and bad names that change nothing.
"""

from __future__ import annotations

import json
import os
import re

import docker
import pytest
from conftest import GoraeDaemon, inspect

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


@pytest.fixture
def d(tidy_daemon: GoraeDaemon) -> GoraeDaemon:
    return tidy_daemon


def test_seed_recipe_anonymous_volume_source(d: GoraeDaemon) -> None:
    d.docker("run", "-d", "-v", "/data", "--name", "v1", "busybox", "sleep", "1d")
    src = d.docker("inspect", "-f", "{{range .Mounts}}{{.Source}}{{end}}", "v1").stdout.strip()
    assert re.fullmatch(re.escape(os.path.join(d.data_root, "volumes")) + r"/[0-9a-f]{64}/_data", src), src
    (m,) = inspect(d, "v1")["Mounts"]
    assert m["Type"] == "volume" and m["Destination"] == "/data" and m["Driver"] == "local"
    assert m["RW"] is True and m["Mode"] == "" and m["Propagation"] == "" and len(m["Name"]) == 64
    d.docker("exec", "v1", "sh", "-c", "echo hi > /data/f")
    with open(os.path.join(src, "f"), encoding="utf-8") as f:
        assert f.read() == "hi\n"
    # rm -v removes the anonymous volume
    d.docker("rm", "-f", "-v", "v1")
    assert not os.path.exists(src)
    assert m["Name"] not in d.docker("volume", "ls", "-q").stdout.split()


def test_rm_without_v_keeps_anonymous_volume(d: GoraeDaemon) -> None:
    d.docker("run", "--name", "v2", "-v", "/data", "busybox", "true")
    name = inspect(d, "v2")["Mounts"][0]["Name"]
    d.docker("rm", "v2")
    assert name in d.docker("volume", "ls", "-q").stdout.split()
    d.docker("volume", "rm", name)


def test_volume_commands_and_in_use(d: GoraeDaemon) -> None:
    assert d.docker("volume", "create", "--label", "k=v", "vc1").stdout.strip() == "vc1"
    info = json.loads(d.docker("volume", "inspect", "vc1").stdout)[0]
    assert info["Mountpoint"] == os.path.join(d.data_root, "volumes", "vc1", "_data")
    assert info["Driver"] == "local" and info["Scope"] == "local" and info["Labels"] == {"k": "v"}
    assert info["CreatedAt"]
    assert "vc1" in d.docker("volume", "ls", "-q", "--filter", "label=k=v").stdout.split()
    d.docker("run", "-d", "--name", "user1", "-v", "vc1:/data", "busybox", "sleep", "1d")
    cid = inspect(d, "user1")["Id"]
    r = d.docker("volume", "rm", "vc1", check=False)
    assert r.returncode == 1
    assert f"Error response from daemon: remove vc1: volume is in use - [{cid}]" in r.stderr
    c = d.client()
    try:
        with pytest.raises(docker.errors.APIError) as e:
            c.volumes.get("vc1").remove()
        assert e.value.status_code == 409
    finally:
        c.close()
    assert "vc1" not in d.docker("volume", "ls", "-q", "--filter", "dangling=true").stdout.split()
    d.docker("rm", "-f", "user1")
    assert "vc1" in d.docker("volume", "ls", "-q", "--filter", "dangling=true").stdout.split()
    d.docker("volume", "rm", "vc1")
    r = d.docker("volume", "inspect", "vc1", check=False)
    assert r.returncode == 1 and "no such volume" in r.stderr


def test_volume_prune(d: GoraeDaemon) -> None:
    d.docker("volume", "create", "pr1")
    d.docker("run", "--name", "anon", "-v", "/x", "busybox", "true")
    anon = inspect(d, "anon")["Mounts"][0]["Name"]
    d.docker("rm", "anon")
    out = d.docker("volume", "prune", "-f").stdout
    assert anon in out  # anonymous volumes go by default (API >= 1.42)
    assert "pr1" in d.docker("volume", "ls", "-q").stdout.split()
    out = d.docker("volume", "prune", "-af").stdout
    assert "pr1" in out and "pr1" not in d.docker("volume", "ls", "-q").stdout.split()


def test_bad_volume_names_change_nothing(d: GoraeDaemon) -> None:
    before_c, before_v = d.docker("ps", "-aq").stdout, d.docker("volume", "ls", "-q").stdout
    r = d.docker("volume", "create", "a/b", check=False)
    assert r.returncode == 1 and '"a/b" includes invalid characters for a local volume name' in r.stderr
    r = d.docker("run", "-v", "bad/name:/data", "busybox", "true", check=False)
    assert r.returncode == 125 and "includes invalid characters for a local volume name" in r.stderr
    assert d.docker("ps", "-aq").stdout == before_c and d.docker("volume", "ls", "-q").stdout == before_v


def test_tmpfs_mount_and_read_only_root(d: GoraeDaemon) -> None:
    r = d.docker(
        "run",
        "--rm",
        "--mount",
        "type=tmpfs,destination=/scratch,tmpfs-size=1m",
        "busybox",
        "sh",
        "-c",
        "grep ' /scratch ' /proc/mounts",
    )
    assert "tmpfs /scratch tmpfs" in r.stdout and "size=1024k" in r.stdout
    r = d.docker(
        "run",
        "--rm",
        "--read-only",
        "-v",
        "/data",
        "busybox",
        "sh",
        "-c",
        "echo ok > /data/f && cat /data/f && (touch /rootfile 2>&1 || true)",
    )
    assert "ok" in r.stdout and "Read-only file system" in r.stdout


def test_copy_up_of_image_content(d: GoraeDaemon) -> None:
    r = d.docker("run", "--rm", "-v", "cuvol:/etc", "busybox", "cat", "/etc/passwd")
    assert "root:x:0:0" in r.stdout
    mp = json.loads(d.docker("volume", "inspect", "cuvol").stdout)[0]["Mountpoint"]
    assert os.path.exists(os.path.join(mp, "passwd"))
    # volume-nocopy leaves a new volume empty
    r = d.docker(
        "run",
        "--rm",
        "--mount",
        "type=volume,source=cuvol2,target=/etc,volume-nocopy",
        "busybox",
        "ls",
        "-A",
        "/etc",
    )
    # only what docker mounts on top (hostname, hosts, resolv.conf): nothing of the image's /etc was copied
    assert sorted(r.stdout.split()) == ["hostname", "hosts", "resolv.conf"], r.stdout + r.stderr


def test_volume_data_survives_removal_and_daemon_restart(fresh_daemon: GoraeDaemon) -> None:
    d = fresh_daemon
    d.docker("run", "--name", "w1", "-v", "keep:/data", "busybox", "sh", "-c", "echo persisted > /data/f")
    d.docker("rm", "w1")
    d.stop()
    d.start()
    r = d.docker("run", "--rm", "-v", "keep:/data", "busybox", "cat", "/data/f")
    assert r.stdout == "persisted\n"
    d.kill9()
    d.start()
    assert "keep" in d.docker("volume", "ls", "-q").stdout.split()
    r = d.docker(
        "run", "--rm", "-v", "keep:/data:ro", "busybox", "sh", "-c", "cat /data/f; touch /data/g", check=False
    )
    assert r.stdout == "persisted\n" and "Read-only file system" in r.stderr and r.returncode == 1
