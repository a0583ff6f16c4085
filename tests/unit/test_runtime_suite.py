"""The runtime conformance suite (gorae.runtime.testsuite) against the fake runtime and, as root with
conmon, against ConmonRuntime."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile

import pytest
from fakes.runtime import FakeRuntime

from gorae.runtime.testsuite import CASES


class FakeHarness:
    def __init__(self, base: str) -> None:
        self.runtime = FakeRuntime()
        self.base = base
        self.n = 0

    def bundle(self, cmd: list[str]) -> tuple[str, str, str]:
        self.n += 1
        cid = f"fake{self.n:060d}"
        bundle = os.path.join(self.base, cid)
        os.makedirs(bundle)
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump({"process": {"args": cmd}}, f)
        return cid, bundle, os.path.join(bundle, "ctr.log")


@pytest.mark.parametrize("name", sorted(CASES))
def test_fake_runtime_conforms(name, tmp_path):
    asyncio.run(CASES[name](FakeHarness(str(tmp_path))))


needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("conmon"), reason="needs root and conmon"
)


@pytest.fixture(scope="module")
def conmon_env():
    from test_runtime_conmon import Env
    from test_runtime_support import make_rootfs

    d = tempfile.mkdtemp(prefix="gorae-rt-suite-")
    make_rootfs(d)
    yield os.path.join(d, "rootfs"), Env
    shutil.rmtree(d, ignore_errors=True)


class ConmonHarness:
    def __init__(self, env) -> None:
        self.env = env
        self.runtime = env.rt

    def bundle(self, cmd: list[str]) -> tuple[str, str, str]:
        return self.env.bundle(cmd)


@needs_root
@pytest.mark.parametrize("name", sorted(CASES))
def test_conmon_runtime_conforms(name, conmon_env):
    rootfs, env_cls = conmon_env
    env = env_cls(rootfs)
    try:
        asyncio.run(CASES[name](ConmonHarness(env)))
    finally:
        env.cleanup()
