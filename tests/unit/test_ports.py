"""The `-p` spec parser (docker's texts for hostile input), PortBindings validation and the port reserver."""

from __future__ import annotations

import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gorae.errors import GoraeError, InvalidParameter, SystemError_
from gorae.network.portmap.ports import (
    PortMapping,
    PortReserver,
    parse_port_spec,
    parse_port_specs,
    validate_port_bindings,
)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("80", [PortMapping("80/tcp", "", "")]),
        ("8080:80", [PortMapping("80/tcp", "", "8080")]),
        ("8080:80/udp", [PortMapping("80/udp", "", "8080")]),
        ("127.0.0.1:8080:80", [PortMapping("80/tcp", "127.0.0.1", "8080")]),
        ("127.0.0.1::80", [PortMapping("80/tcp", "127.0.0.1", "")]),
        ("[::1]:8080:80", [PortMapping("80/tcp", "::1", "8080")]),
        ("8000-8001:80-81/TCP", [PortMapping("80/tcp", "", "8000"), PortMapping("81/tcp", "", "8001")]),
        ("8000-8010:80", [PortMapping("80/tcp", "", "8000-8010")]),
        ("80-81", [PortMapping("80/tcp", "", ""), PortMapping("81/tcp", "", "")]),
    ],
)
def test_valid_specs(spec: str, expected: list[PortMapping]) -> None:
    assert parse_port_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("99999:80", "invalid hostPort: 99999"),
        ("abc", "invalid containerPort: abc"),
        ("80:abc", "invalid containerPort: abc"),
        ("1-2:3-5", "invalid ranges specified for container and host Ports: 3-5 and 1-2"),
        ("8080:80/xyz", "invalid proto: xyz"),
        ("1.2.3:80:80", "invalid IP address: 1.2.3"),
        ("8080:", "no port specified: 8080:<empty>"),
        ("90-80", "invalid containerPort: 90-80"),
        ("-1:80", "invalid hostPort: -1"),
        ("80:65536", "invalid containerPort: 65536"),
        ("+80", "invalid containerPort: +80"),
    ],
)
def test_hostile_specs(spec: str, message: str) -> None:
    with pytest.raises(InvalidParameter) as ei:
        parse_port_spec(spec)
    assert ei.value.message == message


@settings(max_examples=400)
@given(st.text(alphabet="0123456789:-/abcdtpu.[]x ", max_size=24))
def test_parser_never_crashes(spec: str) -> None:
    try:
        out = parse_port_spec(spec)
    except InvalidParameter:
        return
    for m in out:
        port, proto = m.port.split("/")
        assert 0 <= int(port) <= 65535 and proto in ("tcp", "udp", "sctp")


def test_specs_to_api_body() -> None:
    exposed, bindings = parse_port_specs(["8080:80", "127.0.0.1:53:53/udp", "80"])
    assert exposed == {"80/tcp": None, "53/udp": None}
    assert bindings == {
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "", "HostPort": ""}],
        "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "53"}],
    }


def test_validate_port_bindings() -> None:
    validate_port_bindings({"80/tcp": [{"HostIp": "", "HostPort": "8080"}], "81/udp": None})
    with pytest.raises(InvalidParameter, match='invalid port specification: "99999"'):
        validate_port_bindings({"80/tcp": [{"HostPort": "99999"}]})
    with pytest.raises(InvalidParameter, match='invalid port specification: "abc"'):
        validate_port_bindings({"abc/tcp": []})
    with pytest.raises(InvalidParameter, match="invalid IP address: nope"):
        validate_port_bindings({"80/tcp": [{"HostIp": "nope", "HostPort": "1"}]})


def test_reserver_takes_and_releases() -> None:
    r = PortReserver()
    try:
        port = r.reserve_any("tcp", "127.0.0.1", 40000, 60000)
        with pytest.raises(
            SystemError_, match=f"Bind for 127.0.0.1:{port} failed: port is already allocated"
        ):
            r.reserve("tcp", "127.0.0.1", port)
        with pytest.raises(SystemError_, match="port is already allocated"):
            r.reserve("tcp", "0.0.0.0", port)  # overlaps with the specific address
        r.reserve("udp", "127.0.0.1", port)  # another protocol is another port
        r.release("tcp", "127.0.0.1", port)
        r.reserve("tcp", "127.0.0.1", port)
    finally:
        r.close()
    assert r.held() == []


def test_reserver_sees_foreign_listener() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = PortReserver()
        with pytest.raises(GoraeError, match=f"Bind for 127.0.0.1:{port} failed: port is already allocated"):
            r.reserve("tcp", "127.0.0.1", port)
        assert r.held() == []
