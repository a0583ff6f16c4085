"""The swarm commands' flag parsers (gorae.cli.swarmopts) and spec building (gorae.cli.servicespec): docker's
values and error texts for known inputs, and hostile input through hypothesis — every parser either returns
the API shape or raises OptError with a message, never anything else."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gorae.cli.commands.service import CREATE, UPDATE, ports_text
from gorae.cli.flags import parse
from gorae.cli.opts import OptError
from gorae.cli.servicespec import Flags, create_spec, image_with_tag, update_spec
from gorae.cli.swarmopts import (
    format_go_duration,
    go_duration_ns,
    parse_file_reference,
    parse_mount,
    parse_network,
    parse_placement_pref,
    parse_publish,
    parse_uint,
)

TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80)
FIELDY = st.lists(
    st.tuples(
        st.sampled_from(
            ["type", "src", "source", "dst", "target", "ro", "readonly", "volume-label", "volume-nocopy",
             "tmpfs-size", "tmpfs-mode", "bind-propagation", "bind-recursive", "consistency", "volume-opt",
             "volume-driver", "bogus", "", "protocol", "mode", "published", "uid", "gid"]
        ),
        st.sampled_from(["", "=", "=x", "=1", "=volume", "=bind", "=tmpfs", "=/a", "=0755", "=1m", "=a=b",
                         "=rprivate", "=readonly", "=true", "=tcp", "=host", "=80", "=99999"]),
    ),
    max_size=6,
).map(lambda kvs: ",".join(k + v for k, v in kvs))  # fmt: skip


# -- known values (what docker sends / says) -----------------------------------------------------


def test_mount_values_as_docker() -> None:
    assert parse_mount("type=volume,src=v1,dst=/data,volume-label=a=b") == {
        "Type": "volume",
        "Source": "v1",
        "Target": "/data",
        "VolumeOptions": {"Labels": {"a": "b"}, "DriverConfig": {}},
    }
    assert parse_mount("type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770") == {
        "Type": "tmpfs",
        "Target": "/t",
        "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 0o1770},
    }
    assert parse_mount("type=bind,src=/tmp,dst=/h,ro") == {
        "Type": "bind",
        "Source": "/tmp",
        "Target": "/h",
        "ReadOnly": True,
    }
    for value, message in (
        ("foo", "invalid field 'foo' must be a key=value pair"),
        ("src=a", "target is required"),
        ("type=bind,dst=/x,volume-nocopy", "cannot mix 'volume-*' options with mount type 'bind'"),
        ("dst=/x,ro=maybe", "invalid value for ro: maybe"),
        ("dst=/x,color=red", "unexpected key 'color' in 'color=red'"),
        ("type=tmpfs,dst=/x,tmpfs-mode=9", "invalid value for tmpfs-mode: 9"),
        ("type=bind,dst=/x,bind-recursive=readonly", "option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction"),
    ):  # fmt: skip
        with pytest.raises(OptError) as e:
            parse_mount(value)
        assert str(e.value) == message, value


def test_publish_values_as_docker() -> None:
    assert parse_publish("8080:80") == [
        {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"}
    ]
    assert parse_publish("80/udp") == [
        {"Protocol": "udp", "TargetPort": 80, "PublishedPort": 0, "PublishMode": "ingress"}
    ]
    assert [p["PublishedPort"] for p in parse_publish("8000-8002:80")] == [8000, 8001, 8002]
    assert [(p["PublishedPort"], p["TargetPort"]) for p in parse_publish("9000-9001:90-91")] == [
        (9000, 90),
        (9001, 91),
    ]
    assert parse_publish("published=9090,target=90,mode=host,protocol=udp") == [
        {"Protocol": "udp", "TargetPort": 90, "PublishedPort": 9090, "PublishMode": "host"}
    ]
    for value, message in (
        ("1:2:3:4", "invalid IP address: 1:2"),
        ("1.2.3.4:80:80", "hostip is not supported"),
        ("published=1", "missing mandatory field 'target'"),
        ("mode=foo,target=1", "invalid publish mode value (foo): must be either 'ingress' or 'host'"),
        ("target=x1,published=1", "invalid target port (x1): value must be an integer: invalid syntax"),
        ("target=70000", "invalid target port (70000): value must be an integer: value out of range"),
        ("protocol=icmp,target=1", "invalid protocol value 'icmp'"),
        ("a=b", "invalid field key: a"),
    ):
        with pytest.raises(OptError) as e:
            parse_publish(value)
        assert str(e.value) == message, value


def test_secret_config_placement_network_values_as_docker() -> None:
    assert parse_file_reference("sec1", "secret") == {
        "File": {"Name": "sec1", "UID": "0", "GID": "0", "Mode": 0o444},
        "SecretName": "sec1",
    }
    assert parse_file_reference("source=c,target=/etc/c,uid=5,gid=6,mode=0400", "config") == {
        "File": {"Name": "/etc/c", "UID": "5", "GID": "6", "Mode": 0o400},
        "ConfigName": "c",
    }
    for value, kind, message in (
        ("target=/x", "secret", "source is required"),
        ("source=a,foo=b", "secret", "invalid field in secret request: foo"),
        ("source=a,foo=b", "config", "invalid field in config request: foo"),
        ("source=a,x", "config", "invalid field 'x' must be a key=value pair"),
        (
            "source=a,mode=rw",
            "secret",
            'invalid mode specified: strconv.ParseUint: parsing "rw": invalid syntax',
        ),
    ):
        with pytest.raises(OptError) as e:
            parse_file_reference(value, kind)
        assert str(e.value) == message, value
    assert parse_placement_pref("spread=node.labels.dc") == {"Spread": {"SpreadDescriptor": "node.labels.dc"}}
    for value, message in (
        ("spread", 'placement preference must be of the format "<strategy>=<arg>"'),
        ("pack=x", "unsupported placement preference pack (only spread is supported)"),
    ):
        with pytest.raises(OptError) as e:
            parse_placement_pref(value)
        assert str(e.value) == message
    assert parse_network("name=ov1,alias=a,alias=b,driver-opt=k=V") == {
        "Target": "ov1",
        "Aliases": ["a", "b"],
        "DriverOpts": {"k": "v"},
    }


def test_durations_and_numbers_as_go() -> None:
    assert go_duration_ns("1h30m") == 5_400_000_000_000
    assert go_duration_ns("250ms") == 250_000_000
    assert go_duration_ns("1.5s") == 1_500_000_000
    assert go_duration_ns("-5s") == -5_000_000_000
    assert go_duration_ns("0") == 0
    for value, message in (
        ("3", 'time: missing unit in duration "3"'),
        ("3x", 'time: unknown unit "x" in duration "3x"'),
        ("", 'time: invalid duration ""'),
        ("s", 'time: invalid duration "s"'),
    ):
        with pytest.raises(OptError) as e:
            go_duration_ns(value)
        assert str(e.value) == message
    assert [format_go_duration(n) for n in (0, 5_000_000_000, 5_400_000_000_000, 1_500_000_000, 250_000_000, 90_061_000_000_000)] == [
        "0s", "5s", "1h30m0s", "1.5s", "250ms", "25h1m1s",
    ]  # fmt: skip
    assert parse_uint("0x10") == 16 and parse_uint("017") == 15 and parse_uint("7") == 7
    for bad in ("-1", "1.5", "x", "", "18446744073709551616"):
        with pytest.raises(OptError):
            parse_uint(bad)


def test_image_tag_and_ports_column_as_docker() -> None:
    assert image_with_tag("busybox") == "busybox:latest"
    assert image_with_tag("docker.io/library/busybox") == "busybox:latest"
    assert image_with_tag("reg:5000/a/b") == "reg:5000/a/b:latest"
    assert image_with_tag("a@sha256:" + "0" * 64) == "a@sha256:" + "0" * 64
    ports = [
        {"Protocol": "tcp", "PublishedPort": p, "TargetPort": t, "PublishMode": "ingress"}
        for p, t in ((80, 80), (81, 81), (82, 80), (8080, 8080))
    ] + [{"Protocol": "udp", "PublishedPort": 53, "TargetPort": 53, "PublishMode": "ingress"},
         {"Protocol": "tcp", "PublishedPort": 9000, "TargetPort": 90, "PublishMode": "host"}]  # fmt: skip
    assert ports_text(ports) == "*:80-81->80-81/tcp, *:82->80/tcp, *:8080->8080/tcp, *:53->53/udp"
    assert ports_text(None) == "" and ports_text([]) == ""


def _flags(spec: object, argv: list[str]) -> tuple[Flags, list[str]]:
    values, args = parse(spec, argv)  # type: ignore[arg-type]
    return Flags(spec, values), args  # type: ignore[arg-type]


def test_create_spec_is_what_the_docker_cli_sends() -> None:
    # the body dockerd logged for `docker service create --name d1 --replicas 2 busybox sh -c 'echo hi'`
    f, args = _flags(CREATE, ["--name", "d1", "--replicas", "2", "busybox", "sh", "-c", "echo hi"])
    assert create_spec(None, f, args[0], args[1:]) == {  # type: ignore[arg-type]
        "Name": "d1",
        "Labels": {},
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": "busybox",
                "Args": ["sh", "-c", "echo hi"],
                "Init": False,
                "DNSConfig": {},
            },
            "Resources": {"Limits": {}, "Reservations": {}},
            "Placement": {},
            "ForceUpdate": 0,
        },
        "Mode": {"Replicated": {"Replicas": 2}},
        "EndpointSpec": {"Mode": "vip"},
    }
    f, args = _flags(
        CREATE,
        ["--mode", "global", "--restart-condition", "on-failure", "--update-order", "start-first", "--constraint",
         "node.role==manager", "--constraint", "node.labels.a!=b", "-p", "80", "--health-cmd", "true", "img"],
    )  # fmt: skip
    spec = create_spec(None, f, args[0], args[1:])  # type: ignore[arg-type]
    assert spec["Mode"] == {"Global": {}}
    assert spec["TaskTemplate"]["RestartPolicy"] == {
        "Condition": "on-failure",
        "Delay": 5_000_000_000,
        "MaxAttempts": 0,
        "Window": 0,
    }
    assert spec["UpdateConfig"] == {
        "Parallelism": 1,
        "FailureAction": "pause",
        "Monitor": 5_000_000_000,
        "MaxFailureRatio": 0,
        "Order": "start-first",
    }
    assert spec["TaskTemplate"]["Placement"] == {"Constraints": ["node.role==manager", "node.labels.a!=b"]}
    assert spec["TaskTemplate"]["ContainerSpec"]["Healthcheck"] == {"Test": ["CMD-SHELL", "true"]}


@given(st.lists(st.text(alphabet="abcdefgh.=!= ", min_size=1, max_size=12), max_size=5),
       st.lists(st.text(alphabet="abcdefgh.=!= ", min_size=1, max_size=12), max_size=5),
       st.lists(st.text(alphabet="abcdefgh.=!= ", min_size=1, max_size=12), max_size=3))  # fmt: skip
def test_constraints_pass_verbatim_and_update_sorts_and_removes(
    existing: list[str], add: list[str], rm: list[str]
) -> None:
    argv = [x for c in existing for x in ("--constraint", c)]
    f, args = _flags(CREATE, [*argv, "img"])
    spec = create_spec(None, f, args[0], [])  # type: ignore[arg-type]
    assert spec["TaskTemplate"]["Placement"].get("Constraints", []) == existing
    argv = [x for c in add for x in ("--constraint-add", c)] + [x for c in rm for x in ("--constraint-rm", c)]
    f, _ = _flags(UPDATE, [*argv, "svc"])
    if argv:
        update_spec(None, f, spec)  # type: ignore[arg-type]
        assert spec["TaskTemplate"]["Placement"]["Constraints"] == sorted(
            c for c in existing + add if c not in rm
        )


# -- hostile input -----------------------------------------------------------------------------


@settings(max_examples=300)
@given(st.one_of(TEXT, FIELDY))
def test_mount_parser_never_crashes(value: str) -> None:
    try:
        m = parse_mount(value)
    except OptError as e:
        assert str(e)
        return
    assert m["Target"] and m["Type"]


@settings(max_examples=300)
@given(
    st.one_of(
        TEXT, FIELDY, st.from_regex(r"\A[0-9]{0,6}(-[0-9]{0,6})?(:[0-9]{0,6}(-[0-9]{0,6})?)?(/[a-z]{0,4})?\Z")
    )
)
def test_publish_parser_never_crashes(value: str) -> None:
    try:
        ports = parse_publish(value)
    except OptError as e:
        assert str(e)
        return
    for p in ports:
        assert set(p) == {"Protocol", "TargetPort", "PublishedPort", "PublishMode"}
        assert 0 <= p["TargetPort"] <= 65535 and 0 <= p["PublishedPort"] <= 65535
        assert p["Protocol"] in ("tcp", "udp", "sctp") and p["PublishMode"] in ("ingress", "host")


@settings(max_examples=300)
@given(st.one_of(TEXT, FIELDY), st.sampled_from(["secret", "config"]))
def test_secret_config_parser_never_crashes(value: str, kind: str) -> None:
    try:
        ref = parse_file_reference(value, kind)
    except OptError as e:
        assert str(e)
        return
    name = ref["SecretName" if kind == "secret" else "ConfigName"]
    assert name and ref["File"]["Name"]


@given(st.integers(min_value=0, max_value=65535), st.integers(min_value=1, max_value=65535),
       st.sampled_from(["", "/tcp", "/udp", "/sctp"]))  # fmt: skip
def test_publish_short_form_roundtrip(published: int, target: int, proto: str) -> None:
    assert parse_publish(f"{published}:{target}{proto}") == [
        {
            "Protocol": proto[1:] or "tcp",
            "TargetPort": target,
            "PublishedPort": published,
            "PublishMode": "ingress",
        }
    ]


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_duration_format_parse_roundtrip(ns: int) -> None:
    assert go_duration_ns(format_go_duration(ns)) == ns


@settings(max_examples=300)
@given(st.one_of(TEXT, st.text(alphabet="0123456789.hmsun-+µ", max_size=12)))
def test_duration_and_pref_parsers_never_crash(value: str) -> None:
    for parser in (go_duration_ns, parse_placement_pref, parse_network, parse_uint):
        try:
            parser(value)  # type: ignore[operator]
        except OptError as e:
            assert str(e)
