"""The gorae CLI's output byte for byte against the real docker CLI on the same daemon (both targets): `--help`
layouts, list tables (`ps`, `images`, `history`, `system df`, `stats --no-stream`), `inspect -f` templates,
argument/flag errors; config.json's psFormat/imagesFormat; events --format; completion scripts; and a list of
bad invocations that must never print a Python traceback."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest
from cli_daemon import NET, SRC, gorae_env

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run containers")

HELP_SAMPLE = [
    "ps", "images", "container ls", "image list", "stop", "rm", "logs", "inspect", "stats", "events", "exec",
    "history", "port", "info", "version", "tag", "wait", "attach", "top", "system df", "system prune",
    "container prune", "image prune", "volume create", "volume ls", "volume rm", "network create", "network ls",
    "network connect", "container", "network", "pull", "push", "login", "logout", "image push", "image pull",
]  # fmt: skip


def _normalise_docker_help(text: str) -> str:
    """docker's help with the program name replaced in usage, alias and footer lines, and gorae's own words
    where docker speaks of itself (issue 14: "Show the gorae version information", "Manage gorae")."""
    out = []
    text = text.replace("Show the Docker version information", "Show the gorae version information")
    text = text.replace("Manage Docker\n", "Manage gorae\n")
    for line in text.split("\n"):
        if line.startswith(("Usage:", "  docker", "Run 'docker")):
            line = line.replace("docker ", "gorae ").replace("'docker", "'gorae")
        out.append(line)
    return "\n".join(out)


@pytest.mark.parametrize("cmd", HELP_SAMPLE)
def test_help_matches_docker(cmd: str) -> None:
    if not shutil.which("docker"):
        pytest.skip("docker CLI not installed")
    env = dict(os.environ, PYTHONPATH=SRC, COLUMNS="80")
    mine = subprocess.run(
        [sys.executable, "-m", "gorae.cli.main", *cmd.split(), "--help"],
        capture_output=True,
        text=True,
        env=env,
    )
    theirs = subprocess.run(["docker", *cmd.split(), "--help"], capture_output=True, text=True, env=env)
    assert mine.returncode == theirs.returncode == 0
    assert mine.stdout == _normalise_docker_help(theirs.stdout)


BAD_INVOCATIONS = [
    ["--bogus"], ["-H"], ["nosuchcommand"], ["ps", "--bogus"], ["ps", "--format", "{{.Nope"],
    ["ps", "--format", "{{.Names | nosuchfunc}}"], ["ps", "-f", "novalue"], ["ps", "-n", "x"],
    ["images", "--format", "{{index . 1}}"], ["inspect", "-f", "{{.Config.Nope.Deeper}}", "nope"],
    ["inspect", "-f", "{{range}}", "busybox"], ["inspect", "--type", "bogus", "x"], ["run"], ["run", "--rm"],
    ["run", "-m", "lots", "busybox"], ["run", "-p", "notaport", "busybox"], ["run", "--cpus", "x", "busybox"],
    ["run", "--restart", "sometimes", "busybox"], ["run", "--ulimit", "nofile", "busybox"],
    ["run", "-e"], ["run", "--env-file", "/nonexistent", "busybox"], ["run", "nosuchimage:v9"],
    ["exec", "nope", "true"], ["logs", "--since", "yesterday", "nope"], ["cp", "a", "b"],
    ["stop", "-t", "soon", "x"], ["kill", "-s", "NOSIG", "nope"], ["rm"], ["rename", "a"], ["tag", "x"],
    ["rmi", "nope"], ["load", "-i", "/nonexistent"], ["import", "/nonexistent"], ["save", "nope", "-o", "/dev/null"],
    ["events", "--since", "garbage", "--until", "0"], ["system", "df", "--format", "{{"], ["system", "bogus"],
    ["container", "bogus"], ["volume", "inspect", "nope"], ["volume", "create", "a", "b"], ["network", "inspect", "nope"],
    ["network", "create", "--subnet", "notacidr", "x"], ["network", "create", "--gateway", "zzz", "--subnet", "10.9.0.0/24", "x"],
    ["stats", "--no-stream", "nope"], ["update", "--memory", "x", "nope"], ["port", "nope", "80"], ["completion", "fish"],
    ["version", "--format", "{{.Client.Version | nosuch}}"], ["info", "--format", "{{json}}"], ["wait", "nope"], ["top", "nope"],
]  # fmt: skip


def test_no_traceback_on_bad_invocations(g) -> None:  # noqa: ANN001
    for args in BAD_INVOCATIONS:
        r = g(*args, timeout=30)
        assert "Traceback" not in r.stderr, (args, r.stderr)
        assert r.returncode != 0 or args == ["completion", "fish"], args


def _same(g, dk, *args: str) -> None:  # noqa: ANN001
    mine, theirs = g(*args), dk(*args)
    assert (mine.returncode, mine.stdout) == (theirs.returncode, theirs.stdout), args


def test_arg_errors_match_docker(g, dk) -> None:  # noqa: ANN001
    for args in (["stop"], ["tag", "a"], ["version", "x"], ["port"], ["images", "a", "b"], ["ps", "--bogus"]):
        mine, theirs = g(*args), dk(*args)
        assert mine.returncode == theirs.returncode, args
        assert mine.stderr == theirs.stderr.replace("docker", "gorae"), args


def test_list_tables_match_docker(g, dk) -> None:  # noqa: ANN001
    cid = g("run", "-d", *NET, "--name", "tables", "-l", "com.example.some-key=v", "busybox", "sleep", "300")
    cid = cid.stdout.strip()
    g("create", *NET, "--name", "tables2", "busybox", "echo", "a long command line that gets truncated")
    try:
        _same(
            g, dk, "ps", "-a", "--format", "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.Ports}}\t{{.Names}}"
        )
        _same(
            g,
            dk,
            "ps",
            "-a",
            "--no-trunc",
            "--format",
            "table {{.ID}}\t{{.Command}}\t{{.Names}}\t{{.Labels}}",
        )
        _same(g, dk, "ps", "--format", 'table {{.Names}}\t{{.Label "com.example.some-key"}}\t{{.State}}')
        _same(g, dk, "ps", "-a", "-q")
        _same(
            g,
            dk,
            "ps",
            "-a",
            "--format",
            '{{json .Names}} {{.Mounts}} {{.Networks}} {{.Status | len | printf "%T"}}',
        )
        _same(g, dk, "images", "--format", "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Size}}")
        _same(g, dk, "images", "-q")
        _same(g, dk, "images", "--no-trunc", "--format", "{{.ID}} {{.Digest}}")
        _same(
            g, dk, "history", "--format", "table {{.ID}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}", "busybox"
        )
        _same(g, dk, "history", "--no-trunc", "-q", "busybox")
        _same(g, dk, "system", "df", "--format", "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}")
        _same(g, dk, "stats", "--no-stream", "--format", "table {{.Name}}\t{{.ID}}", "tables")
        _same(g, dk, "stats", "--no-stream", "-a", "--format", "{{.Name}} {{.Container}}")
        # the default tables: identical apart from times that moved on between the two runs (and the column
        # padding after them: "Up 9 seconds" and "Up 10 seconds" differ in width)
        norm = re.compile(
            r"\d+ (second|minute)s? ago|About a minute ago|Less than a second ago|Up \S+( \S+)?"
        )

        def same_but_times(out: str) -> str:
            return re.sub(" {3,}", "   ", norm.sub("T", out))

        for args in (["ps", "-a"], ["images"], ["history", "busybox"]):
            mine, theirs = g(*args), dk(*args)
            assert same_but_times(mine.stdout) == same_but_times(theirs.stdout), args
        header = g("stats", "--no-stream").stdout.splitlines()[0]
        assert header == dk("stats", "--no-stream").stdout.splitlines()[0]
    finally:
        g("rm", "-f", cid, "tables2")


INSPECT_TEMPLATES = [
    "{{.State.Status}} {{.Config.Labels}} {{.Name}}",
    '{{json .Config.Cmd}} {{join .Config.Cmd ","}} {{len .Config.Cmd}}',
    "{{range $i, $a := .Config.Cmd}}{{$i}}={{$a}};{{end}}",
    "{{if .State.Running}}up{{else if .State.Paused}}paused{{else}}down{{end}}",
    '{{with .Config.Labels}}{{index . "k"}}{{end}} {{.HostConfig.RestartPolicy.Name | upper}}',
    '{{printf "%s-%d" .Name .State.ExitCode}} {{.State.Pid | printf "%T"}} {{.HostConfig.Memory}}',
    '{{lower .Config.Image}} {{title "hello world"}} {{split .Config.Image ":"}} {{.Config.Env}}',
    "{{- .Config.WorkingDir -}}|{{ .Config.User }}|{{.Config.Tty}}|{{.HostConfig.Privileged}}",
    '{{.Mounts}} {{json .Mounts}} {{eq .State.Status "running"}}',
    '{{.Created | printf "%.4s"}} {{pad .Name 1 1}} {{truncate .Name 3}}',
]


def test_inspect_format_matches_docker(g, dk) -> None:  # noqa: ANN001
    r = g(
        "run", "-d", *NET, "--name", "insp", "-l", "k=v", "-e", "A=1", "-w", "/tmp", "busybox", "sleep", "300"
    )
    cid = r.stdout.strip()
    try:
        for tpl in INSPECT_TEMPLATES:
            for what in ("insp", "busybox"):
                if what == "busybox" and any(k in tpl for k in ("State", "HostConfig", ".Name")):
                    continue
                _same(g, dk, "inspect", "-f", tpl, what)
        _same(
            g, dk, "inspect", "--type", "image", "-f", "{{.Config.Cmd}} {{.Os}} {{.Architecture}}", "busybox"
        )
        _same(g, dk, "container", "inspect", "-f", "{{.Id}}", cid, "insp")
        _same(g, dk, "inspect", "-s", "-f", "{{.SizeRw}}", "insp")
        mine, theirs = g("inspect", "insp"), dk("inspect", "insp")
        assert json.loads(mine.stdout) == json.loads(theirs.stdout)
    finally:
        g("rm", "-f", cid)


def test_config_json_formats_and_detach_keys(g, daemon, dk) -> None:  # noqa: ANN001
    cfg = daemon.config_dir / "config.json"
    cfg.write_text(
        json.dumps({"psFormat": "table {{.Names}}\t{{.Image}}", "imagesFormat": "{{.Repository}}:{{.Tag}}"})
    )
    cid = g("run", "-d", *NET, "--name", "cfgfmt", "busybox", "sleep", "300").stdout.strip()
    try:
        mine = ("--filter", f"id={cid}")  # other tests share this daemon
        assert g("ps", *mine).stdout == dk("ps", *mine).stdout
        assert g("ps", *mine).stdout.splitlines()[0].split() == ["NAMES", "IMAGE"]
        assert "busybox:latest" in g("images").stdout.split()
        assert g("images").stdout == dk("images").stdout
        assert g("ps", *mine, "--format", "{{.ID}}").stdout.strip() == cid[:12]  # --format beats psFormat
        assert g("ps", *mine, "-q").stdout.strip() == cid[:12]
    finally:
        cfg.write_text(json.dumps({"detachKeys": "ctrl-x,x"}))
        g("rm", "-f", cid)
    pexpect = pytest.importorskip("pexpect")
    try:
        child = pexpect.spawn(
            sys.executable,
            ["-m", "gorae.cli.main", "run", "-it", "--name", "cfgdet", *NET, "busybox", "sh"],
            env=gorae_env(daemon),
            timeout=30,
            encoding="utf-8",
        )
        child.expect(r"[#$] ")
        child.send("\x18x")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
        assert g("inspect", "-f", "{{.State.Running}}", "cfgdet").stdout == "true\n"
    finally:
        cfg.unlink()
        g("rm", "-f", "cfgdet")


def test_stats_live_table_redraws(daemon, g) -> None:  # noqa: ANN001
    pexpect = pytest.importorskip("pexpect")
    cid = g("run", "-d", *NET, "--name", "busy", "busybox", "sh", "-c", "while :; do :; done").stdout.strip()
    try:
        child = pexpect.spawn(
            sys.executable, ["-m", "gorae.cli.main", "stats", "busy"], env=gorae_env(daemon), timeout=30,
            encoding="utf-8", dimensions=(24, 160),
        )  # fmt: skip
        # each frame clears the screen and homes the cursor, then draws the header and one row
        for _ in range(2):
            child.expect(r"\x1b\[2J\x1b\[H")
            child.expect("CONTAINER ID +NAME +CPU % +MEM USAGE / LIMIT +MEM % +NET I/O +BLOCK I/O +PIDS")
            child.expect(cid[:12] + r" +busy +\d+\.\d+%")
        child.sendintr()
        child.expect(pexpect.EOF)
        child.close()
        r = g("stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}} {{.PIDs}}", "busy")
        name, cpu, pids = r.stdout.split()
        assert (name, pids) == ("busy", "1") and cpu.endswith("%")
    finally:
        g("rm", "-f", cid)


def test_events_format(g, daemon) -> None:  # noqa: ANN001
    since = str(int(time.time()) - 1)
    cid = g("run", "-d", *NET, "--name", "evfmt", "busybox", "true").stdout.strip()
    g("wait", cid)
    g("rm", cid)
    until = str(int(time.time()) + 1)
    r = g(
        "events",
        "--since",
        since,
        "--until",
        until,
        "-f",
        f"container={cid}",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
    )
    lines = r.stdout.splitlines()
    assert r.returncode == 0
    assert (
        "container create evfmt" in lines
        and "container start evfmt" in lines
        and "container destroy evfmt" in lines
    )
    r = g("events", "--since", since, "--until", until, "-f", f"container={cid}", "--format", "json")
    docs = [json.loads(x) for x in r.stdout.splitlines()]
    assert docs and all(d["Actor"]["ID"] == cid and d["Type"] == "container" for d in docs)
    r = g("events", "--since", since, "--until", until, "-f", f"container={cid}", "-f", "event=start")
    (line,) = r.stdout.splitlines()
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d) container start " + cid + r" \(.*name=evfmt.*\)",
        line,
    )


def test_completion_scripts(g) -> None:  # noqa: ANN001
    env = dict(os.environ, PYTHONPATH=SRC)
    gorae = f"{sys.executable} -m gorae.cli.main"
    r = subprocess.run(
        ["bash", "-c", f"source <({gorae} completion bash); complete -p gorae"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert (r.returncode, r.stdout) == (0, "complete -F _gorae gorae\n"), r.stderr
    script = (
        f"source <({gorae} completion bash); COMP_WORDS=(gorae volume); COMP_CWORD=1; _gorae; echo ${{COMPREPLY[@]}};"
        f" COMP_WORDS=(gorae network c); COMP_CWORD=2; _gorae; echo ${{COMPREPLY[@]}};"
        f" COMP_WORDS=(gorae ps --fo); COMP_CWORD=2; _gorae; echo ${{COMPREPLY[@]}}"
    )
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env)
    assert r.stdout.splitlines() == ["volume", "connect create", "--format"], r.stderr
    zsh = g("completion", "zsh")
    assert zsh.returncode == 0 and zsh.stdout.startswith("#compdef gorae\n")
    if shutil.which("zsh"):
        r = subprocess.run(["zsh", "-n"], input=zsh.stdout, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
