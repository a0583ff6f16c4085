"""Hostile input to a running gorae daemon's Engine API (hypothesis): create bodies with wrong types, huge and
negative numbers, bad names, restart policies and ports; every field of Config, HostConfig and NetworkingConfig,
and of the volume and network create bodies, at every depth, from the Go types in `gorae.container.schema`
(wrong types, huge ints, deep nesting, long strings); hostile ids and image names in paths; hostile query
parameters; hostile archive PUT paths. Every answer is < 500 (a JSON `{"message"}` when >= 400), nothing
hangs, no traceback reaches the log, and the daemon stays healthy. The module prints how many requests it
sent (issue 15's figure: run with -s)."""

from __future__ import annotations

import collections
import http.client
import io
import json
import os
import socket
import tarfile
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import GoraeDaemon
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gorae.container.schema import CREATE_BODY, NETWORK_CREATE, VOLUME_CREATE, GoType, Map, Slice, Struct

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


class _Conn(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=15)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(15)
        self.sock.connect(self._path)


class Api:
    def __init__(self, d: GoraeDaemon) -> None:
        self.d = d
        self.created: list[str] = []
        self.networks: list[str] = []
        self.requests = 0
        self.statuses: collections.Counter[int] = collections.Counter()

    def call(
        self, method: str, target: str, body: bytes | None = None, ctype: str = "application/json"
    ) -> tuple[int, bytes]:
        conn = _Conn(self.d.socket)
        self.requests += 1
        try:
            headers = {"Content-Type": ctype} if body is not None else {}
            conn.request(method, target, body=body, headers=headers)
            resp = conn.getresponse()  # socket.timeout here means the daemon hung
            data = resp.read()
            return resp.status, data
        finally:
            conn.close()

    def check(
        self, method: str, target: str, body: bytes | None = None, ctype: str = "application/json"
    ) -> int:
        status, data = self.call(method, target, body, ctype)
        self.statuses[status] += 1
        assert status < 500, (method, target, body, status, data[:300])
        if status >= 400 and method != "HEAD":
            msg = json.loads(data)
            assert isinstance(msg, dict) and isinstance(msg.get("message"), str) and msg["message"], data
            assert "Traceback" not in msg["message"]
        if status == 201 and target.startswith("/v1.45/containers/create"):
            self.created.append(json.loads(data)["Id"])
        if status == 201 and target.startswith("/v1.45/networks/create"):
            self.networks.append(json.loads(data)["Id"])
        return status


@pytest.fixture(scope="module")
def api(gorae_daemon: GoraeDaemon) -> Iterator[Api]:
    a = Api(gorae_daemon)
    log_before = len(gorae_daemon.log())
    volumes_before = _volume_names(a)
    status, data = a.call(
        "POST",
        "/v1.45/containers/create?name=fuzz-target",
        json.dumps({"Image": "busybox", "Cmd": ["sleep", "300"]}).encode(),
    )
    assert status == 201, data
    a.created.append(json.loads(data)["Id"])
    assert a.call("POST", "/v1.45/containers/fuzz-target/start")[0] == 204
    try:
        yield a
    finally:
        for cid in a.created:
            a.call("DELETE", f"/v1.45/containers/{cid}?force=1&v=1")
        for nid in a.networks:
            a.call("DELETE", f"/v1.45/networks/{nid}")
        for name in _volume_names(a) - volumes_before:
            a.call("DELETE", f"/v1.45/volumes/{urllib.parse.quote(name, safe='')}?force=1")
        print(
            f"\nAPI fuzz: {a.requests} requests, 0 answers >= 500; checked answers by status: {dict(a.statuses)}"
        )
        assert a.call("GET", "/_ping") == (200, b"OK")
        tail = gorae_daemon.log()[log_before:]
        assert "Traceback" not in tail and "level=ERROR" not in tail, tail[-4000:]


def _volume_names(a: Api) -> set[str]:
    status, data = a.call("GET", "/v1.45/volumes")
    assert status == 200, data
    return {v["Name"] for v in json.loads(data)["Volumes"] or []}


# ---- values --------------------------------------------------------------------------------------

