"""`gorae registry serve` with a client nobody here wrote: skopeo copies busybox to the registry and back —
plain HTTP, HTTPS with a private CA, htpasswd Basic auth, and the Bearer token flow through our own realm
(`gorae registry token-server`). What comes back is byte-identical to what went in, and what the registry
stores follows distribution's layout."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
import requests
from conftest import busybox_tar
from registry_helpers import Registry, gorae_registry, skopeo_workdir, tar_of, write_oci_layout


@pytest.fixture(scope="module")
def work() -> Iterator[Path]:
    with skopeo_workdir("gorae-skopeo-") as d:
        yield d


@pytest.fixture(scope="module")
def busybox(work: Path) -> tuple[str, str, bytes]:
    """An OCI layout of busybox (its rootfs layer plus a small second layer); (layout, manifest digest, rootfs)."""
    with open(busybox_tar(), "rb") as f:
        rootfs = f.read()
    layout = str(work / "busybox-oci")
    digest = write_oci_layout(layout, [rootfs, tar_of({"etc/motd": b"hello from gorae\n"})], tag="latest")
    return layout, digest, rootfs


def skopeo(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    auth = os.path.join(tempfile.gettempdir(), "gorae-skopeo-no-auth.json")  # never created: no stored creds
    return subprocess.run(
        ["skopeo", "--insecure-policy", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, REGISTRY_AUTH_FILE=auth, **(env or {})),
    )


def _layer_files(dir_copy: Path) -> dict[str, int]:
    manifest = json.loads((dir_copy / "manifest.json").read_text())
    return {layer["digest"]: layer["size"] for layer in manifest["layers"]}


def round_trip(
    reg: Registry, busybox: tuple[str, str, bytes], work: Path, name: str, push: list[str], pull: list[str]
) -> None:
    layout, _, rootfs = busybox
    dest = f"docker://{reg.addr}/{name}"
    r = skopeo("copy", *push, f"oci:{layout}:latest", dest)
    assert r.returncode == 0, r.stderr
    back = work / f"back-{name.replace('/', '-').replace(':', '-')}"
    shutil.rmtree(back, ignore_errors=True)
    r = skopeo("copy", *pull, dest, f"dir:{back}")
    assert r.returncode == 0, r.stderr
    index = json.loads(Path(layout, "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"]
    manifest = json.loads(Path(layout, "blobs", "sha256", manifest_digest.split(":")[1]).read_bytes())
    # the same layers, byte for byte (dir: names blobs by hex digest)
    assert _layer_files(back) == {layer["digest"]: layer["size"] for layer in manifest["layers"]}
    packed = (back / manifest["layers"][0]["digest"].split(":")[1]).read_bytes()
    assert gzip.decompress(packed) == rootfs
    # and back again into an OCI layout
    oci_back = work / f"oci-{name.replace('/', '-').replace(':', '-')}"
    shutil.rmtree(oci_back, ignore_errors=True)
    r = skopeo("copy", *pull, dest, f"oci:{oci_back}:copy")
    assert r.returncode == 0, r.stderr
    shutil.rmtree(back)
    shutil.rmtree(oci_back)


def test_skopeo_copies_busybox_to_and_from_the_registry_over_http(busybox, work: Path) -> None:
    with gorae_registry() as reg:
        round_trip(
            reg,
            busybox,
            work,
            "library/busybox:1.36",
            ["--dest-tls-verify=false"],
            ["--src-tls-verify=false"],
        )
        r = skopeo("inspect", "--tls-verify=false", f"docker://{reg.addr}/library/busybox:1.36")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["RepoTags"] == ["1.36"]
        r = skopeo("list-tags", "--tls-verify=false", f"docker://{reg.addr}/library/busybox")
        assert json.loads(r.stdout)["Tags"] == ["1.36"]
        files = reg.files()
        # distribution's layout: content once, links per repository, no upload left behind
        layout, manifest_digest, _ = busybox
        hexd = manifest_digest.split(":")[1]
        assert f"docker/registry/v2/blobs/sha256/{hexd[:2]}/{hexd}/data" in files
        assert "docker/registry/v2/repositories/library/busybox/_manifests/tags/1.36/current/link" in files
        assert not [f for f in files if "/_uploads/" in f]
        assert [f for f in files if f.startswith("#tmp")] == []


def test_skopeo_copy_between_repositories_mounts_blobs(busybox, work: Path) -> None:
    layout, _, _ = busybox
    with gorae_registry("--access-log") as reg:
        r = skopeo(
            "copy", "--dest-tls-verify=false", f"oci:{layout}:latest", f"docker://{reg.addr}/a/busybox:1"
        )
        assert r.returncode == 0, r.stderr
        r = skopeo(
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            f"docker://{reg.addr}/a/busybox:1",
            f"docker://{reg.addr}/b/busybox:1",
        )
        assert r.returncode == 0, r.stderr
        # the second push mounts both layers (201 to the POST) and uploads only the small config
        log = Path(reg.root).parent.joinpath("stderr.log").read_text()
        second = [line.split("msg=")[1] for line in log.splitlines() if "/v2/b/busybox/" in line]
        assert len([line for line in second if line.startswith("POST /v2/b/busybox/blobs/uploads/ 201")]) == 2
        assert len([line for line in second if line.startswith("PATCH ")]) == 1


def _make_certs(d: Path) -> tuple[str, str, str]:
    """A private CA and a server certificate for 127.0.0.1 signed by it: (ca.crt, server.crt, server.key)."""

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=gorae test CA",
    )
    run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    )
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    )
    return str(d / "ca.crt"), str(d / "server.crt"), str(d / "server.key")


def test_skopeo_over_tls_with_a_private_ca(busybox, work: Path) -> None:
    certs = work / "certs"
    certs.mkdir()
    ca, crt, key = _make_certs(certs)
    cert_dir = work / "cert-dir"
    cert_dir.mkdir()
    shutil.copy(ca, cert_dir / "ca.crt")
    with gorae_registry(tls=(crt, key)) as reg:
        assert reg.scheme == "https"
        # without the CA the client refuses the server
        layout, _, _ = busybox
        r = skopeo("copy", f"oci:{layout}:latest", f"docker://{reg.addr}/tls/busybox:1")
        assert r.returncode != 0
        assert "certificate" in r.stderr
        round_trip(
            reg,
            busybox,
            work,
            "tls/busybox:1",
            [f"--dest-cert-dir={cert_dir}"],
            [f"--src-cert-dir={cert_dir}"],
        )
        # the same over requests with the CA: blob GETs over TLS (no sendfile there) are whole
        resp = requests.get(
            f"{reg.url}/v2/tls/busybox/manifests/1",
            verify=ca,
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
            timeout=30,
        )
        layer = resp.json()["layers"][0]
        blob = requests.get(f"{reg.url}/v2/tls/busybox/blobs/{layer['digest']}", verify=ca, timeout=60)
        assert len(blob.content) == layer["size"]
        assert gzip.decompress(blob.content) == busybox[2]


def _htpasswd(path: Path, users: dict[str, str]) -> str:
    """bcrypt entries as `htpasswd -B` writes them ($2y$)."""
    lines = [
        f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(5)).decode().replace('$2b$', '$2y$', 1)}"
        for u, p in users.items()
    ]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_skopeo_with_htpasswd_basic_auth(busybox, work: Path) -> None:
    htpasswd = _htpasswd(work / "htpasswd", {"alice": "s3cret-pass", "bob": "other"})
    layout, _, _ = busybox
    with gorae_registry("--htpasswd", htpasswd, "--realm", "gorae test") as reg:
        r = requests.get(f"{reg.url}/v2/", timeout=10)
        assert r.status_code == 401
        assert r.headers["WWW-Authenticate"] == 'Basic realm="gorae test"'
        assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
        r = skopeo(
            "copy", "--dest-tls-verify=false", f"oci:{layout}:latest", f"docker://{reg.addr}/auth/busybox:1"
        )
        assert r.returncode != 0 and "authentication required" in r.stderr
        r = skopeo(
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            "alice:wrong",
            f"oci:{layout}:latest",
            f"docker://{reg.addr}/auth/busybox:1",
        )
        assert r.returncode != 0
        round_trip(
            reg,
            busybox,
            work,
            "auth/busybox:1",
            ["--dest-tls-verify=false", "--dest-creds", "alice:s3cret-pass"],
            ["--src-tls-verify=false", "--src-creds", "bob:other"],
        )
        assert not [f for f in reg.files() if "/_uploads/" in f]


def test_skopeo_with_the_token_flow(busybox, work: Path) -> None:
    keys = work / "token-keys"
    keys.mkdir()
    subprocess.run(
        ["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "key.pem"],
        check=True,
        cwd=keys,
        capture_output=True,
    )
    subprocess.run(
        ["openssl", "ec", "-in", "key.pem", "-pubout", "-out", "pub.pem"],
        check=True,
        cwd=keys,
        capture_output=True,
    )
    htpasswd = _htpasswd(work / "htpasswd-token", {"carol": "tok3n-pass"})
    common = ["--auth-token-service", "gorae-test", "--auth-token-issuer", "gorae-test-issuer"]
    layout, _, _ = busybox
    with gorae_registry(
        "--htpasswd", htpasswd, "--auth-token-key", str(keys / "key.pem"), *common, command="token-server"
    ) as realm:
        with gorae_registry(
            "--auth-token-realm", f"{realm.url}/token", "--auth-token-cert", str(keys / "pub.pem"), *common
        ) as reg:
            r = requests.get(f"{reg.url}/v2/tok/busybox/tags/list", timeout=10)
            assert r.status_code == 401
            assert r.headers["WWW-Authenticate"] == (
                f'Bearer realm="{realm.url}/token",service="gorae-test",scope="repository:tok/busybox:pull"'
            )
            # anonymous: the realm issues a token without access, which the registry refuses
            r = skopeo(
                "copy",
                "--dest-tls-verify=false",
                f"oci:{layout}:latest",
                f"docker://{reg.addr}/tok/busybox:1",
            )
            assert r.returncode != 0
            round_trip(
                reg,
                busybox,
                work,
                "tok/busybox:1",
                ["--dest-tls-verify=false", "--dest-creds", "carol:tok3n-pass"],
                ["--src-tls-verify=false", "--src-creds", "carol:tok3n-pass"],
            )
            # a token for one repository does not open another
            tok = requests.get(
                f"{realm.url}/token",
                params={"service": "gorae-test", "scope": "repository:tok/busybox:pull"},
                auth=("carol", "tok3n-pass"),
                timeout=10,
            ).json()["token"]
            ok = requests.get(
                f"{reg.url}/v2/tok/busybox/tags/list", headers={"Authorization": f"Bearer {tok}"}, timeout=10
            )
            assert ok.status_code == 200 and ok.json()["tags"] == ["1"]
            other = requests.get(
                f"{reg.url}/v2/other/tags/list", headers={"Authorization": f"Bearer {tok}"}, timeout=10
            )
            assert other.status_code == 401
            assert 'error="insufficient_scope"' in other.headers["WWW-Authenticate"]
            push = requests.post(
                f"{reg.url}/v2/tok/busybox/blobs/uploads/",
                headers={"Authorization": f"Bearer {tok}"},
                timeout=10,
            )
            assert push.status_code == 401
            assert 'scope="repository:tok/busybox:pull,push"' in push.headers["WWW-Authenticate"]
