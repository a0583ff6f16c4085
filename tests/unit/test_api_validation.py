"""Issue 15 item 7 (the security review's "Other 500s and validation gaps"): every hostile value below was a 500
with a Python message, or was accepted at create and failed at start with a runc error; each is now a 400 at
create with dockerd's text (checked against dockerd where it has one), and the daemon logs no traceback."""

from __future__ import annotations

import http.client
import io
import json
import socket
import tarfile
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import GoraeDaemon


class _Conn(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=60)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(60)
        self.sock.connect(self._path)


class Api:
    def __init__(self, d: GoraeDaemon) -> None:
        self.d = d
        self.cleanup: list[str] = []

    def call(self, method: str, target: str, body: Any = None) -> tuple[int, Any]:
        conn = _Conn(self.d.socket)
        try:
            raw = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
            conn.request(method, target, body=raw, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            doc = json.loads(data) if data.strip().startswith((b"{", b"[")) else data
            if resp.status == 201 and target.startswith("/v1.45/containers/create"):
                self.cleanup.append(f"/v1.45/containers/{doc['Id']}?force=1")
            return resp.status, doc
        finally:
            conn.close()

    def create(self, host_config: dict[str, Any] | None = None, **config: Any) -> tuple[int, Any]:
        body = {"Image": "busybox", "Cmd": ["true"], **config}
        if host_config is not None:
            body["HostConfig"] = host_config
        return self.call("POST", "/v1.45/containers/create", body)


@pytest.fixture(scope="module")
def api(gorae_daemon: GoraeDaemon) -> Iterator[Api]:
    a = Api(gorae_daemon)
    log_before = len(gorae_daemon.log())
    try:
        yield a
    finally:
        for target in a.cleanup:
            a.call("DELETE", target)
        tail = gorae_daemon.log()[log_before:]
        assert "Traceback" not in tail and "level=ERROR" not in tail, tail[-4000:]


def _unmarshal(kind: str, field: str, gotype: str) -> str:
    return f"json: cannot unmarshal {kind} into Go struct field {field} of type {gotype}"


NESTED_TYPES = [
    (
        {"HostConfig": {"LogConfig": {"Type": "json-file", "Config": True}}},
        _unmarshal("bool", "LogConfig.HostConfig.LogConfig.Config", "map[string]string"),
    ),
    (
        {"HostConfig": {"LogConfig": {"Config": {"max-size": 1}}}},
        _unmarshal("number", "LogConfig.HostConfig.LogConfig.Config", "string"),
    ),
    (
        {"HostConfig": {"PortBindings": {"80/tcp": "x"}}},
        _unmarshal("string", "HostConfig.HostConfig.PortBindings", "[]nat.PortBinding"),
    ),
    (
        {"HostConfig": {"PortBindings": {"80/tcp": ["x"]}}},
        _unmarshal("string", "HostConfig.HostConfig.PortBindings", "nat.PortBinding"),
    ),
    (
        {"HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": 80}]}}},
        _unmarshal("number", "PortBinding.HostConfig.PortBindings.HostPort", "string"),
    ),
    (
        {"NetworkingConfig": {"EndpointsConfig": {"bridge": True}}},
        _unmarshal("bool", "NetworkingConfig.NetworkingConfig.EndpointsConfig", "network.EndpointSettings"),
    ),
    (
        {"NetworkingConfig": {"EndpointsConfig": {"bridge": {"Aliases": True}}}},
        _unmarshal("bool", "EndpointSettings.NetworkingConfig.EndpointsConfig.Aliases", "[]string"),
    ),
    (
        {"HostConfig": {"Mounts": [{"Type": "volume", "Source": 1, "Target": "/x"}]}},
        _unmarshal("number", "Mount.HostConfig.Mounts.Source", "string"),
    ),
    (
        {"HostConfig": {"Mounts": [{"Type": "volume", "Target": True}]}},
        _unmarshal("bool", "Mount.HostConfig.Mounts.Target", "string"),
    ),
    (
        {"HostConfig": {"Mounts": [{"Type": "volume", "Target": "/x", "VolumeOptions": True}]}},
        _unmarshal("bool", "Mount.HostConfig.Mounts.VolumeOptions", "mount.VolumeOptions"),
    ),
    (
        {"HostConfig": {"BlkioWeight": 99999}},
        _unmarshal("number 99999", "HostConfig.HostConfig.BlkioWeight", "uint16"),
    ),
    (
        {"StopTimeout": 2**63},
        _unmarshal("number 9223372036854775808", "ContainerConfigWrapper.StopTimeout", "int"),
    ),
    (
        {"HostConfig": {"Ulimits": [{"Name": "nofile", "Soft": 2**64, "Hard": 1}]}},
        _unmarshal("number 18446744073709551616", "Ulimit.HostConfig.Ulimits.Soft", "int64"),
    ),
    (
        {"HostConfig": {"RestartPolicy": {"Name": "always", "MaximumRetryCount": 1.5}}},
        _unmarshal("number 1.5", "RestartPolicy.HostConfig.RestartPolicy.MaximumRetryCount", "int"),
    ),
]


