"""`gorae registry gc` (gorae.registry.gc) over the storage layout: what is marked and swept, distribution's
output, --dry-run, --delete-untagged (indexes' children and referrers kept), the grace rules that keep a push
racing the gc whole, hostile manifests; on the filesystem driver and on S3 (moto's server)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gorae.registry.gc import GC_DIR, _references, garbage_collect
from gorae.registry.storage import paths
from gorae.registry.storage.driver import FileInfo, StorageDriver
from gorae.registry.storage.filesystem import FilesystemDriver

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def put_blob(driver: StorageDriver, repo: str, data: bytes) -> str:
    """A blob uploaded to `repo` as the server does: the data, then the repository's layer link."""
    d = digest_of(data)
    driver.put_content(paths.blob_data(d), data)
    driver.put_content(paths.layer_link(repo, d), d.encode())
    return d


def manifest_bytes(config: str, layers: list[str], subject: str | None = None) -> bytes:
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": 1} for d in layers
        ],
    }
    if subject:
        doc["subject"] = {"mediaType": OCI_MANIFEST, "digest": subject, "size": 1}
    return json.dumps(doc).encode()


def put_manifest(driver: StorageDriver, repo: str, data: bytes, tag: str | None) -> str:
    """A manifest PUT as the server does it: blob, revision link, then the tag link."""
    d = digest_of(data)
    driver.put_content(paths.blob_data(d), data)
    driver.put_content(paths.manifest_revision_link(repo, d), d.encode())
    subject = json.loads(data).get("subject", {}).get("digest")
    if subject:
        driver.put_content(paths.referrer_link(repo, subject, d), d.encode())
    if tag is not None:
        driver.put_content(paths.tag_current_link(repo, tag), d.encode())
    return d


def push_image(driver: StorageDriver, repo: str, tag: str | None, name: str) -> tuple[str, list[str]]:
    """An image of a config and two layers (one shared by every image, one its own); (manifest, blobs)."""
    config = put_blob(driver, repo, b'{"' + name.encode() + b'":1}')
    own = put_blob(driver, repo, b"layer of " + name.encode())
    shared = put_blob(driver, repo, b"shared base layer")
    return put_manifest(driver, repo, manifest_bytes(config, [shared, own]), tag), [config, own, shared]


def delete_tag(driver: StorageDriver, repo: str, tag: str) -> None:
    driver.delete(paths.tag_dir(repo, tag))


def blobs_stored(driver: StorageDriver) -> set[str]:
    out = set()
    for info in driver.walk(paths.BLOBS):
        if info.path.endswith("/data"):
            parts = info.path.split("/")
            out.add(f"{parts[-4]}:{parts[-2]}")
    return out


def files(driver: StorageDriver) -> list[str]:
    return [i.path for i in driver.walk("/") if not i.is_dir]


@pytest.fixture
def root() -> Iterator[str]:
    tmp = tempfile.mkdtemp(prefix="gorae-gc-")
    try:
        yield os.path.join(tmp, "root")
    finally:
        shutil.rmtree(tmp)


def age(root: str, seconds: float = 7200) -> None:
    """Make everything stored look written `seconds` ago (an old push)."""
    past = time.time() - seconds
    for d, dirs, names in os.walk(root):
        for n in dirs + names:
            os.utime(os.path.join(d, n), (past, past))


def run(driver: StorageDriver, **kw: Any) -> tuple[list[str], Any]:
    lines: list[str] = []
    report = garbage_collect(driver, emit=lines.append, **kw)
    return lines, report


# -- mark and sweep ----------------------------------------------------------------------------------


def test_nothing_to_collect_keeps_everything(root: str) -> None:
    d = FilesystemDriver(root)
    m, blobs = push_image(d, "library/app", "1", "app")
    age(root)
    before = files(d)
    lines, report = run(d, grace=600)
    assert files(d) == before
    assert report.blobs_deleted == [] and report.marked == {m, *blobs}
    assert lines == [
        "library/app",
        f"library/app: marking manifest {m} ",
        f"library/app: marking blob {blobs[0]}",
        f"library/app: marking blob {blobs[2]}",
        f"library/app: marking blob {blobs[1]}",
        "",
        "4 blobs marked, 0 blobs and 0 manifests eligible for deletion",
    ]


