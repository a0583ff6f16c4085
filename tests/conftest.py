"""Shared fixtures: a real gorae daemon on a temporary data root, exec root and socket, and its cleanup.

`gorae_daemon` (session) is the daemon most compatibility tests share; `fresh_daemon` (function) gives a
test its own daemon for crash/restart stories. Teardown kills conmon/runc leftovers, unmounts everything
under the roots and deletes them, even when the test failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from daemon_reaper import Reaper

from gorae.archive.tree import remove_tree

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")


def reference_dockerd(
    data_root: str | Path, exec_root: str | Path, host: str, pidfile: str | Path, *extra: str
) -> tuple[list[str], dict[str, str]]:
    """The argv and environment of a reference dockerd (the real thing, for comparisons) on its own roots,
    socket and pidfile: off the host's firewall and sysctls (dockerd's defaults rewrite them), and with
    $TMPDIR in its exec root, so containerd's stack dumps (written there on SIGUSR1) go with the root."""
    argv = [
        "dockerd", "--data-root", str(data_root), "--exec-root", str(exec_root), "-H", host,
        "--iptables=false", "--ip-masq=false", "--ip-forward=false", "--bridge=none", "--pidfile", str(pidfile),
        *extra,
    ]  # fmt: skip
    return argv, dict(os.environ, TMPDIR=str(exec_root))


def unmount_under(root: str) -> None:
    """Unmount every mount at or below `root`, deepest first (a dockerd's exec-root/netns bind mount too)."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            points = [line.split()[4] for line in f]
    except OSError:
        return
    for p in sorted((p for p in points if p == root or p.startswith(root + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", p], capture_output=True)


def _kill_runtime(exec_root: str) -> None:
    runc_root = os.path.join(exec_root, "runc")
    if os.path.isdir(runc_root):
        out = subprocess.run(
            ["runc", "--root", runc_root, "list", "-q"], capture_output=True, text=True
        ).stdout
        for cid in out.split():
            subprocess.run(["runc", "--root", runc_root, "kill", cid, "KILL"], capture_output=True)
            subprocess.run(["runc", "--root", runc_root, "delete", "-f", cid], capture_output=True)
    # conmon processes started for this exec root
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"conmon") and any(exec_root.encode() in a for a in cmd):
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass


def _test_network_config() -> dict[str, object]:
    """A test daemon's own subnets (10.60-199.x; the network unit tests use 10.213-250.x): never the
    default pools other daemons on this host may use."""
    import random

    a, b = random.randint(60, 199), random.randint(0, 127)
    return {"bip": f"10.{a}.{b}.1/24", "default-address-pools": [{"base": f"10.{a}.128.0/17", "size": 24}]}


def _purge_network(exec_root: str) -> None:
    """Remove everything the test daemon put in the kernel (bridge, veths, namespaces, iptables chains);
    fail the test if anything stays."""
    from gorae.network.leftovers import purge_daemon

    left = purge_daemon(exec_root)
    assert not left, f"test daemon left kernel state behind: {left}"


def network_leftovers(exec_root: str) -> list[str]:
    """The test daemon's kernel state still present (tests assert it is empty after removals)."""
    from gorae.network.leftovers import leftovers
    from gorae.network.names import daemon_names

    names = daemon_names(exec_root)
    return leftovers(
        names.bridge, (names.user_bridge_prefix, names.veth_prefix), names.chain_prefix, exec_root
    )


