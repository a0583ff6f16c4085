"""The network controller's driver seam with fake drivers (no root, no kernel state): it picks each network's
driver by type from its registry, creates every driver's predefined network once, hands networks to their
own driver only, and keeps no record of a network its driver failed to create."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest

from gorae.errors import Conflict, Forbidden, InvalidParameter, NotFound
from gorae.network.controller import NetworkController
from gorae.network.names import NetworkNames
from gorae.network.registry import DriverRegistry
from gorae.network.types import (
    DriverCapabilities,
    EndpointDoc,
    EndpointRequest,
    NetworkDoc,
    NetworkOptions,
    NetworkSpec,
    PortMappingDoc,
    PortTarget,
    SandboxInfo,
)
from gorae.store.metadata import MetadataStore

NAMES = NetworkNames("fk0", "fk-", "fkv", "FAKE")


class FakeDriver:
    """Records every call; builds nothing."""

    def __init__(self, type_: str, caps: DriverCapabilities, predefined: str | None = None) -> None:
        self.type = type_
        self.capabilities = caps
        self.predefined_name = predefined
        self.calls: list[tuple[Any, ...]] = []
        self.fail_create = False

    def names(self, method: str) -> list[tuple[Any, ...]]:
        return [c[1:] for c in self.calls if c[0] == method]

    def predefined_network(self, pick_subnet: Callable[[], ipaddress.IPv4Network]) -> NetworkSpec:
        return NetworkSpec()

    def network_interface(
        self, network_id: str, options: Mapping[str, str], networks: Sequence[NetworkDoc]
    ) -> str | None:
        self.calls.append(("network_interface", network_id))
        return f"if-{network_id[:6]}"

    def create_network(self, net: NetworkDoc) -> None:
        self.calls.append(("create_network", net["Name"]))
        if self.fail_create:
            raise OSError("no bridges today")

    def delete_network(self, net: NetworkDoc) -> None:
        self.calls.append(("delete_network", net["Name"]))

    def restore(self, networks: Sequence[NetworkDoc]) -> None:
        self.calls.append(("restore", sorted(n["Name"] for n in networks)))

    def purge(self, networks: Sequence[NetworkDoc]) -> None:
        self.calls.append(("purge", sorted(n["Name"] for n in networks)))

    def create_endpoint(self, net: NetworkDoc, ep: EndpointDoc) -> None:
        self.calls.append(("create_endpoint", net["Name"], ep["container_id"]))

    def delete_endpoint(self, net: NetworkDoc, ep: EndpointDoc) -> None:
        self.calls.append(("delete_endpoint", net["Name"], ep["container_id"]))

    def join(self, net: NetworkDoc, ep: EndpointDoc, sandbox: SandboxInfo, *, default_route: bool) -> None:
        self.calls.append(("join", net["Name"]))

    def leave(self, net: NetworkDoc, ep: EndpointDoc, sandbox: SandboxInfo) -> None:
        self.calls.append(("leave", net["Name"]))

    def port_target(self, net: NetworkDoc) -> PortTarget | None:
        return None

    def sync(self, networks: Sequence[NetworkDoc], ports: Sequence[PortMappingDoc]) -> None:
        self.calls.append(("sync", sorted(n["Name"] for n in networks)))


def _user() -> FakeDriver:
    return FakeDriver("user", DriverCapabilities(user_networks=True, addresses=True))


def _local() -> FakeDriver:
    caps = DriverCapabilities(user_networks=False, host_namespace=True, exclusive=True)
    return FakeDriver("local", caps, predefined="local")


@pytest.fixture
def meta_path() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="gctl") as d:
        yield os.path.join(d, "meta.db")


def controller(meta: MetadataStore, *drivers: FakeDriver, events: list[Any] | None = None) -> NetworkController:
    ctl = NetworkController(meta, "/nonexistent", NetworkOptions(), NAMES, drivers=drivers)
    if events is not None:
        ctl.publish = lambda *a: events.append(a)
    return ctl


def test_init_creates_each_drivers_predefined_network_once_and_restores_by_driver(meta_path: str) -> None:
    meta = MetadataStore(meta_path)
    user, local = _user(), _local()
    ctl = controller(meta, user, local)
    asyncio.run(ctl.init())
    assert [n["Name"] for n in ctl.list()] == ["local"]
    assert ctl.inspect("local")["Driver"] == "local"
    assert local.names("restore") == [(["local"],)] and user.names("restore") == [([],)]
    assert local.names("sync") == [(["local"],)]
    ctl.create("mine", "user", subnet="10.250.1.0/24")
    asyncio.run(ctl.close())
    # a restart finds both: the predefined one is not created again, each driver restores its own
    user2, local2 = _user(), _local()
    ctl2 = controller(meta, user2, local2)
    asyncio.run(ctl2.init())
    assert sorted(n["Name"] for n in ctl2.list()) == ["local", "mine"]
    assert user2.names("restore") == [(["mine"],)] and local2.names("restore") == [(["local"],)]
    asyncio.run(ctl2.close())
    meta.close()


def test_create_and_remove_go_to_the_networks_driver(meta_path: str) -> None:
    meta = MetadataStore(meta_path)
    user, local, events = _user(), _local(), []
    ctl = controller(meta, user, local, events=events)
    asyncio.run(ctl.init())
    nid = ctl.create("mine", "user", subnet="10.250.2.0/24", labels={"a": "b"})["Id"]
    assert user.names("create_network") == [("mine",)] and local.names("create_network") == []
    net = ctl.inspect("mine")
    # dockerd shows only what the user gave; the gateway gorae chose is in the record (and on the bridge)
    assert net["Driver"] == "user" and net["IPAM"]["Config"] == [{"Subnet": "10.250.2.0/24"}]
    assert ctl.state.networks[nid]["IPAM"]["Config"] == [{"Subnet": "10.250.2.0/24", "Gateway": "10.250.2.1"}]
    assert ctl.state.networks[nid]["_gorae"]["bridge"] == f"if-{nid[:6]}"
    assert user.names("sync")[-1] == (["mine"],)
    ctl.remove("mine")
    assert user.names("delete_network") == [("mine",)]
    assert [(e[1], e[3]["name"], e[3]["type"]) for e in events] == [("create", "mine", "user"), ("destroy", "mine", "user")]
    asyncio.run(ctl.close())
    meta.close()


def test_create_refuses_unknown_and_predefined_only_drivers(meta_path: str) -> None:
    meta = MetadataStore(meta_path)
    ctl = controller(meta, _user(), _local())
    asyncio.run(ctl.init())
    with pytest.raises(NotFound, match='plugin "overlay" not found'):
        ctl.create("x", "overlay")
    with pytest.raises(Forbidden, match='only one instance of "local" network is allowed'):
        ctl.create("x", "local")
    asyncio.run(ctl.close())
    meta.close()


def test_a_network_its_driver_failed_to_create_leaves_no_record(meta_path: str) -> None:
    meta = MetadataStore(meta_path)
    user = _user()
    ctl = controller(meta, user, _local())
    asyncio.run(ctl.init())
    user.fail_create = True
    with pytest.raises(OSError):
        ctl.create("mine", "user", subnet="10.250.3.0/24")
    assert [n["Name"] for n in ctl.list()] == ["local"]
    user.fail_create = False
    ctl.create("mine", "user", subnet="10.250.3.0/24")  # the pool was given back
    asyncio.run(ctl.close())
    meta.close()


def test_composition_root_registers_another_driver(meta_path: str) -> None:
    meta = MetadataStore(meta_path)
    ctl = controller(meta, _local())
    overlay = FakeDriver("overlay", DriverCapabilities(user_networks=True, addresses=True))
    ctl.drivers.register(overlay)
    with pytest.raises(Conflict):
        ctl.drivers.register(FakeDriver("overlay", overlay.capabilities))
    asyncio.run(ctl.init())
    ctl.create("ov", "overlay", subnet="10.250.4.0/24")
    assert overlay.names("create_network") == [("ov",)]
    asyncio.run(ctl.close())
    meta.close()


def test_container_on_a_host_namespace_network(meta_path: str) -> None:
    meta = MetadataStore(meta_path)
    local, events = _local(), []
    ctl = controller(meta, _user(), local, events=events)

    async def main() -> None:
        await ctl.init()
        cid = "c" * 64
        net = await ctl.setup_container(EndpointRequest(cid, "/web", "web", network_mode="local"))
        assert net.netns_path is None and list(net.settings["Networks"]) == ["local"]
        assert "localhost" in net.hosts  # the host's own /etc/hosts
        assert local.names("create_endpoint") == [("local", cid)]
        assert ctl.container_networks(cid) == ["local"]
        assert set(ctl.inspect("local")["Containers"]) == {cid}
        await ctl.teardown_container(cid)
        await ctl.settle()
        assert local.names("delete_endpoint") == [("local", cid)]
        assert ctl.inspect("local")["Containers"] == {}
        await ctl.close()

    asyncio.run(main())
    assert [e[1] for e in events] == ["connect", "disconnect"]
    meta.close()


def test_registry_names_a_missing_driver_like_docker() -> None:
    reg = DriverRegistry([_local()])
    assert "local" in reg and "user" not in reg
    with pytest.raises(NotFound, match='plugin "user" not found'):
        reg.get("user")


def test_list_and_prune_filters(meta_path: str) -> None:
    meta = MetadataStore(meta_path)
    ctl = controller(meta, _user(), _local())
    asyncio.run(ctl.init())
    ctl.create("front-1", "user", subnet="10.250.5.0/24", labels={"tier": "front"})
    ctl.create("back-1", "user", subnet="10.250.6.0/24", labels={"tier": "back", "keep": ""})

    def names(filters: dict[str, Any]) -> list[str]:
        return sorted(n["Name"] for n in ctl.list(filters))

    assert names({"name": ["^front"]}) == ["front-1"]
    assert names({"label": {"tier=back": True}}) == ["back-1"]
    assert names({"type": ["builtin"]}) == ["local"]
    assert names({"driver": ["user"], "dangling": ["true"]}) == ["back-1", "front-1"]
    with pytest.raises(InvalidParameter, match="invalid filter 'colour'"):
        ctl.list({"colour": ["red"]})
    with pytest.raises(InvalidParameter, match="invalid filter 'dangling=maybe'"):
        ctl.list({"dangling": ["maybe"]})
    assert ctl.prune({"until": ["2000-01-01T00:00:00Z"]}) == {"NetworksDeleted": []}
    assert ctl.prune({"label!": ["keep"]}) == {"NetworksDeleted": ["front-1"]}
    assert names({}) == ["back-1", "local"]
    asyncio.run(ctl.close())
    meta.close()
