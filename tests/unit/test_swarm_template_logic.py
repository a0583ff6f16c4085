"""Swarm's service, secret and config templates (gorae.swarm.templates): the context swarmkit gives, which
fields expand, the error texts as swarmkit wraps them, and hostile template text (hypothesis)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gorae.swarm.templates import ExpandError, context, expand, expand_container_spec, expand_payload
from gorae.swarm.templates import validate_container_spec as validate

TASK: dict[str, Any] = {
    "ID": "t1d",
    "ServiceID": "s1d",
    "ServiceName": "web",
    "ServiceLabels": {"tier": "front", "a": "b"},
    "Slot": 3,
    "NodeID": "n1d",
    "Spec": {"ContainerSpec": {"Env": ["RAW={{.Node.ID}}", "X=1", "NOVALUE"]}},
}
NODE = {"Hostname": "box", "Platform": {"OS": "linux", "Architecture": "x86_64"}}


def run(text: str, task: dict[str, Any] = TASK, node: dict[str, Any] | None = NODE) -> str:
    return expand(text, context(task, node))


def test_every_field_of_the_context() -> None:
    assert run("{{.Service.ID}} {{.Service.Name}} {{.Service.Labels.tier}} {{.Service.Labels}}") == (
        "s1d web front map[a:b tier:front]"
    )
    assert run("{{.Node.ID}} {{.Node.Hostname}} {{.Node.Platform.OS}} {{.Node.Platform.Architecture}}") == (
        "n1d box linux x86_64"
    )
    assert run("{{.Task.ID}} {{.Task.Name}} {{.Task.Slot}}") == "t1d web.3.t1d 3"
    # structs print as Go prints them
    assert (
        run("{{.Service}}|{{.Node}}|{{.Task}}")
        == "{s1d web map[a:b tier:front]}|{n1d box {x86_64 linux}}|{t1d web.3.t1d 3}"
    )


def test_a_global_task_uses_its_node_for_the_slot_and_a_named_task_its_name() -> None:
    glob = {k: v for k, v in TASK.items() if k != "Slot"}
    assert run("{{.Task.Slot}} {{.Task.Name}}", glob) == "n1d web.n1d.t1d"
    named = dict(TASK, Annotations={"Name": "own"})
    assert run("{{.Task.Name}}", named) == "own"


def test_no_labels_is_a_nil_map_and_no_node_leaves_hostname_and_platform_empty() -> None:
    bare = {k: v for k, v in TASK.items() if k != "ServiceLabels"}
    assert run("[{{.Service.Labels}}]", bare) == "[map[]]"
    assert run("[{{.Node.ID}}|{{.Node.Hostname}}|{{.Node.Platform}}]", node=None) == "[n1d||{ }]"


def test_join_is_swarmkits_and_dockers_cli_functions_are_absent() -> None:
    assert run('{{join "-" .Service.Name .Task.Slot "x"}}') == "web-3-x"
    assert run('{{join ","}}') == ""
    with pytest.raises(ExpandError) as e:
        run("{{join}}")
    assert str(e.value) == (
        'template: expansion:1:2: executing "expansion" at <join>: error calling join: '
        "runtime error: slice bounds out of range [1:0]"
    )
    for docker_only in ("upper", "lower", "json", "split", "title", "pad", "truncate"):
        with pytest.raises(ExpandError) as e:
            run(f"{{{{{docker_only} .Service.Name}}}}")
        assert str(e.value) == f'template: expansion:1: function "{docker_only}" not defined'
    assert run('{{printf "%03d" 7}} {{len .Service.Labels}} {{index .Service.Labels "a"}}') == "007 2 b"


def test_missing_fields_and_keys_are_errors() -> None:
    with pytest.raises(ExpandError) as e:
        run("{{.Foo}}")
    assert str(e.value) == (
        'template: expansion:1:2: executing "expansion" at <.Foo>: can\'t evaluate field Foo in type '
        "*template.Context"
    )
    with pytest.raises(ExpandError) as e:
        run("{{.Task.Labels}}")
    assert "can't evaluate field Labels in type struct { ID string; Name string; Slot string }" in str(
        e.value
    )
    with pytest.raises(ExpandError) as e:
        run("{{.Service.Labels.nope}}")
    assert str(e.value).endswith('at <.Service.Labels.nope>: map has no entry for key "nope"')


def test_the_container_spec_fields_swarmkit_expands_and_only_those() -> None:
    container = {
        "Image": "{{.Service.Name}}",
        "Env": ["A={{.Task.Slot}}", "B", "C=x={{.Node.Hostname}}"],
        "Hostname": "{{.Node.Hostname}}-{{.Task.Slot}}",
        "Dir": "/{{.Task.Slot}}",
        "Labels": {"l": "{{.Task.Slot}}"},
        "Args": ["{{.Task.Slot}}"],
        "Mounts": [
            {
                "Type": "volume",
                "Source": "data-{{.Task.Slot}}",
                "Target": "/d/{{.Service.Name}}",
                "VolumeOptions": {
                    "Labels": {"node": "{{.Node.ID}}"},
                    "DriverConfig": {"Name": "local", "Options": {"o": "{{.Task.ID}}"}},
                },
            },
            {"Type": "bind", "Source": "/srv/{{.Node.Hostname}}", "Target": "/b"},
        ],
    }
    out = expand_container_spec(container, TASK, NODE)
    assert out["Env"] == ["A=3", "B", "C=x=box"]
    assert out["Hostname"] == "box-3"
    assert out["Mounts"][0]["Source"] == "data-3" and out["Mounts"][0]["Target"] == "/d/web"
    assert out["Mounts"][0]["VolumeOptions"]["Labels"] == {"node": "n1d"}
    assert out["Mounts"][0]["VolumeOptions"]["DriverConfig"] == {"Name": "local", "Options": {"o": "t1d"}}
    assert out["Mounts"][1]["Source"] == "/srv/box"
    # not templated in swarmkit: left as written
    for key in ("Image", "Dir", "Labels", "Args"):
        assert out[key] == container[key]
    assert container["Env"][0] == "A={{.Task.Slot}}"  # the input is not changed


@pytest.mark.parametrize(
    ("container", "message"),
    [
        (
            {"Env": ["A={{.Nope}}"]},
            'expanding env failed: expanding env "A={{.Nope}}": template: expansion:1:2: executing "expansion" '
            "at <.Nope>: can't evaluate field Nope in type *template.Context",
        ),
        (
            {"Mounts": [{"Source": "{{", "Target": "/x"}]},
            'expanding mounts failed: expanding mount source "{{": template: expansion:1: unclosed action',
        ),
        (
            {"Mounts": [{"Source": "s", "Target": "{{bad}}"}]},
            'expanding mounts failed: expanding mount target "{{bad}}": template: expansion:1: function "bad" '
            "not defined",
        ),
        (
            {"Mounts": [{"Source": "s", "Target": "/t", "VolumeOptions": {"Labels": {"k": "{{.X}}"}}}]},
            'expanding mounts failed: expanding volume labels: expanding map entry "k"="{{.X}}": template: '
            'expansion:1:2: executing "expansion" at <.X>: can\'t evaluate field X in type *template.Context',
        ),
        (
            {"Mounts": [{"Target": "/t", "VolumeOptions": {"DriverConfig": {"Options": {"o": "{{end}}"}}}}]},
            'expanding mounts failed: expanding volume driver config: expanding map entry "o"="{{end}}": '
            "template: expansion:1: unexpected {{end}}",
        ),
        (
            {"Hostname": "{{.Node.Hostname"},
            "expanding hostname failed: template: expansion:1: unclosed action",
        ),
        (  # Env is expanded before Hostname: its error is the one reported
            {"Hostname": "{{", "Env": ["E={{.E}}"]},
            'expanding env failed: expanding env "E={{.E}}": template: expansion:1:2: executing "expansion" at '
            "<.E>: can't evaluate field E in type *template.Context",
        ),
    ],
)
def test_errors_are_wrapped_as_swarmkit_wraps_them(container: dict[str, Any], message: str) -> None:
    with pytest.raises(ExpandError) as e:
        expand_container_spec(container, TASK, NODE)
    assert str(e.value) == message


def test_the_managers_check_uses_a_stand_in_task() -> None:
    validate({"Env": ["A={{.Node.Hostname}}/{{.Task.Slot}}"], "Hostname": "{{.Service.Name}}"})
    # the stand-in has no service labels: a key of them is refused at create, as by dockerd
    with pytest.raises(ExpandError) as e:
        validate({"Env": ["A={{.Service.Labels.tier}}"]})
    assert str(e.value).endswith('map has no entry for key "tier"')
    validate({"Env": ['A={{index .Service.Labels "tier"}}']})  # index of a missing key is the zero value


def _getter(found: dict[str, str], kind: str) -> Any:
    def get(target: str) -> str:
        if target in found:
            return found[target]
        raise ExpandError(f"{kind} target {target} not found")

    return get


def test_payloads_have_secret_config_and_env_but_no_node_description() -> None:
    secrets = _getter({"pw": "hunter2"}, "secret")
    configs = _getter({"/etc/app.conf": "port=1"}, "config")
    text = (
        b'user={{env "X"}} raw={{env "RAW"}} none=[{{env "NOVALUE"}}{{env "ZZ"}}] pw={{secret "pw"}} '
        b'conf={{config "/etc/app.conf"}} node={{.Node.ID}}[{{.Node.Hostname}}] svc={{.Service.Name}}'
    )
    assert expand_payload(text, TASK, secrets, configs) == (
        b"user=1 raw={{.Node.ID}} none=[] pw=hunter2 conf=port=1 node=n1d[] svc=web"
    )
    with pytest.raises(ExpandError) as e:
        expand_payload(b'{{secret "other"}}', TASK, secrets, configs)
    assert str(e.value) == (
        'template: expansion:1:2: executing "expansion" at <secret "other">: error calling secret: '
        "secret target other not found"
    )
    with pytest.raises(ExpandError) as e:
        expand_payload(b"{{.Foo}}", TASK, secrets, configs)
    assert str(e.value).endswith("can't evaluate field Foo in type *template.PayloadContext")
    # bytes that are not UTF-8 pass through untouched
    assert expand_payload(b"\xff\xfe{{.Task.Slot}}\x80", TASK, secrets, configs) == b"\xff\xfe3\x80"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60) | st.text(alphabet="{}.$ ()|\"'-=abNodeTaskSlotifrangejoin", max_size=60))
def test_hostile_text_expands_or_fails_with_an_expand_error(text: str) -> None:
    try:
        out = run(text)
    except ExpandError as e:
        assert str(e).startswith("template: expansion:")
    else:
        assert isinstance(out, str)
        if "{{" not in text:
            assert out == text
    try:
        expand_container_spec(
            {"Env": [f"V={text}"], "Hostname": text, "Mounts": [{"Source": text}]}, TASK, NODE
        )
    except ExpandError as e:
        assert str(e).startswith(
            ("expanding env failed: ", "expanding mounts failed: ", "expanding hostname failed: ")
        )
