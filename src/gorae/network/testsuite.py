"""Conformance cases every `NetworkDriver` must pass (containerd's testsuite idea, as in
`gorae.snapshot.testsuite`).

Each case takes a factory (() -> NetworkDriver) and a `Harness` (a free subnet, and a directory for
namespaces when the driver plugs interfaces into them); it raises AssertionError on failure and removes what
it made even then. `CASES` maps case names to functions so a test file can parametrize over them for any
driver; the test file checks that nothing is left in the kernel afterwards.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from gorae.network import model
from gorae.network.kernel import netns
from gorae.network.types import (
    DriverCapabilities,
    EndpointDoc,
    NetworkDoc,
    NetworkDriver,
    NetworkSpec,
    PortTarget,
    SandboxInfo,
)

Factory = Callable[[], NetworkDriver]


@dataclass(frozen=True)
class Harness:
    subnet: str  # free for the test's networks ("10.213.7.0/24")
    netns_dir: str  # where sandboxes' namespaces are made (needs root for drivers that plug interfaces)
    make_namespaces: bool = True  # False: drivers that never enter a namespace get a path that does not exist


Case = Callable[[Factory, Harness], None]


def network_for(driver: NetworkDriver, h: Harness) -> NetworkDoc:
    """A network record of the driver, as the controller makes one (user network or the predefined one)."""
    subnet = ipaddress.IPv4Network(h.subnet)
    nid = secrets.token_hex(32)
    if driver.capabilities.user_networks:
        interface = driver.network_interface(nid, {}, [])
        return model.network_doc(
            name=f"conf-{nid[:8]}",
            id=nid,
            driver=driver.type,
            subnet=str(subnet),
            gateway=str(next(subnet.hosts())),
            ip_range=None,
            internal=False,
            attachable=False,
            labels={},
            options={},
            bridge=interface,
            ipam_options={},
        )
    spec = driver.predefined_network(lambda: subnet)
    return model.predefined_network_doc(str(driver.predefined_name), driver.type, nid, spec)


def endpoint_for(driver: NetworkDriver, net: NetworkDoc, host: int = 2) -> EndpointDoc:
    ip, prefixlen, gateway = "", 0, ""
    if driver.capabilities.addresses:
        subnet = ipaddress.IPv4Network(net["IPAM"]["Config"][0]["Subnet"])
        ip, prefixlen, gateway = str(subnet.network_address + host), subnet.prefixlen, str(next(subnet.hosts()))
    return {
        "id": secrets.token_hex(32),
        "container_id": secrets.token_hex(32),
        "container_name": "conformance",
        "network_id": net["Id"],
        "ip": ip,
        "prefixlen": prefixlen,
        "mac": "",
        "gateway": gateway,
        "aliases": [],
        "dns_names": [],
        "ifname": "eth0",
        "veth": "",
        "ipam_config": None,
    }


@contextlib.contextmanager
def created(driver: NetworkDriver, h: Harness) -> Iterator[NetworkDoc]:
    net = network_for(driver, h)
    driver.create_network(net)
    try:
        yield net
    finally:
        driver.delete_network(net)
        driver.purge([net])


@contextlib.contextmanager
def sandbox(driver: NetworkDriver, h: Harness) -> Iterator[SandboxInfo]:
    path = os.path.join(h.netns_dir, secrets.token_hex(8))
    if not h.make_namespaces or driver.capabilities.host_namespace:
        yield SandboxInfo("conformance", path)
        return
    netns.create(path)
    try:
        yield SandboxInfo("conformance", path)
    finally:
        netns.delete(path)


def case_identity(factory: Factory, h: Harness) -> None:
    d = factory()
    assert isinstance(d.type, str) and d.type, "a driver has a type name"
    assert isinstance(d.capabilities, DriverCapabilities)
    assert d.capabilities.user_networks or d.predefined_name, "a driver without user networks has a predefined one"
    if d.predefined_name:
        spec = d.predefined_network(lambda: ipaddress.IPv4Network(h.subnet))
        assert isinstance(spec, NetworkSpec)


def case_network_lifecycle_is_idempotent(factory: Factory, h: Harness) -> None:
    d = factory()
    with created(d, h) as net:
        d.restore([net])  # a daemon start finds it there already
        d.restore([net])
        d.sync([net], [])
        d.sync([net], [])
    d.delete_network(net)  # deleting a deleted network is fine


def case_endpoint_join_leave(factory: Factory, h: Harness) -> None:
    d = factory()
    with created(d, h) as net, sandbox(d, h) as sb:
        ep = endpoint_for(d, net)
        before = {k: ep[k] for k in ("id", "network_id", "ip", "ifname")}
        d.create_endpoint(net, ep)
        assert {k: ep[k] for k in before} == before, "create_endpoint only fills in driver fields"
        try:
            d.join(net, ep, sb, default_route=True)
            d.leave(net, ep, sb)
        finally:
            d.delete_endpoint(net, ep)
        d.delete_endpoint(net, ep)  # idempotent


def case_two_endpoints_on_one_network(factory: Factory, h: Harness) -> None:
    d = factory()
    if d.capabilities.exclusive:
        return  # one endpoint per container by definition; nothing more to check
    with created(d, h) as net, sandbox(d, h) as a, sandbox(d, h) as b:
        e1, e2 = endpoint_for(d, net, 2), endpoint_for(d, net, 3)
        for ep, sb in ((e1, a), (e2, b)):
            d.create_endpoint(net, ep)
            d.join(net, ep, sb, default_route=True)
        assert e1.get("veth") != e2.get("veth") or not e1.get("veth"), "endpoints get distinct interfaces"
        for ep in (e1, e2):
            d.delete_endpoint(net, ep)


def case_port_target(factory: Factory, h: Harness) -> None:
    d = factory()
    net = network_for(d, h)
    target = d.port_target(net)
    assert target is None or (isinstance(target, PortTarget) and isinstance(target.interface, str))


CASES: dict[str, Case] = {
    name.removeprefix("case_"): fn for name, fn in dict(globals()).items() if name.startswith("case_")
}
