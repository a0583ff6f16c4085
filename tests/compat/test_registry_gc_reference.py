"""`gorae registry gc` next to the reference: Debian's `docker-registry garbage-collect` (distribution 2.8) on
copies of one storage that `gorae registry serve` filled through skopeo. The same output (the order of the
`blob eligible` lines aside: distribution walks a Go map) and, after the real run, the same files — except
the layer links of swept blobs, which distribution leaves dangling and gorae removes."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from conftest import busybox_tar, skip_outside_ci
from registry_helpers import SRC, gorae_registry, tar_of, write_oci_layout


@pytest.fixture
def work() -> Iterator[Path]:
    for tool in ("skopeo", "docker-registry"):
        if shutil.which(tool) is None:
            skip_outside_ci(f"{tool} is not installed")
    d = Path(tempfile.mkdtemp(prefix="gorae-gc-ref-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def skopeo_push(layout: str, dest: str) -> None:
    auth = os.path.join(tempfile.gettempdir(), "gorae-skopeo-no-auth.json")  # never created: no stored creds
    r = subprocess.run(
        ["skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false", f"oci:{layout}:latest", dest],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, REGISTRY_AUTH_FILE=auth),
    )
    assert r.returncode == 0, r.stderr


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def reference_gc(work: Path, root: Path, *flags: str) -> list[str]:
    config = work / f"config-{root.name}.yml"
    config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root}\n")
    r = subprocess.run(
        ["docker-registry", "garbage-collect", *flags, str(config)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def gorae_gc(root: Path, *flags: str) -> list[str]:
    r = subprocess.run(
        [sys.executable, "-m", "gorae.cmd.main", "registry", "gc", "--root", str(root), *flags],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, PYTHONPATH=SRC),
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def comparable(lines: list[str]) -> tuple[list[str], set[str]]:
    """(every line but the `blob eligible` ones, in order; those as a set)."""
    eligible = {x for x in lines if x.startswith("blob eligible for deletion: ")}
    return [x for x in lines if x not in eligible], eligible


@pytest.mark.parametrize("untagged", [False, True], ids=["default", "delete-untagged"])
def test_gc_matches_docker_registry_garbage_collect(work: Path, untagged: bool) -> None:
    with open(busybox_tar(), "rb") as f:
        rootfs = f.read()
    layouts = {}
    for name in ("one", "two", "three"):
        layouts[name] = str(work / f"oci-{name}")
        write_oci_layout(layouts[name], [rootfs, tar_of({"etc/motd": f"{name}\n".encode()})], tag="latest")
    orphan = os.urandom(2048)
    copies = [work / "gorae-root", work / "reference-root"]
    with gorae_registry() as reg:
        skopeo_push(layouts["one"], f"docker://{reg.addr}/library/app:1")
        skopeo_push(layouts["two"], f"docker://{reg.addr}/library/app:2")
        skopeo_push(layouts["three"], f"docker://{reg.addr}/zeta:latest")
        digest = "sha256:" + hashlib.sha256(orphan).hexdigest()
        r = requests.post(f"{reg.url}/v2/other/blobs/uploads/?digest={digest}", data=orphan, timeout=30)
        assert r.status_code == 201, r.text
        assert requests.delete(f"{reg.url}/v2/library/app/manifests/1", timeout=30).status_code == 202
        for copy in copies:
            shutil.copytree(reg.root, copy, ignore=shutil.ignore_patterns("#tmp"))
    past = time.time() - 7200  # pushed two hours ago: older than gc's grace period
    for copy in copies:
        for p in [copy, *copy.rglob("*")]:
            os.utime(p, (past, past))
    flags = ["--delete-untagged"] if untagged else []
    before = files(copies[0])
    assert before == files(copies[1])

    dry_gorae = gorae_gc(copies[0], "--dry-run", *flags)
    dry_reference = reference_gc(work, copies[1], "--dry-run", *flags)
    assert comparable(dry_gorae) == comparable(dry_reference)
    assert files(copies[0]) == files(copies[1]) == before
    summary = (
        "7 blobs marked, 4 blobs and 1 manifests" if untagged else "10 blobs marked, 1 blobs and 0 manifests"
    )
    assert f"{summary} eligible for deletion" in dry_gorae

    assert comparable(gorae_gc(copies[0], *flags)) == comparable(reference_gc(work, copies[1], *flags))
    swept = {x.rsplit(" ", 1)[1][7:] for x in dry_gorae if x.startswith("blob eligible")}
    dangling = {p for p in files(copies[1]) if "/_layers/" in p and p.split("/")[-2] in swept}
    assert len(dangling) == len(swept) - (1 if untagged else 0)  # every swept layer/config (not the manifest)
    assert files(copies[0]) == files(copies[1]) - dangling
    assert files(copies[0]) < before
