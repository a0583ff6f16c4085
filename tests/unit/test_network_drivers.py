"""Every built-in network driver against the shared driver conformance suite (gorae.network.testsuite).

host and null need nothing of the kernel; bridge runs as root with its own bridge/veth names, chain prefix
and subnet, and each case asserts that no link, rule or namespace of it is left behind.
"""

from __future__ import annotations

import os
import random
import secrets
import tempfile
from collections.abc import Iterator

import pytest

from gorae.network.drivers.bridge import BridgeDriver
from gorae.network.drivers.host import HostDriver
from gorae.network.drivers.null import NullDriver
from gorae.network.kernel import netlink, netns
from gorae.network.names import NetworkNames
from gorae.network.portmap import iptables
from gorae.network.testsuite import CASES, Harness
from gorae.network.types import NetworkOptions


@pytest.fixture
def tmp() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="gdrv") as d:
        yield d


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("driver", [HostDriver, NullDriver], ids=["host", "null"])
def test_interfaceless_driver_conformance(case: str, driver: type, tmp: str) -> None:
    CASES[case](driver, Harness("10.213.7.0/24", os.path.join(tmp, "netns"), make_namespaces=False))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for bridges, veths and namespaces")
@pytest.mark.parametrize("case", sorted(CASES))
def test_bridge_driver_conformance(case: str, tmp: str) -> None:
    rand = secrets.token_hex(3)
    names = NetworkNames(f"gc{rand}", f"gc{rand}-", f"gd{rand[:4]}", f"GORAE-{rand.upper()}")
    options = NetworkOptions(iptables=True, ip_forward=False)
    nsdir = os.path.join(tmp, "netns")
    subnet = f"10.{random.randint(213, 250)}.{random.randint(128, 255)}.0/24"
    try:
        CASES[case](lambda: BridgeDriver(names, options), Harness(subnet, nsdir))
    finally:
        iptables.purge(iptables.Chains(names.chain_prefix))
        netns.release_dir(nsdir)
    left = [n for n in netlink.list_links() if n.startswith((f"gc{rand}", f"gd{rand[:4]}"))]
    left += [ln for t in ("nat", "filter") for ln in iptables.dump(t).splitlines() if names.chain_prefix in ln]
    left += os.listdir(nsdir) if os.path.isdir(nsdir) else []
    assert left == [], left
