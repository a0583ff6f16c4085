"""The registry routes over a fake backend: an error before the first progress line is the HTTP answer, after it
in-band; a client that goes away cancels the job; `fromImage`/`tag`/push names through hypothesis reach the
backend as a typed reference or are refused with a 4xx."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gorae.api.distribution import DistributionRouter
from gorae.api.http import Request, StreamResponse
from gorae.distribution.auth import AuthConfig
from gorae.distribution.service import DistributionService
from gorae.errors import Forbidden, GoraeError, InvalidParameter, NotFound
from gorae.image.reference import Reference

Emit = Any


class FakeDist:
    def __init__(self, script: list[Any]) -> None:
        self.script = script
        self.cancelled = threading.Event()
        self.got: list[tuple[str, Any, AuthConfig]] = []
        self.release = threading.Event()

    pull_reference = staticmethod(DistributionService.pull_reference)
    push_reference = staticmethod(DistributionService.push_reference)

    def _play(self, emit: Emit, cancel: threading.Event) -> None:
        for step in self.script:
            if isinstance(step, Exception):
                raise step
            if step == "block":
                self.release.wait(10)
                if cancel.is_set():
                    self.cancelled.set()
                    raise GoraeError("context canceled")
                continue
            emit({"status": step})

    def pull(self, ref: Reference, auth: AuthConfig, emit: Emit, cancel: threading.Event, platform: str | None = None) -> None:
        self.got.append(("pull", ref, auth))
        self._play(emit, cancel)

    def push(self, ref: Reference, auth: AuthConfig, emit: Emit, cancel: threading.Event) -> None:
        self.got.append(("push", ref, auth))
        self._play(emit, cancel)

    def inspect(self, name: str, auth: AuthConfig) -> dict[str, Any]:
        return {"Descriptor": {}, "Platforms": []}

    def login(self, auth: AuthConfig) -> dict[str, str]:
        return {"Status": "Login Succeeded", "IdentityToken": ""}


def _req(path: str, query: dict[str, list[str]], headers: dict[str, str] | None = None, **params: str) -> Request:
    return Request("POST", path, query=query, params=params, headers=headers or {})


async def _lines(res: Any) -> list[dict[str, Any]]:
    assert isinstance(res, StreamResponse) and res.chunks is not None
    return [json.loads(c) async for c in res.chunks]


def test_error_before_first_line_is_the_answer() -> None:
    fake = FakeDist([NotFound("manifest for x:y not found: manifest unknown: manifest unknown")])
    r = DistributionRouter(fake)
    with pytest.raises(NotFound) as e:
        asyncio.run(r.pull(_req("/images/create", {"tag": ["y"]}), "x"))
    assert e.value.message == "manifest for x:y not found: manifest unknown: manifest unknown"
    assert fake.got[0][1] == Reference("docker.io", "library/x", "y", None)


def test_error_after_first_line_is_in_band() -> None:
    fake = FakeDist(["Pulling from library/x", GoraeError("filesystem layer verification failed for digest d")])

    async def go() -> list[dict[str, Any]]:
        return await _lines(await DistributionRouter(fake).pull(_req("/images/create", {"tag": ["1"]}), "x"))

    assert asyncio.run(go()) == [
        {"status": "Pulling from library/x"},
        {"errorDetail": {"message": "filesystem layer verification failed for digest d"},
         "error": "filesystem layer verification failed for digest d"},
    ]


def test_client_gone_cancels_the_job() -> None:
    fake = FakeDist(["Pulling from library/x", "block", "never"])

    async def go() -> None:
        res = await DistributionRouter(fake).pull(_req("/images/create", {"tag": ["1"]}), "x")
        assert isinstance(res, StreamResponse) and res.chunks is not None
        it = res.chunks.__aiter__()
        assert json.loads(await it.__anext__()) == {"status": "Pulling from library/x"}
        await it.aclose()  # what the server does when the client hangs up
        fake.release.set()

    asyncio.run(go())
    assert fake.cancelled.wait(5)


def test_push_auth_header_and_tag() -> None:
    fake = FakeDist(["The push refers to repository [r:5000/a]"])
    hdr = base64.urlsafe_b64encode(json.dumps({"username": "u", "password": "p"}).encode()).decode()

    async def go() -> list[dict[str, Any]]:
        req = _req("/images/r:5000/a/push", {"tag": ["2"]}, {"x-registry-auth": hdr}, name="r:5000/a")
        return await _lines(await DistributionRouter(fake).push(req))

    assert asyncio.run(go()) == [{"status": "The push refers to repository [r:5000/a]"}]
    assert fake.got == [("push", Reference("r:5000", "a", "2", None), AuthConfig(username="u", password="p"))]
    with pytest.raises(InvalidParameter) as e:  # push refuses a bad header, as dockerd
        asyncio.run(DistributionRouter(fake).push(_req("/x", {}, {"x-registry-auth": "!!"}, name="r:5000/a")))
    assert e.value.message.startswith("invalid X-Registry-Auth header")


def test_pull_reference_rules() -> None:
    pr = DistributionService.pull_reference
    d = "sha256:" + "c" * 64
    assert pr("busybox", "") == Reference("docker.io", "library/busybox", None, None)  # every tag
    assert pr("busybox:", "") == Reference("docker.io", "library/busybox", None, None)  # pull -a's trailing ":"
    assert pr("busybox", d) == Reference("docker.io", "library/busybox", None, d)
    assert pr("r:5000/a", "v1") == Reference("r:5000", "a", "v1", None)
    with pytest.raises(Forbidden) as e:
        pr("scratch", "latest")
    assert e.value.message == "'scratch' is a reserved name"
    with pytest.raises(InvalidParameter) as e2:
        pr("busybox", "sha256:abc")
    assert e2.value.message == "invalid reference format"
    with pytest.raises(InvalidParameter) as e3:
        pr("busybox", "-bad")
    assert e3.value.message == "invalid tag format"


_piece = st.sampled_from(["busybox", "Up", "r:5000", "/", ":", "@", "sha256:", "c" * 64, "..", "x", "-", "_", "é", ""])


@settings(max_examples=600, deadline=None)
@given(st.lists(_piece, max_size=8).map("".join), st.lists(_piece, max_size=4).map("".join))
def test_hostile_from_image_and_tag(from_image: str, tag: str) -> None:
    for fn in (DistributionService.pull_reference, DistributionService.push_reference):
        try:
            ref = fn(from_image, tag)
        except (InvalidParameter, Forbidden) as e:
            assert 400 <= e.status < 500
            continue
        assert isinstance(ref, Reference) and ref.path == ref.path.lower()
