"""A real dockerd (Debian's docker.io, on throw-away roots, never touching the host's firewall) pushes to
and pulls from `gorae registry serve`: `docker load` of busybox, `docker push`, remove, `docker pull`, and
the pulled image runs. Loopback registries are plain-HTTP-allowed for dockerd."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_daemon import Daemon
from conftest import busybox_tar, skip_outside_ci
from registry_helpers import gorae_registry, tar_of, write_oci_layout


@pytest.fixture(scope="module")
def dockerd() -> Iterator[Daemon]:
    if os.geteuid() != 0:
        skip_outside_ci("a real dockerd needs root")
    if shutil.which("dockerd") is None or shutil.which("skopeo") is None:
        skip_outside_ci("dockerd and skopeo are needed")
    base = Path(tempfile.mkdtemp(prefix="gorae-reg-dref-"))
    d = Daemon(base, "dref")
    try:
        yield d
    finally:
        try:
            d.stop()
        finally:
            shutil.rmtree(base, ignore_errors=True)


def test_dockerd_pushes_to_and_pulls_from_gorae_registry(dockerd: Daemon) -> None:
    work = Path(tempfile.mkdtemp(prefix="gorae-reg-load-"))
    try:
        layout = str(work / "oci")
        with open(busybox_tar(), "rb") as f:
            rootfs = f.read()
        write_oci_layout(layout, [rootfs, tar_of({"etc/motd": b"hello from gorae\n"})])
        archive = work / "busybox.tar"
        r = subprocess.run(
            [
                "skopeo",
                "--insecure-policy",
                "copy",
                f"oci:{layout}:latest",
                f"docker-archive:{archive}:gorae/busybox:motd",
            ],
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0, r.stderr
        r = dockerd.docker("load", "-i", str(archive))
        assert r.returncode == 0, r.stderr
        assert "Loaded image: gorae/busybox:motd" in r.stdout
        with gorae_registry() as reg:
            ref = f"{reg.addr}/library/busybox:motd"
            assert dockerd.docker("tag", "gorae/busybox:motd", ref).returncode == 0
            before = dockerd.docker("image", "inspect", "-f", "{{.Id}}", ref).stdout.strip()
            r = dockerd.docker("push", ref)
            assert r.returncode == 0, r.stderr + r.stdout
            m = re.search(r"^motd: digest: (sha256:[0-9a-f]{64}) size: (\d+)$", r.stdout, re.M)
            assert m is not None, r.stdout
            pushed_digest = m.group(1)
            # a second push finds every layer there
            r = dockerd.docker("push", ref)
            assert r.returncode == 0 and "Layer already exists" in r.stdout, r.stdout
            assert dockerd.docker("rmi", ref, "gorae/busybox:motd").returncode == 0
            r = dockerd.docker("pull", ref)
            assert r.returncode == 0, r.stderr + r.stdout
            assert f"Digest: {pushed_digest}" in r.stdout
            assert dockerd.docker("image", "inspect", "-f", "{{.Id}}", ref).stdout.strip() == before
            r = dockerd.docker("run", "--rm", "--network", "none", ref, "cat", "/etc/motd")
            assert (r.returncode, r.stdout) == (0, "hello from gorae\n"), r.stderr
            # pull by digest too
            r = dockerd.docker("pull", f"{reg.addr}/library/busybox@{pushed_digest}")
            assert r.returncode == 0, r.stderr
            assert not [f for f in reg.files() if "/_uploads/" in f]
            dockerd.docker("rmi", "-f", ref, f"{reg.addr}/library/busybox@{pushed_digest}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_dockerd_logs_in_and_pushes_through_the_token_flow(dockerd: Daemon) -> None:
    """docker login against a token-auth registry (dockerd fetches a token from our realm with the
    credentials), push, and a wrong password refused in docker's words."""
    import bcrypt

    work = Path(tempfile.mkdtemp(prefix="gorae-reg-token-"))
    try:
        subprocess.run(
            ["openssl", "genrsa", "-out", "key.pem", "2048"], check=True, cwd=work, capture_output=True
        )
        hashed = bcrypt.hashpw(b"d0cker-pass", bcrypt.gensalt(5)).decode().replace("$2b$", "$2y$", 1)
        (work / "htpasswd").write_text(f"dave:{hashed}\n")
        common = ["--auth-token-service", "gorae-dref", "--auth-token-issuer", "gorae-dref-issuer"]
        with (
            gorae_registry(
                "--htpasswd",
                str(work / "htpasswd"),
                "--auth-token-key",
                str(work / "key.pem"),
                *common,
                command="token-server",
            ) as realm,
            gorae_registry(
                "--auth-token-realm", f"{realm.url}/token", "--auth-token-key", str(work / "key.pem"), *common
            ) as reg,
        ):
            r = dockerd.docker("login", reg.addr, "-u", "dave", "-p", "wrong")
            assert r.returncode == 1
            assert "unauthorized" in r.stderr.lower() or "401" in r.stderr, r.stderr
            r = dockerd.docker("login", reg.addr, "-u", "dave", "-p", "d0cker-pass")
            assert r.returncode == 0, r.stderr
            assert "Login Succeeded" in r.stdout
            ref = f"{reg.addr}/team/busybox:tok"
            assert dockerd.docker("tag", "busybox:latest", ref).returncode == 0
            r = dockerd.docker("push", ref)
            assert r.returncode == 0, r.stderr + r.stdout
            assert re.search(r"^tok: digest: sha256:[0-9a-f]{64} size: \d+$", r.stdout, re.M), r.stdout
            assert dockerd.docker("rmi", ref).returncode == 0
            r = dockerd.docker("pull", ref)
            assert r.returncode == 0, r.stderr
            dockerd.docker("logout", reg.addr)
            dockerd.docker("rmi", "-f", ref)
            # logged out: the registry refuses the anonymous token
            r = dockerd.docker("pull", ref)
            assert r.returncode != 0
    finally:
        shutil.rmtree(work, ignore_errors=True)
