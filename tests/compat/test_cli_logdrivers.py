"""Logging drivers as dockerd has them, checked with the docker CLI against gorae and a real dockerd alike:
json-file's line format, rotation (`max-size`, `max-file`, `compress`: a container printing 160 KB keeps
about 2 KB) and `logs` across rotated files (also `-f`), `local` (no LogPath, readable), `none` (nothing
stored, docker's "does not support reading"), `syslog` to a socket the test listens on, `journald` refused
where no journal runs, and dockerd's errors for unknown drivers and options."""

from __future__ import annotations

import json
import os
import re
import socket
import uuid
from collections.abc import Iterator

import pytest
from cli_daemon import NET

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run containers")

LINE = re.compile(rb'^\{"log":"(?:[^"\\]|\\.)*","stream":"(?:stdout|stderr)","time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?Z"\}$')
PRINT_160K = "i=0; while [ $i -lt 4000 ]; do echo line$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done; printf partial; echo err >&2"


@pytest.fixture
def names(dk) -> Iterator[list[str]]:  # noqa: ANN001
    made: list[str] = []
    yield made
    if made:
        dk("rm", "-f", *made)


def _name(names: list[str]) -> str:
    n = f"lg-{uuid.uuid4().hex[:8]}"
    names.append(n)
    return n


def _inspect(dk, name: str) -> dict:  # noqa: ANN001
    r = dk("inspect", name)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)[0]


def test_json_file_rotation_bounds_the_log(dk, names) -> None:  # noqa: ANN001
    n = _name(names)
    r = dk("run", "--name", n, *NET, "--log-opt", "max-size=1k", "--log-opt", "max-file=2", "busybox", "sh", "-c", PRINT_160K)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout) == 150_897  # attached output is not cut
    doc = _inspect(dk, n)
    path = doc["LogPath"]
    assert path == os.path.join(os.path.dirname(path), f"{doc['Id']}-json.log")
    files = sorted(f for f in os.listdir(os.path.dirname(path)) if f.startswith(doc["Id"] + "-json.log"))
    assert files == [f"{doc['Id']}-json.log", f"{doc['Id']}-json.log.1"]
    sizes = [os.path.getsize(os.path.join(os.path.dirname(path), f)) for f in files]
    assert sum(sizes) <= 2 * 1024 + 200, sizes  # two files of 1k, each past it by at most one entry
    for f in files:
        with open(os.path.join(os.path.dirname(path), f), "rb") as fh:
            for line in fh.read().splitlines():
                assert LINE.match(line), line
    entries = []
    for f in reversed(files):
        with open(os.path.join(os.path.dirname(path), f), "rb") as fh:
            entries += [json.loads(x) for x in fh.read().splitlines()]
    # the last line without its newline; stderr's line races stdout's (in dockerd too) and may be rotated away
    assert [e["log"] for e in entries if e["stream"] == "stdout"][-2:] == ["line3999-xxxxxxxxxxxxxxxxxxxxxxxxxxxx\n", "partial"]
    assert [e["log"] for e in entries if e["stream"] == "stderr"] in ([], ["err\n"])
    logs = dk("logs", n)
    assert logs.returncode == 0
    out = logs.stdout.splitlines()
    # logs reads the rotated file, then the current one: a contiguous run of the last lines
    assert out[-1] == "partial" and logs.stderr in ("", "err\n")
    first = int(out[0].split("-")[0].removeprefix("line"))
    assert out[:-1] == [f"line{i}-xxxxxxxxxxxxxxxxxxxxxxxxxxxx" for i in range(first, 4000)]
    assert 3970 < first < 3995


