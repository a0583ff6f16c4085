"""Unit tests of the Go text/template engine (semantics checked against Go / docker CLI 28)."""

from __future__ import annotations

import pytest

from gorae.errors import InvalidParameter
from gorae.gotemplate import (
    HEADER_FUNCS,
    Limits,
    Template,
    TemplateError,
    TemplateExecError,
    TemplateParseError,
    render,
    sprint,
    sprintf,
)

DATA = {
    "Name": "/web",
    "State": {"Status": "running", "Pid": 42, "Running": True, "Health": None},
    "Config": {"Labels": {"b": "2", "a": "1"}, "Cmd": ["sh", "-c", "x"], "Env": None},
    "Size": 1.5,
}


@pytest.mark.parametrize(
    ("tmpl", "want"),
    [
        ("{{.Name}}", "/web"),
        ("{{.State.Status}} {{.State.Pid}}", "running 42"),
        ("{{.Config.Labels}}", "map[a:1 b:2]"),
        ("{{.Config.Cmd}}", "[sh -c x]"),
        ("{{.Config.Env}}|{{.Nope}}|{{.Nope.Deeper}}", "<no value>|<no value>|<no value>"),
        ('{{print .Config.Env}} {{printf "%v" .State.Health}}', "<nil> <nil>"),
        ("{{.Size}} {{1e6}} {{1e3}} {{0.00001}}", "1.5 1e+06 1000 1e-05"),
        ("{{true}} {{false}} {{'a'}} {{0x10}} {{\"\\u00e9\\t\"}}", "true false 97 16 é\t"),
        ("{{range $k, $v := .Config.Labels}}{{$k}}{{$v}}{{end}}", "a1b2"),
        ("{{range $i, $c := .Config.Cmd}}{{$i}}{{$c}}{{end}}", "0sh1-c2x"),
        ("{{range .Config.Env}}x{{else}}empty{{end}}", "empty"),
        ("{{range 3}}{{.}}{{end}}", "012"),
        ('{{range .Config.Cmd}}{{if eq . "-c"}}{{break}}{{end}}{{.}}{{end}}', "sh"),
        ('{{range .Config.Cmd}}{{if eq . "-c"}}{{continue}}{{end}}{{.}}{{end}}', "shx"),
        ("{{if .State.Running}}up{{else if .State.Dead}}dead{{else}}down{{end}}", "up"),
        ("{{with .State}}{{.Status}}{{end}}{{with .Nope}}x{{else}}y{{end}}", "runningy"),
        ("{{with .Nope}}a{{else with .Name}}{{.}}{{end}}", "/web"),
        ("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", "2"),
        ("{{with .State}}{{$.Name}}{{end}}", "/web"),
        ('{{define "t"}}<{{.}}>{{end}}{{template "t" .Name}}{{block "b" 1}}[{{.}}]{{end}}', "</web>[1]"),
        ("{{- /* c */ -}}  a  {{- 1 -}}  b  {{2 -}} \n c", "a1b  2c"),
        ('{{.Name | printf "%s!"}} {{(len .Config.Cmd) | printf "%03d"}}', "/web! 003"),
        ('{{and 1 0 2}} {{or 0 "" 3}} {{not 0}} {{and .Nope.X 1}}', "0 3 true <no value>"),
        (
            '{{eq 1 2 1}} {{ne "a" "b"}} {{lt 1 2}} {{le 2 2}} {{gt 2.5 1.5}} {{ge "a" "b"}}',
            "true true true true true false",
        ),
        ('{{len .Config.Cmd}} {{len .Name}} {{len "é"}} {{len .Config.Env}}', "3 4 2 0"),
        ('{{index .Config.Cmd 1}} {{index .Config.Labels "a"}} {{index "ab" 1}}', "-c 1 98"),
        ("{{slice .Config.Cmd 1}} {{slice .Name 1 3}}", "[-c x] we"),
        (
            '{{html "<a&\'>"}} {{js "a\'<"}} {{urlquery "a b/é"}}',
            "&lt;a&amp;&#39;&gt; a\\'\\u003C a+b%2F%C3%A9",
        ),
        ('{{print 1 2 "a" 3}}|{{println 1 "x"}}', "1 2a3|1 x\n"),
        (
            '{{json .Config.Labels}} {{json .Config.Cmd}} {{json "<&>"}} {{json 1.5}}',
            '{"a":"1","b":"2"} ["sh","-c","x"] "<&>" 1.5',
        ),
        ("{{json .State}}", '{"Status":"running","Pid":42,"Running":true,"Health":null}'),
        (
            '{{join .Config.Cmd ","}} {{split "a,b" ","}} {{upper "ab"}} {{lower "AB"}} {{title "ab cd"}}',
            "sh,-c,x [a b] AB ab Ab Cd",
        ),
        ('[{{pad "x" 1 2}}][{{pad "" 1 2}}] {{truncate "hello" 2}} {{truncate "hi" 9}}', "[ x  ][] he hi"),
    ],
)
def test_render(tmpl: str, want: str) -> None:
    assert render(tmpl, DATA) == want


