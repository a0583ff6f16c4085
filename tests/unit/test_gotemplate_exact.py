"""Exact tests of the Go text/template engine written for its mutation run (docs/mutation.md, issue 16): each
pins a behaviour of Go's text/template / fmt (docker CLI 28) that a surviving mutant changed."""

from __future__ import annotations

import pytest

from gorae.gotemplate import Limits, Template, TemplateExecError, TemplateParseError, render
from gorae.gotemplate.funcs import GoFunc
from gorae.gotemplate.values import GoNil, GoStruct, GoUint8, NilStringMap, StringMap


def _err(tmpl: str, data: object, **options: object) -> str:
    with pytest.raises(TemplateExecError) as info:
        render(tmpl, data, **options)
    return str(info.value)


# --- values: Go types, truth, the missing value ---------------------------------------------------


@pytest.mark.parametrize(
    ("tmpl", "data", "want"),
    [
        ('{{printf "%T" (index "ab" 1)}}', None, "uint8"),
        ('{{printf "%T" (split "a" ",")}}', None, "[]string"),
        ('{{printf "%T|%T|%T|%T|%T" true 1 1.5 1i "s"}}', None, "bool|int|float64|complex128|string"),
        ('{{printf "%T|%T" .M .L}}', {"M": {"a": 1}, "L": [1]}, "map[string]interface {}|[]interface {}"),
        ('{{printf "%T" .F}}', {"F": lambda: None}, "func()"),
    ],
)
def test_go_type_names(tmpl: str, data: object, want: str) -> None:
    assert render(tmpl, data) == want


@pytest.mark.parametrize(
    ("field", "value", "typ"),
    [
        ("B", True, "bool"),
        ("F", 1.5, "float64"),
        ("C", 1j, "complex128"),
        ("M", {"a": 1}, "map[string]interface {}"),
        ("Fn", lambda: None, "func()"),
        ("U", None, ""),
    ],
)
def test_wrong_type_for_a_string_argument_names_the_go_type(field: str, value: object, typ: str) -> None:
    msg = _err("{{upper ." + field + "}}", {field: value})
    if value is None:
        assert msg == f'template: :1:8: executing "" at <.{field}>: invalid value; expected string'
    else:
        assert msg == (
            f'template: :1:8: executing "" at <.{field}>: wrong type for value; expected string; got {typ}'
        )


def test_wrong_type_for_uint8_and_string_slice() -> None:
    # Go reports the last node it visited: the pipeline's last argument
    assert _err('{{upper (index "ab" 1)}}', None) == (
        'template: :1:20: executing "" at <1>: wrong type for value; expected string; got uint8'
    )
    assert _err('{{upper (split "a" ",")}}', None) == (
        'template: :1:19: executing "" at <",">: wrong type for value; expected string; got []string'
    )


def test_a_nil_value_piped_is_passed_not_missing() -> None:
    # Go: a nil interface value from a map is a value (printf sees <nil>); only "no value at all" is missing
    assert render('{{.E | printf "%v"}}', {"E": None}) == "<nil>"
    assert render('{{.E | printf "%v|%v" 1}}', {"E": None}) == "1|<nil>"


@pytest.mark.parametrize(
    ("value", "want"),
    [
        ({}, "n"),
        ({"a": 1}, "y"),
        (0.0, "n"),
        (0.5, "y"),
        (0j, "n"),
        (1j, "y"),
        (object(), "y"),  # a struct is always true
    ],
)
def test_truth_of_each_kind(value: object, want: str) -> None:
    assert render("{{if .V}}y{{else}}n{{end}}", {"V": value}) == want


def test_truth_of_a_uint8() -> None:
    assert (
        render('{{if (index "\\x00a" 0)}}y{{else}}n{{end}}{{if (index "\\x00a" 1)}}y{{else}}n{{end}}', None)
        == "ny"
    )


def test_string_map_missing_key_is_the_zero_string() -> None:
    # docker's typed data: index of a map[string]string gives "" for a missing key, not <no value>
    assert render('[{{index . "zz"}}]', StringMap({"a": "1"})) == "[]"
    assert render('[{{index . "zz"}}]', NilStringMap()) == "[]"
    assert render('[{{index . "zz"}}]', {"a": "1"}) == "[<no value>]"


def test_typed_struct_and_nil_pointer_errors_name_the_type() -> None:
    assert _err("{{.X}}", GoStruct("*container.State", {"A": 1})) == (
        'template: :1:2: executing "" at <.X>: can\'t evaluate field X in type *container.State'
    )
    assert _err("{{.X}}", GoNil("*container.Health")) == (
        'template: :1:2: executing "" at <.X>: nil pointer evaluating *container.Health.X'
    )
    assert _err("{{.A 1}}", GoStruct("*T", {"A": 1})) == (
        'template: :1:2: executing "" at <.A>: A has arguments but cannot be invoked as function'
    )


def test_inspect_missingkey_tells_struct_from_map() -> None:
    # struct-like (exported names, `A_b` too) errors; a map (any other key, or empty) prints <no value>
    assert _err("{{.Nope}}", {"A_b": 1}, missingkey="inspect") == (
        'template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope"'
    )
    assert render("{{.Nope}}", {}, missingkey="inspect") == "<no value>"
    assert render("{{.Nope}}", {"a_b": 1}, missingkey="inspect") == "<no value>"
    assert render("{{.Nope}}", {}, missingkey="invalid") == "<no value>"


def test_a_func_value_cannot_be_printed() -> None:
    assert _err("{{.F}}", {"F": lambda: None}) == (
        'template: :1:2: executing "" at <{{.F}}>: can\'t print {{.F}} of type func()'
    )


# --- exec --------------------------------------------------------------------------------------------


