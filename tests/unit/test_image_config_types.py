"""Image configs are type-checked as Go's decoder does (security review F8): a hostile config is refused at
load, and one stored by an older gorae is repaired on read instead of breaking `images` for every image."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gorae.errors import InvalidParameter
from gorae.image.models import parse_config

DIFF = "sha256:" + "a" * 64


def _cfg(**over: object) -> bytes:
    doc: dict[str, object] = {
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [DIFF]},
        "config": {"Cmd": ["sh"]},
    }
    doc.update(over)
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"config": {"Labels": [1]}}, "config.Labels must be a map of strings"),
        ({"config": {"ExposedPorts": [1]}}, "config.ExposedPorts must be a object"),
        ({"config": {"Env": "x"}}, "config.Env must be a list of strings"),
        ({"config": {"Cmd": 5}}, "config.Cmd must be a command"),
        ({"config": {"Healthcheck": {"Retries": "3"}}}, "config.Healthcheck.Retries must be a integer"),
        ({"config": {"StopTimeout": 1 << 70}}, "config.StopTimeout must be a integer"),
        ({"history": [{"empty_layer": "yes"}]}, "history[0].empty_layer must be a boolean"),
        ({"architecture": 1}, "architecture must be a string"),
    ],
)
def test_ill_typed_fields_are_refused(bad: dict[str, object], message: str) -> None:
    with pytest.raises(
        InvalidParameter, match="invalid image config: " + message.replace("[", r"\[").replace("]", r"\]")
    ):
        parse_config(_cfg(**bad))


@pytest.mark.parametrize("raw", [b'{"architecture": 1e999}', b'{"architecture": Infinity}', b'{"os": NaN}'])
def test_non_finite_numbers_are_refused(raw: bytes) -> None:
    with pytest.raises(InvalidParameter):
        parse_config(raw)


def test_a_stored_bad_config_is_repaired_not_fatal() -> None:
    cfg = parse_config(_cfg(config={"Labels": [1], "Env": "x", "Cmd": ["sh"], "User": "1"}), repair=True)
    assert cfg["config"] == {"Cmd": ["sh"], "User": "1"}


def test_a_string_command_is_a_one_element_command() -> None:
    assert parse_config(_cfg(config={"Cmd": "sh", "Entrypoint": "/init"}))["config"] == {
        "Cmd": ["sh"],
        "Entrypoint": ["/init"],
    }


def test_null_is_the_zero_value() -> None:
    assert parse_config(_cfg(config={"Env": None, "Labels": None}))["config"] == {"Env": None, "Labels": None}


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


@given(
    st.dictionaries(st.sampled_from(["Cmd", "Env", "Labels", "ExposedPorts", "Healthcheck", "User"]), _json)
)
def test_repair_always_gives_a_config_that_passes(config: dict[str, object]) -> None:
    try:
        repaired = parse_config(_cfg(config=config), repair=True)
    except InvalidParameter:
        return  # not reachable through the config section: only rootfs errors refuse in repair mode
    again = parse_config(json.dumps(repaired).encode())
    assert again == repaired