@pytest.mark.parametrize("body,message", NESTED_TYPES)
def test_wrongly_typed_nested_create_fields_are_400s(api: Api, body: dict[str, Any], message: str) -> None:
    status, doc = api.create(**body)
    assert (status, doc) == (400, {"message": message})


def test_long_volume_names_are_400s_not_enametoolong(api: Api) -> None:
    for name in ("a" * 300, "a" * 100_000):
        status, doc = api.call("POST", "/v1.45/volumes/create", {"Name": name})
        assert status == 400 and "volume name is too long" in doc["message"], doc
        for hc in (
            {"Binds": [f"{name}:/x"]},
            {"Mounts": [{"Type": "volume", "Source": name, "Target": "/x"}]},
        ):
            status, doc = api.create(hc)
            assert status == 400 and "volume name is too long" in doc["message"], doc
    status, doc = api.call("POST", "/v1.45/volumes/create", {"Name": "a" * 255})
    assert status == 201, doc
    assert api.call("DELETE", "/v1.45/volumes/" + "a" * 255)[0] == 204


@pytest.mark.parametrize(
    "body,message",
    [
        ({"Name": 1}, _unmarshal("number", "CreateOptions.Name", "string")),
        ({"Name": "vv", "Labels": {"a": 1}}, _unmarshal("number", "CreateOptions.Labels", "string")),
        ({"DriverOpts": True}, _unmarshal("bool", "CreateOptions.DriverOpts", "map[string]string")),
    ],
)
def test_volume_create_body_types(api: Api, body: dict[str, Any], message: str) -> None:
    assert api.call("POST", "/v1.45/volumes/create", body) == (400, {"message": message})


@pytest.mark.parametrize(
    "body,message",
    [
        ({"Name": 1}, _unmarshal("number", "NetworkCreateRequest.Name", "string")),
        (
            {"Name": "nn", "IPAM": {"Config": [{"Subnet": 1}]}},
            _unmarshal("number", "IPAMConfig.IPAM.Config.Subnet", "string"),
        ),
        ({"Name": "nn", "Options": {"a": 1}}, _unmarshal("number", "NetworkCreateRequest.Options", "string")),
    ],
)
def test_network_create_body_types(api: Api, body: dict[str, Any], message: str) -> None:
    assert api.call("POST", "/v1.45/networks/create", body) == (400, {"message": message})


@pytest.mark.parametrize("opener,closer", [(b"[", b"]"), (b'{"a":', b"}")])
def test_json_nested_50000_deep_is_a_400(api: Api, opener: bytes, closer: bytes) -> None:
    raw = b'{"Image":"busybox","Labels":' + opener * 50_000 + b"1" + closer * 50_000 + b"}"
    status, doc = api.call("POST", "/v1.45/containers/create", raw)
    assert (status, doc) == (
        400,
        {"message": f"invalid character '{opener[:1].decode()}' exceeded max depth"},
    )
    assert api.call("POST", "/v1.45/volumes/create", raw)[0] == 400


def test_nan_is_not_json(api: Api) -> None:
    status, doc = api.call("POST", "/v1.45/containers/create", b'{"Image":"busybox","StopTimeout":NaN}')
    assert status == 400 and "invalid character 'N'" in doc["message"]


