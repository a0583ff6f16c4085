"""A multi-node swarm harness: N gorae daemons (N ≥ 1, 3–5 for most tests), each in its own network namespace
with its own address on a shared bridge (like hosts on a LAN), its own data root, exec root, socket, bridge and
chain names. Everything is removed afterwards — daemons, etcd members, data dirs, veths, namespaces, the
bridge — also when the test fails; the context manager asserts that nothing is left.

Usage (tests import it as `swarm_cluster`, beside conftest):

    with lan(5) as hosts:                       # hosts[i].addr, .ns, .daemon (conftest.GoraeDaemon)
        manager_id, tokens = init(hosts[0])     # swarm init --advertise-addr, 1 s heartbeats
        join(hosts[1], hosts[0], tokens["manager"])
        join(hosts[3], hosts[0], tokens["worker"])
        hosts[0].docker("node", "ls")           # the docker CLI against that daemon
        leader_of(hosts[1])                     # the leader's node ID as a manager sees it

`Host.kill9()` kills a daemon (its etcd goes with it), `Host.start()` starts it again on the same roots.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conftest import GoraeDaemon, new_daemon, skip_outside_ci
from swarm_peer import free_port

SWARM_PORT = 2377


def etcd_pids(data_root: str) -> list[int]:
    """Live etcd processes whose command line names `data_root` (zombies are gone already)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"etcd") and any(data_root.encode() in a for a in cmd):
            if stat.split(") ", 1)[1][0] != "Z":
                pids.append(int(entry))
    return pids


@contextmanager
def single_manager() -> Iterator[GoraeDaemon]:
    """A daemon of its own (with busybox) initialised as a single-node swarm on a free loopback port; it
    leaves the swarm and no etcd member outlives it, even when the test fails."""
    d = new_daemon()
    try:
        port = free_port()
        d.docker(
            "swarm", "init", "--advertise-addr", f"127.0.0.1:{port}", "--listen-addr", f"127.0.0.1:{port}"
        )
        yield d
    finally:
        leave_and_clean(d)



def leave_and_clean(d: GoraeDaemon) -> None:
    """A single-manager daemon's teardown: leave the swarm, stop and remove the daemon, kill its etcd if left."""
    try:
        try:
            d.docker("swarm", "leave", "--force", check=False, timeout=30)
        finally:
            d.cleanup()
    finally:
        for pid in etcd_pids(d.data_root):
            os.kill(pid, signal.SIGKILL)

