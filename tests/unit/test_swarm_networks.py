"""Swarm networks without a kernel: the cluster IPAM (gorae.swarm.networks.allocator), the managers'
swarm-port operations over an in-memory cluster store (hostile requests included), and the load balancer's
rendered rules (gorae.network.portmap.lb)."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gorae.errors import Conflict, Forbidden, GoraeError, InvalidParameter, NotFound
from gorae.network.names import NetworkNames
from gorae.network.portmap.lb import Backend, Frontend, LoadBalancer
from gorae.swarm.component import NodeContext
from gorae.swarm.networks import allocator, records
from gorae.swarm.networks.component import SwarmNetworks
from gorae.swarm.store.memory import MemoryStore
from gorae.swarm.store.types import Network, Node, Task, WriteTx


def _net(name: str = "appnet", existing: list[dict[str, Any]] | None = None, **body: Any) -> dict[str, Any]:
    return allocator.new_network(f"id{name}", name, body, existing or [])


# ---- the cluster IPAM ------------------------------------------------------------------------------


def test_new_networks_take_the_default_pool_in_order_and_the_next_vni() -> None:
    a = _net("a")
    b = _net("b", [a])
    assert a["IPAM"]["Config"] == [{"Subnet": "10.0.0.0/24", "Gateway": "10.0.0.1"}]
    assert b["IPAM"]["Config"] == [{"Subnet": "10.0.1.0/24", "Gateway": "10.0.1.1"}]
    assert (a["Scope"], a["Driver"], a["Options"]) == (
        "swarm",
        "overlay",
        {"com.docker.network.driver.overlay.vxlanid_list": "4097"},
    )
    assert b["Options"]["com.docker.network.driver.overlay.vxlanid_list"] == "4098"


def test_refusals_have_dockerds_words() -> None:
    a = _net("a")
    with pytest.raises(Conflict, match="^network with name a already exists$"):
        _net("a", [a])
    assert (
        _net("b", [a], subnet="10.0.0.128/25")["IPAM"]["Config"][0]["Subnet"] == "10.0.0.128/25"
    )  # as dockerd
    assert (a["Labels"], _net("l", labels={"k": "v"})["Labels"]) == (None, {"k": "v"})
    with pytest.raises(InvalidParameter, match="^no matching subnet for gateway 10.1.0.1$"):
        _net("b", [a], subnet="10.9.0.0/24", gateway="10.1.0.1")
    with pytest.raises(InvalidParameter, match="^invalid CIDR address: nope$"):
        _net("b", [a], subnet="nope")
    d = _net("d", subnet="10.5.0.0/24", gateway="10.5.0.254", ip_range="10.5.0.128/25")
    assert d["IPAM"]["Config"] == [
        {"Subnet": "10.5.0.0/24", "IPRange": "10.5.0.128/25", "Gateway": "10.5.0.254"}
    ]


def test_addresses_are_sequential_kept_per_owner_and_not_reused_at_once() -> None:
    doc = _net()
    doc, ip1 = allocator.allocate(doc, "n1/c1", None, node="n1", vtep="192.0.2.1", name="c1")
    doc, ip2 = allocator.allocate(doc, "n2/c2", None, node="n2", vtep="192.0.2.2", name="c2")
    assert (ip1, ip2) == ("10.0.0.2", "10.0.0.3")
    same, again = allocator.allocate(doc, "n1/c1", None, node="n1", vtep="192.0.2.1", name="c1")
    assert (same, again) == (doc, "10.0.0.2")
    assert doc["_gorae"]["endpoints"]["n2/c2"] == {
        "ip": "10.0.0.3",
        "mac": "02:42:0a:00:00:03",
        "node": "n2",
        "vtep": "192.0.2.2",
        "name": "c2",
    }
    with pytest.raises(Conflict, match="^Address already in use$"):
        allocator.allocate(doc, "n3/c3", "10.0.0.3", node="n3", vtep="192.0.2.3", name="c3")
    with pytest.raises(InvalidParameter):
        allocator.allocate(doc, "n3/c3", "10.0.0.255", node="n3", vtep="192.0.2.3", name="c3")
    released = allocator.release(doc, "n1/c1")
    assert released is not None and "n1/c1" not in released["_gorae"]["endpoints"]
    assert allocator.release(released, "n1/c1") is None
    _, ip3 = allocator.allocate(released, "n3/c3", None, node="n3", vtep="192.0.2.3", name="c3")
    assert ip3 == "10.0.0.4"  # after the last one given, as libnetwork
    gone = allocator.release_node(doc, "n2")
    assert gone is not None and list(gone["_gorae"]["endpoints"]) == ["n1/c1"]


def test_a_full_network_says_so() -> None:
    doc = _net(subnet="10.7.0.0/30")  # .1 gateway, .2 the only address
    doc, ip = allocator.allocate(doc, "a", None, node="n", vtep="192.0.2.1", name="a")
    assert ip == "10.7.0.2"
    with pytest.raises(GoraeError, match="could not find an available IP"):
        allocator.allocate(doc, "b", None, node="n", vtep="192.0.2.1", name="b")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 9)), max_size=60))
def test_an_address_is_never_given_twice(ops: list[tuple[bool, int]]) -> None:
    doc = _net(subnet="10.8.0.0/28")
    held: dict[str, str] = {}
    for take, who in ops:
        owner = f"n/c{who}"
        if take:
            try:
                doc, ip = allocator.allocate(doc, owner, None, node="n", vtep="192.0.2.1", name=owner)
            except GoraeError:
                assert len(held) == 13  # the /28 is full: 14 hosts minus the gateway
                continue
            assert held.get(owner, ip) == ip
            held[owner] = ip
        else:
            doc = allocator.release(doc, owner) or doc
            held.pop(owner, None)
        ips = list(held.values())
        assert len(ips) == len(set(ips))
        assert not {"10.8.0.0", "10.8.0.1", "10.8.0.15"} & set(ips)
        assert {e["ip"] for e in doc["_gorae"]["endpoints"].values()} == set(ips)


# ---- the managers' operations ----------------------------------------------------------------------


async def _no_manager(request: dict[str, Any]) -> dict[str, Any]:
    raise AssertionError("not called")


class _NoLocal:
    """A controller with no local instance and no container (what `_apply` reads of it)."""

    class swarm:  # noqa: N801 - the controller's attribute
        @staticmethod
        def local_ids() -> list[str]:
            return []

    class state:  # noqa: N801
        lock = threading.RLock()
        sandboxes: dict[str, Any] = {}

    names = NetworkNames("gtest0", "gtest-", "gtestv", "GORAE-TEST")


def _manager() -> tuple[SwarmNetworks, MemoryStore]:
    store = MemoryStore()
    nets = SwarmNetworks(_NoLocal())  # type: ignore[arg-type] - what the operations touch of a controller
    nets.node = NodeContext("mgr", "cluster", "manager", "192.0.2.1", store, _no_manager)
    return nets, store


async def _seed(store: MemoryStore) -> None:
    async def write(tx: WriteTx) -> None:
        await tx.create(Network(id="idopen", doc=_net("open", attachable=True)))
        await tx.create(
            Network(id="idclosed", doc=allocator.new_network("idclosed", "closed", {}, [_net("open")]))
        )
        await tx.create(Node(id="w1", doc={"Status": {"State": "ready", "Addr": "192.0.2.7"}}))
        await tx.create(Task(id="t1", doc={"NodeID": "w1"}))

    await store.update(write)


def test_attach_detach_and_watch_over_the_store() -> None:
    async def main() -> None:
        nets, store = _manager()
        await _seed(store)
        got = await nets._op_attach(
            {"network": "open", "container": "c" * 64, "name": "web"}, "w1", "198.51.100.1"
        )
        assert got["ip"] == "10.0.0.2" and got["network"]["Name"] == "open" and "_gorae" not in got["network"]
        with pytest.raises(Forbidden, match="network closed not manually attachable"):
            await nets._op_attach(
                {"network": "closed", "container": "d" * 64, "name": "x"}, "w1", "198.51.100.1"
            )
        task = await nets._op_attach(
            {"network": "closed", "container": "e" * 64, "name": "web.1.t1"}, "w1", ""
        )
        assert task["ip"] == "10.0.1.2"  # a task of that node may use a network that is not attachable
        with pytest.raises(Forbidden):  # ... but not another node's task
            await nets._op_attach({"network": "closed", "container": "f" * 64, "name": "web.1.t1"}, "w2", "")
        first = await nets._op_watch({"tag": ""}, "w1", "")
        ep = {n["Name"]: n for n in first["networks"]}["open"]["_gorae"]["endpoints"]["w1/" + "c" * 64]
        assert ep["vtep"] == "192.0.2.7"  # the node's address from the store, not the peer's
        waiter = asyncio.ensure_future(nets._op_watch({"tag": first["tag"], "wait": 5}, "w1", ""))
        await asyncio.sleep(0.05)
        assert not waiter.done()  # a current tag waits
        nets._changed.set()  # what the store watcher does on a network change
        await nets._op_detach({"network": "open", "container": "c" * 64}, "w1", "")
        answer = await asyncio.wait_for(waiter, 5)
        assert answer["tag"] != first["tag"]
        assert {n["Name"]: n for n in answer["networks"]}["open"]["_gorae"]["endpoints"] == {}
        timed = await nets._op_watch({"tag": answer["tag"], "wait": 0.05}, "w1", "")
        assert timed["tag"] == answer["tag"]

    asyncio.run(main())


def test_remove_refuses_a_network_in_use() -> None:
    async def main() -> None:
        nets, store = _manager()
        await _seed(store)
        await nets._op_attach({"network": "open", "container": "c" * 64, "name": "web"}, "w1", "")
        with pytest.raises(
            Forbidden, match="^rpc error: code = FailedPrecondition desc = network idopen is in use"
        ):
            await nets._remove("idopen")
        await nets._op_detach({"network": "idopen", "container": "c" * 64}, "w1", "")
        await nets._remove("idopen")
        with pytest.raises(NotFound):
            await nets._remove("idopen")

    asyncio.run(main())


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
    max_leaves=8,
)


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from(["_op_attach", "_op_detach", "_op_watch", "_op_task"]),
    st.dictionaries(st.sampled_from(["network", "container", "name", "ip", "tag", "wait", "x"]), _json),
)
def test_hostile_requests_get_an_error_or_an_answer(op: str, request: dict[str, Any]) -> None:
    async def main() -> None:
        nets, store = _manager()
        await _seed(store)
        request.setdefault("wait", 0.01)
        try:
            answer = await asyncio.wait_for(getattr(nets, op)(request, "w1", "198.51.100.1"), 20)
        except GoraeError:
            return
        assert isinstance(answer, dict)
        if op == "_op_attach":
            assert ipaddress.IPv4Address(answer["ip"])

    asyncio.run(main())


# ---- the load balancer's rules ---------------------------------------------------------------------


def _shares(text: str, chain: str) -> dict[str, float]:
    """The share of new connections each DNAT target of `chain` gets, from the rendered rules."""
    left, out = 1.0, {}
    for line in text.splitlines():
        if not line.startswith(f"-A {chain} "):
            continue
        target = line.rsplit(" ", 1)[1]
        m = re.search(r"--probability (\S+)", line)
        p = float(m.group(1)) if m else 1.0
        out[target] = out.get(target, 0.0) + left * p
        left *= 1 - p
    return out


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40))
def test_every_backend_gets_an_equal_share(n: int) -> None:
    lb = LoadBalancer("GLBU")
    fe = Frontend("10.0.0.10", 80)
    text = lb.render({fe: [Backend(f"10.0.1.{i}", 8080) for i in range(1, n + 1)]}, {})
    shares = _shares(text, lb.chain_of(fe))
    assert len(shares) == n
    assert all(abs(s - 1 / n) < 1e-9 for s in shares.values()), shares


def test_render_replaces_stale_chains_and_rejects_empty_frontends() -> None:
    lb = LoadBalancer("GLBU")
    a, b = Frontend("10.0.0.10", 80), Frontend("10.0.0.11", 53, "udp")
    text = lb.render({a: [], b: [Backend("10.0.1.2", 53)]}, {"nat": {"GLBU-LB", "GLBU-DEADBEEF"}})
    assert text == (
        "*nat\n:GLBU-LB - [0:0]\n"
        f":{lb.chain_of(b)} - [0:0]\n"
        ":GLBU-DEADBEEF - [0:0]\n"
        f"-A GLBU-LB -d 10.0.0.11/32 -p udp -m udp --dport 53 -j {lb.chain_of(b)}\n"
        f"-A {lb.chain_of(b)} -p udp -j DNAT --to-destination 10.0.1.2:53\n"
        "-X GLBU-DEADBEEF\nCOMMIT\n"
        "*filter\n:GLBU-RJ - [0:0]\n"
        "-A GLBU-RJ -d 10.0.0.10/32 -p tcp -m tcp --dport 80 -j REJECT --reject-with tcp-reset\nCOMMIT\n"
    )
    assert len(lb.chain_of(a)) <= 28


@pytest.mark.parametrize(
    "fe,be",
    [
        (Frontend("10.0.0.1", 80, "icmp"), Backend("10.0.0.2", 80)),
        (Frontend("10.0.0.1", 0), Backend("10.0.0.2", 80)),
        (Frontend("10.0.0.1", 80), Backend("10.0.0.2", 70000)),
    ],
)
def test_render_refuses_bad_frontends(fe: Frontend, be: Backend) -> None:
    with pytest.raises(InvalidParameter):
        LoadBalancer("GLBU").render({fe: [be]}, {})
    with pytest.raises(InvalidParameter):
        LoadBalancer("X" * 20)


# ---- service records: VIPs, DNS answers, what a container balances -----------------------------------


def _svc(name: str, nets: list[str], mode: str = "vip") -> dict[str, Any]:
    return {
        "Spec": {
            "Name": name,
            "TaskTemplate": {"Networks": [{"Target": n} for n in nets]},
            "EndpointSpec": {"Mode": mode},
        }
    }


def _with_task_endpoints(doc: dict[str, Any], eps: list[tuple[str, str, str]]) -> dict[str, Any]:
    """Attach containers named `<svc>.<slot>.<task id>` on nodes: [(container name, node, ...)]."""
    for name, node, _ in eps:
        doc, _ip = allocator.allocate(doc, f"{node}/{name}", None, node=node, vtep="192.0.2.9", name=name)
    return doc


def test_vips_tasks_and_dns_answers() -> None:
    net = _net("appnet")
    other = _net("other", [net])
    services = [("s1", _svc("web", ["appnet"])), ("s2", _svc("db", [other["Id"]], "dnsrr"))]
    changed = records.plan_vips([net, other], services)
    assert set(changed) == {net["Id"]}  # dnsrr services get no VIP
    net = changed[net["Id"]]
    assert net["_gorae"]["vips"] == {"s1": "10.0.0.2"}
    assert net["_gorae"]["endpoints"] == {}  # a VIP is no endpoint (no peer entry for it)
    assert records.plan_vips([net, other], services) == {}  # stable
    assert records.virtual_ips([net, other], "s1") == [{"NetworkID": net["Id"], "Addr": "10.0.0.2/24"}]
    net = _with_task_endpoints(net, [("web.1.t1", "n1", ""), ("web.2.t2", "n2", ""), ("web.3.t3", "n2", "")])
    other = _with_task_endpoints(other, [("db.1.t4", "n1", "")])
    tasks = [
        (
            "t1",
            {"ServiceID": "s1", "NodeID": "n1", "Status": {"State": "running"}, "DesiredState": "running"},
        ),
        (
            "t2",
            {"ServiceID": "s1", "NodeID": "n2", "Status": {"State": "running"}, "DesiredState": "running"},
        ),
        (
            "t3",
            {"ServiceID": "s1", "NodeID": "n2", "Status": {"State": "starting"}, "DesiredState": "running"},
        ),
        (
            "t4",
            {"ServiceID": "s2", "NodeID": "n1", "Status": {"State": "running"}, "DesiredState": "running"},
        ),
    ]
    recs = records.service_records([net, other], services, tasks)
    assert recs == [
        {"id": "s1", "name": "web", "mode": "vip", "vips": {net["Id"]: "10.0.0.2"},
         "tasks": {net["Id"]: ["10.0.0.3", "10.0.0.4"]}, "aliases": {}, "ingress": "", "ports": []},
        {"id": "s2", "name": "db", "mode": "dnsrr", "vips": {}, "tasks": {other["Id"]: ["10.0.1.2"]}, "aliases": {},
         "ingress": "", "ports": []},
    ]  # fmt: skip
    down = records.service_records([net, other], services, tasks, down_nodes={"n2"})
    assert down[0]["tasks"] == {net["Id"]: ["10.0.0.3"]}  # n2's task drops out while n2 is down
    on_app, on_other = {net["Id"]}, {other["Id"]}
    assert records.resolve(recs, on_app, "web") == ["10.0.0.2"]
    assert records.resolve(recs, on_app, "WEB.") == ["10.0.0.2"]
    assert records.resolve(recs, on_app, "tasks.web") == ["10.0.0.3", "10.0.0.4"]  # t3 is not running yet
    assert records.resolve(recs, on_other, "web") is None  # not on that network
    assert records.resolve(recs, on_other, "db") == ["10.0.1.2"]  # dnsrr: the tasks themselves
    assert records.resolve(recs, on_app, "nope") is None
    # a service's network aliases (`docker stack deploy` gives each its short name) name it on that network
    aliased = [
        ("s1", {"Spec": {**services[0][1]["Spec"], "TaskTemplate": {"Networks": [{"Target": "appnet", "Aliases": ["front"]}]}}}),
        ("s2", {"Spec": {**services[1][1]["Spec"], "TaskTemplate": {"Networks": [{"Target": other["Id"], "Aliases": ["store"]}]}}}),
    ]  # fmt: skip
    arecs = records.service_records([net, other], aliased, tasks)
    assert arecs[0]["aliases"] == {net["Id"]: ["front"]}
    assert records.resolve(arecs, on_app, "FRONT") == ["10.0.0.2"]  # the VIP, as the name gives
    assert records.resolve(arecs, on_app, "tasks.front") == ["10.0.0.3", "10.0.0.4"]
    assert records.resolve(arecs, on_other, "front") is None  # only on its own network
    assert records.resolve(arecs, on_other, "store") == ["10.0.1.2"]  # dnsrr
    assert records.resolve(arecs, on_app, "web") == ["10.0.0.2"]
    assert records.balancing(recs, on_app) == {"10.0.0.2": ["10.0.0.3", "10.0.0.4"]}
    assert records.balancing(recs, on_other) == {}
    # the service goes: its VIP is given back
    gone = records.plan_vips([net, other], [services[1]])
    assert gone[net["Id"]]["_gorae"]["vips"] == {}
    assert "10.0.0.2" not in gone[net["Id"]]["_gorae"]["ipam"]["allocated"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from(["vip", "dnsrr"])), max_size=6))
def test_vip_plans_never_share_an_address(specs: list[tuple[str, str]]) -> None:
    net = _net("a")
    for i in range(3):
        services = [(f"s{j}", _svc(f"x{j}", [target], mode)) for j, (target, mode) in enumerate(specs[i:])]
        net = records.plan_vips([net], services).get(net["Id"], net)
        vips = list((net["_gorae"].get("vips") or {}).values())
        assert len(vips) == len(set(vips))
        wanted = {sid for sid, s in services if s["Spec"]["EndpointSpec"]["Mode"] == "vip"
                  and s["Spec"]["TaskTemplate"]["Networks"][0]["Target"] == "a"}  # fmt: skip
        assert set(net["_gorae"].get("vips") or {}) == wanted


def test_the_routing_mesh_spreads_a_published_port_over_the_tasks_on_ingress() -> None:
    ingress = allocator.ingress_network("iding", [])
    assert (ingress["Name"], ingress["Ingress"], ingress["IPAM"]["Config"]) == (
        "ingress",
        True,
        [{"Subnet": "10.0.0.0/24", "Gateway": "10.0.0.1"}],
    )
    assert ingress["Options"] == {"com.docker.network.driver.overlay.vxlanid_list": "4096"}
    app = _net("appnet", [ingress])
    assert app["IPAM"]["Config"][0]["Subnet"] == "10.0.1.0/24"  # as Docker: ingress has 10.0.0.0/24
    web = _svc("web", ["appnet"])
    web["Spec"]["EndpointSpec"]["Ports"] = [
        {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080},
        {"Protocol": "udp", "TargetPort": 53, "PublishedPort": 5353, "PublishMode": "ingress"},
        {"Protocol": "tcp", "TargetPort": 81, "PublishedPort": 8081, "PublishMode": "host"},
    ]
    assert records.service_networks(web, records.refs([ingress, app]), "iding") == ["iding", app["Id"]]
    ingress = _with_task_endpoints(ingress, [("web.1.t1", "n1", ""), ("web.2.t2", "n2", "")])
    tasks = [
        (t, {"ServiceID": "s1", "NodeID": n, "Status": {"State": "running"}, "DesiredState": "running"})
        for t, n in (("t1", "n1"), ("t2", "n2"))
    ]
    recs = records.service_records([ingress, app], [("s1", web)], tasks)
    assert recs[0]["ingress"] == "iding"
    assert records.mesh(recs) == {
        ("tcp", 8080): [("10.0.0.2", 80), ("10.0.0.3", 80)],
        ("udp", 5353): [("10.0.0.2", 53), ("10.0.0.3", 53)],
    }
    assert records.resolve(recs, {"iding"}, "tasks.web") is None  # no discovery on the ingress network


def test_addresses_of_removed_nodes_go_back() -> None:
    async def main() -> None:
        nets, store = _manager()
        await _seed(store)
        await nets._op_attach({"network": "open", "container": "c" * 64, "name": "a"}, "w1", "")
        await nets._op_attach({"network": "open", "container": "d" * 64, "name": "b"}, "gone", "198.51.100.9")
        await SwarmNetworks._forget_departed(store)
        first = await nets._op_watch({"tag": ""}, "w1", "")
        eps = {n["Name"]: n for n in first["networks"]}["open"]["_gorae"]["endpoints"]
        assert list(eps) == ["w1/" + "c" * 64]  # the node `gone` is not in the store: its address is free

    asyncio.run(main())


def test_published_ports_chosen_kept_and_conflicts_named_as_swarmkit() -> None:
    web = {
        "Spec": {
            "Name": "web",
            "EndpointSpec": {"Ports": [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080}]},
        }
    }
    api = {
        "Spec": {
            "Name": "api",
            "EndpointSpec": {"Ports": [{"TargetPort": 80}, {"TargetPort": 81, "PublishMode": "host"}]},
        }
    }
    taken = {("tcp", 8080)}
    ports = records.endpoint_ports(api, taken)
    assert ports == [
        {"Protocol": "tcp", "TargetPort": 80, "PublishMode": "ingress", "PublishedPort": 30000},
        {"Protocol": "tcp", "TargetPort": 81, "PublishMode": "host"},
    ]
    assert ("tcp", 30000) in taken
    api["Endpoint"] = {"Ports": ports}
    assert records.endpoint_ports(api, {("tcp", 8080)}) == ports  # kept
    assert records.ingress_ports(api) == [ports[0]]  # Endpoint.Ports once filled in
    spec = {"Name": "other", "EndpointSpec": {"Ports": [{"TargetPort": 9, "PublishedPort": 8080}]}}
    assert records.port_conflict([("s1", web), ("s2", api)], spec) == (
        "rpc error: code = InvalidArgument desc = port '8080' is already in use by service 'web' (s1) as an "
        "ingress port"
    )
    assert records.port_conflict([("s1", web)], web["Spec"], "s1") is None  # its own update
    assert (
        records.port_conflict(
            [("s1", web)],
            {
                **spec,
                "EndpointSpec": {"Ports": [{"TargetPort": 9, "PublishedPort": 8080, "Protocol": "udp"}]},
            },
        )
        is None
    )