OUT_OF_RANGE = [
    (
        {"CpuPeriod": 1},
        "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
    ),
    (
        {"CpuPeriod": 2_000_000},
        "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
    ),
    ({"CpuQuota": 1}, "CPU cfs quota can not be less than 1ms (i.e. 1000)"),
    ({"ShmSize": -1}, "SHM size can not be less than 0"),
    ({"OomScoreAdj": 5000}, "Invalid value 5000, range for oom score adj is [-1000, 1000]"),
    ({"OomScoreAdj": -5000}, "Invalid value -5000, range for oom score adj is [-1000, 1000]"),
    ({"BlkioWeight": 5}, "Range of blkio weight is from 10 to 1000"),
    ({"CpusetCpus": "0-99999"}, "Invalid value 0-99999 for cpuset cpus: value of out range, maximum is 8192"),
    ({"CpusetCpus": "x"}, "Invalid value x for cpuset cpus: invalid format: x"),
    ({"CpusetMems": "0-99999"}, "Invalid value 0-99999 for cpuset mems: value of out range, maximum is 8192"),
    ({"CpusetCpus": "8000"}, "Requested CPUs are not available - requested 8000, available: "),
    (
        {"Ulimits": [{"Name": "nofile", "Soft": -1, "Hard": 10}]},
        "ulimit soft limit must be less than or equal to hard limit: -1 > 10",
    ),
    ({"Ulimits": [{"Name": "bogus", "Soft": 1, "Hard": 1}]}, "invalid ulimit type: bogus"),
    (
        {"Ulimits": [{"Name": "nofile", "Soft": -1, "Hard": -1}]},
        "invalid ulimit nofile: -1 is above the kernel's",
    ),
    ({"Tmpfs": {"/t": "size=-5"}}, 'invalid tmpfs option "size=-5" for /t'),
    ({"Tmpfs": {"t": ""}}, "invalid mount path: 't' mount path must be absolute"),
    ({"Sysctls": {"vm.swappiness": "1"}}, 'sysctl "vm.swappiness" is not in a separate kernel namespace'),
    ({"Sysctls": {"kernel.panic": "1"}}, 'sysctl "kernel.panic" is not in a separate kernel namespace'),
    ({"PidsLimit": 2**62}, f"invalid PidsLimit {2**62}: the maximum is 4194304"),
    # accepted and ignored before: namespace modes, runtimes, devices, extra hosts, DNS servers
    ({"IpcMode": "bogus"}, "invalid IPC mode: bogus"),
    ({"PidMode": "bogus"}, "invalid PID mode: bogus"),
    ({"UTSMode": "bogus"}, "invalid UTS mode: bogus"),
    ({"UsernsMode": "bogus"}, "invalid USER mode: bogus"),
    ({"PidMode": "container:nope"}, "No such container: nope"),
    ({"IpcMode": "container:nope"}, "No such container: nope"),
    ({"Runtime": "/bin/sh"}, "Unknown runtime specified /bin/sh"),
    (
        {
            "Devices": [
                {"PathOnHost": "/dev/../etc/passwd", "PathInContainer": "/dev/x", "CgroupPermissions": "rwm"}
            ]
        },
        'error gathering device information while adding custom device "/dev/../etc/passwd": not a device node',
    ),
    ({"ExtraHosts": ["bad"]}, 'bad format for add-host: "bad"'),
    ({"ExtraHosts": ["h:notip"]}, 'invalid IP address in add-host: "notip"'),
    ({"Dns": ["not-an-ip"]}, "IP address is not correctly formatted: not-an-ip"),
]


@pytest.mark.parametrize("host_config,message", OUT_OF_RANGE)
def test_out_of_range_and_bogus_values_are_refused_at_create(
    api: Api, host_config: dict[str, Any], message: str
) -> None:
    status, doc = api.create(host_config)
    assert status == 400 and doc["message"].startswith(message), doc


@pytest.mark.parametrize(
    "host_config",
    [
        {"Memory": 2**62},
        {"Memory": 2**63 - 1},
        {"CpuShares": 2**62},  # dockerd lowers it to 262144
        {"Sysctls": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "1000000"}},
        {"ExtraHosts": ["h:10.0.0.1", "g=::1", "gw:host-gateway"], "Dns": ["1.1.1.1", "::1"]},
        {"Tmpfs": {"/t": "size=1m,mode=1777"}},
        {"Ulimits": [{"Name": "core", "Soft": -1, "Hard": -1}, {"Name": "nofile", "Soft": 100, "Hard": 200}]},
        {"Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/x", "CgroupPermissions": "rwm"}]},
    ],
)
def test_valid_extremes_create_and_start(api: Api, host_config: dict[str, Any]) -> None:
    status, doc = api.create(host_config)
    assert status == 201, doc
    status, out = api.call("POST", f"/v1.45/containers/{doc['Id']}/start")
    assert status == 204, out


def test_json_bodies_are_capped_uploads_are_not(api: Api) -> None:
    big = b'{"Image":"busybox","Labels":{"a":"' + b"x" * (17 * 1024 * 1024) + b'"}}'
    status, doc = api.call("POST", "/v1.45/containers/create", big)
    assert status == 413 and "request body too large" in doc["message"], doc
    ok = b'{"Image":"busybox","Cmd":["true"],"Labels":{"a":"' + b"x" * (8 * 1024 * 1024) + b'"}}'
    assert api.call("POST", "/v1.45/containers/create", ok)[0] == 201
    # an archive PUT of more than the cap is streamed through
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("big")
        info.size = 20 * 1024 * 1024
        tar.addfile(info, io.BytesIO(b"\0" * info.size))
    cid = api.cleanup[-1].split("/")[-1].split("?")[0]
    status, _ = api.call("PUT", f"/v1.45/containers/{cid}/archive?path=/tmp", buf.getvalue())
    assert status == 200


def test_uppercase_repository_names(api: Api) -> None:
    """distribution's reference grammar (what dockerd 24+ parses with): an upper-case first component is a
    registry host, so UPPER/x is legal; upper case in the path is refused."""
    for repo in ("UPPER/x", "UPPER.io/x", "UPPER:5000/x"):
        assert api.call("POST", f"/v1.45/images/busybox/tag?repo={repo}&tag=t")[0] == 201
        assert api.call("DELETE", f"/v1.45/images/{repo}:t")[0] == 200
    for repo, path in (("Upper", "library/Upper"), ("x/UPPER", "x/UPPER"), ("localhost:5000/UP/x", "UP/x")):
        status, doc = api.call("POST", f"/v1.45/images/busybox/tag?repo={repo}&tag=t")
        assert (status, doc) == (
            400,
            {"message": f"invalid reference format: repository name ({path}) must be lowercase"},
        )
