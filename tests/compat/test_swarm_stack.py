"""`docker stack deploy/ls/services/ps/rm` (the docker CLI's client-side stacks, on a compose file) against one
gorae manager: the stack's network, secret, config and services made with docker's `com.docker.stack.*`
labels, service names with `_` (`app_web`), each service reachable by its short name (its network alias, the
VIP), `stack ps` (the task `label` filter on the service's labels, as swarmkit's), a redeploy that updates,
and `stack rm` removing the network right after its services. `test_stack_matches_the_reference_dockerd` runs
the same on the real dockerd in swarm mode and compares the CLI's output and the objects made.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import GoraeDaemon, wait_for
from swarm_cluster import single_manager
from swarm_peer import SwarmDockerd, normalise
from test_swarm_templates import Engine

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a daemon")

COMPOSE = """\
version: "3.8"
services:
  web:
    image: busybox
    command: ["sh", "-c", "mkdir -p /www; echo hi > /www/index.html; httpd -f -p 8080 -h /www"]
    deploy:
      replicas: 2
      labels:
        tier: front
    networks: [back]
    configs:
      - source: app
        target: /app.conf
    secrets: [pw]
    environment:
      SLOT: "{{.Task.Slot}}"
  worker:
    image: busybox
    command: ["sleep", "600"]
    stop_grace_period: 1s
    networks: [back]
networks:
  back:
    driver: overlay
configs:
  app:
    file: ./app.conf
secrets:
  pw:
    file: ./pw.txt
"""


# most of what a compose file's `deploy` and service keys set, for comparing the stored specs with dockerd's
RICH = """\
version: "3.8"
services:
  api:
    image: busybox
    command: ["sleep", "600"]
    healthcheck:
      test: ["CMD", "true"]
      interval: 2s
      timeout: 1s
      retries: 2
    hostname: "api-{{.Task.Slot}}"
    deploy:
      replicas: 2
      endpoint_mode: vip
      update_config: {parallelism: 1, delay: 1s, order: start-first, failure_action: rollback}
      rollback_config: {parallelism: 2}
      restart_policy: {condition: on-failure, delay: 1s, max_attempts: 3}
      resources:
        limits: {cpus: "0.5", memory: 64M}
        reservations: {memory: 16M}
      placement:
        constraints: [node.role == manager]
        preferences:
          - spread: node.id
    volumes:
      - data:/data
      - type: tmpfs
        target: /tmp/t
    stop_grace_period: 1s
    labels:
      com.example.container: "yes"
    logging:
      driver: json-file
      options: {max-size: 1m}
    ulimits:
      nofile: {soft: 1024, hard: 2048}
    init: true
    cap_add: [NET_ADMIN]
    sysctls:
      net.core.somaxconn: 1024
  dns:
    image: busybox
    command: ["sleep", "600"]
    deploy:
      mode: global
      endpoint_mode: dnsrr
    stop_grace_period: 1s
volumes:
  data:
    labels:
      kind: data
