"""Golden tests: `gorae inspect -f` and `gorae ps --format` against output recorded from the real docker CLI.

tests/golden/gotemplate/cases.json holds, for each template, docker's whole stdout, stderr and exit status and
the inspect/list JSON docker rendered them from; its "recorded" entry names the docker CLI and dockerd
versions. Re-record every case with one command, as root:

    python tests/golden/gotemplate/capture.py

(it starts and stops its own dockerd; see its docstring). Each case runs through exactly what the CLI
runs, fed the recorded JSON instead of a daemon's answer: `inspect.parse_template` + `inspect.write_inspect`
(render_inspect on the typed Go structs, then the raw-JSON retry) for `inspect -f`, and `ps.write_ps` (PsRow,
output.print_list with its plain-field fast path) for `ps --format`. A parse error ends the command with a
StatusError whose message main() prints, as it does here.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from gorae.cli.commands.inspect import parse_template, write_inspect
from gorae.cli.commands.ps import write_ps
from gorae.cli.context import Cli, StatusError

GOLDEN = json.loads((Path(__file__).parents[1] / "golden" / "gotemplate" / "cases.json").read_text("utf-8"))
KINDS = {"container": "container", "image": "image", "literals": "container"}


def _inspect_cases() -> list[Any]:
    return [
        pytest.param(obj, case, id=f"{obj}:{case['template'][:40]}")
        for obj in KINDS
        for case in GOLDEN[obj]["cases"]
    ]


def test_goldens_recorded_from_docker() -> None:
    rec = GOLDEN["recorded"]
    assert rec["command"] == "python tests/golden/gotemplate/capture.py"
    assert rec["docker"] and rec["dockerd"]
    counts = {k: len(GOLDEN[k]["cases"]) for k in (*KINDS, "ps")}
    assert counts == {"container": 52, "image": 8, "literals": 191, "ps": 10}
    # the html/js/urlquery escaping cases (once lost to a capture bug) are real output, not parse errors
    escaping = [c for c in GOLDEN["literals"]["cases"] if c["template"].startswith("{{html ")]
    assert sum(c["status"] == 0 for c in escaping) >= 3


def _run_inspect(kind: str, template: str, data: Any) -> tuple[str, str, int]:
    """`gorae <kind> inspect -f TEMPLATE obj` with `data` as the daemon's answer: stdout, stderr, status."""
    out, err = io.StringIO(), io.StringIO()
    cli = Cli({}, out=out, err=err)
    try:
        status = write_inspect(cli, parse_template(template), [(kind, data)], [])
    except StatusError as e:  # what main() does with it
        err.write(e.message.rstrip("\n") + "\n")
        status = e.status
    return out.getvalue(), err.getvalue(), status


@pytest.mark.parametrize(("obj", "case"), _inspect_cases())
def test_inspect_format_matches_docker(obj: str, case: dict[str, Any]) -> None:
    got = _run_inspect(KINDS[obj], case["template"], GOLDEN[obj]["data"])
    assert got == (case["stdout"], case["stderr"], case["status"])


@pytest.mark.parametrize(
    "case", GOLDEN["ps"]["cases"], ids=lambda c: " ".join([*c["flags"], c["format"][:40]])
)
def test_ps_format_matches_docker(case: dict[str, Any]) -> None:
    assert case["status"] == 0 and case["stderr"] == ""
    out = io.StringIO()
    write_ps(out, case["format"], GOLDEN["ps"]["data"], trunc="--no-trunc" not in case["flags"], size=False)
    assert out.getvalue() == case["stdout"]