big_ints = st.sampled_from([-1, -(2**63), 2**63, 2**64, 10**30, -(10**30), 0, 1, 2**31, -(2**31)])
weird = st.one_of(
    st.none(),
    st.booleans(),
    big_ints,
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
hostile_names = st.sampled_from(
    [
        "",
        "/",
        "..",
        "../../etc",
        "a" * 300,
        "UPPER",
        "-lead",
        "sp ace",
        "ü",
        "a/b",
        "a:b",
        "\x00",
        "%",
        "%00",
        "a\nb",
        "/x",
        "busybox@sha256:zz",
        "sha256:",
        "sha256:" + "0" * 64,
        "busybox:" + "t" * 200,
        "::",
        "@",
        "localhost:99999/x",
        "x" * 5000,
    ]
) | st.text(max_size=30)
policies = st.one_of(
    weird,
    st.fixed_dictionaries(
        {
            "Name": st.one_of(
                st.sampled_from(["no", "always", "on-failure", "unless-stopped", "sometimes", "", "ALWAYS"]),
                weird,
            ),
            "MaximumRetryCount": weird,
        }
    ),
)
ports = st.one_of(
    weird,
    st.dictionaries(
        st.sampled_from(["80/tcp", "80", "x/tcp", "99999/tcp", "-1/udp", "80/sctp", "80/bogus", ""]),
        st.one_of(weird, st.lists(st.fixed_dictionaries({"HostIp": weird, "HostPort": weird}), max_size=2)),
        max_size=2,
    ),
)
host_config = st.fixed_dictionaries(
    {},
    optional={
        "Memory": weird,
        "MemorySwap": weird,
        "MemoryReservation": weird,
        "MemorySwappiness": weird,
        "NanoCpus": weird,
        "CpuShares": weird,
        "CpuPeriod": weird,
        "CpuQuota": weird,
        "PidsLimit": weird,
        "ShmSize": weird,
        "RestartPolicy": policies,
        "PortBindings": ports,
        "Binds": weird,
        "AutoRemove": weird,
        "CapAdd": weird,
        "CapDrop": weird,
        "Privileged": weird,
        "Ulimits": weird,
        "Init": weird,
        "NetworkMode": weird,
        "LogConfig": weird,
        "SecurityOpt": weird,
        "Devices": weird,
        "Mounts": weird,
        "Tmpfs": weird,
        "ReadonlyRootfs": weird,
        "OomScoreAdj": weird,
        "Dns": weird,
        "ExtraHosts": weird,
        "IpcMode": weird,
    },
)
create_body = st.fixed_dictionaries(
    {},
    optional={
        "Image": st.one_of(st.just("busybox"), hostile_names, weird),
        "Cmd": weird,
        "Entrypoint": weird,
        "Env": weird,
        "User": weird,
        "WorkingDir": weird,
        "Labels": weird,
        "ExposedPorts": ports,
        "Tty": weird,
        "OpenStdin": weird,
        "StopSignal": weird,
        "StopTimeout": weird,
        "Hostname": weird,
        "Healthcheck": weird,
        "Volumes": weird,
        "HostConfig": st.one_of(host_config, weird),
        "NetworkingConfig": weird,
    },
)


# ---- bodies from the Go types: every field, at every depth ----------------------------------------

long_strings = st.sampled_from(["x" * 256, "y" * 5000, "z" * 100_000, "/" + "a/" * 3000])
huge_ints = st.sampled_from([2**63, 2**64, -(2**63) - 1, 10**40, 2**62, -(2**62), 2**31, 99999, -5000])


def _deep(depth: int) -> Any:
    value: Any = 1
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


hostile = st.one_of(
    weird,
    huge_ints,
    long_strings,
    st.integers(50, 400).map(_deep),
    st.lists(weird, max_size=3),
    st.dictionaries(st.text(max_size=4), weird, max_size=2),
)
plausible_strings = st.sampled_from(
    [
        "",
        "busybox",
        "host",
        "none",
        "bridge",
        "private",
        "shareable",
        "container:fuzz-target",
        "container:nope",
        "/x",
        "a:b",
        "80/tcp",
        "always",
        "on-failure",
        "json-file",
        "volume",
        "bind",
        "tmpfs",
        "local",
        "runc",
        "0-1",
        "0",
        "1.2.3.4",
        "::1",
        "10.99.0.0/24",
        "10.99.0.1",
        "rw",
        "size=1m",
        "h:1.2.3.4",
        "/dev/null",
        "SIGTERM",
        "nofile",
        "net.ipv4.ip_forward",
        "vm.swappiness",
        "bogus",
    ]
) | st.text(max_size=12)
# never a host path that does not exist: a bind source is created at create
safe_binds = st.lists(
    st.sampled_from(
        ["fuzzvol:/x", "/dev/null:/x", "/tmp:/x:ro", "x", ":", "fuzzvol:/x:bogus", "a" * 300 + ":/x"]
    )
    | st.text(alphabet="abc:-_.", max_size=12),
    max_size=2,
)
safe_sources = st.sampled_from(["", "fuzzvol", "/dev/null", "/tmp", "a" * 300, "bad name"]) | hostile
OVERRIDES: dict[str, st.SearchStrategy[Any]] = {
    "Binds": safe_binds | hostile,
    "Source": safe_sources,
    "Image": st.just("busybox") | hostile,
    "PathOnHost": st.sampled_from(["/dev/null", "/dev/../etc/passwd", "/nope", "", "x"]) | hostile,
    # a bridge name adopts a host interface (issue 15 item 4, another helper's): never fuzzed at random
    "Options": st.dictionaries(
        st.sampled_from(["a", "com.docker.network.driver.mtu"]), plausible_strings, max_size=2
    )
    | hostile,
}


def _valid(t: GoType, field: str) -> st.SearchStrategy[Any]:
    if isinstance(t, Struct):
        return st.fixed_dictionaries({}, optional={k: _field(v, k) for k, v in t.fields.items()})
    if isinstance(t, Slice):
        return st.lists(_field(t.elem, field), max_size=2)
    if isinstance(t, Map):
        keys = (
            plausible_strings
            if t.key == "string"
            else st.sampled_from(["80/tcp", "80", "x/tcp", "53/udp", ""])
        )
        return st.dictionaries(keys, _field(t.elem, field), max_size=2)
    if t == "string":
        return plausible_strings
    if t == "bool":
        return st.booleans()
    if t == "strslice":
        return plausible_strings | st.lists(plausible_strings, max_size=3)
    if t == "struct {}":
        return st.just({})
    if t == "any":
        return hostile
    return st.integers(-2, 2) | st.integers(-(2**70), 2**70) | st.sampled_from([1000, 10**6, 10**8, 2**20])


def _field(t: GoType, field: str) -> st.SearchStrategy[Any]:
    """A value for a field of type t: mostly well typed (so the walk goes deeper), sometimes hostile."""
    if field in OVERRIDES:
        return OVERRIDES[field]
    return st.deferred(lambda: st.one_of(_valid(t, field), _valid(t, field), hostile))


# GORAE_FUZZ_EXAMPLES=5000 for a longer, randomised run
_LONG = int(os.environ.get("GORAE_FUZZ_EXAMPLES") or 0)
SCHEMA_SETTINGS = settings(
    max_examples=_LONG or 400, deadline=None, suppress_health_check=list(HealthCheck), derandomize=not _LONG
)
SMALL_SCHEMA_SETTINGS = settings(
    max_examples=_LONG // 4 or 150,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=not _LONG,
)


@SCHEMA_SETTINGS
@given(body=_valid(CREATE_BODY, ""))
def test_every_create_field_at_every_depth(api: Api, body: dict) -> None:
    api.check("POST", "/v1.45/containers/create", json.dumps(body, allow_nan=True).encode())


@SMALL_SCHEMA_SETTINGS
@given(body=_valid(VOLUME_CREATE, "") | hostile)
def test_every_volume_create_field(api: Api, body: Any) -> None:
    api.check("POST", "/v1.45/volumes/create", json.dumps(body, allow_nan=True).encode())


@SMALL_SCHEMA_SETTINGS
@given(body=_valid(NETWORK_CREATE, "") | hostile)
def test_every_network_create_field(api: Api, body: Any) -> None:
    api.check("POST", "/v1.45/networks/create", json.dumps(body, allow_nan=True).encode())


def test_deep_and_huge_raw_bodies(api: Api) -> None:
    for route in ("/v1.45/containers/create", "/v1.45/volumes/create", "/v1.45/networks/create"):
        for opener, closer in ((b"[", b"]"), (b'{"a":', b"}")):
            api.check("POST", route, opener * 50_000 + b"1" + closer * 50_000)
        api.check("POST", route, b'{"Name":"' + b"n" * (17 * 1024 * 1024) + b'"}')


def _q(**params: Any) -> str:
    return urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})


