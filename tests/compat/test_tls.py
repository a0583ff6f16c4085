"""The Remote API over TCP with mutual TLS (`--tlsverify`), driven by the docker CLI and docker-py."""

from __future__ import annotations

import json
import os
import socket
import subprocess

import pytest
from conftest import new_daemon


def _openssl(*args: str, cwd: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def certs(tmp_path) -> str:  # type: ignore[no-untyped-def]
    d = str(tmp_path)
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca-key.pem",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=gorae-test-ca",
        cwd=d,
    )
    for name, ext in (
        ("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write(ext + "\n")
        _openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{name}-key.pem",
            "-out",
            f"{name}.csr",
            "-subj",
            f"/CN={name}",
            cwd=d,
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-out",
            f"{name}.pem",
            "-days",
            "2",
            "-extfile",
            f"{name}.ext",
            cwd=d,
        )
    # the docker CLI's DOCKER_CERT_PATH layout
    os.symlink("client.pem", os.path.join(d, "cert.pem"))
    os.symlink("client-key.pem", os.path.join(d, "key.pem"))
    return d


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_tlsverify_daemon_serves_docker_cli_and_refuses_strangers(certs: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override docker-py's own CA: make it use ours
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    port = _free_port()
    d = new_daemon(
        extra_args=[
            "-H",
            f"tcp://127.0.0.1:{port}",
            "--tlsverify",
            "--tlscacert",
            f"{certs}/ca.pem",
            "--tlscert",
            f"{certs}/server.pem",
            "--tlskey",
            f"{certs}/server-key.pem",
        ],
        with_busybox=False,
    )
    try:
        env = dict(
            d.env, DOCKER_HOST=f"tcp://127.0.0.1:{port}", DOCKER_TLS_VERIFY="1", DOCKER_CERT_PATH=certs
        )
        out = subprocess.run(
            ["docker", "version", "--format", "{{json .Server}}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["ApiVersion"] == "1.45"
        assert "insecure" not in d.log()
        # without a client certificate the handshake fails
        bad = subprocess.run(
            ["curl", "-sS", "--cacert", f"{certs}/ca.pem", f"https://127.0.0.1:{port}/_ping"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert bad.returncode != 0
        import docker

        tls = docker.tls.TLSConfig(
            client_cert=(f"{certs}/client.pem", f"{certs}/client-key.pem"),
            ca_cert=f"{certs}/ca.pem",
            verify=True,
        )
        c = docker.DockerClient(base_url=f"https://127.0.0.1:{port}", tls=tls)
        assert c.ping()
        c.close()
    finally:
        d.cleanup()


def test_tls_without_verify_warns(certs: str) -> None:
    port = _free_port()
    d = new_daemon(
        extra_args=["-H", f"tcp://127.0.0.1:{port}", "--tls", "--tlscert", f"{certs}/server.pem",
                    "--tlskey", f"{certs}/server-key.pem"],
        with_busybox=False,
    )
    try:
        assert "--tls without --tlsverify" in d.log()
    finally:
        d.cleanup()
