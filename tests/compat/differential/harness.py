"""The differential harness: one scenario, three ways, normalised outputs compared, known differences allowed.

A scenario (scenarios/NAME.txt) is a sequence of shell command lines, each usually starting with `docker`; `#`
lines are comments, `sh: ...` lines are host-side setup whose output is not compared. Each scenario runs three
ways: `ref` (the docker CLI against a real dockerd), `d` (the docker CLI against gorae) and `g` (the gorae CLI
against gorae, `docker` being a shell function that runs it). `$P` in a step is a prefix unique to the run (names
of containers, images, networks, volumes); steps run in a scratch directory of their own per way.

Outputs are normalised before comparing: ids, digests, times, ages, durations, non-zero sizes, addresses, the
scratch directory and the prefix become placeholders. Every step whose `d` or `g` result still differs from `ref`
must be listed in allowlist.toml with the reason; an allowlisted step that no longer differs is reported too
(stale entries hide regressions).
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCENARIOS = HERE / "scenarios"
ALLOWLIST = HERE / "allowlist.toml"
WAYS = ("ref", "d", "g")


@dataclass(frozen=True)
class Step:
    line: int
    command: str  # as written, with `$P` unexpanded: the key of allowlist entries
    setup: bool  # an `sh:` line: run, not compared


@dataclass(frozen=True)
class Outcome:
    rc: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Allowance:
    scenario: str
    command: str
    ways: tuple[str, ...]
    why: str


@dataclass
class Report:
    differences: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)


class ScenarioError(ValueError):
    """A malformed scenario or allowlist file."""


def parse_scenario(text: str) -> list[Step]:
    """The steps of a scenario file: one command per non-blank, non-comment line."""
    steps: list[Step] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("sh:"):
            cmd = line[3:].strip()
            if not cmd:
                raise ScenarioError(f"line {n}: empty sh: step")
            steps.append(Step(n, cmd, True))
            continue
        if not line.startswith("docker ") and line != "docker":
            raise ScenarioError(f"line {n}: a step starts with `docker` or `sh:`: {line!r}")
        steps.append(Step(n, line, False))
    return steps


def parse_allowlist(text: str) -> list[Allowance]:
    """allowlist.toml: `[[allow]]` tables with scenario, command, ways (default d and g) and why."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"allowlist: {e}") from None
    out: list[Allowance] = []
    entries = doc.get("allow", [])
    if not isinstance(entries, list):
        raise ScenarioError("allowlist: `allow` must be an array of tables")
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            raise ScenarioError(f"allowlist entry {i}: not a table")
        scenario, command, why = e.get("scenario"), e.get("command"), e.get("why")
        ways = e.get("ways", ["d", "g"])
        if not isinstance(scenario, str) or not isinstance(command, str):
            raise ScenarioError(f"allowlist entry {i}: scenario and command are strings")
        if not isinstance(why, str) or not why.strip():
            raise ScenarioError(f"allowlist entry {i}: every allowed difference says why")
        if not isinstance(ways, list) or not ways or any(w not in ("d", "g") for w in ways):
            raise ScenarioError(f"allowlist entry {i}: ways is a list of 'd' and 'g'")
        out.append(Allowance(scenario, command, tuple(ways), why))
    return out


