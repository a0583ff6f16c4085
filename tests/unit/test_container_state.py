"""The container state table, restart decisions, names, and the create-time documents, tested directly."""

from __future__ import annotations

import random

import pytest

from gorae.container import state as cs
from gorae.container.config import (
    command_of,
    merge_image_config,
    normalize_config,
    normalize_host_config,
)
from gorae.container.files import hosts_file, resolv_conf
from gorae.container.names import random_name, validate_name
from gorae.container.restart import (
    FIRST_DELAY,
    MAX_DELAY,
    RestartPolicy,
    decide,
    parse_policy,
    parse_policy_string,
    restart_on_daemon_start,
)
from gorae.container.state import Event
from gorae.errors import Conflict, InvalidParameter, NotModified

# ---- the state table -------------------------------------------------------------------------------


def test_every_transition_lands_on_a_known_status_with_its_flags() -> None:
    for (src, event), dst in cs.TRANSITIONS.items():
        state = {**cs.initial_state(), "Status": src.value}
        out = cs.apply(state, event, "c1")
        assert out["Status"] == dst.value
        for flag, value in cs.FLAGS[dst].items():
            assert out[flag] is value


def test_refusals_and_transitions_do_not_overlap() -> None:
    assert not set(cs.TRANSITIONS) & set(cs.REFUSALS)


def test_life_of_a_container() -> None:
    st = cs.initial_state()
    assert st["Status"] == "created" and st["StartedAt"] == cs.ZERO_TIME
    st = cs.apply(st, Event.START, "c", Pid=42)
    assert st["Running"] and st["Pid"] == 42
    st = cs.apply(st, Event.PAUSE, "c")
    assert st["Status"] == "paused" and st["Running"] and st["Paused"]
    st = cs.apply(st, Event.UNPAUSE, "c")
    st = cs.apply(st, Event.EXIT_RESTART, "c", ExitCode=1)
    assert st["Status"] == "restarting" and st["Running"] and st["Restarting"] and st["Pid"] == 0
    st = cs.apply(st, Event.START, "c", Pid=43)
    st = cs.apply(st, Event.EXIT, "c", ExitCode=3)
    assert st["Status"] == "exited" and not st["Running"] and st["ExitCode"] == 3
    st = cs.apply(st, Event.REMOVE, "c")
    assert st["Status"] == "removing"
    st = cs.apply(st, Event.REMOVE_FAILED, "c")
    assert st["Status"] == "dead" and st["Dead"]


def test_docker_refusal_texts() -> None:
    running = cs.apply(cs.initial_state(), Event.START, "abc")
    with pytest.raises(NotModified):
        cs.check(running, Event.START, "abc")
    paused = cs.apply(running, Event.PAUSE, "abc")
    with pytest.raises(Conflict, match="Container abc is already paused"):
        cs.check(paused, Event.PAUSE, "abc")
    with pytest.raises(Conflict, match="cannot start a paused container, try unpause instead"):
        cs.check(paused, Event.START, "abc")
    with pytest.raises(Conflict, match="Container abc is not running"):
        cs.check(cs.initial_state(), Event.PAUSE, "abc")
    with pytest.raises(Conflict, match="Container abc is not paused"):
        cs.check(running, Event.UNPAUSE, "abc")


def test_failed_first_start_stays_created() -> None:
    st = cs.apply(cs.initial_state(), Event.START_FAILED, "c", ExitCode=127)
    assert st["Status"] == "created" and st["ExitCode"] == 127


@pytest.mark.parametrize(
    ("secs", "text"),
    [
        (0.2, "Less than a second"),
        (1, "1 second"),
        (3, "3 seconds"),
        (59, "59 seconds"),
        (60, "About a minute"),
        (150, "2 minutes"),
        (3600, "About an hour"),
        (3 * 3600, "3 hours"),
        (3 * 86400, "3 days"),
        (20 * 86400, "2 weeks"),
        (90 * 86400, "3 months"),
        (800 * 86400, "2 years"),
    ],
)
def test_human_duration_like_go_units(secs: float, text: str) -> None:
    assert cs.human_duration(secs) == text


