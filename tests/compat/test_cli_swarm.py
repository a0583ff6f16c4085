"""The gorae CLI's swarm commands (`swarm`, `node`, `secret`, `config`, `service`) against a real dockerd in
swarm mode, side by side with the docker CLI: the same stdout, stderr and exit status for every command
(after ages, timestamps and IDs become placeholders, and each CLI's own object names are mapped to one).
Services are created twice, once by each CLI, with the same flags; what dockerd then shows of them
(`service inspect`, `--pretty`, `ls`, `ps`, `logs`) must be identical, which shows that both CLIs sent the
same spec. Tasks that dockerd cannot run here (no bridge, no ingress) are fine: their rows are compared too."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import skip_outside_ci, wait_for
from swarm_peer import SwarmDockerd, normalise

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run dockerd")


@pytest.fixture(scope="module")
def sd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwarmDockerd]:
    for tool in ("dockerd", "docker"):
        if not shutil.which(tool):
            skip_outside_ci(f"{tool} not installed")
    with SwarmDockerd(tmp_path_factory.mktemp("swarm-cli")) as d:
        yield d


def both(
    sd: SwarmDockerd, *args: str, names: dict[str, str] | None = None, input: str | None = None
) -> tuple:
    """Run the command with each CLI; (rc, stdout, stderr) of each, normalised, gorae's prog name as docker's."""
    out = []
    for cli in ("docker", "gorae"):
        r = sd.run(cli, *args, input=input)
        text = [normalise(r.stdout, names), normalise(r.stderr, names)]
        if cli == "gorae":
            text = [t.replace("gorae", "docker") for t in text]
        out.append((r.returncode, *text))
    return out[0], out[1]


def same(
    sd: SwarmDockerd, *args: str, names: dict[str, str] | None = None, input: str | None = None
) -> tuple:
    d, g = both(sd, *args, names=names, input=input)
    assert g == d, f"{args}: gorae {g!r} != docker {d!r}"
    return d


def pair(per_cli: object) -> None:
    """Run `per_cli(cli)` for docker and gorae at the same time (each waits seconds on convergence)."""
    errors: list[BaseException] = []

    def run(cli: str) -> None:
        try:
            per_cli(cli)  # type: ignore[operator]
        except BaseException as e:  # re-raised below in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(c,)) for c in ("docker", "gorae")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


# -- swarm --------------------------------------------------------------------------------------------


def test_swarm_commands_print_what_docker_prints(sd: SwarmDockerd) -> None:
    rc, out, err = same(sd, "swarm", "join-token", "worker")
    assert rc == 0 and out.startswith("To add a worker to this swarm, run the following command:\n\n")
    assert "    docker swarm join --token SWMTKN-1-" in out and out.endswith(f" 127.0.0.1:{sd.port}\n\n")
    assert same(sd, "swarm", "join-token", "manager")[0] == 0
    rc, out, _ = same(sd, "swarm", "join-token", "-q", "worker")
    assert re.fullmatch(r"SWMTKN-1-[0-9a-z]{50}-<id>\n", out)
    assert same(sd, "swarm", "join-token", "foo") == (1, "", "unknown role foo\n")
    assert same(sd, "swarm", "join-token")[0] == 1
    assert same(sd, "swarm", "unlock-key") == (1, "", "no unlock key is set\n")
    assert same(sd, "swarm", "unlock-key", "--rotate") == (
        1,
        "",
        "cannot rotate because autolock is not turned on\n",
    )
    rc, out, err = same(sd, "swarm", "init")
    assert rc == 1 and err.startswith("Error response from daemon: This node is already part of a swarm.")
    assert same(sd, "swarm", "join", "--token", "x", "127.0.0.1:1")[0] == 1
    assert same(sd, "swarm", "init", "--availability", "foo")[2] == (
        'invalid availability "foo", only active, pause and drain are supported\n'
    )
    rc, _, err = same(sd, "swarm", "leave")
    assert rc == 1 and "Removing the last manager erases all current state of the swarm" in err
    rc, out, _ = same(sd, "swarm", "ca")
    assert rc == 0 and out.startswith("-----BEGIN CERTIFICATE-----\n")
    assert same(sd, "swarm", "ca", "--cert-expiry", "1h") == (
        1,
        "",
        "`--cert-expiry` flag requires the `--rotate` flag to update the CA\n",
    )
    rc, _, err = same(sd, "swarm", "update", "--task-history-limit", "x")
    assert rc == 125 and err.startswith('invalid argument "x" for "--task-history-limit" flag: ')
    rc, _, err = same(sd, "swarm", "update", "--dispatcher-heartbeat", "3")
    assert (rc, err.splitlines()[0]) == (
        125,
        'invalid argument "3" for "--dispatcher-heartbeat" flag: time: missing unit in duration "3"',
    )
    for cli, limit in (("docker", "6"), ("gorae", "7")):
        r = sd.run(cli, "swarm", "update", "--task-history-limit", limit, "--snapshot-interval", "9000")
        assert (r.returncode, r.stdout, r.stderr) == (0, "Swarm updated.\n", "")
        spec = json.loads(sd.run("docker", "info", "--format", "{{json .Swarm.Cluster.Spec}}").stdout)
        assert (spec["Orchestration"]["TaskHistoryRetentionLimit"], spec["Raft"]["SnapshotInterval"]) == (
            int(limit),
            9000,
        )
    # rotating a token: both CLIs print the same lines, and the token changes
    before = sd.run("docker", "swarm", "join-token", "-q", "worker").stdout
    rc, out, _ = same(sd, "swarm", "join-token", "--rotate", "worker")
    assert rc == 0 and out.startswith("Successfully rotated worker join token.\n\nTo add a worker")
    assert sd.run("gorae", "swarm", "join-token", "-q", "worker").stdout != before
    assert same(sd, "swarm", "join-token", "--rotate", "-q", "manager")[0] == 0


# -- node ---------------------------------------------------------------------------------------------


def test_node_commands_print_what_docker_prints(sd: SwarmDockerd) -> None:
    node_id = sd.run("docker", "node", "ls", "-q").stdout.strip()
    rc, out, _ = same(sd, "node", "ls")
    assert rc == 0 and out.splitlines()[0].split() == [
        "ID",
        "HOSTNAME",
        "STATUS",
        "AVAILABILITY",
        "MANAGER",
        "STATUS",
        "ENGINE",
        "VERSION",
    ]
    assert " * " in out.splitlines()[1] and "Leader" in out
    for args in (
        ("node", "ls", "-q"),
        ("node", "ls", "--format", "json"),
        ("node", "ls", "--format", "raw"),
        ("node", "ls", "--format", "{{.ID}} {{.Self}} {{.TLSStatus}} {{.Hostname}}"),
        ("node", "ls", "--format", "table {{.Hostname}}\t{{.ManagerStatus}}"),
        ("node", "ls", "-f", "role=manager"),
        ("node", "ls", "-f", "role=worker"),
        ("node", "inspect", "self"),
        ("node", "inspect", node_id),
        ("node", "inspect", "--pretty", "self"),
        ("node", "inspect", "--pretty", "self", node_id),
        ("node", "inspect", "--format", "{{.Spec.Role}} {{.Status.State}}", "self"),
    ):
        assert same(sd, *args)[0] == 0, args
    assert same(sd, "node", "ls", "-f", "bad")[0] == 125
    assert same(sd, "node", "inspect", "--format", "pretty-x", "self") == (
        1,
        "",
        "cannot supply extra formatting options to the pretty template\n",
    )
    assert same(sd, "node", "inspect", "nosuch")[:2] == (1, "[]\n")
    assert same(sd, "node", "inspect", "--format", "{{.ID}}", "self", "nosuch")[0] == 1
    assert same(sd, "node", "rm", "nosuch", "x2")[0] == 1
    assert same(sd, "node", "demote")[0] == 1
    assert same(sd, "node", "promote", node_id) == (0, "Node <id> is already a manager.\n", "")
    # labels: add, show, remove, and a missing key is an error with docker's text
    assert same(sd, "node", "update", "--label-add", "zone=a", "--label-add", "x", node_id) == (
        0,
        "<id>\n",
        "",
    )
    rc, out, _ = same(sd, "node", "inspect", "--pretty", "self")
    assert "Labels:\n - x\n - zone=a\n" in out
    assert same(sd, "node", "update", "--label-rm", "nosuch", node_id) == (
        1,
        "",
        "key nosuch doesn't exist in node's labels\n",
    )
    removed = []
    for cli in ("docker", "gorae"):  # each removes the labels the other one's run had removed
        sd.run("docker", "node", "update", "--label-add", "zone=a", "--label-add", "x", node_id)
        r = sd.run(cli, "node", "update", "--label-rm", "zone", "--label-rm", "x", node_id)
        removed.append((r.returncode, r.stdout, r.stderr))
    assert removed[0] == removed[1] == (0, f"{node_id}\n", "")
    assert same(sd, "node", "update", "--availability", "drain", node_id)[0] == 0
    assert "Drain" in same(sd, "node", "ls")[1]
    assert same(sd, "node", "update", "--availability", "active", node_id)[0] == 0
    assert same(sd, "node", "update", "--availability", "active", "self")[0] == 1
    assert json.loads(sd.run("gorae", "node", "inspect", "self").stdout)[0]["Spec"]["Labels"] == {}


# -- secrets and configs ----------------------------------------------------------------------------


def test_secret_and_config_commands_print_what_docker_prints(sd: SwarmDockerd, tmp_path: Path) -> None:
    data = tmp_path / "data.txt"
    data.write_text("hello\n")
    empty = tmp_path / "empty"
    empty.write_text("")
    for kind in ("secret", "config"):
        names = {f"d{kind}": "X", f"g{kind}": "X"}
        for cli in ("docker", "gorae"):
            r = sd.run(cli, kind, "create", "-l", "a=b", f"{cli[0]}{kind}", str(data))
            assert r.returncode == 0 and re.fullmatch(r"[0-9a-z]{25}\n", r.stdout), r
        r = sd.run("gorae", kind, "create", "-l", "k=v", f"s{kind}", "-", input="from stdin")
        assert r.returncode == 0
        for args in (
            (kind, "ls"),
            (kind, "ls", "-q"),
            (kind, "ls", "--format", "json"),
            (kind, "ls", "--format", '{{.Name}} {{.Labels}} {{.Label "a"}}'),
            (kind, "ls", "-f", f"name=s{kind}"),
        ):
            assert same(sd, *args)[0] == 0, args
        d, g = (
            both(sd, kind, "inspect", f"d{kind}", names=names),
            both(sd, kind, "inspect", f"g{kind}", names=names),
        )
        assert d[0] == g[1] and d[0][0] == 0
        d, g = (
            both(sd, kind, "inspect", "--pretty", f"d{kind}", names=names),
            both(sd, kind, "inspect", "--pretty", f"g{kind}", names=names),
        )
        assert d[0] == g[1] and d[0][0] == 0
        pretty = sd.run("gorae", kind, "inspect", "--pretty", f"s{kind}").stdout
        if kind == "config":
            assert pretty.endswith("Data:\nfrom stdin\n")
        assert same(sd, kind, "inspect", "--format", "{{.Spec.Name}}", f"s{kind}", "nosuch")[0] == 1
        assert same(sd, kind, "inspect", "--pretty", "nosuch")[0] == 1
        assert same(sd, kind, "inspect", "--format", "pretty{{.ID}}", f"s{kind}")[0] == 1
        assert same(sd, kind, "create", f"s{kind}", str(data))[0] == 1  # exists
        assert same(sd, kind, "create", "x", str(empty))[0] == 1
        assert same(sd, kind, "create", "x", str(tmp_path / "nosuch"))[0] == 1
        assert same(sd, kind, "create", "x", "-", input="")[0] == 1
        assert same(sd, kind, "create")[0] == 1
        assert same(sd, kind, "rm", "nosuch", "other")[0] == 1
        assert same(sd, kind, "ls", "-f", "bad")[0] == 125
        for n in (f"d{kind}", f"g{kind}", f"s{kind}"):
            assert sd.run("gorae", kind, "rm", n).stdout == f"{n}\n"
        assert same(sd, kind, "ls") == (0, same(sd, kind, "ls")[1], "")
    assert same(sd, "secret", "create", "x")[2] == "secret file is required\n"


# -- services ---------------------------------------------------------------------------------------

FLAGS = [
    "--replicas", "2", "-e", "A=1", "-e", "B", "--label", "x=y", "--container-label", "c=d",
    "--constraint", "node.role==manager", "--constraint", "node.labels.a!=b", "--placement-pref", "spread=node.labels.dc",
    "--mount", "type=volume,src=v1,dst=/data,volume-label=a=b", "--mount", "type=tmpfs,dst=/t,tmpfs-size=1m",
    "--mount", "type=bind,src=/tmp,dst=/h,ro", "--secret", "svcsec", "--secret", "source=svcsec,target=/x,mode=0400",
    "--config", "svccfg", "--restart-condition", "none", "--restart-delay", "3s", "--restart-max-attempts", "4",
    "--restart-window", "1m", "--update-parallelism", "2", "--update-delay", "10s", "--update-failure-action",
    "rollback", "--update-order", "start-first", "--update-monitor", "3s", "--rollback-parallelism", "3",
    "--rollback-delay", "1s", "--reserve-cpu", "0.1", "--reserve-memory", "10m", "--limit-cpu", "0.5",
    "--limit-memory", "100m", "--health-cmd", "true", "--health-interval", "5s", "--health-retries", "3",
    "--user", "0", "--workdir", "/tmp", "--hostname", "h1", "--dns", "1.1.1.1", "--host", "a:1.2.3.4",
    "--group", "10", "--init", "--read-only", "--stop-signal", "SIGINT", "--stop-grace-period", "3s",
    "--log-driver", "json-file", "--log-opt", "max-size=1m", "--cap-add", "NET_ADMIN", "--cap-drop", "chown",
    "--sysctl", "net.ipv4.ip_forward=1", "--ulimit", "nofile=10:20", "--replicas-max-per-node", "2",
    "--with-registry-auth", "--entrypoint", "sh -c",
]  # fmt: skip
NAMES = {"dsvc": "SVC", "gsvc": "SVC"}


def _inspect(sd: SwarmDockerd, cli: str, name: str) -> dict[str, object]:
    """What the CLI sent, as dockerd keeps it: the spec and the previous one (the endpoint's state, the update
    status and the timestamps are dockerd's own and follow the tasks' timing)."""
    doc = json.loads(sd.run(cli, "service", "inspect", name).stdout)[0]
    doc = {k: doc[k] for k in ("Spec", "PreviousSpec") if k in doc}
    doc["Spec"]["Name"] = "SVC"
    for spec in doc.values():
        container = spec.get("TaskTemplate", {}).get("ContainerSpec", {})
        for key in ("Secrets", "Configs", "Env"):
            # docker's CLI collects these (secret and config references; the environment after `--env-add`) in a
            # Go map and sends them in its (random) iteration order
            if key in container:
                container[key] = sorted(container[key], key=lambda ref: json.dumps(ref, sort_keys=True))
    return doc


def _pretty_refs_sorted(out: tuple[int, str, str]) -> tuple[int, str, str]:
    """`service inspect --pretty` with the entries under Secrets: and Configs: sorted: docker's CLI sends those
    references in its Go map's random order (see _inspect), and --pretty lists them as stored."""
    lines, result, i = out[1].split("\n"), [], 0
    while i < len(lines):
        result.append(lines[i])
        if lines[i] in ("Secrets:", "Configs:"):
            entries: list[list[str]] = []
            i += 1
            while i < len(lines) and lines[i].startswith(" Target:"):
                entries.append([lines[i]])
                i += 1
                while i < len(lines) and lines[i].startswith("  "):
                    entries[-1].append(lines[i])
                    i += 1
            result += [line for entry in sorted(entries) for line in entry]
            continue
        i += 1
    return (out[0], "\n".join(result), out[2])


