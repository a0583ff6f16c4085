"""Swarm jobs (`--mode replicated-job|global-job`) and task images pulled with `--with-registry-auth`, on one
gorae manager with the docker CLI, docker-py and the gorae CLI; `test_job_texts_match_the_reference_dockerd`
runs the same job on the real dockerd in swarm mode (tests/compat/swarm_peer.py) and compares `service ls`,
`service ps`, `service inspect`, a task's inspect and the progress `service create` prints.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SRC, GoraeDaemon, wait_for
from registry_peer import Registry, screen
from swarm_cluster import single_manager
from swarm_peer import SwarmDockerd, normalise

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a daemon")

ID = r"[0-9a-z]{25}"
EXIT_0 = ["sh", "-c", "sleep 1; exit 0"]


@pytest.fixture(scope="module")
def manager() -> Iterator[GoraeDaemon]:
    with single_manager() as d:
        yield d


def _ls_replicas(d: GoraeDaemon, name: str) -> str:
    out = d.docker(
        "service", "ls", "--filter", f"name={name}", "--format", "{{.Name}} {{.Mode}} {{.Replicas}}"
    )
    return out.stdout.strip()


def _tasks(d: GoraeDaemon, service: str) -> list[dict[str, Any]]:
    client = d.client()
    try:
        return list(client.api.tasks(filters={"service": service}))
    finally:
        client.close()


def _service(d: GoraeDaemon, name: str) -> dict[str, Any]:
    return dict(json.loads(d.docker("service", "inspect", name).stdout)[0])


def _wait_done(d: GoraeDaemon, name: str, want: str, timeout: float = 60) -> None:
    wait_for(lambda: _ls_replicas(d, name) == want, timeout=timeout, step=0.3)


def _gorae(d: GoraeDaemon, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gorae.cli.main", *args],
        env=dict(d.env, PYTHONPATH=SRC),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _max_overlap(d: GoraeDaemon, service: str) -> int:
    """The most task containers of `service` that ran at the same time (from their start/finish times)."""
    ids = d.docker("ps", "-aq", "--filter", f"label=com.docker.swarm.service.name={service}").stdout.split()
    states = [c["State"] for c in json.loads(d.docker("inspect", *ids).stdout)]
    edges = sorted([(s["StartedAt"], 1) for s in states] + [(s["FinishedAt"], -1) for s in states])
    best = now = 0
    for _, step in edges:
        now += step
        best = max(best, now)
    return best


def test_replicated_job_runs_every_completion_once(manager: GoraeDaemon) -> None:
    made = manager.docker(
        "service", "create", "-d", "--name", "rj", "--mode", "replicated-job", "--replicas", "5",
        "--max-concurrent", "2", "busybox", *EXIT_0,
    )  # fmt: skip
    assert re.fullmatch(rf"{ID}\n", made.stdout), made.stderr
    _wait_done(manager, "rj", "rj replicated job 0/2 (5/5 completed)")
    tasks = _tasks(manager, "rj")
    # swarmkit's replicated job: slots 0..4 (slot 0 is named after the node, as docker shows it)
    assert sorted(t.get("Slot", 0) for t in tasks) == [0, 1, 2, 3, 4]
    assert {(t["DesiredState"], t["Status"]["State"], t["Status"]["Message"]) for t in tasks} == {
        ("complete", "complete", "finished")
    }
    assert all(t["JobIteration"] == {} and list(t)[-1] == "JobIteration" for t in tasks)
    assert "RestartPolicy" not in tasks[0]["Spec"]
    assert _max_overlap(manager, "rj") == 2
    svc = _service(manager, "rj")
    assert svc["Spec"]["Mode"] == {"ReplicatedJob": {"MaxConcurrent": 2, "TotalCompletions": 5}}
    assert list(svc)[-1] == "JobStatus" and svc["JobStatus"]["JobIteration"] == {}
    first_run = svc["JobStatus"]["LastExecution"]

    # `service update --force` runs it again: a new JobIteration, five more tasks; the first ones stay done
    manager.docker("service", "update", "-d", "--force", "rj")
    svc = _service(manager, "rj")
    assert svc["JobStatus"]["JobIteration"] == {"Index": 1} and svc["JobStatus"]["LastExecution"] > first_run
    assert "UpdateStatus" not in svc
    _wait_done(manager, "rj", "rj replicated job 0/2 (5/5 completed)")
    wait_for(lambda: len([t for t in _tasks(manager, "rj") if t["Status"]["State"] == "complete"]) == 10)
    by_iteration: dict[int, int] = {}
    for t in _tasks(manager, "rj"):
        index = t["JobIteration"].get("Index", 0)
        by_iteration[index] = by_iteration.get(index, 0) + 1
    assert by_iteration == {0: 5, 1: 5}

    # docker 28's `service scale` sets a replicated job's TotalCompletions (and so runs it again)
    scaled = manager.docker("service", "scale", "-d", "rj=3")
    assert scaled.stdout == "rj scaled to 3\n"
    assert _service(manager, "rj")["JobStatus"]["JobIteration"] == {"Index": 2}
    _wait_done(manager, "rj", "rj replicated job 0/2 (3/3 completed)")
    manager.docker("service", "rm", "rj")


def test_failed_job_tasks_follow_the_restart_policy(manager: GoraeDaemon) -> None:
    manager.docker(
        "service", "create", "-d", "--name", "fj", "--mode", "replicated-job", "--restart-delay", "100ms",
        "--restart-max-attempts", "2", "busybox", "sh", "-c", "exit 3",
    )  # fmt: skip

    def failed() -> list[dict[str, Any]]:
        return [t for t in _tasks(manager, "fj") if t["Status"]["State"] == "failed"]

    wait_for(
        lambda: len(failed()) == 3 and all(t["DesiredState"] == "shutdown" for t in failed()), timeout=60
    )
    tasks = _tasks(manager, "fj")
    assert len(tasks) == 3  # the first run and its two restarts, then no more
    assert {t["Status"]["Err"] for t in tasks} == {"task: non-zero exit (3)"}
    assert _ls_replicas(manager, "fj") == "fj replicated job 0/1 (0/1 completed)"
    manager.docker("service", "rm", "fj")


def test_global_job_runs_once_per_node(manager: GoraeDaemon) -> None:
    node = manager.docker("info", "--format", "{{.Swarm.NodeID}}").stdout.strip()
    manager.docker("service", "create", "-d", "--name", "gj", "--mode", "global-job", "busybox", *EXIT_0)
    _wait_done(manager, "gj", "gj global job 0/0 (1/1 completed)")
    ps = manager.docker("service", "ps", "--format", "{{.Name}} {{.DesiredState}} {{.CurrentState}}", "gj")
    assert re.fullmatch(rf"gj\.{node} Complete Complete .* ago\n", ps.stdout)
    scale = manager.docker("service", "scale", "gj=2", check=False)
    assert (scale.returncode, scale.stderr) == (
        1,
        "gj: scale can only be used with replicated or replicated-job mode\n",
    )
    update = manager.docker("service", "update", "--replicas", "2", "gj", check=False)
    assert (update.returncode, update.stderr) == (1, "replicas can only be used with replicated mode\n")
    manager.docker("service", "rm", "gj")


def test_job_specs_over_the_api(manager: GoraeDaemon) -> None:
    import docker

    client = manager.client()
    api = client.api
    template = {"ContainerSpec": {"Image": "busybox", "Args": ["true"]}}
    try:

        def create(body: dict[str, Any]) -> Any:
            return api._result(api._post_json(api._url("/services/create"), data=body), True)

        made = create({"Name": "dflt", "TaskTemplate": template, "Mode": {"ReplicatedJob": {}}})
        spec = api.inspect_service(made["ID"])["Spec"]
        assert spec["Mode"] == {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}}
        with pytest.raises(docker.errors.APIError) as err:
            create({"Name": "u", "TaskTemplate": template, "Mode": {"GlobalJob": {}}, "UpdateConfig": {}})
        assert (err.value.response.status_code, err.value.explanation) == (
            400,
            "rpc error: code = InvalidArgument desc = Jobs may not have an update config",
        )
        with pytest.raises(docker.errors.APIError) as err:
            create({"Name": "m", "TaskTemplate": template, "Mode": {"ReplicatedJob": {"MaxConcurrent": -1}}})
        assert err.value.explanation == (
            "json: cannot unmarshal number -1 into Go struct field ReplicatedJob.Mode.ReplicatedJob"
            ".MaxConcurrent of type uint64"
        )
        version = api.inspect_service("dflt")["Version"]["Index"]
        with pytest.raises(docker.errors.APIError) as err:
            api._result(
                api._post_json(
                    api._url("/services/dflt/update"),
                    params={"version": version},
                    data={"Name": "dflt", "TaskTemplate": template, "Mode": {"GlobalJob": {}}},
                )
            )
        assert (err.value.response.status_code, err.value.explanation) == (
            501,
            "rpc error: code = Unimplemented desc = service mode change is not allowed",
        )
        names = {s["Spec"]["Name"] for s in api.services(filters={"mode": "replicated-job"})}
        assert names == {"dflt"}
        assert api.services(filters={"mode": "global-job"}) == []
        wait_for(
            lambda: _ls_replicas(manager, "dflt") == "dflt replicated job 0/1 (1/1 completed)", timeout=60
        )
        status = api.services(filters={"name": "dflt"}, status=True)[0]
        assert status["ServiceStatus"] == {"RunningTasks": 0, "DesiredTasks": 1, "CompletedTasks": 1}
        assert list(status)[-2:] == ["ServiceStatus", "JobStatus"]
        api.remove_service("dflt")
    finally:
        client.close()


PROGRESS_START = ["active tasks: 0 out of 2 tasks", "1/3:  ", "2/3:  ", "3/3:  "]
PROGRESS_END = ["active tasks: 0 out of 0 tasks", "job complete"]


def _progress(text: str) -> list[str]:
    """docker's job progress without a terminal (`--replicas 3 --max-concurrent 2`), checked for its fixed
    parts; the lines in between (how often and with which counts "active tasks" is redrawn) follow the timing."""
    lines = list(dict.fromkeys(text.splitlines()))  # each distinct line once, in order
    assert re.fullmatch(ID, lines[0]), lines
    assert lines[1:5] == PROGRESS_START and lines[-2:] == PROGRESS_END, lines
    assert all(re.fullmatch(r"active tasks: [0-2] out of [0-2] tasks", line) for line in lines[5:-2]), lines
    return lines


def test_gorae_cli_prints_what_docker_prints(manager: GoraeDaemon) -> None:
    args = ("--mode", "replicated-job", "--replicas", "3", "--max-concurrent", "2", "busybox", *EXIT_0)
    try:
        g = _gorae(manager, "service", "create", "--name", "gcli", *args)
        d = manager.docker("service", "create", "--name", "dcli", *args)
        assert g.returncode == 0, g.stderr
        _progress(g.stdout)
        _progress(d.stdout)
        assert g.stderr == d.stderr
        for cmd in (
            ("service", "ls", "--filter", "name=cli"),
            ("service", "ps", "gcli", "dcli"),
            ("service", "ps", "--no-trunc", "--format", "{{.Name}} {{.Node}} {{.Error}}", "gcli"),
        ):
            r = manager.docker(*cmd)
            g = _gorae(manager, *cmd)
            assert (g.returncode, normalise(g.stdout)) == (0, normalise(r.stdout)), cmd
    finally:
        manager.docker("service", "rm", "gcli", "dcli", check=False)


def test_job_progress_on_a_terminal(manager: GoraeDaemon) -> None:
    """Under a terminal the job's lines are redrawn in place: the final screens of both CLIs match."""
    import shutil

    from conftest import skip_outside_ci

    if not shutil.which("script"):
        skip_outside_ci("script (util-linux) not installed")
    screens: dict[str, list[str]] = {}
    try:
        for cli in ("docker", "gorae"):
            prog = "docker" if cli == "docker" else f"{sys.executable} -m gorae.cli.main"
            name = f"{cli[0]}tty"
            cmd = (
                f"stty cols 150; {prog} service create --name {name} --mode replicated-job --replicas 2 "
                "busybox sh -c 'sleep 1'"
            )
            env = dict(manager.env, PYTHONPATH=SRC)
            r = subprocess.run(
                ["script", "-qec", cmd, "/dev/null"], capture_output=True, env=env, timeout=120
            )
            assert r.returncode == 0, r.stdout
            screens[cli] = [normalise(x) for x in screen(r.stdout) if x.strip()]
        assert screens["gorae"] == screens["docker"]
        assert screens["docker"][-5:] == [
            "job progress: 2 out of 2 complete [==================================================>]",
            "active tasks: 0 out of 0 tasks",
            "1/2: complete  [==================================================>]",
            "2/2: complete  [==================================================>]",
            "job complete",
        ]
    finally:
        manager.docker("service", "rm", "dtty", "gtty", check=False)