def test_status_text() -> None:
    now = 1_000_000 * 10**9
    created = cs.initial_state()
    assert cs.status_text(created, 0, 0, now) == "Created"
    running = cs.apply(created, Event.START, "c")
    assert cs.status_text(running, now - 3 * 10**9, 0, now) == "Up 3 seconds"
    paused = cs.apply(running, Event.PAUSE, "c")
    assert cs.status_text(paused, now - 3 * 10**9, 0, now) == "Up 3 seconds (Paused)"
    exited = cs.apply(running, Event.EXIT, "c", ExitCode=2)
    assert cs.status_text(exited, now - 9 * 10**9, now - 5 * 10**9, now) == "Exited (2) 5 seconds ago"
    restarting = cs.apply(running, Event.EXIT_RESTART, "c", ExitCode=1)
    assert cs.status_text(restarting, 1, now - 2 * 10**9, now) == "Restarting (1) 2 seconds ago"


# ---- restart policies ------------------------------------------------------------------------------


def test_parse_policy_texts() -> None:
    assert parse_policy(None) == RestartPolicy("no", 0)
    assert parse_policy({"Name": ""}).is_none
    assert parse_policy_string("on-failure:3") == RestartPolicy("on-failure", 3)
    with pytest.raises(InvalidParameter, match="unknown policy 'sometimes'"):
        parse_policy({"Name": "sometimes"})
    with pytest.raises(InvalidParameter, match="can only be used with 'on-failure'"):
        parse_policy({"Name": "always", "MaximumRetryCount": 2})
    with pytest.raises(InvalidParameter, match="cannot be negative"):
        parse_policy({"Name": "on-failure", "MaximumRetryCount": -1})


def _decide(
    policy: str, code: int, count: int = 0, manual: bool = False, ran: float = 0.0, prev: float = 0.0
):
    return decide(
        parse_policy_string(policy),
        exit_code=code,
        restart_count=count,
        manually_stopped=manual,
        ran_for=ran,
        previous_delay=prev,
    )


def test_on_failure_counts_and_success_stops() -> None:
    assert _decide("on-failure:2", 1, count=0).restart
    assert _decide("on-failure:2", 1, count=1).restart
    assert not _decide("on-failure:2", 1, count=2).restart
    assert not _decide("on-failure", 0).restart
    assert _decide("on-failure", 1, count=1000).restart


def test_always_and_unless_stopped() -> None:
    assert _decide("always", 0).restart
    assert not _decide("always", 0, manual=True).restart  # a stop cancels the restart
    assert not _decide("unless-stopped", 1, manual=True).restart
    assert not _decide("no", 1).restart


def test_backoff_doubles_caps_and_resets_after_ten_seconds() -> None:
    d = _decide("always", 1)
    assert d.delay == FIRST_DELAY
    delays = []
    prev = 0.0
    for _ in range(12):
        d = _decide("always", 1, prev=prev, ran=0.5)
        delays.append(d.delay)
        prev = d.next_delay_state
    assert delays[:4] == [0.1, 0.2, 0.4, 0.8]
    assert max(delays) == MAX_DELAY
    assert _decide("always", 1, prev=prev, ran=10.0).delay == FIRST_DELAY


def test_daemon_start_restarts_always_even_after_manual_stop() -> None:
    kw = {"exit_code": 0, "restart_count": 0, "started_before": True}
    assert restart_on_daemon_start(parse_policy_string("always"), manually_stopped=True, **kw)
    assert not restart_on_daemon_start(parse_policy_string("unless-stopped"), manually_stopped=True, **kw)
    assert restart_on_daemon_start(parse_policy_string("unless-stopped"), manually_stopped=False, **kw)
    assert not restart_on_daemon_start(parse_policy_string("on-failure"), manually_stopped=False, **kw)
    kw["started_before"] = False
    assert not restart_on_daemon_start(parse_policy_string("always"), manually_stopped=False, **kw)


# ---- names -----------------------------------------------------------------------------------------


def test_random_names_look_like_docker() -> None:
    rng = random.Random(7)
    for attempt in range(200):
        name = random_name(attempt % 3, rng)
        assert name != "boring_wozniak"
        validate_name(name)
        left, _, right = name.partition("_")
        assert left.isalpha() and right
    assert random_name(1, rng)[-1].isdigit()