def test_default_depth_limit() -> None:
    assert _err('{{define "a"}}{{template "a"}}{{end}}{{template "a"}}', None) == (
        'template: :1:25: executing "a" at <{{template "a"}}>: exceeded maximum template depth (100)'
    )


def test_exec_error_column_is_counted_on_its_line() -> None:
    assert _err("ab\n{{.A}}{{.Nope}}", {"A": 1}, missingkey="error") == (
        'template: :2:8: executing "" at <.Nope>: map has no entry for key "Nope"'
    )
    # bytes, not characters, as Go
    assert _err("é{{.Nope}}", {}, missingkey="error") == (
        'template: :1:4: executing "" at <.Nope>: map has no entry for key "Nope"'
    )


def test_output_limit_is_inclusive() -> None:
    t = Template("{{range 10}}xxxxxxxxxx{{end}}", limits=lambda: Limits(max_output=100))
    assert t.execute(None) == "x" * 100


def test_range_variables() -> None:
    data = ["a", "b"]
    assert render("{{range $v := .}}{{$v}}{{len $}}{{end}}", data) == "a2b2"
    assert render("{{range $i, $v := .}}{{$i}}{{$v}}{{len $}}{{end}}", data) == "0a21b2"
    # the assignment forms set the outer variables (Go 1.22)
    assert render("{{$v := 0}}{{range $v = .}}{{end}}{{$v}}", data) == "b"
    assert render("{{$i := 9}}{{$v := 0}}{{range $i, $v = .}}{{end}}{{$i}}{{$v}}", data) == "1b"


def test_hex_constants_are_ints() -> None:
    assert render('{{printf "%d %d %v" 0x1E 0X1e 0x1p4}}', None) == "30 30 16"


@pytest.mark.parametrize(
    ("tmpl", "data", "msg"),
    [
        ('{{join .L ","}}', {"L": [1, 2]}, "wrong type for value; expected []string; got []interface {}"),
        ('{{join .S ","}}', {"S": "abc"}, "wrong type for value; expected []string; got string"),
    ],
)
def test_string_slice_arguments(tmpl: str, data: object, msg: str) -> None:
    assert _err(tmpl, data).endswith(msg)


def test_int_and_bool_arguments_from_data() -> None:
    assert render('[{{pad "x" .N .N}}]', {"N": 1}) == "[ x ]"
    assert render('{{join .L "-"}}', {"L": ["a", "b"]}) == "a-b"
    f = GoFunc("f", lambda b: "yes" if b else "no", ("bool",))
    assert Template("{{f .B}} {{f false}}", funcs={"f": f}).execute({"B": True}) == "yes no"


# --- funcs: comparison -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tmpl", "want"),
    [
        ("{{eq 1 nil}} {{eq nil 1}} {{eq .Nope 1}} {{eq nil nil}}", "false false false true"),
        ('{{eq 97 (index "a" 0)}} {{eq (index "a" 0) 97}} {{eq 98 (index "a" 0)}}', "true true false"),
        ("{{eq nil .M}} {{eq .M nil}}", "false false"),
        ("{{eq .P .P}} {{eq .O .O}}", "true true"),
    ],
)
def test_eq_like_go(tmpl: str, want: str) -> None:
    obj = object()
    assert render(tmpl, {"M": {"a": 1}, "P": GoNil("*T"), "O": obj}) == want


def test_json_of_a_typed_struct_keeps_its_field_order() -> None:
    # a Go struct encodes its fields in declaration order (so does a JSON object of exported names, decoded
    # from one); a map sorts its keys
    assert render("{{json .}}", GoStruct("*T", {"B": 1, "A": 2})) == '{"B":1,"A":2}'
    assert render("{{json .}}", {"B": 1, "A": 2}) == '{"B":1,"A":2}'
    assert render("{{json .}}", {"b": 1, "a": 2}) == '{"a":2,"b":1}'


class _Obj:
    def __init__(self) -> None:
        self.Plain = "field"
        self.lower = 1

    def Join(self, *parts: object) -> str:
        return "+".join(str(p) for p in parts)


def test_a_variadic_method_takes_any_arguments() -> None:
    assert render('{{.Join 1 "a" 1.5}}', _Obj()) == "1+a+1.5"


def test_executing_a_name_never_parsed() -> None:
    from gorae.gotemplate.exec import execute

    with pytest.raises(TemplateExecError) as info:
        execute({}, "x", "x", "", None, {})
    assert str(info.value) == 'template: x: "x" is an incomplete or empty template'


def test_exec_error_column_after_a_replaced_character() -> None:
    # a lone surrogate stands for what Go holds as U+FFFD (3 bytes), e.g. a "\ud800" JSON escape
    assert _err("\ud800{{.Nope}}", {}, missingkey="error") == (
        'template: :1:5: executing "" at <.Nope>: map has no entry for key "Nope"'
    )


# --- funcs ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tmpl", "want"),
    [
        ('{{lt 96 (index "a" 0)}} {{lt 97 (index "a" 0)}} {{lt (index "a" 0) 98}}', "true false true"),
        ('{{le 97 (index "a" 0)}} {{gt 97 (index "a" 0)}} {{ge 97 (index "a" 0)}}', "true false true"),
    ],
)
def test_lt_across_int_and_uint(tmpl: str, want: str) -> None:
    assert render(tmpl, None) == want