"""


@pytest.fixture(scope="module")
def manager() -> Iterator[GoraeDaemon]:
    with single_manager() as d:
        yield d


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "compose.yml").write_text(COMPOSE)
    (tmp_path / "app.conf").write_text("x=1\n")
    (tmp_path / "pw.txt").write_text("hunter2\n")
    return tmp_path / "compose.yml"


def _deploy(engine: Engine, compose: Path) -> str:
    return engine.docker("stack", "deploy", "-c", str(compose), "app").stdout


def _running(engine: Engine) -> list[dict[str, Any]]:
    out = []
    for service in ("app_web", "app_worker"):
        out += [c for c in engine.task_containers(service) if c["State"]["Running"]]
    return out


def _remove(engine: Engine) -> tuple[int, str, str]:
    r = engine.docker("stack", "rm", "app", check=False)
    wait_for(
        lambda: not engine.docker("ps", "-aq", "--filter", "label=com.docker.stack.namespace=app").stdout, 90
    )
    wait_for(lambda: "app_back" not in engine.docker("network", "ls", "--format", "{{.Name}}").stdout, 30)
    return r.returncode, r.stdout, r.stderr


def test_stack_deploy_ps_and_rm(manager: GoraeDaemon, project: Path) -> None:
    engine = Engine(manager)
    out = _deploy(engine, project)
    try:
        assert out.splitlines()[:3] == [
            "Creating network app_back",
            "Creating secret app_pw",
            "Creating config app_app",
        ]
        assert sorted(line for line in out.splitlines() if line.startswith("Creating service")) == [
            "Creating service app_web",
            "Creating service app_worker",
        ]
        wait_for(lambda: len(_running(engine)) == 3, timeout=90)
        assert manager.docker("stack", "ls", "--format", "{{.Name}} {{.Services}}").stdout == "app 2\n"
        rows = manager.docker(
            "stack", "services", "app", "--format", "{{.Name}} {{.Mode}} {{.Replicas}}"
        ).stdout
        assert sorted(rows.splitlines()) == ["app_web replicated 2/2", "app_worker replicated 1/1"]
        ps = manager.docker("stack", "ps", "app", "--format", "{{.Name}} {{.DesiredState}}").stdout
        assert sorted(ps.splitlines()) == [
            "app_web.1 Running",
            "app_web.2 Running",
            "app_worker.1 Running",
        ], (
            manager.docker("stack", "ps", "--no-trunc", "app").stdout
            + manager.docker("service", "inspect", "app_web").stdout
            + manager.log()[-3000:]
        )
        svc = json.loads(manager.docker("service", "inspect", "app_web").stdout)[0]
        assert svc["Spec"]["Labels"] == {
            "com.docker.stack.image": "busybox",
            "com.docker.stack.namespace": "app",
            "tier": "front",
        }
        vip = svc["Endpoint"]["VirtualIPs"][0]["Addr"].split("/")[0]
        worker = next(c for c in _running(engine) if c["Name"].startswith("/app_worker."))
        web = next(c for c in _running(engine) if c["Name"].startswith("/app_web."))
        # the short name is the service's network alias: the VIP, as `app_web` itself
        for name in ("web", "app_web"):
            r = manager.docker("exec", worker["Id"], "nslookup", name)
            assert f"Address: {vip}" in r.stdout, r.stdout
        wait_for(
            lambda: (
                manager.docker("exec", worker["Id"], "wget", "-qO-", "http://web:8080/", check=False).stdout
                == "hi\n"
            ),
            timeout=20,
        )
        slot = web["Config"]["Labels"]["com.docker.swarm.task.name"].split(".")[1]
        out = manager.docker(
            "exec", web["Id"], "sh", "-c", "cat /app.conf /run/secrets/pw; echo $SLOT"
        ).stdout
        assert out == f"x=1\nhunter2\n{slot}\n"
        again = _deploy(engine, project)  # the same file again: the services are updated in place
        assert sorted(
            re.sub(r" \(id: \w+\)", "", line) for line in again.splitlines() if "service" in line
        ) == [
            "Updating service app_web",
            "Updating service app_worker",
        ]
    finally:
        code, out, err = _remove(engine)
    assert (code, err) == (0, "")
    assert sorted(out.splitlines()) == sorted(
        ["Removing service app_web", "Removing service app_worker", "Removing secret app_pw",
         "Removing config app_app", "Removing network app_back"]
    )  # fmt: skip
    for kind in ("service", "secret", "config"):
        assert manager.docker(kind, "ls", "-q").stdout == "", kind


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwarmDockerd]:
    with SwarmDockerd(tmp_path_factory.mktemp("swarm-dockerd")) as ref:
        yield ref


def test_stack_matches_the_reference_dockerd(
    manager: GoraeDaemon, reference: SwarmDockerd, project: Path
) -> None:
    results = []
    for engine in (Engine(reference), Engine(manager)):
        out = _deploy(engine, project)
        try:
            wait_for(lambda e=engine: len(_running(e)) == 3, timeout=90)
            specs = {
                name: json.loads(engine.docker("service", "inspect", name).stdout)[0]["Spec"]
                for name in ("app_web", "app_worker")
            }
            listing = engine.docker(
                "stack", "services", "app", "--format", "{{.Name}} {{.Mode}} {{.Replicas}}"
            )
            ps = engine.docker(
                "stack", "ps", "app", "--format", "{{.Name}} {{.DesiredState}} {{.CurrentState}}"
            )
        finally:
            removed = _remove(engine)
        for spec in specs.values():  # the secret's and config's IDs differ
            for ref in spec["TaskTemplate"]["ContainerSpec"].get("Secrets", []) + spec["TaskTemplate"][
                "ContainerSpec"
            ].get("Configs", []):
                ref.pop("SecretID", None)
                ref.pop("ConfigID", None)
            for att in spec["TaskTemplate"].get("Networks", []):
                att.pop("Target", None)
        results.append(
            (
                sorted(out.splitlines()),
                specs,
                sorted(listing.stdout.splitlines()),
                sorted(normalise(ps.stdout).splitlines()),
                removed[0],
                sorted(removed[1].splitlines()),
            )
        )
    assert results[1] == results[0]


def test_a_rich_stack_is_stored_as_dockerd_stores_it(
    manager: GoraeDaemon, reference: SwarmDockerd, tmp_path: Path
) -> None:
    """Healthcheck, hostname template, update/rollback/restart policies, resources, placement, volumes and
    tmpfs, labels, logging, ulimits, init, capabilities, sysctls, global dnsrr: the same specs on both daemons,
    and the tasks run there."""
    compose = tmp_path / "rich.yml"
    compose.write_text(RICH)
    results = []
    services = ("rich_api", "rich_dns")
    for engine in (Engine(reference), Engine(manager)):
        engine.docker("stack", "deploy", "-c", str(compose), "rich")
        try:
            wait_for(lambda e=engine: sum(len(e.task_containers(s)) for s in services) == 3, timeout=90)
            specs = {
                s: json.loads(engine.docker("service", "inspect", s).stdout)[0]["Spec"] for s in services
            }
            (api,) = [c for c in engine.task_containers("rich_api") if c["Config"]["Hostname"] == "api-1"]
            probe = engine.docker(
                "exec", api["Id"], "sh", "-c", "ulimit -n; cat /proc/sys/net/core/somaxconn"
            )
            # both store the network ID (dockerd's populateNetworkID), which differs
            for spec in specs.values():
                for att in spec["TaskTemplate"]["Networks"]:
                    assert re.fullmatch(r"[0-9a-z]{25}", att["Target"]), att
                    att["Target"] = "<network id>"
        finally:
            engine.docker("stack", "rm", "rich")
            wait_for(
                lambda e=engine: (
                    not e.docker("ps", "-aq", "--filter", "label=com.docker.stack.namespace=rich").stdout
                ),
                90,
            )
            engine.docker("volume", "rm", "rich_data", check=False)
        results.append((specs, probe.stdout))
    assert results[1] == results[0]
    assert results[0][1] == "1024\n1024\n"