def test_deleted_tag_then_delete_untagged_sweeps_its_own_blobs(root: str) -> None:
    d = FilesystemDriver(root)
    m1, b1 = push_image(d, "app", "1", "one")
    m2, b2 = push_image(d, "app", "2", "two")
    delete_tag(d, "app", "1")
    age(root)
    # without --delete-untagged the revision still references everything
    _, report = run(d, grace=600)
    assert report.blobs_deleted == [] and blobs_stored(d) == {m1, m2, *b1, *b2}
    lines, report = run(d, grace=600, delete_untagged=True)
    gone = sorted([m1, b1[0], b1[1]])  # its manifest, config and own layer; the shared layer stays
    assert report.blobs_deleted == gone
    assert report.manifests_deleted == [("app", m1)]
    assert blobs_stored(d) == {m2, *b2}
    assert f"manifest eligible for deletion: {m1}" in lines
    assert "4 blobs marked, 3 blobs and 1 manifests eligible for deletion" in lines
    assert lines[-3:] == [f"blob eligible for deletion: {g}" for g in gone]
    # the revision, its layer links and the blob directories are gone; the other image's files stay
    rest = files(d)
    assert not any(m1.split(":")[1] in p or b1[1].split(":")[1] in p for p in rest)
    assert paths.tag_current_link("app", "2") in rest and paths.manifest_revision_link("app", m2) in rest


def test_unreferenced_blob_is_swept_and_dry_run_deletes_nothing(root: str) -> None:
    d = FilesystemDriver(root)
    m, blobs = push_image(d, "app", "1", "one")
    orphan = put_blob(d, "app", b"uploaded, never in a manifest")
    age(root)
    before = files(d)
    lines, report = run(d, grace=600, dry_run=True)
    assert files(d) == before
    assert report.blobs_deleted == [orphan]
    assert lines[-1] == f"blob eligible for deletion: {orphan}"
    _, report = run(d, grace=600)
    assert report.blobs_deleted == [orphan]
    assert blobs_stored(d) == {m, *blobs}
    assert paths.layer_link("app", orphan) not in files(d)
    # the gc's clock marker is not left behind
    assert not any(p.startswith(GC_DIR) for p in files(d))


def test_index_children_and_referrers_survive_delete_untagged(root: str) -> None:
    d = FilesystemDriver(root)
    amd, amd_blobs = push_image(d, "multi", None, "amd64")
    arm, arm_blobs = push_image(d, "multi", None, "arm64")
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": x, "size": 1} for x in (amd, arm)],
        }
    ).encode()
    idx = put_manifest(d, "multi", index, "latest")
    sig_config = put_blob(d, "multi", b"{}")
    sig = put_manifest(d, "multi", manifest_bytes(sig_config, [], subject=idx), None)
    stray, stray_blobs = push_image(d, "multi", None, "stray")
    age(root)
    _, report = run(d, grace=600, delete_untagged=True)
    assert report.manifests_deleted == [("multi", stray)]
    assert blobs_stored(d) == {idx, amd, arm, sig, sig_config, *amd_blobs, *arm_blobs}
    assert set(report.blobs_deleted) == {stray, stray_blobs[0], stray_blobs[1]}


def test_blob_shared_across_repositories_stays_while_one_references_it(root: str) -> None:
    d = FilesystemDriver(root)
    m1, b1 = push_image(d, "a", "1", "same")
    m2, b2 = push_image(d, "b", "1", "same")
    assert (m1, b1) == (m2, b2)
    delete_tag(d, "a", "1")
    age(root)
    _, report = run(d, grace=600, delete_untagged=True)
    assert report.manifests_deleted == [("a", m1)] and report.blobs_deleted == []
    assert blobs_stored(d) == {m1, *b1}


# -- a push racing the gc ----------------------------------------------------------------------------


class RacingDriver(FilesystemDriver):
    """A filesystem driver that runs `during` once, when the gc starts listing blobs (after its mark)."""

    def __init__(self, root: str, during: Callable[[], None]) -> None:
        super().__init__(root)
        self.during: Callable[[], None] | None = during

    def walk(self, path: str) -> Iterator[FileInfo]:
        if path == paths.BLOBS and self.during is not None:
            during, self.during = self.during, None
            during()
        return super().walk(path)


