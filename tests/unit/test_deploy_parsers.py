"""The deploy package's parsers under hostile input: pre-receive's ref lines, the logs frame demuxer, the
repository settings turned into a Target, the history file with torn lines, application names."""

from __future__ import annotations

import os
import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st

from gorae.cli.commands.deploy import target_from, volume_mount
from gorae.cli.opts import OptError
from gorae.deploy.engine import demux
from gorae.deploy.gitrepo import parse_config_z, parse_push_lines
from gorae.deploy.state import App, check_name

A, B = "a" * 40, "0123456789abcdef" * 2 + "01234567"


def test_push_lines_exact() -> None:
    text = f"{A} {B} refs/heads/main\nnot a line\n{B} {'0' * 40} refs/tags/x\n{A} XYZ refs/heads/y\n"
    assert parse_push_lines(text) == [(A, B, "refs/heads/main"), (B, "0" * 40, "refs/tags/x")]


@given(st.text())
def test_push_lines_never_raise(text: str) -> None:
    for old, new, ref in parse_push_lines(text):
        assert len(old) in (40, 64) and len(new) in (40, 64) and ref


def test_config_records() -> None:
    text = "gorae.name\nweb\0gorae.publish\n80:3000\0gorae.publish\n443:3443\0gorae.env\nA=multi\nline\0"
    assert parse_config_z(text) == {
        "name": ["web"],
        "publish": ["80:3000", "443:3443"],
        "env": ["A=multi\nline"],
    }


@given(st.text())
def test_config_records_never_raise(text: str) -> None:
    for key, values in parse_config_z(text).items():
        assert "\0" not in key and all("\0" not in v for v in values)


def test_demux_exact() -> None:
    raw = b"\x01\0\0\0\0\0\0\x03abc" + b"\x02\0\0\0\0\0\0\x02de"
    assert demux(raw) == b"abcde"
    assert demux(b"plain tty output") == b"plain tty output"


@given(st.binary())
def test_demux_never_raises(raw: bytes) -> None:
    assert len(demux(raw)) <= len(raw)


def test_target_from_settings() -> None:
    t = target_from(
        {
            "name": ["web"],
            "publish": ["8080:3000", "127.0.0.1:9000:9000/tcp"],
            "env": ["A=1"],
            "keep": ["2"],
            "healthcmd": ["true"],
            "healthinterval": ["2s"],
            "network": ["appnet"],
            "readytimeout": ["5s"],
        }  # fmt: skip
    )
    assert t.name == "web" and t.keep == 2 and t.health_timeout == 5.0 and t.network == "appnet"
    assert t.body["Env"] == ["A=1"]
    assert t.body["HostConfig"]["PortBindings"] == {
        "3000/tcp": [{"HostIp": "", "HostPort": "8080"}],
        "9000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "9000"}],
    }
    assert t.body["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 2_000_000_000, "Retries": 3}
    assert t.published() == [":8080", "127.0.0.1:9000"]


def test_service_target_from_settings() -> None:
    t = target_from(
        {
            "name": ["web"],
            "service": ["true"],
            "replicas": ["3"],
            "publish": ["8080:3000"],
            "env": ["A=1"],
            "volume": ["/srv/data:/data:ro", "cache:/cache", "/anon"],
            "network": ["appnet"],
            "healthcmd": ["true"],
        }  # fmt: skip
    )
    assert t.service == {
        "ContainerSpec": {
            "Env": ["A=1"],
            "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 1_000_000_000, "Retries": 3},
            "Mounts": [
                {"Type": "bind", "Source": "/srv/data", "Target": "/data", "ReadOnly": True},
                {"Type": "volume", "Source": "cache", "Target": "/cache"},
                {"Type": "volume", "Target": "/anon"},
            ],
        },
        "Ports": [{"Protocol": "tcp", "TargetPort": 3000, "PublishedPort": 8080, "PublishMode": "ingress"}],
        "Replicas": 3,
        "Networks": [{"Target": "appnet", "Aliases": []}],
    }
    assert target_from({"name": ["web"], "service": ["false"]}).service == {}


def test_service_settings_refused() -> None:
    import pytest

    with pytest.raises(OptError, match="hostip is not supported"):
        target_from({"name": ["web"], "service": ["true"], "publish": ["127.0.0.1:80:80"]})
    with pytest.raises(ValueError, match="--replicas cannot be negative"):
        target_from({"name": ["web"], "service": ["true"], "replicas": ["-1"]})
    with pytest.raises(OptError, match="invalid mode: rx"):
        volume_mount("/a:/b:rx")
    with pytest.raises(OptError, match="the target must be an absolute path"):
        volume_mount("a:b")


@given(st.text(max_size=40))
def test_volume_mount_hostile(value: str) -> None:
    try:
        m = volume_mount(value)
    except OptError:
        return
    assert m["Type"] in ("bind", "volume") and m["Target"].startswith("/")


@settings(max_examples=200)
@given(st.dictionaries(st.sampled_from(["name", "publish", "env", "volume", "keep", "readytimeout", "service",
                                        "replicas", "stoptimeout", "healthinterval", "healthretries"]),
                       st.lists(st.text(max_size=20), max_size=3)))  # fmt: skip
def test_target_from_hostile_settings(cfg: dict[str, list[str]]) -> None:
    try:
        t = target_from(cfg)
    except (OptError, ValueError):
        return
    assert check_name(t.name) == t.name


@given(st.text(max_size=80))
def test_names(name: str) -> None:
    try:
        assert check_name(name) == name
    except ValueError:
        return
    assert name == name.lower() and "/" not in name and name[:1].isalnum()


def test_history_skips_torn_lines() -> None:
    root = tempfile.mkdtemp(prefix="gorae-deploy-unit-")
    try:
        app = App("web", root)
        app.create("/srv/web.git")
        app.record({"seq": 1, "result": "deployed"})
        with open(os.path.join(root, "web", "history.jsonl"), "a") as f:
            f.write('[1, 2]\n{"seq": 2, "res')
        assert [h["seq"] for h in app.history()] == [1]
        assert app.next_seq() == 2
        assert app.git_dir == "/srv/web.git"
    finally:
        import shutil

        shutil.rmtree(root)
