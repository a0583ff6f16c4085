"""Failed creates and crashes leave nothing behind (review F10): a create refused at any step removes its
directory, snapshot and name; leftovers without a record (from a crash) are collected at the next start."""

from __future__ import annotations

import json
import os
import sqlite3

import docker
import pytest
from conftest import GoraeDaemon


def _snapshot_keys(d: GoraeDaemon) -> set[str]:
    con = sqlite3.connect(f"file:{os.path.join(d.data_root, 'overlay', 'snapshots.db')}?mode=ro", uri=True)
    try:
        return {k for (k,) in con.execute("SELECT id FROM docs WHERE kind = 'snapshot'")}
    finally:
        con.close()


@pytest.mark.parametrize(
    "networking",
    [
        {"EndpointsConfig": {"bridge": "x"}},
        {"EndpointsConfig": {"bridge": {"Aliases": 5}}},
        {"EndpointsConfig": {"bridge": {"Aliases": [1, {}]}}},
        {"EndpointsConfig": {"bridge": {"IPAMConfig": "x"}}},
    ],
)
def test_failed_create_leaves_nothing(gorae_daemon: GoraeDaemon, networking: dict[str, object]) -> None:
    d = gorae_daemon
    dirs = set(os.listdir(os.path.join(d.data_root, "containers")))
    snaps = _snapshot_keys(d)
    api = docker.APIClient(base_url=d.host, timeout=30)
    try:
        res = api._post_json(  # the raw body: docker-py would refuse these types itself
            api._url("/containers/create"),
            data={"Image": "busybox", "Cmd": ["true"], "NetworkingConfig": networking},
            params={"name": "leaky"},
        )
        if res.status_code == 201:  # accepted (as docker accepts some): then it must be whole and removable
            api.remove_container(res.json()["Id"], force=True)
        else:
            assert 400 <= res.status_code < 600, res.text
        assert set(os.listdir(os.path.join(d.data_root, "containers"))) == dirs
        assert _snapshot_keys(d) == snaps
        # the name was given back
        cid = api.create_container("busybox", ["true"], name="leaky")["Id"]
        api.remove_container(cid)
    finally:
        api.close()


def test_leftovers_without_a_record_are_collected_at_start(fresh_daemon: GoraeDaemon) -> None:
    d = fresh_daemon
    keep = d.docker("create", "--name", "keep", "busybox", "true").stdout.strip()
    orphan = "ab" * 32
    os.makedirs(os.path.join(d.data_root, "containers", orphan, "rootfs"))
    d.kill9()
    # an active snapshot without a record, made as a create killed before its record would leave it
    from gorae.snapshot.overlay import OverlaySnapshotter

    snap = OverlaySnapshotter(os.path.join(d.data_root, "overlay"))
    try:
        snap.prepare(orphan, None)
        snap.prepare("extract-" + "cd" * 16, None)
    finally:
        snap.close()
    d.start()
    assert sorted(os.listdir(os.path.join(d.data_root, "containers"))) == [keep]
    keys = _snapshot_keys(d)
    assert keep in keys and orphan not in keys and not any(k.startswith("extract-") for k in keys)
    assert "removed 2 leftovers without a container record" in d.log()
    assert json.loads(d.docker("inspect", "keep").stdout)[0]["Id"] == keep
    d.docker("rm", "keep")