@dataclass
class GoraeDaemon:
    data_root: str
    exec_root: str
    socket: str
    log_path: str
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    command_prefix: list[str] = field(default_factory=list)  # e.g. ["ip", "netns", "exec", "ns1"]
    reaper: Reaper | None = None  # the watcher that cleans up if pytest dies first

    @property
    def host(self) -> str:
        return "unix://" + self.socket

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["DOCKER_HOST"] = self.host
        env["GORAE_HOST"] = self.host
        env.pop("DOCKER_CONTEXT", None)
        env["DOCKER_CONFIG"] = os.path.join(self.data_root, ".docker-cli")
        return env

    def start(self, timeout: float = 20.0) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
        cfg = os.path.join(self.data_root, "daemon.json")
        if not os.path.exists(cfg):
            with open(cfg, "w", encoding="utf-8") as f:
                json.dump(_test_network_config(), f)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [
                *self.command_prefix,
                sys.executable,
                "-m",
                "gorae.cmd.daemon",
                "--data-root",
                self.data_root,
                "--exec-root",
                self.exec_root,
                "-H",
                self.host,
                "--config-file",
                cfg,
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        log.close()
        self._watch(self.proc.pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gorae daemon exited {self.proc.returncode}:\n{self.log()}")
            if self.ping():
                return
            time.sleep(0.05)
        raise RuntimeError(f"gorae daemon did not answer /_ping in {timeout}s:\n{self.log()}")

    def _watch(self, pid: int) -> None:
        """Have this daemon's watcher (tests/daemon_reaper.py; one per daemon, it follows restarts) clean up
        after it should pytest die before `cleanup()` ran."""
        if self.reaper is None:
            spec = {"data_root": self.data_root, "exec_root": self.exec_root, "socket": self.socket}
            self.reaper = Reaper("gorae", {**spec, "log_path": self.log_path})
        self.reaper.watch(pid)

    def _dismiss_reaper(self) -> None:
        if self.reaper is not None:
            self.reaper.dismiss()
            self.reaper = None

    def ping(self) -> bool:
        import socket as s

        if not os.path.exists(self.socket):
            return False
        try:
            with s.socket(s.AF_UNIX) as c:
                c.settimeout(1)
                c.connect(self.socket)
                c.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return c.recv(100).startswith(b"HTTP/1.1 200")
        except OSError:
            return False

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill9(self) -> None:
        self.stop(signal.SIGKILL)

    def log(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()[-8000:]
        except OSError:
            return ""

    def docker(
        self, *args: str, input: bytes | str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run the real docker CLI against this daemon."""
        res = subprocess.run(
            ["docker", *args],
            env=self.env,
            capture_output=True,
            text=True,
            input=input if not isinstance(input, bytes) else input.decode(),
            timeout=timeout,
        )
        if check and res.returncode != 0:
            raise AssertionError(
                f"docker {' '.join(args)} exited {res.returncode}\nstdout: {res.stdout}\n"
                f"stderr: {res.stderr}\ndaemon log:\n{self.log()[-3000:]}"
            )
        return res

    def client(self):  # type: ignore[no-untyped-def]
        import docker

        return docker.DockerClient(base_url=self.host, timeout=60)

    def cleanup(self) -> None:
        """Stop the daemon and remove everything it made, whatever fails on the way (the first failure is
        raised at the end, after the rest was cleaned)."""
        errors: list[BaseException] = []
        steps = (
            self.stop,
            lambda: _kill_runtime(self.exec_root),
            lambda: unmount_under(self.data_root),
            lambda: unmount_under(self.exec_root),
            lambda: remove_tree(self.data_root),  # at any depth: containers make deep trees
            lambda: remove_tree(self.exec_root),
            lambda: _unlink(self.socket),
            lambda: _unlink(self.log_path),
            lambda: _purge_network(self.exec_root),  # last: it asserts nothing was left
        )
        for step in (*steps, self._dismiss_reaper):
            try:
                step()
            except BaseException as e:  # noqa: BLE001 - every step runs; the first error is raised below
                errors.append(e)
        if errors:
            raise errors[0]


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


_BUSYBOX_TAR: str | None = None


def busybox_tar() -> str:
    """The busybox rootfs tarball made by the set-up's bootstrap (built once per test session)."""
    global _BUSYBOX_TAR
    if _BUSYBOX_TAR is None or not os.path.exists(_BUSYBOX_TAR):
        fd, path = tempfile.mkstemp(prefix="gorae-busybox-", suffix=".tar")
        with os.fdopen(fd, "wb") as out:
            env = dict(os.environ, PYTHONPATH=SRC)
            subprocess.run([sys.executable, "-m", "gorae.image.bootstrap"], stdout=out, check=True, env=env)
        _BUSYBOX_TAR = path
    return _BUSYBOX_TAR


def remove_busybox_tar() -> None:
    """Delete the session's busybox tarball (the benchmarks, which import these helpers, call it too)."""
    global _BUSYBOX_TAR
    if _BUSYBOX_TAR is not None:
        _unlink(_BUSYBOX_TAR)
        _BUSYBOX_TAR = None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Nothing of the suite's own stays in /tmp: the busybox tarball is made once per session, and after a
    green run pytest's own temporary directories go too (after a failure they stay, for the post-mortem)."""
    remove_busybox_tar()
    factory = getattr(session.config, "_tmp_path_factory", None)
    if os.environ.get("GORAE_MUTATION"):  # scripts/mutation-pytest.sh removes its own temporary root
        return
    if exitstatus != 0 or factory is None or getattr(factory, "_basetemp", None) is None:
        return
    base = factory.getbasetemp()
    remove_tree(str(base))
    parent = base.parent  # /tmp/pytest-of-<user>, with only the `pytest-current` link left
    if parent.name.startswith("pytest-of-"):
        with contextlib.suppress(OSError):
            for entry in parent.iterdir():
                if entry.is_symlink() and not entry.exists():
                    entry.unlink()
            parent.rmdir()


# What the suite needs from the machine. Outside CI a missing piece makes the tests that need it skip (with
# the reason, listed by `-ra`); in CI (the environment variable CI is set) the session fails up front.
REQUIRED_TOOLS = (
    "docker",
    "dockerd",
    "runc",
    "conmon",
    "openssl",
    "zsh",
    "fish",
    # the registry, compose, monitoring and swarm peers (scripts/test.sh and scripts/setup.sh install them)
    "docker-registry",
    "skopeo",
    "docker-compose",
    "prometheus",
    "carbon-cache",
    "chromium",
    "chromedriver",
    "etcd",
    # git: the git build contexts (test_build_git.py) and gorae deploy's pushes, also over ssh to a private sshd
    "git",
    "sshd",
    "ssh",
    "ssh-keygen",
)
REQUIRED_MODULES = ("pexpect", "zstandard", "docker", "hypothesis", "moto", "selenium", "boto3", "aetcd")


def missing_requirements() -> list[str]:
    """The tools, Python modules and files the suite depends on that this machine lacks."""
    import importlib.util
    import shutil

    from gorae.runtime import seccomp

    missing = [f"{t} (not on PATH)" for t in REQUIRED_TOOLS if shutil.which(t) is None]
    missing += [f"python module {m}" for m in REQUIRED_MODULES if importlib.util.find_spec(m) is None]
    if not os.path.exists(seccomp.DEFAULT_PROFILE):
        missing.append(f"seccomp profile {seccomp.DEFAULT_PROFILE} (test_spec.py's real-profile check)")
    if os.geteuid() != 0:
        missing.append("root (the runtime, network and compat tests run containers)")
    return missing


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def _sigterm(signum: int, frame: object) -> None:
    """SIGTERM (a CI timeout, `kill`) ends the run the way ^C does: pytest stops and runs every fixture's
    teardown. A second SIGTERM ends pytest at once; the daemons' watchers (tests/daemon_reaper.py) then clean
    up what the teardown did not reach."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise KeyboardInterrupt


def pytest_configure(config: pytest.Config) -> None:
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _sigterm)
        # A shell without job control starts `cmd &` with SIGINT ignored, and an ignored signal stays ignored
        # across exec: every CLI the tests start would then ignore ^C (pexpect's sendintr, `docker attach`'s
        # detach tests). Python's own handler here is reset to the default in each child at exec.
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Preflight: in CI, fail the session when something the suite depends on is missing, instead of
    letting the tests that need it skip."""
    if not in_ci():
        return
    missing = missing_requirements()
    if missing:
        raise pytest.UsageError(
            "CI is set but the machine lacks what the test suite needs (scripts/setup.sh installs it):\n  "
            + "\n  ".join(missing)
        )


def skip_outside_ci(reason: str) -> None:
    """Skip for a reason of the environment (e.g. dockerd did not start); in CI that is a failure."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set: the CI machine must provide this)")
    pytest.skip(reason)


def import_busybox(d: GoraeDaemon) -> None:
    import http.client
    import socket as s
    import urllib.parse

    class Conn(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = s.socket(s.AF_UNIX)
            self.sock.connect(d.socket)

    q = urllib.parse.urlencode({"fromSrc": "-", "repo": "busybox", "tag": "latest", "changes": 'CMD ["sh"]'})
    conn = Conn("localhost")
    with open(busybox_tar(), "rb") as f:
        conn.request(
            "POST", "/images/create?" + q, body=f.read(), headers={"Content-Type": "application/x-tar"}
        )
    resp = conn.getresponse()
    body = resp.read().decode()
    if resp.status != 200 or '"error"' in body:
        raise RuntimeError(f"importing busybox failed: {resp.status} {body}")
    conn.close()


def new_daemon(extra_args: list[str] | None = None, with_busybox: bool = True) -> GoraeDaemon:
    tag = uuid.uuid4().hex[:8]
    data_root = tempfile.mkdtemp(prefix=f"gorae-test-{tag}-")
    exec_root = f"/run/gorae-t-{tag}"
    d = GoraeDaemon(
        data_root=data_root,
        exec_root=exec_root,
        socket=f"/run/gorae-t-{tag}.sock",
        log_path=os.path.join(tempfile.gettempdir(), f"gorae-test-{tag}.log"),
        extra_args=list(extra_args or []),
    )
    try:
        d.start()
        if with_busybox:
            import_busybox(d)
    except BaseException:
        print(d.log())
        d.cleanup()
        raise
    return d


@contextlib.contextmanager
def small_disk_daemon(size_mb: int, name: str) -> Iterator[GoraeDaemon]:
    """A daemon (busybox imported) whose data root is a tmpfs of `size_mb` MiB, for the full-disk tests;
    unmounted and removed afterwards, pass or fail."""
    base = tempfile.mkdtemp(prefix=f"{name}-")
    mounted = False
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", name, base], check=True)
        mounted = True
        tag = uuid.uuid4().hex[:8]
        root = os.path.join(base, "root")
        os.makedirs(root)
        d = GoraeDaemon(
            data_root=root,
            exec_root=f"/run/gorae-t-{tag}",
            socket=f"/run/gorae-t-{tag}.sock",
            log_path=os.path.join(tempfile.gettempdir(), f"gorae-test-{tag}.log"),
        )
        try:
            d.start()
            import_busybox(d)
            yield d
        finally:
            d.cleanup()
    finally:
        if mounted:
            if subprocess.run(["umount", base], check=False).returncode != 0:
                subprocess.run(["umount", "-l", base], check=False)
        os.rmdir(base)


@pytest.fixture(scope="session")
def gorae_daemon() -> Iterator[GoraeDaemon]:
    d = new_daemon()
    try:
        yield d
    finally:
        d.cleanup()


_LISTINGS = {  # what a test may leave on the shared daemon, how to list it and how to remove it (in this order)
    "containers": (("ps", "-aq", "--no-trunc"), ("rm", "-f")),
    "volumes": (("volume", "ls", "-q"), ("volume", "rm", "-f")),
    "networks": (("network", "ls", "-q", "--no-trunc"), ("network", "rm")),
}


@pytest.fixture
def tidy_daemon(gorae_daemon: GoraeDaemon) -> Iterator[GoraeDaemon]:
    """The shared daemon; the containers, volumes and networks the test made are removed afterwards, pass or
    fail."""
    d = gorae_daemon
    before = {kind: set(d.docker(*ls).stdout.split()) for kind, (ls, _) in _LISTINGS.items()}
    try:
        yield d
    finally:
        for kind, (ls, rm) in _LISTINGS.items():
            made = set(d.docker(*ls, check=False).stdout.split()) - before[kind]
            if made:
                d.docker(*rm, *sorted(made), check=False)


def _busybox_id(d: GoraeDaemon) -> str | None:
    """busybox:latest's image id on `d` (one raw API request: this runs around every test), None if absent."""
    import http.client
    import socket as socketlib

    class _Conn(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socketlib.socket(socketlib.AF_UNIX)
            self.sock.settimeout(30)
            self.sock.connect(d.socket)

    conn = _Conn("localhost")
    try:
        conn.request("GET", "/v1.45/images/busybox:latest/json")
        resp = conn.getresponse()
        body = resp.read()
        return str(json.loads(body)["Id"]) if resp.status == 200 else None
    except OSError:
        return None
    finally:
        conn.close()


@pytest.fixture(autouse=True)
def _keep_busybox(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tests on the shared daemon count on busybox:latest; one that removes it (a pull/push round trip, an
    `rmi -f <id>` of a pulled copy of it) gets it back afterwards, pass or fail."""
    if "gorae_daemon" not in request.fixturenames:
        yield
        return
    d: GoraeDaemon = request.getfixturevalue("gorae_daemon")
    busybox = _busybox_id(d)
    yield
    if busybox and _busybox_id(d) is None:
        if d.docker("tag", busybox, "busybox:latest", check=False).returncode != 0:
            import_busybox(d)


@pytest.fixture
def fresh_daemon() -> Iterator[GoraeDaemon]:
    d = new_daemon()
    try:
        yield d
    finally:
        d.cleanup()


@pytest.fixture
def docker_client(gorae_daemon: GoraeDaemon):  # type: ignore[no-untyped-def]
    c = gorae_daemon.client()
    try:
        yield c
    finally:
        c.close()


def inspect(d: GoraeDaemon, name: str) -> dict:
    return json.loads(d.docker("inspect", name).stdout)[0]


CLI_TARGETS = [t for t in os.environ.get("GORAE_TEST_TARGET", "gorae,dref").split(",") if t]


@pytest.fixture(scope="session", params=CLI_TARGETS)
def daemon(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The CLI tests' daemon, one per target (gorae, and a real dockerd) for the whole session; see
    tests/compat/cli_daemon.py."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "compat"))
    from cli_daemon import target_daemons

    yield from target_daemons(request.param, tmp_path_factory.mktemp(f"daemon-{request.param}"))


@pytest.fixture
def g(daemon):  # type: ignore[no-untyped-def]
    """Run the gorae CLI against the CLI tests' daemon."""
    from cli_daemon import gorae_runner

    return gorae_runner(daemon)


@pytest.fixture
def dk(daemon):  # type: ignore[no-untyped-def]
    """Run the real docker CLI against the CLI tests' daemon."""
    from cli_daemon import docker_runner

    return docker_runner(daemon)


def unique_name(prefix: str = "t") -> str:
    """A container name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_for(pred, timeout: float = 10.0, step: float = 0.1):  # type: ignore[no-untyped-def]
    """Poll `pred` until it returns something truthy (returned), or fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")


@pytest.fixture
def cleanup(gorae_daemon: GoraeDaemon):  # type: ignore[no-untyped-def]
    """Container names registered here are force-removed after the test, pass or fail."""
    names: list[str] = []
    yield names
    for n in names:
        gorae_daemon.docker("rm", "-f", n, check=False)
