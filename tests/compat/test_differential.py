"""The differential harness (tests/compat/differential/): every scenario run through the docker CLI against a
real dockerd, through the docker CLI against gorae and through the gorae CLI against gorae; normalised outputs
must match dockerd's except for the differences allowlist.toml lists with a reason."""

from __future__ import annotations

import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_daemon import SRC, Daemon, gorae_env
from conftest import skip_outside_ci

sys.path.insert(0, str(Path(__file__).resolve().parent / "differential"))
from harness import (  # noqa: E402
    ALLOWLIST,
    SCENARIOS,
    WAYS,
    Outcome,
    compare,
    normalise,
    parse_allowlist,
    parse_scenario,
    run_step,
)

NAMES = sorted(p.stem for p in SCENARIOS.glob("*.txt"))


@pytest.fixture(scope="module")
def daemons(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Daemon]]:
    import os

    if os.geteuid() != 0:
        pytest.skip("needs root to run containers")
    for tool in ("dockerd", "docker"):
        if not shutil.which(tool):
            skip_outside_ci(f"{tool} not installed")
    started: dict[str, Daemon] = {}
    try:
        for target in ("dref", "gorae"):
            started[target] = Daemon(tmp_path_factory.mktemp(f"diff-{target}"), target)
        yield started
    finally:
        for d in started.values():
            d.stop()


def _clean(d: Daemon) -> None:
    """Back to just busybox: no containers, images, user networks or volumes left by a scenario."""
    ids = d.docker("ps", "-aq").stdout.split()
    if ids:
        d.docker("rm", "-f", "-v", *ids)
    nets = [n for n in d.docker("network", "ls", "-q", "--filter", "type=custom").stdout.split()]
    if nets:
        d.docker("network", "rm", *nets)
    vols = d.docker("volume", "ls", "-q").stdout.split()
    if vols:
        d.docker("volume", "rm", "-f", *vols)
    keep = d.docker("images", "-q", "busybox:latest").stdout.split()
    imgs = [i for i in dict.fromkeys(d.docker("images", "-aq").stdout.split()) if i not in keep]
    if imgs:
        d.docker("rmi", "-f", *imgs)
    left = d.docker("images", "-a", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    assert left == ["busybox:latest"], f"a scenario left images behind on {d.target}: {left}"


@pytest.mark.parametrize("name", NAMES)
def test_scenario(daemons: dict[str, Daemon], name: str) -> None:
    for d in daemons.values():
        _clean(d)
    steps = parse_scenario((SCENARIOS / f"{name}.txt").read_text())
    allow = parse_allowlist(ALLOWLIST.read_text())
    results: dict[str, list[Outcome]] = {}
    for way in WAYS:
        prefix = f"df{uuid.uuid4().hex[:6]}"  # one per way: d and g share the gorae daemon
        d = daemons["dref" if way == "ref" else "gorae"]
        scratch = Path(tempfile.mkdtemp(prefix="gorae-diff-"))
        try:
            env = gorae_env(d)
            root = str(d.data)
            outs = []
            for step in steps:
                o = run_step(step, way=way, prefix=prefix, scratch=scratch, env=env, python=sys.executable, src=SRC)
                outs.append(
                    Outcome(
                        o.rc,
                        normalise(o.stdout, prefix=prefix, scratch=str(scratch), host=d.host, way=way, root=root),
                        normalise(o.stderr, prefix=prefix, scratch=str(scratch), host=d.host, way=way, root=root),
                    )
                )
            results[way] = outs
        finally:
            _clean(d)
            shutil.rmtree(scratch, ignore_errors=True)
    for i, step in enumerate(steps):  # the whole run, shown when the test fails
        print(f"--- {name}:{step.line} {step.command}")
        for way in WAYS:
            o = results[way][i]
            print(f"  [{way}] rc={o.rc} out={o.stdout!r} err={o.stderr!r}")
    report = compare(name, steps, results, allow)
    problems = report.differences + report.stale
    assert not problems, "\n\n".join(problems)