@dataclass
class Host:
    """One node: its network namespace, its address on the LAN, its daemon."""

    ns: str
    addr: str
    daemon: GoraeDaemon

    def docker(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self.daemon.docker(*args, check=check, timeout=timeout)

    def client(self) -> Any:
        return self.daemon.client()

    def swarm_info(self) -> dict[str, Any]:
        return json.loads(self.docker("info", "--format", "{{json .Swarm}}").stdout)  # type: ignore[no-any-return]

    @property
    def node_id(self) -> str:
        return str(self.swarm_info()["NodeID"])

    def kill9(self) -> None:
        self.daemon.kill9()

    def start(self) -> None:
        self.daemon.start()


def _ip(*args: str) -> None:
    r = subprocess.run(["ip", *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {r.stderr}")


def _new_daemon(ns: str, containers: bool = False, extra_args: list[str] | None = None) -> GoraeDaemon:
    tag = uuid.uuid4().hex[:8]
    return GoraeDaemon(
        extra_args=list(extra_args or []),
        data_root=tempfile.mkdtemp(prefix=f"gorae-test-{tag}-"),
        exec_root=f"/run/gorae-t-{tag}",
        socket=f"/run/gorae-t-{tag}.sock",
        log_path=os.path.join(tempfile.gettempdir(), f"gorae-test-{tag}.log"),
        # only the network namespace: `ip netns exec` would also remount /sys for the namespace, hiding the
        # cgroup mounts runc needs, so no container (no swarm task) could run on such a host
        command_prefix=["nsenter", f"--net=/run/netns/{ns}"],
    )


@contextmanager
def lan(n: int, *, containers: bool = False, extra_args: list[str] | None = None) -> Iterator[list[Host]]:
    """`n` hosts on a fresh bridge (10.252.x.0/24), each daemon started (with `extra_args`); all removed
    afterwards. With `containers`, the daemons can run containers (see _new_daemon)."""
    if not any(os.path.exists(p) for p in ("/sbin/ip", "/usr/sbin/ip", "/bin/ip", "/usr/bin/ip")):
        skip_outside_ci("iproute2 is not installed")
    tag = uuid.uuid4().hex[:6]
    bridge = f"swb{tag}"
    net = f"10.252.{random.randint(1, 254)}"
    names = [(f"swn{tag}{i}", f"{net}.{i + 1}") for i in range(n)]
    hosts: list[Host] = []
    made: list[str] = []
    errors: list[BaseException] = []
    try:
        _ip("link", "add", bridge, "type", "bridge")
        made.append(bridge)
        _ip("link", "set", bridge, "up")
        for i, (ns, addr) in enumerate(names):
            _ip("netns", "add", ns)
            made.append(ns)
            _ip("link", "add", f"swv{tag}{i}", "type", "veth", "peer", "name", f"swe{tag}{i}")
            _ip("link", "set", f"swe{tag}{i}", "netns", ns)
            _ip("-n", ns, "link", "set", f"swe{tag}{i}", "name", "eth0")
            _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("link", "set", f"swv{tag}{i}", "master", bridge, "up")
        for ns, addr in names:
            host = Host(ns, addr, _new_daemon(ns, containers, extra_args))
            hosts.append(host)
            host.daemon.start()
        try:
            yield hosts
        except BaseException:
            for host in hosts:  # shown with the failure (the logs go with the cleanup)
                etcd_log = Path(host.daemon.data_root, "swarm", "etcd", "etcd.log")
                tail = etcd_log.read_text(errors="replace")[-3000:] if etcd_log.exists() else ""
                print(f"==== {host.ns} {host.addr} daemon log\n{host.daemon.log()}\n==== etcd log\n{tail}")
            raise
    finally:
        for host in hosts:
            try:
                host.daemon.cleanup()
            except BaseException as e:  # noqa: BLE001 - every host is cleaned; the first error is raised
                errors.append(e)
            finally:
                for pid in etcd_pids(host.daemon.data_root):
                    os.kill(pid, signal.SIGKILL)
        for i, (ns, _) in enumerate(names):
            # the host end first: a deleted namespace's links go only when the kernel frees it (later)
            subprocess.run(["ip", "link", "del", f"swv{tag}{i}"], capture_output=True)
            if ns in made:
                subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        if bridge in made:
            subprocess.run(["ip", "link", "del", bridge], capture_output=True)
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        netns = subprocess.run(["ip", "netns"], capture_output=True, text=True).stdout
        assert tag not in links and tag not in netns, "the swarm LAN left links or namespaces behind"
        assert all(etcd_pids(h.daemon.data_root) == [] for h in hosts), "an etcd member was left running"
        assert not any(os.path.exists(h.daemon.data_root) for h in hosts), "a data root was left behind"
        if errors:
            raise errors[0]


def init(host: Host, *args: str) -> tuple[str, dict[str, str]]:
    """`swarm init` on `host` (its LAN address, 1 s heartbeats); answers (node ID, {"worker", "manager"}
    tokens)."""
    host.docker("swarm", "init", "--advertise-addr", host.addr, "--dispatcher-heartbeat", "1s", *args)
    tokens = {
        role: host.docker("swarm", "join-token", "-q", role).stdout.strip() for role in ("worker", "manager")
    }
    return host.node_id, tokens


def join(host: Host, manager: Host, token: str) -> str:
    """`swarm join` of `host` to `manager`; answers the new node's ID."""
    host.docker("swarm", "join", "--token", token, f"{manager.addr}:{SWARM_PORT}", timeout=120)
    return host.node_id


def leader_of(host: Host) -> str:
    """The leader's node ID as manager `host` sees it ("" when it sees none or cannot answer)."""
    r = host.docker("node", "ls", "--format", "{{.ID}} {{.ManagerStatus}}", check=False, timeout=20)
    if r.returncode != 0:
        return ""
    leaders = [line.split()[0] for line in r.stdout.splitlines() if line.endswith(" Leader")]
    return leaders[0] if len(leaders) == 1 else ""
