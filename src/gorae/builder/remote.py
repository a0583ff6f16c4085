"""Remote build contexts (`POST /build?remote=URL`, as docker-py sends `images.build(path=URL)`): an http(s)
URL whose body is a tar (maybe compressed) or a Dockerfile, or a git URL (cloned with the git binary, as
dockerd does). The result is a context tar in a spooled file on the data root. Blocking: call from a thread."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from typing import BinaryIO, cast

from gorae import gitcontext
from gorae.errors import InvalidParameter

SPOOL_MEMORY = 64 << 20
_ARCHIVE_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd")


def fetch(url: str, tmp: str) -> tuple[BinaryIO, str]:
    """The context tar for `url`, and the Dockerfile name to use when the URL was a bare Dockerfile ("")."""
    if gitcontext.is_git_url(url):
        return _git(url, tmp), ""
    if not url.startswith(("http://", "https://")):
        raise InvalidParameter(f"unable to prepare context: unsupported remote context: {url}")
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY, dir=tmp, prefix="build-remote-")
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310 - the client's URL
            shutil.copyfileobj(resp, out, 1 << 20)
    except urllib.error.HTTPError as e:
        out.close()
        raise InvalidParameter(f"error downloading remote context {url}: {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        out.close()
        raise InvalidParameter(f"error downloading remote context {url}: {getattr(e, 'reason', e)}") from None
    out.seek(0)
    head = out.read(512)
    out.seek(0)
    if head.startswith(_ARCHIVE_MAGIC) or head[257:262] == b"ustar":
        return cast(BinaryIO, out), ""
    data = out.read()
    out.close()
    return _tar_of({"Dockerfile": data}, tmp), "Dockerfile"


def _tar_of(files: dict[str, bytes], tmp: str) -> BinaryIO:
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY, dir=tmp, prefix="build-remote-")
    with tarfile.open(fileobj=out, mode="w") as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode = len(data), 0o644
            tf.addfile(ti, io.BytesIO(data))
    out.seek(0)
    return cast(BinaryIO, out)


def _git(url: str, tmp: str) -> BinaryIO:
    """The checkout (its `.git` too, as dockerd tars the clone) of a git URL as a context tar."""
    root, ctx = gitcontext.clone(url, tmp)
    try:
        out = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY, dir=tmp, prefix="build-remote-")
        with tarfile.open(fileobj=out, mode="w") as tf:
            for name in sorted(os.listdir(ctx)):
                tf.add(os.path.join(ctx, name), arcname=name)
        out.seek(0)
        return cast(BinaryIO, out)
    finally:
        shutil.rmtree(root, ignore_errors=True)
