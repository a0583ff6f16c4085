"""`gorae version`, `gorae info` (default layout and --format) and `inspect -f` (docker's typed-struct
templates: zero values for absent fields, raw fallback with missingkey=error, no partial output) against the
real docker CLI on the same daemon, both targets. Client-side lines that legitimately differ are normalised."""

from __future__ import annotations

import os
import re
import uuid

import pytest
from cli_daemon import NET

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run containers")

CLIENT_LINES = re.compile(r"^ (Version|API version|Go version|Git commit|Built):.*$", re.MULTILINE)


def _norm_client(text: str) -> str:
    # gorae's own parts name the Python that runs them where docker's say "Go version" (issue 14, "Also")
    text = re.sub(r"^( +)Python version:\s*", r"\1Go version: python", text, flags=re.MULTILINE)
    text = re.sub(r"^( +[A-Za-z/ ]+):[ \t]+", r"\1: ", text, flags=re.MULTILINE)  # its column is wider
    head, sep, tail = text.partition("\nServer:")
    return CLIENT_LINES.sub(r" \1: X", head) + sep + tail


def test_version_and_info_layout(g, dk) -> None:  # noqa: ANN001
    mine, theirs = g("version"), dk("version")
    assert mine.returncode == theirs.returncode == 0, mine.stderr
    assert _norm_client(mine.stdout) == _norm_client(theirs.stdout)
    mine, theirs = g("info"), dk("info")
    assert mine.returncode == theirs.returncode == 0, mine.stderr
    runtimes = re.compile(r"^ Runtimes: (.*)$", re.MULTILINE)  # docker prints a Go map in random order

    def norm(t: str) -> str:
        t = runtimes.sub(lambda m: " Runtimes: " + " ".join(sorted(m.group(1).split())), t)
        return _norm_client(t)

    assert norm(mine.stdout) == norm(theirs.stdout)
    assert mine.stderr == theirs.stderr
    for label in ("Server Version", "Storage Driver", "Logging Driver", "Cgroup Driver", "Kernel Version",
                  "Operating System", "CPUs", "Total Memory", "Docker Root Dir", "Live Restore Enabled"):  # fmt: skip
        assert f"\n {label}: " in mine.stdout, label


@pytest.mark.parametrize("cmd", ["version", "info"])
def test_version_info_format(g, dk, cmd: str) -> None:  # noqa: ANN001
    fmts = {
        "version": [
            "{{.Server.Version}}",
            "{{.Server.Os}}/{{.Client.Os}}",
            "{{.Foo}}",
            "{{.Client.Nope}}",
            "{{.Foo",
            "{{json .Server.Components}}",
        ],  # fmt: skip
        "info": [
            "{{.NCPU}} {{.ClientInfo.Context}}",
            "{{.Foo}}",
            "{{.Foo",
            "{{json .Plugins}}",
            "{{.ClientInfo.Nope}}",
            "{{.Swarm.LocalNodeState}} {{.OSType}}",
        ],  # fmt: skip
    }[cmd]
    for f in fmts:
        mine, theirs = g(cmd, "-f", f), dk(cmd, "-f", f)
        assert (mine.returncode, mine.stdout, mine.stderr) == (
            theirs.returncode,
            theirs.stdout,
            theirs.stderr,
        ), f


TEMPLATES = [
    "{{.Config.Labels.nope.X}}",
    "{{.State.Health.Status}}",
    "{{.State.Health}}",
    "{{.Nope}}",
    "{{.Config.Nope}}",
    "{{.HostConfig.Devices}}",
    "{{.HostConfig.BlkioWeightDevice}}",
    "{{.Config.Healthcheck}}",
    "{{.Config.Volumes}}",
    "a{{.Name}}b{{.Nope}}c",
    "{{.Config.Labels.a.X}}",
    "{{.HostConfig.Isolation}}|{{.HostConfig.CpuCount}}|{{.HostConfig.CPUCount}}",
    "{{.Mounts}}",
    "{{.HostConfig.LogConfig}}",
    "{{.Platform}}|{{.AppArmorProfile}}|{{.ExecIDs}}",
    "{{.Id}} {{.ID}}",
    "{{.HostConfig.RestartPolicy}}",
    "{{.Config.Labels.a}} {{.Config.Labels}}",
    "{{.State.Pid}} {{.State.ExitCode}} {{.State.Running}}",
    "{{.HostConfig.Init}}",
    "{{.HostConfig.Memory}} {{.HostConfig.OomKillDisable}} {{.HostConfig.PidsLimit}}",
    "{{range .Config.Cmd}}{{.}};{{end}}",
    "{{if .State.Health}}h{{else}}noh{{end}}",
    "{{.Foo",
]


def test_inspect_format_typed_like_docker(g, dk) -> None:  # noqa: ANN001
    n = f"t{uuid.uuid4().hex[:6]}"
    assert g("create", "--name", n, *NET, "-l", "a=b", "busybox", "sleep", "100").returncode == 0
    try:
        for t in TEMPLATES:
            for cmd in (["inspect"], ["container", "inspect"]):
                mine, theirs = g(*cmd, "-f", t, n), dk(*cmd, "-f", t, n)
                assert (mine.returncode, mine.stdout, mine.stderr) == (
                    theirs.returncode, theirs.stdout, theirs.stderr), t  # fmt: skip
        for t in (
            "{{.Config.Cmd}}|{{.RootFS.Type}}|{{.Metadata}}|{{.ContainerConfig}}",
            "{{.Id}}",
            "{{.Nope}}",
        ):
            mine, theirs = (
                g("image", "inspect", "-f", t, "busybox"),
                dk("image", "inspect", "-f", t, "busybox"),
            )
            assert (mine.returncode, mine.stdout, mine.stderr) == (
                theirs.returncode,
                theirs.stdout,
                theirs.stderr,
            ), t
        mine, theirs = g("inspect", "-f", "{{.Name}}", n, "nope"), dk("inspect", "-f", "{{.Name}}", n, "nope")
        assert (mine.returncode, mine.stdout, mine.stderr) == (
            theirs.returncode,
            theirs.stdout,
            theirs.stderr,
        )
    finally:
        g("rm", "-f", n)