def test_manifest_pushed_during_the_gc_keeps_its_old_layers(root: str) -> None:
    """Layers uploaded long ago, the manifest PUT lands between the mark and the sweep: nothing of it goes."""
    d = FilesystemDriver(root)
    config = put_blob(d, "app", b'{"racing":1}')
    layer = put_blob(d, "app", b"racing layer")
    orphan = put_blob(d, "app", b"a real orphan")
    age(root)
    pushed: list[str] = []
    racing = RacingDriver(
        root, lambda: pushed.append(put_manifest(racing, "app", manifest_bytes(config, [layer]), "1"))
    )
    _, report = run(racing, grace=600)
    assert pushed and report.blobs_deleted == [orphan]
    assert blobs_stored(d) == {config, layer, pushed[0]}
    assert set(report.kept_young) == {config, layer, pushed[0]}


def test_layers_of_a_push_in_progress_are_kept_by_the_grace_period(root: str) -> None:
    """Layers uploaded during the gc (the manifest comes after it ends): one linked, one caught between the
    upload's move into place and its link; both are younger than the grace and kept. Once the push is done
    and its tag deleted, the same blobs, old, are swept (the rule is what kept them)."""
    d = FilesystemDriver(root)
    old_orphan = put_blob(d, "app", b"old orphan")
    age(root)
    uploaded: list[str] = []

    def upload() -> None:
        uploaded.append(put_blob(racing, "app", b"new layer"))
        uploaded.append(digest_of(b"{}"))
        racing.put_content(paths.blob_data(uploaded[1]), b"{}")  # moved into place, not linked yet

    racing = RacingDriver(root, upload)
    _, report = run(racing, grace=600)
    assert report.blobs_deleted == [old_orphan]
    assert blobs_stored(d) == set(uploaded)
    assert sorted(report.kept_young) == sorted(uploaded)
    d.put_content(paths.layer_link("app", uploaded[1]), uploaded[1].encode())
    m = put_manifest(d, "app", manifest_bytes(uploaded[1], [uploaded[0]]), "1")  # the push completes
    assert blobs_stored(d) == {*uploaded, m}
    age(root)
    delete_tag(d, "app", "1")
    _, report = run(d, grace=600, delete_untagged=True)
    assert sorted(report.blobs_deleted) == sorted([*uploaded, m])


def test_untagged_manifest_written_during_the_gc_is_not_deleted(root: str) -> None:
    """A push writes the revision link before the tag: caught in between, the manifest stays."""
    d = FilesystemDriver(root)
    config = put_blob(d, "app", b'{"c":1}')
    layer = put_blob(d, "app", b"l")
    age(root)
    m = put_manifest(d, "app", manifest_bytes(config, [layer]), None)  # the tag is not written yet
    _, report = run(d, grace=600, delete_untagged=True)
    assert report.manifests_deleted == [] and report.blobs_deleted == []
    assert blobs_stored(d) == {config, layer, m}


def test_untagged_manifest_pushed_again_during_the_gc_is_kept(root: str) -> None:
    """An old untagged manifest is eligible when the mark sees it; the same manifest pushed again (tag and
    all) before the sweep keeps it, its blobs, and says so."""
    d = FilesystemDriver(root)
    m, blobs = push_image(d, "app", "1", "one")
    delete_tag(d, "app", "1")
    age(root)
    data = d.get_content(paths.blob_data(m))
    racing = RacingDriver(root, lambda: put_manifest(racing, "app", data, "again"))
    lines, report = run(racing, grace=600, delete_untagged=True)
    assert f"manifest eligible for deletion: {m}" in lines
    assert f"app: manifest {m} kept: linked while the gc ran" in lines
    assert report.manifests_deleted == [] and report.blobs_deleted == []
    assert blobs_stored(d) == {m, *blobs}
    assert d.get_content(paths.tag_current_link("app", "again")) == m.encode()


def test_negative_grace_is_refused(root: str) -> None:
    with pytest.raises(ValueError, match="negative"):
        garbage_collect(FilesystemDriver(root), grace=-1)