def test_service_create_update_inspect_as_docker(sd: SwarmDockerd, tmp_path: Path) -> None:
    data = tmp_path / "x"
    data.write_text("x")
    assert sd.run("docker", "secret", "create", "svcsec", str(data)).returncode == 0
    assert sd.run("docker", "config", "create", "svccfg", str(data)).returncode == 0
    try:
        for cli in ("docker", "gorae"):
            r = sd.run(cli, "service", "create", "-d", "--name", f"{cli[0]}svc", *FLAGS, "busybox", "exit 3")
            assert r.returncode == 0 and re.fullmatch(r"[0-9a-z]{25}\n", r.stdout), r
            assert r.stderr.startswith("image busybox:latest could not be accessed on a registry to record\n")
        assert _inspect(sd, "gorae", "gsvc") == _inspect(sd, "docker", "dsvc")
        pretty = ""
        for args in (
            ("service", "inspect", "--pretty"),
            ("service", "inspect", "--format", "{{.Spec.Name}} {{json .Spec.Labels}}"),
        ):
            d, _ = both(sd, *args, "dsvc", names=NAMES)
            _, g = both(sd, *args, "gsvc", names=NAMES)
            assert _pretty_refs_sorted(g) == _pretty_refs_sorted(d) and d[0] == 0, args
            pretty = d[1] if "--pretty" in args else pretty
        assert (
            "UpdateConfig:\n Parallelism:\t2\n Delay:\t\t10s\n On failure:\trollback\n Monitoring Period: 3s\n"
            in pretty
        )
        # tasks: one per slot, failed (exit 3) and not restarted (condition none), then the same rows
        for name in ("dsvc", "gsvc"):
            wait_for(
                lambda n=name: (
                    sd.run("docker", "service", "ps", "-q", "-f", "desired-state=shutdown", n).stdout.count(
                        "\n"
                    )
                    == 2
                ),
                timeout=60,
            )
        for args in (("service", "ps"), ("service", "ps", "--no-trunc"), ("service", "ps", "--format", "json"),
                     ("service", "ps", "-q"), ("service", "ps", "--no-resolve", "--format", "{{.Name}}"),
                     ("service", "ps", "-f", "desired-state=running")):  # fmt: skip
            d, _ = both(sd, *args, "dsvc", names=NAMES)
            _, g = both(sd, *args, "gsvc", names=NAMES)
            assert g == d and d[0] == 0, args
        rows = both(sd, "service", "ps", "--no-trunc", "gsvc")[1][1].splitlines()
        assert len(rows) == 3 and all(" Shutdown " in r and r.endswith('"   ') for r in rows[1:]), rows
        assert same(sd, "service", "ps", "dsvc", "gsvc", names=NAMES)[0] == 0
        assert same(sd, "service", "ps", "dsvc", "nosuch", names=NAMES)[0] == 1
        assert same(sd, "node", "ps", names=NAMES)[0] == 0
        assert same(sd, "node", "ps", "self", "nosuch", names=NAMES)[0] == 1
        for args in (("service", "ls"), ("service", "ls", "-q"), ("service", "ls", "--format", "json"),
                     ("service", "ls", "--format", "raw"), ("service", "ls", "-f", "name=dsvc"),
                     ("service", "ls", "-f", "label=x=y", "--format", "{{.Name}} {{.Mode}} {{.Replicas}}")):  # fmt: skip
            assert same(sd, *args)[0] == 0, args
        # updates: each CLI updates its own service with the same flags; the specs stay equal
        for flags in (
            ["--env-add", "C=3", "--env-rm", "A", "--label-add", "z=1", "--label-rm", "x"],
            ["--image", "busybox:latest", "--args", "exit 4", "--force"],
            ["--mount-add", "type=volume,src=v2,dst=/d2", "--mount-rm", "/t", "--constraint-add", "node.hostname!=x",
             "--constraint-rm", "node.role==manager", "--publish-add", "published=0,target=70,mode=host"],
            ["--secret-rm", "svcsec", "--config-rm", "svccfg", "--config-add", "source=svccfg,target=/c2"],
            ["--replicas", "1", "--restart-max-attempts", "9", "--update-delay", "2s", "--rollback-monitor", "7s",
             "--limit-cpu", "1", "--reserve-memory", "20m", "--dns-add", "8.8.8.8", "--host-add", "b:5.6.7.8",
             "--group-add", "11", "--placement-pref-add", "spread=node.id", "--placement-pref-rm", "spread=node.labels.dc",
             "--cap-add", "SYS_ADMIN", "--cap-drop", "RESET", "--no-healthcheck", "--hostname", "h2"],
        ):  # fmt: skip
            for cli in ("docker", "gorae"):
                r = sd.run(cli, "service", "update", "-d", *flags, f"{cli[0]}svc")
                assert (r.returncode, r.stdout) == (0, f"{cli[0]}svc\n"), (flags, r.stderr)
            d, g = _inspect(sd, "docker", "dsvc"), _inspect(sd, "gorae", "gsvc")
            for doc in (d, g):
                if "PreviousSpec" in doc:
                    doc["PreviousSpec"]["Name"] = "SVC"
            assert g == d, flags
        assert same(sd, "service", "update", "-d", "--rollback", "--replicas", "1", "dsvc")[2] == (
            "other flags may not be combined with --rollback\n"
        )
        for cli in ("docker", "gorae"):
            r = sd.run(cli, "service", "rollback", "-d", f"{cli[0]}svc")
            assert (r.returncode, r.stdout) == (0, f"{cli[0]}svc\n"), r.stderr
        assert _inspect(sd, "gorae", "gsvc")["Spec"] == _inspect(sd, "docker", "dsvc")["Spec"]
        for cli in ("docker", "gorae"):
            r = sd.run(cli, "service", "scale", "-d", f"{cli[0]}svc=0")
            assert (r.returncode, r.stdout, r.stderr) == (0, f"{cli[0]}svc scaled to 0\n", "")
        assert same(sd, "service", "ls", "--format", "{{.Name}} {{.Replicas}}")[1].count("0/0") == 2
    finally:
        for cli in ("docker", "gorae"):
            sd.run("docker", "service", "rm", f"{cli[0]}svc")
        sd.run("docker", "secret", "rm", "svcsec")
        sd.run("docker", "config", "rm", "svccfg")
    assert sd.run("docker", "service", "ls", "-q").stdout == ""


