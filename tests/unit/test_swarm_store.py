"""The ClusterStore conformance suite against etcd (a real `etcd` member supervised by `EtcdMember`) and
the in-memory store; the member's life: it answers, stops cleanly, and dies with its daemon (no orphan)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import skip_outside_ci, wait_for

from gorae.errors import Unavailable
from gorae.swarm.ca.authority import MANAGER_ROLE, RootCA, key_pem, new_key
from gorae.swarm.store.etcd import EtcdStore
from gorae.swarm.store.member import INSTALL_HINT, EtcdMember, etcd_binary, process_alive
from gorae.swarm.store.memory import MemoryStore
from gorae.swarm.store.testsuite import CASES
from gorae.swarm.store.types import ReadTx, Task, WriteTx

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    lp = asyncio.new_event_loop()
    try:
        yield lp
    finally:
        lp.close()


@pytest.fixture(scope="module")
def etcd(
    loop: asyncio.AbstractEventLoop, tmp_path_factory: pytest.TempPathFactory, need_etcd: None
) -> Iterator[EtcdMember]:
    member = EtcdMember(tmp_path_factory.mktemp("etcd") / "member")
    cfg = member.configure("test", "127.0.0.1")
    loop.run_until_complete(member.start(cfg))
    try:
        yield member
    finally:
        loop.run_until_complete(member.destroy())


@pytest.fixture(scope="module")
def need_etcd() -> None:
    try:
        etcd_binary()
    except Unavailable:
        skip_outside_ci("etcd is not installed (apt-get install etcd-server)")


@pytest.mark.parametrize("case", list(CASES))
def test_etcd_conformance(case: str, etcd: EtcdMember, loop: asyncio.AbstractEventLoop) -> None:
    assert etcd.config is not None
    root = f"/t/{uuid.uuid4().hex}/".encode()
    store = EtcdStore("127.0.0.1", etcd.config.client_port, root=root)
    try:
        loop.run_until_complete(CASES[case](store))
    finally:
        loop.run_until_complete(store.close())


def test_a_transaction_as_large_as_a_big_service(etcd: EtcdMember, loop: asyncio.AbstractEventLoop) -> None:
    """A reconcile pass is one transaction: `service create --replicas 1000` creates 1000 tasks at once, a
    node's batch of 500 status reports compares 500 keys. etcd's defaults (128 operations, 1.5 MiB) refused
    them for ever ("etcdserver: too many operations in txn request"); the member is started with room."""
    assert etcd.config is not None
    store = EtcdStore("127.0.0.1", etcd.config.client_port, root=f"/t/{uuid.uuid4().hex}/".encode())
    spec = {"ContainerSpec": {"Image": "busybox", "Args": ["sleep", "1d"], "Env": ["X=" + "x" * 1500]}}

    async def create(tx: WriteTx) -> None:
        for i in range(1000):
            await tx.create(Task(f"t{i:04}", {"ID": f"t{i:04}", "Spec": spec, "Status": {"State": "new"}}))

    async def report(tx: WriteTx) -> None:
        for i in range(500):
            task = await tx.get(Task, f"t{i:04}")
            assert task is not None
            await tx.update(task.with_doc({**task.doc, "Status": {"State": "running"}}))

    async def states(tx: ReadTx) -> list[str]:
        return [t.doc["Status"]["State"] for t in await tx.find(Task)]

    async def run() -> list[str]:
        await store.update(create)
        await store.update(report)
        return await store.view(states)

    try:
        assert loop.run_until_complete(run()) == ["running"] * 500 + ["new"] * 500
    finally:
        loop.run_until_complete(store.close())


@pytest.mark.parametrize("case", list(CASES))
def test_memory_conformance(case: str) -> None:
    async def run() -> None:
        await CASES[case](MemoryStore())

    asyncio.run(run())


def test_member_stop_leaves_no_process(tmp_path: Path, need_etcd: None) -> None:
    member = EtcdMember(tmp_path / "m")

    async def run() -> int:
        await member.start(member.configure("one", "127.0.0.1"))
        pid = member.pid
        assert pid is not None and process_alive(pid)
        await member.destroy()
        return pid

    pid = asyncio.run(run())
    assert not process_alive(pid)
    assert not (tmp_path / "m").exists()


def test_member_dies_with_its_daemon(tmp_path: Path, need_etcd: None) -> None:
    """kill -9 of the process that supervises etcd takes etcd with it (PR_SET_PDEATHSIG)."""
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from pathlib import Path
        from gorae.swarm.store.member import EtcdMember
        async def main():
            m = EtcdMember(Path({str(tmp_path / "m")!r}))
            await m.start(m.configure("one", "127.0.0.1"))
            print(m.pid, flush=True)
            await asyncio.Event().wait()
        asyncio.run(main())
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": SRC}
    )
    etcd_pid = 0
    try:
        assert proc.stdout is not None
        etcd_pid = int(proc.stdout.readline())
        assert process_alive(etcd_pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # the kernel sends SIGKILL at the parent's death; init reaps it
        wait_for(lambda: not process_alive(etcd_pid) or _is_zombie(etcd_pid), timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if etcd_pid and process_alive(etcd_pid) and not _is_zombie(etcd_pid):
            os.kill(etcd_pid, signal.SIGKILL)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (OSError, IndexError):
        return False


def test_missing_etcd_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(Unavailable) as exc:
        etcd_binary()
    assert str(exc.value) == INSTALL_HINT
    assert "apt-get install etcd-server" in INSTALL_HINT


def _tls_files(root: Path, ca: RootCA) -> tuple[bytes, bytes, bytes]:
    root.mkdir(parents=True)
    key = new_key()
    cert = ca.issue(key.public_key(), "m1", MANAGER_ROLE, "c1", ("127.0.0.1",))
    (root / "ca.crt").write_bytes(ca.cert_pem)
    (root / "etcd.crt").write_bytes(cert)
    (root / "etcd.key").write_bytes(key_pem(key))
    return ca.cert_pem, cert, key_pem(key)


def test_member_with_mutual_tls(tmp_path: Path, need_etcd: None) -> None:
    """A manager's member: https on both URLs, client certificates required; the store works with the
    swarm CA's certificate, and a client without one, or with another CA's, is refused."""
    ca = RootCA.create()
    tls = _tls_files(tmp_path / "tls", ca)
    member = EtcdMember(tmp_path / "m")

    async def run() -> None:
        cfg = member.configure("m1", "127.0.0.1", str(tmp_path / "tls"))
        assert cfg.client_url.startswith("https://") and cfg.peer_url.startswith("https://")
        await member.start(cfg)
        try:
            good = EtcdStore("127.0.0.1", cfg.client_port, tls=tls, root=b"/tls/")
            try:
                await CASES["update_is_version_checked"](good)
            finally:
                await good.close()
            plain = EtcdStore("127.0.0.1", cfg.client_port, timeout=3, root=b"/tls/")
            with pytest.raises(Unavailable):
                await plain.revision()
            await plain.close()
            other = RootCA.create()
            okey = new_key()
            forged = (ca.cert_pem, other.issue(okey.public_key(), "m1", MANAGER_ROLE, "c1"), key_pem(okey))
            intruder = EtcdStore("127.0.0.1", cfg.client_port, timeout=3, tls=forged, root=b"/tls/")
            with pytest.raises(Unavailable):
                await intruder.revision()
            await intruder.close()
        finally:
            await member.destroy()

    asyncio.run(run())
