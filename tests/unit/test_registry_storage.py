"""The registry's storage: the filesystem driver against the driver conformance suite, hostile paths through
hypothesis, and the on-disk layout (gorae.registry.storage.paths)."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gorae.registry.storage import paths
from gorae.registry.storage.driver import InvalidPath, StorageDriver, check_path
from gorae.registry.storage.filesystem import FilesystemDriver
from gorae.registry.storage.testsuite import DriverSuite, check_rejected, check_roundtrip


class TestFilesystemDriver(DriverSuite):
    def make_driver(self) -> StorageDriver:
        self.tmp = tempfile.mkdtemp(prefix="gorae-storage-")
        return FilesystemDriver(os.path.join(self.tmp, "root"))

    def destroy_driver(self, driver: StorageDriver) -> None:
        shutil.rmtree(self.tmp)


@pytest.fixture
def fs_root():
    tmp = tempfile.mkdtemp(prefix="gorae-storage-")
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp)


_component = st.from_regex(r"[A-Za-z0-9._-]{1,40}", fullmatch=True).filter(lambda c: c not in (".", ".."))
valid_paths = st.lists(_component, min_size=1, max_size=6).map(lambda parts: "/" + "/".join(parts))
hostile_paths = st.one_of(
    st.text(max_size=60),
    st.lists(st.sampled_from(["..", ".", "", "a", "b c", "\x00", "é", "~", "..."]), max_size=6).map("/".join),
    st.lists(st.sampled_from(["..", ".", "a", "etc", "passwd"]), min_size=1, max_size=6).map(
        lambda parts: "/" + "/".join(parts)
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=valid_paths, content=st.binary(max_size=4096))
def test_any_valid_path_roundtrips(fs_root: str, path: str, content: bytes) -> None:
    driver = FilesystemDriver(os.path.join(fs_root, "root"))
    try:
        check_roundtrip(driver, path, content)
    except InvalidPath:
        pytest.fail(f"valid path refused: {path!r}")
    finally:
        shutil.rmtree(os.path.join(fs_root, "root"))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=hostile_paths)
def test_hostile_paths_never_touch_the_disk(fs_root: str, path: str) -> None:
    root = os.path.join(fs_root, "root")
    driver = FilesystemDriver(root)
    try:
        try:
            check_path(path)
        except InvalidPath:
            check_rejected(driver, path)
        else:
            check_roundtrip(driver, path, b"x")
        # nothing ever lands outside the root
        assert sorted(os.listdir(fs_root)) == ["root"]
    finally:
        shutil.rmtree(root)


def test_symlink_out_of_the_root_is_refused(fs_root: str) -> None:
    root = os.path.join(fs_root, "root")
    outside = os.path.join(fs_root, "outside")
    os.makedirs(outside)
    driver = FilesystemDriver(root)
    os.symlink(outside, os.path.join(root, "escape"))
    with pytest.raises(InvalidPath):
        driver.put_content("/escape/file", b"x")
    with pytest.raises(InvalidPath):
        driver.get_content("/escape/file")
    assert os.listdir(outside) == []


def test_put_content_leaves_no_temp_files(fs_root: str) -> None:
    root = os.path.join(fs_root, "root")
    driver = FilesystemDriver(root)
    for i in range(20):
        driver.put_content(f"/f{i % 3}", b"x" * i)
    assert os.listdir(os.path.join(root, "#tmp")) == []
    assert driver.list("/") == ["/f0", "/f1", "/f2"]


def test_filesystem_local_path_is_under_root(fs_root: str) -> None:
    driver = FilesystemDriver(os.path.join(fs_root, "root"))
    assert driver.local_path("/a/b") == os.path.join(os.path.realpath(fs_root), "root", "a", "b")


# -- the layout ------------------------------------------------------------------------------------

D = "sha256:" + "ab" * 32


def test_layout_paths_are_distributions() -> None:
    assert paths.blob_data(D) == f"/docker/registry/v2/blobs/sha256/ab/{'ab' * 32}/data"
    assert paths.layer_link("library/busybox", D) == (
        f"/docker/registry/v2/repositories/library/busybox/_layers/sha256/{'ab' * 32}/link"
    )
    assert paths.manifest_revision_link("a", D) == (
        f"/docker/registry/v2/repositories/a/_manifests/revisions/sha256/{'ab' * 32}/link"
    )
    assert (
        paths.tag_current_link("a/b", "v1.0")
        == "/docker/registry/v2/repositories/a/b/_manifests/tags/v1.0/current/link"
    )
    assert paths.upload_data("a", "u-1") == "/docker/registry/v2/repositories/a/_uploads/u-1/data"
    assert paths.referrer_link("a", D, "sha256:" + "cd" * 32) == (
        f"/docker/registry/v2/repositories/a/_referrers/sha256/{'ab' * 32}/sha256/{'cd' * 32}/link"
    )
    assert paths.digest_from_link_path(paths.layer_link("a", D)) == D


@pytest.mark.parametrize(
    "call",
    [
        lambda: paths.blob_data("sha256"),
        lambda: paths.blob_data("sha256:../../x"),
        lambda: paths.layer_link("../etc", D),
        lambda: paths.layer_link("a/_layers", D),
        lambda: paths.tag_current_link("a", ".."),
        lambda: paths.tag_current_link("a", "a/b"),
        lambda: paths.upload_data("a", "../../x"),
    ],
)
def test_layout_refuses_what_is_not_one_component(call) -> None:
    with pytest.raises(ValueError):
        call()


@settings(max_examples=200, deadline=None)
@given(name=st.text(max_size=40), tag=st.text(max_size=20), digest=st.text(max_size=80))
def test_layout_paths_are_valid_driver_paths_or_refused(name: str, tag: str, digest: str) -> None:
    for make in (
        lambda: paths.layer_link(name, digest),
        lambda: paths.tag_current_link(name, tag),
        lambda: paths.blob_data(digest),
    ):
        try:
            p = make()
        except ValueError:
            continue
        assert check_path(p) == p
        assert "/../" not in p
