"""Golden tests: `gorae inspect -f` and `gorae ps --format` against output recorded from the real docker CLI.

tests/golden/gotemplate/cases.json holds, for each template, docker's whole stdout, stderr and exit status and
the inspect/list JSON docker rendered them from; its "recorded" entry names the docker CLI and dockerd
versions. Re-record every case with one command, as root:

    python tests/golden/gotemplate/capture.py

(it starts and stops its own dockerd; see its docstring). Each case runs through exactly what the CLI
runs, fed the recorded JSON instead of a daemon's answer: `inspect.parse_template` + `inspect.write_inspect`
(render_inspect on the typed Go structs, then the raw-JSON retry) for `inspect -f`, and `ps.write_ps` (PsRow,
output.print_list with its plain-field fast path) for `ps --format`. A parse error ends the command with a
StatusError whose message main() prints, as it does here. `inspect -f` answers a plain field chain
(`{{.State.Status}}`) without the template engine where it can; a hypothesis test holds that shortcut to the
engine's answer on the recorded documents with values dropped, nulled or of the wrong kind.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gorae.cli.commands.inspect import parse_template, write_inspect
from gorae.cli.commands.ps import write_ps
from gorae.cli.context import Cli, StatusError
from gorae.cli.inspect_types import ROOT, SCHEMA, field_chain, typed, typed_string
from gorae.gotemplate import Template, TemplateError

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


# --- the field-chain shortcut of `inspect -f` (inspect_types.typed_string) against the engine -------------------

_NAMES = sorted({f.split(" ")[0].split(":")[0] for v in SCHEMA.values() for f in v.split("|")})


@st.composite
def _chains(draw: st.DrawFn, go_type: str) -> list[str]:
    """Field chains walking the schema from go_type (Go names, sometimes a JSON-only or made-up name)."""
    names: list[str] = []
    t = go_type
    for _ in range(draw(st.integers(1, 4))):
        base = t.lstrip("*")
        fields = [f.split(" ") for f in SCHEMA[base].split("|")] if base in SCHEMA else []
        pick = draw(st.sampled_from([*(f[0] for f in fields), "Nope", "id", "Id"] if fields else _NAMES))
        go_name, _, _ = pick.partition(":")
        names.append(go_name)
        kind = next((f[1] for f in fields if f[0].partition(":")[0] == go_name), "")
        t = kind
    return names


def _mutate(doc: Any, draw: st.DrawFn) -> Any:
    """The recorded document with some values dropped, nulled or replaced by another kind."""
    if isinstance(doc, dict):
        out = {}
        for k, v in doc.items():
            action = draw(st.sampled_from(["keep", "keep", "keep", "drop", "null", "int", "str", "list"]))
            if action == "drop":
                continue
            out[k] = {"null": None, "int": 7, "str": "x<é>", "list": ["a"]}.get(action, _mutate(v, draw))
        return out
    return doc


# docs/mutation.md: GORAE_MUTATION=1 (a mutmut run) takes a few derandomized examples instead of 400
_MUTATION = os.environ.get("GORAE_MUTATION") == "1"


@given(st.data())
@settings(max_examples=8 if _MUTATION else 400, derandomize=_MUTATION, deadline=None)
def test_field_chain_shortcut_is_the_engines_answer(data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(["container", "image"]))
    names = data.draw(_chains(ROOT[kind]))
    doc = None if data.draw(st.integers(0, 9)) == 0 else _mutate(GOLDEN[kind]["data"], data.draw)
    fmt = "{{." + ".".join(names) + "}}"
    assert field_chain(fmt) == names
    short = typed_string(ROOT[kind], doc, names)
    engine = Template(fmt)
    try:
        want: str | None = str(engine.execute(typed(ROOT[kind], doc)))
    except TemplateError:
        want = None  # the engine fails on the typed value: docker retries on the raw JSON
    if short is not None:
        assert short == want
    # and the whole command (parse_template + write_inspect) prints what the engine alone prints
    shortcut_run = _run_inspect(kind, fmt, doc)
    out, err = io.StringIO(), io.StringIO()
    status = write_inspect(Cli({}, out=out, err=err), engine, [(kind, doc)], [])
    assert shortcut_run == (out.getvalue(), err.getvalue(), status)


def test_field_chain_shortcut_answers_the_common_templates() -> None:
    doc = GOLDEN["container"]["data"]
    answers = {
        ("State", "Status"): "created",
        ("Name",): "/gtc",
        ("Config", "Image"): "gtbb",
        ("NetworkSettings", "IPAddress"): "",  # a string field the daemon left empty
        ("HostConfig", "LogConfig", "Type"): "json-file",  # through a non-pointer struct
        ("ID",): doc["Id"],  # the Go name of the JSON "Id"
        ("Node", "ID"): None,  # a nil pointer: the engine's business (then the raw-JSON retry)
        ("State", "Pid"): None,  # not a string
        ("Id",): None,  # not a Go field name
    }
    for names, want in answers.items():
        assert typed_string(ROOT["container"], doc, list(names)) == want, names


@pytest.mark.parametrize(
    ("fmt", "names"),
    [
        ("{{.State.Status}}", ["State", "Status"]),
        ("{{.Id}}", ["Id"]),
        ("{{._x1}}", ["_x1"]),
        ("{{.}}", None),
        ("{{ .Id }}", None),
        ("{{.Id}}\n", None),
        ("{{.A..B}}", None),
        ("{{.1A}}", None),
        ("{{.Ünï}}", None),
        ("{{.A-B}}", None),
        ("{{json .}}", None),
        ("x{{.Id}}", None),
    ],
)
def test_field_chain_recognises_only_plain_chains(fmt: str, names: list[str] | None) -> None:
    assert field_chain(fmt) == names