@pytest.mark.parametrize(
    ("tmpl", "msg"),
    [
        ("{{lt 1 .M}}", "invalid type for comparison"),
        ("{{lt .M 1}}", "invalid type for comparison"),
        ("{{lt 1i 2i}}", "invalid type for comparison"),
        ("{{lt true false}}", "invalid type for comparison"),
        ('{{lt 1 "a"}}', "incompatible types for comparison"),
        ("{{index .L 0 0}}", "index of nil pointer"),
        ("{{index .L 1}}", "index out of range: 1"),
        ('{{index "a" 1}}', "index out of range: 1"),
        ("{{index .S 3}}", "index out of range: 3"),
        ("{{slice .Nope}}", "slice of untyped nil"),
        ('{{slice "abc" 2 1}}', "invalid slice index: 2 > 1"),
        ("{{slice .L2 0 2 1}}", "invalid slice index: 2 > 1"),
        ('{{pad "x" 99999999 0}}', "output too large"),
        ("{{1 | call}}", "non-function <int Value> of type int"),
        ('{{"f" | call}}', "non-function f of type string"),
    ],
)
def test_function_errors_like_go(tmpl: str, msg: str) -> None:
    data = {"M": {"a": 1}, "L": [None], "S": "\ud800", "L2": [1, 2, 3]}
    name = tmpl.split()[0].lstrip("{") if "|" not in tmpl else "call"
    assert _err(tmpl, data).endswith(f": error calling {name}: {msg}")


def test_three_index_slice() -> None:
    assert render("{{slice .L 1 2 3}} {{slice .L 0 1 1}}", {"L": [1, 2, 3]}) == "[2] [1]"


def test_byte_slicing_that_splits_a_character() -> None:
    # Go keeps the partial bytes (invalid UTF-8); the engine holds text, so only "no error" is Go's
    assert render('{{if (slice "é" 0 1)}}y{{end}}{{if (truncate "é" 1)}}y{{end}}', None) == "yy"
    # a lone surrogate (what Go holds as U+FFFD, 3 bytes) is measured and escaped without error
    assert render("{{if (truncate .S 2)}}y{{end}}{{if (urlquery .S)}}y{{end}}", {"S": "\ud800"}) == "yy"


def test_json_of_what_go_cannot_encode_prints_nothing() -> None:
    # docker's `json` ignores the encoder's error: nothing is printed
    data = {"N": float("nan"), "F": lambda: None}
    assert render("[{{json .N}}][{{json 1i}}][{{json .F}}]", data) == "[][][]"


def test_json_of_uint8_and_objects() -> None:
    assert render('{{json (index "a" 0)}}', None) == "97"
    assert render("{{json .}}", _Obj()) == '{"Plain":"field"}'


def test_title_separators_beyond_ascii() -> None:
    # strings.Title: a non-ASCII space separates words; letters and digits do not
    assert render('{{title "a\u00a0b é\u0661c"}}', None) == "A\u00a0B É\u0661c"


@pytest.mark.parametrize("fn", ["split", "join", "title", "lower", "upper", "json", "truncate"])
def test_header_funcs_return_the_header_text(fn: str) -> None:
    from gorae.gotemplate import HEADER_FUNCS

    args = {"split": ' ","', "join": ' ","', "truncate": " 2"}.get(fn, "")
    t = Template("{{" + fn + " .H" + args + "}}")
    assert t.execute({"H": "NAMES"}, funcs=HEADER_FUNCS) == "NAMES"


# --- parser ---------------------------------------------------------------------------------------------


def test_expression_depth_limit() -> None:
    Template("{{" + "(" * 100 + "1" + ")" * 100 + "}}")
    with pytest.raises(TemplateParseError) as info:
        Template("{{" + "(" * 101 + "1" + ")" * 101 + "}}")
    assert str(info.value) == "template: :1: max expression depth exceeded"


def test_lexer_error_after_an_action_names_no_action() -> None:
    for text in ("{{1}}\n{{/* x", "{{1\n}}\n{{/* x"):
        with pytest.raises(TemplateParseError) as info:
            Template(text)
        assert str(info.value) == f"template: :{text.count(chr(10)) + 1}: unclosed comment"


# --- gojson: encoding/json's output -------------------------------------------------------------------


def test_json_floats_like_go() -> None:
    from gorae.gotemplate.gojson import marshal

    values = [0.0, -0.0, 1.0, 1.5, -1.5, 0.5, 12.0, 1e20, 1e21, 1.25e21, -1e21, 1e100, 1e-6, 1.5e-6, 1e-7]
    values += [1.25e-7, 1e-10, 123456789.0, 0.000001234]
    assert marshal(values) == (
        "[0,-0,1,1.5,-1.5,0.5,12,100000000000000000000,1e+21,1.25e+21,-1e+21,1e+100,0.000001,0.0000015,1e-7,"
        "1.25e-7,1e-10,123456789,0.000001234]"
    )


def test_json_strings_like_go() -> None:
    from gorae.gotemplate.gojson import marshal

    s = '"\\\n\r\t\b\f\x01\x1f\u2028\u2029é\ud800\udfff\ue000<>&'
    assert marshal(s) == '"\\"\\\\\\n\\r\\t\\b\\f\\u0001\\u001f\\u2028\\u2029é\\ufffd\\ufffd\ue000<>&"'
    assert marshal({"<k>": "<a&b>"}, html=True) == '{"\\u003ck\\u003e":"\\u003ca\\u0026b\\u003e"}'


@pytest.mark.parametrize(
    ("value", "msg"),
    [
        (float("nan"), "json: unsupported value: NaN"),
        (float("inf"), "json: unsupported value: +Inf"),
        (float("-inf"), "json: unsupported value: -Inf"),
        (1j, "json: unsupported type: complex128"),
        (len, "json: unsupported type: func()"),
    ],
)
def test_json_errors_like_go(value: object, msg: str) -> None:
    from gorae.gotemplate.gojson import JSONError, marshal

    with pytest.raises(JSONError) as info:
        marshal([value])
    assert str(info.value) == msg


@pytest.mark.parametrize(
    ("text", "msg"),
    [
        ("{{range .}}{{end}}{{break}}", "template: :1: {{break}} outside {{range}}"),
        ("{{range .}}{{end}}{{continue}}", "template: :1: {{continue}} outside {{range}}"),
        ('{{block "b" 1}}x{{else}}y{{end}}', "template: :1: unexpected {{else}} in block clause"),
    ],
)
def test_parse_errors_after_a_block(text: str, msg: str) -> None:
    with pytest.raises(TemplateParseError) as info:
        Template(text)
    assert str(info.value) == msg


