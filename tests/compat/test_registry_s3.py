"""`gorae registry serve --storage s3` on a real S3-compatible server (moto's server mode) and `gorae registry
gc` on S3 and on the filesystem, with skopeo as the client: two registry processes on ONE bucket serve the
same content (a push through one, a pull through the other, a chunked upload started on one and finished on
the other), and gc after a deletion leaves exactly the other image's objects."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from conftest import busybox_tar, skip_outside_ci
from registry_helpers import (
    SRC,
    Registry,
    free_port,
    gorae_registry,
    skopeo_workdir,
    tar_of,
    wait_port,
    write_oci_layout,
)
from s3server import ACCESS_KEY, REGION, SECRET_KEY, MotoS3, moto_s3

from gorae.registry.storage.filesystem import FilesystemDriver

ROOTDIR = "registry"
V2 = f"{ROOTDIR}/docker/registry/v2"


@pytest.fixture(scope="module")
def s3() -> Iterator[MotoS3]:
    with moto_s3() as server:
        yield server


@pytest.fixture(scope="module")
def work() -> Iterator[Path]:
    with skopeo_workdir("gorae-s3-") as d:
        yield d


@pytest.fixture(scope="module")
def images(work: Path) -> dict[str, tuple[str, str]]:
    """Two OCI layouts sharing busybox's rootfs layer: name -> (layout, manifest digest)."""
    with open(busybox_tar(), "rb") as f:
        rootfs = f.read()
    out = {}
    for name in ("one", "two"):
        layout = str(work / f"oci-{name}")
        digest = write_oci_layout(
            layout, [rootfs, tar_of({"etc/motd": f"image {name}\n".encode()})], tag="latest"
        )
        out[name] = (layout, digest)
    return out


def skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    auth = os.path.join(tempfile.gettempdir(), "gorae-skopeo-no-auth.json")  # never created: no stored creds
    return subprocess.run(
        ["skopeo", "--insecure-policy", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, REGISTRY_AUTH_FILE=auth),
    )


def s3_args(s3: MotoS3, bucket: str) -> list[str]:
    return [
        "--storage",
        "s3",
        "--s3-bucket",
        bucket,
        "--s3-endpoint",
        s3.endpoint,
        "--s3-region",
        "us-east-1",
        "--s3-rootdirectory",
        f"/{ROOTDIR}",
    ]


def gc(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gorae.cmd.main", "registry", "gc", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, PYTHONPATH=SRC, **(env or {})),
    )


def manifest_blobs(layout: str, digest: str) -> list[str]:
    manifest = json.loads(Path(layout, "blobs", "sha256", digest[7:]).read_bytes())
    return [digest, manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])]


def pull_and_check(reg: Registry, name: str, layout: str, work: Path) -> None:
    back = work / f"back-{reg.port}-{name.replace('/', '-').replace(':', '-')}"
    shutil.rmtree(back, ignore_errors=True)
    r = skopeo("copy", "--src-tls-verify=false", f"docker://{reg.addr}/{name}", f"dir:{back}")
    assert r.returncode == 0, r.stderr
    index = json.loads(Path(layout, "index.json").read_text())
    digest = index["manifests"][0]["digest"]
    for blob in manifest_blobs(layout, digest)[1:]:
        assert (back / blob[7:]).read_bytes() == Path(layout, "blobs", "sha256", blob[7:]).read_bytes()