# -- hostile manifests ---------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
manifest_like = st.fixed_dictionaries(
    {},
    optional={
        "config": json_values | st.fixed_dictionaries({"digest": st.text(max_size=80)}),
        "layers": st.lists(json_values | st.fixed_dictionaries({"digest": st.text(max_size=80)}), max_size=4),
        "manifests": st.lists(
            st.fixed_dictionaries({"digest": st.text(max_size=80)}) | json_values, max_size=4
        ),
        "subject": json_values,
    },
)


@settings(max_examples=200, deadline=None)
@given(doc=json_values | manifest_like)
def test_references_of_any_json_are_strings(doc: Any) -> None:
    blobs, children, subject = _references(doc)
    assert all(isinstance(x, str) for x in blobs + children)
    assert subject is None or isinstance(subject, str)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=200) | (json_values | manifest_like).map(lambda v: json.dumps(v).encode()))
def test_gc_survives_hostile_manifests_and_keeps_them(root: str, body: bytes) -> None:
    """A manifest blob of any content (naming `../` digests, itself, nothing): gc neither crashes nor deletes
    outside the blobs it enumerated; the manifest itself stays (tagged)."""
    shutil.rmtree(root, ignore_errors=True)
    d = FilesystemDriver(root)
    m = put_manifest_raw(d, "h", body)
    keep, keep_blobs = push_image(d, "ok", "1", "fine")
    age(root)
    _, report = run(d, grace=600, delete_untagged=True)
    assert {m, keep, *keep_blobs} <= blobs_stored(d)
    assert report.manifests_deleted == []


def put_manifest_raw(driver: StorageDriver, repo: str, body: bytes) -> str:
    d = digest_of(body)
    driver.put_content(paths.blob_data(d), body)
    driver.put_content(paths.manifest_revision_link(repo, d), d.encode())
    driver.put_content(paths.tag_current_link(repo, "t"), d.encode())
    return d


# -- on S3 -----------------------------------------------------------------------------------------------


def wait_storage_clock_past(driver: StorageDriver, when: float) -> None:
    """Until an object written now gets an mtime after `when` in the storage's own clock (S3 has seconds)."""
    probe = "/gc-test-clock-probe"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        driver.put_content(probe, b"")
        now = driver.stat(probe).mtime
        driver.delete(probe)
        if now > when:
            return
    raise AssertionError("the storage's clock did not move")


def test_gc_on_s3_after_deleting_a_tag() -> None:
    from s3server import ACCESS_KEY, REGION, SECRET_KEY, moto_s3

    from gorae.registry.storage.s3 import S3Driver, S3Options

    with moto_s3() as s3:
        bucket = s3.new_bucket()
        d = S3Driver(
            S3Options(bucket, REGION, s3.endpoint, ACCESS_KEY, SECRET_KEY, root_directory="/registry")
        )
        m1, b1 = push_image(d, "library/app", "1", "one")
        m2, b2 = push_image(d, "library/app", "2", "two")
        orphan = put_blob(d, "other", b"orphan")
        delete_tag(d, "library/app", "1")
        wait_storage_clock_past(d, max(i.mtime for i in d.walk("/")))
        before = s3.keys(bucket)
        lines, report = run(d, grace=0, delete_untagged=True, dry_run=True)
        assert s3.keys(bucket) == before
        lines, report = run(d, grace=0, delete_untagged=True)
        assert report.manifests_deleted == [("library/app", m1)]
        assert sorted(report.blobs_deleted) == sorted([m1, b1[0], b1[1], orphan])
        assert "4 blobs marked, 4 blobs and 1 manifests eligible for deletion" in lines
        r = "registry/docker/registry/v2/repositories/library/app"

        def blob(x: str) -> str:
            return f"registry/docker/registry/v2/blobs/sha256/{x[7:9]}/{x[7:]}/data"

        assert s3.keys(bucket) == sorted(
            [blob(x) for x in (m2, *b2)]
            + [f"{r}/_layers/sha256/{x[7:]}/link" for x in b2]
            + [f"{r}/_manifests/revisions/sha256/{m2[7:]}/link", f"{r}/_manifests/tags/2/current/link"]
        )