def test_break_after_a_nested_range() -> None:
    t = Template("{{range .}}{{range .}}{{end}}{{if eq (len .) 1}}{{break}}{{end}}{{len .}}{{end}}")
    assert t.execute([[1, 2], [3], [4, 5]]) == "2"


@pytest.mark.parametrize("opener", ["{{if 1}}{{end}}", "{{range 1}}{{end}}", '{{block "b" 1}}{{end}}'])
def test_depth_limit_is_the_same_after_a_control_block(opener: str) -> None:
    # each control structure gives back the depth it took
    Template(opener * 3 + "{{" + "(" * 100 + "1" + ")" * 100 + "}}")
    with pytest.raises(TemplateParseError, match="max expression depth exceeded"):
        Template(opener * 3 + "{{" + "(" * 101 + "1" + ")" * 101 + "}}")


# --- nodes: Go's Node.String() and positions -------------------------------------------------------------


def test_parse_tree_prints_back_like_go() -> None:
    text = (
        "a{{$x := 1}}{{$x = 2}}{{range $i, $e := .L}}{{$e}}{{break}}{{continue}}{{else}}e{{end}}"
        "{{range $v = .L}}{{end}}{{if .A}}1{{else if .B}}2{{else}}3{{end}}{{with .C}}c{{else with .D}}d{{end}}"
        '{{template "t"}}{{template "t" .}}{{(.A).B}} {{.A.B "s" `r` 1.5 \'c\' true false nil}} {{$x.F}}'
        '{{print (len .) | printf "%d"}}{{- /* c */ -}} {{$}}{{define "t"}}T{{end}}{{block "b" .X}}B{{end}}'
    )
    t = Template(text)
    assert str(t.trees[""].root) == (
        "a{{$x := 1}}{{$x = 2}}{{range $i, $e := .L}}{{$e}}{{break}}{{continue}}{{else}}e{{end}}"
        "{{range $v = .L}}{{end}}{{if .A}}1{{else}}{{if .B}}2{{else}}3{{end}}{{end}}"
        "{{with .C}}c{{else}}{{with .D}}d{{end}}{{end}}"
        '{{template "t"}}{{template "t" .}}{{(.A).B}} {{.A.B "s" `r` 1.5 \'c\' true false nil}} {{$x.F}}'
        '{{print (len .) | printf "%d"}}{{$}}{{template "b" .X}}'
    )
    assert str(t.trees["t"].root) == "T"
    assert str(t.trees["b"].root) == "B"


@pytest.mark.parametrize(
    ("steps", "msg"),
    [
        (1, 'template: :1:0: executing "" at <ab{{if 1}}x{{.}}{{end}}>: execution exceeded 1 steps'),
        (2, 'template: :1:0: executing "" at <ab>: execution exceeded 2 steps'),
        (3, 'template: :1:7: executing "" at <1>: execution exceeded 3 steps'),
        (5, 'template: :1:10: executing "" at <x{{.}}>: execution exceeded 5 steps'),
        (6, 'template: :1:10: executing "" at <x>: execution exceeded 6 steps'),
        (7, 'template: :1:13: executing "" at <.>: execution exceeded 7 steps'),
    ],
)
def test_step_limit_names_the_node_reached(steps: int, msg: str) -> None:
    t = Template("ab{{if 1}}x{{.}}{{end}}", limits=lambda: Limits(max_steps=steps))
    with pytest.raises(TemplateExecError) as info:
        t.execute(1)
    assert str(info.value) == msg
    assert Template("ab{{if 1}}x{{.}}{{end}}", limits=lambda: Limits(max_steps=8)).execute(1) == "abx1"


def test_output_limit_names_the_text() -> None:
    t = Template("abc{{range 10}}xxxxxxxxxx{{end}}", limits=lambda: Limits(max_output=50))
    with pytest.raises(TemplateExecError) as info:
        t.execute(None)
    assert str(info.value) == 'template: :1:15: executing "" at <xxxxxxxxxx>: output exceeds 50 bytes'


@pytest.mark.parametrize(
    "text",
    [
        '{{define "a"}} \t\r\n\v\f\x85\xa0{{end}}{{define "a"}}x{{end}}',
        '{{define "a"}}x{{end}}{{define "a"}} \t\r\n\v\f\x85\xa0{{end}}',
        '{{define "a"}}{{/* c */}}{{end}}{{define "a"}}x{{end}}',
    ],
)
def test_an_empty_definition_never_conflicts(text: str) -> None:
    # Go's IsEmptyTree: a definition of nothing but (Unicode) space neither conflicts nor replaces
    assert Template(text).execute_template("a", None) == "x"


def test_a_second_definition_with_content_conflicts() -> None:
    with pytest.raises(TemplateParseError) as info:
        Template('{{define "a"}}\u200bx{{end}}{{define "a"}}y{{end}}')
    assert str(info.value) == 'template: :1: template: multiple definition of template "a"'


@pytest.mark.parametrize(
    ("text", "steps", "where"),
    [
        ("{{range 2}}{{break}}{{end}}x", 4, '1:11: executing "" at <{{break}}>'),  # the range's body
        ("{{range 2}}{{break}}{{end}}x", 5, '1:13: executing "" at <{{break}}>'),  # the break itself
        ("{{range 2}}{{continue}}{{end}}x", 7, '1:13: executing "" at <{{continue}}>'),
        ("{{if 0}}{{else if 1}}y{{end}}", 4, '1:15: executing "" at <{{if 1}}y{{end}}>'),  # the else list
        ("{{with 0}}{{else with 1}}y{{end}}", 4, '1:17: executing "" at <{{with 1}}y{{end}}>'),
        ("{{if 0}}{{else}}y{{end}}", 4, '1:16: executing "" at <y>'),
    ],
)
def test_step_limit_positions_of_control_nodes(text: str, steps: int, where: str) -> None:
    # the engine's own step bound (Go has none) reports the last node reached, at its Go position
    t = Template(text, limits=lambda: Limits(max_steps=steps))
    with pytest.raises(TemplateExecError) as info:
        t.execute(1)
    assert str(info.value) == f"template: :{where}: execution exceeded {steps} steps"


