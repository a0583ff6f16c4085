"""Swarm autolock on real gorae daemons, driven with the docker CLI: the unlock key (`swarm init --autolock`,
`swarm update --autolock`, `swarm unlock-key [-q] [--rotate]`), the secret files sealed at rest (the node key,
the root CA key, the etcd key, the cluster data key) and their plaintext nowhere on disk, a restarted manager
that stays locked — no etcd member, dockerd's 503 on every swarm call — until `swarm unlock` with the right key,
and autolock turned off again. With three managers: one restarted stays locked while the others serve; a key
rotated while it was down still lets the old key unlock it, and it then follows the new one."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import GoraeDaemon, new_daemon, reference_dockerd, skip_outside_ci, wait_for
from swarm_cluster import etcd_pids, init, join, lan, leave_and_clean
from swarm_peer import SwarmDockerd, free_port, normalise

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
        leave_and_clean(d)


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


# -- the same commands against a real swarm-mode dockerd ----------------------------------------------------


class _Dockerd(SwarmDockerd):
    """A real dockerd that starts outside a swarm and can restart on the same roots."""

    def boot(self) -> None:
        argv, env = reference_dockerd(self.data, self.exec_root, self.host, self.pidfile)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        wait_for(lambda: self.run("docker", "version").returncode == 0 or self.proc.poll() is not None, 60)
        assert self.proc.poll() is None, self.log.read_text()[-2000:]

    def restart(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        self.boot()


_KEY = re.compile(r"SWMKEY-1-[A-Za-z0-9+/]+")
_TOKEN = re.compile(r"SWMTKN-1-[0-9a-z-]+")
RESTART = ("<restart>",)
STEPS: list[tuple[tuple[str, ...], str | None]] = [
    (("swarm", "unlock-key"), None),
    (("swarm", "unlock"), "x"),
    (("swarm", "init", "--autolock", "--advertise-addr", "<addr>", "--listen-addr", "<addr>"), None),
    (("swarm", "unlock-key"), None),
    (("swarm", "unlock-key", "-q"), None),
    (("swarm", "unlock"), "<key>"),
    (("swarm", "unlock-key", "--rotate"), None),
    (("swarm", "unlock-key", "--rotate", "-q"), None),
    (RESTART, None),
    (("info", "--format", "{{json .Swarm}}"), None),
    (("node", "ls"), None),
    (("swarm", "unlock-key"), None),
    (("swarm", "leave"), None),
    (("swarm", "unlock"), "garbage"),
    (("swarm", "unlock"), "<old key>"),
    (("swarm", "unlock"), "<key>"),
    (("info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}"), None),
    (("swarm", "update", "--autolock=false"), None),
    (("swarm", "unlock-key"), None),
    (("swarm", "unlock-key", "--rotate"), None),
    (("swarm", "update", "--autolock=true"), None),
    (("swarm", "update", "--autolock=true"), None),
    (RESTART, None),
    (("swarm", "leave", "--force"), None),
    (("info", "--format", "{{json .Swarm}}"), None),
]


def _scenario(
    run: Callable[..., subprocess.CompletedProcess[str]], restart: Callable[[], None], addr: str
) -> list:
    """STEPS through `run(*args, input=...)`, the keys typed being those the daemon gave; each result
    normalised (keys, tokens, IDs, the address)."""
    keys = ["", ""]
    out: list = []
    for args, typed in STEPS:
        if args == RESTART:
            restart()
            out.append("<restart>")
            continue
        argv = [addr if a == "<addr>" else a for a in args]
        if typed is not None:
            typed = {"<key>": keys[-1], "<old key>": keys[-2]}.get(typed, typed) + "\n"
        r = run(*argv, input=typed)
        found = _KEY.findall(r.stdout)
        if found:
            keys.append(found[-1])
        text = [r.stdout, r.stderr]
        text = [normalise(_TOKEN.sub("<token>", _KEY.sub("<key>", t.replace(addr, "<addr>")))) for t in text]
        out.append((args, r.returncode, *text))
    return out


def _gorae_cli(d: GoraeDaemon) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(d.env, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
        r = subprocess.run(
            [sys.executable, "-m", "gorae.cli.main", *args],
            input=input, capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip
        return subprocess.CompletedProcess(r.args, r.returncode, r.stdout.replace("gorae", "docker"),
                                           r.stderr.replace("gorae", "docker"))  # fmt: skip

    return run


def _docker_cli(d: GoraeDaemon) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", *args], input=input, capture_output=True, text=True, env=d.env, timeout=120
        )

    return run


def test_same_as_dockerd(tmp_path: Path) -> None:
    """The scenario with the docker CLI against a real dockerd, with the docker CLI against gorae, and with the
    gorae CLI against gorae: the same output, byte for byte after normalisation."""
    for tool in ("dockerd", "docker"):
        if not shutil.which(tool):
            skip_outside_ci(f"{tool} not installed")
    ref = _Dockerd(tmp_path)
    try:
        ref.boot()
        addr = f"127.0.0.1:{ref.port}"
        want = _scenario(lambda *a, input=None: ref.run("docker", *a, input=input), ref.restart, addr)
    finally:
        ref.stop()
    assert want[0][1:] == (
        1,
        "",
        'could not fetch unlock key: Error response from daemon: This node is not a swarm manager. Use "docker swarm '
        'init" or "docker swarm join" to connect this node to swarm and try again.\n',
    )
    assert '"LocalNodeState":"locked"' in want[9][2]
    assert want[13] == (("swarm", "unlock"), 1, "", "Error response from daemon: invalid key string\n")
    assert want[14] == (
        ("swarm", "unlock"), 1, "", "Error response from daemon: swarm could not be unlocked: invalid key provided\n"
    )  # fmt: skip
    assert want[15] == (("swarm", "unlock"), 0, "", "")
    for cli in (_docker_cli, _gorae_cli):
        d = new_daemon(with_busybox=False)
        try:
            addr = f"127.0.0.1:{free_port()}"
            got = _scenario(cli(d), lambda: (d.stop(), d.start()), addr)  # noqa: B023
        finally:
            try:
                d.docker("swarm", "leave", "--force", check=False, timeout=30)
            finally:
                d.cleanup()
                for pid in etcd_pids(d.data_root):
                    os.kill(pid, signal.SIGKILL)
        for w, g in zip(want, got, strict=True):
            assert g == w, cli.__name__


# -- three managers -------------------------------------------------------------------------------------------


def _sealed_under(d: GoraeDaemon, key: str) -> bool:
    kek = autolock.derive_kek(autolock.parse_key(key))
    try:
        for name, data in _files(d).items():
            autolock.unseal(kek, data, name)
    except (Unauthorized, FileNotFoundError):
        return False
    return True


def _clear(d: GoraeDaemon) -> bool:
    try:
        return not any(data.startswith(autolock.MAGIC) for data in _files(d).values())
    except FileNotFoundError:
        return False


def test_three_managers_one_locked() -> None:
    """A restarted manager stays locked while the two others serve; the key rotated meanwhile does not open
    it, the old one does, and it then re-seals under the new one."""
    with lan(3) as hosts:
        _, tokens = init(hosts[0], "--autolock")
        for h in hosts[1:]:
            join(h, hosts[0], tokens["manager"])
        key = _key(hosts[0].daemon)
        for h in hosts[1:]:  # once it has the cluster data key from another manager
            wait_for(
                lambda h=h: h.docker("swarm", "unlock-key", "-q", check=False).stdout == key + "\n", 30, 0.5
            )
        for h in hosts:  # each manager seals its own files once it sees the key (and has the data key)
            wait_for(lambda h=h: _sealed_under(h.daemon, key), timeout=60, step=0.5)
        down = hosts[2]
        node_id = down.node_id
        down.daemon.stop()
        down.daemon.start()
        assert down.swarm_info()["LocalNodeState"] == "locked"
        assert etcd_pids(down.daemon.data_root) == []
        r = down.docker("node", "ls", check=False)
        assert (r.returncode, r.stderr) == (1, LOCKED_ERR)
        # the two others keep the quorum and serve, and see the locked one unreachable
        wait_for(
            lambda: "Unreachable" in hosts[0].docker("node", "inspect", node_id, "--format",
                                                     "{{.ManagerStatus.Reachability}}").stdout.title(),
            timeout=60, step=0.5,
        )  # fmt: skip
        hosts[1].docker("service", "create", "--name", "web", "--replicas", "0", "busybox", "sleep", "1d")
        assert hosts[0].docker("service", "ls", "--format", "{{.Name}}").stdout == "web\n"
        # rotation while it is locked: the running managers follow
        hosts[1].docker("swarm", "unlock-key", "--rotate", "-q")
        key2 = _key(hosts[0].daemon)
        assert key2 != key
        for h in hosts[:2]:
            wait_for(lambda h=h: _sealed_under(h.daemon, key2), timeout=60, step=0.5)
        assert _sealed_under(down.daemon, key)
        r = _unlock(down.daemon, key2)
        assert (r.returncode, r.stderr) == (
            1,
            "Error response from daemon: swarm could not be unlocked: invalid key provided\n",
        )
        r = _unlock(down.daemon, key)
        assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
        wait_for(lambda: _sealed_under(down.daemon, key2), timeout=60, step=0.5)
        assert down.swarm_info()["LocalNodeState"] == "active"
        wait_for(
            lambda: down.docker("service", "ls", "--format", "{{.Name}}", check=False).stdout == "web\n", 30
        )
        assert _key(down.daemon) == key2
        # autolock off: every manager's files in the clear again
        hosts[2].docker("swarm", "update", "--autolock=false")
        for h in hosts:
            wait_for(lambda h=h: _clear(h.daemon), timeout=60, step=0.5)
        hosts[0].docker("service", "rm", "web")


def _on_pty(d: GoraeDaemon, cli: str, typed: str) -> tuple[int, bytes]:
    """`swarm unlock` with either CLI under a pty, `typed` entered at the prompt: (status, what the terminal
    showed)."""
    import io

    import pexpect

    argv = ["docker"] if cli == "docker" else [sys.executable, "-m", "gorae.cli.main"]
    env = dict(d.env, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
    child = pexpect.spawn(argv[0], [*argv[1:], "swarm", "unlock"], env=env, timeout=60, encoding=None)
    child.logfile_read = io.BytesIO()
    child.expect(b"Enter unlock key: ")
    child.sendline(typed.encode())
    child.expect(pexpect.EOF)
    child.close()
    return int(child.exitstatus), bytes(child.logfile_read.getvalue())


def test_unlock_on_a_terminal(manager: GoraeDaemon) -> None:
    """On a terminal both CLIs prompt on stdout, do not echo the key and end the line after it."""
    d = manager
    addr = f"127.0.0.1:{free_port()}"
    d.docker("swarm", "init", "--autolock", "--advertise-addr", addr, "--listen-addr", addr)
    key = _key(d)
    _restart(d)
    wrong = autolock.new_key()
    docker_shows = _on_pty(d, "docker", wrong)
    assert docker_shows == (
        1,
        b"Enter unlock key: \r\nError response from daemon: swarm could not be unlocked: invalid key provided\r\n",
    )
    assert _on_pty(d, "gorae", wrong) == docker_shows
    assert _on_pty(d, "gorae", key) == (0, b"Enter unlock key: \r\n")
    assert _info(d)["LocalNodeState"] == "active"