@pytest.mark.parametrize(
    ("fmt", "args", "want"),
    [
        ("%s|%d|%v|%t", ("a", 3, [1, "b"], True), "a|3|[1 b]|true"),
        (
            "%5.2f|%-6s|%6s|%05d|%+d|%x|%X|%o|%b|%c|%q|%U",
            (3.14159, "ab", "ab", -42, 5, 255, 255, 8, 5, 65, 'a"', 0x41),
            ' 3.14|ab    |    ab|-0042|+5|ff|FF|10|101|A|"a\\""|U+0041',
        ),
        (
            "%e|%g|%.3g|%v|%v|%v",
            (1234.5678, 1e-7, 1234.5678, 1e21, 100000.0, 1234567.0),
            "1.234568e+03|1e-07|1.23e+03|1e+21|100000|1.234567e+06",
        ),
        ("%d %s", (), "%!d(MISSING) %!s(MISSING)"),
        ("%d", ("x",), "%!d(string=x)"),
        ("%d", (1, "x"), "1%!(EXTRA string=x)"),
        ("%", (), "%!(NOVERB)"),
        ("%[2]d %[1]d", (1, 2), "2 1"),
        ("%*d|%-*d|%.*f", (4, 1, 4, 2, 1, 3.14159), "   1|2   |3.1"),
        ("%v %s", ({"b": 1, "a": None}, None), "map[a:<nil> b:1] %!s(<nil>)"),
        ("%x % x %#x", ("hi", "hi", 255), "6869 68 69 0xff"),
    ],
)
def test_sprintf_like_go(fmt: str, args: tuple[object, ...], want: str) -> None:
    assert sprintf(fmt, *args) == want


def test_sprint_spacing_like_go() -> None:
    assert sprint("a", 1, 2, "b", None, 3.5) == "a1 2b<nil> 3.5"


@pytest.mark.parametrize(
    ("tmpl", "msg"),
    [
        ("{{.A", "template: :1: unclosed action"),
        ("{{.A}", "template: :1: bad character U+007D '}'"),
        ("{{)}}", "template: :1: unexpected right paren"),
        ("{{if .A}}", "template: :1: unexpected EOF"),
        ("{{end}}", "template: :1: unexpected {{end}}"),
        ("{{foo}}", 'template: :1: function "foo" not defined'),
        ("{{$x}}", 'template: :1: undefined variable "$x"'),
        ("{{1 | 2}}", "template: :1: non executable command in pipeline stage 2"),
        ("{{break}}", "template: :1: {{break}} outside {{range}}"),
        ("a\n{{.A\n\n", "template: :4: unclosed action started at :2"),
        (
            '{{define "a"}}x{{end}}{{define "a"}}y{{end}}',
            'template: :1: template: multiple definition of template "a"',
        ),
        ("{{/* x", "template: :1: unclosed comment"),
        ('{{"\\z"}}', "template: :1: invalid syntax"),
        ("{{99999999999999999999}}", 'template: :1: integer overflow: "99999999999999999999"'),
        ("{{3x}}", 'template: :1: bad number syntax: "3x"'),
        ("{{" + "(" * 200 + "1" + ")" * 200 + "}}", "template: :1: max expression depth exceeded"),
    ],
)
def test_parse_errors_like_go(tmpl: str, msg: str) -> None:
    with pytest.raises(TemplateParseError) as info:
        Template(tmpl)
    assert str(info.value) == msg