@pytest.mark.parametrize("body", ["{{1}}", "X", "{{.}}x"])
def test_a_definition_of_anything_but_space_conflicts(body: str) -> None:
    with pytest.raises(TemplateParseError) as info:
        Template('{{define "a"}}' + body + '{{end}}{{define "a"}}y{{end}}')
    assert str(info.value) == 'template: :1: template: multiple definition of template "a"'


def test_json_two_digit_mantissas() -> None:
    from gorae.gotemplate.gojson import marshal

    assert marshal([1.5e21, 1.5e-7, -2.5e-10]) == "[1.5e+21,1.5e-7,-2.5e-10]"


# --- gofmt: fmt.Sprintf ------------------------------------------------------------------------------------

_INF, _NAN = float("inf"), float("nan")


@pytest.mark.parametrize(
    ("fmt", "args", "want"),
    [
        ("%*d", (1000001, 1), "%!(BADWIDTH)1"),  # fmt's tooLarge: more than 1e6
        ("%c|%q|%U|%#U", (0x110000,) * 4, "\ufffd|'\ufffd'|U+110000|U+110000"),
        ("%q", ("\a\b\f\n\r\t\v\x7f\x01",), '"\\a\\b\\f\\n\\r\\t\\v\\x7f\\x01"'),
        ("%q|%q|%q", (0xDFFF, 0xD800, -1), "'\ufffd'|'\ufffd'|'\ufffd'"),
        ("%#q|%#q|%#q", ("a b", "a`b", "a\tb"), '`a b`|"a`b"|`a\tb`'),
        (
            "%x|%X|%x|%x|%x|%x",
            (1.5, 1.5, 0.0, 1.0, -2.0, 0.1),
            "0x1.8p+00|0X1.8P+00|0x0p+00|0x1p+00|-0x1p+01|0x1.999999999999ap-04",
        ),
        ("%v %v %v|%f|%e", (_NAN, _INF, -_INF, _INF, -_INF), "NaN +Inf -Inf|+Inf|-Inf"),
        ("%b|%b|%b", (1.0, 2.0**60, -0.5), "4503599627370496p-52|4503599627370496p+8|-4503599627370496p-53"),
        ("%#v|%#x|%x", (GoUint8(97), GoUint8(97), GoUint8(255)), "0x61|0x61|ff"),
        ("%c|%c|%c|%c", (0x10FFFF, 0xD800, 0xDFFF, 0xE000), "\U0010ffff|\ufffd|\ufffd|\ue000"),
        (
            "%U|%#U|%#U|%08U|%-8U|",
            (-1, 0x41, 0x1F600, 0x41, 0x41),
            "U+FFFFFFFFFFFFFFFF|U+0041 'A'|U+1F600 '😀'|  U+0041|U+0041  |",
        ),
        ("%.0d|%.0d|%5.0d|%.0x|", (0, 7, 0, 0), "|7|     ||"),
        ("% f|% f|%+f|% +f", (1.5, -1.5, 1.5, 1.5), " 1.500000|-1.500000|+1.500000|+1.500000"),
        (
            "%06f|%06f|% f|%+f|%v|%-6f|",
            (_INF, _NAN, _NAN, _NAN, _INF, -_INF),
            "  +Inf|   NaN| NaN|+NaN|+Inf|-Inf  |",
        ),
        ("%#.0e|%#.0E|%#.0f|%#v", (1.0, 1.0, 1.0, 1.0), "1.e+00|1.E+00|1.|1"),
        (
            "% #20x|% #-20x|%#20x|% x|%#x",
            ("hi",) * 5,
            "           0x68 0x69|0x68 0x69           |              0x6869|68 69|0x6869",
        ),
        ("%X|%d|%s|%v|%T", (None,) * 5, "%!X(<nil>)|%!d(<nil>)|%!s(<nil>)|<nil>|<nil>"),
        (
            "%#v|%#v|%v",
            ({"a": 1, "b": "x"}, [1, "x"], {10: "x", 9: "y"}),
            'map[string]interface {}{"a":1, "b":"x"}|[]interface {}{1, "x"}|map[9:y 10:x]',
        ),
        ("%v|%v", ({True: 1, False: 0}, [[None], {"a": None}]), "map[false:0 true:1]|[[<nil>] map[a:<nil>]]"),
        ("%[1]", (5,), "%!(NOVERB)"),
        ("%[1]|", (5,), "%!|(int=5)"),
        (
            "%[1x]d|%[x]d|%[3]d|%[1].2f|%5[2]d|%[2]*d",
            (5, 2),
            "%!d(BADINDEX)|%!d(BADINDEX)|%!d(BADINDEX)|%!f(BADINDEX)|    2|%!d(MISSING)",
        ),
        ("%*d|%*d|%-*d|", (GoUint8(3), 1, -4, 1, 4, 2), "  1|1   |2   |"),
        ("%.d", (5,), "5"),
        ("%.", (5,), "%!.(int=5)"),
        ("%w|%w", ({"a": 1}, 1), "%!w(map[string]interface {}=map[a:1])|%!w(int=1)"),
        ("%07.2f|%v", (complex(_INF, 1), complex(1, -2)), "(   +Inf+001.00i)|(1-2i)"),
        # a func prints as its address in Go; the engine prints one fixed address
        ("%v|%d|%X", (len, len, len), "0xc000000000|%!d(func()=0xc000000000)|%!X(func()=0xc000000000)"),
        ("%[1]5d|%[1]*d", (5, 2), "%!d(BADINDEX)|    2"),
        # an undecodable command-line byte (surrogateescape) is Go's invalid byte; another lone surrogate is
        # what Go's JSON decoding made of it, U+FFFD
        ("%q|%+q", ("a\udcffb\ud800", "a\udcffb\ud800"), '"a\\xffb\ufffd"|"a\\xffb\\ufffd"'),
    ],
)
def test_sprintf_exact(fmt: str, args: tuple[object, ...], want: str) -> None:
    from gorae.gotemplate import sprintf

    assert sprintf(fmt, *args) == want