# ---- tests ---------------------------------------------------------------------------------------


@SETTINGS
@given(body=create_body, name=st.none() | hostile_names)
def test_create_with_hostile_bodies(api: Api, body: dict, name: str | None) -> None:
    q = _q(name=name)
    raw = json.dumps(body, allow_nan=True).encode()
    api.check("POST", "/v1.45/containers/create" + ("?" + q if q else ""), raw)


@SETTINGS
@given(
    raw=st.binary(max_size=200)
    | st.sampled_from([b"[]", b"1", b'"x"', b"null", b"{", b'{"Image": "busybox"'])
)
def test_create_with_non_object_bodies(api: Api, raw: bytes) -> None:
    api.check("POST", "/v1.45/containers/create", raw)


@SETTINGS
@given(hc=host_config, policy=policies)
def test_update_with_hostile_resources(api: Api, hc: dict, policy: Any) -> None:
    body = dict(hc)
    body["RestartPolicy"] = policy
    body.pop("AutoRemove", None)
    api.check("POST", "/v1.45/containers/fuzz-target/update", json.dumps(body, allow_nan=True).encode())
    assert api.call("GET", "/v1.45/containers/fuzz-target/json")[0] == 200


ID_ROUTES = [
    ("GET", "/containers/{}/json"),
    ("GET", "/containers/{}/top"),
    ("GET", "/containers/{}/changes"),
    ("POST", "/containers/{}/pause"),
    ("POST", "/containers/{}/unpause"),
    ("POST", "/containers/{}/kill"),
    ("GET", "/containers/{}/logs?stdout=1"),
    ("GET", "/containers/{}/stats?stream=0"),
    ("GET", "/containers/{}/archive?path=/"),
    ("DELETE", "/containers/{}"),
    ("GET", "/images/{}/json"),
    ("GET", "/images/{}/history"),
    ("DELETE", "/images/{}"),
    ("POST", "/images/{}/tag?repo=x"),
    ("GET", "/images/{}/get"),
    ("GET", "/exec/{}/json"),
    ("POST", "/containers/{}/rename?name=x"),
    ("POST", "/containers/{}/wait?condition=not-running"),
    ("POST", "/containers/{}/resize?h=1&w=1"),
]


