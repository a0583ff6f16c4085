"""The image handlers one by one against a fake backend: HTTP in, backend calls and Docker's answers out."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any, BinaryIO

import pytest

from gorae.api.http import Request, Response, StreamResponse
from gorae.api.images import ImagesRouter
from gorae.errors import InvalidParameter, NotFound
from gorae.image.models import Image


class FakeImages:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.known = {"busybox:latest": Image(id="sha256:" + "b" * 64, config={})}

    def list(self, all: bool = False, filters: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
        self.calls.append(("list", all, filters))
        return [{"Id": "sha256:" + "b" * 64}]

    def inspect(self, ref_or_id: str) -> dict[str, Any]:
        return {"Id": self.resolve(ref_or_id).id}

    def history(self, ref_or_id: str) -> list[dict[str, Any]]:
        return []

    def resolve(self, ref_or_id: str) -> Image:
        try:
            return self.known[ref_or_id]
        except KeyError:
            raise NotFound(f"No such image: {ref_or_id}") from None

    def tag(self, ref_or_id: str, repo: str, tag: str | None = None) -> None:
        self.calls.append(("tag", ref_or_id, repo, tag))

    def remove(self, ref_or_id: str, force: bool = False, noprune: bool = False) -> list[dict[str, Any]]:
        self.calls.append(("remove", ref_or_id, force, noprune))
        return [{"Untagged": ref_or_id}]

    def prune(
        self, dangling_only: bool = True, filters: dict[str, list[str]] | None = None
    ) -> dict[str, Any]:
        self.calls.append(("prune", dangling_only, filters))
        return {"ImagesDeleted": None, "SpaceReclaimed": 0}

    def import_tar(
        self,
        stream: BinaryIO,
        repo_tag: str | None = None,
        changes: list[str] | None = None,
        message: str = "",
    ) -> str:
        self.calls.append(("import", stream.read(), repo_tag, changes, message))
        return "sha256:" + "c" * 64

    def load(self, stream: BinaryIO) -> Iterator[str]:
        stream.read()
        yield "Loaded image: x:1"
        raise InvalidParameter("invalid archive: truncated")

    def save(self, names: list[str], out: BinaryIO) -> None:
        out.write(b"tar:" + ",".join(names).encode())


class Body:
    def __init__(self, data: bytes) -> None:
        self._chunks = [data, b""] if data else [b""]

    async def next_chunk(self) -> bytes:
        return self._chunks.pop(0) if self._chunks else b""


def _req(
    method: str, path: str, query: dict[str, list[str]] | None = None, body: bytes = b"", **params: str
) -> Request:
    return Request(method, path, query=query or {}, params=params, _source=Body(body))


async def _drain(res: Response) -> bytes:
    if isinstance(res, StreamResponse):
        assert res.chunks is not None
        return b"".join([c async for c in res.chunks])
    return res.body


@pytest.fixture
def fake() -> FakeImages:
    return FakeImages()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_route_table_is_flat_and_complete(fake: FakeImages) -> None:
    table = {(m, p) for m, p, _ in ImagesRouter(fake).routes()}
    assert ("DELETE", "/images/{name:.+}") in table and ("POST", "/images/create") in table
    assert len(table) == 10


def test_list_takes_the_old_filter_parameter(fake: FakeImages) -> None:
    res = run(ImagesRouter(fake).list_images(_req("GET", "/images/json", {"all": ["1"], "filter": ["bu*"]})))
    assert res.status == 200 and json.loads(res.body) == [{"Id": "sha256:" + "b" * 64}]
    assert fake.calls == [("list", True, {"reference": ["bu*"]})]


def test_tag_splits_repo_with_tag_and_defaults_latest(fake: FakeImages) -> None:
    r = ImagesRouter(fake)
    assert run(r.tag(_req("POST", "/", {"repo": ["reg:5000/x:v1"]}, name="busybox"))).status == 201
    assert run(r.tag(_req("POST", "/", {"repo": ["y"]}, name="busybox"))).status == 201
    assert fake.calls == [("tag", "busybox", "reg:5000/x", "v1"), ("tag", "busybox", "y", "latest")]
    with pytest.raises(InvalidParameter, match="at least one component"):
        run(r.tag(_req("POST", "/", {}, name="busybox")))


def test_remove_and_prune_pass_flags(fake: FakeImages) -> None:
    r = ImagesRouter(fake)
    res = run(r.remove(_req("DELETE", "/", {"force": ["1"]}, name="busybox")))
    assert json.loads(res.body) == [{"Untagged": "busybox"}]
    run(r.prune(_req("POST", "/", {"filters": ['{"dangling":["false"],"label":["a"]}']})))
    assert fake.calls == [("remove", "busybox", True, False), ("prune", False, {"label": ["a"]})]


def test_create_from_image_present_or_missing(fake: FakeImages) -> None:
    r = ImagesRouter(fake)
    out = run(_drain(run(r.create(_req("POST", "/", {"fromImage": ["busybox"], "tag": ["latest"]})))))
    assert b"Image is up to date for busybox:latest" in out
    with pytest.raises(NotFound, match="pull access denied for nope"):
        run(r.create(_req("POST", "/", {"fromImage": ["nope"]})))


def test_import_streams_the_body_to_the_backend(fake: FakeImages) -> None:
    async def go() -> bytes:
        r = ImagesRouter(fake)
        q = {"fromSrc": ["-"], "repo": ["imp"], "tag": ["t"], "changes": ['CMD ["sh"]']}
        return await _drain(await r.create(_req("POST", "/", q, body=b"TARBYTES")))

    assert json.loads(run(go())) == {"status": "sha256:" + "c" * 64}
    assert fake.calls == [("import", b"TARBYTES", "imp:t", ['CMD ["sh"]'], "")]


def test_load_reports_lines_then_the_error_in_band(fake: FakeImages) -> None:
    async def go() -> bytes:
        return await _drain(await ImagesRouter(fake).load(_req("POST", "/", body=b"x")))

    lines = [json.loads(x) for x in run(go()).split(b"\r\n") if x]
    assert lines == [
        {"stream": "Loaded image: x:1\n"},
        {"errorDetail": {"message": "invalid archive: truncated"}, "error": "invalid archive: truncated"},
    ]


def test_save_checks_every_name_before_streaming(fake: FakeImages) -> None:
    async def go(q: dict[str, list[str]]) -> bytes:
        return await _drain(await ImagesRouter(fake).save(_req("GET", "/images/get", q)))

    assert run(go({"names": ["busybox:latest"]})) == b"tar:busybox:latest"
    with pytest.raises(NotFound):
        run(go({"names": ["busybox:latest", "missing"]}))
