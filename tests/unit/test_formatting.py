"""Tests of docker's human output helpers (go-units, widths and ellipsis, ports, tabwriter); --format output
is tested through `ps` and `inspect` in test_gotemplate_golden.py."""

from __future__ import annotations

import pytest

from gorae.cli.formatting import (
    bytes_size,
    display_width,
    ellipsis,
    human_duration,
    human_size,
    ports_string,
    ps_command,
    tabwrite,
)

MIN, HOUR, DAY = 60, 3600, 86400
WEEK, MONTH, YEAR = 7 * DAY, 30 * DAY, 365 * DAY


@pytest.mark.parametrize(
    ("seconds", "want"),
    [
        (0.45, "Less than a second"),
        (1, "1 second"),
        (45, "45 seconds"),
        (59, "59 seconds"),
        (60, "About a minute"),
        (3 * MIN, "3 minutes"),
        (35 * MIN + 40, "35 minutes"),
        (59 * MIN, "59 minutes"),
        (HOUR, "About an hour"),
        (HOUR + 29 * MIN, "About an hour"),
        (HOUR + 31 * MIN, "2 hours"),
        (3 * HOUR + 31 * MIN, "4 hours"),
        (24 * HOUR, "24 hours"),
        (DAY + 12 * HOUR, "36 hours"),
        (2 * DAY, "2 days"),
        (13 * DAY + 5 * HOUR, "13 days"),
        (2 * WEEK, "2 weeks"),
        (4 * WEEK + 3 * DAY, "4 weeks"),
        (MONTH, "4 weeks"),
        (MONTH + 2 * WEEK, "6 weeks"),
        (2 * MONTH, "2 months"),
        (5 * MONTH + 2 * WEEK, "5 months"),
        (24 * MONTH, "24 months"),
        (24 * MONTH + 2 * WEEK, "2 years"),
        (3 * YEAR + 2 * MONTH, "3 years"),
        (-5, "Less than a second"),
    ],
)
def test_human_duration_like_go_units(seconds: float, want: str) -> None:
    assert human_duration(seconds) == want


@pytest.mark.parametrize(
    ("size", "want"),
    [
        (0, "0B"),
        (999, "999B"),
        (1000, "1kB"),
        (5370, "5.37kB"),
        (1240000, "1.24MB"),
        (1982284, "1.98MB"),
        (999_500, "1e+03kB"),
        (67108864, "67.1MB"),
        (10**12, "1TB"),
        (1e30, "1e+06YB"),
    ],
)
def test_human_size_like_go_units(size: float, want: str) -> None:
    assert human_size(size) == want


@pytest.mark.parametrize(
    ("size", "want"),
    [
        (0, "0B"),
        (512, "512B"),
        (1024, "1KiB"),
        (1536 * 1024 * 1024, "1.5GiB"),
        (7.5 * 2**20, "7.5MiB"),
        (123456789, "117.7MiB"),
    ],
)
def test_bytes_size_like_go_units(size: float, want: str) -> None:
    assert bytes_size(size) == want


def test_command_ellipsis_like_ps() -> None:
    assert ps_command("sh -c 'echo hi'") == "\"sh -c 'echo hi'\""
    assert ps_command("sh -c 'echo hello world forever'") == '"sh -c \'echo hello w…"'
    assert (
        ps_command("sh -c 'echo hello world forever'", trunc=False) == "\"sh -c 'echo hello world forever'\""
    )
    assert ellipsis("你好世界你好世界你好世界", 9) == "你好世界…"
    assert ellipsis("abc", 1) == "a"
    assert display_width("你好a") == 5


def test_ports_like_docker_ps() -> None:
    # the API's Ports list and what docker ps 28 printed for it
    ports = [
        {"IP": "127.0.0.1", "PrivatePort": 9001, "PublicPort": 9001, "Type": "udp"},
        {"PrivatePort": 5000, "Type": "tcp"},
        {"PrivatePort": 5001, "Type": "tcp"},
        {"PrivatePort": 5002, "Type": "tcp"},
        {"IP": "0.0.0.0", "PrivatePort": 7000, "PublicPort": 7000, "Type": "tcp"},
        {"IP": "::", "PrivatePort": 7000, "PublicPort": 7000, "Type": "tcp"},
        {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8081, "Type": "tcp"},
        {"IP": "::", "PrivatePort": 80, "PublicPort": 8081, "Type": "tcp"},
        {"IP": "127.0.0.1", "PrivatePort": 9000, "PublicPort": 9000, "Type": "udp"},
    ]
    assert ports_string(ports) == (
        "5000-5002/tcp, 0.0.0.0:7000->7000/tcp, [::]:7000->7000/tcp, 127.0.0.1:9000-9001->9000-9001/udp, "
        "0.0.0.0:8081->80/tcp, [::]:8081->80/tcp"
    )
    assert ports_string([]) == ""


def test_tabwriter_like_go() -> None:
    # Go's tabwriter example: b and c are distinct columns, d and e are in no column
    text = "aaaa\tbbb\td\naa\tb\tdd\na\t\naa\tcccc\teee\n"
    assert tabwrite(text, minwidth=0, padding=1) == "aaaa bbb d\naa   b   dd\na    \naa   cccc eee\n"
    assert tabwrite("CONTAINER ID\tNAMES\nabc\tx\n") == "CONTAINER ID   NAMES\nabc            x\n"