@SETTINGS
@given(route=st.sampled_from(ID_ROUTES), ident=hostile_names)
def test_hostile_ids_and_names_in_paths(api: Api, route: tuple[str, str], ident: str) -> None:
    if ident in ("fuzz-target", "busybox", "busybox:latest") or not ident.strip("/"):
        return
    method, tmpl = route
    status = api.check(method, "/v1.45" + tmpl.format(urllib.parse.quote(ident, safe="")))
    assert status >= 400 or _names_an_object(api, tmpl, ident), (method, tmpl, ident, status)


def _names_an_object(api: Api, tmpl: str, ident: str) -> bool:
    """Whether ident really names a container or image the daemon holds (a name or tag, an ID or an ID
    prefix, as docker resolves them), from the daemon's lists rather than from the route under test."""
    if tmpl.startswith("/containers/"):
        cs = json.loads(api.call("GET", "/v1.45/containers/json?all=1")[1])
        names = {n.lstrip("/") for c in cs for n in c["Names"]}
        return ident.lstrip("/") in names or any(c["Id"].startswith(ident) for c in cs)
    if tmpl.startswith("/images/"):
        ims = json.loads(api.call("GET", "/v1.45/images/json")[1])
        refs = {t for i in ims for t in i.get("RepoTags") or []}
        ids = [i["Id"] for i in ims]
        return (
            ident in refs
            or f"{ident}:latest" in refs
            or any(i.startswith(ident) or i.removeprefix("sha256:").startswith(ident) for i in ids)
        )
    return False  # the tests make no exec instances