@pytest.mark.parametrize("bad", ["", "a", "-x", "_x", "x y", "x/y", "é1", ".x"])
def test_invalid_names(bad: str) -> None:
    with pytest.raises(InvalidParameter, match=r"Invalid container name"):
        validate_name(bad)


def test_valid_names_get_a_slash() -> None:
    assert validate_name("web-1.a_b") == "/web-1.a_b"
    assert validate_name("/web") == "/web"


# ---- create documents ------------------------------------------------------------------------------

IMAGE = {
    "Env": ["PATH=/bin", "A=image"],
    "Cmd": ["sh"],
    "Entrypoint": None,
    "WorkingDir": "/w",
    "Labels": {"l1": "image", "l2": "image"},
    "ExposedPorts": {"80/tcp": {}},
    "StopSignal": "SIGQUIT",
}


def test_merge_user_wins_key_by_key() -> None:
    cfg = merge_image_config(
        normalize_config({"Image": "x", "Env": ["A=user", "B=1"], "Labels": {"l1": "u"}}), IMAGE
    )
    assert cfg["Env"] == ["A=user", "B=1", "PATH=/bin"]
    assert cfg["Labels"] == {"l1": "u", "l2": "image"}
    assert cfg["Cmd"] == ["sh"] and cfg["WorkingDir"] == "/w" and cfg["StopSignal"] == "SIGQUIT"
    assert cfg["ExposedPorts"] == {"80/tcp": {}}


def test_entrypoint_resets_image_cmd() -> None:
    img = {**IMAGE, "Entrypoint": ["/init"], "Cmd": ["serve"]}
    cfg = merge_image_config(normalize_config({"Image": "x", "Entrypoint": ["echo"]}), img)
    assert cfg["Entrypoint"] == ["echo"] and not cfg["Cmd"]
    cfg = merge_image_config(normalize_config({"Image": "x", "Cmd": ["ls"]}), img)
    assert cfg["Entrypoint"] == ["/init"] and cfg["Cmd"] == ["ls"]
    cfg = merge_image_config(normalize_config({"Image": "x", "Entrypoint": [""]}), img)
    assert cfg["Entrypoint"] == [] and cfg["Cmd"] == ["serve"]
    assert command_of(cfg) == ("serve", [])


def test_no_command() -> None:
    cfg = merge_image_config(normalize_config({"Image": "x"}), {})
    with pytest.raises(InvalidParameter, match="No command specified"):
        command_of(cfg)


def test_host_config_defaults_and_checks() -> None:
    hc = normalize_host_config(None)
    assert hc["NetworkMode"] == "bridge"
    assert hc["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    assert hc["ShmSize"] == 64 * 1024 * 1024
    assert hc["MaskedPaths"] and hc["ReadonlyPaths"]
    with pytest.raises(InvalidParameter, match="AutoRemove"):
        normalize_host_config({"AutoRemove": True, "RestartPolicy": {"Name": "always"}})
    with pytest.raises(InvalidParameter, match="Minimum memory limit allowed is 6MB"):
        normalize_host_config({"Memory": 1024})
    with pytest.raises(InvalidParameter, match="Range of CPUs"):
        normalize_host_config({"NanoCpus": 1000}, ncpu=2)


def test_resolv_conf_drops_loopback_servers() -> None:
    host = "nameserver 127.0.0.53\nnameserver ::1\nsearch example.com\noptions ndots:2\n"
    text = resolv_conf(host, {})
    assert "nameserver 8.8.8.8\nnameserver 8.8.4.4" in text
    assert "127.0.0.53" not in text and "search example.com" in text and "options ndots:2" in text
    text = resolv_conf("nameserver 10.0.0.1\n", {"Dns": ["1.1.1.1"], "DnsSearch": ["a.b"]})
    assert "nameserver 1.1.1.1" in text and "10.0.0.1" not in text and "search a.b" in text
    assert resolv_conf("nameserver 10.0.0.1\n", {}) == "nameserver 10.0.0.1\n"


def test_hosts_file() -> None:
    text = hosts_file("abc", {"ExtraHosts": ["db:10.0.0.5"]}, ip="172.17.0.2")
    assert text.startswith("127.0.0.1\tlocalhost\n")
    assert "10.0.0.5\tdb\n" in text and "172.17.0.2\tabc\n" in text
