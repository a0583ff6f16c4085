"""`gorae deploy init --service`: git pushes deploy a Swarm service on a 2-node swarm (tests/compat/
swarm_cluster.py: each daemon in its own network namespace), the build node pushing every image to Debian's
docker-registry (run in the manager's namespace, on its LAN address) so the worker's task pulls it. The first
push creates the service (2 replicas, `-p` through the routing mesh, `-e`); a second push is a start-first
rolling update under a request loop through the published port (its failed requests counted and printed:
zero expected); a commit whose health check fails is rolled back by the swarm, the push exits non-zero and the
old version serves throughout; `deploy rollback` goes back to the previous image.

Everything is removed afterwards: the services, the daemons, the registry, the repositories, the state.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest
from conftest import import_busybox, skip_outside_ci, wait_for
from swarm_cluster import Host, init, join, lan
from test_deploy import APP_DOCKERFILE, Env, free_port, out

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="runs containers (root)")

LOOP = r"""
import json, os, sys, time, urllib.request
url, stop, state = sys.argv[1:4]
ok = failed = 0
errors = []
bodies = []
longest = 0.0
down = None
def save():
    with open(state + ".tmp", "w") as f:
        json.dump({"ok": ok, "failed": failed, "bodies": bodies, "longest": longest, "errors": errors}, f)
    os.replace(state + ".tmp", state)
while not os.path.exists(stop):
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            body = r.read().decode()
        ok += 1
        if not bodies or bodies[-1] != body:
            bodies.append(body)
        if down is not None:
            longest = max(longest, time.monotonic() - down)
            down = None
    except OSError as e:
        failed += 1
        if len(errors) < 10:
            errors.append(f"{time.time():.3f} {e}")
        if down is None:
            down = time.monotonic()
    save()
