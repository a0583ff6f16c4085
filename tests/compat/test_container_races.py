"""Concurrent calls on one container name (review F5): exactly one create wins, the others get docker's 409,
and the winner stays reachable by its name (inspect, start, rm, and a new create with the name is refused)."""

from __future__ import annotations

import re
import subprocess
import threading
import uuid

from conftest import GoraeDaemon

IN_USE = re.compile(
    r'Conflict\. The container name "/(?P<name>[^"]+)" is already in use by container "(?P<id>[0-9a-f]{64})"\. '
    r"You have to remove \(or rename\) that container to be able to reuse that name\."
)


def _together(d: GoraeDaemon, argvs: list[list[str]]) -> list[subprocess.CompletedProcess[str]]:
    """Run the docker commands at the same moment (released by one barrier), in threads."""
    barrier = threading.Barrier(len(argvs))
    out: list[subprocess.CompletedProcess[str] | None] = [None] * len(argvs)

    def one(i: int) -> None:
        barrier.wait()
        out[i] = d.docker(*argvs[i], check=False)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(argvs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(r is not None for r in out)
    return [r for r in out if r is not None]


def _assert_owned(d: GoraeDaemon, name: str, cid: str) -> None:
    """`name` leads to `cid` everywhere: inspect, a new create refused, start and rm by name."""
    assert d.docker("inspect", "-f", "{{.Id}}", name).stdout.strip() == cid
    again = d.docker("create", "--name", name, "busybox", "true", check=False)
    assert again.returncode != 0 and (m := IN_USE.search(again.stderr)) and m["id"] == cid, again.stderr
    d.docker("start", name)
    d.docker("rm", "-f", name)
    assert d.docker("inspect", name, check=False).returncode != 0
    assert not d.docker("ps", "-aq", "--filter", f"id={cid}").stdout.strip()


def _race_creates(d: GoraeDaemon, ways: int, rounds: int) -> None:
    for _ in range(rounds):
        name = f"race-{uuid.uuid4().hex[:8]}"
        results = _together(d, [["create", "--name", name, "busybox", "sleep", "60"]] * ways)
        won = [r for r in results if r.returncode == 0]
        lost = [r for r in results if r.returncode != 0]
        assert len(won) == 1, [r.stderr for r in results]
        cid = won[0].stdout.strip()
        for r in lost:
            m = IN_USE.search(r.stderr)
            assert m and m["name"] == name and m["id"] == cid, r.stderr
        _assert_owned(d, name, cid)


def test_two_creates_of_one_name(gorae_daemon: GoraeDaemon) -> None:
    _race_creates(gorae_daemon, 2, 10)


def test_twenty_creates_of_one_name(gorae_daemon: GoraeDaemon) -> None:
    _race_creates(gorae_daemon, 20, 3)


def test_twenty_api_creates_of_one_name(gorae_daemon: GoraeDaemon) -> None:
    """The same through docker-py, without the CLI's start-up jitter: the calls arrive within a millisecond."""
    import docker

    d = gorae_daemon
    clients = [docker.APIClient(base_url=d.host, timeout=60) for _ in range(20)]
    try:
        for _ in range(5):
            name = f"race-{uuid.uuid4().hex[:8]}"
            ids, errors = _api_race(clients, name)
            assert len(ids) == 1 and len(errors) == 19, (ids, errors)
            for e in errors:
                m = IN_USE.search(e)
                assert m and m["id"] == ids[0], e
            _assert_owned(d, name, ids[0])
    finally:
        for c in clients:
            c.close()


def _api_race(clients: list, name: str) -> tuple[list[str], list[str]]:  # type: ignore[type-arg]
    """One create of `name` per client, released together: the ids made and the 409 texts."""
    import docker

    barrier = threading.Barrier(len(clients))
    ids: list[str] = []
    errors: list[str] = []

    def one(api: docker.APIClient) -> None:
        barrier.wait()
        try:
            ids.append(api.create_container("busybox", ["sleep", "60"], name=name)["Id"])
        except docker.errors.APIError as e:
            assert e.status_code == 409, e
            errors.append(str(e.explanation))

    threads = [threading.Thread(target=one, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return ids, errors


def test_rm_force_racing_create_of_the_name(gorae_daemon: GoraeDaemon) -> None:
    d = gorae_daemon
    for _ in range(10):
        name = f"swap-{uuid.uuid4().hex[:8]}"
        old = d.docker("run", "-d", "--name", name, "busybox", "sleep", "60").stdout.strip()
        rm, create = _together(d, [["rm", "-f", name], ["create", "--name", name, "busybox", "sleep", "60"]])
        assert rm.returncode == 0, rm.stderr
        assert d.docker("ps", "-aq", "--no-trunc", "--filter", f"id={old}").stdout.strip() == ""
        if create.returncode == 0:  # came after the removal: the name is the new container's
            _assert_owned(d, name, create.stdout.strip())
        else:  # came before it: refused with the old owner's id, and the name is free now
            m = IN_USE.search(create.stderr)
            assert m and m["id"] == old, create.stderr
            assert d.docker("inspect", name, check=False).returncode != 0
            cid = d.docker("create", "--name", name, "busybox", "true").stdout.strip()
            _assert_owned(d, name, cid)