def test_json_file_compress_keeps_gz_files_readable(dk, names) -> None:  # noqa: ANN001
    n = _name(names)
    script = "i=0; while [ $i -lt 400 ]; do echo line$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done"
    r = dk("run", "--name", n, *NET, "--log-opt", "max-size=1k", "--log-opt", "max-file=3", "--log-opt", "compress=true",
           "busybox", "sh", "-c", script)  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = _inspect(dk, n)
    d = os.path.dirname(doc["LogPath"])
    files = sorted(f.removeprefix(doc["Id"]) for f in os.listdir(d) if f.startswith(doc["Id"] + "-json.log"))
    assert files == ["-json.log", "-json.log.1.gz", "-json.log.2.gz"]
    out = dk("logs", n).stdout.splitlines()
    first = int(out[0].split("-")[0].removeprefix("line"))
    assert out == [f"line{i}-xxxxxxxxxxxxxxxxxxxxxxxxxxxx" for i in range(first, 400)]
    assert first < 380


def test_logs_follow_crosses_rotations(dk, daemon, names) -> None:  # noqa: ANN001
    n = _name(names)
    script = "i=0; while [ $i -lt 60 ]; do echo line$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); sleep 0.02; done"
    r = dk("run", "-d", "--name", n, *NET, "--log-opt", "max-size=500", "--log-opt", "max-file=20",
           "busybox", "sh", "-c", script)  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = dk("logs", "-f", n, timeout=60).stdout.splitlines()
    want = [f"line{i}-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" for i in range(60)]
    if daemon.target == "dref":  # dockerd 20.10's follower repeats a rotated file's last line; nothing is lost
        out = [line for i, line in enumerate(out) if i == 0 or line != out[i - 1]]
    assert out == want


def test_none_stores_nothing(g, dk, names) -> None:  # noqa: ANN001
    n = _name(names)
    r = dk("run", "--name", n, *NET, "--log-driver", "none", "busybox", "echo", "hi")
    assert (r.returncode, r.stdout) == (0, "hi\n")  # attach still works
    assert _inspect(dk, n)["LogPath"] == ""
    logs = dk("logs", n)
    assert (logs.returncode, logs.stdout, logs.stderr) == (
        1, "", "Error response from daemon: configured logging driver does not support reading\n")  # fmt: skip
    mine = g("logs", n)
    assert (mine.returncode, mine.stdout, mine.stderr) == (logs.returncode, logs.stdout, logs.stderr)
    d = os.path.dirname(_inspect(dk, n)["ResolvConfPath"])
    assert not [f for f in os.listdir(d) if f.endswith(".log") or ".log." in f]


def test_local_driver(dk, names) -> None:  # noqa: ANN001
    n = _name(names)
    r = dk("run", "--name", n, *NET, "--log-driver", "local", "busybox", "sh", "-c", "echo out; echo err >&2")
    assert r.returncode == 0, r.stderr
    doc = _inspect(dk, n)
    assert doc["LogPath"] == ""
    assert doc["HostConfig"]["LogConfig"] == {"Type": "local", "Config": {}}
    logs = dk("logs", n)
    assert (logs.stdout, logs.stderr) == ("out\n", "err\n")


def test_syslog_reaches_the_given_socket(dk, names) -> None:  # noqa: ANN001
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        srv.bind(("127.0.0.1", 0))
        srv.settimeout(30)
        n = _name(names)
        addr = f"udp://127.0.0.1:{srv.getsockname()[1]}"
        r = dk("run", "--name", n, *NET, "--log-driver", "syslog", "--log-opt", f"syslog-address={addr}",
               "busybox", "sh", "-c", "echo out; echo err >&2")  # fmt: skip
        assert r.returncode == 0, r.stderr
        cid = _inspect(dk, n)["Id"]
        got = sorted(srv.recv(4096) for _ in range(2))
        for msg, pri, text in zip(got, (b"27", b"30"), (b"err", b"out"), strict=True):
            # dockerd's default format (srslog's UnixFormatter): <PRI>Stamp TAG[PID]: MSG (facility daemon)
            m = re.fullmatch(rb"<(\d+)>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d (\w+)\[\d+\]: (.*)\n", msg)
            assert m is not None, msg
            assert (m.group(1), m.group(2), m.group(3)) == (pri, cid[:12].encode(), text)
        logs = dk("logs", n)  # dockerd's dual logging cache
        assert (logs.stdout, logs.stderr) == ("out\n", "err\n")
    finally:
        srv.close()


