"""The offline `busybox:latest`: a rootfs tar built from the host's static busybox, and its import.

`rootfs_tar()` is deterministic (sorted entries, numeric owners, one fixed mtime: $SOURCE_DATE_EPOCH or
the binary's), so the same busybox binary always gives the same diff_id and, with the fixed `created`
time `import_busybox` uses, the same image ID. Every applet is a symlink to /bin/busybox in /bin (the
applet called "busybox" is skipped so the binary is never replaced by a link to itself).

`python -m gorae.image.bootstrap` writes the tar to stdout (or `--output FILE`); with `--data-root DIR`
it imports `busybox:latest` into that data root instead.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tarfile
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from gorae.errors import NotFound, SystemError_

if TYPE_CHECKING:
    from gorae.image.service import ImageService

BUSYBOX = "/bin/busybox"
PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"
GROUP = b"root:x:0:\nnobody:x:65534:\n"
DIRS = {
    "bin": 0o755,
    "dev": 0o755,
    "etc": 0o755,
    "home": 0o755,
    "proc": 0o555,
    "root": 0o700,
    "sys": 0o555,
    "tmp": 0o1777,
    "usr": 0o755,
    "usr/sbin": 0o755,
    "var": 0o755,
    "var/spool": 0o755,
    "var/www": 0o755,
}


def _epoch(binary: str) -> int:
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env and env.isdigit():
        return int(env)
    return int(os.stat(binary).st_mtime)


def applets(binary: str = BUSYBOX) -> list[str]:
    try:
        out = subprocess.run([binary, "--list"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise SystemError_(f"cannot list the applets of {binary}: {e}") from None
    names = {a.strip() for a in out.split()}
    return sorted(a for a in names if a and a != "busybox" and "/" not in a and a not in (".", ".."))


def rootfs_tar(binary: str = BUSYBOX) -> bytes:
    """The busybox rootfs as an uncompressed tar."""
    mtime = _epoch(binary)
    buf = io.BytesIO()

    def info(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.type = kind
        ti.mode = mode
        ti.mtime = mtime
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = ""
        return ti

    entries: list[tuple[str, tarfile.TarInfo, bytes | None]] = []
    for d, mode in DIRS.items():
        entries.append((d + "/", info(d + "/", tarfile.DIRTYPE, mode), None))
    with open(binary, "rb") as f:
        data = f.read()
    entries.append(("bin/busybox", info("bin/busybox", tarfile.REGTYPE, 0o755), data))
    for name in applets(binary):
        ti = info(f"bin/{name}", tarfile.SYMTYPE, 0o777)
        ti.linkname = "busybox"
        entries.append((ti.name, ti, None))
    entries.append(("etc/passwd", info("etc/passwd", tarfile.REGTYPE, 0o644), PASSWD))
    entries.append(("etc/group", info("etc/group", tarfile.REGTYPE, 0o644), GROUP))
    entries.sort(key=lambda e: e[0])
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for _, ti, content in entries:
            if content is not None:
                ti.size = len(content)
                tar.addfile(ti, io.BytesIO(content))
            else:
                tar.addfile(ti)
    return buf.getvalue()


def import_busybox(images: ImageService, binary: str = BUSYBOX, tag: str = "busybox:latest") -> str:
    """Import the busybox rootfs as `tag` with Cmd ["sh"]; the same binary always yields the same ID."""
    created = datetime.fromtimestamp(_epoch(binary), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return images.import_tar(io.BytesIO(rootfs_tar(binary)), tag, ['CMD ["sh"]'], "", created=created)


def ensure_busybox(images: ImageService, binary: str = BUSYBOX) -> str | None:
    """Import busybox:latest unless it exists or the host has no busybox; returns the image ID."""
    try:
        return images.resolve("busybox:latest").id
    except NotFound:
        pass
    if not os.path.exists(binary):
        return None
    return import_busybox(images, binary)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="gorae-bootstrap", description="Build the offline busybox image.")
    p.add_argument("--busybox", default=BUSYBOX, help="static busybox binary (default %(default)s)")
    p.add_argument("--output", "-o", help="write the rootfs tar here instead of stdout")
    p.add_argument("--data-root", help="import busybox:latest into this gorae data root")
    args = p.parse_args(argv)
    if args.data_root:
        from gorae.image.service import ImageService
        from gorae.snapshot.overlay import OverlaySnapshotter
        from gorae.store.content import ContentStore
        from gorae.store.metadata import MetadataStore

        root = args.data_root
        for sub in ("content", "overlay", "tmp"):
            os.makedirs(os.path.join(root, sub), mode=0o711, exist_ok=True)
        svc = ImageService(
            MetadataStore(os.path.join(root, "gorae.db")),
            ContentStore(os.path.join(root, "content")),
            OverlaySnapshotter(os.path.join(root, "overlay")),
            os.path.join(root, "tmp"),
        )
        print(import_busybox(svc, args.busybox))
        return 0
    data = rootfs_tar(args.busybox)
    if args.output:
        with open(args.output, "wb") as f:
            f.write(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
