"""Unit tests of the client: HTTP framing over a socketpair, chunked bodies, JSON streams, hijack, demux,
host resolution, version negotiation and flag parsing."""

from __future__ import annotations

import socket
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gorae.cli.flags import FlagError, O, Spec, parse, wrap
from gorae.client.api import APIClient, negotiate
from gorae.client.errors import APIError
from gorae.client.host import parse_host, resolve_host
from gorae.client.streams import Demuxer, frame


def serve(path: str, answers: list[bytes], seen: list[bytes]) -> threading.Thread:
    """A fake daemon: answers requests in order, whichever connection they arrive on; closes a connection
    after sending the last answer."""
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(4)
    lock = threading.Lock()
    pending = list(answers)

    def handle(conn: socket.socket) -> None:
        data = b""
        while True:
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    conn.close()
                    return
                data += chunk
            head, _, data = data.partition(b"\r\n\r\n")
            with lock:
                seen.append(head)
                answer = pending.pop(0)
                last = not pending
            conn.sendall(answer)
            if last:
                conn.close()
                return

    def run() -> None:
        while pending:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()
            srv.settimeout(5)
        srv.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_keepalive_chunked_and_errors(tmp_path) -> None:  # noqa: ANN001
    path = str(tmp_path / "s.sock")
    seen: list[bytes] = []
    answers = [
        b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 2\r\n\r\nOK",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n2\r\n2]\r\n0\r\n\r\n",
        b'HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 38\r\n\r\n{"message":"No such container: nope"}\n',
    ]
    serve(path, answers, seen)
    c = APIClient(parse_host(f"unix://{path}"))
    assert c.version == "1.41"
    assert c.get_json("/x") == [1, 2]
    with pytest.raises(APIError) as ei:
        c.get_json("/containers/nope/json")
    assert str(ei.value) == "Error response from daemon: No such container: nope"
    assert seen[1].startswith(b"GET /v1.41/x HTTP/1.1\r\n")
    c.close()


def test_json_stream_and_hijack(tmp_path) -> None:  # noqa: ANN001
    path = str(tmp_path / "s.sock")
    seen: list[bytes] = []
    answers = [
        b"HTTP/1.1 200 OK\r\nApi-Version: 1.50\r\nContent-Length: 0\r\n\r\n",
        b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n{"a":1}\r\n9\r\n\n{"b":2}\n\r\n0\r\n\r\n',
        b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n" + frame(1, b"early"),
    ]
    serve(path, answers, seen)
    c = APIClient(parse_host(path))
    assert c.version == "1.45"
    assert list(c.stream_json("GET", "/events")) == [{"a": 1}, {"b": 2}]
    h = c.hijack("/containers/x/attach", {"stream": 1})
    got = b"".join(h)
    assert list(Demuxer().feed(got)) == [(1, b"early")]
    assert b"Upgrade: tcp" in seen[2]


def test_demux_split_frames() -> None:
    data = frame(1, b"hello") + frame(2, b"") + frame(2, b"err")
    d = Demuxer()
    out = []
    for i in range(len(data)):
        out += list(d.feed(data[i : i + 1]))
    assert out == [(1, b"hello"), (2, b""), (2, b"err")]


@given(st.lists(st.tuples(st.sampled_from([1, 2]), st.binary(max_size=50)), max_size=10), st.integers(1, 30))
def test_demux_roundtrip(frames: list[tuple[int, bytes]], step: int) -> None:
    data = b"".join(frame(s, p) for s, p in frames)
    d = Demuxer()
    out = []
    for i in range(0, len(data), step):
        out += list(d.feed(data[i : i + step]))
    assert out == frames


def test_hosts_and_negotiation() -> None:
    assert parse_host("tcp://1.2.3.4:2376").port == 2376
    assert parse_host("tcp://h").port == 2375
    assert resolve_host(env={}).url == "unix:///run/gorae.sock"
    assert resolve_host(env={"DOCKER_HOST": "unix:///a"}).path == "/a"
    assert resolve_host(env={"DOCKER_HOST": "unix:///a", "GORAE_HOST": "unix:///b"}).path == "/b"
    assert resolve_host(["unix:///c"], env={"GORAE_HOST": "unix:///b"}).path == "/c"
    h = resolve_host(
        env={"DOCKER_HOST": "tcp://h:2376", "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": "/nonexistent"}
    )
    assert h.tls and h.tls_verify
    assert negotiate("1.41") == "1.41" and negotiate("1.50") == "1.45" and negotiate(None) == "1.24"


SPEC = Spec(
    "run",
    "",
    "",
    [
        O("interactive", "i"),
        O("tty", "t"),
        O("env", "e", "list"),
        O("name", None, "string"),
        O("last", "n", "int"),
    ],
    interspersed=False,
)


def test_flag_parsing() -> None:
    v, args = parse(SPEC, ["-it", "-eA=1", "-e", "B=2", "--name=x", "img", "-i", "--x"])
    assert v["interactive"] and v["tty"] and v["env"] == ["A=1", "B=2"] and v["name"] == "x"
    assert args == ["img", "-i", "--x"]
    with pytest.raises(FlagError, match="unknown flag: --nope"):
        parse(SPEC, ["--nope"])
    with pytest.raises(FlagError, match="flag needs an argument"):
        parse(SPEC, ["--name"])
    with pytest.raises(FlagError, match="invalid argument"):
        parse(SPEC, ["-n", "x"])
    v, _ = parse(SPEC, ["--tty=false", "-n=3"])
    assert v["tty"] is False and v["last"] == 3


@given(st.lists(st.text(max_size=8), max_size=6))
def test_flag_parser_never_crashes(argv: list[str]) -> None:
    try:
        parse(SPEC, argv)
    except FlagError:
        pass
    except Exception as e:  # HelpRequested is fine too
        assert type(e).__name__ == "HelpRequested"


def test_pflag_wrap() -> None:
    assert wrap(24, 79, "Show n last created containers (includes all states) (default -1)") == (
        "Show n last created containers (includes all\n" + " " * 24 + "states) (default -1)"
    )
