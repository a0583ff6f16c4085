"""Mount specs (-v, --mount, --tmpfs, VOLUME) and the local volume driver, without a daemon."""

from __future__ import annotations

import os
import tempfile
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gorae.errors import Conflict, GoraeError, InvalidParameter, NotFound
from gorae.volume import mounts
from gorae.volume.local import VolumeService


class MemMeta:
    def __init__(self) -> None:
        self.docs: dict[tuple[str, str], dict] = {}

    def put(self, kind: str, id: str, doc: dict, *, name: str | None = None) -> None:
        self.docs[(kind, id)] = doc

    def get(self, kind: str, id: str) -> dict:
        try:
            return self.docs[(kind, id)]
        except KeyError:
            raise NotFound(id) from None

    def list(self, kind: str) -> list[dict]:
        return [d for (k, _), d in self.docs.items() if k == kind]

    def delete(self, kind: str, id: str) -> None:
        self.docs.pop((kind, id), None)


@pytest.fixture
def vols(tmp_path: Any) -> VolumeService:
    return VolumeService(MemMeta(), str(tmp_path / "volumes"))


def test_anonymous_volume_lives_under_volumes_id_data(vols: VolumeService) -> None:
    res = mounts.resolve({"Volumes": {"/data": {}}}, {}, None, vols, lambda n: {})
    assert len(res) == 1
    mp = res[0]
    assert mp["Type"] == "volume" and len(mp["Name"]) == 64
    assert mp["Source"] == os.path.join(vols.root, mp["Name"], "_data")
    assert os.path.isdir(mp["Source"])
    assert mounts.public(res)[0] == {
        "Type": "volume",
        "Name": mp["Name"],
        "Source": mp["Source"],
        "Destination": "/data",
        "Driver": "local",
        "Mode": "",
        "RW": True,
        "Propagation": "",
    }


def test_named_ro_and_bind_specs(vols: VolumeService, tmp_path: Any) -> None:
    host = str(tmp_path / "made-by-v")
    res = mounts.resolve({}, {"Binds": ["web:/srv:ro", f"{host}:/host"]}, None, vols, lambda n: {})
    by = {m["Destination"]: m for m in res}
    assert by["/srv"]["Name"] == "web" and by["/srv"]["RW"] is False and by["/srv"]["Mode"] == "ro"
    assert by["/host"]["Type"] == "bind" and by["/host"]["Propagation"] == "rprivate"
    assert os.path.isdir(host)  # -v creates a missing host path, as docker does
    assert vols.inspect("web")["Mountpoint"].endswith("/web/_data")


@pytest.mark.parametrize(
    "spec, text",
    [
        ("a:b:c:d", "invalid volume specification: 'a:b:c:d'"),
        ("/x", "invalid volume specification: '/x'"),
        ("v:rel", "mount path must be absolute"),
        ("v:/data:bogus", "invalid volume specification: 'v:/data:bogus'"),
        ("::", "invalid volume specification"),
    ],
)
def test_bad_bind_specs_are_docker_errors(spec: str, text: str) -> None:
    with pytest.raises(InvalidParameter) as e:
        mounts.parse_bind(spec)
    assert text in e.value.message


def test_volume_name_with_slash_is_refused(vols: VolumeService) -> None:
    with pytest.raises(InvalidParameter, match="includes invalid characters for a local volume name"):
        mounts.resolve({}, {"Binds": ["a/b:/data"]}, None, vols, lambda n: {})
    assert vols.list() == []


def test_mount_bind_source_must_exist(vols: VolumeService) -> None:
    with pytest.raises(InvalidParameter, match="bind source path does not exist: /nonexistent-gorae"):
        mounts.resolve(
            {},
            {"Mounts": [{"Type": "bind", "Source": "/nonexistent-gorae", "Target": "/x"}]},
            None,
            vols,
            lambda n: {},
        )


def test_duplicate_mount_point(vols: VolumeService) -> None:
    with pytest.raises(InvalidParameter, match="Duplicate mount point: /d"):
        mounts.resolve({}, {"Binds": ["a1:/d", "a2:/d"]}, None, vols, lambda n: {})


