"""Builds that go wrong or come back: a RUN that fills the disk, a context bigger than the disk, a failing
RUN — clear errors, nothing tagged, no containers, snapshots, mounts or temp files left; the cache across a
daemon restart, `--no-cache`, `--cache-from`, `/build/prune` and `BuildCache` in `system df`."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from typing import Any

import docker
import pytest
from conftest import GoraeDaemon, small_disk_daemon

TMPFS_MB = 80


def _tar(files: dict[str, bytes | str]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    buf.seek(0)
    return buf


def _build(client: docker.DockerClient, fileobj: Any, **kw: Any) -> list[dict[str, Any]]:
    return list(client.api.build(fileobj=fileobj, custom_context=True, decode=True, **kw))


def _mounts_under(path: str) -> list[str]:
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(path)]


def _leftovers(d: GoraeDaemon, client: docker.DockerClient) -> dict[str, Any]:
    tmp = os.path.join(d.data_root, "tmp")
    overlay = os.path.join(d.data_root, "overlay")
    return {
        "containers": [
            c["Id"] for c in client.api.containers(all=True)
        ],  # one call: no list-then-inspect race
        "tmp": sorted(os.listdir(tmp)) if os.path.isdir(tmp) else [],
        "mounts": [m for m in _mounts_under(d.data_root) if m.endswith("/merged")],
        "snapshots": len(os.listdir(overlay)) if os.path.isdir(overlay) else 0,
    }


@pytest.fixture
def small_daemon() -> Iterator[GoraeDaemon]:
    with small_disk_daemon(TMPFS_MB, "gorae-buildfull") as d:
        yield d


def test_run_filling_the_disk_and_a_too_big_context(small_daemon: GoraeDaemon) -> None:
    client = small_daemon.client()
    try:
        before = _leftovers(small_daemon, client)
        lines = _build(
            client,
            _tar({"Dockerfile": f"FROM busybox\nRUN head -c {TMPFS_MB * 2}m /dev/zero > /big\n"}),
            tag="full:1",
            forcerm=True,
        )
        err = [x for x in lines if "error" in x]
        assert [e["error"] for e in err] == [
            f"The command '/bin/sh -c head -c {TMPFS_MB * 2}m /dev/zero > /big' returned a non-zero code: 1"
        ]
        # (the RUN's own "No space left on device" goes to its log, on the same full disk: not shown)
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get("full:1")
        assert _leftovers(small_daemon, client) == before
        # a context bigger than the disk: refused with a clear error, nothing kept
        big = tempfile.TemporaryFile()
        with tarfile.open(fileobj=big, mode="w") as tf:
            ti = tarfile.TarInfo("Dockerfile")
            ti.size = 18
            tf.addfile(ti, io.BytesIO(b"FROM busybox\nRUN x"))
            ti = tarfile.TarInfo("blob")
            ti.size = TMPFS_MB * 2 << 20
            tf.addfile(ti, _Zeros(ti.size))
        big.seek(0)
        with pytest.raises(docker.errors.APIError) as e:
            _build(client, big, tag="full:2")
        assert "no space left on device" in str(e.value.explanation).lower()
        assert _leftovers(small_daemon, client) == before
        # the daemon builds again once the build is gone
        ok = _build(client, _tar({"Dockerfile": "FROM busybox\nRUN echo fine > /f\n"}), tag="full:3")
        assert not [x for x in ok if "error" in x]
        client.images.remove("full:3")
    finally:
        client.close()


class _Zeros(io.RawIOBase):
    def __init__(self, n: int) -> None:
        self.n = n

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        k = min(len(b), self.n)
        b[:k] = bytes(k)
        self.n -= k
        return k


def test_failing_run_keeps_container_only_without_force_rm(fresh_daemon: GoraeDaemon) -> None:
    client = fresh_daemon.client()
    try:
        ctx = {"Dockerfile": "FROM busybox\nRUN exit 2\n"}
        _build(client, _tar(ctx), tag="f:1")  # docker's --rm: the failed step's container stays
        kept = client.containers.list(all=True)
        assert len(kept) == 1 and kept[0].attrs["State"]["ExitCode"] == 2
        kept[0].remove()
        _build(client, _tar(ctx), tag="f:1", forcerm=True)
        assert client.containers.list(all=True) == []
    finally:
        client.close()


def test_cache_across_restart_no_cache_cache_from_prune_and_df(fresh_daemon: GoraeDaemon) -> None:
    d = fresh_daemon
    ctx = {"Dockerfile": 'FROM busybox\nRUN echo one > /one\nCOPY f /f\nCMD ["cat", "/f"]\n', "f": "content"}
    client = d.client()
    try:
        first = _build(client, _tar(ctx), tag="c:1")
        iid = [x["aux"]["ID"] for x in first if "aux" in x][0]
        df = client.df()
        assert len(df["BuildCache"]) == 3 and all(e["Type"] == "regular" for e in df["BuildCache"])
        for argv in (["docker", "system", "df"], [sys.executable, "-m", "gorae.cli.main", "system", "df"]):
            out = subprocess.run(argv, env=d.env, capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stderr
            assert [ln.split()[:4] for ln in out.stdout.splitlines() if ln.startswith("Build Cache")] == [
                ["Build", "Cache", "3", "1"]  # the tagged result counts as in use
            ]
        verbose = subprocess.run(["docker", "system", "df", "-v"], env=d.env, capture_output=True, text=True)
        assert verbose.returncode == 0 and "Build cache usage: 0B" in verbose.stdout, verbose.stdout
    finally:
        client.close()
    d.stop()
    d.start()
    client = d.client()
    try:
        again = _build(client, _tar(ctx), tag="c:1")
        text = "".join(x.get("stream", "") for x in again)
        assert text.count(" ---> Using cache\n") == 3
        assert [x["aux"]["ID"] for x in again if "aux" in x] == [iid]
        nocache = _build(client, _tar(ctx), tag="c:2", nocache=True)
        assert " ---> Using cache" not in "".join(x.get("stream", "") for x in nocache)
        # --cache-from: only steps whose result is (an ancestor of) a listed image are reused
        from_other = _build(client, _tar(ctx), tag="c:3", cache_from=["c:2"])
        assert "".join(x.get("stream", "") for x in from_other).count(" ---> Using cache\n") == 3
        assert [x["aux"]["ID"] for x in from_other if "aux" in x] == [client.images.get("c:2").id]
        for t in ("c:1", "c:2", "c:3"):
            client.images.remove(t)
        pruned = client.api.prune_builds()
        # the no-cache build's RUN took over the first build's cache key (same parent, same step): 5 entries
        assert len(pruned["CachesDeleted"]) == 5
        assert client.df()["BuildCache"] == []
        assert [i.id for i in client.images.list(all=True)] == [client.images.get("busybox").id]
    finally:
        client.close()


def test_client_gone_mid_run_cancels_and_cleans_up(fresh_daemon: GoraeDaemon) -> None:
    import socket

    from conftest import wait_for

    d = fresh_daemon
    client = d.client()
    try:
        before = _leftovers(d, client)
        body = _tar({"Dockerfile": "FROM busybox\nRUN echo started; sleep 600\n"}).getvalue()
        s = socket.socket(socket.AF_UNIX)
        s.connect(d.socket)
        s.sendall(
            b"POST /v1.41/build?t=gone:1&forcerm=1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        seen = b""
        while b'{"stream":"started\\n"}' not in seen:  # the RUN's output: it runs
            chunk = s.recv(65536)
            assert chunk, seen
            seen += chunk
        assert b" ---> Running in " in seen
        s.close()
        wait_for(lambda: _leftovers(d, client) == before, timeout=30)
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get("gone:1")
    finally:
        client.close()