def wait_clock_past_writes(probe_put, newest: float) -> None:  # type: ignore[no-untyped-def]
    """Until the storage's clock (an object written now) is past `newest` (S3 stamps whole seconds)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if probe_put() > newest:
            return
    raise AssertionError("the storage's clock did not move")


def test_two_servers_on_one_bucket_push_pull_chunked_and_gc(s3: MotoS3, images, work: Path) -> None:
    bucket = s3.new_bucket()
    args = s3_args(s3, bucket)
    with gorae_registry(*args, env=s3.env()) as a, gorae_registry(*args, env=s3.env()) as b:
        # push busybox through A, pull it through B (and the other way round for the second image)
        layout1, m1 = images["one"]
        layout2, m2 = images["two"]
        r = skopeo(
            "copy", "--dest-tls-verify=false", f"oci:{layout1}:latest", f"docker://{a.addr}/lib/busybox:1"
        )
        assert r.returncode == 0, r.stderr
        pull_and_check(b, "lib/busybox:1", layout1, work)
        r = skopeo(
            "copy", "--dest-tls-verify=false", f"oci:{layout2}:latest", f"docker://{b.addr}/lib/busybox:2"
        )
        assert r.returncode == 0, r.stderr
        pull_and_check(a, "lib/busybox:2", layout2, work)
        assert requests.get(f"{b.url}/v2/lib/busybox/tags/list", timeout=30).json() == {
            "name": "lib/busybox",
            "tags": ["1", "2"],
        }
        # the objects are distribution's layout under the root directory
        keys = s3.keys(bucket)
        for blob in manifest_blobs(layout1, m1) + manifest_blobs(layout2, m2):
            assert f"{V2}/blobs/sha256/{blob[7:9]}/{blob[7:]}/data" in keys
        assert f"{V2}/repositories/lib/busybox/_manifests/tags/1/current/link" in keys

        # a chunked upload: started on A, a 6 MiB chunk on A (a multipart part), the rest on B, finished on B
        data = os.urandom(6 * 1024 * 1024 + 1000)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        r = requests.post(f"{a.url}/v2/chunked/blobs/uploads/", timeout=30)
        assert r.status_code == 202, r.text
        location = r.headers["Location"]
        path = location if location.startswith("/") else "/" + location.split("/", 3)[3]
        first = 6 * 1024 * 1024
        r = requests.patch(
            f"{a.url}{path}",
            data=data[:first],
            headers={"Content-Range": f"0-{first - 1}", "Content-Type": "application/octet-stream"},
            timeout=60,
        )
        assert r.status_code == 202, r.text
        assert r.headers["Range"] == f"0-{first - 1}"
        r = requests.get(f"{b.url}{path}", timeout=30)
        assert (r.status_code, r.headers["Range"]) == (204, f"0-{first - 1}")
        r = requests.patch(
            f"{b.url}{path}",
            data=data[first:-10],
            headers={
                "Content-Range": f"{first}-{len(data) - 11}",
                "Content-Type": "application/octet-stream",
            },
            timeout=60,
        )
        assert r.status_code == 202, r.text
        sep = "&" if "?" in path else "?"
        r = requests.put(f"{b.url}{path}{sep}digest={digest}", data=data[-10:], timeout=60)
        assert r.status_code == 201, r.text
        got = requests.get(f"{a.url}/v2/chunked/blobs/{digest}", timeout=60)
        assert got.status_code == 200 and got.content == data
        ranged = requests.get(
            f"{a.url}/v2/chunked/blobs/{digest}", headers={"Range": "bytes=100-199"}, timeout=30
        )
        assert (ranged.status_code, ranged.content) == (206, data[100:200])
        assert s3.client().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
        assert not [k for k in s3.keys(bucket) if "/_uploads/" in k]

        # delete image one through B; gc (a separate process, no server involved) sweeps what only it used
        r = requests.delete(f"{b.url}/v2/lib/busybox/manifests/{m1}", timeout=30)
        assert r.status_code == 202, r.text

        def probe() -> float:
            client = s3.client()
            client.put_object(Bucket=bucket, Key="clock-probe", Body=b"")
            when = client.head_object(Bucket=bucket, Key="clock-probe")["LastModified"].timestamp()
            client.delete_object(Bucket=bucket, Key="clock-probe")
            return float(when)

        newest = max(
            o["LastModified"].timestamp()
            for page in s3.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents") or []
        )
        wait_clock_past_writes(probe, newest)
        before = s3.keys(bucket)
        dry = gc("--dry-run", "--grace", "0", *args, env=s3.env())
        assert dry.returncode == 0, dry.stderr
        assert s3.keys(bucket) == before
        one_only = sorted(set(manifest_blobs(layout1, m1)) - set(manifest_blobs(layout2, m2)))
        assert len(one_only) == 3  # its manifest, config and motd layer; busybox's rootfs is shared
        out = gc("--grace", "0", *args, env=s3.env())
        assert out.returncode == 0, out.stderr
        assert out.stdout == dry.stdout
        lines = out.stdout.splitlines()
        assert "lib/busybox" in lines and f"lib/busybox: marking manifest {m2} " in lines
        # the chunked blob was never in a manifest: swept too (its link in `chunked` with it)
        assert sorted(x for x in lines if x.startswith("blob eligible")) == [
            f"blob eligible for deletion: {x}" for x in sorted([*one_only, digest])
        ]
        assert "4 blobs marked, 4 blobs and 0 manifests eligible for deletion" in lines
        after = s3.keys(bucket)
        assert set(before) - set(after) == {
            *(f"{V2}/blobs/sha256/{x[7:9]}/{x[7:]}/data" for x in [*one_only, digest]),
            *(f"{V2}/repositories/lib/busybox/_layers/sha256/{x[7:]}/link" for x in one_only if x != m1),
            f"{V2}/repositories/chunked/_layers/sha256/{digest[7:]}/link",
        }
        assert set(after) <= set(before)
        # image two still pulls through both servers
        pull_and_check(a, "lib/busybox:2", layout2, work)
        pull_and_check(b, "lib/busybox:2", layout2, work)


def test_gc_on_the_filesystem_after_deleting_a_tag(images, work: Path) -> None:
    layout1, m1 = images["one"]
    layout2, m2 = images["two"]
    with gorae_registry() as reg:
        for name, layout in (("1", layout1), ("2", layout2)):
            r = skopeo(
                "copy", "--dest-tls-verify=false", f"oci:{layout}:latest", f"docker://{reg.addr}/app:{name}"
            )
            assert r.returncode == 0, r.stderr
        r = requests.delete(f"{reg.url}/v2/app/manifests/1", timeout=30)  # the tag only
        assert r.status_code == 202, r.text
        driver = FilesystemDriver(reg.root)
        newest = max(i.mtime for i in driver.walk("/"))

        def probe() -> float:
            driver.put_content("/clock-probe", b"")
            when = driver.stat("/clock-probe").mtime
            driver.delete("/clock-probe")
            return when

        wait_clock_past_writes(probe, newest)
        before = reg.files()
        # untagged but still a revision: kept without --delete-untagged
        out = gc("--root", reg.root, "--grace", "0")
        assert out.returncode == 0, out.stderr
        assert "7 blobs marked, 0 blobs and 0 manifests eligible for deletion" in out.stdout.splitlines()
        assert reg.files() == before
        # with the default grace period (an hour) what was just pushed stays, untagged or not
        out = gc("--root", reg.root, "--delete-untagged")
        assert out.returncode == 0, out.stderr
        assert "7 blobs marked, 0 blobs and 0 manifests eligible for deletion" in out.stdout.splitlines()
        assert reg.files() == before
        one_only = sorted(set(manifest_blobs(layout1, m1)) - set(manifest_blobs(layout2, m2)))
        out = gc("--root", reg.root, "--delete-untagged", "--grace", "0")
        assert out.returncode == 0, out.stderr
        assert "4 blobs marked, 3 blobs and 1 manifests eligible for deletion" in out.stdout.splitlines()
        assert [x for x in out.stdout.splitlines() if "eligible for deletion:" in x] == [
            f"manifest eligible for deletion: {m1}",
            *(f"blob eligible for deletion: {x}" for x in one_only),
        ]
        gone = set(before) - set(reg.files())
        v2 = "docker/registry/v2"
        assert gone == {
            f"{v2}/repositories/app/_manifests/revisions/sha256/{m1[7:]}/link",
            *(f"{v2}/blobs/sha256/{x[7:9]}/{x[7:]}/data" for x in one_only),
            *(f"{v2}/repositories/app/_layers/sha256/{x[7:]}/link" for x in one_only if x != m1),
        } | {p for p in before if m1[7:] in p}
        r = skopeo("copy", "--src-tls-verify=false", f"docker://{reg.addr}/app:2", f"dir:{work / 'fs-back'}")
        assert r.returncode == 0, r.stderr
        r = skopeo("inspect", "--tls-verify=false", f"docker://{reg.addr}/app@{m1}")
        assert r.returncode != 0 and "manifest unknown" in r.stderr.lower()


def test_gc_refuses_a_missing_root_and_bad_options(tmp_path: Path) -> None:
    out = gc("--root", str(tmp_path / "nothing"))
    assert (out.returncode, out.stderr) == (
        1,
        f"gorae registry gc: no registry storage at {tmp_path / 'nothing'}\n",
    )
    out = gc("--s3-bucket", "x")
    assert out.returncode == 1 and "--s3-bucket needs --storage s3" in out.stderr
    out = gc("--storage", "s3", "--storage-opt", "nosuch=1", "--s3-bucket", "x")
    assert out.returncode == 1 and "unknown s3 option 'nosuch'" in out.stderr
    out = gc("--storage", "s3")
    assert out.returncode == 1 and "needs a bucket" in out.stderr
    out = gc("--root", str(tmp_path), "--grace", "1x")
    assert out.returncode == 2 and "invalid duration '1x'" in out.stderr


def test_push_racing_gc_on_s3_keeps_its_layers(s3: MotoS3) -> None:
    """A push whose layers are uploaded, then a gc (another process, default grace), then the manifest: the
    push completes and pulls. The control: with no grace (the storage's clock past the uploads) the same gc
    sweeps the layers and the manifest PUT is refused as naming unknown blobs."""
    bucket = s3.new_bucket()
    args = s3_args(s3, bucket)
    with gorae_registry(*args, env=s3.env()) as reg:
        for name, grace in (("kept", []), ("swept", ["--grace", "0"])):
            layer, config = os.urandom(4096), json.dumps({"architecture": "amd64", "os": name}).encode()
            digests = []
            for blob in (layer, config):
                d = "sha256:" + hashlib.sha256(blob).hexdigest()
                r = requests.post(f"{reg.url}/v2/{name}/blobs/uploads/?digest={d}", data=blob, timeout=30)
                assert r.status_code == 201, r.text
                digests.append(d)
            if grace:
                newest = max(
                    o["LastModified"].timestamp()
                    for o in s3.client().list_objects_v2(Bucket=bucket, Prefix=ROOTDIR)["Contents"]
                )

                def probe() -> float:
                    c = s3.client()
                    c.put_object(Bucket=bucket, Key="clock-probe", Body=b"")
                    when = c.head_object(Bucket=bucket, Key="clock-probe")["LastModified"].timestamp()
                    c.delete_object(Bucket=bucket, Key="clock-probe")
                    return float(when)

                wait_clock_past_writes(probe, newest)
            out = gc(*grace, *args, env=s3.env())
            assert out.returncode == 0, out.stderr
            eligible = {x.rsplit(" ", 1)[1] for x in out.stdout.splitlines() if x.startswith("blob eligible")}
            manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {
                        "mediaType": "application/vnd.oci.image.config.v1+json",
                        "digest": digests[1],
                        "size": len(config),
                    },
                    "layers": [
                        {
                            "mediaType": "application/vnd.oci.image.layer.v1.tar",
                            "digest": digests[0],
                            "size": len(layer),
                        }
                    ],
                }
            ).encode()
            r = requests.put(
                f"{reg.url}/v2/{name}/manifests/1",
                data=manifest,
                headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
                timeout=30,
            )
            if name == "kept":
                assert eligible == set()
                assert r.status_code == 201, r.text
                got = requests.get(f"{reg.url}/v2/{name}/blobs/{digests[0]}", timeout=30)
                assert (got.status_code, got.content) == (200, layer)
            else:
                assert set(digests) <= eligible
                assert r.status_code == 400 and r.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN", (
                    r.text
                )


@contextlib.contextmanager
def reference_registry_s3(s3: MotoS3, bucket: str, work: Path) -> Iterator[Registry]:
    """Debian's docker-registry (distribution 2.8, its s3-aws driver) on the same bucket and root directory."""
    if shutil.which("docker-registry") is None:
        skip_outside_ci("docker-registry is not installed")
    port = free_port()
    config = work / f"s3-{bucket}.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  s3:\n"
        f"    region: {REGION}\n    regionendpoint: {s3.endpoint}\n    bucket: {bucket}\n"
        f"    rootdirectory: /{ROOTDIR}\n    accesskey: {ACCESS_KEY}\n    secretkey: {SECRET_KEY}\n"
        f"    secure: false\n    forcepathstyle: true\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n"
    )
    # the Go SDK refuses a custom CA bundle with its HTTP transport; the endpoint is plain HTTP anyway
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    with open(work / f"s3-{bucket}.log", "wb") as log:
        proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log, stderr=log, env=env)
        try:
            wait_port("127.0.0.1", port, proc)
            yield Registry(proc, "127.0.0.1", port, "")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def test_docker_registry_reads_what_gorae_wrote_to_s3_and_back(s3: MotoS3, images, work: Path) -> None:
    """The reference registry (distribution's own s3 driver) and gorae on one bucket: an image pushed through
    gorae pulls through docker-registry, and one pushed through docker-registry pulls through gorae."""
    bucket = s3.new_bucket()
    layout1, _ = images["one"]
    layout2, _ = images["two"]
    with (
        gorae_registry(*s3_args(s3, bucket), env=s3.env()) as ours,
        reference_registry_s3(s3, bucket, work) as ref,
    ):
        r = skopeo(
            "copy", "--dest-tls-verify=false", f"oci:{layout1}:latest", f"docker://{ours.addr}/x/one:1"
        )
        assert r.returncode == 0, r.stderr
        pull_and_check(ref, "x/one:1", layout1, work)
        r = skopeo("copy", "--dest-tls-verify=false", f"oci:{layout2}:latest", f"docker://{ref.addr}/x/two:1")
        assert r.returncode == 0, r.stderr
        pull_and_check(ours, "x/two:1", layout2, work)
        assert requests.get(f"{ours.url}/v2/_catalog", timeout=30).json() == {
            "repositories": ["x/one", "x/two"]
        }


def test_missing_bucket_or_credentials_stop_serve_and_gc_at_once(s3: MotoS3) -> None:
    args = ["--storage", "s3", "--s3-endpoint", s3.endpoint, "--s3-region", "us-east-1"]
    out = gc(*args, "--s3-bucket", "gorae-no-such-bucket", env=s3.env())
    assert (out.returncode, out.stdout) == (1, "")
    assert out.stderr == "gorae registry: s3: no bucket 'gorae-no-such-bucket'\n"
    serve = subprocess.run(
        [
            sys.executable,
            "-m",
            "gorae.cmd.main",
            "registry",
            "serve",
            "--addr",
            "127.0.0.1:0",
            *args,
            "--s3-bucket",
            "gorae-no-such-bucket",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=SRC, **s3.env()),
    )
    assert serve.returncode == 1 and "no bucket 'gorae-no-such-bucket'" in serve.stderr