_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"sha256:[0-9a-f]{64}"), "sha256:<ID>"),
    (re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])"), "<ID>"),
    (re.compile(r"(?<![0-9a-zA-Z])[0-9a-f]{12}(?![0-9a-zA-Z])"), "<ID>"),
    (re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?( ?(Z|[+-]\d\d:?\d\d)( [A-Z]{3,4})?)?"), "<TIME>"),
    (re.compile(r"\b(\d+|Less than a|About an?) (second|minute|hour|day|week|month|year)s? ago\b"), "<AGO>"),
    (re.compile(r"\bUp (\d+|Less than a|About an?) (second|minute|hour|day)s?\b"), "Up <DUR>"),
    (re.compile(r"(?<![\w.])(?!0B\b)\d+(\.\d+)?\s?(B|kB|KB|MB|GB|KiB|MiB|GiB)\b"), "<SIZE>"),
    (re.compile(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(/\d{1,2})?\b"), "<IP>"),
    (re.compile(r"\b([0-9a-f]{2}:){5}[0-9a-f]{2}\b"), "<MAC>"),
    (re.compile(r"(?<![\w.])1\d{9}(\d{9})?(?![\w.])"), "<UNIX>"),  # unix seconds or nanoseconds (events)
]


_GORAE_PROG = re.compile(r"^gorae: |(?<=')gorae |(?<=^Usage:  )gorae ", re.MULTILINE)  # 'gorae x' as 'docker x'


_PADDING = re.compile(r" {2,}")


def normalise(text: str, *, prefix: str, scratch: str, host: str, way: str = "", root: str = "") -> str:
    """`text` with everything that legitimately differs between two runs replaced by a placeholder (`root`:
    the daemon's data root, as in volume mount points); for way `g` the gorae CLI's own name in docker's
    "docker: ...", "Run 'docker ...'", "See 'docker ...'" and "'docker import' requires" lines."""
    if way == "g":
        text = _GORAE_PROG.sub(lambda m: m.group(0).replace("gorae", "docker"), text)
    if scratch:
        text = text.replace(scratch, "<TMP>")
    if root:
        text = text.replace(root, "<ROOT>")
    if host:
        text = text.replace(host, "<HOST>").replace(host.removeprefix("unix://"), "<HOST>")
    if prefix:
        text = text.replace(prefix, "P")
    for rx, repl in _RULES:
        text = rx.sub(repl, text)
    # table columns are as wide as their widest (real) value: an age or an id changes the padding
    return _PADDING.sub("  ", text)


def shell_for(way: str, python: str, src: str) -> str:
    """The shell prologue of a step: `docker` is the gorae CLI for way `g`."""
    if way == "g":
        return f'docker() {{ PYTHONPATH={src} {python} -m gorae.cli.main "$@"; }}\n'
    return ""


def run_step(
    step: Step, *, way: str, prefix: str, scratch: Path, env: dict[str, str], python: str, src: str
) -> Outcome:
    script = shell_for(way, python, src) + step.command.replace("$P", prefix)
    r = subprocess.run(
        ["/bin/sh", "-c", script],
        cwd=scratch,
        env=env,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=120,
    )
    return Outcome(r.returncode, r.stdout, r.stderr)


def compare(
    scenario: str, steps: list[Step], results: dict[str, list[Outcome]], allow: list[Allowance]
) -> Report:
    """The differences of the `d` and `g` runs from `ref`, step by step, against the allowlist.
    `results[way]` holds the normalised outcome of each step in order."""
    report = Report()
    mine = [a for a in allow if a.scenario == scenario]
    used: set[tuple[str, str]] = set()
    for i, step in enumerate(steps):
        if step.setup:
            continue
        ref = results["ref"][i]
        for way in ("d", "g"):
            got = results[way][i]
            allowed = any(a.command == step.command and way in a.ways for a in mine)
            if got == ref:
                continue
            if allowed:
                used.add((step.command, way))
                continue
            report.differences.append(_describe(scenario, step, way, ref, got))
    for a in mine:
        for way in a.ways:
            if (a.command, way) not in used:
                report.stale.append(f"{scenario}: `{a.command}` ({way}) no longer differs from dockerd")
    return report


def _describe(scenario: str, step: Step, way: str, ref: Outcome, got: Outcome) -> str:
    parts = [f"{scenario}:{step.line} `{step.command}` — {way} differs from dockerd:"]
    if ref.rc != got.rc:
        parts.append(f"  rc: dockerd {ref.rc}, {way} {got.rc}")
    for name in ("stdout", "stderr"):
        a, b = getattr(ref, name), getattr(got, name)
        if a != b:
            parts.append(f"  {name} dockerd: {a!r}")
            parts.append(f"  {name} {way}:      {b!r}")
    return "\n".join(parts)
