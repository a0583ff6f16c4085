"""The differential harness's pure parts (tests/compat/differential/harness.py): scenario and allowlist parsing,
normalisation and the comparison against the allowlist — hostile input through hypothesis."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "compat" / "differential"))
from harness import (  # noqa: E402
    ALLOWLIST,
    SCENARIOS,
    Outcome,
    ScenarioError,
    Step,
    compare,
    normalise,
    parse_allowlist,
    parse_scenario,
)


def test_parse_scenario() -> None:
    steps = parse_scenario("# c\n\ndocker ps -a\nsh: touch f\n  docker rm -f $P-x  \n")
    assert steps == [Step(3, "docker ps -a", False), Step(4, "touch f", True), Step(5, "docker rm -f $P-x", False)]
    with pytest.raises(ScenarioError, match="line 1"):
        parse_scenario("ls /\n")
    with pytest.raises(ScenarioError, match="empty sh"):
        parse_scenario("sh:   \n")


@given(st.text())
def test_parse_scenario_hostile(text: str) -> None:
    try:
        steps = parse_scenario(text)
    except ScenarioError:
        return
    for s in steps:
        assert s.command and (s.setup or s.command.startswith("docker"))


def test_parse_allowlist() -> None:
    entries = parse_allowlist('[[allow]]\nscenario = "a"\ncommand = "docker x"\nways = ["g"]\nwhy = "because"\n')
    assert [(e.scenario, e.command, e.ways, e.why) for e in entries] == [("a", "docker x", ("g",), "because")]
    with pytest.raises(ScenarioError, match="says why"):
        parse_allowlist('[[allow]]\nscenario = "a"\ncommand = "docker x"\n')
    with pytest.raises(ScenarioError, match="ways"):
        parse_allowlist('[[allow]]\nscenario = "a"\ncommand = "docker x"\nways = ["ref"]\nwhy = "w"\n')


@given(st.text())
def test_parse_allowlist_hostile(text: str) -> None:
    try:
        parse_allowlist(text)
    except ScenarioError:
        pass


def test_repository_files_parse_and_allowlist_names_real_steps() -> None:
    """Every allowlist entry names a scenario file and one of its steps (a typo would never match)."""
    scenarios = {p.stem: parse_scenario(p.read_text()) for p in SCENARIOS.glob("*.txt")}
    assert scenarios
    for entry in parse_allowlist(ALLOWLIST.read_text()):
        assert entry.scenario in scenarios, entry
        assert entry.command in {s.command for s in scenarios[entry.scenario]}, entry


def test_normalise() -> None:
    text = (
        "sha256:" + "a" * 64 + " " + "b" * 12 + " 2026-12-06T08:15:48.123456789Z 3 seconds ago Up 5 minutes "
        "1.984MB 0B 172.18.0.2/16 02:42:ac:11:00:02 /tmp/x1/f dfabc-web unix:///tmp/s.sock"
    )
    out = normalise(text, prefix="dfabc", scratch="/tmp/x1", host="unix:///tmp/s.sock")
    assert out == (
        "sha256:<ID> <ID> <TIME> <AGO> Up <DUR> <SIZE> 0B <IP> <MAC> <TMP>/f P-web <HOST>"
    )
    assert normalise("gorae: bad\nRun 'gorae run --help'", prefix="", scratch="", host="", way="g") == (
        "docker: bad\nRun 'docker run --help'"
    )
    assert normalise(
        "gorae: 'gorae import' requires\nSee 'gorae import --help'", prefix="", scratch="", host="", way="g"
    ) == "docker: 'docker import' requires\nSee 'docker import --help'"
    # the daemon's data root (volume mount points)
    assert normalise("/tmp/dref-1/volumes/v/_data", prefix="", scratch="", host="", root="/tmp/dref-1") == (
        "<ROOT>/volumes/v/_data"
    )


@given(st.text(), st.text(max_size=8), st.text(max_size=8))
def test_normalise_hostile(text: str, prefix: str, scratch: str) -> None:
    assert isinstance(normalise(text, prefix=prefix, scratch=scratch, host="", way="g"), str)


def test_compare_reports_unlisted_and_stale() -> None:
    steps = [Step(1, "docker a", False), Step(2, "docker b", False)]
    same, other = Outcome(0, "x", ""), Outcome(1, "", "err")
    results = {"ref": [same, same], "d": [other, same], "g": [same, same]}
    allow = parse_allowlist('[[allow]]\nscenario = "s"\ncommand = "docker b"\nwhy = "w"\n')
    report = compare("s", steps, results, allow)
    assert len(report.differences) == 1 and "s:1 `docker a` — d differs" in report.differences[0]
    assert report.stale == [
        "s: `docker b` (d) no longer differs from dockerd",
        "s: `docker b` (g) no longer differs from dockerd",
    ]
