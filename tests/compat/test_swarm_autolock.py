"""Swarm autolock on real gorae daemons, driven with the docker CLI: the unlock key (`swarm init --autolock`,
`swarm update --autolock`, `swarm unlock-key [-q] [--rotate]`), the secret files sealed at rest (the node key,
the root CA key, the etcd key, the cluster data key) and their plaintext nowhere on disk, a restarted manager
that stays locked — no etcd member, dockerd's 503 on every swarm call — until `swarm unlock` with the right key,
and autolock turned off again. With three managers: one restarted stays locked while the others serve; a key
rotated while it was down still lets the old key unlock it, and it then follows the new one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import GoraeDaemon, new_daemon, wait_for
from swarm_cluster import etcd_pids, init, join, lan
from swarm_peer import free_port

from gorae.errors import Unauthorized
from gorae.swarm import autolock

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for the daemon's networks")

FILES = autolock.SEALED_FILES
LOCKED_ERR = (
    'Error response from daemon: Swarm is encrypted and needs to be unlocked before it can be used. Please use "docker '
    'swarm unlock" to unlock it.\n'
)
UNLOCK_TEXT = (
    "To unlock a swarm manager after it restarts, run the `docker swarm unlock`\n"
    "command and provide the following key:\n\n    {key}\n\n"
    "Remember to store this key in a password manager, since without it you\n"
    "will not be able to restart the manager.\n"
)


def _swarm_dir(d: GoraeDaemon) -> Path:
    return Path(d.data_root) / "swarm"


def _files(d: GoraeDaemon) -> dict[str, bytes]:
    return {name: (_swarm_dir(d) / name).read_bytes() for name in FILES}


def _info(d: GoraeDaemon) -> dict[str, object]:
    return json.loads(d.docker("info", "--format", "{{json .Swarm}}").stdout)  # type: ignore[no-any-return]


def _key(d: GoraeDaemon) -> str:
    key = d.docker("swarm", "unlock-key", "-q").stdout.strip()
    autolock.parse_key(key)
    return key


def _disk_bytes(root: Path) -> bytes:
    """Every file under `root` (the etcd data, the state files...), concatenated."""
    out = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            p = Path(dirpath) / name
            if p.is_file() and not p.is_symlink():
                out.append(p.read_bytes())
    return b"\0".join(out)


def _assert_sealed(d: GoraeDaemon, plain: dict[str, bytes], key: str) -> None:
    """Every secret file is sealed under `key`, and no plaintext of them (nor the key) is anywhere under the
    data root."""
    sealed = _files(d)
    kek = autolock.derive_kek(autolock.parse_key(key))
    for name in FILES:
        assert sealed[name].startswith(autolock.MAGIC), name
        assert autolock.unseal(kek, sealed[name], name) == plain[name]
    disk = _disk_bytes(Path(d.data_root))
    for name, data in plain.items():
        assert data not in disk, name
        if data.startswith(b"-----BEGIN"):  # the PEM's base64 body, line by line
            for line in data.splitlines()[1:-1]:
                assert line not in disk, (name, line)
    assert key.encode() not in disk
    assert autolock.parse_key(key) not in disk


def _restart(d: GoraeDaemon) -> None:
    d.stop()
    d.start()


def _unlock(d: GoraeDaemon, key: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "swarm", "unlock"], input=key + "\n", capture_output=True, text=True, env=d.env, timeout=60
    )


@pytest.fixture
def manager() -> Iterator[GoraeDaemon]:
    d = new_daemon(with_busybox=False)
    try:
        yield d
    finally:
        try:
            try:
                d.docker("swarm", "leave", "--force", check=False, timeout=30)
            finally:
                d.cleanup()
        finally:
            for pid in etcd_pids(d.data_root):
                os.kill(pid, signal.SIGKILL)


def test_autolock_single_manager(manager: GoraeDaemon) -> None:
    d = manager
    port = free_port()
    addr = f"127.0.0.1:{port}"
    r = d.docker("swarm", "init", "--autolock", "--advertise-addr", addr, "--listen-addr", addr)
    key = _key(d)
    assert r.stdout.endswith("and follow the instructions.\n" + UNLOCK_TEXT.format(key=key))
    assert r.stdout.startswith("Swarm initialized: current node (")
    assert d.docker("swarm", "unlock-key").stdout == UNLOCK_TEXT.format(key=key)
    assert d.client().api.inspect_swarm()["Spec"]["EncryptionConfig"] == {"AutoLockManagers": True}
    # the plaintext of each file, as a manager that does not lock would keep it
    kek = autolock.derive_kek(autolock.parse_key(key))
    plain = {n: autolock.unseal(kek, data, n) for n, data in _files(d).items()}
    assert plain["certificates/swarm-node.key"].startswith(b"-----BEGIN")
    assert len(plain["data.key"]) == 32
    _assert_sealed(d, plain, key)
    # not locked: the CLI refuses before asking; the API answers dockerd's 409
    r = _unlock(d, key)
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "Error: swarm is not locked\n")
    with pytest.raises(Exception, match="409 Client Error.*swarm is not locked"):
        d.client().api.unlock_swarm(key)

    # a secret sealed with the data key survives all that follows
    subprocess.run(["docker", "secret", "create", "s1", "-"], input="top", env=d.env, check=True, text=True)

    # rotation: a new key, the files re-sealed under it; the old one no longer opens them
    r = d.docker("swarm", "unlock-key", "--rotate")
    key2 = _key(d)
    assert key2 != key
    assert r.stdout == "Successfully rotated manager unlock key.\n" + UNLOCK_TEXT.format(key=key2)
    _assert_sealed(d, plain, key2)
    with pytest.raises(Unauthorized):
        autolock.unseal(kek, _files(d)["data.key"], "data.key")
    key3 = d.docker("swarm", "unlock-key", "--rotate", "-q").stdout.strip()
    assert key3 == _key(d) != key2
    _assert_sealed(d, plain, key3)

    # restarted: locked, nothing of the swarm runs
    _restart(d)
    assert _info(d) == {
        "NodeID": "",
        "NodeAddr": "127.0.0.1",
        "LocalNodeState": "locked",
        "ControlAvailable": False,
        "Error": 'Swarm is encrypted and needs to be unlocked before it can be used. Please use "docker swarm '
        'unlock" to unlock it.',
        "RemoteManagers": None,
    }
    assert etcd_pids(d.data_root) == []
    assert not (Path(d.exec_root) / "swarm-keys" / "etcd.key").exists()
    with socket_refused(port):
        pass
    for args in (("node", "ls"), ("service", "ls"), ("secret", "ls")):
        r = d.docker(*args, check=False)
        assert (r.returncode, r.stderr) == (1, LOCKED_ERR), args
    r = d.docker("swarm", "unlock-key", check=False)
    assert (r.returncode, r.stderr) == (1, "could not fetch unlock key: " + LOCKED_ERR)
    r = d.docker("swarm", "leave", check=False)
    assert (r.returncode, r.stderr) == (
        1,
        "Error response from daemon: Swarm is encrypted and locked. Please unlock it first or use `--force` to "
        "ignore this message.\n",
    )
    _assert_sealed(d, plain, key3)
    for bad, err in (
        ("garbage", "invalid key string"),
        (key3 + "=", "invalid key string"),
        (key2, "swarm could not be unlocked: invalid key provided"),
        ("SWMKEY-1-AAAA", "swarm could not be unlocked: invalid key provided"),
    ):
        r = _unlock(d, bad)
        assert (r.returncode, r.stdout, r.stderr) == (1, "", f"Error response from daemon: {err}\n"), bad
    assert _info(d)["LocalNodeState"] == "locked"
    r = _unlock(d, key3)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert _info(d)["LocalNodeState"] == "active"
    assert len(etcd_pids(d.data_root)) == 1
    run_key = Path(d.exec_root) / "swarm-keys" / "etcd.key"
    assert run_key.read_bytes() == plain["etcd-tls/etcd.key"]  # etcd's clear copy lives in the exec root only
    assert d.docker("node", "ls", "-q").stdout.strip() == _info(d)["NodeID"]
    assert d.docker("secret", "ls", "--format", "{{.Name}}").stdout == "s1\n"
    assert _key(d) == key3

    # autolock off: the files in the clear again; a restart needs no key
    r = d.docker("swarm", "update", "--autolock=false")
    assert r.stdout == "Swarm updated.\n"
    assert _files(d) == plain
    r = d.docker("swarm", "unlock-key", check=False)
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "no unlock key is set\n")
    r = d.docker("swarm", "unlock-key", "--rotate", check=False)
    assert (r.returncode, r.stderr) == (1, "cannot rotate because autolock is not turned on\n")
    _restart(d)
    assert _info(d)["LocalNodeState"] == "active"
    assert d.docker("secret", "ls", "--format", "{{.Name}}").stdout == "s1\n"

    # on again: a new key; locked after a restart; `leave --force` from the locked state
    r = d.docker("swarm", "update", "--autolock=true")
    key4 = _key(d)
    assert r.stdout == "Swarm updated.\n" + UNLOCK_TEXT.format(key=key4)
    assert d.docker("swarm", "update", "--autolock=true").stdout == "Swarm updated.\n"
    _assert_sealed(d, plain, key4)
    _restart(d)
    assert _info(d)["LocalNodeState"] == "locked"
    assert d.docker("swarm", "leave", "--force").stdout == "Node left the swarm.\n"
    assert _info(d)["LocalNodeState"] == "inactive"
    assert not _swarm_dir(d).exists()
    assert etcd_pids(d.data_root) == []


class socket_refused:
    """A context manager asserting nothing listens on the swarm port (a locked manager serves nothing)."""

    def __init__(self, port: int) -> None:
        self.port = port

    def __enter__(self) -> None:
        import socket

        with socket.socket() as s, pytest.raises(ConnectionRefusedError):
            s.connect(("127.0.0.1", self.port))

    def __exit__(self, *exc: object) -> None:
        return None


def test_unlock_outside_a_swarm(manager: GoraeDaemon) -> None:
    r = _unlock(manager, "SWMKEY-1-AAAA")
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "Error: This node is not part of a swarm\n")
    with pytest.raises(Exception, match="503 Server Error.*This node is not a swarm manager"):
        manager.client().api.unlock_swarm("x")