def test_service_errors_as_docker(sd: SwarmDockerd) -> None:
    for args, status in (
        (["--mount", "foo"], 125),
        (["--mount", "type=bind,dst=/x,volume-nocopy"], 125),
        (["--mount", "src=a"], 125),
        (["--publish", "1:2:3:4"], 125),
        (["--publish", "mode=foo,target=1"], 125),
        (["--publish", "published=1"], 125),
        (["--replicas", "x"], 125),
        (["--replicas", "-1"], 125),
        (["--restart-delay", "3"], 125),
        (["--restart-delay", "3x"], 125),
        (["--update-parallelism", "1.5"], 125),
        (["--limit-cpu", "abc"], 125),
        (["--limit-memory", "lots"], 125),
        (["--placement-pref", "spread"], 125),
        (["--placement-pref", "pack=x"], 125),
        (["--secret", "nosuch"], 1),
        (["--secret", "source=a,foo=b"], 125),
        (["--config", "nosuch"], 1),
        (["--network", "nosuch"], 1),
        (["--mode", "foo"], 1),
        (["--mode", "global", "--replicas", "2"], 1),
        (["--max-concurrent", "2"], 1),
        (["--no-healthcheck", "--health-cmd", "x"], 1),
        (["--mode", "replicated-job", "--update-delay", "1s"], 1),
        (["--bogus"], 125),
    ):
        assert same(sd, "service", "create", "-d", *args, "busybox")[0] == status, args
    assert same(sd, "service", "create")[0] == 1
    for args in (
        ("service", "inspect", "nosuch"),
        ("service", "inspect", "--pretty", "nosuch"),
        ("service", "inspect", "--format", "pretty{{.ID}}", "x"),
        ("service", "rm", "nosuch", "other"),
        ("service", "ps", "nosuch"),
        ("service", "logs", "nosuch"),
        ("service", "update", "nosuch"),
        ("service", "rollback", "nosuch"),
        ("service", "scale", "foo"),
        ("service", "scale", "nosuch=x"),
        ("service", "scale", "nosuch=2", "other=1"),
        ("service", "ls", "-f", "bad"),
    ):
        assert same(sd, *args)[0] in (1, 125), args