def test_task_image_pulled_with_the_registry_auth(manager: GoraeDaemon, tmp_path: Path) -> None:
    registry = Registry(tmp_path / "registry", users={"alice": "s3cret"})
    try:
        image = f"{registry.host}/private/img:1"
        login = manager.docker("login", registry.host, "-u", "alice", "--password-stdin", input="s3cret\n")
        assert login.stdout == "Login Succeeded\n"
        manager.docker("tag", "busybox", image)
        manager.docker("push", "-q", image)
        manager.docker("rmi", image)
        assert manager.docker("image", "inspect", image, check=False).returncode == 1
        # without the credentials: the node cannot pull it, the task is rejected as dockerd's
        manager.docker(
            "service", "create", "-d", "--name", "nocred", "--restart-condition", "none", image, "true"
        )
        task = wait_for(
            lambda: [t for t in _tasks(manager, "nocred") if t["Status"]["State"] == "rejected"], timeout=60
        )[0]
        assert task["Status"]["Message"] == "preparing"
        assert task["Status"]["Err"] == f"No such image: {image}"
        assert task["Status"]["ContainerStatus"] == {"ContainerID": "", "PID": 0, "ExitCode": 0}
        # with them (the CLI sends X-Registry-Auth): the node pulls it, the task runs
        manager.docker(
            "service", "create", "-d", "--with-registry-auth", "--name", "priv", "--mode", "replicated-job",
            image, "sh", "-c", "exit 0",
        )  # fmt: skip
        _wait_done(manager, "priv", "priv replicated job 0/1 (1/1 completed)")
        raw = (
            manager.docker("service", "inspect", "priv").stdout
            + manager.docker("inspect", *manager.docker("service", "ps", "-q", "priv").stdout.split()).stdout
        )
        assert "PullOptions" not in raw and "RegistryAuth" not in raw  # the credentials are never shown
        pulled = manager.docker("image", "ls", "--format", "{{.Repository}}", f"{registry.host}/private/img")
        assert pulled.stdout == f"{registry.host}/private/img\n"
        # an update without new credentials keeps them (registryAuthFrom=spec): the new task pulls again
        digests = json.loads(
            manager.docker("image", "inspect", "--format", "{{json .RepoDigests}}", "busybox").stdout
        )
        pulled_refs = [r for r in digests if r.startswith(registry.host)]
        assert len(pulled_refs) == 1
        manager.docker("rmi", *pulled_refs)  # by reference: the image ID is busybox's too
        manager.docker("service", "update", "-d", "--force", "priv")
        wait_for(
            lambda: len([t for t in _tasks(manager, "priv") if t["Status"]["State"] == "complete"]) == 2,
            timeout=60,
        )
        again = manager.docker("image", "ls", "--format", "{{.Repository}}", f"{registry.host}/private/img")
        assert again.stdout == f"{registry.host}/private/img\n"
        # the gorae CLI sends the stored credentials the same way
        digests = json.loads(
            manager.docker("image", "inspect", "--format", "{{json .RepoDigests}}", "busybox").stdout
        )
        manager.docker("rmi", *[r for r in digests if r.startswith(registry.host)])
        made = _gorae(manager, "service", "create", "-d", "--with-registry-auth", "--name", "gpriv",
                      "--mode", "replicated-job", image, "sh", "-c", "exit 0")  # fmt: skip
        assert made.returncode == 0, made.stderr
        _wait_done(manager, "gpriv", "gpriv replicated job 0/1 (1/1 completed)")
    finally:
        manager.docker("service", "rm", "priv", "nocred", "gpriv", check=False)
        manager.docker("logout", registry.host, check=False)
        registry.stop()


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwarmDockerd]:
    with SwarmDockerd(tmp_path_factory.mktemp("swarm-dockerd")) as ref:
        yield ref


