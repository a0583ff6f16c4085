"""A network's bridge never takes over an interface that is not its own (security review F4): non-bridges
(a veth, lo, the host's uplink) are refused and left untouched, a bridge another gorae daemon holds is
refused, a bridge made by someone else is used and left in place by `network rm`, and bad names are refused."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest
from conftest import GoraeDaemon

from gorae.daemon.config import DaemonConfig
from gorae.network.names import network_names

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def _ip(*args: str) -> str:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=True).stdout


def _state(name: str) -> tuple[str, str]:
    """Addresses and route_localnet of an interface: what a takeover changed."""
    with open(f"/proc/sys/net/ipv4/conf/{name}/route_localnet", encoding="ascii") as f:
        return _ip("-o", "addr", "show", "dev", name), f.read()


def _uplink() -> str:
    route = _ip("-o", "route", "show", "default").split()
    return route[route.index("dev") + 1] if "dev" in route else "lo"


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex[:6]


def test_non_bridges_are_refused_and_untouched(gorae_daemon: GoraeDaemon, tag: str) -> None:
    d = gorae_daemon
    veth = f"tk{tag}a"
    subprocess.run(["ip", "link", "add", veth, "type", "veth", "peer", "name", f"tk{tag}b"], check=True)
    try:
        for iface in (veth, "lo", _uplink()):
            before = _state(iface)
            res = d.docker("network", "create", "-o", f"com.docker.network.bridge.name={iface}", f"n{tag}", check=False)
            assert res.returncode == 1, res
            assert f"existing interface {iface} is not a bridge" in res.stderr
            assert _state(iface) == before
            assert _ip("-o", "link", "show", iface)
        assert f"n{tag}" not in d.docker("network", "ls", "--format", "{{.Name}}").stdout.split()
    finally:
        subprocess.run(["ip", "link", "del", veth], capture_output=True)


def test_someone_elses_bridge_is_used_and_kept(gorae_daemon: GoraeDaemon, tag: str) -> None:
    d = gorae_daemon
    br = f"tk{tag}br"
    subprocess.run(["ip", "link", "add", br, "type", "bridge"], check=True)
    try:
        d.docker("network", "create", "-o", f"com.docker.network.bridge.name={br}", f"n{tag}")
        d.docker("run", "--rm", "--network", f"n{tag}", "busybox", "true")
        d.docker("network", "rm", f"n{tag}")
        assert _ip("-o", "link", "show", br), "network rm deleted a bridge it did not make"
    finally:
        subprocess.run(["ip", "link", "del", br], capture_output=True)


def test_another_daemons_bridge_is_refused(gorae_daemon: GoraeDaemon, fresh_daemon: GoraeDaemon, tag: str) -> None:
    theirs = network_names(DaemonConfig(exec_root=fresh_daemon.exec_root)).bridge
    before = _state(theirs)
    res = gorae_daemon.docker(
        "network", "create", "-o", f"com.docker.network.bridge.name={theirs}", f"n{tag}", check=False
    )
    assert res.returncode == 1 and f"bridge {theirs} is in use by another gorae daemon" in res.stderr, res
    assert _state(theirs) == before
    fresh_daemon.docker("run", "--rm", "busybox", "true")


@pytest.mark.parametrize("name", ["../../x", "a b", "a:b", "..", "x" * 16])
def test_bad_bridge_names_are_refused(gorae_daemon: GoraeDaemon, tag: str, name: str) -> None:
    res = gorae_daemon.docker(
        "network", "create", "-o", f"com.docker.network.bridge.name={name}", f"n{tag}", check=False
    )
    assert res.returncode == 1 and "bridge name" in res.stderr, res
    assert f"n{tag}" not in gorae_daemon.docker("network", "ls", "--format", "{{.Name}}").stdout.split()
