"""Swarm templates end to end on one gorae manager: `service create --hostname/--env/--mount` with
`{{.Node.Hostname}}`, `{{.Task.Slot}}`, ... through the docker CLI, docker-py and the gorae CLI; secrets and
configs made with `--template-driver golang` (`{{secret "..."}}`, `{{config "..."}}`, `{{env "..."}}`); a broken
template refused at create and a payload template that fails failing its task at the start.
`test_templates_match_the_reference_dockerd` runs the same on the real dockerd in swarm mode and compares.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import SRC, GoraeDaemon, wait_for
from swarm_cluster import single_manager
from swarm_peer import SwarmDockerd

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a daemon")

HOSTNAME = "{{.Node.Hostname}}-{{.Service.Name}}-{{.Task.Slot}}"
ENV = (
    "--env", "SLOT={{.Task.Slot}}", "--env", "NODE={{.Node.ID}}", "--env", "TASK={{.Task.Name}}",
    "--env", "OS={{.Node.Platform.OS}}/{{.Node.Platform.Architecture}}",
    "--env", 'TIER={{index .Service.Labels "tier"}}', "--env", "PLAIN={{join \"+\" \"a\" \"b\"}}",
)  # fmt: skip
PAYLOAD = (
    'pw={{secret "pw"}} svc={{.Service.Name}} slot={{.Task.Slot}} tier={{env "TIER"}} '
    'plain={{config "plain.txt"}} node=[{{.Node.ID}}|{{.Node.Hostname}}]\n'
)


class Engine:
    """The docker CLI against one daemon: gorae (GoraeDaemon) or the reference dockerd (SwarmDockerd)."""

    def __init__(self, target: GoraeDaemon | SwarmDockerd) -> None:
        self.target = target

    def docker(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        if isinstance(self.target, GoraeDaemon):
            return self.target.docker(*args, input=input, check=check, timeout=120)
        r = self.target.run("docker", *args, input=input)
        if check:
            assert r.returncode == 0, (args, r.stderr)
        return r

    def info(self, template: str) -> str:
        return self.docker("info", "--format", template).stdout.strip()

    def _inspect(self, ids: list[str]) -> list[dict[str, Any]]:
        """The objects of those IDs that still exist (one may go between the listing and the inspect)."""
        return list(json.loads(self.docker("inspect", *ids, check=False).stdout or "[]")) if ids else []

    def task_containers(self, service: str) -> list[dict[str, Any]]:
        ids = self.docker(
            "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={service}"
        ).stdout.split()
        return self._inspect(ids)

    def tasks(self, service: str) -> list[dict[str, Any]]:
        ids = self.docker("service", "ps", "-q", "--no-trunc", service).stdout.split()
        return self._inspect(ids)


@pytest.fixture(scope="module")
def manager() -> Iterator[GoraeDaemon]:
    with single_manager() as d:
        yield d


def _running(engine: Engine, service: str, count: int) -> list[dict[str, Any]]:
    wait_for(
        lambda: len([c for c in engine.task_containers(service) if c["State"]["Running"]]) == count,
        timeout=90,
    )
    return sorted(
        engine.task_containers(service), key=lambda c: c["Config"]["Labels"]["com.docker.swarm.task.name"]
    )


def _env(container: dict[str, Any]) -> dict[str, str]:
    return dict(e.split("=", 1) for e in container["Config"]["Env"] if "=" in e)


def _make_templated(engine: Engine, name: str) -> None:
    """A service of two replicas with templated hostname, env, volume mount, secret and config."""
    engine.docker("secret", "create", f"{name}-pw", "-", input="hunter2")
    engine.docker("config", "create", f"{name}-plain", "-", input="just text")
    engine.docker("config", "create", "--template-driver", "golang", f"{name}-conf", "-", input=PAYLOAD)
    engine.docker(
        "service", "create", "-d", "--name", name, "--replicas", "2", "--label", "tier=front",
        "--hostname", HOSTNAME, *ENV,
        "--mount", "type=volume,source=" + name + "-vol-{{.Task.Slot}},target=/data",
        "--secret", f"source={name}-pw,target=pw",
        "--config", f"source={name}-plain,target=plain.txt",
        "--config", f"source={name}-conf,target=/app.conf",
        "busybox", "sleep", "600",
    )  # fmt: skip


def _check_templated(engine: Engine, name: str) -> list[dict[str, Any]]:
    node_id = engine.info("{{.Swarm.NodeID}}")
    host = engine.info("{{.Name}}")
    containers = _running(engine, name, 2)
    for slot, c in enumerate(containers, start=1):
        task_id = c["Config"]["Labels"]["com.docker.swarm.task.id"]
        assert c["Config"]["Hostname"] == f"{host}-{name}-{slot}"
        env = _env(c)
        assert env["SLOT"] == str(slot) and env["NODE"] == node_id
        assert env["TASK"] == f"{name}.{slot}.{task_id}"
        assert re.fullmatch(r"linux/(x86_64|aarch64|amd64|arm64)", env["OS"]), env["OS"]
        assert env["TIER"] == "front" and env["PLAIN"] == "a+b"
        volumes = [m["Name"] for m in c["Mounts"] if m["Type"] == "volume"]
        assert volumes == [f"{name}-vol-{slot}"]
        out = engine.docker("exec", c["Id"], "sh", "-c", "hostname; cat /app.conf").stdout
        assert out == (
            f"{host}-{name}-{slot}\n"
            f"pw=hunter2 svc={name} slot={slot} tier=front plain=just text "
            f"node=[{node_id}|]\n"
        )
    return containers


def _remove(engine: Engine, name: str) -> None:
    engine.docker("service", "rm", name, check=False)
    wait_for(lambda: not engine.task_containers(name), timeout=60)
    engine.docker("config", "rm", f"{name}-conf", f"{name}-plain", check=False)
    engine.docker("secret", "rm", f"{name}-pw", check=False)
    wait_for(
        lambda: (
            not engine.docker("ps", "-aq", "--filter", f"label=com.docker.swarm.service.name={name}").stdout
        )
    )
    engine.docker("volume", "rm", f"{name}-vol-1", f"{name}-vol-2", check=False)


def test_service_and_payload_templates_with_the_docker_cli(manager: GoraeDaemon) -> None:
    engine = Engine(manager)
    _make_templated(engine, "tpl")
    try:
        _check_templated(engine, "tpl")
        # the spec keeps the templates as written; only the containers see them expanded
        spec = json.loads(manager.docker("service", "inspect", "tpl").stdout)[0]["Spec"]["TaskTemplate"]
        assert spec["ContainerSpec"]["Hostname"] == HOSTNAME
        doc = json.loads(manager.docker("config", "inspect", "tpl-conf").stdout)[0]
        assert doc["Spec"]["Templating"] == {"Name": "golang"}
    finally:
        _remove(engine, "tpl")


def test_docker_py_and_the_gorae_cli(manager: GoraeDaemon) -> None:
    client = manager.client()
    try:
        svc = client.services.create(
            "busybox", ["sleep", "600"], name="pyt", hostname="h-{{.Task.Slot}}", env=["S={{.Service.Name}}"]
        )
        (c,) = _running(Engine(manager), "pyt", 1)
        assert c["Config"]["Hostname"] == "h-1" and _env(c)["S"] == "pyt"
        svc.remove()
    finally:
        client.close()
    env = dict(manager.env, PYTHONPATH=SRC)

    def gorae(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gorae.cli.main", *args], env=env, input=input, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip

    r = gorae(
        "config", "create", "--template-driver", "golang", "gc", "-", input="{{.Service.Name}}.{{.Task.Slot}}"
    )
    assert r.returncode == 0, r.stderr
    r = gorae(
        "service", "create", "-d", "--name", "gsv", "--hostname", "{{.Service.Name}}-{{.Task.Slot}}",
        "--config", "source=gc,target=/c", "busybox", "sleep", "600",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    try:
        (c,) = _running(Engine(manager), "gsv", 1)
        assert manager.docker("exec", c["Id"], "sh", "-c", "hostname; cat /c").stdout == "gsv-1\ngsv.1"
    finally:
        gorae("service", "rm", "gsv")
        wait_for(lambda: not Engine(manager).task_containers("gsv"), timeout=60)
        wait_for(lambda: gorae("config", "rm", "gc").returncode == 0, timeout=30)


CREATE_ERRORS = {
    "env": ("--env", "A={{.Nope}}"),
    "hostname": ("--hostname", "{{.Node.Hostname"),
    "mount": ("--mount", "type=volume,source={{nope}},target=/x"),
    "labels": ("--env", "T={{.Service.Labels.tier}}", "--label", "tier=front"),
}


def _create_error(engine: Engine, flags: tuple[str, ...]) -> tuple[int, str]:
    r = engine.docker(
        "service", "create", "-d", "--name", "broken", *flags, "busybox", "sleep", "1", check=False
    )
    if r.returncode == 0:
        engine.docker("service", "rm", "broken")
    return r.returncode, r.stderr


def test_a_broken_template_is_refused_at_create(manager: GoraeDaemon) -> None:
    engine = Engine(manager)
    code, err = _create_error(engine, CREATE_ERRORS["env"])
    assert code == 1
    assert err == (
        "Error response from daemon: rpc error: code = InvalidArgument desc = expanding env failed: expanding env "
        '"A={{.Nope}}": template: expansion:1:2: executing "expansion" at <.Nope>: can\'t evaluate field Nope in '
        "type *template.Context\n"
    )
    for flags in CREATE_ERRORS.values():
        code, err = _create_error(engine, flags)
        assert code == 1 and "rpc error: code = InvalidArgument desc = expanding " in err, (flags, err)
    assert not manager.docker("service", "ls", "-q").stdout
    # an update is checked the same way, and the service keeps its spec
    manager.docker(
        "service", "create", "-d", "--name", "upd", "--env", "A={{.Task.Slot}}", "busybox", "sleep", "60"
    )
    try:
        r = manager.docker("service", "update", "-d", "--env-add", "B={{.Bad}}", "upd", check=False)
        assert r.returncode == 1 and 'expanding env "B={{.Bad}}"' in r.stderr, r.stderr
        spec = json.loads(manager.docker("service", "inspect", "upd").stdout)[0]["Spec"]
        assert spec["TaskTemplate"]["ContainerSpec"]["Env"] == ["A={{.Task.Slot}}"]
    finally:
        manager.docker("service", "rm", "upd")


def test_a_payload_template_that_fails_fails_its_task_at_the_start(manager: GoraeDaemon) -> None:
    engine = Engine(manager)
    cid = manager.docker(
        "config", "create", "--template-driver", "golang", "badc", "-", input='{{secret "missing"}}'
    ).stdout.strip()
    manager.docker(
        "service",
        "create",
        "-d",
        "--name",
        "badp",
        "--config",
        "source=badc,target=/c",
        "busybox",
        "sleep",
        "60",
    )
    try:
        wait_for(lambda: any(t["Status"]["State"] == "failed" for t in engine.tasks("badp")), timeout=90)
        task = next(t for t in engine.tasks("badp") if t["Status"]["State"] == "failed")
        assert task["Status"]["Message"] == "starting"
        assert task["Status"]["Err"] == (
            f"starting container failed: unable to get config from config store: failed to expand templated "
            f'config {cid}: template: expansion:1:2: executing "expansion" at <secret "missing">: error calling '
            "secret: secret target missing not found"
        )
        assert not engine.task_containers("badp")
    finally:
        manager.docker("service", "rm", "badp")
        wait_for(lambda: manager.docker("config", "rm", "badc", check=False).returncode == 0, timeout=30)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwarmDockerd]:
    with SwarmDockerd(tmp_path_factory.mktemp("swarm-dockerd")) as ref:
        yield ref


def test_templates_match_the_reference_dockerd(manager: GoraeDaemon, reference: SwarmDockerd) -> None:
    """The same service on both daemons: the same expansions (node names aside), and the same texts for a
    template refused at create."""
    theirs, mine = Engine(reference), Engine(manager)
    _make_templated(theirs, "same")
    _make_templated(mine, "same")
    try:
        _check_templated(theirs, "same")  # the checks the gorae tests make hold for dockerd too
        _check_templated(mine, "same")
    finally:
        _remove(theirs, "same")
        _remove(mine, "same")
    for flags in CREATE_ERRORS.values():
        assert _create_error(mine, flags) == _create_error(theirs, flags), flags


def test_failures_match_the_reference_dockerd(manager: GoraeDaemon, reference: SwarmDockerd) -> None:
    """A payload template that fails, and `network connect` of a plain container to a swarm network that is
    not attachable: the same states and texts on both daemons."""
    outcomes = []
    for engine in (Engine(reference), Engine(manager)):
        cid = engine.docker(
            "config", "create", "--template-driver", "golang", "failc", "-", input='{{secret "missing"}}'
        ).stdout.strip()
        engine.docker(
            "service",
            "create",
            "-d",
            "--name",
            "failp",
            "--config",
            "source=failc,target=/c",
            "busybox",
            "sleep",
            "60",
        )
        engine.docker("network", "create", "-d", "overlay", "notattach")
        engine.docker("run", "-d", "--name", "plain", "busybox", "sleep", "60")
        try:
            wait_for(
                lambda e=engine: any(
                    t["Status"]["State"] in ("rejected", "failed") for t in e.tasks("failp")
                ),
                timeout=90,
            )
            task = next(t for t in engine.tasks("failp") if t["Status"]["State"] in ("rejected", "failed"))
            status = {k: v for k, v in task["Status"].items() if k in ("State", "Message", "Err")}
            status["Err"] = status.get("Err", "").replace(cid, "<config id>")
            r = engine.docker("network", "connect", "notattach", "plain", check=False)
            outcomes.append((status, r.returncode, r.stderr))
        finally:
            engine.docker("rm", "-f", "plain", check=False)
            engine.docker("service", "rm", "failp", check=False)
            wait_for(
                lambda e=engine: e.docker("config", "rm", "failc", check=False).returncode == 0, timeout=60
            )
            engine.docker("network", "rm", "notattach", check=False)
    assert outcomes[1] == outcomes[0]
