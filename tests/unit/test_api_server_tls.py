"""The API server over TCP and TCP+TLS with client-certificate verification (certificates made by openssl)."""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
from collections.abc import Iterator

import docker
import pytest
from test_api_server_harness import Recorder, ServerThread, make_router, parse_frames

from gorae.api.tls import server_context

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def _openssl(*args: str, cwd: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _issue(d: str, name: str, subj: str, ext: str) -> None:
    _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
             "-subj", subj, cwd=d)  # fmt: skip
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write(ext)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d)  # fmt: skip


@pytest.fixture(scope="module")
def certs() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="gorae-tls-")
    try:
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
                 "-days", "2", "-subj", "/CN=gorae test CA", cwd=d)  # fmt: skip
        _issue(d, "server", "/CN=localhost",
               "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")  # fmt: skip
        _issue(d, "client", "/CN=client", "extendedKeyUsage=clientAuth\n")
        yield d
    finally:
        shutil.rmtree(d)


@pytest.fixture
def tls_server(certs: str) -> Iterator[int]:
    rec = Recorder()
    srv = ServerThread(make_router(rec), rec)
    ctx = server_context(f"{certs}/server.pem", f"{certs}/server.key", client_ca=f"{certs}/ca.pem")
    _, port = srv.call(srv.server.listen_tcp("127.0.0.1", 0, ssl_context=ctx))
    try:
        yield port
    finally:
        srv.stop()


def _client_ctx(certs: str, with_cert: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=f"{certs}/ca.pem")
    if with_cert:
        ctx.load_cert_chain(f"{certs}/client.pem", f"{certs}/client.key")
    return ctx


def test_tls_with_client_cert(certs: str, tls_server: int) -> None:
    c = http.client.HTTPSConnection("127.0.0.1", tls_server, context=_client_ctx(certs, True), timeout=10)
    try:
        for _ in range(3):
            c.request("GET", "/_ping")
            r = c.getresponse()
            assert (r.status, r.read(), r.getheader("Api-Version")) == (200, b"OK", "1.45")
    finally:
        c.close()


def test_tls_without_client_cert_is_refused(certs: str, tls_server: int) -> None:
    c = http.client.HTTPSConnection("127.0.0.1", tls_server, context=_client_ctx(certs, False), timeout=10)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        c.request("GET", "/_ping")
        c.getresponse().read()
    c.close()


def test_tls_docker_py_and_hijack(certs: str, tls_server: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # requests lets these variables override docker-py's ca_cert
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    tls = docker.tls.TLSConfig(
        client_cert=(f"{certs}/client.pem", f"{certs}/client.key"), ca_cert=f"{certs}/ca.pem", verify=True
    )
    api = docker.APIClient(base_url=f"https://127.0.0.1:{tls_server}", tls=tls, version="1.45", timeout=10)
    try:
        assert api.ping() is True
        assert api.version()["Os"] == "linux"
        sock = api.attach_socket("c1", params={"stdin": 1, "stdout": 1, "stream": 1})
        sock.sendall(b"over tls")
        got = b""
        while not got.endswith(b"over tls"):
            got += sock.recv(4096)
        sock.close()
        assert parse_frames(got) == [(1, b"over tls")]
    finally:
        api.close()


def test_plain_tcp() -> None:
    rec = Recorder()
    srv = ServerThread(make_router(rec), rec)
    try:
        _, port = srv.call(srv.server.listen_tcp("127.0.0.1", 0))
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/v1.44/_ping")
        assert c.getresponse().read() == b"OK"
        c.close()
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(
            b"POST /containers/x/attach HTTP/1.1\r\nHost: x\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\nhi"
        )
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        s.close()
        head, _, rest = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 UPGRADED")
        assert parse_frames(rest) == [(1, b"hi"), (1, b"bye")]
    finally:
        srv.stop()
