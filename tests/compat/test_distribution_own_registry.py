"""The gorae daemon against our own `gorae registry serve`: push, pull, cross-repository mount, and the
whole Bearer flow with the registry's token server (JWT tokens, htpasswd credentials), driven by the docker
CLI and docker-py."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import docker
import pytest
from conftest import GoraeDaemon
from registry_helpers import gorae_registry

PUSHED = re.compile(r"^(\S+): digest: (sha256:[0-9a-f]{64}) size: (\d+)$", re.M)


def test_push_mount_pull_through_gorae_registry(tidy_daemon: GoraeDaemon) -> None:
    d = tidy_daemon
    with gorae_registry() as reg:
        name = f"{reg.addr}/own/bb:1"
        iid = d.client().api.inspect_image("busybox")["Id"]
        d.docker("tag", "busybox", name)
        d.docker("tag", "busybox", f"{reg.addr}/own/copy:1")
        try:
            out = d.docker("push", name).stdout
            m = PUSHED.search(out)
            assert m is not None and m.group(1) == "1", out
            out2 = d.docker("push", f"{reg.addr}/own/copy:1").stdout
            assert re.search(r"^[0-9a-f]{12}: Mounted from own/bb$", out2, re.M), out2
            d.docker("rmi", name, f"{reg.addr}/own/copy:1")
            out = d.docker("pull", name).stdout
            assert f"Digest: {m.group(2)}" in out
            assert d.client().api.inspect_image(name)["Id"] == iid
        finally:
            d.docker("rmi", name, f"{reg.addr}/own/copy:1", check=False)


def test_token_flow_with_gorae_token_server(tidy_daemon: GoraeDaemon) -> None:
    import bcrypt

    d = tidy_daemon
    work = Path(tempfile.mkdtemp(prefix="gorae-dist-token-"))
    try:
        subprocess.run(["openssl", "genrsa", "-out", "key.pem", "2048"], check=True, cwd=work, capture_output=True)
        hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(5)).decode()
        (work / "htpasswd").write_text(f"erin:{hashed}\n")
        common = ["--auth-token-service", "gorae-dist", "--auth-token-issuer", "gorae-dist-issuer"]
        with (
            gorae_registry(
                "--htpasswd", str(work / "htpasswd"), "--auth-token-key", str(work / "key.pem"), *common,
                command="token-server",
            ) as realm,
            gorae_registry(
                "--auth-token-realm", f"{realm.url}/token", "--auth-token-key", str(work / "key.pem"), *common
            ) as reg,
        ):
            c = d.client()
            with pytest.raises(docker.errors.APIError) as e:
                c.login(username="erin", password="wrong", registry=reg.addr, reauth=True)
            assert e.value.status_code == 500
            assert e.value.explanation == f'Get "http://{reg.addr}/v2/": unauthorized: authentication required'
            assert c.login(username="erin", password="s3cret", registry=reg.addr, reauth=True)["Status"] == (
                "Login Succeeded"
            )
            name = f"{reg.addr}/team/bb:tok"
            d.docker("tag", "busybox", name)
            try:
                creds = {"username": "erin", "password": "s3cret"}
                lines = list(c.api.push(f"{reg.addr}/team/bb", tag="tok", stream=True, decode=True,
                                        auth_config=creds))
                assert lines[-1]["aux"]["Tag"] == "tok", lines
                d.docker("rmi", name)
                # anonymous: the token server refuses, docker's 500 with the registry's words
                r = d.docker("pull", name, check=False)
                assert r.returncode == 1
                assert r.stderr.strip() == "Error response from daemon: unauthorized: authentication required"
                img = c.images.pull(f"{reg.addr}/team/bb", tag="tok", auth_config=creds)
                assert img.id == c.images.get("busybox").id
            finally:
                d.docker("rmi", "-f", name, check=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)
