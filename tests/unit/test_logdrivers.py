"""Logging drivers without a daemon: json-file's encoding (hostile text round-trips, dockerd's escapes), the
rotating writer's bounds and the reader across rotated and compressed files, the spool reader against a
simulated conmon (cut lines, file replacement, a new reader resuming from the saved position), dockerd's
option checks (hostile names and values only ever give InvalidParameter), daemon defaults, and the syslog and
journald wire formats through sockets the tests bind."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gorae.daemon.config import load_config
from gorae.errors import GoraeError, InvalidParameter
from gorae.runtime import jsonlog
from gorae.runtime import logdrivers as drv
from gorae.runtime.logs import LogRecord
from gorae.runtime.logship import LINE_MAX, SpoolReader

T0 = 1_765_000_000_123_456_789


def test_encode_entry_is_dockers_line() -> None:
    line = jsonlog.encode_entry(LogRecord(1, T0, b'a<b>&"\\\x01\x08\t\n'))
    assert line == (
        b'{"log":"a\\u003cb\\u003e\\u0026\\"\\\\\\u0001\\u0008\\t\\n","stream":"stdout",'
        b'"time":"2025-12-06T05:46:40.123456789Z"}\n'
    )
    attrs = jsonlog.encode_attrs({"b": "2", "a": "1"})
    assert jsonlog.encode_entry(LogRecord(2, T0 - 789, b"x"), attrs) == (
        b'{"log":"x","stream":"stderr","attrs":{"a":"1","b":"2"},"time":"2025-12-06T05:46:40.123456Z"}\n'
    )


@given(st.text(), st.sampled_from([1, 2]), st.integers(min_value=0, max_value=2**62))
def test_entries_round_trip(text: str, stream: int, t: int) -> None:
    data = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace").encode()
    line = jsonlog.encode_entry(LogRecord(stream, t, data))
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert b"<" not in line and b">" not in line and b"&" not in line
    back = jsonlog.decode_entry(line[:-1])
    assert back is not None and (back.stream, back.data, back.time_ns) == (stream, data, t)


@given(st.binary(max_size=200))
def test_decode_never_crashes(raw: bytes) -> None:
    rec = jsonlog.decode_entry(raw)
    assert rec is None or rec.stream in (1, 2)


@pytest.mark.parametrize("compress", [False, True])
def test_rotation_bounds_and_reads_back_the_tail(tmp_path, compress: bool) -> None:  # noqa: ANN001
    path = str(tmp_path / "c-json.log")
    w = jsonlog.RotatingWriter(path, max_size=1000, max_file=3, compress=compress)
    lines = [f"line{i}-{'x' * (i % 50)}\n".encode() for i in range(2000)]
    for i, data in enumerate(lines):
        w.write(LogRecord(1 + i % 2, T0 + i, data))
    w.close()
    names = sorted(os.listdir(tmp_path))
    ext = ".gz" if compress else ""
    assert names == ["c-json.log", f"c-json.log.1{ext}", f"c-json.log.2{ext}"]
    if not compress:
        assert sum(os.path.getsize(tmp_path / n) for n in names) <= 3 * (1000 + 200)
    got = [d for _, d in jsonlog.read_log(path)]
    assert got == lines[len(lines) - len(got) :] and 20 < len(got) < 200
    assert [d for _, d in jsonlog.read_log(path, tail=3)] == lines[-3:]
    kept = range(len(lines) - len(got), len(lines))
    assert [d for _, d in jsonlog.read_log(path, stdout=False)] == [lines[i] for i in kept if i % 2]


def test_follower_lagging_several_rotations_loses_nothing(tmp_path) -> None:  # noqa: ANN001
    """The follower reads the history, then the writer rotates 10 times before it looks again: it reads the
    rest of its old file, the rotated files after it and the new current one, each line once, in order."""
    path = str(tmp_path / "c-json.log")
    w = jsonlog.RotatingWriter(path, max_size=300, max_file=20)
    lines = [f"line{i}-{'x' * 40}\n".encode() for i in range(60)]
    done = False

    async def follow() -> list[bytes]:
        got: list[bytes] = []
        gen = jsonlog.follow_log(path, exited=lambda: done, poll_interval=0.01)
        for data in lines[:2]:
            w.write(LogRecord(1, T0, data))
        w.flush()
        got.append((await gen.__anext__())[1])  # history read, the follower holds the current file
        for i, data in enumerate(lines[2:]):
            w.write(LogRecord(1, T0 + i, data))
            w.flush()
        nonlocal done
        done = True
        got.extend([d async for _, d in gen])
        return got

    got = asyncio.run(follow())
    w.close()
    assert len([n for n in os.listdir(tmp_path) if ".log." in n]) >= 10  # it did lag many rotations
    assert got == lines


def test_max_file_one_truncates(tmp_path) -> None:  # noqa: ANN001
    path = str(tmp_path / "c-json.log")
    w = jsonlog.RotatingWriter(path, max_size=300, max_file=1)
    for i in range(100):
        w.write(LogRecord(1, T0 + i, f"{i}\n".encode()))
    w.close()
    assert os.listdir(tmp_path) == ["c-json.log"] and os.path.getsize(path) <= 300 + 80
    assert [d for _, d in jsonlog.read_log(path)][-1] == b"99\n"


def _k8s(t: int, stream: str, partial: bool, data: bytes) -> bytes:
    stamp = f"2025-12-06T05:46:40.{t:09d}+00:00".encode()
    return stamp + b" " + stream.encode() + b" " + (b"P" if partial else b"F") + b" " + data + b"\n"


def test_spool_reader_joins_cut_lines_and_follows_replacement(tmp_path) -> None:  # noqa: ANN001
    spool = str(tmp_path / "ctr.log")
    with open(spool, "wb") as f:
        f.write(_k8s(1, "stdout", True, b"hel") + _k8s(2, "stderr", False, b"e1") + _k8s(3, "stdout", False, b"lo"))
        f.write(_k8s(4, "stdout", True, b"to-be-"))
    r = SpoolReader(spool, spool + ".pos")
    assert [(x.stream, x.data) for x in r.read()] == [(2, b"e1\n"), (1, b"hello\n")]
    r.save()
    # conmon replaces the full spool: what the old file still held comes first
    with open(spool, "ab") as f:
        f.write(_k8s(5, "stdout", False, b"continued"))
    os.rename(spool, spool + ".old")
    with open(spool, "wb") as f:
        f.write(_k8s(6, "stdout", False, b"new-file"))
    assert [x.data for x in r.read()] == [b"to-be-continued\n", b"new-file\n"]
    r.save()
    r.close()
    # a new reader (a restarted daemon) resumes after what was shipped, with a begun line kept
    with open(spool, "ab") as f:
        f.write(_k8s(7, "stdout", False, b"after-restart") + _k8s(8, "stdout", True, b"tail"))
    r2 = SpoolReader(spool, spool + ".pos")
    assert [x.data for x in r2.read()] == [b"after-restart\n"]
    r2.save()
    r2.close()
    r3 = SpoolReader(spool, spool + ".pos")
    assert r3.read() == []
    assert [(x.data, x.time_ns % 10**9) for x in r3.flush_pending()] == [(b"tail", 8)]
    r3.close()


def test_spool_reader_cuts_lines_past_16k(tmp_path) -> None:  # noqa: ANN001
    spool = str(tmp_path / "ctr.log")
    with open(spool, "wb") as f:
        for i in range(5):
            f.write(_k8s(i, "stdout", True, b"x" * 8192))
        f.write(_k8s(9, "stdout", False, b"end"))
    r = SpoolReader(spool, spool + ".pos")
    got = [x.data for x in r.read()]
    r.close()
    assert got == [b"x" * LINE_MAX, b"x" * LINE_MAX, b"x" * 8192 + b"end\n"]


@pytest.mark.parametrize(
    ("kind", "opts", "err"),
    [
        ("bogus", {}, 'error looking up logging plugin bogus: plugin "bogus" not found'),
        ("json-file", {"foo": "1"}, "unknown log opt 'foo' for json-file log driver"),
        ("local", {"labels": "x"}, "unknown log opt 'labels' for log driver local"),
        ("syslog", {"syslog-address": "tcp"}, "syslog-address should be in form proto://address, got tcp"),
        ("syslog", {"syslog-address": "unix:///nonexistent"}, "stat /nonexistent: no such file or directory"),
        ("syslog", {"syslog-facility": "nope"}, "invalid syslog facility"),
        ("json-file", {"mode": "fast"}, "logger: log mode fast not supported"),
    ],
)
def test_check_refuses_as_dockerd(kind: str, opts: dict[str, str], err: str) -> None:
    with pytest.raises(InvalidParameter) as e:
        drv.check(kind, opts)
    assert e.value.message == err


def test_check_accepts_dockers_options() -> None:
    drv.check("none", {})
    drv.check("json-file", {"max-size": "10m", "max-file": "3", "compress": "true", "labels": "a", "tag": "x"})
    drv.check("syslog", {"syslog-address": "udp://1.2.3.4", "syslog-format": "rfc5424micro", "cache-disabled": "true"})
    drv.check("journald", {"tag": "{{.Name}}", "env-regex": "^A"})


@settings(max_examples=300)
@given(st.text(max_size=12), st.dictionaries(st.text(max_size=20), st.text(max_size=30), max_size=4))
def test_check_and_rotation_only_raise_invalid_parameter(kind: str, opts: dict[str, str]) -> None:
    for fn in (lambda: drv.check(kind, opts), lambda: drv.json_rotation(opts), lambda: drv.local_rotation(opts)):
        try:
            fn()
        except InvalidParameter:
            pass


@given(st.text(max_size=15))
def test_parse_size_only_raises_value_error(value: str) -> None:
    try:
        assert drv.parse_size(value) >= 0
    except ValueError as e:
        assert str(e) == f"invalid size: '{value}'"


@pytest.mark.parametrize(("text", "n"), [("1k", 1000), ("1kb", 1000), ("10m", 10_000_000), ("1.5k", 1500), ("7", 7)])
def test_parse_size_is_decimal_like_go_units(text: str, n: int) -> None:
    assert drv.parse_size(text) == n


def test_rotation_values_as_dockerd() -> None:
    assert drv.json_rotation({}) == drv.Rotation(-1, 1, False)
    assert drv.json_rotation({"max-size": "1k", "max-file": "2", "compress": "1"}) == drv.Rotation(1000, 2, True)
    assert drv.local_rotation({}) == drv.Rotation(20 * 1024 * 1024, 5, True)  # dockerd's local: 20 MiB × 5
    with pytest.raises(InvalidParameter, match="^compression cannot be enabled when max file count is 1$"):
        drv.local_rotation({"max-file": "1"})


def test_merge_defaults_as_dockerd() -> None:
    assert drv.merge_defaults({}, "local", {"max-size": "1m"}) == {"Type": "local", "Config": {"max-size": "1m"}}
    assert drv.merge_defaults({"Type": "json-file"}, "local", {"max-size": "1m"}) == {"Type": "json-file", "Config": {}}
    assert drv.merge_defaults({"Type": "local", "Config": {"max-size": "2m"}}, "local", {"max-size": "1m", "max-file": "2"}) == {
        "Type": "local", "Config": {"max-size": "2m", "max-file": "2"}}  # fmt: skip


def test_daemon_json_and_flags_set_the_default(tmp_path) -> None:  # noqa: ANN001
    cfg = tmp_path / "daemon.json"
    cfg.write_text(json.dumps({"log-driver": "local", "log-opts": {"max-size": "5m"}}))
    c = load_config(["--config-file", str(cfg)])
    assert (c.log_driver, c.log_opts) == ("local", {"max-size": "5m"})
    cfg.write_text("{}")
    c = load_config(["--config-file", str(cfg), "--log-driver", "syslog", "--log-opt", "tag=x", "--log-opt", "syslog-format=rfc3164"])
    assert (c.log_driver, c.log_opts) == ("syslog", {"tag": "x", "syslog-format": "rfc3164"})
    for bad in ({"log-driver": "bogus"}, {"log-opts": {"nope": "1"}}, {"log-opts": {"max-size": 5}}):
        cfg.write_text(json.dumps(bad))
        with pytest.raises(GoraeError):
            load_config(["--config-file", str(cfg)])


INFO = drv.ContainerInfo(
    id="ab" * 32, name="web", image_name="busybox", image_id="sha256:" + "cd" * 32,
    labels={"team": "x", "other": "y"}, env=["E=1", "F=2", "NOVAL"], directory="/nonexistent",
)  # fmt: skip


def test_tag_and_attrs() -> None:
    assert drv.tag_of(INFO, {}) == "abababababab"
    assert drv.tag_of(INFO, {"tag": "{{.Name}}/{{.ImageName}}/{{.ImageID}}"}) == "web/busybox/cdcdcdcdcdcd"
    assert drv.attrs_of(INFO, {"labels": "team,missing", "env": "E,NOVAL"}) == {"team": "x", "E": "1", "NOVAL": ""}
    assert drv.attrs_of(INFO, {"env-regex": "^F"}) == {"F": "2"}


@pytest.mark.parametrize(
    ("fmt", "pattern"),
    [
        ("", rb"<30>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d web\[\d+\]: hello\n"),
        ("rfc3164", rb"<30>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ web\[\d+\]: hello\n"),
        ("rfc5424", rb"<30>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:Z|[+-]\d\d:\d\d) \S+ web \d+ web - hello\n"),
        ("rfc5424micro", rb"<30>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{1,6}(?:Z|[+-]\d\d:\d\d) \S+ web \d+ web - hello\n"),
    ],
)
def test_syslog_formats_over_a_unix_datagram_socket(tmp_path, fmt: str, pattern: bytes) -> None:  # noqa: ANN001
    import re

    path = str(tmp_path / "log.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        srv.bind(path)
        srv.settimeout(5)
        sink = drv.SyslogSink(INFO, {"syslog-address": f"unixgram://{path}", "syslog-format": fmt, "tag": "{{.Name}}"})
        sink.write(LogRecord(1, T0, b"hello\n"))
        sink.close()
        assert re.fullmatch(pattern, srv.recv(1000))
    finally:
        srv.close()


def test_syslog_over_tcp_and_refused_connection() -> None:
    srv = socket.socket()
    try:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        port = srv.getsockname()[1]
        sink = drv.SyslogSink(INFO, {"syslog-address": f"tcp://127.0.0.1:{port}", "syslog-facility": "local0"})
        conn, _ = srv.accept()
        conn.settimeout(5)
        sink.write(LogRecord(2, T0, b"boom\n"))
        sink.close()
        data = conn.recv(1000)
        conn.close()
        assert data.startswith(b"<131>") and data.endswith(b" abababababab[" + str(os.getpid()).encode() + b"]: boom\n")
    finally:
        srv.close()
    with pytest.raises(GoraeError) as e:
        drv.SyslogSink(INFO, {"syslog-address": f"tcp://127.0.0.1:{port}"})
    assert e.value.message == f"failed to initialize logging driver: dial tcp 127.0.0.1:{port}: connect: connection refused"


def test_journald_native_protocol(tmp_path) -> None:  # noqa: ANN001
    path = str(tmp_path / "journal.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        srv.bind(path)
        srv.settimeout(5)
        sink = drv.JournaldSink(INFO, {"labels": "team"}, path=path)
        sink.write(LogRecord(2, T0, b"two\nlines\n"))
        sink.write(LogRecord(1, T0, b"part"))
        sink.close()
        first, second = srv.recv(4096), srv.recv(4096)
    finally:
        srv.close()
    body = b"two\nlines"
    assert first.startswith(b"MESSAGE\n" + struct.pack("<Q", len(body)) + body + b"\n")
    fields = dict(x.split(b"=", 1) for x in first[8 + 8 + len(body) + 1 :].splitlines())
    assert fields == {
        b"CONTAINER_ID": b"abababababab", b"CONTAINER_ID_FULL": b"ab" * 32, b"CONTAINER_NAME": b"web",
        b"CONTAINER_TAG": b"abababababab", b"IMAGE_NAME": b"busybox", b"SYSLOG_IDENTIFIER": b"abababababab",
        b"TEAM": b"x", b"PRIORITY": b"3",
    }  # fmt: skip
    assert b"MESSAGE=part\n" in second and b"CONTAINER_PARTIAL_MESSAGE=true\n" in second and b"PRIORITY=6\n" in second


def test_journald_absent_is_dockerds_error(tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(GoraeError) as e:
        drv.JournaldSink(INFO, {}, path=str(tmp_path / "none"))
    assert e.value.message == "failed to initialize logging driver: journald is not enabled on this host"


@given(st.text(max_size=40))
def test_syslog_address_only_raises_invalid_parameter(address: str) -> None:
    try:
        proto, addr = drv.parse_syslog_address(address)
    except InvalidParameter:
        return
    assert proto in ("", "udp", "tcp", "tcp+tls", "unix", "unixgram")


@settings(max_examples=200)
@given(st.binary(max_size=600))
def test_spool_reader_survives_hostile_bytes(tmp_path_factory, raw: bytes) -> None:  # noqa: ANN001
    d = tmp_path_factory.mktemp("spool")
    spool = str(d / "ctr.log")
    with open(spool, "wb") as f:
        f.write(raw + b"\n" + _k8s(1, "stdout", False, b"last"))
    r = SpoolReader(spool, spool + ".pos")
    try:
        recs = r.read() + r.flush_pending()
        r.save()
    finally:
        r.close()
    assert all(x.stream in (1, 2) for x in recs)
    assert any(x.data.endswith(b"last\n") for x in recs)


def test_shipped_bytes_are_punched_out_and_a_new_reader_resumes(tmp_path) -> None:  # noqa: ANN001
    spool = str(tmp_path / "ctr.log")
    first = [_k8s(i, "stdout", False, f"line{i}-{'y' * 60}".encode()) for i in range(3000)]
    with open(spool, "wb") as f:
        f.write(b"".join(first))
    r = SpoolReader(spool, spool + ".pos")
    assert len(r.read()) == 3000
    r.save()
    r.close()
    st = os.stat(spool)
    assert st.st_size == len(b"".join(first))
    assert st.st_blocks * 512 <= 16 * 1024  # the first page (and a partial last one) is all that is kept
    with open(spool, "ab") as f:
        f.write(_k8s(9, "stderr", False, b"after"))
    r2 = SpoolReader(spool, spool + ".pos")
    assert [(x.stream, x.data) for x in r2.read()] == [(2, b"after\n")]
    r2.close()
