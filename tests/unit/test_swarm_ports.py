"""Published ports of swarm services, the pure parts: the services' validation refuses an ingress port another
service publishes (swarmkit's text), host-mode ports become the task container's port bindings, which tasks
drain before they stop, and which UDP conntrack flows a load-balancer update flushes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gorae.errors import InvalidParameter
from gorae.network.portmap.lb import Backend, Frontend, stale_udp_flows
from gorae.swarm.agent import spec
from gorae.swarm.services.control import ServiceControl
from gorae.swarm.store.memory import MemoryStore


def _body(name: str, *ports: dict[str, Any]) -> dict[str, Any]:
    return {
        "Name": name,
        "TaskTemplate": {"ContainerSpec": {"Image": "busybox"}},
        "EndpointSpec": {"Ports": list(ports)},
    }


def _port(published: int, proto: str = "tcp", mode: str = "ingress") -> dict[str, Any]:
    return {"Protocol": proto, "TargetPort": 80, "PublishedPort": published, "PublishMode": mode}


def test_ingress_port_conflicts_are_refused_at_create_and_update() -> None:
    store = MemoryStore()
    control = ServiceControl(lambda: store)

    async def go() -> None:
        web = (await control.create(_body("web", _port(8080))))["ID"]
        text = (
            f"rpc error: code = InvalidArgument desc = port '8080' is already in use by service 'web' ({web}) "
            "as an ingress port"
        )
        with pytest.raises(InvalidParameter) as e:
            await control.create(_body("other", _port(8080)))
        assert e.value.message == text
        await control.create(_body("udp", _port(8080, "udp")))  # another protocol: no conflict
        await control.create(_body("host", _port(8080, mode="host")))  # host mode: the node's, not the mesh's
        other = await control.create(_body("other", _port(8081)))
        version = (await control.inspect(other["ID"], False))["Version"]["Index"]
        with pytest.raises(InvalidParameter) as e:
            await control.update(other["ID"], str(version), _body("other", _port(8080)), None, None)
        assert e.value.message == text
        doc = await control.inspect(web, False)
        await control.update(
            web, str(doc["Version"]["Index"]), _body("web", _port(8080), _port(8082)), None, None
        )

    asyncio.run(go())


def test_host_mode_ports_become_the_containers_bindings() -> None:
    task = {
        "ID": "t1",
        "Spec": {"ContainerSpec": {"Image": "busybox"}},
        "Endpoint": {
            "Ports": [
                _port(8080),
                {"Protocol": "udp", "TargetPort": 53, "PublishedPort": 5353, "PublishMode": "host"},
                {"Protocol": "tcp", "TargetPort": 80, "PublishMode": "host"},
            ]
        },
    }
    assert spec.host_ports(task) == (
        {"53/udp": {}, "80/tcp": {}},
        {"53/udp": [{"HostIp": "", "HostPort": "5353"}], "80/tcp": [{"HostIp": "", "HostPort": ""}]},
    )
    body = spec.create_body(task, [])
    assert body["ExposedPorts"] == {"53/udp": {}, "80/tcp": {}}
    assert body["HostConfig"]["PortBindings"]["53/udp"] == [{"HostIp": "", "HostPort": "5353"}]
    assert "PortBindings" not in spec.create_body({"ID": "t2", "Spec": {}}, [])["HostConfig"]


def test_which_tasks_drain_before_they_stop() -> None:
    assert spec.has_service_binding({"Spec": {"Networks": [{"Target": "n1"}]}})
    assert spec.has_service_binding({"Spec": {}, "Endpoint": {"Ports": [_port(8080)]}})
    assert not spec.has_service_binding({"Spec": {}, "Endpoint": {"Ports": [_port(8080, mode="host")]}})
    assert not spec.has_service_binding({"Spec": {}})


def test_stale_udp_flows() -> None:
    mesh, vip, tcp = Frontend("", 8080, "udp"), Frontend("10.0.1.5", 0, "all"), Frontend("", 8080, "tcp")
    a, b = Backend("10.0.0.3", 53), Backend("10.0.0.4", 53)
    va, vb = Backend("10.0.1.3", 0), Backend("10.0.1.4", 0)
    # first backends of a frontend: every flow it had (they met no backend)
    assert stale_udp_flows({}, {mesh: {a}, tcp: {a}}) == [["-D", "-p", "udp", "--orig-port-dst", "8080"]]
    # a backend that goes: its flows only; TCP frontends: nothing (a connection ends by itself)
    assert stale_udp_flows({mesh: {a, b}, tcp: {a, b}}, {mesh: {b}, tcp: {b}}) == [
        ["-D", "-p", "udp", "--orig-port-dst", "8080", "--reply-src", "10.0.0.3", "--reply-port-src", "53"]
    ]
    assert stale_udp_flows({vip: {va, vb}}, {vip: {vb}}) == [
        ["-D", "-p", "udp", "--orig-dst", "10.0.1.5", "--reply-src", "10.0.1.3"]
    ]
    # a frontend that goes, or loses its last backend: all its flows
    assert stale_udp_flows({vip: {va}}, {}) == [["-D", "-p", "udp", "--orig-dst", "10.0.1.5"]]
    assert stale_udp_flows({mesh: {a}}, {mesh: set()}) == [
        ["-D", "-p", "udp", "--orig-port-dst", "8080", "--reply-src", "10.0.0.3", "--reply-port-src", "53"]
    ]
    assert stale_udp_flows({mesh: {a}}, {mesh: {a}}) == []


_backends = st.sets(st.builds(Backend, st.sampled_from(["10.0.0.2", "10.0.0.3", "10.0.0.4"]), st.just(53)))


@settings(max_examples=200, deadline=None)
@given(old=_backends, new=_backends)
def test_every_removed_udp_backend_is_flushed(old: set[Backend], new: set[Backend]) -> None:
    fe = Frontend("", 9999, "udp")
    flows = stale_udp_flows({fe: old} if old else {}, {fe: new})
    flushed = {f[f.index("--reply-src") + 1] for f in flows if "--reply-src" in f}
    everything = ["-D", "-p", "udp", "--orig-port-dst", "9999"] in flows
    for be in old - new:
        assert be.ip in flushed or everything
    for be in new & old:
        assert be.ip not in flushed
    assert everything == (not old and bool(new))