def test_service_progress_logs_scale_rollback_as_docker(sd: SwarmDockerd) -> None:
    """Without --detach both CLIs draw docker's convergence lines (non-terminal form, repeats collapsed)."""
    outputs: dict[str, list[str]] = {}

    def steps(cli: str) -> None:
        name = f"{cli[0]}prog"
        lines: list[str] = []
        for args in (
            ("service", "create", "--name", name, "--replicas", "2", "busybox", "sh", "-c", "echo hi; echo err >&2; sleep 1000"),
            ("service", "update", "--env-add", "X=1", name),
            ("service", "scale", f"{name}=3"),
            ("service", "rollback", name),
            ("service", "update", "-q", "--env-add", "Y=2", name),
        ):  # fmt: skip
            r = sd.run(cli, *args)
            assert r.returncode == 0, (cli, args, r.stderr)
            text = normalise(r.stdout + r.stderr, {name: "SVC"})
            lines.append("\n".join(dict.fromkeys(text.splitlines())))  # docker repeats lines each poll
        outputs[cli] = lines

    try:
        pair(steps)

        # what depends on when each poll lands: partial counts (docker even shows "3 out of 2" while a rollback
        # shrinks the service), and whether the rollback's start or its end
        # message is seen (docker prints the start's message when it sees it, else the end's)
        def stable(text: str) -> list[str]:
            out = []
            for line in text.splitlines():
                m = re.fullmatch(
                    r"overall progress: (?:rolling back update: )?(\d+) out of (\d+) tasks", line
                )
                if (m and 0 < int(m.group(1)) != int(m.group(2))) or line.startswith("rollback: "):
                    continue
                out.append(line)
            return out

        assert [stable(t) for t in outputs["gorae"]] == [stable(t) for t in outputs["docker"]]
        for cli in ("docker", "gorae"):
            rb = outputs[cli][3].splitlines()
            assert "rollback: manually requested rollback" in rb or "rollback: rollback completed" in rb, rb
        created = outputs["docker"][0].splitlines()
        expected = [
            "<id>",
            "overall progress: 0 out of 2 tasks",
            "1/2:  ",
            "2/2:  ",
            "overall progress: 2 out of 2 tasks",
            "verify: Waiting 5 seconds to verify that tasks are stable...",
            "verify: Waiting 1 seconds to verify that tasks are stable...",
            "verify: Service <id> converged",
        ]
        assert [x for x in created if x in expected] == expected, created
        assert outputs["docker"][3].splitlines()[0] == "SVC"
        assert outputs["docker"][4] == "SVC"  # -q: nothing but the name
        # logs: every task's lines, prefixed as docker does; stderr lines on stderr
        for args in (("service", "logs"), ("service", "logs", "--no-task-ids"), ("service", "logs", "-t", "--details"),
                     ("service", "logs", "--raw"), ("service", "logs", "--no-resolve", "--no-trunc")):  # fmt: skip
            res = {}
            for cli in ("docker", "gorae"):
                r = sd.run(cli, *args, f"{cli[0]}prog")
                res[cli] = (r.returncode, sorted(normalise(r.stdout, {f"{cli[0]}prog": "SVC"}).splitlines()),
                            sorted(normalise(r.stderr, {f"{cli[0]}prog": "SVC"}).splitlines()))  # fmt: skip
            assert res["gorae"] == res["docker"], args
            if args == ("service", "logs"):
                assert res["docker"][1][0].startswith("SVC.1.<id12>@") and res["docker"][1][0].endswith(
                    "    | hi"
                )
                assert "    | err" in res["docker"][2][0]
    finally:
        for c in ("d", "g"):
            sd.run("docker", "service", "rm", f"{c}prog")


