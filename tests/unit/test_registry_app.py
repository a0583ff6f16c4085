"""The registry application in-process over the generic HTTP server: blob GETs go out by sendfile when the
driver has local files (FileResponse) and as a Content-Length stream when it has none (an S3-like driver),
ranges included on both; uploads resume across application instances sharing one storage (the running hash
is rebuilt from the stored bytes)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from gorae.httpserver.message import FileResponse, Request, StreamResponse
from gorae.httpserver.server import HttpServer
from gorae.registry.app import RegistryApp
from gorae.registry.storage.filesystem import FilesystemDriver
from gorae.registry.store import RegistryStore


class NoLocalFiles(FilesystemDriver):
    """The filesystem driver pretending to be remote: no local path, so blobs are streamed."""

    def local_path(self, path: str) -> str | None:
        return None


class Served:
    def __init__(self, app: RegistryApp) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = HttpServer(app)
        _, port = self.call(self.server.listen_tcp("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{port}"

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def stop(self) -> None:
        try:
            self.call(self.server.close())
        finally:
            self.app.close()
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


@pytest.fixture
def root() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="gorae-registry-app-")
    try:
        yield d
    finally:
        shutil.rmtree(d)


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push(url: str, repo: str, data: bytes) -> str:
    r = requests.post(f"{url}/v2/{repo}/blobs/uploads/", params={"digest": sha(data)}, data=data, timeout=30)
    assert r.status_code == 201, r.text
    return sha(data)


@pytest.mark.parametrize("driver_class", [FilesystemDriver, NoLocalFiles])
def test_blob_get_by_sendfile_or_by_stream(root: str, driver_class: type[FilesystemDriver]) -> None:
    app = RegistryApp(RegistryStore(driver_class(root)))
    served = Served(app)
    try:
        data = os.urandom(3 * 1024 * 1024 + 7)
        dig = push(served.url, "a/b", data)
        r = requests.get(f"{served.url}/v2/a/b/blobs/{dig}", timeout=30)
        assert (r.status_code, r.headers["Content-Length"], r.content == data) == (200, str(len(data)), True)
        assert "Transfer-Encoding" not in r.headers
        r = requests.get(
            f"{served.url}/v2/a/b/blobs/{dig}", headers={"Range": "bytes=1000-1999999"}, timeout=30
        )
        assert (r.status_code, r.content == data[1000:2000000]) == (206, True)
        # which response type the handler chose
        req = Request("GET", f"/v2/a/b/blobs/{dig}", params={"name": "a/b", "digest": dig})
        resp = served.call(app.get_blob(req))
        want = FileResponse if driver_class is FilesystemDriver else StreamResponse
        assert type(resp) is want
        if isinstance(resp, FileResponse):
            assert resp.file is not None
            resp.file.close()
        else:
            assert resp.content_length == len(data)
            assert resp.chunks is not None
            served.call(resp.chunks.aclose())  # type: ignore[attr-defined]
    finally:
        served.stop()


def test_upload_resumes_on_another_instance(root: str) -> None:
    """Two registry processes on one storage: chunks sent to either, the digest still verified at the end."""
    one = Served(RegistryApp(RegistryStore(FilesystemDriver(root))))
    two = Served(RegistryApp(RegistryStore(FilesystemDriver(root))))
    try:
        data = os.urandom(5 * 1024 * 1024)
        r = requests.post(f"{one.url}/v2/r/blobs/uploads/", timeout=30)
        loc = r.headers["Location"]
        parts = [data[: 2 << 20], data[2 << 20 : 4 << 20], data[4 << 20 :]]
        start = 0
        for i, part in enumerate(parts):
            target = (one if i % 2 == 0 else two).url + loc
            r = requests.patch(
                target, data=part, headers={"Content-Range": f"{start}-{start + len(part) - 1}"}, timeout=30
            )
            assert r.status_code == 202, r.text
            start += len(part)
        r = requests.put(two.url + loc, params={"digest": sha(data)}, timeout=30)
        assert r.status_code == 201, r.text
        assert requests.get(f"{one.url}/v2/r/blobs/{sha(data)}", timeout=30).content == data
        # a wrong digest after a cross-instance upload is still caught
        r = requests.post(f"{one.url}/v2/r/blobs/uploads/", timeout=30)
        loc = r.headers["Location"]
        assert requests.patch(one.url + loc, data=b"abc", timeout=30).status_code == 202
        r = requests.put(two.url + loc, params={"digest": sha(b"abd")}, timeout=30)
        assert r.status_code == 400 and r.json()["errors"][0]["code"] == "DIGEST_INVALID"
    finally:
        one.stop()
        two.stop()
