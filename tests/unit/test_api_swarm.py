"""The swarm routes under hostile input: random JSON bodies and query values for `/swarm/init`,
`/swarm/update`, `/nodes/{id}/update` and `/nodes` against a real single-node swarm (in-process
`SwarmService` with its etcd member); every answer is a GoraeError with a client or documented status,
never a crash. And the pure parsers of addresses and versions."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import skip_outside_ci
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gorae.api.swarm import SwarmRouter
from gorae.errors import GoraeError, InvalidParameter, Unavailable
from gorae.filters import Filters
from gorae.httpserver.message import Request, Response
from gorae.swarm.ca.authority import WORKER_ROLE, RootCA, new_key
from gorae.swarm.inputs import parse_version, resolve_advertise, split_hostport
from gorae.swarm.manager import SwarmService
from gorae.swarm.store.member import etcd_binary

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
SPEC_KEYS = [
    "Name",
    "Labels",
    "Role",
    "Availability",
    "Orchestration",
    "EncryptionConfig",
    "Raft",
    "CAConfig",
]
BODIES = JSON | st.dictionaries(st.sampled_from(SPEC_KEYS), JSON, max_size=4)
EXPECTED = {400, 404, 500, 501, 503}


def _describe() -> dict[str, Any]:
    return {"Hostname": "fuzz", "Platform": {"Architecture": "x86_64", "OS": "linux"}}


@pytest.fixture(scope="module")
def swarm(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[asyncio.AbstractEventLoop, SwarmService]]:
    try:
        etcd_binary()
    except Unavailable:
        skip_outside_ci("etcd is not installed (apt-get install etcd-server)")
    loop = asyncio.new_event_loop()
    svc = SwarmService(str(tmp_path_factory.mktemp("swarm") / "swarm"), _describe)
    try:
        loop.run_until_complete(svc.init({"AdvertiseAddr": "127.0.0.1", "ListenAddr": "127.0.0.1:0"}))
        yield loop, svc
    finally:
        loop.run_until_complete(svc.leave(force=True))
        loop.close()
    assert not Path(svc.root).exists()


def _call(
    loop: asyncio.AbstractEventLoop,
    handler: Any,
    body: Any,
    query: dict[str, list[str]],
    params: dict[str, str],
) -> Response | GoraeError:
    req = Request(method="POST", path="/", query=query, params=params)
    req._body_cache = json.dumps(body).encode()  # noqa: SLF001 - the body as the server would have read it
    try:
        return loop.run_until_complete(handler(req))  # type: ignore[no-any-return]
    except GoraeError as e:
        return e


def _status(r: Response | GoraeError) -> int:
    return r.status


VERSIONS = st.one_of(st.none(), st.text(max_size=6), st.integers(-2, 50).map(str))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES, version=VERSIONS, rotate=st.booleans())
def test_swarm_update_hostile(
    swarm: tuple[asyncio.AbstractEventLoop, SwarmService], body: Any, version: str | None, rotate: bool
) -> None:
    loop, svc = swarm
    query: dict[str, list[str]] = {} if version is None else {"version": [version]}
    if rotate:
        query["rotateWorkerToken"] = ["1"]
    r = _call(loop, SwarmRouter(svc).update, body, query, {})
    assert _status(r) in EXPECTED | {200}, r
    if isinstance(r, GoraeError) and r.status == 500:
        assert r.message == "rpc error: code = Unknown desc = update out of sequence"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES, version=VERSIONS, ref=st.sampled_from(["self", "fuzz", "", "x/y", "0"]))
def test_node_update_hostile(
    swarm: tuple[asyncio.AbstractEventLoop, SwarmService], body: Any, version: str | None, ref: str
) -> None:
    loop, svc = swarm
    assert svc.state is not None
    node_id = svc.state.node_id if ref == "self" else ref
    query = {} if version is None else {"version": [version]}
    r = _call(loop, SwarmRouter(svc).update_node, body, query, {"id": node_id})
    assert _status(r) in EXPECTED | {200}, r
    node = loop.run_until_complete(svc.node(svc.state.node_id))
    assert node["Spec"]["Role"] == "manager"  # the last manager is never demoted
    assert node["Spec"]["Availability"] in ("active", "pause", "drain")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES)
def test_init_while_active_and_hostile_filters(
    swarm: tuple[asyncio.AbstractEventLoop, SwarmService], body: Any
) -> None:
    loop, svc = swarm
    r = _call(loop, SwarmRouter(svc).init, body, {}, {})
    assert isinstance(r, GoraeError) and r.status in (400, 503), r
    if r.status == 503:  # a well-typed body: the swarm exists
        assert isinstance(body, dict | None) and r.message == (
            'This node is already part of a swarm. Use "docker swarm leave" to leave this swarm and join another one.'
        )
    else:
        assert r.message.startswith("json: cannot unmarshal "), r.message
    r = _call(loop, SwarmRouter(svc).list_nodes, None, {"filters": [json.dumps(body)]}, {})
    assert _status(r) in (200, 400), r


@given(st.text(max_size=30))
def test_hostport_parser(value: str) -> None:
    try:
        host, port = split_hostport(value, 2377)
    except InvalidParameter:
        return
    assert 0 <= port <= 65535 and isinstance(host, str)


def test_hostport_known() -> None:
    assert split_hostport("10.0.0.1", 2377) == ("10.0.0.1", 2377)
    assert split_hostport("10.0.0.1:4000", 2377) == ("10.0.0.1", 4000)
    assert split_hostport("[::1]:5", 2377) == ("::1", 5)
    assert split_hostport("eth0", 2377) == ("eth0", 2377)
    with pytest.raises(InvalidParameter):
        split_hostport("1.2.3.4:99999", 2377)
    with pytest.raises(InvalidParameter, match="invalid port: ²"):  # a digit to str.isdigit, not to int
        split_hostport("1.2.3.4:²", 2377)


@pytest.mark.parametrize("raw", ["²", "١٢", "-1", "+1", " 1", ""])
def test_version_parser_takes_ascii_digits_only(raw: str) -> None:
    with pytest.raises(InvalidParameter) as e:
        parse_version(raw, "swarm")
    assert e.value.message == f"invalid swarm version '{raw}': strconv.ParseUint: parsing \"{raw}\": invalid syntax"


@given(st.one_of(st.none(), st.text(max_size=10)))
def test_version_parser(raw: str | None) -> None:
    try:
        v = parse_version(raw, "node")
    except InvalidParameter as e:
        assert e.message.startswith(f"invalid node version '{raw or ''}'")
    else:
        assert raw is not None and v == int(raw) and v >= 0


OPS = st.sampled_from(["ca", "join", "leave", "x", ""]) | st.text(max_size=5)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    request=st.fixed_dictionaries(
        {"op": OPS}, optional={"token": JSON, "public_key": JSON, "description": JSON}
    )
    | st.dictionaries(st.text(max_size=6), JSON, max_size=3),
    cert=st.none() | st.binary(max_size=40),
)
def test_swarm_port_hostile_requests(
    swarm: tuple[asyncio.AbstractEventLoop, SwarmService], request: dict[str, Any], cert: bytes | None
) -> None:
    """What a peer sends on the swarm port: only `ca` answers without a valid token or certificate."""
    loop, svc = swarm
    before = len(loop.run_until_complete(svc.nodes(Filters())))
    try:
        answer = loop.run_until_complete(svc._remote_request(request, cert, "127.0.0.1"))  # noqa: SLF001
    except GoraeError as e:
        assert e.status in (400, 403, 501), e
    else:
        assert request.get("op") == "ca" and answer["ca"].startswith("-----BEGIN CERTIFICATE-----")
    assert len(loop.run_until_complete(svc.nodes(Filters()))) == before  # nobody got in


KEYS = st.sampled_from(["good", "bad"]) | JSON


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    op=st.sampled_from(["renew", "promote", "heartbeat", "join"]),
    public_key=KEYS,
    etcd_public_key=KEYS,
    peer_port=st.one_of(JSON, st.integers(-5, 70000)),
    advertise=st.one_of(st.none(), st.text(max_size=12), st.just("127.0.0.1:2377")),
    manager_token=st.booleans(),
)
def test_swarm_port_manager_ops_hostile(
    swarm: tuple[asyncio.AbstractEventLoop, SwarmService],
    op: str,
    public_key: Any,
    etcd_public_key: Any,
    peer_port: Any,
    advertise: str | None,
    manager_token: bool,
) -> None:
    """Renewal, promotion and joining as a manager with hostile keys, ports and addresses, from a node with
    a valid certificate: a certificate for the caller's own node only, never a new node or etcd member
    from a bad request."""
    loop, svc = swarm
    ca, state = svc._ca, svc.state  # noqa: SLF001
    assert ca is not None and state is not None and svc._coord is not None  # noqa: SLF001
    good = (
        new_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )

    def key(v: Any) -> Any:
        return (
            good
            if v == "good"
            else "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
            if v == "bad"
            else v
        )

    cert = x509.load_pem_x509_certificate(
        ca.issue(new_key().public_key(), state.node_id, WORKER_ROLE, state.cluster_id)
    ).public_bytes(serialization.Encoding.DER)
    request: dict[str, Any] = {
        "op": op,
        "public_key": key(public_key),
        "etcd_public_key": key(etcd_public_key),
        "peer_port": peer_port,
        "advertise_addr": advertise,
    }
    if op == "join":
        tokens = loop.run_until_complete(svc.inspect())["JoinTokens"]
        request["token"] = tokens["Manager"] if manager_token else "SWMTKN-1-x-y"
    before = loop.run_until_complete(svc.nodes(Filters()))
    members = loop.run_until_complete(svc._coord.members())  # noqa: SLF001
    try:
        answer = loop.run_until_complete(svc._remote_request(request, cert, "127.0.0.1"))  # noqa: SLF001
    except GoraeError as e:
        assert e.status in (400, 403), e
        assert loop.run_until_complete(svc.nodes(Filters())) == before
        assert loop.run_until_complete(svc._coord.members()) == members  # noqa: SLF001
        return
    if op == "renew":
        assert public_key == "good"
        issued = x509.load_pem_x509_certificate(answer["cert"].encode())
        assert issued.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == state.node_id
    elif op == "heartbeat":
        assert answer["role"] == "manager" and answer["managers"] == [[state.node_id, state.advertise_addr]]
    else:  # a join with the manager token and good keys and port: a node and a learner were added; undo
        assert op == "join" and manager_token and public_key == etcd_public_key == "good"
        loop.run_until_complete(svc._cancel_chores())  # noqa: SLF001
        for m in loop.run_until_complete(svc._coord.members()):  # noqa: SLF001
            if m.learner:
                loop.run_until_complete(svc._coord.remove(m.id))  # noqa: SLF001
        loop.run_until_complete(
            svc.update_node(
                answer["node_id"],
                str(loop.run_until_complete(svc.node(answer["node_id"]))["Version"]["Index"]),
                {"Role": "worker"},
            )
        )
        loop.run_until_complete(svc.remove_node(answer["node_id"], force=True))


def test_swarm_port_refuses_removed_and_forged_certificates(
    swarm: tuple[asyncio.AbstractEventLoop, SwarmService],
) -> None:
    loop, svc = swarm
    ca, state = svc._ca, svc.state  # noqa: SLF001
    assert ca is not None and state is not None

    def der(pem: bytes) -> bytes:
        return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)

    def ask(cert: bytes) -> str:
        try:
            loop.run_until_complete(svc._remote_request({"op": "leave"}, der(cert), "127.0.0.1"))  # noqa: SLF001
        except GoraeError as e:
            assert e.status == 403
            return e.message
        raise AssertionError("accepted")

    gone = ca.issue(new_key().public_key(), "removednode", WORKER_ROLE, state.cluster_id)
    assert ask(gone) == "node removednode was removed from the swarm"
    other_cluster = ca.issue(new_key().public_key(), state.node_id, WORKER_ROLE, "othercluster")
    assert ask(other_cluster) == "certificate of another cluster"
    forged = RootCA.create().issue(new_key().public_key(), state.node_id, WORKER_ROLE, state.cluster_id)
    assert ask(forged) == "certificate not issued by this cluster's CA"


def test_advertise_address_resolution() -> None:
    assert resolve_advertise("10.1.2.3", "0.0.0.0", 2377) == "10.1.2.3:2377"
    assert resolve_advertise("10.1.2.3:4000", "0.0.0.0", 2377) == "10.1.2.3:4000"
    assert resolve_advertise("lo", "0.0.0.0", 2377) == "127.0.0.1:2377"  # an interface: its IPv4 address
    assert resolve_advertise("", "10.9.9.9", 2400) == "10.9.9.9:2400"  # a specific listen address
    with pytest.raises(InvalidParameter) as exc:
        resolve_advertise("no-such-if0", "0.0.0.0", 2377)
    assert exc.value.message == (
        "advertise address must be a non-zero IP address or network interface (with optional port number)"
    )
