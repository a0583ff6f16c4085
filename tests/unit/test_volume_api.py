"""The volume handlers one by one against a fake backend."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from gorae.api.http import Request
from gorae.api.volumes import VolumesRouter
from gorae.errors import InvalidParameter


class FakeVolumes:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def create(
        self,
        name: str | None = None,
        driver: str | None = "local",
        labels: dict[str, str] | None = None,
        options: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        self.calls.append(("create", name, driver, labels, options))
        return {"Name": name or "anon", "Driver": driver}

    def list(self, filters: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
        self.calls.append(("list", filters))
        return []

    def inspect(self, name: str) -> dict[str, Any]:
        return {"Name": name}

    def remove(self, name: str, force: bool = False) -> None:
        self.calls.append(("remove", name, force))

    def prune(self, filters: dict[str, list[str]] | None = None) -> dict[str, Any]:
        self.calls.append(("prune", filters))
        return {"VolumesDeleted": [], "SpaceReclaimed": 0}


class Body:
    def __init__(self, data: bytes) -> None:
        self._chunks = [data, b""]

    async def next_chunk(self) -> bytes:
        return self._chunks.pop(0) if self._chunks else b""


def _req(query: dict[str, list[str]] | None = None, body: bytes = b"", **params: str) -> Request:
    return Request("POST", "/", query=query or {}, params=params, _source=Body(body))


def test_create_reads_the_body() -> None:
    fake = FakeVolumes()
    res = asyncio.run(VolumesRouter(fake).create(_req(body=b'{"Name":"v1","Labels":{"a":"b"}}')))
    assert res.status == 201 and json.loads(res.body) == {"Name": "v1", "Driver": "local"}
    assert fake.calls == [("create", "v1", "local", {"a": "b"}, {})]
    with pytest.raises(
        InvalidParameter, match="cannot unmarshal array into Go struct field CreateOptions.Labels"
    ):
        asyncio.run(VolumesRouter(fake).create(_req(body=b'{"Labels":[1]}')))


def test_list_wraps_volumes_and_remove_passes_force() -> None:
    fake = FakeVolumes()
    r = VolumesRouter(fake)
    res = asyncio.run(r.list_volumes(_req({"filters": ['{"dangling":["true"]}']})))
    assert json.loads(res.body) == {"Volumes": [], "Warnings": None}
    assert asyncio.run(r.remove(_req({"force": ["1"]}, name="v1"))).status == 204
    assert fake.calls == [("list", {"dangling": ["true"]}), ("remove", "v1", True)]