hostile_time = st.sampled_from(
    [
        "",
        "abc",
        "-1",
        "1e99",
        "9" * 40,
        "1.5.6",
        "0",
        "nan",
        "2024-13-45",
        "1.x",
        "-9999999999999",
        "1700000000.999999999999",
    ]
) | st.text(max_size=12)
hostile_filters = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            '{"status":["bogus"]}',
            '{"label":[1]}',
            '{"id":{"x":true}}',
            "[]",
            '{"until":["x"]}',
            '{"since":["nope"]}',
            '{"before":["nope"]}',
            '{"exited":["x"]}',
            '{"dangling":["maybe"]}',
            '{"type":["x"]}',
        ]
    ),
    st.dictionaries(
        st.sampled_from(
            [
                "status",
                "label",
                "id",
                "name",
                "ancestor",
                "exited",
                "since",
                "before",
                "until",
                "dangling",
                "reference",
                "event",
                "type",
                "container",
            ]
        ),
        st.one_of(weird, st.lists(st.text(max_size=10), max_size=2)),
        max_size=3,
    ).map(json.dumps),
)


@SETTINGS
@given(filters=hostile_filters, limit=st.none() | hostile_time, size=st.none() | hostile_time)
def test_hostile_list_queries(api: Api, filters: str, limit: str | None, size: str | None) -> None:
    api.check("GET", "/v1.45/containers/json?" + _q(all=1, filters=filters, limit=limit, size=size))
    api.check("GET", "/v1.45/images/json?" + _q(filters=filters, all=size))
    api.check("POST", "/v1.45/containers/prune?" + _q(filters=json.dumps({"label": ["fuzz-never-set"]})))


@SETTINGS
@given(since=st.none() | hostile_time, until=hostile_time, filters=st.none() | hostile_filters)
def test_hostile_event_queries(api: Api, since: str | None, until: str, filters: str | None) -> None:
    if not until.strip():
        until = "1"  # an empty until means none: the stream would (rightly) stay open
    try:
        if float(until) > 1e9:  # a real future bound would (rightly) stream until then
            until = "1"
    except ValueError:
        pass
    api.check("GET", "/v1.45/events?" + _q(since=since, until=until, filters=filters))


@SETTINGS
@given(
    tail=st.none() | hostile_time,
    since=st.none() | hostile_time,
    until=st.none() | hostile_time,
    ts=st.none() | hostile_time,
)
def test_hostile_log_queries(
    api: Api, tail: str | None, since: str | None, until: str | None, ts: str | None
) -> None:
    api.check(
        "GET",
        "/v1.45/containers/fuzz-target/logs?"
        + _q(stdout=1, stderr=1, tail=tail, since=since, until=until, timestamps=ts),
    )


def _tar(name: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo(name or "x")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    return buf.getvalue()


archive_paths = st.sampled_from(
    [
        "/",
        "",
        "..",
        "../../..",
        "/proc/self",
        "/../../../tmp",
        "/etc/hostname",
        "/etc/hosts/x",
        "/nonexistent",
        "relative",
        "/tmp/\x00x",
        "/" + "a" * 5000,
        "//tmp//",
        "/dev/null",
        "/sys",
    ]
) | st.text(max_size=30)


@SETTINGS
@given(
    path=archive_paths,
    member=st.sampled_from(["ok.txt", "../esc", "/abs", "a/../../b", "", "./x"]),
    raw=st.none() | st.binary(max_size=64),
    no_overwrite=st.booleans(),
)
def test_hostile_archive_put(api: Api, path: str, member: str, raw: bytes | None, no_overwrite: bool) -> None:
    body = raw if raw is not None else _tar(member)
    q = _q(path=path, noOverwriteDirNonDir=int(no_overwrite))
    api.check("PUT", "/v1.45/containers/fuzz-target/archive?" + q, body, ctype="application/x-tar")
    api.check("HEAD", "/v1.45/containers/fuzz-target/archive?" + _q(path=path))