save()
"""


class NsLoop:
    """A request loop (a new connection per request) run inside a node's network namespace against the
    published port on its 127.0.0.1: the routing mesh."""

    def __init__(self, ns: str, url: str, root: str) -> None:
        self.dir = tempfile.mkdtemp(prefix="loop-", dir=root)
        self.stop = os.path.join(self.dir, "stop")
        self.state_path = os.path.join(self.dir, "state.json")
        script = os.path.join(self.dir, "loop.py")
        with open(script, "w") as f:
            f.write(LOOP)
        self.argv = ["nsenter", f"--net=/run/netns/{ns}", "python3", script, url, self.stop, self.state_path]
        self.proc: subprocess.Popen[bytes] | None = None

    def state(self) -> dict:  # type: ignore[type-arg]
        try:
            with open(self.state_path) as f:
                return json.load(f)  # type: ignore[no-any-return]
        except (FileNotFoundError, ValueError):
            return {"ok": 0, "failed": 0, "bodies": [], "longest": 0.0}

    def __enter__(self) -> NsLoop:
        self.proc = subprocess.Popen(self.argv)
        return self

    def __exit__(self, *exc: object) -> None:
        open(self.stop, "w").close()
        assert self.proc is not None
        try:
            self.proc.wait(30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


def ns_get(ns: str, port: int) -> str:
    r = subprocess.run(["nsenter", f"--net=/run/netns/{ns}", "curl", "-s", "-m", "5",
                        f"http://127.0.0.1:{port}/index.html"], capture_output=True, text=True)  # fmt: skip
    return r.stdout if r.returncode == 0 else f"(curl exit {r.returncode})"


@pytest.fixture(scope="module")
def swarm2() -> Iterator[tuple[Host, Host, str]]:
    """A manager and a worker, busybox on both, and Debian's docker-registry in the manager's namespace on
    its LAN address (the daemons take 10.252.0.0/16 as insecure registries): (manager, worker, registry)."""
    if shutil.which("docker-registry") is None:
        skip_outside_ci("docker-registry is not installed (apt-get install docker-registry)")
    with lan(2, containers=True, extra_args=["--insecure-registry", "10.252.0.0/16"]) as hosts:
        manager, worker = hosts
        tmp = tempfile.mkdtemp(prefix="gorae-deploy-registry-")
        reg = None
        try:
            for h in hosts:
                import_busybox(h.daemon)
            _, tokens = init(manager)
            join(worker, manager, tokens["worker"])
            port = free_port()
            config = os.path.join(tmp, "config.yml")
            with open(config, "w") as f:
                f.write(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {tmp}/root\n"
                        f"http:\n  addr: {manager.addr}:{port}\n")  # fmt: skip
            reg = subprocess.Popen(
                ["nsenter", f"--net=/run/netns/{manager.ns}", "docker-registry", "serve", config],
                stdout=subprocess.DEVNULL,
                stderr=open(os.path.join(tmp, "registry.log"), "wb"),
            )

            def up() -> bool:
                assert reg is not None and reg.poll() is None, open(os.path.join(tmp, "registry.log")).read()
                r = subprocess.run(["nsenter", f"--net=/run/netns/{worker.ns}", "curl", "-s", "-m", "2",
                                    f"http://{manager.addr}:{port}/v2/"], capture_output=True)  # fmt: skip
                return r.returncode == 0

            wait_for(up, timeout=30)
            yield manager, worker, f"{manager.addr}:{port}"
        finally:
            for h in hosts:
                if h.daemon.ping():
                    if h is manager:
                        svcs = h.docker("service", "ls", "-q", check=False).stdout.split()
                        if svcs:
                            h.docker("service", "rm", *svcs, check=False)
                    ids = h.docker("ps", "-aq", check=False).stdout.split()
                    if ids:
                        h.docker("rm", "-f", *ids, check=False)
            if reg is not None:
                reg.terminate()
                reg.wait(15)
            shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def app(swarm2: tuple[Host, Host, str], request: pytest.FixtureRequest) -> Iterator[Env]:
    manager = swarm2[0]
    e = Env(manager.daemon, "svc" + request.node.name.replace("test_", "").replace("_", "")[:16])
    try:
        yield e
    finally:
        manager.docker("service", "rm", e.name, check=False)
        wait_for(lambda: not e.app_containers(), timeout=60)
        e.cleanup()


def service_image(host: Host, name: str) -> str:
    return host.docker(
        "service", "inspect", "-f", "{{.Spec.TaskTemplate.ContainerSpec.Image}}", name
    ).stdout.strip()


def running_tasks(host: Host, name: str) -> list[tuple[str, str]]:
    """(image, node hostname) of the service's tasks that run and are meant to."""
    rows = host.docker("service", "ps", name, "--filter", "desired-state=running",
                       "--format", "{{.Image}}|{{.Node}}|{{.CurrentState}}").stdout.splitlines()  # fmt: skip
    return sorted((r.split("|")[0], r.split("|")[1]) for r in rows if r.split("|")[2].startswith("Running"))


