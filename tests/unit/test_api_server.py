"""The API server over a unix socket: framing, keep-alive, streaming, hijacking, errors, versions."""

from __future__ import annotations

import grp
import http.client
import json
import os
import shutil
import socket
import stat
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator

import docker
import pytest
from test_api_server_harness import (
    Recorder,
    ServerThread,
    make_router,
    parse_frames,
    read_all,
    read_head,
    unix_connect,
)

from gorae.api.http import Request
from gorae.api.router import Router, check_version, split_version
from gorae.errors import InvalidParameter


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def sock_path(rec: Recorder) -> Iterator[str]:
    tmp = tempfile.mkdtemp(prefix="gorae-api-")
    path = os.path.join(tmp, "api.sock")
    srv = ServerThread(make_router(rec), rec)
    srv.call(srv.server.listen_unix(path, mode=0o660))
    try:
        yield path
    finally:
        srv.stop()
        os.rmdir(tmp)


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self) -> None:
        self.sock = unix_connect(self.path)


def get(path: str, target: str, method: str = "GET", body: bytes | None = None) -> tuple[int, dict, bytes]:
    c = UnixHTTPConnection(path)
    try:
        c.request(method, target, body=body)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


# -- pure parts -----------------------------------------------------------------------------------


def test_query_helpers() -> None:
    req = Request(
        method="GET",
        path="/x",
        query={
            "a": ["1"],
            "b": ["False"],
            "c": [""],
            "d": ["True"],
            "n": ["12"],
            "bad": ["x"],
            "j": ['{"k":1}'],
        },
    )
    assert req.qbool("a") and req.qbool("d") and not req.qbool("b") and not req.qbool("c")
    assert req.qbool("absent", True) and not req.qbool("absent")
    assert req.qint("n") == 12 and req.qint("absent", 5) == 5
    with pytest.raises(InvalidParameter):
        req.qint("bad")
    assert req.qjson("j") == {"k": 1}
    with pytest.raises(InvalidParameter):
        req.qjson("bad")


def test_versions() -> None:
    assert split_version("/v1.41/containers/json") == ("/containers/json", "1.41")
    assert split_version("/version") == ("/version", None)
    assert split_version("/volumes") == ("/volumes", None)
    check_version("1.24")
    check_version("1.45")
    with pytest.raises(InvalidParameter, match="too new"):
        check_version("1.46")
    with pytest.raises(InvalidParameter, match="too old"):
        check_version("1.9")


def test_router_patterns() -> None:
    async def h(req: Request) -> None:
        return None

    r = Router()
    r.add("GET", "/images/{name:.+}/json", h)
    r.add("DELETE", "/images/{name:.+}", h)
    r.add("GET", "/containers/{id}/json", h)
    assert r.resolve("GET", "/images/localhost:5000/a/b:1/json")[1] == {"name": "localhost:5000/a/b:1"}
    assert r.resolve("DELETE", "/images/a/json")[1] == {"name": "a/json"}
    assert r.resolve("HEAD", "/containers/abc/json")[1] == {"id": "abc"}
    with pytest.raises(LookupError):
        r.resolve("GET", "/containers/a/b/json")
    with pytest.raises(ValueError):
        r.add("GET", "/containers/{id}/json", h)


# -- over the wire --------------------------------------------------------------------------------


def test_socket_mode_and_group(rec: Recorder) -> None:
    tmp = tempfile.mkdtemp(prefix="gorae-api-")
    path = os.path.join(tmp, "g.sock")
    group = "daemon" if _group_exists("daemon") else None
    srv = ServerThread(make_router(rec), rec)
    try:
        srv.call(srv.server.listen_unix(path, group=group))
        st = os.stat(path)
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660
        if group:
            assert st.st_gid == grp.getgrnam(group).gr_gid
        srv.call(srv.server.listen_unix(path + "2", group="no-such-group-gorae"))
        with pytest.raises(OSError, match="another daemon"):
            srv.call(srv.server.listen_unix(path))  # a live socket is not stolen
    finally:
        srv.stop()
    assert not os.path.exists(path)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)  # a socket file nobody listens on is replaced
    stale.close()
    srv = ServerThread(make_router(rec), rec)
    try:
        srv.call(srv.server.listen_unix(path))
        assert get(path, "/_ping")[2] == b"OK"
    finally:
        srv.stop()
    os.rmdir(tmp)


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def test_ping_headers(sock_path: str) -> None:
    status, headers, body = get(sock_path, "/_ping")
    assert (status, body) == (200, b"OK")
    assert headers["api-version"] == "1.45"
    assert headers["docker-experimental"] == "false"
    assert headers["ostype"] == "linux"
    assert headers["server"] == "gorae/0.1.0 (linux)"
    assert headers["content-length"] == "2"
    status, headers, body = get(sock_path, "/_ping", method="HEAD")
    assert (status, body, headers["content-length"]) == (200, b"", "2")