def test_job_texts_match_the_reference_dockerd(manager: GoraeDaemon, reference: SwarmDockerd) -> None:
    create = ("service", "create", "--name", "same", "--mode", "replicated-job", "--replicas", "3",
              "--max-concurrent", "2", "busybox", "sh", "-c", "exit 0")  # fmt: skip
    try:
        mine = manager.docker(*create)
    except subprocess.TimeoutExpired:
        ps = manager.docker("service", "ps", "--no-trunc", "same").stdout
        raise AssertionError(ps + manager.log()) from None
    theirs = reference.run("docker", *create)
    assert theirs.returncode == mine.returncode == 0, (theirs.stderr, mine.stderr)
    _progress(mine.stdout)
    _progress(theirs.stdout)
    assert normalise(mine.stderr) == normalise(theirs.stderr)
    node_mine = manager.docker("info", "--format", "{{.Swarm.NodeID}}").stdout.strip()
    node_theirs = reference.run("docker", "info", "--format", "{{.Swarm.NodeID}}").stdout.strip()
    host = reference.run("docker", "info", "--format", "{{.Name}}").stdout.strip()
    mine_host = manager.docker("info", "--format", "{{.Name}}").stdout.strip()

    def both(*args: str) -> tuple[str, str]:
        a = manager.docker(*args).stdout.replace(node_mine, "<node>").replace(mine_host, "<host>")
        b = reference.run("docker", *args).stdout.replace(node_theirs, "<node>").replace(host, "<host>")
        return normalise(a), normalise(b)

    for args in (
        ("service", "ls", "--filter", "name=same"),
        (
            "service",
            "ps",
            "--no-trunc",
            "--format",
            "{{.Name}} {{.Node}} {{.DesiredState}} {{.Error}}",
            "same",
        ),
        ("service", "ls", "--filter", "mode=replicated-job", "--format", "{{.Mode}} {{.Replicas}}"),
    ):
        a, b = both(*args)
        # the CLI sorts tasks by name: slot 0's (named after the random node ID) may come first or last
        assert sorted(a.splitlines()) == sorted(b.splitlines()), args
    a, b = both("service", "inspect", "same")
    assert a == b
    task_a = manager.docker("service", "ps", "-q", "--filter", "name=same.1", "same").stdout.split()
    task_b = reference.run("docker", "service", "ps", "-q", "--filter", "name=same.1", "same").stdout.split()
    ta = json.loads(manager.docker("inspect", *task_a).stdout)[0]
    tb = json.loads(reference.run("docker", "inspect", *task_b).stdout)[0]
    assert list(ta) == list(tb)
    for key in ("Slot", "DesiredState", "JobIteration"):
        assert ta[key] == tb[key], key
    assert {k: v for k, v in ta["Status"].items() if k not in ("Timestamp", "ContainerStatus")} == {
        k: v for k, v in tb["Status"].items() if k not in ("Timestamp", "ContainerStatus")
    }
    manager.docker("service", "rm", "same")
    reference.run("docker", "service", "rm", "same")


