"""A UDP published port end to end with the real docker CLI against a gorae daemon: a container published
with `-p <free>:5353/udp` gets a datagram sent from the host to 127.0.0.1:<free> (seen in `docker logs`),
and `docker port` / inspect show `5353/udp`.

The busybox here has no UDP server (its `nc` lacks `-u`, `udhcpd` lacks `-P`), so the container watches its own
network namespace's UDP counters (/proc/net/snmp `InDatagrams + NoPorts`) and prints them when they change;
nothing else sends UDP to it. With nobody bound to 5353 the container's kernel answers ICMP port unreachable,
which conntrack maps back to the host's sender: a connected socket then gets ECONNREFUSED (the counter, not
this, is what shows the datagram arrived: without DNAT the host itself would refuse).
"""

from __future__ import annotations

import json
import os
import socket
import time

import pytest
from conftest import GoraeDaemon, inspect

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


WATCH_UDP = (
    "last=; while :; do n=$(awk '/^Udp: [0-9]/ {print $2 + $3}' /proc/net/snmp); "
    '[ "$n" != "$last" ] && echo "udp-in $n" && last=$n; sleep 0.05; done'
)


def udp_in(logs: str) -> int:
    counts = [int(line.split()[1]) for line in logs.splitlines() if line.startswith("udp-in ")]
    return counts[-1] if counts else -1


def free_udp_port() -> int:
    """A port free for both UDP and TCP on all addresses."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("0.0.0.0", 0))
            port = int(u.getsockname()[1])
            try:
                with socket.socket() as t:
                    t.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port


def test_udp_published_port_reaches_container(gorae_daemon: GoraeDaemon) -> None:
    d = gorae_daemon
    port = free_udp_port()
    cid = d.docker("run", "-d", "-p", f"{port}:5353/udp", "busybox", "sh", "-c", WATCH_UDP).stdout.strip()
    try:
        ports = inspect(d, cid)["NetworkSettings"]["Ports"]
        assert "5353/udp" in ports and "5353/tcp" not in ports, ports
        assert ports["5353/udp"][0] == {"HostIp": "0.0.0.0", "HostPort": str(port)}, ports
        binding = json.loads(d.docker("inspect", "-f", "{{json .HostConfig.PortBindings}}", cid).stdout)
        assert binding == {"5353/udp": [{"HostIp": "", "HostPort": str(port)}]}, binding

        listing = d.docker("port", cid).stdout
        assert f"5353/udp -> 0.0.0.0:{port}" in listing, listing
        assert d.docker("port", cid, "5353/udp").stdout.splitlines()[0] == f"0.0.0.0:{port}"

        deadline = time.monotonic() + 15
        while udp_in(d.docker("logs", cid).stdout) < 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert udp_in(d.docker("logs", cid).stdout) == 0, d.docker("logs", cid).stdout

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.connect(("127.0.0.1", port))
            s.send(b"hello-udp\n")
            logs = ""
            while time.monotonic() < deadline:
                logs = d.docker("logs", cid).stdout
                if udp_in(logs) >= 1:
                    break
                time.sleep(0.05)
            assert udp_in(logs) >= 1, (
                f"datagram never reached the container; logs: {logs!r}\n{d.log()[-2000:]}"
            )
            # the container's ICMP port unreachable comes back through the NAT to this socket
            with pytest.raises(ConnectionRefusedError):
                s.send(b"again\n")
                s.recv(100)
    finally:
        d.docker("rm", "-f", cid, check=False)
