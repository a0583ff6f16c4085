"""`init_artifacts`: the engine's own entries of a container's upper dir (moby's init layer), left out of `diff`
and `commit`; anything the container itself changed stays visible."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

from gorae.archive import init_artifacts, overlay_changes, tar_overlay_diff


def _layers(tmp_path: Path) -> tuple[Path, Path]:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "etc").mkdir(parents=True)
    (lower / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    os.chmod(lower / "etc", 0o755)
    (upper / "etc").mkdir(parents=True)
    os.chmod(upper / "etc", 0o755)
    for name in ("hostname", "hosts", "resolv.conf"):
        (upper / "etc" / name).write_bytes(b"")
    (upper / ".dockerenv").write_bytes(b"")
    for d in ("proc", "sys", "dev/pts"):
        (upper / d).mkdir(parents=True)
    return lower, upper


def test_an_unchanged_container_shows_nothing(tmp_path: Path) -> None:
    lower, upper = _layers(tmp_path)
    assert init_artifacts(str(upper), [str(lower)]) == {
        "/.dockerenv", "/etc", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/proc", "/sys", "/dev",
        "/dev/pts",
    }
    assert overlay_changes(str(upper), [str(lower)]) == []
    buf = io.BytesIO()
    tar_overlay_diff(str(upper), buf, exclude=init_artifacts(str(upper), [str(lower)]))
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tf:
        assert tf.getnames() == []


def test_real_changes_stay(tmp_path: Path) -> None:
    lower, upper = _layers(tmp_path)
    (upper / "etc" / "added").write_text("x")
    (upper / "etc" / "hosts").write_text("written into the layer\n")  # not an empty mount point
    (upper / "proc" / "f").write_text("x")
    assert overlay_changes(str(upper), [str(lower)]) == [
        (0, "/etc"), (1, "/etc/added"), (1, "/etc/hosts"), (1, "/proc"), (1, "/proc/f"),
    ]
    (upper / "etc" / "added").unlink()
    (upper / "etc" / "hosts").write_bytes(b"")
    (upper / "proc" / "f").unlink()
    assert overlay_changes(str(upper), [str(lower)]) == []
    os.chmod(upper / "etc", 0o700)  # a chmod of /etc alone is a change
    assert overlay_changes(str(upper), [str(lower)]) == [(0, "/etc")]
