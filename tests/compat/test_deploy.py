"""`gorae deploy`: real `git push`es (to a local path and over ssh to a private sshd on 127.0.0.1) deploy an
application on a private gorae daemon: first deploy, a second one under a request loop (its failed requests
counted and printed: the single-container swap gap), a commit whose build fails and one whose health check
fails (the push exits non-zero, the old version keeps serving), rollback, pruning to --keep, two pushes in
quick succession, and recovery from a daemon restart mid-swap.

Everything is removed afterwards: the daemon with its containers and images, sshd, keys, repositories, state.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest
from conftest import SRC, GoraeDaemon, new_daemon, skip_outside_ci, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="runs containers (root)")

APP_DOCKERFILE = (
    'FROM busybox\nCOPY index.html /www/index.html\nCMD ["httpd", "-f", "-p", "3000", "-h", "/www"]\n'
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def daemon() -> Iterator[GoraeDaemon]:
    d = new_daemon()
    try:
        yield d
    finally:
        d.cleanup()


class Env:
    """One test's world: a state dir, a server-side repo path, a work clone, the gorae CLI against `daemon`."""

    def __init__(self, d: GoraeDaemon, name: str) -> None:
        self.d = d
        self.name = name
        self.root = tempfile.mkdtemp(prefix="gorae-deploy-test-")
        self.state = os.path.join(self.root, "state")
        self.repo = os.path.join(self.root, "srv", f"{name}.git")
        self.work = os.path.join(self.root, "work")
        self.port = free_port()
        self.env = dict(os.environ)
        self.env.update(
            {
                "PYTHONPATH": SRC,
                "GORAE_DEPLOY_DIR": self.state,
                "GIT_AUTHOR_NAME": "t",
                "GIT_AUTHOR_EMAIL": "t@example.com",
                "GIT_COMMITTER_NAME": "t",
                "GIT_COMMITTER_EMAIL": "t@example.com",
                "GIT_CONFIG_NOSYSTEM": "1",
                "HOME": self.root,
            }
        )
        self.env.pop("DOCKER_HOST", None)
        self.env.pop("GORAE_HOST", None)
        os.makedirs(self.work)
        self.git("init", "-q", "-b", "main")

    def gorae(self, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(
            [sys.executable, "-m", "gorae.cmd.main", "-H", self.d.host, *args],
            env=self.env, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if check and r.returncode != 0:
            raise AssertionError(
                f"gorae {args} exited {r.returncode}\n{r.stdout}\n{out(r)}\n{self.d.log()[-2000:]}"
            )
        return r

    def git(self, *args: str, check: bool = True, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(
            ["git", *args], cwd=self.work, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and r.returncode != 0:
            raise AssertionError(f"git {args} exited {r.returncode}\n{r.stdout}\n{out(r)}")
        return r

    def commit(self, body: str, dockerfile: str = APP_DOCKERFILE) -> str:
        with open(os.path.join(self.work, "Dockerfile"), "w") as f:
            f.write(dockerfile)
        with open(os.path.join(self.work, "index.html"), "w") as f:
            f.write(body)
        self.git("add", "-A")
        self.git("commit", "-q", "-m", body)
        return self.git("rev-parse", "HEAD").stdout.strip()

    def get(self, timeout: float = 2.0) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/index.html", timeout=timeout) as r:
            return str(r.read().decode())

    def app_containers(self) -> list[dict]:  # type: ignore[type-arg]
        out = self.d.docker(
            "ps", "-a", "--filter", f"label=org.gorae.deploy.app={self.name}", "--format", "{{json .}}"
        )
        return [json.loads(line) for line in out.stdout.splitlines()]

    def app_images(self) -> list[str]:
        out = self.d.docker("images", self.name, "--format", "{{.Repository}}:{{.Tag}}")
        return sorted(out.stdout.split())

    def cleanup(self) -> None:
        for c in self.app_containers():
            self.d.docker("rm", "-f", c["ID"], check=False)
        for img in self.app_images():
            self.d.docker("rmi", "-f", img, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def world(daemon: GoraeDaemon, request: pytest.FixtureRequest) -> Iterator[Env]:
    name = "app" + request.node.name.replace("test_", "").replace("_", "")[:20]
    e = Env(daemon, name)
    try:
        yield e
    finally:
        e.cleanup()


class Hammer:
    """A request loop against the app's port in a thread: how many requests failed, the bodies seen."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.ok = 0
        self.failed = 0
        self.bodies: list[str] = []
        self.longest_outage = 0.0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        down_since: float | None = None
        while not self._stop.is_set():
            try:
                body = self.env.get(timeout=1.0)
                self.ok += 1
                if not self.bodies or self.bodies[-1] != body:
                    self.bodies.append(body)
                if down_since is not None:
                    self.longest_outage = max(self.longest_outage, time.monotonic() - down_since)
                    down_since = None
            except (OSError, http.client.HTTPException):  # refused, reset, or a response cut short by the swap
                self.failed += 1
                if down_since is None:
                    down_since = time.monotonic()

    def __enter__(self) -> Hammer:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()


def out(r: subprocess.CompletedProcess[str]) -> str:
    """What the pusher saw, without the blanks git pads "remote:" lines with."""
    return "".join(line.rstrip() + "\n" for line in r.stderr.splitlines())


def init(e: Env, *extra: str) -> None:
    e.gorae(
        "deploy", "init", e.repo, "--name", e.name, "-p", f"{e.port}:3000", "--ready-timeout", "20s", *extra
    )
    e.git("remote", "add", "prod", e.repo)


def test_first_and_second_deploy_with_a_request_loop(world: Env) -> None:
    e = world
    init(e)
    assert e.git("-C", e.repo, "rev-parse", "--is-bare-repository").stdout.strip() == "true"
    hook = open(os.path.join(e.repo, "hooks", "pre-receive")).read()
    assert "gorae.cmd.main" in hook and "deploy hook" in hook
    assert e.git("config", "--file", os.path.join(e.repo, "config"), "gorae.name").stdout.strip() == e.name

    c1 = e.commit("v1")
    r = e.git("push", "prod", "main")
    assert f"Successfully tagged {e.name}:{c1[:7]}" in out(r)  # the build's output reached the pusher
    assert f"remote: {e.name}:{c1[:7]} healthy, now serving on :{e.port}\n" in out(r)
    assert e.get() == "v1"
    labels = json.loads(
        e.d.docker("image", "inspect", "-f", "{{json .Config.Labels}}", f"{e.name}:{c1[:7]}").stdout
    )
    assert labels["org.opencontainers.image.revision"] == c1
    assert labels["org.opencontainers.image.ref.name"] == "refs/heads/main"

    c2 = e.commit("v2")
    with Hammer(e) as h:
        wait_for(lambda: h.ok > 0)
        r = e.git("push", "prod", "main")
        wait_for(lambda: h.bodies[-1] == "v2")
        ok_after = h.ok
        wait_for(lambda: h.ok >= ok_after + 5)
    swap_line = next(line for line in out(r).splitlines() if "swapped in" in line)
    print(
        f"\nsingle-container swap: {h.failed} failed of {h.ok + h.failed} requests, "
        f"longest outage {h.longest_outage * 1000:.0f} ms ({swap_line})"
    )
    assert (
        f"remote: {e.name}:{c2[:7]} healthy, now serving on :{e.port}, previous {e.name}:{c1[:7]} kept\n"
        in out(r)
    ), out(r)
    assert h.bodies == ["v1", "v2"]
    assert "(handed over:" in swap_line
    assert h.failed == 0  # gorae's port handover: the port never closed
    running = [c for c in e.app_containers() if c["State"] == "running"]
    assert [c["Image"] for c in running] == [f"{e.name}:{c2[:7]}"]
    assert e.app_images() == sorted([f"{e.name}:{c1[:7]}", f"{e.name}:{c2[:7]}"])

    ls = e.gorae("deploy", "ls").stdout.splitlines()
    assert ls[0].split() == ["NAME", "IMAGE", "COMMIT", "STATE", "DEPLOYED", "REPOSITORY"]
    assert ls[1].split()[:4] == [e.name, f"{e.name}:{c2[:7]}", c2[:7], "running"]
    log = e.gorae("deploy", "log", e.name).stdout.splitlines()
    assert [line.split()[2:6] for line in log[1:]] == [
        [c2[:7], f"{e.name}:{c2[:7]}", "push", "deployed"],
        [c1[:7], f"{e.name}:{c1[:7]}", "push", "deployed"],
    ]


def test_stop_then_start_without_the_handover(world: Env) -> None:
    """`--port-handover=false` (what an engine without gorae's handover gets): the old container stops, then
    a new one publishing the ports starts. The gap is measured and printed; the versions still follow in order."""
    e = world
    init(e, "--port-handover=false")
    c1 = e.commit("w1")
    e.git("push", "prod", "main")
    c2 = e.commit("w2")
    with Hammer(e) as h:
        wait_for(lambda: h.ok > 0)
        r = e.git("push", "prod", "main")
        wait_for(lambda: h.bodies[-1] == "w2")
        ok_after = h.ok
        wait_for(lambda: h.ok >= ok_after + 5)
    swap_line = next(line for line in out(r).splitlines() if "swapped in" in line)
    print(
        f"\nstop-then-start swap: {h.failed} failed of {h.ok + h.failed} requests, "
        f"longest outage {h.longest_outage * 1000:.0f} ms ({swap_line})"
    )
    assert "(restarted:" in swap_line
    assert h.bodies == ["w1", "w2"]
    assert f"previous {e.name}:{c1[:7]} kept" in out(r)
    assert [c["Image"] for c in e.app_containers()] == [f"{e.name}:{c2[:7]}"]


def test_broken_build_and_failing_health_check_keep_the_old_version(world: Env) -> None:
    e = world
    init(e)
    c1 = e.commit("good")
    e.git("push", "prod", "main")
    assert e.get() == "good"

    e.commit("broken", APP_DOCKERFILE.replace("COPY", "RUN echo build-breaks-here && exit 3\nCOPY"))
    r = e.git("push", "prod", "main", check=False)
    assert r.returncode != 0
    assert "remote: build-breaks-here" in out(r)
    assert "The command '/bin/sh -c echo build-breaks-here && exit 3' returned a non-zero code: 3" in out(r)
    assert f"remote: gorae deploy: push refused; {e.name}:{c1[:7]} keeps serving" in out(r)
    assert "[remote rejected] main -> main (pre-receive hook declined)" in out(r)
    assert e.get() == "good"
    assert e.git("-C", e.repo, "rev-parse", "main").stdout.strip() == c1  # the ref did not move

    sick = e.commit(
        "sick", APP_DOCKERFILE + "HEALTHCHECK --interval=1s --retries=2 CMD echo sick-probe; false\n"
    )
    r = e.git("push", "prod", "main", check=False)
    assert r.returncode != 0
    assert (
        f"remote: gorae deploy: {e.name}:{sick[:7]} is not healthy: its health check failed: sick-probe"
        in out(r)
    )
    assert f"push refused; {e.name}:{c1[:7]} keeps serving" in out(r)
    assert e.get() == "good"
    assert [c["Image"] for c in e.app_containers()] == [f"{e.name}:{c1[:7]}"]  # the candidate is gone

    e.git("reset", "-q", "--hard", c1)
    fixed = e.commit("fixed")
    e.git("push", "prod", "main")
    assert e.get() == "fixed"
    results = [line.split()[5] for line in e.gorae("deploy", "log", e.name).stdout.splitlines()[1:]]
    assert results == ["deployed", "failed", "failed", "deployed"]
    assert fixed


def test_health_cmd_rollback_and_keep_pruning(world: Env) -> None:
    e = world
    init(e, "--keep", "1", "--health-cmd", "wget -qO- 127.0.0.1:3000/index.html")
    commits = []
    for v in ("r1", "r2", "r3"):
        commits.append(e.commit(v))
        e.git("push", "prod", "main")
        assert e.get() == v
    c1, c2, c3 = commits
    # keep 1 previous: r1's image was pruned when r3 went live
    assert e.app_images() == sorted([f"{e.name}:{c2[:7]}", f"{e.name}:{c3[:7]}"])

    r = e.gorae("deploy", "rollback", e.name)
    assert (
        r.stdout == f"{e.name}:{c2[:7]} healthy, now serving on :{e.port}, previous {e.name}:{c3[:7]} kept\n"
    )
    assert e.get() == "r2"
    r = e.gorae("deploy", "rollback", e.name, "--to", c1[:9], check=False)
    assert r.returncode == 1
    assert out(r) == f"gorae deploy: {e.name} has no a kept image of commit {c1[:9]}\n"
    r = e.gorae("deploy", "rollback", e.name, "--to", c3[:10])
    assert e.get() == "r3"
    log = [line.split() for line in e.gorae("deploy", "log", e.name).stdout.splitlines()[1:]]
    assert [(x[2], x[4], x[5]) for x in log[:2]] == [
        (c3[:7], "rollback", "rolled"),
        (c2[:7], "rollback", "rolled"),
    ]


def test_two_pushes_in_quick_succession(world: Env) -> None:
    """The second push waits for the first one's deploy; its ref moved meanwhile, so it is refused whole
    (nothing of it deployed) and the first one's version serves."""
    e = world
    init(e)
    e.commit("base")
    e.git("push", "prod", "main")
    other = os.path.join(e.root, "other")
    e.git("clone", "-q", e.repo, other)
    a = e.commit("A")
    first = subprocess.Popen(
        ["git", "push", "prod", "main"], cwd=e.work, env=e.env, stderr=subprocess.PIPE, text=True
    )
    try:
        # the first push holds the lock once its build started
        wait_for(lambda: os.path.exists(os.path.join(e.state, e.name, "lock"))
                 and subprocess.run(["flock", "-n", os.path.join(e.state, e.name, "lock"), "true"]).returncode != 0,
                 timeout=60)  # fmt: skip
        with open(os.path.join(other, "index.html"), "w") as f:
            f.write("B")
        subprocess.run(["git", "commit", "-qam", "B"], cwd=other, env=e.env, check=True)
        r = subprocess.run(
            ["git", "push", "origin", "main"],
            cwd=other,
            env=e.env,
            capture_output=True,
            text=True,
            timeout=240,
        )
    finally:
        _, err = first.communicate(timeout=240)
        out_a = "".join(line.rstrip() + "\n" for line in err.splitlines())
    assert first.returncode == 0, out_a
    assert f"remote: {e.name}:{a[:7]} healthy" in out_a
    assert r.returncode != 0
    assert "remote: gorae deploy: waiting for the deploy in progress to finish" in out(r)
    assert f"refs/heads/main moved to {a[:7]} while this push waited" in out(r)
    assert e.get() == "A"
    assert e.git("-C", e.repo, "rev-parse", "main").stdout.strip() == a


def test_daemon_restart_mid_swap_leaves_one_version(world: Env) -> None:
    """A swap interrupted after the old container stopped (swap.json written, daemon gone): the next deploy
    command undoes it and the old version serves again."""
    e = world
    init(e)
    c1 = e.commit("one")
    e.git("push", "prod", "main")
    cur = json.load(open(os.path.join(e.state, e.name, "current.json")))
    # what a deploy killed mid-swap leaves: the old container stopped, a new one created, swap.json
    e.d.docker("stop", cur["container"])
    e.d.docker(
        "create", "--name", f"{e.name}-half", "--label", f"org.gorae.deploy.app={e.name}", "busybox", "true"
    )
    new = e.d.docker("inspect", "-f", "{{.Id}}", f"{e.name}-half").stdout.strip()
    with open(os.path.join(e.state, e.name, "swap.json"), "w") as f:
        json.dump({"old": cur["container"], "new": new, "image": "x:y", "commit": "0" * 40}, f)
    e.d.stop()
    e.d.start()
    c2 = e.commit("two")
    r = e.git("push", "prod", "main")
    assert "remote: gorae deploy: undid an interrupted swap; the previous version serves" in out(r)
    assert f"previous {e.name}:{c1[:7]} kept" in out(r)
    assert e.get() == "two"
    assert [c["Image"] for c in e.app_containers()] == [f"{e.name}:{c2[:7]}"]


def test_adopted_non_bare_repository_deploys_the_commit_not_the_work_tree(world: Env) -> None:
    e = world
    os.makedirs(e.repo)
    subprocess.run(["git", "init", "-q", "-b", "main", e.repo], env=e.env, check=True)
    init(e, "--bare=false")
    assert e.git("-C", e.repo, "config", "receive.denyCurrentBranch").stdout.strip() == "updateInstead"
    c1 = e.commit("committed")
    e.git("push", "prod", "main")
    assert e.get() == "committed"
    assert open(os.path.join(e.repo, "index.html")).read() == "committed"  # the work tree was updated
    with open(os.path.join(e.repo, "index.html"), "w") as f:
        f.write("dirty edit on the server")
    e.commit("second")
    r = e.git("push", "prod", "main", check=False)
    assert r.returncode != 0
    assert f"remote: gorae deploy: the work tree {e.repo} has uncommitted changes" in out(r)
    assert e.get() == "committed"
    os.unlink(os.path.join(e.repo, "index.html"))
    subprocess.run(["git", "-C", e.repo, "checkout", "--", "index.html"], env=e.env, check=True)
    e.git("push", "prod", "main")
    assert e.get() == "second"
    assert c1


def _post(d: GoraeDaemon, path: str) -> tuple[int, str]:
    import http.client

    class Conn(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(d.socket)

    conn = Conn("localhost")
    try:
        conn.request("POST", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def test_port_handover_route(daemon: GoraeDaemon) -> None:
    """`POST /containers/{id}/ports/take?from=`: the ports move (inspect, `docker port`, traffic), the
    records too (the new one publishes them again after a restart, the old one publishes nothing)."""
    d = daemon
    port = free_port()
    tag = os.urandom(4).hex()
    old, new = f"ho-old-{tag}", f"ho-new-{tag}"
    try:
        d.docker("run", "-d", "--init", "--name", old, "-p", f"{port}:3000", "busybox", "sh", "-c",
                 "mkdir -p /w && echo old > /w/i && exec httpd -f -p 3000 -h /w")  # fmt: skip
        d.docker("run", "-d", "--init", "--name", new, "busybox", "sh", "-c",
                 "mkdir -p /w && echo new > /w/i && exec httpd -f -p 3000 -h /w")  # fmt: skip

        def body() -> str:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/i", timeout=2) as r:
                    return str(r.read().decode().strip())
            except OSError:
                return ""

        assert wait_for(body) == "old"
        assert _post(d, f"/containers/{new}/ports/take") == (
            400,
            '{"message":"the container to take the ports from is missing (from=)"}\n',
        )
        assert _post(d, f"/containers/{new}/ports/take?from=nope-{tag}")[0] == 404
        status, text = _post(d, f"/containers/{old}/ports/take?from={new}")
        assert status == 409 and "publishes no ports" in text
        assert _post(d, f"/containers/{new}/ports/take?from={old}") == (204, "")
        assert body() == "new"
        assert d.docker("port", new).stdout == f"3000/tcp -> 0.0.0.0:{port}\n"
        assert d.docker("port", old).stdout == ""
        bindings = d.docker("inspect", "-f", "{{json .HostConfig.PortBindings}}", new).stdout.strip()
        assert json.loads(bindings) == {"3000/tcp": [{"HostIp": "", "HostPort": str(port)}]}
        d.docker("stop", "-t", "1", old)
        d.docker("restart", "-t", "1", new)  # publishes the taken ports again from its own record
        assert wait_for(body) == "new"
        d.docker("start", old)  # publishes nothing: no conflict
        assert d.docker("port", old).stdout == ""
    finally:
        d.docker("rm", "-f", old, new, check=False)


def test_registry_gets_each_image(world: Env) -> None:
    from registry_helpers import reference_registry

    e = world
    with reference_registry() as reg:
        init(e, "--registry", reg.addr)
        c1 = e.commit("to the registry")
        r = e.git("push", "prod", "main")
        assert f"remote: gorae deploy: pushing {reg.addr}/{e.name}:{c1[:7]}" in out(r)
        with urllib.request.urlopen(f"{reg.url}/v2/{e.name}/tags/list", timeout=10) as resp:
            assert json.loads(resp.read()) == {"name": e.name, "tags": [c1[:7]]}
        assert e.get() == "to the registry"
    e.d.docker("rmi", f"{reg.addr}/{e.name}:{c1[:7]}", check=False)


def test_daemon_restart_while_the_new_version_starts(world: Env) -> None:
    """The daemon restarts while the hook waits for the new container: the push is refused, the old version
    served throughout (live restore), the half-started container is gone by the next deploy, which works."""
    e = world
    init(e)
    c1 = e.commit("steady")
    e.git("push", "prod", "main")
    slow = APP_DOCKERFILE.replace('CMD ["httpd", "-f", "-p", "3000", "-h", "/www"]',
                                  'CMD ["sh", "-c", "while [ ! -e /tmp/go ]; do sleep 0.2; done; exec httpd -f -p 3000 -h /www"]')  # fmt: skip
    e.commit("slow", slow)
    push = subprocess.Popen(
        ["git", "push", "prod", "main"], cwd=e.work, env=e.env, stderr=subprocess.PIPE, text=True
    )
    try:
        # the new container runs (never answering): the hook waits for it to become healthy
        wait_for(lambda: len([c for c in e.app_containers() if c["State"] == "running"]) == 2, timeout=120)
        e.d.stop()
        assert e.get() == "steady"  # live restore: the old container serves with the daemon down
        e.d.start()
    finally:
        _, err = push.communicate(timeout=240)
    text = "".join(line.rstrip() + "\n" for line in err.splitlines())
    assert push.returncode != 0, text
    assert "daemon connection lost" in text
    assert f"push refused; {e.name}:{c1[:7]} keeps serving" in text
    assert e.get() == "steady"
    e.git("reset", "-q", "--hard", c1)
    c3 = e.commit("after the restart")
    e.git("push", "prod", "main")
    assert e.get() == "after the restart"
    assert [c["Image"] for c in e.app_containers()] == [f"{e.name}:{c3[:7]}"]


def test_init_checks_and_adoption(world: Env) -> None:
    e = world
    r = e.gorae("deploy", "init", e.repo, "--name", "Bad/Name", check=False)
    assert (r.returncode, r.stderr.splitlines()[0]) == (
        1, "gorae deploy: invalid application name 'Bad/Name': lower-case letters, digits, '_', '.', '-' "
        "(first a letter or digit), at most 63 characters",
    )  # fmt: skip
    r = e.gorae("deploy", "init", e.repo, "--name", e.name, "-p", "1:2:3:4", check=False)
    assert (r.returncode, r.stderr) == (1, "gorae deploy: invalid port format for --publish: 1:2:3:4\n")
    r = e.gorae("deploy", "init", e.repo, "--check-nothing", check=False)
    assert r.returncode == 125 and r.stderr.startswith("unknown flag: --check-nothing")
    assert not os.path.exists(e.repo)
    r = e.gorae("deploy", "init", e.repo, "--name", e.name, "-p", "8080:80")
    assert r.stdout.startswith(f"Created {e.repo} for {e.name}: pushes to main deploy it\n")
    r = e.gorae("deploy", "init", e.repo, "--name", e.name, "-p", "9090:80", "--branch", "prod")
    assert r.stdout.startswith(f"Adopted {e.repo} for {e.name}: pushes to prod deploy it\n")
    cfg = os.path.join(e.repo, "config")
    assert e.git("config", "--file", cfg, "--get-all", "gorae.publish").stdout == "9090:80\n"
    assert e.git("config", "--file", cfg, "gorae.branch").stdout == "prod\n"
    other = os.path.join(e.root, "other.git")
    r = e.gorae("deploy", "init", other, "--name", e.name, check=False)
    assert (r.returncode, r.stderr) == (
        1, f"gorae deploy: application '{e.name}' is already deployed from {e.repo}\n"
    )  # fmt: skip
    assert e.gorae("deploy", "ls").stdout.splitlines()[1].split() == [e.name, "-", "-", "-", "-", e.repo]
    r = e.gorae("deploy", "log", "nope", check=False)
    assert (r.returncode, r.stderr) == (1, "gorae deploy: no such application: nope\n")


def test_service_mode_outside_a_swarm_refuses_the_push(world: Env) -> None:
    """`--service` needs this daemon to be a swarm manager: outside a swarm the push is refused with the
    daemon's reason and nothing is left (service mode itself: tests/compat/test_deploy_service.py)."""
    e = world
    init(e, "--service", "--replicas", "2")
    assert e.git("config", "--file", os.path.join(e.repo, "config"), "gorae.service").stdout == "true\n"
    c1 = e.commit("no swarm")
    r = e.git("push", "prod", "main", check=False)
    assert r.returncode != 0
    assert (f"remote: gorae deploy: service {e.name}: Error response from daemon: This node is not a swarm "
            "manager. Use \"docker swarm "
            'init" or "docker swarm join" to connect this node to swarm and try again.') in out(r), out(r)  # fmt: skip
    assert "remote: gorae deploy: push refused; nothing was deployed" in out(r)
    assert e.app_containers() == []
    log = [line.split()[2:6] for line in e.gorae("deploy", "log", e.name).stdout.splitlines()[1:]]
    assert log == [[c1[:7], f"{e.name}:{c1[:7]}", "push", "failed"]]


# -- over ssh ----------------------------------------------------------------------------------------------
@pytest.fixture
def sshd(world: Env) -> Iterator[str]:
    """A private sshd on a loopback port (its own config and host key, key auth for root); GIT_SSH_COMMAND set
    in the world's environment. Yields the port."""
    if shutil.which("sshd") is None and not os.path.exists("/usr/sbin/sshd"):
        skip_outside_ci("openssh-server is not installed (scripts/test.sh installs it)")
    d = os.path.join(world.root, "ssh")
    os.makedirs(d, mode=0o700)
    for key in ("host", "user"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(d, key)], check=True
        )
    shutil.copy(os.path.join(d, "user.pub"), os.path.join(d, "authorized_keys"))
    port = free_port()
    with open(os.path.join(d, "sshd_config"), "w") as f:
        f.write(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host\nAuthorizedKeysFile {d}/authorized_keys\n"
            f"PidFile {d}/sshd.pid\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
            "SetEnv PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
        )
    with open(os.path.join(d, "known_hosts"), "w") as f:
        f.write(f"[127.0.0.1]:{port} " + open(os.path.join(d, "host.pub")).read())
    made_privsep = not os.path.isdir("/run/sshd")
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", os.path.join(d, "sshd_config")],
                            stderr=open(os.path.join(d, "sshd.log"), "wb"))  # fmt: skip
    try:

        def listening() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return True
            except OSError:
                assert proc.poll() is None, open(os.path.join(d, "sshd.log")).read()
                return False

        wait_for(listening)
        world.env["GIT_SSH_COMMAND"] = (
            f"ssh -p {port} -i {d}/user -o IdentitiesOnly=yes -o UserKnownHostsFile={d}/known_hosts "
            "-o StrictHostKeyChecking=yes -o BatchMode=yes"
        )
        yield str(port)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        if made_privsep:
            shutil.rmtree("/run/sshd", ignore_errors=True)


def test_push_over_ssh(world: Env, sshd: str) -> None:
    e = world
    e.gorae("deploy", "init", e.repo, "--name", e.name, "-p", f"{e.port}:3000", "-e", "GREETING=hi")
    e.git("remote", "add", "prod", f"root@127.0.0.1:{e.repo}")
    c1 = e.commit("over ssh")
    r = e.git("push", "prod", "main")
    assert f"remote: {e.name}:{c1[:7]} healthy, now serving on :{e.port}\n" in out(r)
    assert e.get() == "over ssh"
    (c,) = e.app_containers()
    env = e.d.docker("inspect", "-f", "{{json .Config.Env}}", c["ID"]).stdout
    assert "GREETING=hi" in json.loads(env)
    e.commit("broken", "FROM busybox\nRUN exit 7\n")
    r = e.git("push", "prod", "main", check=False)
    assert r.returncode != 0 and "returned a non-zero code: 7" in out(r)
    assert e.get() == "over ssh"
