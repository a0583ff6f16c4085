"""IPv6 networks end to end (issue 14): a user network with `--ipv6 --subnet fd..::/64` — addresses, the default
route via the bridge's gateway, ping6 and AAAA between containers, `--ip6`, connect/disconnect, addresses given
back — and the daemon's `--ipv6 --fixed-cidr-v6 --ip6tables` for the default bridge with its ip6tables rules,
all gone when the daemon is purged. The outputs dockerd shows are compared in the differential scenario
`tests/compat/differential/scenarios/ipv6.txt`; these tests check the kernel side dockerd cannot show."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest
from conftest import GoraeDaemon, new_daemon

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def _subnet() -> str:
    """A ULA /64 of its own per test run (tests of other sessions may run beside us)."""
    import ipaddress

    raw = f"fd{uuid.uuid4().hex[:2]}:{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:3]}1::/64"
    return str(ipaddress.IPv6Network(raw))  # canonical, as the daemon shows it; never ending in "::"


def _addrs6(ifname: str) -> set[str]:
    out = subprocess.run(
        ["ip", "-6", "-o", "addr", "show", "dev", ifname, "scope", "global"], capture_output=True, text=True
    ).stdout
    return {line.split()[3] for line in out.splitlines()}


def test_user_network_ipv6_end_to_end(tidy_daemon: GoraeDaemon) -> None:
    d = tidy_daemon
    subnet = _subnet()
    prefix = subnet.split("::")[0]
    name = f"v6net{uuid.uuid4().hex[:6]}"
    d.docker("network", "create", "--ipv6", "--subnet", subnet, name)
    try:
        net = json.loads(d.docker("network", "inspect", name).stdout)[0]
        assert net["EnableIPv6"] is True
        assert net["IPAM"]["Config"][1] == {"Subnet": subnet}
        from gorae.daemon.config import DaemonConfig
        from gorae.network.names import network_names

        user_prefix = network_names(DaemonConfig(exec_root=d.exec_root)).user_bridge_prefix
        bridge = user_prefix + net["Id"][: 15 - len(user_prefix)]
        assert f"{prefix}::1/64" in _addrs6(bridge)  # the gateway on the bridge

        d.docker("run", "-d", "--name", f"{name}-a", "--network", name, "busybox", "sleep", "300")
        d.docker("run", "-d", "--name", f"{name}-b", "--network", name, "--ip6", f"{prefix}::42", "busybox", "sleep", "300")
        a = json.loads(d.docker("inspect", f"{name}-a").stdout)[0]["NetworkSettings"]["Networks"][name]
        assert (a["GlobalIPv6Address"], a["GlobalIPv6PrefixLen"], a["IPv6Gateway"]) == (f"{prefix}::2", 64, f"{prefix}::1")
        route = d.docker("exec", f"{name}-a", "ip", "-6", "route", "show", "default").stdout
        assert route.startswith(f"default via {prefix}::1 dev eth0")
        # by name over IPv6 (the embedded DNS answers AAAA) and to the gateway
        r = d.docker("exec", f"{name}-a", "ping6", "-c1", "-W5", f"{name}-b", check=False)
        assert r.returncode == 0 and f"from {prefix}::42" in r.stdout, r.stdout + r.stderr
        r = d.docker("exec", f"{name}-a", "ping6", "-c1", "-W5", f"{prefix}::1", check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        hosts = d.docker("exec", f"{name}-b", "cat", "/etc/hosts").stdout
        assert f"{prefix}::42\t" in hosts

        # disconnect and connect again: the address goes and comes back (released to the pool)
        d.docker("network", "disconnect", name, f"{name}-b")
        assert d.docker("exec", f"{name}-b", "ip", "-6", "-o", "addr", "show", "scope", "global").stdout == ""
        d.docker("network", "connect", "--ip6", f"{prefix}::42", name, f"{name}-b")
        out = d.docker("exec", f"{name}-b", "ip", "-6", "-o", "addr", "show", "scope", "global").stdout
        assert f"{prefix}::42/64" in out

        # addresses are handed out after the last one given (libnetwork's order), and a removed container's
        # address is free again
        d.docker("rm", "-f", f"{name}-a")
        ip6 = ["ip", "-6", "-o", "addr", "show", "scope", "global"]
        out = d.docker("run", "--rm", "--network", name, "busybox", *ip6).stdout
        assert f"{prefix}::43/64" in out
        out = d.docker("run", "--rm", "--network", name, "--ip6", f"{prefix}::2", "busybox", *ip6).stdout
        assert f"{prefix}::2/64" in out
        d.docker("rm", "-f", f"{name}-b")
    finally:
        d.docker("rm", "-f", f"{name}-a", f"{name}-b", check=False)
        d.docker("network", "rm", name, check=False)
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert f" {bridge}:" not in links  # the bridge went with the network


def test_default_bridge_ipv6_and_ip6tables() -> None:
    subnet = _subnet()
    prefix = subnet.split("::")[0]
    d = new_daemon(["--ipv6", "--fixed-cidr-v6", subnet, "--ip6tables", "--ip-forward=false"])
    chain = None
    try:
        from gorae.daemon.config import DaemonConfig
        from gorae.network.names import network_names

        chain = network_names(DaemonConfig(exec_root=d.exec_root)).chain_prefix
        bridge = json.loads(d.docker("network", "inspect", "bridge").stdout)[0]
        assert bridge["EnableIPv6"] is True
        assert bridge["IPAM"]["Config"][1] == {"Subnet": subnet}
        d.docker("run", "-d", "--name", "b6", "busybox", "sleep", "300")
        st = json.loads(d.docker("inspect", "b6").stdout)[0]["NetworkSettings"]
        assert (st["GlobalIPv6Address"], st["GlobalIPv6PrefixLen"], st["IPv6Gateway"]) == (
            f"{prefix}::2",
            64,
            f"{prefix}::1",
        )
        nat = subprocess.run(["ip6tables", "-w", "-t", "nat", "-S"], capture_output=True, text=True).stdout
        assert f"-A {chain}-POSTROUTING -s {subnet} ! -o " in nat and "-j MASQUERADE" in nat
        flt = subprocess.run(["ip6tables", "-w", "-S"], capture_output=True, text=True).stdout
        assert f"-A FORWARD -j {chain}-FORWARD" in flt
        v4 = subprocess.run(["iptables", "-w", "-t", "nat", "-S"], capture_output=True, text=True).stdout
        assert subnet not in v4  # IPv6 subnets stay out of iptables
    finally:
        d.cleanup()
    if chain:
        for table in ("nat", "filter"):
            rules = subprocess.run(["ip6tables", "-w", "-t", table, "-S"], capture_output=True, text=True).stdout
            assert chain not in rules, rules


def test_daemon_without_ip6tables_writes_no_ip6tables_rule() -> None:
    """dockerd 20.10's default: IPv6 addresses, but no ip6tables rules (and no chains of ours)."""
    subnet = _subnet()
    d = new_daemon(["--ipv6", "--fixed-cidr-v6", subnet, "--ip-forward=false"])
    try:
        from gorae.daemon.config import DaemonConfig
        from gorae.network.names import network_names

        chain = network_names(DaemonConfig(exec_root=d.exec_root)).chain_prefix
        out = d.docker("run", "--rm", "busybox", "ip", "-6", "-o", "addr", "show", "scope", "global").stdout
        assert subnet.replace("::/64", "::2/64") in out
        for t in ("nat", "filter"):
            now = subprocess.run(["ip6tables", "-w", "-t", t, "-S"], capture_output=True, text=True).stdout
            assert subnet not in now and chain not in now, now
    finally:
        d.cleanup()
