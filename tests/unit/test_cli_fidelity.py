"""The gorae CLI's outputs that must be docker's byte for byte (issue 14): list rows' `{{json .}}` (Go's
MarshalJSON of docker's formatting contexts: sorted, HTML-escaped), template errors in each formatter's words,
history's RFC 3339 times, and the client-side checks of flag values, volume and port specs, with hostile input.
The same outputs are compared with the docker CLI against dockerd in tests/compat/differential/."""

from __future__ import annotations

import io
import os
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gorae.cli.commands.image_ops import HistoryRow
from gorae.cli.commands.images import IMAGE_HEADERS, ImageRow
from gorae.cli.commands.ps import HEADERS, PsRow
from gorae.cli.context import StatusError
from gorae.cli.opts import FlagValueError, OptError, flag_bytes, parse_ports, parse_volumes, ram_in_bytes
from gorae.cli.output import Header, print_list, rfc3339


def _image_row() -> ImageRow:
    img = {"Id": "sha256:" + "ab" * 32, "Created": 1700000000, "Size": 1984162, "SharedSize": -1, "Containers": -1}
    return ImageRow(img, "<none>", "<none>", "<none>", True)


def test_row_json_is_sorted_and_html_escaped_like_marshaljson() -> None:
    out = io.StringIO()
    print_list(out, "{{json .}}", [_image_row()], default_table="", header=Header(IMAGE_HEADERS))
    line = out.getvalue()
    assert line.startswith('{"Containers":"N/A","CreatedAt":')
    assert '"Digest":"\\u003cnone\\u003e"' in line and '"VirtualSize":"1.984MB"' in line and '"Size":"1.98MB"' in line
    out2 = io.StringIO()
    print_list(out2, "json", [_image_row()], default_table="", header=Header(IMAGE_HEADERS))
    assert out2.getvalue() == line  # `--format json` is the same MarshalJSON
    # a single field through `json` is docker's encoder with SetEscapeHTML(false)
    out3 = io.StringIO()
    print_list(out3, "{{json .Digest}}", [_image_row()], default_table="", header=Header(IMAGE_HEADERS))
    assert out3.getvalue() == '"<none>"\n'


def test_ps_row_json_has_platform_in_order() -> None:
    row = PsRow({"Id": "c" * 64, "Names": ["/x"], "Command": "sh -c 'a>b'", "Created": 0, "Labels": {}}, True)
    out = io.StringIO()
    print_list(out, "{{json .}}", [row], default_table="", header=Header(HEADERS))
    keys = [part.split('":')[0].strip('{"') for part in out.getvalue().split(',"')]
    assert keys == sorted(keys) and "Platform" in keys
    assert '"Command":"\\"sh -c \'a\\u003eb\'\\""' in out.getvalue()


@pytest.mark.parametrize(
    ("row", "fmt", "message"),
    [
        (_image_row(), "{{.Bogus}}", "template parsing error: template: :1:2: executing \"\" at <.Bogus>: "
         "can't evaluate field Bogus in type *formatter.imageContext"),
        (_image_row(), "{{.ID}} {{.Bogus | upper}}", "template parsing error: template: :1:10: executing \"\" at "
         "<.Bogus>: can't evaluate field Bogus in type *formatter.imageContext"),
        (HistoryRow({"Id": "x", "Created": 0}, True, True), "{{.Bogus}}", "template parsing error: template: :1:2: "
         "executing \"\" at <.Bogus>: can't evaluate field Bogus in type *image.historyContext"),
    ],
)
def test_template_errors_in_the_formatters_words(row: object, fmt: str, message: str) -> None:
    with pytest.raises(StatusError) as e:
        print_list(io.StringIO(), fmt, [row], default_table="", header=Header(IMAGE_HEADERS))
    assert e.value.message == message


def test_table_header_of_an_unknown_field_without_rows() -> None:
    out = io.StringIO()
    print_list(out, "table {{.ID}}\t{{.Bogus}}", [], default_table="", header=Header(IMAGE_HEADERS))
    assert out.getvalue() == "IMAGE ID   <no value>\n"


def test_history_times_are_rfc3339_in_local_time() -> None:
    old = os.environ.get("TZ")
    try:
        os.environ["TZ"] = "UTC"
        time.tzset()
        assert rfc3339(1700000000) == "2023-11-14T22:13:20Z"
        os.environ["TZ"] = "Asia/Kolkata"
        time.tzset()
        assert rfc3339(1700000000) == "2023-11-15T03:43:20+05:30"
        os.environ["TZ"] = "America/St_Johns"
        time.tzset()
        assert rfc3339(1700000000) == "2023-11-14T18:43:20-03:30"
    finally:
        if old is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old
        time.tzset()
    row = HistoryRow({"Id": "sha256:" + "a" * 64, "Created": 1700000000, "CreatedBy": "/bin/sh -c #(nop)  ENV A=1\tB", "Size": 5}, True, False)
    assert row.CreatedBy == "/bin/sh -c #(nop)  ENV A=1 B"  # as stored, tabs as spaces
    assert row.CreatedSince == row.CreatedAt and row.Size == "5"


def test_size_flags_in_go_units_words() -> None:
    assert ram_in_bytes("512m") == 512 << 20 and ram_in_bytes("1.5g") == int(1.5 * (1 << 30))
    with pytest.raises(OptError, match="^invalid suffix: 'x'$"):
        ram_in_bytes("1x")
    with pytest.raises(OptError, match="^invalid size: 'abc'$"):
        ram_in_bytes("abc")
    with pytest.raises(FlagValueError, match='^invalid argument "1x" for "-m, --memory" flag: invalid suffix: \'x\'$'):
        flag_bytes("1x", "-m, --memory")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_size_parser_hostile(s: str) -> None:
    try:
        n = ram_in_bytes(s)
    except OptError as e:
        assert str(e).startswith(("invalid size: '", "invalid suffix: '"))
    else:
        assert n >= 0


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from("/:abz.-_ 0"), max_size=12), max_size=4))
def test_volume_specs_hostile(values: list[str]) -> None:
    """Only docker CLI's own three refusals; everything else goes to the daemon unchanged."""
    try:
        binds, vols = parse_volumes(values)
    except OptError as e:
        assert str(e) == "invalid empty volume spec" or str(e).startswith("invalid spec: ")
    else:
        assert all(v in values for v in binds + list(vols))  # passed on as given
        assert all(":" in b for b in binds) and all(":" not in v for v in vols)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from("0123456789:-/[]a.tcpud"), max_size=16), max_size=3))
def test_port_specs_hostile(values: list[str]) -> None:
    try:
        exposed, bindings = parse_ports(values, [])
    except OptError as e:
        assert str(e).startswith(("invalid ", "no port specified: "))
    else:
        for key in exposed:
            port, _, proto = key.partition("/")
            assert 0 <= int(port) <= 65535 and proto
        assert set(bindings) <= set(exposed)


def test_port_errors_name_the_part() -> None:
    with pytest.raises(OptError, match="^invalid hostPort: 99999$"):
        parse_ports(["99999:80"], [])
    with pytest.raises(OptError, match="^invalid containerPort: 70000$"):
        parse_ports(["70000"], [])