def test_header_casing_on_the_wire(sock_path: str) -> None:
    s = unix_connect(sock_path)
    s.sendall(b"GET /v1.45/_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = read_all(s)
    s.close()
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    for h in (b"Api-Version: 1.45", b"Docker-Experimental: false", b"Ostype: linux", b"Server: gorae/0.1.0"):
        assert h in data
    assert data.endswith(b"\r\n\r\nOK")


def test_errors(sock_path: str) -> None:
    status, _, body = get(sock_path, "/nope")
    assert (status, json.loads(body)) == (404, {"message": "page not found"})
    status, headers, body = get(sock_path, "/echo", method="DELETE")
    assert status == 405 and "GET" in headers["allow"]
    status, _, body = get(sock_path, "/boom")
    assert (status, json.loads(body)) == (500, {"message": "kaboom"})
    status, _, body = get(sock_path, "/containers/abc/json")  # "c1" exists, the rest do not
    assert (status, json.loads(body)) == (404, {"message": "No such container: abc"})
    status, headers, body = get(sock_path, "/containers/abc/start", method="POST")
    assert (status, body) == (304, b"") and "content-length" not in headers
    status, _, body = get(sock_path, "/echo", method="POST", body=b"{bad json")
    assert status == 400 and json.loads(body)["message"].startswith("invalid JSON")
    status, _, body = get(sock_path, "/echo?filters=%7Bx", method="GET")
    assert status == 400


def test_version_prefix(sock_path: str) -> None:
    status, _, body = get(
        sock_path, "/v1.40/echo?all=1&filters=%7B%22a%22%3A%7B%22b%22%3Atrue%7D%7D", "POST", b"{}"
    )
    doc = json.loads(body)
    assert status == 200
    assert (doc["version"], doc["path"], doc["all"], doc["filters"]) == ("1.40", "/echo", True, {"a": ["b"]})
    doc = json.loads(get(sock_path, "/echo")[2])
    assert doc["version"] == "1.45" and doc["body"] is None
    status, _, body = get(sock_path, "/v1.99/_ping")
    assert status == 400
    assert json.loads(body) == {
        "message": "client version 1.99 is too new. Maximum supported API version is 1.45"
    }
    status, _, body = get(sock_path, "/v1.12/_ping")
    assert status == 400
    assert json.loads(body)["message"] == (
        "client version 1.12 is too old. Minimum supported API version is 1.24, "
        "please upgrade your client to a newer version"
    )
    status, _, body = get(sock_path, "/v1.45/images/registry:5000/a/b:latest/json")
    assert json.loads(body) == {"name": "registry:5000/a/b:latest"}
    status, _, body = get(sock_path, "/images/a%2Fb/json")
    assert json.loads(body) == {"name": "a/b"}


def test_keep_alive_many_requests(sock_path: str, rec: Recorder) -> None:
    c = UnixHTTPConnection(sock_path)
    c.connect()
    first = c.sock
    try:
        for target, method, body, want in [
            ("/_ping", "GET", None, 200),
            ("/ignore", "POST", b"x" * 100_000, 200),  # body never read by the handler
            ("/echo", "POST", b'{"a": 1}', 200),
            ("/nope", "GET", None, 404),
            ("/_ping", "HEAD", None, 200),
            ("/containers/x/start", "POST", None, 304),
            ("/nothing", "POST", None, 204),
            ("/upload", "POST", b"y" * 300_000, 200),
            ("/stream?n=2&delay=0", "GET", None, 200),
            ("/_ping", "GET", None, 200),
        ]:
            c.request(method, target, body=body)
            r = c.getresponse()
            data = r.read()
            assert r.status == want, (target, data)
            if target == "/echo":
                assert json.loads(data)["body"] == {"a": 1}
            if target == "/upload":
                assert json.loads(data)["size"] == 300_000
            assert c.sock is first, f"connection was not kept after {target}"
    finally:
        c.close()
    assert ("POST", "/ignore", 200) in rec.access


def test_chunked_request_body(sock_path: str) -> None:
    c = UnixHTTPConnection(sock_path)
    try:
        c.request("POST", "/upload", body=iter([b"a" * 1000, b"b" * 5000, b"c"]), encode_chunked=True)
        r = c.getresponse()
        assert json.loads(r.read())["size"] == 6001
        c.request("GET", "/_ping")
        assert c.getresponse().read() == b"OK"
    finally:
        c.close()


def test_big_unread_body_closes(sock_path: str) -> None:
    s = unix_connect(sock_path)
    s.sendall(b"POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n" + b"z" * 1000)
    line, headers, _ = read_head(s)
    assert line == b"HTTP/1.1 200 OK" and headers["connection"] == "close"
    s.close()


def test_pipelined_requests(sock_path: str) -> None:
    s = unix_connect(sock_path)
    req = b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n"
    s.sendall(req * 3 + b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = read_all(s)
    s.close()
    assert data.count(b"HTTP/1.1 200 OK") == 4


def test_fast_path_then_h11_on_one_connection(sock_path: str) -> None:
    """Simple requests are answered without h11; a chunked one hands the connection to h11 for good."""
    s = unix_connect(sock_path)
    s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
    line, headers, rest = read_head(s)
    assert line == b"HTTP/1.1 200 OK" and headers["content-length"] == "2"
    while len(rest) < 2:
        rest += s.recv(10)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
    s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = read_all(s)
    s.close()
    assert data.count(b"HTTP/1.1 200 OK") == 2 and data.endswith(b"OK")


def test_stream_on_a_simple_request_then_keep_alive(sock_path: str) -> None:
    c = UnixHTTPConnection(sock_path)
    try:
        c.request("GET", "/stream?n=2&delay=0")
        assert c.getresponse().read() == b'{"n":0}\n{"n":1}\n'
        c.request("GET", "/_ping")
        assert c.getresponse().read() == b"OK"
    finally:
        c.close()


def test_half_closed_simple_request_is_answered(sock_path: str) -> None:
    s = unix_connect(sock_path)
    s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
    s.shutdown(socket.SHUT_WR)
    data = read_all(s)
    s.close()
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b"\r\n\r\nOK")


def test_stream_is_flushed(sock_path: str, rec: Recorder) -> None:
    c = UnixHTTPConnection(sock_path)
    try:
        c.request("GET", "/stream?n=3&delay=0.3")
        r = c.getresponse()
        assert r.status == 200 and r.getheader("Transfer-Encoding") == "chunked"
        assert r.getheader("Content-Type") == "application/json"
        first = r.read1(65536)
        arrived = time.monotonic()
        rest = first + r.read()
        assert len(rec.produced) == 3
        assert arrived < rec.produced[2], "first chunk did not arrive before the last was produced"
        assert first == b'{"n":0}\n'
        assert rest == b'{"n":0}\n{"n":1}\n{"n":2}\n'
    finally:
        c.close()


def test_stream_client_disconnect_closes_iterator(sock_path: str, rec: Recorder) -> None:
    s = unix_connect(sock_path)
    s.sendall(b"GET /forever HTTP/1.1\r\nHost: x\r\n\r\n")
    line, headers, rest = read_head(s)
    assert line == b"HTTP/1.1 200 OK" and headers["transfer-encoding"] == "chunked"
    s.close()
    assert rec.stream_closed.wait(5)


def test_hijack_upgrade_with_pipelined_bytes_and_half_close(sock_path: str, rec: Recorder) -> None:
    s = unix_connect(sock_path)
    s.sendall(
        b"POST /v1.45/containers/c1/attach?stream=1&stdin=1&stdout=1 HTTP/1.1\r\nHost: docker\r\n"
        b"Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\nhello, early bytes"
    )
    line, headers, rest = read_head(s)
    assert line == b"HTTP/1.1 101 UPGRADED"
    assert headers["content-type"] == "application/vnd.docker.multiplexed-stream"
    assert headers["connection"] == "Upgrade" and headers["upgrade"] == "tcp"
    assert headers["api-version"] == "1.45"
    assert "content-length" not in headers and "transfer-encoding" not in headers
    s.sendall(b"more")
    time.sleep(0.1)
    s.shutdown(socket.SHUT_WR)
    data = rest + read_all(s)
    s.close()
    frames = parse_frames(data)
    assert b"".join(d for _, d in frames[:-1]) == b"hello, early bytesmore"
    assert frames[-1] == (1, b"bye")
    assert rec.hijack_done.is_set()


def test_hijack_without_upgrade(sock_path: str) -> None:
    s = unix_connect(sock_path)
    s.sendall(b"POST /containers/c1/attach?stream=1 HTTP/1.1\r\nHost: x\r\n\r\nabc")
    s.shutdown(socket.SHUT_WR)
    line, headers, rest = read_head(s)
    assert line == b"HTTP/1.1 200 OK"
    assert headers["content-type"] == "application/vnd.docker.multiplexed-stream"
    assert "content-length" not in headers and "transfer-encoding" not in headers
    frames = parse_frames(rest + read_all(s))  # the server closes at the end
    s.close()
    assert frames == [(1, b"abc"), (1, b"bye")]


def test_hijack_exec_with_body_and_trailing_bytes(sock_path: str) -> None:
    s = unix_connect(sock_path)
    body = b'{"Detach":false,"Tty":false}'
    s.sendall(
        b"POST /exec/e1/start HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%sstdin!" % (len(body), body)
    )
    s.shutdown(socket.SHUT_WR)
    line, _, rest = read_head(s)
    assert line == b"HTTP/1.1 101 UPGRADED"
    frames = parse_frames(rest + read_all(s))
    s.close()
    assert frames == [(1, b"stdin!"), (2, b"body:['Detach', 'Tty']"), (1, b"bye")]


def test_docker_py(sock_path: str) -> None:
    api = docker.APIClient(base_url=f"unix://{sock_path}", version="1.45", timeout=10)
    try:
        assert api.ping() is True
        assert api.version()["ApiVersion"] == "1.45"
        auto = docker.APIClient(base_url=f"unix://{sock_path}", version="auto", timeout=10)
        assert auto.api_version == "1.45"
        auto.close()
        with pytest.raises(docker.errors.NotFound, match="No such container: zz"):
            api.inspect_container("zz")
        sock = api.attach_socket("c1", params={"stdin": 1, "stdout": 1, "stream": 1})._sock
        sock.sendall(b"from docker-py")
        sock.shutdown(socket.SHUT_WR)
        frames = parse_frames(read_all(sock))
        sock.close()
        assert b"".join(d for _, d in frames[:-1]) == b"from docker-py" and frames[-1] == (1, b"bye")
        sock = api.exec_start("e1", socket=True)._sock
        sock.shutdown(socket.SHUT_WR)
        frames = parse_frames(read_all(sock))
        sock.close()
        assert frames == [(2, b"body:['Detach', 'Tty']"), (1, b"bye")]
        assert api.ping() is True  # the pooled connection still works
    finally:
        api.close()


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker CLI")
def test_docker_cli(sock_path: str) -> None:
    env = {**os.environ, "DOCKER_HOST": f"unix://{sock_path}", "DOCKER_CONFIG": os.path.dirname(sock_path)}
    out = subprocess.run(
        ["docker", "version", "--format", "{{.Server.APIVersion}} {{.Client.APIVersion}}"],
        env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1.45 1.45"  # the CLI negotiated down to our version
    # the Go client's own hijack: Upgrade, stdin, CloseWrite, then it reads until we close
    out = subprocess.run(
        ["docker", "exec", "-i", "c1", "cat"], input="hello from the CLI", env=env, capture_output=True,
        text=True, timeout=30,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout == "hello from the CLIbye"
    assert out.stderr.startswith("body:[") and "'Detach'" in out.stderr  # exec start's JSON body


def test_graceful_shutdown(rec: Recorder) -> None:
    tmp = tempfile.mkdtemp(prefix="gorae-api-")
    path = os.path.join(tmp, "s.sock")
    srv = ServerThread(make_router(rec), rec)
    srv.call(srv.server.listen_unix(path))
    idle = UnixHTTPConnection(path)
    idle.request("GET", "/_ping")
    assert idle.getresponse().read() == b"OK"
    streaming = unix_connect(path)
    streaming.sendall(b"GET /forever HTTP/1.1\r\nHost: x\r\n\r\n")
    read_head(streaming)
    assert srv.server.connection_count == 2
    srv.stop()
    assert rec.stream_closed.wait(5)
    assert idle.sock.recv(10) == b""
    streaming.settimeout(5)
    read_all(streaming)  # ends: the server closed it
    idle.close()
    streaming.close()
    assert not os.path.exists(path)
    os.rmdir(tmp)


def test_ping_latency_keep_alive(sock_path: str) -> None:
    c = UnixHTTPConnection(sock_path)
    try:
        for _ in range(200):
            c.request("GET", "/_ping")
            c.getresponse().read()
        samples = []
        for _ in range(2000):
            t0 = time.perf_counter()
            c.request("GET", "/_ping")
            c.getresponse().read()
            samples.append(time.perf_counter() - t0)
    finally:
        c.close()
    median = statistics.median(samples) * 1e6
    p99 = sorted(samples)[int(len(samples) * 0.99)] * 1e6
    print(f"\nGET /_ping keep-alive round trip: median {median:.0f} us, p99 {p99:.0f} us")
    assert median < 2000