def test_sprintf_width_limits() -> None:
    from gorae.gotemplate import sprintf

    s = sprintf("%*d", 1000000, 1)
    assert len(s) == 1000000 and s.endswith(" 1")
    # a width parsed past 1e6 drops the rest of the format
    assert sprintf("%10000010d", 1) == "%!(NOVERB)%!(EXTRA int=1)"


def test_values_printed_bare() -> None:
    from gorae.gotemplate import sprint
    from gorae.gotemplate.gofmt import format_value

    assert sprint(GoStruct("*T", {"A": 1, "B": "x"}, json_view={"A": 1})) == "{1 x}"
    assert format_value(None) == "<nil>"
    assert format_value(GoNil("*T")) == "<nil>"


# --- lexer ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "msg"),
    [
        ("{{template abcdefghijk}}", 'unexpected "abcdefghij"... in template clause'),  # Go's %.10q...
        ("{{template abcdefghij}}", 'unexpected "abcdefghij" in template clause'),
        ("{{template éééééé}}", 'unexpected "éééééé"... in template clause'),  # 12 bytes, 6 runes
        ("{{template if}}", "unexpected <if> in template clause"),
        ("{{.a€}}", "bad character U+20AC '€'"),
        ("{{\x01}}", "unrecognized character in action: U+0001"),
        ("a {{- ", "unclosed action"),
        ("{{1", "unclosed action"),
        ("{{0x1", "unclosed action"),
        ("{{1.5", "unclosed action"),
    ],
)
def test_lexer_errors_like_go(text: str, msg: str) -> None:
    with pytest.raises(TemplateParseError) as info:
        Template(text)
    assert str(info.value) == "template: :1: " + msg


def test_identifiers_take_underscores_and_unicode_digits() -> None:
    assert render("{{.a_b}} {{$a_b := 1}}{{$a_b}} {{.a\u0661}}", {"a_b": 2, "a\u0661": 3}) == "2 1 3"


@pytest.mark.parametrize("text", ["  {{- 1}}", "{{1}}", "x{{1}}"])
def test_no_empty_text_nodes(text: str) -> None:
    # trimmed-away or absent text makes no TextNode: 3 steps (the list, the action, its command), a text one more
    steps = 3 if text.startswith(("{{", " ")) else 4
    assert Template(text, limits=lambda: Limits(max_steps=steps)).execute(None).endswith("1")
    with pytest.raises(TemplateExecError, match="execution exceeded"):
        Template(text, limits=lambda: Limits(max_steps=steps - 1)).execute(None)


@pytest.mark.parametrize("text", ["{{/*/}}", "{{- /*/}}"])
def test_a_comment_closes_only_after_its_opening(text: str) -> None:
    # "/*/" opens a comment; its "*/" is not the close
    with pytest.raises(TemplateParseError) as info:
        Template(text)
    assert str(info.value) == "template: :1: unclosed comment"


def test_right_trim_keeps_what_follows_the_space() -> None:
    assert render("{{1 -}}xy|{{2 -}} \n y|{{/**/}}x|{{- /**/ -}} z", None) == "1xy|2y|x|z"


# --- numbers: Go's parse.newNumber, strconv's number syntax -------------------------------------------------


@pytest.mark.parametrize(
    ("text", "want"),
    [
        (
            "{{017i}} {{1.5i}} {{25i}} {{0x1p4i}} {{0i}} {{1_0+2_0i}}",
            "(0+17i) (0+1.5i) (0+25i) (0+16i) (0+0i) (10+20i)",
        ),
        ("{{-0x_1F}} {{+0x_1F}} {{0x_F}} {{0xF_F}} {{0x_a}} {{0x_f}} {{9_9}}", "-31 31 15 255 10 15 99"),
        ("{{1.5_5}} {{1_0.5}} {{1e1_0}} {{-0}}", "1.55 10.5 1e+10 0"),
        ("{{0b1}} {{0o7}} {{0x9}} {{0_0}} {{00}} {{0}} {{0_17}} {{0b_101}} {{0o_17}}", "1 7 9 0 0 0 15 5 15"),
        ("{{9223372036854775807}} {{-9223372036854775808}}", "9223372036854775807 -9223372036854775808"),
        ('{{printf "%T %v|%T" 1e3 1e3 0x1p-2}} {{1e100}}', "float64 1000|float64 1e+100"),
        # an integer argument takes any constant with an exact int64 value
        (
            '[{{pad "x" 1e0 2.0}}][{{pad "x" 0x1p1 0}}][{{pad "x" 1+0i 0}}][{{pad "x" 0i 1}}][{{pad "x" -0 1}}]',
            "[ x  ][  x][ x][x ][x ]",
        ),
        (
            "{{'\\a'}} {{'\\b'}} {{'\\f'}} {{'\\v'}} {{'\\r'}} {{'\\t'}} {{'\\n'}} {{'\\\\'}} {{'\\''}} {{'\\x41'}} {{'\\101'}}"
            " {{'\\u00e9'}} {{'\\U0001F600'}}",
            "7 8 12 11 13 9 10 92 39 65 65 233 128512",
        ),
        ('{{printf "%q" "\\a\\b\\f\\v\\r\\t\\n\\\\\\""}}', '"\\a\\b\\f\\v\\r\\t\\n\\\\\\""'),
    ],
)
def test_number_and_escape_literals_like_go(text: str, want: str) -> None:
    assert render(text, None) == want