def test_service_deploys_updates_without_a_failed_request_and_rolls_back(swarm2: tuple[Host, Host, str],
                                                                        app: Env) -> None:  # fmt: skip
    manager, worker, registry = swarm2
    e = app
    e.gorae("deploy", "init", e.repo, "--name", e.name, "--service", "--replicas", "2", "-p", f"{e.port}:3000",
            "-e", "GREETING=hi", "--registry", registry, "--ready-timeout", "60s")  # fmt: skip
    e.git("remote", "add", "prod", e.repo)

    # the first push creates the service; one task on each node, the worker's pulled from the registry
    c1 = e.commit("v1")
    r = e.git("push", "prod", "main")
    assert f"remote: gorae deploy: pushing {registry}/{e.name}:{c1[:7]}" in out(r), out(r)
    assert f"remote: gorae deploy: creating service {e.name} (2 replicas of {e.name}:{c1[:7]})" in out(r)
    assert (
        f"remote: {e.name}:{c1[:7]} healthy, now serving on :{e.port} (service {e.name}, 2 replicas)\n"
        in out(r)
    )
    ref1 = f"{registry}/{e.name}:{c1[:7]}"
    assert service_image(manager, e.name) == ref1
    nodes = sorted(h.docker("info", "-f", "{{.Name}}").stdout.strip() for h in (manager, worker))
    assert running_tasks(manager, e.name) == sorted((ref1, n) for n in nodes)
    assert worker.docker("image", "inspect", "-f", "{{.Id}}", ref1, check=False).returncode == 0
    spec = json.loads(manager.docker("service", "inspect", e.name).stdout)[0]["Spec"]
    assert "GREETING=hi" in spec["TaskTemplate"]["ContainerSpec"]["Env"]
    assert (
        spec["UpdateConfig"]["Order"] == "start-first" and spec["UpdateConfig"]["FailureAction"] == "rollback"
    )
    assert spec["EndpointSpec"]["Ports"] == [
        {"Protocol": "tcp", "TargetPort": 3000, "PublishedPort": e.port, "PublishMode": "ingress"}
    ]
    assert wait_for(lambda: ns_get(manager.ns, e.port) == "v1", timeout=20)
    assert ns_get(worker.ns, e.port) == "v1"  # the mesh answers on every node

    # the second push: a start-first rolling update under a request loop through the mesh
    c2 = e.commit("v2")
    with NsLoop(manager.ns, f"http://127.0.0.1:{e.port}/index.html", e.root) as loop:
        wait_for(lambda: loop.state()["ok"] > 0, timeout=20)
        t0 = time.monotonic()
        r = e.git("push", "prod", "main")
        took = time.monotonic() - t0
        wait_for(lambda: loop.state()["bodies"][-1:] == ["v2"], timeout=20)
        ok_after = loop.state()["ok"]
        wait_for(lambda: loop.state()["ok"] >= ok_after + 20, timeout=20)
    st = loop.state()
    print(f"\nservice rolling update: {st['failed']} failed of {st['ok'] + st['failed']} requests "
          f"(push {took:.1f}s, longest outage {st['longest'] * 1000:.0f} ms) {st.get('errors')}")  # fmt: skip
    assert f"remote: gorae deploy: updating service {e.name} to {e.name}:{c2[:7]} (start-first" in out(r)
    assert f"remote: gorae deploy: {e.name}: completed: 2/2 tasks running {e.name}:{c2[:7]}\n" in out(r), out(
        r
    )
    assert (f"remote: {e.name}:{c2[:7]} healthy, now serving on :{e.port} (service {e.name}, 2 replicas), "
            f"previous {e.name}:{c1[:7]} kept\n") in out(r)  # fmt: skip
    assert st["failed"] == 0
    assert st["bodies"][0] == "v1" and st["bodies"][-1] == "v2"
    ref2 = f"{registry}/{e.name}:{c2[:7]}"
    assert running_tasks(manager, e.name) == sorted((ref2, n) for n in nodes)

    # a commit whose health check fails: the swarm rolls the update back, the push fails, v2 serves throughout
    sick = e.commit("sick", APP_DOCKERFILE + "HEALTHCHECK --interval=1s --retries=2 CMD false\n")
    with NsLoop(manager.ns, f"http://127.0.0.1:{e.port}/index.html", e.root) as loop:
        wait_for(lambda: loop.state()["ok"] > 0, timeout=20)
        r = e.git("push", "prod", "main", check=False)
    st = loop.state()
    print(f"failing health check: {st['failed']} failed of {st['ok'] + st['failed']} requests")
    assert r.returncode != 0
    line = next(x for x in out(r).splitlines() if "is not healthy" in x)
    assert line.startswith(
        f"remote: gorae deploy: {e.name}:{sick[:7]} is not healthy: dockerexec: unhealthy container; "
    )
    assert line.endswith(" (rollback_completed)"), line
    assert f"remote: gorae deploy: push refused; {e.name}:{c2[:7]} keeps serving" in out(r)
    assert "[remote rejected] main -> main (pre-receive hook declined)" in out(r)
    assert st["failed"] == 0 and set(st["bodies"]) == {"v2"}
    assert service_image(manager, e.name) == ref2
    assert e.git("-C", e.repo, "rev-parse", "main").stdout.strip() == c2
    assert sick

    # rollback: the previous image, by the same start-first update
    r = e.gorae("deploy", "rollback", e.name)
    assert r.stdout == (f"{e.name}:{c1[:7]} healthy, now serving on :{e.port} (service {e.name}, 2 replicas), "
                        f"previous {e.name}:{c2[:7]} kept\n")  # fmt: skip
    assert service_image(manager, e.name) == ref1
    assert wait_for(lambda: ns_get(manager.ns, e.port) == "v1", timeout=20)
    log = [line.split() for line in e.gorae("deploy", "log", e.name).stdout.splitlines()[1:]]
    assert [(x[2], x[4], x[5]) for x in log] == [
        (c1[:7], "rollback", "rolled"),
        (sick[:7], "push", "failed"),
        (c2[:7], "push", "deployed"),
        (c1[:7], "push", "deployed"),
    ]
    ls = e.gorae("deploy", "ls").stdout.splitlines()
    assert ls[1].split()[:4] == [e.name, f"{e.name}:{c1[:7]}", c1[:7], "service(2/2)"]