def test_platform_filter(manager: GoraeDaemon) -> None:
    """Placement.Platforms against the node's platform, as dockerd 20.10 answered the same bodies here."""
    client = manager.client()
    api = client.api
    try:

        def create(name: str, placement: dict[str, Any]) -> None:
            body = {
                "Name": name,
                "TaskTemplate": {
                    "ContainerSpec": {"Image": "busybox", "Args": ["sleep", "1d"]},
                    "Placement": placement,
                },
                "Mode": {"Replicated": {"Replicas": 1}},
            }
            api._result(api._post_json(api._url("/services/create"), data=body), True)

        create("other", {"Platforms": [{"Architecture": "s390x", "OS": "linux"}, {"OS": "windows"}]})
        create(
            "alias", {"Platforms": [{"Architecture": "amd64" if os.uname().machine == "x86_64" else "arm64"}]}
        )
        create("both", {"Platforms": [{"Architecture": "s390x"}], "Constraints": ["node.role==manager"]})

        def state(name: str) -> tuple[str, str]:
            tasks = _tasks(manager, name)
            return (tasks[0]["Status"]["State"], tasks[0]["Status"].get("Err", "")) if tasks else ("", "")

        wait_for(lambda: state("alias")[0] == "running", timeout=60)
        for name in ("other", "both"):
            wait_for(
                lambda n=name: state(n) == ("pending", "no suitable node (unsupported platform on 1 node)"),
                timeout=30,
            )
        with pytest.raises(Exception) as err:
            create("bad", {"Platforms": [{"OS": 1}]})
        assert str(err.value).endswith(
            '"json: cannot unmarshal number into Go struct field Platform.TaskTemplate.Placement.Platforms.OS'
            ' of type string")'
        )
        for name in ("other", "alias", "both"):
            api.remove_service(name)
    finally:
        client.close()


