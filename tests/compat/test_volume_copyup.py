"""Copy-up of a hostile image's content into a new volume (security review F1, tests audit §8): device nodes
are recreated, never opened (opening one copies the *host's* device into the volume), fifos do not stop the
start, owners and hardlinks are kept, and a tree deeper than Python's recursion limit copies."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import uuid
from pathlib import Path

import pytest
from conftest import GoraeDaemon, busybox_tar, unique_name

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mknod)")

DEPTH = 1100


def _hostile_rootfs(path: Path) -> None:
    """busybox plus /data holding a block device 7:0, /dev/zero's 1:5, a fifo, a uid-1234 file with a hardlink,
    and a deep tree."""
    with open(busybox_tar(), "rb") as f:
        base = f.read()
    buf = io.BytesIO(base)
    buf.seek(0)
    with tarfile.open(fileobj=buf, mode="r") as src, tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as out:
        for m in src.getmembers():
            out.addfile(m, src.extractfile(m) if m.isfile() else None)

        def add(name: str, kind: bytes, mode: int = 0o644, data: bytes = b"", **kw: int | str) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.size = kind, mode, len(data)
            for k, v in kw.items():
                setattr(info, k, v)
            out.addfile(info, io.BytesIO(data) if data else None)

        add("data", tarfile.DIRTYPE, 0o755)
        add("data/disk", tarfile.BLKTYPE, 0o600, devmajor=7, devminor=0)
        add("data/zero", tarfile.CHRTYPE, 0o666, devmajor=1, devminor=5)
        add("data/fifo", tarfile.FIFOTYPE, 0o640)
        add("data/owned", tarfile.REGTYPE, 0o640, b"mine", uid=1234, gid=5678)
        add("data/owned-link", tarfile.LNKTYPE, linkname="data/owned")
        for i in range(1, DEPTH + 1):
            add("data/" + "/".join(["d"] * i), tarfile.DIRTYPE, 0o755)


def test_copy_up_recreates_special_files_and_keeps_owners(gorae_daemon: GoraeDaemon, tmp_path: Path) -> None:
    d = gorae_daemon
    image = f"hostile/devcopy-{uuid.uuid4().hex[:8]}"
    name = unique_name("copyup")
    rootfs = tmp_path / "rootfs.tar"
    _hostile_rootfs(rootfs)
    d.docker("import", "--change", "VOLUME /data", "--change", 'CMD ["sh"]', str(rootfs), image, timeout=180)
    try:
        # the container starts (a fifo used to abort it) and sees nodes, not contents
        out = d.docker(
            "run", "--name", name, "--network", "none", image,
            "sh", "-c", "ls -ln /data | sort; wc -c < /data/owned; stat -c %h /data/owned",
            timeout=120,
        ).stdout
        lines = {ln.split()[-1]: ln.split() for ln in out.splitlines() if ln.startswith(("b", "c", "p", "-"))}
        assert lines["disk"][0].startswith("b") and lines["disk"][4:6] == ["7,", "0"]
        assert lines["zero"][0].startswith("c") and lines["zero"][4:6] == ["1,", "5"]
        assert lines["fifo"][0].startswith("p")
        assert lines["owned"][2:4] == ["1234", "5678"]
        assert out.splitlines()[-2:] == ["4", "2"]  # content and the hardlink kept
        source = d.docker("inspect", "-f", "{{range .Mounts}}{{.Source}}{{end}}", name).stdout.strip()
        host = os.lstat(os.path.join(source, "disk"))
        assert stat.S_ISBLK(host.st_mode) and host.st_size == 0  # on the host too: a node, nothing read
        depth = 0
        p = os.path.join(source, "d")
        while os.path.isdir(p):
            depth += 1
            p = os.path.join(p, "d")
            if len(p) > 3000:
                break
        assert depth >= 1000
    finally:
        d.docker("rm", "-f", "-v", name, check=False)
        d.docker("rmi", "-f", image, check=False)