def test_journald_without_a_journal_is_refused_at_start(dk, names) -> None:  # noqa: ANN001
    if os.path.exists("/run/systemd/journal/socket"):
        pytest.skip("a systemd journal runs here")
    n = _name(names)
    r = dk("run", "--name", n, *NET, "--log-driver", "journald", "busybox", "echo", "hi")
    assert r.returncode == 125
    assert "docker: Error response from daemon: failed to initialize logging driver: journald is not enabled on this host\n" in r.stderr
    state = json.loads(dk("inspect", "-f", "{{json .State}}", n).stdout)
    assert (state["Status"], state["ExitCode"], state["Error"]) == (
        "created", 128, "failed to initialize logging driver: journald is not enabled on this host")  # fmt: skip
    logs = dk("logs", n)
    assert (logs.returncode, logs.stderr) == (1, "Error response from daemon: journald is not enabled on this host\n")


@pytest.mark.parametrize(
    ("args", "rc", "err"),
    [
        (["--log-driver", "bogus"], 1, 'error looking up logging plugin bogus: plugin "bogus" not found'),
        (["--log-opt", "foo=bar"], 1, "unknown log opt 'foo' for json-file log driver"),
        (["--log-driver", "local", "--log-opt", "labels=x"], 1, "unknown log opt 'labels' for log driver local"),
        (["--log-driver", "syslog", "--log-opt", "bogus=1"], 1, "unknown log opt 'bogus' for syslog log driver"),
        (["--log-driver", "journald", "--log-opt", "bogus=1"], 1, "unknown log opt 'bogus' for journald log driver"),
        (["--log-driver", "syslog", "--log-opt", "syslog-address=bogus://x"], 1,
         "syslog-address should be in form proto://address, got bogus://x"),
        (["--log-driver", "syslog", "--log-opt", "syslog-facility=bogus"], 1, "invalid syslog facility"),
        (["--log-driver", "syslog", "--log-opt", "syslog-format=bogus"], 1, "Invalid syslog format"),
    ],
)
def test_create_refuses_as_dockerd(dk, names, args: list[str], rc: int, err: str) -> None:  # noqa: ANN001
    r = dk("create", *args, "busybox", "true")
    assert (r.returncode, r.stderr) == (rc, f"Error response from daemon: {err}\n")


@pytest.mark.parametrize(
    ("opts", "err"),
    [
        (["max-size=abc"], "invalid size: 'abc'"),
        (["max-size=0"], "max-size must be a positive number"),
        (["max-size=1k", "max-file=0"], "max-file cannot be less than 1"),
        (["compress=true"], "compress cannot be true when max-file is less than 2 or max-size is not set"),
        (["max-size=1k", "max-file=2", "compress=maybe"], 'strconv.ParseBool: parsing "maybe": invalid syntax'),
    ],
)
def test_start_refuses_bad_json_file_values_as_dockerd(dk, names, opts: list[str], err: str) -> None:  # noqa: ANN001
    n = _name(names)
    args = [a for o in opts for a in ("--log-opt", o)]
    r = dk("run", "--name", n, *NET, *args, "busybox", "true")
    assert r.returncode == 125
    assert f"Error response from daemon: failed to initialize logging driver: {err}" in r.stderr


def test_cli_refuses_opts_for_none(g, dk) -> None:  # noqa: ANN001
    want = dk("create", "--log-driver", "none", "--log-opt", "max-size=1k", "busybox", "true")
    got = g("create", "--log-driver", "none", "--log-opt", "max-size=1k", "busybox", "true")
    assert got.returncode == want.returncode == 125
    assert got.stderr.splitlines()[0].removeprefix("gorae:") == want.stderr.splitlines()[0].removeprefix("docker:")