@pytest.mark.parametrize(
    ("tmpl", "msg", "missingkey"),
    [
        ("{{.Nope}}", 'template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope"', "error"),
        ("{{.Nope}}", 'template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope"', "inspect"),
        (
            "{{.Config.Cmd.X}}",
            'template: :1:9: executing "" at <.Config.Cmd.X>: can\'t evaluate field X in type interface {}',
            "default",
        ),
        (
            "{{with .Name}}{{.X}}{{end}}",
            'template: :1:16: executing "" at <.X>: can\'t evaluate field X in type string',
            "default",
        ),
        (
            "{{index .Config.Cmd 5}}",
            'template: :1:2: executing "" at <index .Config.Cmd 5>: error calling index: index out of range: 5',
            "default",
        ),
        (
            "{{len 3}}",
            'template: :1:2: executing "" at <len 3>: error calling len: len of type int',
            "default",
        ),
        ("{{upper 3}}", 'template: :1:8: executing "" at <3>: expected string; found 3', "default"),
        (
            "{{upper .State.Pid}}",
            'template: :1:14: executing "" at <.State.Pid>: wrong type for value; expected string; got int',
            "default",
        ),
        ("{{nil}}", 'template: :1:2: executing "" at <nil>: nil is not a command', "default"),
        (
            '{{template "x"}}',
            'template: :1:11: executing "" at <{{template "x"}}>: template "x" not defined',
            "default",
        ),
        (
            '{{eq 1 "a"}}',
            'template: :1:2: executing "" at <eq 1 "a">: error calling eq: incompatible types for comparison',
            "default",
        ),
        (
            "{{range .Name}}{{end}}",
            'template: :1:8: executing "" at <.Name>: range can\'t iterate over /web',
            "default",
        ),
    ],
)
def test_exec_errors_like_go(tmpl: str, msg: str, missingkey: str) -> None:
    with pytest.raises(TemplateExecError) as info:
        render(tmpl, DATA, missingkey=missingkey)
    assert str(info.value) == msg


def test_inspect_mode_errors_only_for_struct_like_dicts() -> None:
    assert render("{{.Config.Labels.zzz}}", DATA, missingkey="inspect") == "<no value>"
    with pytest.raises(TemplateError):
        render("{{.State.Nope}}", DATA, missingkey="inspect")


def test_template_error_is_invalid_parameter() -> None:
    assert issubclass(TemplateError, InvalidParameter)


def test_header_funcs_keep_header_text() -> None:
    t = Template("{{upper .ID}}\t{{json .Labels}}\t{{truncate .Names 2}}\t{{pad .State 1 1}}")
    header = t.execute(
        {"ID": "CONTAINER ID", "Labels": "LABELS", "Names": "NAMES", "State": "STATE"}, funcs=HEADER_FUNCS
    )
    assert header == "CONTAINER ID\tLABELS\tNAMES\t STATE "


class _Ctx:
    def __init__(self) -> None:
        self.Plain = "field"

    def ID(self) -> str:
        return "abc"

    def Label(self, name: str) -> str:
        return {"a": "1"}.get(name, "")


def test_struct_like_objects_have_fields_and_methods() -> None:
    assert render('{{.ID}} {{.Plain}} {{.Label "a"}}', _Ctx()) == "abc field 1"
    with pytest.raises(TemplateExecError, match="wrong number of args for Label: want 1 got 0"):
        render("{{.Label}}", _Ctx())


def test_custom_funcs_and_execute_template() -> None:
    t = Template('{{define "x"}}{{double .}}{{end}}', funcs={"double": lambda v: v * 2})
    assert t.execute_template("x", 21) == "42"
    assert t.defined_templates() == ["", "x"]


def test_limits_stop_runaway_templates() -> None:
    with pytest.raises(TemplateExecError, match="exceeded maximum template depth"):
        render('{{define "a"}}{{template "a"}}{{end}}{{template "a"}}', None)
    with pytest.raises(TemplateExecError, match="steps"):
        Template("{{range 100000000}}{{end}}", limits=lambda: Limits(max_steps=10_000)).execute(None)
    with pytest.raises(TemplateExecError, match="output exceeds"):
        Template("{{range 1000}}xxxxxxxxxx{{end}}", limits=lambda: Limits(max_output=100)).execute(None)
    with pytest.raises(TemplateExecError, match="error calling pad"):
        render('{{pad "x" 999999999 0}}', None)