def _screen(raw: str) -> list[str]:
    """The final screen of a terminal that received `raw` (the subset docker's progress uses: text, \\r, \\n,
    ESC[nA / ESC[nB cursor up/down, ESC[2K erase line)."""
    lines: list[str] = [""]
    row = col = 0
    for m in re.finditer(r"\x1b\[(\d*)([ABK])|\r|\n|[^\x1b\r\n]+", raw.replace("\r\n", "\n")):
        tok = m.group(0)
        if m.group(2) == "A":
            row = max(0, row - int(m.group(1) or 1))
        elif m.group(2) == "B":
            row += int(m.group(1) or 1)
        elif m.group(2) == "K":
            lines[row] = ""
        elif tok == "\r":
            col = 0
        elif tok == "\n":
            row, col = row + 1, 0
        else:
            line = lines[row].ljust(col)
            lines[row] = line[:col] + tok + line[col + len(tok) :]
            col += len(tok)
        while len(lines) <= row:
            lines.append("")
    return [x.rstrip() for x in lines if x.strip()]


def test_service_progress_on_a_terminal_as_docker(sd: SwarmDockerd) -> None:
    """On a terminal the lines are redrawn in place (cursor up, erase, cursor down): the final screens match."""
    if not shutil.which("script"):
        skip_outside_ci("script (util-linux) not installed")
    screens: dict[str, list[str]] = {}

    def run(cli: str) -> None:
        prog = "docker" if cli == "docker" else f"{sys.executable} -m gorae.cli.main"
        name = f"{cli[0]}tty"
        cmd = f"stty cols 150; {prog} service create --name {name} --replicas 2 busybox sh -c 'sleep 1000'"
        r = subprocess.run(
            ["script", "-qec", cmd, "/dev/null"], capture_output=True, env=sd.env(), timeout=120
        )
        assert r.returncode == 0, r.stdout  # bytes: text mode would turn the \r docker draws with into \n
        raw = r.stdout.decode("utf-8", "replace")
        screens[cli] = [normalise(x, {name: "SVC"}) for x in _screen(raw)]

    try:
        pair(run)
        assert screens["gorae"] == screens["docker"]
        assert screens["docker"][-4:] == [
            "overall progress: 2 out of 2 tasks",
            "1/2: running   [==================================================>]",
            "2/2: running   [==================================================>]",
            "verify: Service <id> converged",
        ]
    finally:
        for c in ("d", "g"):
            sd.run("docker", "service", "rm", f"{c}tty")
