"""Hostile image configs through `docker load` (security review F8): refused with a clear error, and nothing
breaks `docker images` or `system df` for the images already there."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest
from conftest import GoraeDaemon


def _save_tar(config: bytes, tag: str) -> bytes:
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as lt:
        info = tarfile.TarInfo("hello")
        info.size = 2
        lt.addfile(info, io.BytesIO(b"hi"))
    layer_bytes = layer.getvalue()
    diff = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    config = config.replace(b"@DIFF@", diff.encode())
    cfg_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = [{"Config": cfg_name, "RepoTags": [tag], "Layers": ["l1/layer.tar"]}]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as t:
        for name, data in ((cfg_name, config), ("l1/layer.tar", layer_bytes),
                           ("manifest.json", json.dumps(manifest).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.mark.parametrize(
    "config",
    [
        b'{"Labels":1,"config":{"Labels":[1],"ExposedPorts":[1],"Env":"x","Cmd":5},'
        b'"rootfs":{"type":"layers","diff_ids":["@DIFF@"]}}',
        b'{"architecture":1e999,"rootfs":{"type":"layers","diff_ids":["@DIFF@"]}}',
    ],
)
def test_hostile_config_is_refused_and_images_keep_working(gorae_daemon: GoraeDaemon, config: bytes) -> None:
    d = gorae_daemon
    res = d.docker("load", input=_save_tar(config, "hostile/types:1").decode("latin-1"), check=False)
    assert res.returncode == 1 and "invalid image config" in res.stderr, res
    assert "hostile/types" not in d.docker("images", "--format", "{{.Repository}}").stdout
    d.docker("system", "df")
    d.docker("image", "inspect", "busybox")
