"""Golden tests: our Go templates against output captured from the real docker CLI 28 / dockerd.

The goldens (tests/golden/gotemplate/cases.json) hold each template, the inspect JSON it ran on
and docker's output or error; regenerate them with tests/golden/gotemplate/capture.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gorae.cli.formatting import CONTAINER_HEADERS, format_items, ports_string, ps_command, truncate_id
from gorae.cli.gotemplate import TemplateError, render

GOLDEN = json.loads((Path(__file__).parents[1] / "golden" / "gotemplate" / "cases.json").read_text())


def _inspect_cases() -> list[Any]:
    out = []
    for obj in ("container", "image", "literals"):
        for case in GOLDEN[obj]["cases"]:
            out.append(pytest.param(obj, case, id=f"{obj}:{case['template'][:40]}"))
    return out


def test_enough_goldens() -> None:
    assert len(GOLDEN["container"]["cases"]) + len(GOLDEN["image"]["cases"]) >= 40
    assert len(GOLDEN["literals"]["cases"]) >= 150


@pytest.mark.parametrize(("obj", "case"), _inspect_cases())
def test_inspect_format_matches_docker(obj: str, case: dict[str, Any]) -> None:
    data = GOLDEN[obj]["data"]
    if "error" in case:
        with pytest.raises(TemplateError) as info:
            render(case["template"], data, missingkey=case["missingkey"])
        assert str(info.value) == case["error"]
    else:
        assert render(case["template"], data, missingkey=case["missingkey"]) == case["output"]


def _ps_item(c: dict[str, Any]) -> dict[str, str]:
    names = [n[1:] for n in c["Names"]]
    return {
        "ID": truncate_id(c["Id"]),
        "Image": c["Image"],
        "Command": ps_command(c["Command"]),
        "Ports": ports_string(c["Ports"]),
        "Names": next(n for n in names if "/" not in n),
        "Labels": ",".join(sorted(f"{k}={v}" for k, v in (c.get("Labels") or {}).items())),
        "State": c["State"],
    }


@pytest.mark.parametrize("case", GOLDEN["ps"]["cases"], ids=lambda c: c["format"][:40])
def test_ps_format_matches_docker(case: dict[str, Any]) -> None:
    items = [_ps_item(c) for c in GOLDEN["ps"]["data"]]
    assert format_items(case["format"], items, CONTAINER_HEADERS) == case["output"]
