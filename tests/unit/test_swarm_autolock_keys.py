"""Swarm autolock's pure parts: the unlock key parser (`SWMKEY-1-...`, as swarmkit's ParseHumanReadableKey) under
hostile input, the sealed files (`Vault`: sealed under one key, opened by it only, tampering and swapping
detected), and a locked manager's `POST /swarm/unlock` under hostile bodies (it stays locked; dockerd's 400/401)."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gorae.api.swarm import SwarmRouter
from gorae.errors import GoraeError, InvalidParameter, Unauthorized, Unavailable
from gorae.httpserver.message import Request
from gorae.swarm import autolock
from gorae.swarm.manager import SwarmService

KEY_RE = re.compile(r"SWMKEY-1-[A-Za-z0-9+/]{43}")


def test_new_key_is_dockerds_format() -> None:
    keys = {autolock.new_key() for _ in range(20)}
    assert len(keys) == 20
    for key in keys:
        assert KEY_RE.fullmatch(key), key
        assert len(autolock.parse_key(key)) == 32


@given(st.binary(max_size=64))
def test_parse_key_round_trip(raw: bytes) -> None:
    assert autolock.parse_key("SWMKEY-1-" + base64.b64encode(raw).decode().rstrip("=")) == raw


@pytest.mark.parametrize(
    ("text", "raw"),
    [
        ("SWMKEY-1-", b""),
        ("SWMKEY-1-AAAA", b"\0\0\0"),
        ("SWMKEY-1-garbage", base64.b64decode("garbage=")),  # dockerd: a key, just not the right one
        ("SWMKEY-1-AA\nAA\r", b"\0\0\0"),  # Go's decoder skips CR and LF
    ],
)
def test_parse_key_accepts_what_swarmkit_accepts(text: str, raw: bytes) -> None:
    assert autolock.parse_key(text) == raw


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage",
        "swmkey-1-AAAA",  # the prefix is case-sensitive
        " SWMKEY-1-AAAA",  # the daemon trims nothing (the CLI does)
        "SWMKEY-1-AAA=",  # unpadded base64 only
        "SWMKEY-1-A",  # 4n+1 characters never decode
        "SWMKEY-1-AA AA",
        "SWMKEY-1-AA-_",  # not the URL alphabet
        "SWMKEY-2-AAAA",
    ],
)
def test_parse_key_refuses_like_swarmkit(text: str) -> None:
    with pytest.raises(InvalidParameter, match="^invalid key string$"):
        autolock.parse_key(text)


@given(st.text(max_size=60) | st.text(max_size=60).map(lambda t: "SWMKEY-1-" + t))
def test_parse_key_hostile(text: str) -> None:
    """Any text: the key's bytes (3 per 4 characters of its body) or dockerd's "invalid key string"."""
    try:
        raw = autolock.parse_key(text)
    except InvalidParameter as e:
        assert e.message == "invalid key string"
        return
    body = text.removeprefix("SWMKEY-1-").replace("\r", "").replace("\n", "")
    assert text.startswith("SWMKEY-1-") and len(raw) == len(body) * 3 // 4
    assert re.fullmatch(r"[A-Za-z0-9+/]*", body)


def _files(root: Path) -> dict[str, bytes]:
    plain = {}
    for i, name in enumerate(autolock.SEALED_FILES):
        data = b"-----BEGIN EC PRIVATE KEY-----\nsecret%d\n-----END EC PRIVATE KEY-----\n" % i
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
        plain[name] = data
    return plain


def test_vault_seals_opens_and_unseals(tmp_path: Path) -> None:
    plain = _files(tmp_path)
    vault = autolock.Vault(tmp_path)
    assert not vault.sealed() and not vault.locked
    key, other = autolock.new_key(), autolock.new_key()
    assert vault.reseal(key) is True
    assert vault.reseal(key) is False
    for name, data in plain.items():
        sealed = (tmp_path / name).read_bytes()
        assert sealed.startswith(autolock.MAGIC) and data not in sealed and b"secret" not in sealed
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600
        assert vault.read(tmp_path / name) == data
    # a daemon that starts again: locked until the right key
    fresh = autolock.Vault(tmp_path)
    assert fresh.locked
    with pytest.raises(Unavailable, match="Swarm is encrypted and needs to be unlocked"):
        fresh.read(tmp_path / "data.key")
    with pytest.raises(Unauthorized, match="^swarm could not be unlocked: invalid key provided$"):
        fresh.unlock(other)
    with pytest.raises(InvalidParameter, match="^invalid key string$"):
        fresh.unlock(key + "=")
    assert fresh.locked
    fresh.unlock(key)
    assert not fresh.locked and fresh.key == key
    assert {n: fresh.read(tmp_path / n) for n in plain} == plain
    # a file written while sealed is sealed too; rotation re-seals everything
    fresh.write(tmp_path / "data.key", b"k" * 32)
    plain["data.key"] = b"k" * 32
    assert (tmp_path / "data.key").read_bytes().startswith(autolock.MAGIC)
    assert fresh.reseal(other)
    with pytest.raises(Unauthorized):
        autolock.Vault(tmp_path).unlock(key)
    # off: in the clear again
    assert fresh.reseal("")
    assert {n: (tmp_path / n).read_bytes() for n in plain} == plain
    assert not autolock.Vault(tmp_path).locked


def test_sealed_files_cannot_be_swapped_or_tampered(tmp_path: Path) -> None:
    _files(tmp_path)
    vault = autolock.Vault(tmp_path)
    key = autolock.new_key()
    vault.reseal(key)
    node_key, data_key = tmp_path / autolock.SEALED_FILES[0], tmp_path / "data.key"
    data_key.write_bytes(node_key.read_bytes())  # another file's sealed content: its name is bound in
    with pytest.raises(Unauthorized):
        vault.read(data_key)
    raw = bytearray(node_key.read_bytes())
    raw[len(autolock.MAGIC) + 20] ^= 1
    node_key.write_bytes(bytes(raw))
    with pytest.raises(Unauthorized):
        vault.read(node_key)


@given(st.binary(max_size=200))
def test_unseal_hostile(data: bytes) -> None:
    kek = autolock.derive_kek(b"k" * 32)
    with pytest.raises(Unauthorized):
        autolock.unseal(kek, autolock.MAGIC + data, "data.key")


# -- a locked manager's POST /swarm/unlock ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def locked(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[asyncio.AbstractEventLoop, SwarmService, str]]:
    """A daemon's swarm side started over a manager's state with sealed files: it comes up locked (no etcd is
    needed: nothing starts)."""
    root = tmp_path_factory.mktemp("locked") / "swarm"
    root.mkdir()
    _files(root)
    key = autolock.new_key()
    autolock.Vault(root).reseal(key)
    state = {
        "node_id": "n" * 25,
        "cluster_id": "c" * 25,
        "role": "manager",
        "listen_addr": "127.0.0.1:2377",
        "advertise_addr": "127.0.0.1:2377",
    }
    (root / "state.json").write_text(json.dumps(state))
    loop = asyncio.new_event_loop()
    svc = SwarmService(str(root), dict)
    try:
        loop.run_until_complete(svc.start())
        yield loop, svc, key
    finally:
        loop.run_until_complete(svc.close())
        loop.close()


def test_locked_manager_answers_as_dockerd(
    locked: tuple[asyncio.AbstractEventLoop, SwarmService, str],
) -> None:
    _, svc, _ = locked
    assert svc.ping_state() == "locked"
    assert svc.info() == {
        "NodeID": "",
        "NodeAddr": "127.0.0.1",
        "LocalNodeState": "locked",
        "ControlAvailable": False,
        "Error": autolock.LOCKED,
        "RemoteManagers": None,
    }
    with pytest.raises(Unavailable, match="^Swarm is encrypted and needs to be unlocked"):
        svc.manager_store()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
BODIES = JSON | st.fixed_dictionaries(
    {"UnlockKey": JSON | st.text(max_size=60).map(lambda t: "SWMKEY-1-" + t)}
)


@settings(max_examples=150, deadline=None)
@given(body=BODIES)
def test_unlock_hostile_bodies(
    locked: tuple[asyncio.AbstractEventLoop, SwarmService, str], body: Any
) -> None:
    """Whatever the body, a wrong key is dockerd's 400 or 401 and the manager stays locked."""
    loop, svc, key = locked
    if isinstance(body, dict) and body.get("UnlockKey") == key:
        return
    req = Request(method="POST", path="/swarm/unlock", query={}, params={})
    req._body_cache = json.dumps(body).encode()  # noqa: SLF001 - the body as the server would have read it
    with pytest.raises(GoraeError) as e:
        loop.run_until_complete(SwarmRouter(svc).unlock(req))
    assert e.value.status in (400, 401), e.value
    if e.value.status == 401:
        assert e.value.message == "swarm could not be unlocked: invalid key provided"
    assert svc.ping_state() == "locked"