def test_jobs_across_two_nodes() -> None:
    """A manager and a worker, each in its own network namespace: a global job runs once on each node, a
    replicated job's completions spread over both (the worker's agent runs tasks desired `complete`)."""
    from conftest import import_busybox
    from swarm_cluster import init, join, lan

    with lan(2) as hosts:
        manager, worker = hosts
        _, tokens = init(manager)
        ids = {manager.node_id, join(worker, manager, tokens["worker"])}
        for h in hosts:
            import_busybox(h.daemon)
        manager.docker("service", "create", "-d", "--name", "g2", "--mode", "global-job", "busybox", *EXIT_0)
        manager.docker(
            "service", "create", "-d", "--name", "r2", "--mode", "replicated-job", "--replicas", "4",
            "--max-concurrent", "2", "busybox", *EXIT_0,
        )  # fmt: skip

        def ls(name: str) -> str:
            fmt = ("--format", "{{.Name}} {{.Mode}} {{.Replicas}}")
            return manager.docker("service", "ls", "--filter", f"name={name}", *fmt).stdout.strip()

        wait_for(lambda: ls("g2") == "g2 global job 0/0 (2/2 completed)", timeout=90, step=0.5)
        wait_for(lambda: ls("r2") == "r2 replicated job 0/2 (4/4 completed)", timeout=90, step=0.5)
        client = manager.client()
        try:
            g2 = client.api.tasks(filters={"service": "g2"})
            r2 = client.api.tasks(filters={"service": "r2"})
        finally:
            client.close()
        assert sorted(t["NodeID"] for t in g2) == sorted(ids)
        assert {t["Status"]["State"] for t in g2 + r2} == {"complete"}
        assert {t["NodeID"] for t in r2} == ids  # least loaded first: both nodes take completions