@pytest.mark.parametrize(
    ("text", "msg"),
    [
        # strconv.ParseFloat takes no 0b/0o prefix, and 0x only with a p exponent
        ("{{0x10i}}", 'illegal number syntax: "0x10i"'),
        ("{{0b1i}}", 'illegal number syntax: "0b1i"'),
        ("{{0o7i}}", 'illegal number syntax: "0o7i"'),
        # an underscore only between digits (or after a base prefix)
        ("{{1__0+2i}}", 'illegal number syntax: "1__0+2i"'),
        ("{{0x__1}}", 'illegal number syntax: "0x__1"'),
        ("{{1E_5}}", 'illegal number syntax: "1E_5"'),
        ("{{1_e5}}", 'illegal number syntax: "1_e5"'),
        ("{{1__0}}", 'illegal number syntax: "1__0"'),
        ("{{1_}}", 'illegal number syntax: "1_"'),
        ("{{1_.5}}", 'illegal number syntax: "1_.5"'),
        ("{{1._5}}", 'illegal number syntax: "1._5"'),
        ("{{1.5_}}", 'illegal number syntax: "1.5_"'),
        ("{{18446744073709551616}}", 'integer overflow: "18446744073709551616"'),
        ("{{-9223372036854775809}}", 'integer overflow: "-9223372036854775809"'),
        ("{{'ab'}}", "malformed character constant: 'ab'"),
        ("{{'\\z'}}", "invalid syntax"),
    ],
)
def test_number_syntax_errors_like_go(text: str, msg: str) -> None:
    with pytest.raises(TemplateParseError) as info:
        Template(text)
    assert str(info.value) == "template: :1: " + msg


@pytest.mark.parametrize(
    ("text", "msg"),
    [
        ("{{9223372036854775808}}", "at <9223372036854775808>: 9223372036854775808 overflows int"),
        ("{{18446744073709551615}}", "at <18446744073709551615>: 18446744073709551615 overflows int"),
        ('{{pad "x" 1.5 0}}', "at <1.5>: expected integer; found 1.5"),
        ('{{pad "x" 1e100 0}}', "at <1e100>: expected integer; found 1e100"),
        ('{{pad "x" 1e19 0}}', "at <1e19>: expected integer; found 1e19"),
        ('{{pad "x" 2i 0}}', "at <2i>: expected integer; found 2i"),
    ],
)
def test_number_exec_errors_like_go(text: str, msg: str) -> None:
    assert _err(text, None).split('executing "" ', 1)[1] == msg


def test_more_literals_like_go() -> None:
    assert render("{{-0x_1p4}} {{+0x_1p4}} {{0x_1p4}}", None) == "-16 16 16"
    assert render('{{"\\u00e9\\xc3\\xa9"}} {{"\\U0010FFFF"}}', None) == "éé \U0010ffff"


@pytest.mark.parametrize(
    "text",
    [
        "{{1e400}}",  # out of range: strconv.ParseFloat fails
        "{{1e400i}}",
        "{{1e400+0i}}",
    ],
)
def test_out_of_range_floats_are_no_numbers(text: str) -> None:
    with pytest.raises(TemplateParseError) as info:
        Template(text)
    assert str(info.value) == f'template: :1: illegal number syntax: "{text[2:-2]}"'


@pytest.mark.parametrize(
    "text",
    [
        '{{"\\xZZ"}}',
        '{{"\\xX1"}}',
        '{{"\\X41"}}',
        '{{"\\u12"}}',
        '{{"\\U00110000"}}',
        '{{"\\ud800"}}',
        '{{"\\udfff"}}',
        '{{"\\400"}}',
        '{{"\\08"}}',
        "{{'\\\"'}}",
        '{{"\\\'"}}',
        "{{''}}",
    ],
)
def test_bad_escapes_are_invalid_syntax(text: str) -> None:
    with pytest.raises(TemplateParseError) as info:
        Template(text)
    assert str(info.value) == "template: :1: invalid syntax"


@pytest.mark.parametrize("arg", ["-9.223372036854775808e18", "-9.223372036854775808e18+0i"])
def test_the_smallest_int64_as_a_float_constant_is_an_int(arg: str) -> None:
    # float64(int64(f)) == f for -2^63: an integer argument; docker's truncate then panics as Go slicing does
    assert _err('{{truncate "abc" ' + arg + "}}", None).endswith(
        "error calling truncate: runtime error: slice bounds out of range [:-9223372036854775808]"
    )


@pytest.mark.parametrize(
    ("text", "msg"),
    [
        ("{{1eX}}", 'bad number syntax: "1eX"'),
        ("{{-X1}}", 'bad number syntax: "-X"'),
        ("{{0oX7}}", 'bad number syntax: "0oX"'),
        ("{{0bX1}}", 'bad number syntax: "0bX"'),
        ("{{1X5}}", 'bad number syntax: "1X"'),
        ("{{0x1X}}", 'bad number syntax: "0x1X"'),
        ("{{0x1pX}}", 'bad number syntax: "0x1pX"'),
        ("{{1X}}", 'bad number syntax: "1X"'),
        ("{{abc€}}", "bad character U+20AC '€'"),
        ("{{.", 'illegal number syntax: "."'),  # "." at the end starts a number, as in Go's lexer
        ("{{X}}", 'function "X" not defined'),
        ("{{A}}", 'function "A" not defined'),
        ("{{'\\\n'}}", "unterminated character constant"),
        ("{{'\n'}}", "unterminated character constant"),
        ('{{"a\\\n"}}', "unterminated quoted string"),
        ('{{"a\n"}}', "unterminated quoted string"),
    ],
)
def test_lexer_token_errors_like_go(text: str, msg: str) -> None:
    with pytest.raises(TemplateParseError) as info:
        Template(text)
    assert str(info.value) == "template: :1: " + msg


