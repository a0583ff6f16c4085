"""kill -9 during create, load and commit bursts (issue 15's figure: ≥ 100 rounds, 0 leaks).

Each round starts a burst of one kind in a thread, SIGKILLs the daemon at a moment drawn from a seeded RNG,
restarts it, and checks: every record whole, every acknowledged object present, no container directory or
snapshot without a record, no extraction snapshot, nothing in tmp/, no frozen container, and SQLite's
integrity_check ok on both databases. The counts are printed (run with -s to see them).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import re
import sqlite3
import tarfile
import threading
import time
from typing import Any

import docker
from conftest import GoraeDaemon

ROUNDS = int(os.environ.get("GORAE_KILL9_ROUNDS", "102"))  # a third of each kind
KINDS = ("create", "load", "commit")
CONTAINER_ID = re.compile(r"^[0-9a-f]{64}$")


def _image_tar(tag: str, rng: random.Random) -> bytes:
    """A `docker save` archive of a one-layer image with its own content (so every load extracts a layer)."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as t:
        data = rng.randbytes(256 * 1024)
        info = tarfile.TarInfo("blob")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    layer_bytes = layer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": ["l/layer.tar"]}]).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as t:
        for name, body in ((config_name, config), ("l/layer.tar", layer_bytes), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            t.addfile(info, io.BytesIO(body))
    return out.getvalue()


class Burst:
    """One kind of call as fast as the daemon answers, until it dies; `acked` holds what it answered for."""

    def __init__(self, d: GoraeDaemon, kind: str, rnd: int, rng: random.Random) -> None:
        self.d, self.kind, self.rnd = d, kind, rnd
        self.acked: list[str] = []
        self.stop = threading.Event()
        self.tars = [_image_tar(f"ld{rnd}:{i}", rng) for i in range(6)] if kind == "load" else []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        api = docker.APIClient(base_url=self.d.host, timeout=10)
        i = 0
        try:
            while not self.stop.is_set():
                i += 1
                try:
                    self._one(api, i)
                except Exception:  # noqa: BLE001 - the daemon is being killed under us
                    return
        finally:
            api.close()

    def _one(self, api: docker.APIClient, i: int) -> None:
        if self.kind == "create":
            self.acked.append(api.create_container("busybox", ["true"], name=f"k{self.rnd}-{i}")["Id"])
        elif self.kind == "load":
            tag = f"ld{self.rnd}:{(i - 1) % len(self.tars)}"
            answer = list(api.load_image(self.tars[(i - 1) % len(self.tars)]) or [])
            if any("error" in str(m).lower() for m in answer):  # not acknowledged
                raise RuntimeError(str(answer))
            self.acked.append(tag)
        else:
            api.commit("committer", repository=f"cm{self.rnd}", tag=str(i), pause=True)
            self.acked.append(f"cm{self.rnd}:{i}")


def _docs(db: str, kind: str) -> dict[str, dict[str, Any]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok", db
        return {
            i: json.loads(doc) for i, doc in con.execute("SELECT id, doc FROM docs WHERE kind = ?", (kind,))
        }
    finally:
        con.close()


def _check(d: GoraeDaemon, burst: Burst, leaks: dict[str, int]) -> None:
    root = d.data_root
    records = _docs(os.path.join(root, "gorae.db"), "container")
    snapshots = _docs(os.path.join(root, "overlay", "snapshots.db"), "snapshot")
    for cid, doc in records.items():  # whole records, each with its directory and its snapshot
        assert doc["Id"] == cid and doc["Name"].startswith("/") and doc["State"]["Status"], doc
        assert doc["Config"]["Image"] == "busybox" and isinstance(doc["HostConfig"], dict), doc
        assert doc["_gorae"]["Snapshot"] in snapshots, doc
        assert os.path.isdir(os.path.join(root, "containers", cid)), doc
    owned = {doc["_gorae"]["Snapshot"] for doc in records.values()}
    orphan_dirs = [n for n in os.listdir(os.path.join(root, "containers")) if n not in records]
    orphan_snaps = [
        k for k, s in snapshots.items() if s["kind"] == "active" and k not in owned
    ]  # container snapshots without a record, and half-applied layers ("extract-*")
    tmp = os.listdir(os.path.join(root, "tmp"))
    leaks["dirs"] += len(orphan_dirs)
    leaks["snapshots"] += len(orphan_snaps)
    leaks["tmp"] += len(tmp)
    frozen: list[str] = []
    api = docker.APIClient(base_url=d.host, timeout=30)
    try:
        for c in api.containers(all=True):  # the API agrees, and nothing is left frozen
            info = api.inspect_container(c["Id"])
            assert info["Id"] in records, info
            if info["State"]["Paused"]:
                frozen.append(info["Name"])
        for ref in burst.acked:  # every acknowledged object survived
            if burst.kind == "create":
                assert api.inspect_container(ref)["Id"] == ref
            else:
                api.inspect_image(ref)
        assert api.inspect_container("committer")["State"]["Running"]
    finally:
        api.close()
    leaks["frozen"] += len(frozen)
    assert not (orphan_dirs or orphan_snaps or tmp or frozen), (orphan_dirs, orphan_snaps, tmp, frozen)


def _tidy(d: GoraeDaemon, burst: Burst) -> None:
    """Keep the data root small: the round's containers and images go (also a test that they can)."""
    api = docker.APIClient(base_url=d.host, timeout=30)
    try:
        if burst.kind == "create":
            for c in api.containers(all=True, filters={"name": f"k{burst.rnd}-"}):
                api.remove_container(c["Id"], force=True)
        else:
            prefix = "ld" if burst.kind == "load" else "cm"
            for img in api.images(name=f"{prefix}{burst.rnd}"):
                api.remove_image(img["Id"], force=True)
    finally:
        api.close()


def test_kill9_during_create_load_commit_bursts_leaks_nothing(fresh_daemon: GoraeDaemon) -> None:
    d = fresh_daemon
    rng = random.Random(15)
    d.docker("run", "-d", "--name", "committer", "busybox", "sh", "-c", "echo x > /f; sleep 3600")
    leaks = {"dirs": 0, "snapshots": 0, "tmp": 0, "frozen": 0}
    acked = dict.fromkeys(KINDS, 0)
    kills = 0
    started = time.monotonic()
    for rnd in range(ROUNDS):
        burst = Burst(d, KINDS[rnd % len(KINDS)], rnd, rng)
        burst.thread.start()
        time.sleep(rng.uniform(0.02, 0.5))
        d.kill9()
        kills += 1
        burst.stop.set()
        burst.thread.join(15)
        assert not burst.thread.is_alive()
        d.start()
        _check(d, burst, leaks)
        acked[burst.kind] += len(burst.acked)
        _tidy(d, burst)
    print(
        f"\nkill -9 rounds: {kills} ({', '.join(f'{k} {ROUNDS // len(KINDS)}' for k in KINDS)}); "
        f"acknowledged and found after restart: {acked}; leaks: {leaks}; {time.monotonic() - started:.0f} s"
    )
    assert leaks == {"dirs": 0, "snapshots": 0, "tmp": 0, "frozen": 0}
    d.docker("rm", "-f", "committer")
