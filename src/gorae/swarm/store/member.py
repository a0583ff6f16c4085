"""The etcd member a manager daemon runs: its data dir, its URLs, its life tied to the daemon's.

One `etcd` process per manager (k3s's embedded-etcd pattern, with Debian's `etcd-server` binary): data under
`<data root>/swarm/etcd`, the client URL on the loopback, the peer URL on the advertise address. The process
gets PR_SET_PDEATHSIG=SIGKILL so it dies with the daemon even on `kill -9` (no orphan etcd ever), and `stop()`
ends it with SIGTERM, then SIGKILL. With a `tls_dir` (a manager's: its etcd certificate from the swarm CA) the
client and peer URLs are https with client certificates required on both (`--client-cert-auth`,
`--peer-client-cert-auth`).
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import shutil
import signal
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from gorae.errors import SystemError_, Unavailable

ETCD_BIN = "etcd"
INSTALL_HINT = (
    "swarm mode needs etcd (the cluster store): install it with `apt-get install etcd-server` "
    "(Debian/Ubuntu), then retry"
)
_PR_SET_PDEATHSIG = 1
MAX_TXN_OPS = 10_000  # operations (and compares) in one store transaction
MAX_REQUEST_BYTES = 16 << 20  # bytes of one request (a transaction of that many task documents)


def etcd_binary() -> str:
    """The etcd executable, or Unavailable saying what to install."""
    path = shutil.which(ETCD_BIN)
    if path is None:
        raise Unavailable(INSTALL_HINT)
    return path


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class MemberConfig:
    """What a member needs to start again the same way after a daemon restart (kept in member.json)."""

    name: str
    advertise_addr: str
    client_port: int
    peer_port: int
    tls_dir: str = ""  # ca.crt, etcd.crt, etcd.key: client and peer mutual TLS; "" = plain (tests only)
    initial_cluster: str = ""  # a joining member's "name=peer URL,...": the members when it was added
    cluster_state: str = "new"  # "existing" for a member added to a running cluster (`member add`)

    @property
    def scheme(self) -> str:
        return "https" if self.tls_dir else "http"

    @property
    def client_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        host = f"[{self.advertise_addr}]" if ":" in self.advertise_addr else self.advertise_addr
        return f"{self.scheme}://{host}:{self.peer_port}"

    def tls_args(self, key_file: str = "") -> list[str]:
        """etcd's TLS flags; `key_file` replaces `<tls_dir>/etcd.key` (the daemon's clear copy of a key that is
        sealed at rest: etcd reads its key file again on each handshake)."""
        if not self.tls_dir:
            return []
        ca, cert, key = (os.path.join(self.tls_dir, n) for n in ("ca.crt", "etcd.crt", "etcd.key"))
        key = key_file or key
        return [
            "--cert-file", cert, "--key-file", key, "--trusted-ca-file", ca, "--client-cert-auth",
            "--peer-cert-file", cert, "--peer-key-file", key, "--peer-trusted-ca-file", ca,
            "--peer-client-cert-auth",
        ]  # fmt: skip


class EtcdMember:
    """One supervised etcd process over `root` (the daemon's `<data root>/swarm/etcd`)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.proc: asyncio.subprocess.Process | None = None
        self.config: MemberConfig | None = None

    @property
    def _config_file(self) -> Path:
        return self.root / "member.json"

    def configure(
        self,
        name: str,
        advertise_addr: str,
        tls_dir: str = "",
        *,
        peer_port: int = 0,
        initial_cluster: str = "",
    ) -> MemberConfig:
        """A member's ports (free ones now unless given) written beside its data; with `initial_cluster`
        the member joins a running cluster that has already added it (`member add`)."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        cfg = MemberConfig(
            name,
            advertise_addr,
            free_port("127.0.0.1"),
            peer_port or free_port(advertise_addr),
            tls_dir,
            initial_cluster,
            "existing" if initial_cluster else "new",
        )
        self._config_file.write_text(json.dumps(asdict(cfg)))
        return cfg

    def configured(self) -> MemberConfig | None:
        try:
            return MemberConfig(**json.loads(self._config_file.read_text()))
        except FileNotFoundError:
            return None

    async def start(
        self, cfg: MemberConfig, timeout: float = 30.0, key_file: str = "", force_new_cluster: bool = False
    ) -> None:
        """Start etcd and wait until its client port answers; its log goes to `etcd.log` (`key_file`: see
        `MemberConfig.tls_args`). With `force_new_cluster` (`swarm init --force-new-cluster`), etcd rewrites
        the membership in its data to this member alone, keeping the data: a cluster that lost its quorum
        goes on from this manager's copy."""
        binary = etcd_binary()
        self.config = cfg
        data = self.root / "data"
        log = open(self.root / "etcd.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            self.proc = await asyncio.create_subprocess_exec(
                binary,
                "--name", cfg.name,
                "--data-dir", str(data),
                "--listen-client-urls", cfg.client_url,
                "--advertise-client-urls", cfg.client_url,
                "--listen-peer-urls", cfg.peer_url,
                "--initial-advertise-peer-urls", cfg.peer_url,
                "--initial-cluster", cfg.initial_cluster or f"{cfg.name}={cfg.peer_url}",
                "--initial-cluster-state", cfg.cluster_state,
                "--logger", "zap",
                # a new manager's member is added as a learner (no quorum change), possibly through a member
                # that has itself only just joined: etcd's 5 s "connected to all peers" wait is not needed
                "--strict-reconfig-check=false",
                # one store transaction holds a whole reconcile pass (a service's 165 new tasks, a node's
                # batch of status reports with a compare per task): etcd's defaults (128 operations,
                # 1.5 MiB) refused `service create --replicas 165` for ever
                "--max-txn-ops", str(MAX_TXN_OPS),
                "--max-request-bytes", str(MAX_REQUEST_BYTES),
                *cfg.tls_args(key_file),
                *(["--force-new-cluster"] if force_new_cluster else []),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                preexec_fn=_die_with_parent,
                start_new_session=True,
            )  # fmt: skip
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.returncode is not None:
                raise SystemError_(f"etcd exited with status {self.proc.returncode}: {self._log_tail()}")
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", cfg.client_port), timeout=1
                )
                writer.close()
                return
            except (OSError, TimeoutError):
                if time.monotonic() > deadline:
                    await self.stop()
                    raise SystemError_(
                        f"etcd did not come up in {timeout:.0f}s: {self._log_tail()}"
                    ) from None
                try:
                    await asyncio.wait_for(self.proc.wait(), timeout=0.1)
                except TimeoutError:
                    pass

    def _log_tail(self) -> str:
        try:
            return (self.root / "etcd.log").read_text(errors="replace")[-2000:].strip()
        except OSError:
            return ""

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.returncode is None else None

    async def stop(self, grace: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout=grace)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    async def destroy(self) -> None:
        """Stop and remove the member's data (swarm leave)."""
        await self.stop()
        await asyncio.to_thread(shutil.rmtree, self.root, True)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