def test_a_first_service_deploy_that_never_gets_healthy_leaves_nothing(
    swarm2: tuple[Host, Host, str], app: Env
) -> None:
    manager, _, registry = swarm2
    e = app
    # through the registry: the one task may be placed on the worker, which pulls the image from it
    e.gorae("deploy", "init", e.repo, "--name", e.name, "--service", "-p", f"{e.port}:3000",
            "--registry", registry, "--ready-timeout", "30s")  # fmt: skip
    e.git("remote", "add", "prod", e.repo)
    sick = e.commit("sick", APP_DOCKERFILE + "HEALTHCHECK --interval=1s --retries=1 CMD false\n")
    r = e.git("push", "prod", "main", check=False)
    assert r.returncode != 0
    assert (f"remote: gorae deploy: {e.name}:{sick[:7]} is not healthy: dockerexec: unhealthy container; "
            f"service {e.name} removed\n") in out(r), out(r)  # fmt: skip
    assert "remote: gorae deploy: push refused; nothing was deployed" in out(r)
    assert manager.docker("service", "ls", "-q", "--filter", f"name={e.name}").stdout == ""
    assert e.git("-C", e.repo, "rev-parse", "-q", "--verify", "main", check=False).returncode != 0


def test_a_manager_restart_during_the_update_is_waited_out(swarm2: tuple[Host, Host, str], app: Env) -> None:
    """The manager's daemon restarts while the hook follows the update: the hook waits for it to answer
    again and follows the update to its end, so the push reports what the swarm did. That is either the
    update (push accepted, the new version serves) or — the swarm shut the new task down after the restart
    in 3 of 11 runs before a swarm fix (see docs/deploy.md; kept for any other cause) — its rollback (push
    refused, the old version serves); the push's outcome, the branch and what serves always agree."""
    manager, _, registry = swarm2
    e = app
    e.gorae("deploy", "init", e.repo, "--name", e.name, "--service", "-p", f"{e.port}:3000",
            "--registry", registry)  # fmt: skip
    e.git("remote", "add", "prod", e.repo)
    c1 = e.commit("before")
    e.git("push", "prod", "main")
    c2 = e.commit("after")
    push = subprocess.Popen(["git", "push", "prod", "main"], cwd=e.work, env=e.env, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:

        def updating() -> bool:
            r = manager.docker("service", "inspect", "-f", "{{json .UpdateStatus}}", e.name, check=False)
            return r.returncode == 0 and '"State":"updating"' in r.stdout.replace(" ", "")

        wait_for(updating, timeout=120)
        manager.daemon.stop()
        manager.daemon.start()
    finally:
        _, err = push.communicate(timeout=300)
    text = "".join(line.rstrip() + "\n" for line in err.splitlines())
    assert "remote: gorae deploy: lost the daemon (" in text, text
    assert "remote: gorae deploy: the daemon answers again; following the update\n" in text
    served = c2 if push.returncode == 0 else c1
    body = "after" if push.returncode == 0 else "before"
    print(
        f"\nmanager restart mid-update: push {'accepted' if push.returncode == 0 else 'refused (rolled back)'}"
    )
    if push.returncode == 0:
        assert (
            f"remote: {e.name}:{c2[:7]} healthy, now serving on :{e.port} (service {e.name}, 1 replica), "
            in text
        )
    else:
        assert "(rollback_completed)\n" in text, text
        assert f"remote: gorae deploy: push refused; {e.name}:{c1[:7]} keeps serving\n" in text
    assert e.git("-C", e.repo, "rev-parse", "main").stdout.strip() == served
    assert service_image(manager, e.name) == f"{registry}/{e.name}:{served[:7]}"
    assert wait_for(lambda: ns_get(manager.ns, e.port) == body, timeout=30)
