"""ImageService on real overlay snapshots: import, mount, commit, list/inspect/history shapes, tag/remove/
prune, save -> load round trips and hostile docker-save tarballs."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from gorae.errors import Conflict, InvalidParameter, NotFound
from gorae.image.bootstrap import import_busybox, rootfs_tar
from gorae.image.service import ImageService
from gorae.snapshot.mount import mount_all, unmount
from gorae.snapshot.overlay import OverlaySnapshotter
from gorae.store.content import ContentStore
from gorae.store.metadata import MetadataStore


def _unmount_under(root: str) -> None:
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        points = [line.split()[4] for line in f]
    for p in sorted((p for p in points if p.startswith(root + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", p], capture_output=True)


@dataclass
class Root:
    path: str
    meta: MetadataStore
    snap: OverlaySnapshotter
    svc: ImageService

    def close(self) -> None:
        self.meta.close()
        self.snap.close()


def open_root(path: str) -> Root:
    os.makedirs(path, exist_ok=True)
    meta = MetadataStore(os.path.join(path, "gorae.db"))
    snap = OverlaySnapshotter(os.path.join(path, "overlay"))
    svc = ImageService(meta, ContentStore(os.path.join(path, "content")), snap, os.path.join(path, "tmp"))
    return Root(path, meta, snap, svc)


@pytest.fixture
def base() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix=f"gorae-img-{uuid.uuid4().hex[:6]}-")
    try:
        yield d
    finally:
        _unmount_under(d)
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def root(base: str) -> Iterator[Root]:
    r = open_root(os.path.join(base, "a"))
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def busybox(root: Root) -> str:
    return import_busybox(root.svc)


class mounted:
    def __init__(self, r: Root, key: str) -> None:
        self.target = os.path.join(r.path, "mnt-" + uuid.uuid4().hex[:8])
        self.mounts = r.snap.mounts(key)

    def __enter__(self) -> str:
        os.makedirs(self.target)
        mount_all(self.mounts, self.target)
        return self.target

    def __exit__(self, *exc: object) -> None:
        unmount(self.target)


def test_import_busybox_and_run_sh(root: Root, busybox: str) -> None:
    svc = root.svc
    assert svc.resolve("busybox").id == busybox
    assert svc.resolve("busybox:latest").id == busybox
    assert svc.resolve("docker.io/library/busybox").id == busybox
    assert svc.resolve(busybox[7:19]).id == busybox
    assert svc.resolve(busybox).id == busybox
    parent = svc.top_layer_chain_id(svc.resolve("busybox"))
    root.snap.prepare("ct1", parent)
    with mounted(root, "ct1") as m:
        assert os.path.islink(os.path.join(m, "bin/sh"))
        assert os.path.isfile(os.path.join(m, "bin/busybox"))
        assert oct(os.stat(os.path.join(m, "tmp")).st_mode & 0o7777) == "0o1777"
        out = subprocess.run(
            ["chroot", m, "/bin/sh", "-c", "echo ok; id -un"], capture_output=True, text=True
        )
        assert out.stdout.split() == ["ok", "root"], out.stderr
    cfg = svc.inspect("busybox")["Config"]
    assert cfg["Cmd"] == ["sh"]


def test_bootstrap_is_deterministic(base: str, root: Root, busybox: str) -> None:
    assert rootfs_tar() == rootfs_tar()
    assert import_busybox(root.svc) == busybox
    other = open_root(os.path.join(base, "b"))
    try:
        assert import_busybox(other.svc) == busybox
    finally:
        other.close()


def test_not_found_and_invalid(root: Root, busybox: str) -> None:
    with pytest.raises(NotFound, match="No such image: nope:latest"):
        root.svc.resolve("nope")
    with pytest.raises(NotFound, match="No such image: sha256:" + "0" * 64):
        root.svc.resolve("sha256:" + "0" * 64)
    with pytest.raises(InvalidParameter, match="invalid reference format"):
        root.svc.resolve("Bad:Ref:")


def test_list_inspect_history_shapes(root: Root, busybox: str) -> None:
    svc = root.svc
    [entry] = svc.list()
    assert set(entry) == {
        "Containers", "Created", "Id", "Labels", "ParentId", "RepoDigests", "RepoTags", "SharedSize", "Size",
        "VirtualSize",
    }  # fmt: skip
    assert entry["RepoTags"] == ["busybox:latest"] and entry["Id"] == busybox
    assert isinstance(entry["Created"], int) and entry["Size"] > 1_000_000 and entry["SharedSize"] == -1
    info = svc.inspect("busybox")
    for k in (
        "Id", "RepoTags", "RepoDigests", "Parent", "Comment", "Created", "Container", "ContainerConfig",
        "DockerVersion", "Author", "Config", "Architecture", "Os", "Size", "VirtualSize", "GraphDriver",
        "RootFS", "Metadata",
    ):  # fmt: skip
        assert k in info, k
    assert info["GraphDriver"]["Name"] == "overlay2"
    assert os.path.isdir(info["GraphDriver"]["Data"]["UpperDir"])
    assert info["RootFS"]["Type"] == "layers" and len(info["RootFS"]["Layers"]) == 1
    assert info["Metadata"]["LastTagTime"] != "0001-01-01T00:00:00Z"
    assert info["Comment"] == "Imported from -"
    [h] = svc.history("busybox")
    assert h["Id"] == busybox and h["Tags"] == ["busybox:latest"] and h["Comment"] == "Imported from -"
    assert set(h) == {"Id", "Created", "CreatedBy", "Tags", "Size", "Comment"}
    assert svc.list(filters={"reference": ["busy*"]})[0]["Id"] == busybox
    assert svc.list(filters={"reference": ["other"]}) == []
    assert svc.list(filters={"dangling": ["true"]}) == []
    with pytest.raises(InvalidParameter):
        svc.list(filters={"bogus": ["x"]})


def _commit_change(root: Root, busybox: str, repo_tag: str | None = "mine:v1") -> str:
    svc = root.svc
    root.snap.prepare("ctc", svc.top_layer_chain_id(svc.resolve(busybox)))
    with mounted(root, "ctc") as m:
        with open(os.path.join(m, "hello"), "w") as f:
            f.write("hi\n")
        os.unlink(os.path.join(m, "etc/group"))
        shutil.rmtree(os.path.join(m, "var/www"))
    ct = {"Id": "c" * 64, "Image": busybox, "Config": {"Cmd": ["sh", "-c", "x"], "Image": "busybox"}}
    new = svc.commit(ct, root.snap.upper_dir("ctc"), repo_tag, "me", "a comment", ["ENV X=1"], False)
    return new


def test_commit_two_layers_with_whiteouts(root: Root, busybox: str) -> None:
    svc = root.svc
    new = _commit_change(root, busybox)
    img = svc.resolve("mine:v1")
    assert img.id == new and img.parent == busybox and len(img.diff_ids) == 2
    info = svc.inspect(new)
    assert info["Parent"] == busybox and info["Author"] == "me" and info["Comment"] == "a comment"
    assert info["Container"] == "c" * 64
    assert "X=1" in info["Config"]["Env"] and info["Config"]["Cmd"] == ["sh", "-c", "x"]
    assert "LowerDir" in info["GraphDriver"]["Data"]
    root.snap.view("v", svc.top_layer_chain_id(img))
    with mounted(root, "v") as m:
        with open(os.path.join(m, "hello")) as f:
            assert f.read() == "hi\n"
        assert not os.path.exists(os.path.join(m, "etc/group"))
        assert not os.path.exists(os.path.join(m, "var/www"))
        assert os.path.exists(os.path.join(m, "etc/passwd"))
    root.snap.remove("v")
    hist = svc.history("mine:v1")
    assert [h["Id"] for h in hist] == [new, busybox]
    assert hist[0]["CreatedBy"] == "sh -c x" and hist[0]["Tags"] == ["mine:v1"] and hist[0]["Size"] > 0
    # the parent is not listed as intermediate (it has a tag), and the child lists its ParentId
    by_id = {e["Id"]: e for e in svc.list()}
    assert by_id[new]["ParentId"] == busybox
    # an empty commit adds no layer
    root.snap.prepare("cte", svc.top_layer_chain_id(img))
    ct = {"Id": "d" * 64, "Image": new, "Config": {"Cmd": ["true"]}}
    empty = svc.commit(ct, root.snap.upper_dir("cte"), None, "", "", [], False)
    e = svc.resolve(empty)
    assert e.diff_ids == img.diff_ids and svc.inspect(empty)["RepoTags"] == []
    assert svc.history(empty)[0]["Size"] == 0


def test_tag_and_remove(root: Root, busybox: str) -> None:
    svc = root.svc
    svc.tag("busybox", "other", "v2")
    assert svc.resolve("other:v2").id == busybox
    assert svc.inspect(busybox)["RepoTags"] == ["busybox:latest", "other:v2"]
    with pytest.raises(Conflict, match="image is referenced in multiple repositories"):
        svc.remove(busybox[7:19], False, False, lambda i: [])
    assert svc.remove("other:v2", False, False, lambda i: []) == [{"Untagged": "other:v2"}]
    msg = (
        'conflict: unable to remove repository reference "busybox" (must force) - container abcdefabcdef is '
        f"using its referenced image {busybox[7:19]}"
    )
    with pytest.raises(Conflict) as ei:
        svc.remove("busybox", False, False, lambda i: ["abcdefabcdef0123"])
    assert ei.value.message == msg
    res = svc.remove("busybox", False, False, lambda i: [])
    assert res[0] == {"Untagged": "busybox:latest"} and res[1] == {"Deleted": busybox}
    assert len(res) == 3  # and its layer
    assert svc.list() == [] and root.snap.list() == []
    with pytest.raises(NotFound):
        svc.resolve(busybox)


def test_last_tag_of_a_repository_takes_its_digest_references(root: Root, busybox: str) -> None:
    """dockerd's rmi: removing a repository's last tag removes that repository's digest references (what a
    pull or push recorded) and so the image; digest references of other repositories keep it."""
    from gorae.image import reference as refs

    svc = root.svc
    d1, d2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    svc.tag("busybox", "reg:5000/a", "1")
    svc.store.set_ref(refs.parse(f"reg:5000/a@{d1}"), busybox)
    svc.store.set_ref(refs.parse(f"reg:5000/b@{d2}"), busybox)
    assert svc.remove("reg:5000/a:1", False, False, lambda i: []) == [
        {"Untagged": "reg:5000/a:1"},
        {"Untagged": f"reg:5000/a@{d1}"},
    ]
    assert svc.inspect(busybox)["RepoDigests"] == [f"reg:5000/b@{d2}"]


def test_remove_child_conflict_and_prune(root: Root, busybox: str) -> None:
    svc = root.svc
    new = _commit_change(root, busybox, None)
    root.snap.remove("ctc")
    with pytest.raises(Conflict, match=r"\(cannot be forced\) - image has dependent child images"):
        svc.remove(busybox, True, False, None)
    assert [e["Id"] for e in svc.list(filters={"dangling": ["true"]})] == [new]
    res = svc.prune(True, {}, lambda i: [])
    assert {"Deleted": new} in res["ImagesDeleted"] and res["SpaceReclaimed"] > 0
    assert svc.resolve("busybox").id == busybox
    assert len(root.snap.list()) == 1


def test_import_gzip_with_changes(root: Root) -> None:
    import gzip

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        ti = tarfile.TarInfo("etc/hello")
        ti.size = 3
        t.addfile(ti, io.BytesIO(b"hi\n"))
    iid = root.svc.import_tar(
        io.BytesIO(gzip.compress(buf.getvalue())), "imp", ['ENTRYPOINT ["/bin/x"]', "LABEL a=b"], "msg"
    )
    info = root.svc.inspect("imp:latest")
    assert (
        info["Id"] == iid
        and info["Config"]["Entrypoint"] == ["/bin/x"]
        and info["Config"]["Labels"] == {"a": "b"}
    )
    assert info["Comment"] == "msg"
    # the stored layer is the uncompressed tar: its digest is the diff_id
    diff = info["RootFS"]["Layers"][0]
    assert root.svc.content.read_bytes(diff) == buf.getvalue()
    with pytest.raises(InvalidParameter):
        root.svc.import_tar(io.BytesIO(b"\x1f\x8bgarbage"), None, [], "")
    with pytest.raises(InvalidParameter):
        root.svc.import_tar(io.BytesIO(buf.getvalue()), "Bad Name", [], "")


def test_save_load_roundtrip(base: str, root: Root, busybox: str) -> None:
    new = _commit_change(root, busybox)
    out = io.BytesIO()
    root.svc.save(["busybox", "mine:v1"], out)
    data = out.getvalue()
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        names = t.getnames()
        manifest = json.load(t.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert "index.json" in names and "oci-layout" in names and "repositories" in names
    assert [m["RepoTags"] for m in manifest] == [["busybox:latest"], ["mine:v1"]]
    other = open_root(os.path.join(base, "b"))
    try:
        lines = list(other.svc.load(io.BytesIO(data)))
        assert lines == ["Loaded image: busybox:latest", "Loaded image: mine:v1"]
        assert other.svc.resolve("busybox").id == busybox
        assert other.svc.resolve("mine:v1").id == new
        assert other.svc.inspect(new)["RootFS"] == root.svc.inspect(new)["RootFS"]
        other.snap.view("v", other.svc.top_layer_chain_id(other.svc.resolve(new)))
        with mounted(other, "v") as m:
            assert os.path.exists(os.path.join(m, "hello"))
            assert not os.path.exists(os.path.join(m, "etc/group"))
        other.snap.remove("v")
        # loading again is idempotent; an untagged save reports the ID
        assert list(other.svc.load(io.BytesIO(data))) == lines
        out2 = io.BytesIO()
        other.svc.save([new], out2)
        third = open_root(os.path.join(base, "c"))
        try:
            assert list(third.svc.load(io.BytesIO(out2.getvalue()))) == [f"Loaded image ID: {new}"]
        finally:
            third.close()
    finally:
        other.close()


def _tar(entries: list[tuple[str, bytes | None, str | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data, link in entries:
            ti = tarfile.TarInfo(name)
            if link is not None:
                ti.type = tarfile.SYMTYPE
                ti.linkname = link
                t.addfile(ti)
            else:
                ti.size = len(data or b"")
                t.addfile(ti, io.BytesIO(data or b""))
    return buf.getvalue()


def _hostile_cases() -> dict[str, bytes]:
    layer = _tar([("f", b"x", None)])
    import hashlib

    diff = "sha256:" + hashlib.sha256(layer).hexdigest()
    cfg = json.dumps({"rootfs": {"type": "layers", "diff_ids": [diff]}, "config": {}}).encode()

    def man(config: str, layers: list[str]) -> bytes:
        return json.dumps([{"Config": config, "RepoTags": ["evil:latest"], "Layers": layers}]).encode()

    return {
        "dotdot layer": _tar(
            [("c.json", cfg, None), ("manifest.json", man("c.json", ["../../etc/passwd"]), None)]
        ),
        "absolute config": _tar([("manifest.json", man("/etc/passwd", []), None)]),
        "missing layer": _tar(
            [("c.json", cfg, None), ("manifest.json", man("c.json", ["nope/layer.tar"]), None)]
        ),
        "symlink out": _tar(
            [
                ("c.json", cfg, None),
                ("l", None, "../../../etc/passwd"),
                ("manifest.json", man("c.json", ["l"]), None),
            ]
        ),
        "symlink loop": _tar(
            [
                ("c.json", cfg, None),
                ("a", None, "b"),
                ("b", None, "a"),
                ("manifest.json", man("c.json", ["a"]), None),
            ]
        ),
        "wrong diff_id": _tar(
            [
                ("c.json", cfg, None),
                ("l.tar", _tar([("g", b"y", None)]), None),
                ("manifest.json", man("c.json", ["l.tar"]), None),
            ]
        ),
        "layer count": _tar([("c.json", cfg, None), ("manifest.json", man("c.json", []), None)]),
        "bad json": _tar([("manifest.json", b"{not json", None)]),
        "bad tag": _tar(
            [("manifest.json", b'[{"Config": "c.json", "RepoTags": ["UP:x"], "Layers": []}]', None)]
        ),
        "no manifest": _tar([("x", b"y", None)]),
        "not a tar": b"hello world" * 100,
        "dotdot member name": _tar([("../c.json", cfg, None), ("manifest.json", man("../c.json", []), None)]),
    }


@pytest.mark.parametrize("case", list(_hostile_cases()))
def test_hostile_load(root: Root, case: str) -> None:
    data = _hostile_cases()[case]
    with pytest.raises(InvalidParameter):
        list(root.svc.load(io.BytesIO(data)))
    assert root.svc.list() == []
    assert os.listdir(root.svc.tmp) == []


def test_service_publishes_image_events_and_asks_its_usage(base: str) -> None:
    events: list[tuple[str, str, str, dict[str, str] | None]] = []

    def publish(
        type_: str, action: str, actor: str, attrs: dict[str, str] | None = None, *, scope: str = "local"
    ) -> dict:
        events.append((type_, action, actor, attrs))
        return {}

    users: dict[str, list[str]] = {}
    path = os.path.join(base, "ev")
    os.makedirs(path)
    meta = MetadataStore(os.path.join(path, "gorae.db"))
    snap = OverlaySnapshotter(os.path.join(path, "overlay"))
    svc = ImageService(
        meta,
        ContentStore(os.path.join(path, "content")),
        snap,
        os.path.join(path, "tmp"),
        publish=publish,
        usage=lambda iid: users.get(iid, []),
    )
    try:
        iid = import_busybox(svc)
        assert events[-1] == ("image", "import", iid, {"name": "busybox:latest"})
        svc.tag("busybox", "other", "v2")
        assert events[-1] == ("image", "tag", iid, {"name": "other:v2"})
        del events[:]
        res = svc.remove("other:v2")
        # dockerd names the image by its ID in untag and delete events
        assert events == [("image", "untag", iid, {"name": iid})] and len(res) == 1
        users[iid] = ["c" * 64]
        assert svc.containers_using(iid) == ["c" * 64]
        with pytest.raises(Conflict, match="container cccccccccccc is using its referenced image"):
            svc.remove("busybox", False, False)
        svc.prune(True, {})
        assert events[-1] == ("image", "prune", "", {"reclaimed": "0"})
    finally:
        meta.close()
        snap.close()