def test_spaces_before_a_trimmed_right_delimiter() -> None:
    assert render("{{1  -}}x|{{.0}}|{{1\t \t-}} y", None) == "1x|0|1y"


def test_template_api_errors() -> None:
    with pytest.raises(ValueError) as info:
        Template("x", missingkey="bogus")
    assert str(info.value) == "missingkey must be one of ('default', 'invalid', 'zero', 'error', 'inspect')"
    with pytest.raises(TemplateExecError) as exc:
        Template("x").execute_template("nope", None)
    assert str(exc.value) == 'template: no template "nope" associated with template ""'


def test_raw_strings_drop_carriage_returns() -> None:
    # strconv.Unquote of a raw string removes \r
    assert render("{{`a\rb`}}", None) == "ab"


def test_octal_and_hex_escapes_are_bytes() -> None:
    # Go: \ooo and \xhh are bytes (UTF-8 when they form it), \u a rune; ".9" is a number, not a field
    assert render('{{"\\303\\251"}} {{len "\\000\\007"}} {{"\\ue000"}} {{.9}}', None) == "é 2 \ue000 0.9"
    assert render('{{if "\\377"}}y{{end}}{{if "\\xff"}}y{{end}}', None) == "yy"


@pytest.mark.parametrize("text", ['{{"\\0X1"}}', '{{"\\080"}}'])
def test_bad_octal_escapes(text: str) -> None:
    with pytest.raises(TemplateParseError) as info:
        Template(text)
    assert str(info.value) == "template: :1: invalid syntax"


# Go's own fmt tests of floats with '#', precision on %x, and %b (fmt_test.go), and what strconv gives
# subnormals and zero under %b and %x (the raw mantissa at exponent -1074; %x normalised to a leading 1)
@pytest.mark.parametrize(
    ("fmt", "arg", "want"),
    [
        ("% .3E", -1.0, "-1.000E+00"),
        ("% .3e", 1.0, " 1.000e+00"),
        ("% .3X", -1.0, "-0X1.000P+00"),
        ("% .3x", 1.0, " 0x1.000p+00"),
        ("%+.3g", 0.0, "+0"),
        ("%+.3g", 1.0, "+1"),
        ("%+.3g", -1.0, "-1"),
        ("% .3g", -1.0, "-1"),
        ("% .3g", 1.0, " 1"),
        ("%b", 1.0, "4503599627370496p-52"),
        ("%#g", 1e-323, "1.00000e-323"),
        ("%#g", -1.0, "-1.00000"),
        ("%#g", 1.1, "1.10000"),
        ("%#g", 123456.0, "123456."),
        ("%#g", 1234567.0, "1.234567e+06"),
        ("%#g", 1230000.0, "1.23000e+06"),
        ("%#g", 1000000.0, "1.00000e+06"),
        ("%#.0f", 1.0, "1."),
        ("%#.0e", 1.0, "1.e+00"),
        ("%#.0x", 1.0, "0x1.p+00"),
        ("%#.0g", 1.0, "1."),
        ("%#.0g", 1100000.0, "1.e+06"),
        ("%#.4f", 1.0, "1.0000"),
        ("%#.4e", 1.0, "1.0000e+00"),
        ("%#.4x", 1.0, "0x1.0000p+00"),
        ("%#.4g", 1.0, "1.000"),
        ("%#.4g", 100000.0, "1.000e+05"),
        ("%#.4g", 1.234, "1.234"),
        ("%#.4g", 0.1234, "0.1234"),
        ("%#.4g", 1.23, "1.230"),
        ("%#.4g", 0.123, "0.1230"),
        ("%#.4g", 1.2, "1.200"),
        ("%#.4g", 0.12, "0.1200"),
        ("%#.4g", 10.2, "10.20"),
        ("%#.4g", 0.0, "0.000"),
        ("%#.4g", 0.012, "0.01200"),
        ("%#.0f", 123.0, "123."),
        ("%#.0e", 123.0, "1.e+02"),
        ("%#.0x", 123.0, "0x1.p+07"),
        ("%#.0g", 123.0, "1.e+02"),
        ("%#.4f", 123.0, "123.0000"),
        ("%#.4e", 123.0, "1.2300e+02"),
        ("%#.4x", 123.0, "0x1.ec00p+06"),
        ("%#.4g", 123.0, "123.0"),
        ("%#.4g", 123000.0, "1.230e+05"),
        ("%#9.4g", 1.0, "    1.000"),
        ("%#b", 1.0, "4503599627370496p-52"),
        ("%.4b", -1.0, "-4503599627370496p-52"),
        ("%b|%b|%b", (5e-324, 0.0, -0.0), "1p-1074|0p-1074|-0p-1074"),
        ("%b", 1e-310, "20240225330731p-1074"),
        (
            "%x|%x|%.1x|%.0x|%.0x",
            (5e-324, 1e-310, 0.1, 1.5, 2.5),
            "0x1p-1074|0x1.2688b70e62bp-1030|0x1.ap-04|0x1p+01|0x1p+01",
        ),
        ("%.2x|%#x|%#g|%#G", (0.0, 0.0, 0.0, 1e-7), "0x0.00p+00|0x0.0000p+00|0.00000|1.00000E-07"),
    ],
)
def test_go_fmt_floats(fmt: str, arg: object, want: str) -> None:
    from gorae.gotemplate import sprintf

    args = arg if isinstance(arg, tuple) else (arg,)
    assert sprintf(fmt, *args) == want
