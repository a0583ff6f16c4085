"""The healthcheck's pure rules, pinned to moby's daemon/health.go: which command a probe runs, how a result
moves Status/FailingStreak/Log (checked against an independent model over hostile sequences), when the next
probe is due, the output cap, Go's duration text in the timeout message, and `ps`'s status text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gorae.container.health import (
    MAX_OUTPUT,
    ProbeResult,
    _Output,
    health_status,
    health_text,
    next_delay_ns,
    probe_command,
    record_result,
)
from gorae.container.state import status_text
from gorae.humanize import go_duration

S = 10**9


@pytest.mark.parametrize(
    ("config", "cmd"),
    [
        ({"Healthcheck": {"Test": ["CMD", "curl", "-f", "x"]}}, ["curl", "-f", "x"]),
        ({"Healthcheck": {"Test": ["CMD-SHELL", "echo ok"]}}, ["/bin/sh", "-c", "echo ok"]),
        ({"Healthcheck": {"Test": ["CMD-SHELL", "echo ok"]}, "Shell": ["/bin/ash", "-eo"]}, ["/bin/ash", "-eo", "echo ok"]),
        ({"Healthcheck": {"Test": ["NONE"]}}, None),
        ({"Healthcheck": {"Test": []}}, None),
        ({"Healthcheck": {"Interval": S}}, None),
        ({"Healthcheck": {"Test": ["BOGUS", "x"]}}, None),
        ({"Healthcheck": {"Test": ["CMD"]}}, None),
        ({}, None),
    ],
)
def test_probe_command(config: dict, cmd: list[str] | None) -> None:
    assert probe_command(config) == cmd


def _model(results: list[tuple[int, int]], retries: int, start_period: int) -> tuple[str, int]:
    """moby's handleProbeResult written out plainly: (exit code, start offset) per probe."""
    status, streak = "starting", 0
    for code, start in results:
        if code == 0:
            status, streak = "healthy", 0
            continue
        if status == "starting" and start < start_period:
            continue
        streak += 1
        if streak >= (retries if retries > 0 else 3):
            status = "unhealthy"
    return status, streak


@given(
    st.lists(st.tuples(st.sampled_from([0, 1, 2, -1, 127]), st.integers(0, 100)), max_size=30),
    st.integers(-1, 5),
    st.integers(0, 60),
)
def test_record_result_matches_mobys_rules(results: list[tuple[int, int]], retries: int, period: int) -> None:
    hc = {"Retries": retries, "StartPeriod": period * S}
    h: dict = {"Status": "starting", "FailingStreak": 0, "Log": []}
    results = sorted(results, key=lambda r: r[1])
    for i, (code, start) in enumerate(results):
        h = record_result(h, ProbeResult(start * S, start * S + 1, code, f"out{i}"), hc, started_ns=0)
    assert (h["Status"], h["FailingStreak"]) == _model(results, retries, period)
    assert [e["Output"] for e in h["Log"]] == [f"out{i}" for i in range(len(results))][-5:]


def test_log_entry_shape() -> None:
    h = record_result({"Status": "starting", "FailingStreak": 0, "Log": []}, ProbeResult(S, 2 * S + 5, 0, "ok\n"), {}, started_ns=0)
    assert h == {
        "Status": "healthy",
        "FailingStreak": 0,
        "Log": [{"Start": "1970-01-01T00:00:01Z", "End": "1970-01-01T00:00:02.000000005Z", "ExitCode": 0, "Output": "ok\n"}],
    }


def test_next_delay_as_mobys_get_interval() -> None:
    hc = {"Interval": 10 * S, "StartInterval": S, "StartPeriod": 30 * S}
    assert next_delay_ns(hc, started_ns=0, now_ns=0, status="starting") == S  # start interval while starting
    assert next_delay_ns(hc, started_ns=0, now_ns=0, status="healthy") == 10 * S
    assert next_delay_ns(hc, started_ns=0, now_ns=25 * S, status="starting") == 5 * S  # never past the period
    assert next_delay_ns(hc, started_ns=0, now_ns=31 * S, status="starting") == 10 * S
    assert next_delay_ns({}, started_ns=0, now_ns=0, status="starting") == 30 * S  # defaults: 30s, no period


def test_output_is_capped_like_dockers_limited_buffer() -> None:
    out = _Output()
    out.add(b"a" * (MAX_OUTPUT - 1))
    out.add(b"bc")
    assert out.text() == "a" * (MAX_OUTPUT - 1) + "b..."
    small = _Output()
    small.add(b"\xffok")
    assert small.text() == "\ufffdok"


@pytest.mark.parametrize(
    ("ns", "text"),
    [(0, "0s"), (300 * 10**6, "300ms"), (S, "1s"), (1_500_000_000, "1.5s"), (90 * S, "1m30s"), (3600 * S, "1h0m0s"),
     (250_000, "250µs"), (7, "7ns"), (30 * S, "30s")],
)  # fmt: skip
def test_go_duration(ns: int, text: str) -> None:
    assert go_duration(ns) == text


def test_status_texts() -> None:
    running = {"Status": "running", "Running": True}
    assert health_status(running) == "none" and health_text(running) is None
    for h, shown in (("starting", "health: starting"), ("healthy", "healthy"), ("unhealthy", "unhealthy")):
        st_ = {**running, "Health": {"Status": h, "FailingStreak": 0, "Log": []}}
        assert health_status(st_) == h and health_text(st_) == shown
        assert status_text(st_, started_ns=0, finished_ns=0, now_ns=5 * S) == f"Up 5 seconds ({shown})"
    paused = {"Status": "paused", "Running": True, "Paused": True, "Health": {"Status": "unhealthy"}}
    assert status_text(paused, started_ns=0, finished_ns=0, now_ns=5 * S) == "Up 5 seconds (Paused)"