def test_tmpfs_mount_and_flag(vols: VolumeService) -> None:
    res = mounts.resolve(
        {},
        {"Mounts": [{"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1 << 20}}]},
        None,
        vols,
        lambda n: {},
    )
    oci = mounts.oci_mounts(res, {"Tmpfs": {"/run": ""}}, vols)
    by = {m["destination"]: m for m in oci}
    assert by["/t"]["type"] == "tmpfs" and "size=1048576" in by["/t"]["options"]
    assert "/run" not in by  # --tmpfs is mounted by the runtime spec alone (once, no default size)


def test_volumes_from_copies_mounts_with_mode(vols: VolumeService) -> None:
    src = mounts.resolve({}, {"Binds": ["shared:/s"]}, None, vols, lambda n: {})
    other = {"Mounts": mounts.public(src)}
    res = mounts.resolve({}, {"VolumesFrom": ["c1:ro"]}, None, vols, lambda n: other)
    assert res[0]["Name"] == "shared" and res[0]["RW"] is False


def test_volume_in_use_cannot_be_removed(tmp_path: Any) -> None:
    v = VolumeService(MemMeta(), str(tmp_path / "v"), users=lambda n: ["abc"] if n == "busy" else [])
    v.create("busy")
    with pytest.raises(Conflict, match=r"remove busy: volume is in use - \[abc\]"):
        v.remove("busy")
    with pytest.raises(NotFound, match="get nope: no such volume"):
        v.remove("nope")
    v.remove("nope", force=True)


def test_prune_removes_only_anonymous_unless_all(vols: VolumeService) -> None:
    vols.create("keepme")
    anon = vols.create()["Name"]
    res = vols.prune({})
    assert res["VolumesDeleted"] == [anon]
    assert [x["Name"] for x in vols.list()] == ["keepme"]
    assert vols.prune({"all": ["true"]})["VolumesDeleted"] == ["keepme"]


def test_copy_up_fills_new_volume_from_image_content(vols: VolumeService, tmp_path: Any) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "data" / "sub").mkdir(parents=True)
    (rootfs / "data" / "sub" / "f").write_text("image content")
    (rootfs / "evil").symlink_to("/etc")
    res = mounts.resolve({}, {"Binds": ["fresh:/data", "evil:/evil"]}, None, vols, lambda n: {})
    mounts.copy_up(str(rootfs), res)
    assert (tmp_path / "volumes" / "fresh" / "_data" / "sub" / "f").read_text() == "image content"
    # a symlink to /etc in the image means the image's /etc (absent here), never the host's
    assert os.listdir(tmp_path / "volumes" / "evil" / "_data") == []


def test_resolve_in_root_never_leaves_root(tmp_path: Any) -> None:
    root = tmp_path / "r"
    (root / "a").mkdir(parents=True)
    (root / "a" / "up").symlink_to("../../../../..")
    (root / "abs").symlink_to("/")
    for p in ("/a/up", "/abs", "/a/up/a", "/../../..", "/abs/a"):
        got = mounts.resolve_in_root(str(root), p)
        assert got is None or (got + "/").startswith(str(root) + "/"), (p, got)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("/:.,abrowzZ-_ \x00\n"), max_size=30))
def test_hostile_bind_specs_give_typed_errors(spec: str) -> None:
    try:
        mp = mounts.parse_bind(spec)
    except GoraeError:
        return
    assert mp.destination.startswith("/") and mp.destination != "/"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=70))
def test_hostile_volume_names(name: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        v = VolumeService(MemMeta(), d + "/volumes")
        try:
            doc = v.create(name)
        except InvalidParameter:
            return
        assert os.path.realpath(doc["Mountpoint"]).startswith(os.path.realpath(d) + "/volumes/")


def test_volume_service_publishes_its_events(tmp_path: Any) -> None:
    events: list[tuple[str, str, str, dict[str, str] | None]] = []

    def publish(
        type_: str, action: str, actor: str, attrs: dict[str, str] | None = None, *, scope: str = "local"
    ) -> dict:
        events.append((type_, action, actor, attrs))
        return {}

    v = VolumeService(MemMeta(), str(tmp_path / "volumes"), publish=publish)
    v.create("named")
    anon = v.create()["Name"]
    v.remove("named")
    v.remove("gone", force=True)
    v.prune({})
    assert events == [
        ("volume", "create", "named", {"driver": "local"}),
        ("volume", "create", anon, {"driver": "local"}),
        ("volume", "destroy", "named", {"driver": "local"}),
        ("volume", "destroy", "gone", {"driver": "local"}),
        ("volume", "destroy", anon, {"driver": "local"}),
        ("volume", "prune", "", {"reclaimed": "0"}),
    ]


def test_mount_point_records_round_trip() -> None:
    mp = mounts.parse_mount({"Type": "tmpfs", "Target": "/t", "ReadOnly": True})
    rec = mp.to_record()
    assert rec["_tmpfs_options"] == ["nosuid", "nodev", "noexec"] and rec["RW"] is False
    assert mounts.MountPoint.from_record(rec).to_record() == rec
    old = {
        "Type": "volume",
        "Name": "v",
        "Source": "/s",
        "Destination": "/d",
        "Driver": "local",
        "Mode": "",
        "RW": True,
        "Propagation": "",
        "_nocopy": True,
        "_fresh": True,
    }  # as earlier versions wrote it
    back = mounts.MountPoint.from_record(old)
    assert back.nocopy and back.fresh and not back.anonymous and back.to_record() == old
    assert "_nocopy" not in back.to_docker()
