"""`gorae volume ...`, `gorae network ...` and `gorae port` against both targets, compared with the real docker
CLI's output on the same daemon. Network commands skip where the daemon has no /networks routes yet."""

from __future__ import annotations

import json
import os
import uuid

import pytest
from cli_daemon import NET

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run containers")


def test_volume_create_ls_inspect_rm_prune(g, dk) -> None:  # noqa: ANN001
    n = f"v{uuid.uuid4().hex[:6]}"
    try:
        assert (
            g("volume", "create", "--label", "a=b", "-o", "type=tmpfs", "-o", "device=tmpfs", n).stdout
            == n + "\n"
        )
        anon = g("volume", "create").stdout.strip()
        assert len(anon) == 64
        for args in (
            ["volume", "ls"],
            ["volume", "ls", "-q"],
            ["volume", "list", "--format", 'table {{.Name}}\t{{.Labels}}\t{{.Label "a"}}\t{{.Scope}}'],
            ["volume", "ls", "--format", "json"],
            ["volume", "ls", "-f", "label=a", "--format", "{{.Name}} {{.Driver}}"],
            ["volume", "inspect", n],
            ["volume", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Options}} {{json .Labels}}", n],
        ):
            mine, theirs = g(*args), dk(*args)
            assert (mine.returncode, mine.stdout) == (theirs.returncode, theirs.stdout), args
        header = g("volume", "ls").stdout.splitlines()[0]
        assert header == "DRIVER    VOLUME NAME"
        assert g("volume", "ls", "-q", "-f", "label=a").stdout.split() == [n]
        for args in (["volume", "inspect", "nope"], ["volume", "rm", "nope"]):
            mine, theirs = g(*args), dk(*args)
            assert (mine.returncode, mine.stdout, mine.stderr) == (
                theirs.returncode,
                theirs.stdout,
                theirs.stderr,
            )
        r = g("volume", "prune", "-f")
        assert r.returncode == 0 and anon in r.stdout and r.stdout.startswith("Deleted Volumes:\n")
        assert r.stdout.endswith("\nTotal reclaimed space: 0B\n")
        r = g("volume", "prune", input="n\n")
        assert r.stdout.startswith(
            "WARNING! This will remove anonymous local volumes not used by at least one container.\n"
            "Are you sure you want to continue? [y/N] "
        )
        assert g("volume", "rm", n).stdout == n + "\n"
    finally:
        g("volume", "rm", "-f", n)


def test_volume_in_use_and_df(g, dk) -> None:  # noqa: ANN001
    n = f"v{uuid.uuid4().hex[:6]}"
    cid = g("run", "-d", *NET, "-v", f"{n}:/data", "busybox", "sleep", "300").stdout.strip()
    try:
        r = g("volume", "rm", n)
        assert (
            r.returncode == 1 and r.stderr.startswith("Error response from daemon:") and "in use" in r.stderr
        )
        fmt = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}"
        assert g("system", "df", "--format", fmt).stdout == dk("system", "df", "--format", fmt).stdout
    finally:
        g("rm", "-f", cid)
        g("volume", "rm", n)


def test_network_create_ls_inspect_connect_rm(g, dk) -> None:  # noqa: ANN001
    n = f"n{uuid.uuid4().hex[:6]}"
    cid = None
    try:
        r = g(
            "network", "create", "--subnet", "10.123.0.0/24", "--gateway", "10.123.0.1",
            "--ip-range", "10.123.0.128/25", "--label", "x=y", "--internal", n,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        nid = r.stdout.strip()
        assert len(nid) == 64
        for args in (
            ["network", "ls"],
            ["network", "ls", "--no-trunc"],
            ["network", "ls", "-q"],
            ["network", "list", "--format", "table {{.Name}}\t{{.Internal}}\t{{.Labels}}\t{{.IPv6}}"],
            ["network", "ls", "-f", "label=x", "--format", '{{.Name}} {{.Label "x"}}'],
            ["network", "inspect", "-f", "{{.Name}} {{.Internal}} {{json .IPAM.Config}} {{.Labels}}", n],
        ):
            mine, theirs = g(*args), dk(*args)
            assert (mine.returncode, mine.stdout) == (theirs.returncode, theirs.stdout), args
        doc = json.loads(g("network", "inspect", n).stdout)
        assert doc[0]["IPAM"]["Config"][0] == {
            "Subnet": "10.123.0.0/24",
            "IPRange": "10.123.0.128/25",
            "Gateway": "10.123.0.1",
        }
        assert g("network", "create", n + "b").returncode == 0
        cid = g("run", "-d", "--network", n + "b", "busybox", "sleep", "300").stdout.strip()
        r = g("network", "connect", "--alias", "web", "--ip", "10.123.0.200", n, cid)
        assert (r.returncode, r.stdout) == (0, ""), r.stderr
        nets = g("inspect", "-f", "{{json .NetworkSettings.Networks}}", cid).stdout
        assert "10.123.0.200" in nets and '"web"' in nets
        r = g("network", "rm", n)
        assert r.returncode == 1 and r.stderr.startswith("Error response from daemon:")
        assert g("network", "disconnect", n, cid).returncode == 0
        assert g("network", "rm", n).stdout == n + "\n"
    finally:
        if cid:
            g("rm", "-f", cid)
        g("network", "rm", "-f", n, n + "b")


def test_network_errors_like_docker(g, dk) -> None:  # noqa: ANN001
    for args in (
        ["network", "create", "--gateway", "10.0.0.1", "bad"],
        ["network", "create", "--subnet", "10.1.0.0/24", "--ip-range", "10.2.0.0/25", "bad"],
        ["network", "create"],
        ["network", "connect", "onlyone"],
    ):
        mine, theirs = g(*args), dk(*args)
        assert mine.returncode == theirs.returncode, args
        assert mine.stderr.replace("gorae", "docker") == theirs.stderr, args
    for args in (["network", "rm", "nope"], ["network", "inspect", "nope"]):
        mine, theirs = g(*args), dk(*args)
        # docker 28's `network rm` adds a stray "exit status 1" line after the daemon's error: gorae's too
        assert (mine.returncode, mine.stdout, mine.stderr) == (
            theirs.returncode,
            theirs.stdout,
            theirs.stderr,
        )
    assert g("network", "rm", "-f", "nope").returncode == 0


def test_port(g, dk) -> None:  # noqa: ANN001
    cid = g("run", "-d", *NET, "busybox", "sleep", "300").stdout.strip()
    try:
        for args in (
            ["port", cid],
            ["port", cid, "80"],
            ["port", "nope"],
            ["container", "port", cid, "80/tcp"],
        ):
            mine, theirs = g(*args), dk(*args)
            assert (mine.returncode, mine.stdout, mine.stderr) == (
                theirs.returncode,
                theirs.stdout,
                theirs.stderr,
            )
    finally:
        g("rm", "-f", cid)
