"""Healthchecks run as dockerd runs them, checked with the docker CLI against gorae and a real dockerd alike:
`--health-*` probes through exec (CMD-SHELL, output captured, timeouts), `State.Health` and its log,
`health_status` events (and the probes' exec events), `(healthy)`/`(health: starting)` in `ps`, the
`health=` filter, an image's HEALTHCHECK merged with the flags, `--no-healthcheck`, and probes stopping
with the container (status "unhealthy" after stop or pause, as dockerd 20.10 reports it). Probes run every
200 ms; tests wait on the daemon's events, never on a clock."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator

import pytest
from cli_daemon import NET, gorae_env, wait_for_event

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run containers")

FAST = ["--health-interval", "200ms"]


@pytest.fixture
def names(dk) -> Iterator[list[str]]:  # noqa: ANN001
    made: list[str] = []
    yield made
    if made:
        dk("rm", "-f", *made)


def _name(names: list[str]) -> str:
    n = f"hc-{uuid.uuid4().hex[:8]}"
    names.append(n)
    return n


def wait_event(daemon, name: str, action: str, since: str, timeout: float = 30.0, count: int = 1) -> list[str]:  # noqa: ANN001
    return wait_for_event(gorae_env(daemon), name, action, since, timeout=timeout, count=count)


def health(dk, name: str) -> dict:  # noqa: ANN001
    r = dk("inspect", "-f", "{{json .State.Health}}", name)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _since() -> str:
    return f"{time.time():.6f}"


def test_passing_check_becomes_healthy_with_docker_events(dk, daemon, names) -> None:  # noqa: ANN001
    n = _name(names)
    since = _since()
    r = dk("run", "-d", "--name", n, *NET, "--health-cmd", "echo ok", *FAST, "busybox", "sleep", "300")
    assert r.returncode == 0, r.stderr
    seen = wait_event(daemon, n, "health_status: healthy", since)
    # the probe is an exec, with dockerd's events for it, and the status event comes after it
    assert seen[:2] == ["create", "start"]
    assert seen[2:] == [
        "exec_create: /bin/sh -c echo ok",
        "exec_start: /bin/sh -c echo ok",
        "exec_die",
        "health_status: healthy",
    ]
    h = health(dk, n)
    assert h["Status"] == "healthy" and h["FailingStreak"] == 0
    first = h["Log"][0]
    assert (first["ExitCode"], first["Output"]) == (0, "ok\n")
    assert first["Start"] <= first["End"]
    assert dk("ps", "-f", f"name={n}", "--format", "{{.Status}}").stdout.strip().endswith("(healthy)")
    assert dk("ps", "-f", "health=healthy", "-f", f"name={n}", "--format", "{{.Names}}").stdout.split() == [n]
    assert dk("ps", "-f", "health=unhealthy", "-f", f"name={n}", "--format", "{{.Names}}").stdout == ""


def test_failing_check_turns_unhealthy_after_retries(dk, daemon, names) -> None:  # noqa: ANN001
    n = _name(names)
    since = _since()
    r = dk("run", "-d", "--name", n, *NET, "--health-cmd", "echo bad >&2; exit 3", "--health-retries", "2",
           *FAST, "busybox", "sleep", "300")  # fmt: skip
    assert r.returncode == 0, r.stderr
    seen = wait_event(daemon, n, "health_status: unhealthy", since)
    assert seen.count("exec_die") == 2  # exactly `retries` failures
    h = health(dk, n)
    assert h["Status"] == "unhealthy" and h["FailingStreak"] >= 2
    assert {(e["ExitCode"], e["Output"]) for e in h["Log"]} == {(3, "bad\n")}
    assert dk("ps", "-f", f"name={n}", "--format", "{{.Status}}").stdout.strip().endswith("(unhealthy)")
    assert dk("ps", "-f", "health=unhealthy", "-f", f"name={n}", "--format", "{{.Names}}").stdout.split() == [n]


def test_log_keeps_the_last_five_results(dk, daemon, names) -> None:  # noqa: ANN001
    n = _name(names)
    r = dk("run", "-d", "--name", n, *NET, "--health-cmd", "date", "--health-interval", "100ms",
           "busybox", "sleep", "300")  # fmt: skip
    assert r.returncode == 0, r.stderr
    wait_event(daemon, n, "exec_die", "0", count=8)
    log = health(dk, n)["Log"]
    assert len(log) == 5
    assert [e["Start"] for e in log] == sorted(e["Start"] for e in log)


def test_timeout_is_a_failure_with_dockers_message(dk, daemon, names) -> None:  # noqa: ANN001
    n = _name(names)
    since = _since()
    r = dk("run", "-d", "--name", n, *NET, "--health-cmd", "sleep 30", "--health-timeout", "300ms",
           "--health-retries", "1", *FAST, "busybox", "sleep", "300")  # fmt: skip
    assert r.returncode == 0, r.stderr
    wait_event(daemon, n, "health_status: unhealthy", since)
    entry = health(dk, n)["Log"][0]
    assert (entry["ExitCode"], entry["Output"]) == (-1, "Health check exceeded timeout (300ms)")


def test_starting_until_the_first_probe(dk, names) -> None:  # noqa: ANN001
    n = _name(names)
    r = dk("run", "-d", "--name", n, *NET, "--health-cmd", "true", "--health-interval", "1h", "busybox", "sleep", "300")
    assert r.returncode == 0, r.stderr
    assert health(dk, n) == {"Status": "starting", "FailingStreak": 0, "Log": []}
    assert dk("ps", "-f", f"name={n}", "--format", "{{.Status}}").stdout.strip().endswith("(health: starting)")
    assert dk("ps", "-f", "health=starting", "-f", f"name={n}", "--format", "{{.Names}}").stdout.split() == [n]


def test_stop_and_pause_end_the_probes(dk, daemon, names) -> None:  # noqa: ANN001
    n, p = _name(names), _name(names)
    since = _since()
    for name in (n, p):
        r = dk("run", "-d", "--name", name, *NET, "--health-cmd", "true", *FAST, "busybox", "sleep", "300")
        assert r.returncode == 0, r.stderr
    wait_event(daemon, n, "health_status: healthy", since)
    wait_event(daemon, p, "health_status: healthy", since)
    assert dk("stop", "-t", "0", n).returncode == 0
    assert dk("pause", p).returncode == 0
    # dockerd 20.10 reports a stopped monitor as unhealthy, with no event for it
    assert health(dk, n)["Status"] == "unhealthy"
    assert health(dk, p)["Status"] == "unhealthy"
    assert dk("ps", "-a", "-f", "health=healthy", "-f", f"name={n}", "--format", "{{.Names}}").stdout == ""
    # no probe runs any more: a later start is the next thing that happens to the stopped one
    since = _since()
    assert dk("start", n).returncode == 0
    seen = wait_event(daemon, n, "health_status: healthy", since)
    assert seen[0] == "start"
    assert dk("unpause", p).returncode == 0
    wait_event(daemon, p, "health_status: healthy", _since())


def test_image_healthcheck_merges_and_no_healthcheck_disables(dk, daemon, names) -> None:  # noqa: ANN001
    base = _name(names)
    image = f"hcimg-{uuid.uuid4().hex[:8]}:1"
    assert dk("create", "--name", base, "busybox", "true").returncode == 0
    r = dk("commit", "-c", 'HEALTHCHECK CMD ["echo", "from-image"]', base, image)
    assert r.returncode == 0, r.stderr
    try:
        n = _name(names)
        since = _since()
        assert dk("run", "-d", "--name", n, *NET, *FAST, image, "sleep", "300").returncode == 0
        wait_event(daemon, n, "health_status: healthy", since)
        cfg = json.loads(dk("inspect", "-f", "{{json .Config.Healthcheck}}", n).stdout)
        assert cfg == {"Test": ["CMD", "echo", "from-image"], "Interval": 200_000_000}
        assert health(dk, n)["Log"][0]["Output"] == "from-image\n"
        off = _name(names)
        assert dk("run", "-d", "--name", off, *NET, "--no-healthcheck", image, "sleep", "300").returncode == 0
        assert dk("inspect", "-f", "{{json .State.Health}}", off).stdout.strip() == "null"
        assert dk("ps", "-f", "health=none", "-f", f"name={off}", "--format", "{{.Names}}").stdout.split() == [off]
        assert dk("ps", "-f", f"name={off}", "--format", "{{.Status}}").stdout.strip().startswith("Up ")
        assert "(" not in dk("ps", "-f", f"name={off}", "--format", "{{.Status}}").stdout
    finally:
        dk("rm", "-f", *names)
        names.clear()
        dk("rmi", image)


def test_bad_values_are_refused_as_docker(dk) -> None:  # noqa: ANN001
    r = dk("ps", "-f", "health=bogus")
    assert (r.returncode, r.stderr.strip()) == (1, "Error response from daemon: Unrecognised filter value for health: bogus")


def test_cli_health_flags_match_docker(g, dk) -> None:  # noqa: ANN001
    for args in (["--no-healthcheck", "--health-cmd", "x"], ["--health-retries", "-1", "--health-cmd", "x"]):
        want, got = dk("create", *args, "busybox", "true"), g("create", *args, "busybox", "true")
        # gorae's CLI names itself where docker's says "docker:"
        assert got.returncode == want.returncode == 125
        assert got.stderr.splitlines()[0].removeprefix("gorae:") == want.stderr.splitlines()[0].removeprefix("docker:")
