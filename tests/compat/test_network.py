"""Networks and published ports end to end, with the real docker CLI and docker-py against a gorae daemon:
the seed's recipes (`docker run -d -p 80:3000 app`, `docker network create appnet` + name resolution),
an HTTP server reached through a published port from 127.0.0.1 and from the host's other address,
`--link`, network modes, connect/disconnect, docker's exact `NetworkSettings.Ports`, bad input that changes
nothing, cleanup that leaves no veth/rule/namespace, and published ports surviving daemon restarts.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
import urllib.request

import docker
import pytest
from conftest import GoraeDaemon, inspect

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

APP_CMD = '["httpd", "-f", "-p", "3000", "-h", "/www"]'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


def port_free(port: int) -> bool:
    try:
        with socket.socket() as s:
            s.bind(("0.0.0.0", port))
        return True
    except OSError:
        return False


def host_other_address() -> str | None:
    """A non-loopback IPv4 address of this machine (eth0's)."""
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True
    )
    for line in out.stdout.splitlines():
        words = line.split()
        dev, addr = words[1], words[3].split("/")[0]
        if not dev.startswith(("g", "docker", "br-", "veth")):
            return addr
    return None


def http_get(host: str, port: int, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/", timeout=2) as r:
                return str(r.read().decode())
        except OSError as e:
            last = e
            time.sleep(0.1)
    raise AssertionError(f"no HTTP answer from {host}:{port}: {last}")


def nat_rules() -> str:
    return subprocess.run(["iptables", "-w", "-t", "nat", "-S"], capture_output=True, text=True).stdout


def links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def veths(d: GoraeDaemon) -> set[str]:
    from gorae.daemon.config import DaemonConfig
    from gorae.network.names import network_names

    prefix = network_names(DaemonConfig(exec_root=d.exec_root)).veth_prefix
    return {n for n in links() if n.startswith(prefix)}


def netns_files(d: GoraeDaemon) -> list[str]:
    nsdir = os.path.join(d.exec_root, "netns")
    return sorted(os.listdir(nsdir)) if os.path.isdir(nsdir) else []


def make_app(d: GoraeDaemon) -> None:
    """The seed's "app": busybox httpd on port 3000 serving a file (EXPOSE 3000)."""
    if d.docker("image", "inspect", "app", check=False).returncode == 0:
        return
    d.docker("rm", "-f", "appbuild", check=False)
    d.docker(
        "run",
        "--name",
        "appbuild",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /www && echo hello-from-app > /www/index.html",
    )
    d.docker("commit", "-c", f"CMD {APP_CMD}", "-c", "EXPOSE 3000", "appbuild", "app")
    d.docker("rm", "appbuild")


@pytest.fixture
def d(tidy_daemon: GoraeDaemon) -> GoraeDaemon:
    make_app(tidy_daemon)
    return tidy_daemon


# ---- published ports -----------------------------------------------------------------------------


def test_seed_recipe_run_p_80_3000_app(d: GoraeDaemon) -> None:
    """`docker run -d -p 80:3000 app` (port 80 when free, and a free high port), reached from 127.0.0.1 and
    from the host's other address; `docker port`, ps and inspect show it as docker does."""
    ports = [free_port()] + ([80] if port_free(80) else [])
    other = host_other_address()
    for port in ports:
        cid = d.docker("run", "-d", "-p", f"{port}:3000", "app").stdout.strip()
        try:
            assert http_get("127.0.0.1", port) == "hello-from-app\n"
            if other:
                assert http_get(other, port) == "hello-from-app\n"
            assert d.docker("port", cid).stdout.strip() == f"3000/tcp -> 0.0.0.0:{port}"
            assert d.docker("port", cid, "3000").stdout.strip() == f"0.0.0.0:{port}"
            ps = d.docker("ps", "--filter", f"id={cid}", "--format", "{{.Ports}}").stdout.strip()
            assert ps == f"0.0.0.0:{port}->3000/tcp"
            ns = inspect(d, cid)["NetworkSettings"]
            assert ns["Ports"] == {"3000/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(port)}]}
            assert ns["IPAddress"] and ns["Networks"]["bridge"]["IPAddress"] == ns["IPAddress"]
            assert f"--dport {port} -j DNAT --to-destination {ns['IPAddress']}:3000" in nat_rules()
            # the container's own address answers too, and another container reaches the host port
            assert http_get(ns["IPAddress"], 3000) == "hello-from-app\n"
            if other:
                out = d.docker("run", "--rm", "busybox", "wget", "-qO-", f"http://{other}:{port}/").stdout
                assert out == "hello-from-app\n"
        finally:
            d.docker("rm", "-f", cid)
        assert f"--dport {port} " not in nat_rules()
        assert port_free(port), "the host port is released with the container"


def test_ports_shape_exposed_unpublished_and_ephemeral(d: GoraeDaemon) -> None:
    cid = d.docker(
        "run", "-d", "--expose", "4000", "--expose", "5000/udp", "-p", "127.0.0.1::3000", "app"
    ).stdout.strip()
    ports = inspect(d, cid)["NetworkSettings"]["Ports"]
    assert ports["4000/tcp"] is None and ports["5000/udp"] is None
    (binding,) = ports["3000/tcp"]
    assert binding["HostIp"] == "127.0.0.1" and isinstance(binding["HostPort"], str)
    assert http_get("127.0.0.1", int(binding["HostPort"])) == "hello-from-app\n"
    c = d.client()
    try:
        summary = c.api.containers(filters={"id": cid})[0]
        assert {
            "IP": "127.0.0.1",
            "PrivatePort": 3000,
            "PublicPort": int(binding["HostPort"]),
            "Type": "tcp",
        } in summary["Ports"]
        assert {"PrivatePort": 4000, "Type": "tcp"} in summary["Ports"]
    finally:
        c.close()
    # -P publishes every exposed port on an ephemeral host port
    cid2 = d.docker("run", "-d", "-P", "app").stdout.strip()
    (b2,) = inspect(d, cid2)["NetworkSettings"]["Ports"]["3000/tcp"]
    assert http_get("127.0.0.1", int(b2["HostPort"])) == "hello-from-app\n"
    # a stopped container has no ports and no address
    d.docker("stop", "-t", "1", cid2)
    ns = inspect(d, cid2)["NetworkSettings"]
    assert ns["Ports"] == {} and ns["IPAddress"] == "" and "bridge" in ns["Networks"]
    assert d.docker("port", cid2).stdout == ""


def test_docker_py_ports_and_udp(d: GoraeDaemon) -> None:
    port = free_port()
    c = d.client()
    try:
        ct = c.containers.run("app", detach=True, ports={"3000/tcp": port, "3001/udp": ("127.0.0.1", None)})
        try:
            ct.reload()
            assert ct.ports["3000/tcp"] == [{"HostIp": "0.0.0.0", "HostPort": str(port)}]
            assert ct.ports["3001/udp"][0]["HostIp"] == "127.0.0.1"
            assert http_get("127.0.0.1", port) == "hello-from-app\n"
            assert ct.attrs["HostConfig"]["NetworkMode"] == "bridge"
        finally:
            ct.remove(force=True)
    finally:
        c.close()


def test_bad_port_input_changes_nothing(d: GoraeDaemon) -> None:
    before = d.docker("ps", "-aq").stdout
    rules = nat_rules()
    r = d.docker("run", "-d", "-p", "99999:80", "busybox", "true", check=False)
    assert r.returncode == 125 and "invalid hostPort: 99999" in r.stderr
    r = d.docker("run", "-d", "-p", "abc", "busybox", "true", check=False)
    assert r.returncode == 125 and "invalid containerPort: abc" in r.stderr
    c = d.client()
    try:
        with pytest.raises(docker.errors.APIError) as e:
            c.api.create_container(
                "busybox", "true", host_config={"PortBindings": {"80/tcp": [{"HostPort": "99999"}]}}
            )
        assert e.value.status_code == 400 and 'invalid port specification: "99999"' in str(e.value)
        with pytest.raises(docker.errors.APIError) as e:
            c.api.create_container("busybox", "true", host_config={"PortBindings": {"abc/tcp": [{}]}})
        assert e.value.status_code == 400 and "invalid port specification" in str(e.value)
    finally:
        c.close()
    r = d.docker("run", "-d", "--network", "missingnet", "busybox", "true", check=False)
    assert r.returncode == 125 and "network missingnet not found" in r.stderr
    assert d.docker("ps", "-aq").stdout == before
    assert nat_rules() == rules


def test_taken_port_fails_start_and_leaves_no_rule(d: GoraeDaemon) -> None:
    port = free_port()
    v_before, ns_before = veths(d), netns_files(d)
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("0.0.0.0", port))
        holder.listen()
        r = d.docker("run", "-d", "--name", "taken", "-p", f"{port}:3000", "app", check=False)
        assert r.returncode != 0
        assert f"Bind for 0.0.0.0:{port} failed: port is already allocated" in r.stderr
        assert (
            "Error response from daemon: driver failed programming external connectivity on endpoint taken"
            in r.stderr
        )
        assert "OCI runtime" not in r.stderr
    # docker leaves the container created (not running), and nothing of its network
    assert inspect(d, "taken")["State"]["Status"] == "created"
    assert f"--dport {port} " not in nat_rules()
    assert veths(d) == v_before and netns_files(d) == ns_before
    # a port held by another container: the same error
    cid = d.docker("run", "-d", "-p", f"{port}:3000", "app").stdout.strip()
    r = d.docker("run", "-d", "-p", f"{port}:3000", "app", check=False)
    assert "port is already allocated" in r.stderr
    assert http_get("127.0.0.1", port) == "hello-from-app\n"
    d.docker("rm", "-f", cid)


# ---- user networks, links, modes ---------------------------------------------------------------------


def test_seed_recipe_appnet_name_resolution(d: GoraeDaemon) -> None:
    """`docker network create appnet && docker run -d --network appnet --name db ... &&
    docker run --network appnet busybox ping -c1 db`."""
    netid = d.docker("network", "create", "appnet").stdout.strip()
    d.docker(
        "run",
        "-d",
        "--network",
        "appnet",
        "--name",
        "db",
        "--network-alias",
        "database",
        "busybox",
        "sleep",
        "1d",
    )
    r = d.docker("run", "--rm", "--network", "appnet", "busybox", "ping", "-c1", "-W", "5", "db")
    assert "1 packets received" in r.stdout
    r = d.docker("run", "--rm", "--network", "appnet", "busybox", "nslookup", "database")
    ip = inspect(d, "db")["NetworkSettings"]["Networks"]["appnet"]["IPAddress"]
    assert ip and ip in r.stdout
    r = d.docker("run", "--rm", "--network", "appnet", "busybox", "cat", "/etc/resolv.conf")
    assert "nameserver 127.0.0.11" in r.stdout
    info = json.loads(d.docker("network", "inspect", "appnet").stdout)[0]
    assert info["Id"] == netid and info["Driver"] == "bridge"
    assert [c["Name"] for c in info["Containers"].values()] == ["db"]
    r = d.docker("network", "rm", "appnet", check=False)
    assert r.returncode != 0 and "has active endpoints" in r.stderr
    d.docker("rm", "-f", "db")
    d.docker("network", "rm", "appnet")
    assert d.docker("network", "inspect", "appnet", check=False).returncode != 0


def test_link_env_and_hosts(d: GoraeDaemon) -> None:
    d.docker(
        "run",
        "-d",
        "--name",
        "linkdb",
        "-e",
        "MYSQL_ROOT_PASSWORD=pw",
        "--expose",
        "3306",
        "busybox",
        "sleep",
        "1d",
    )
    ip = inspect(d, "linkdb")["NetworkSettings"]["IPAddress"]
    r = d.docker(
        "run",
        "--rm",
        "--name",
        "web",
        "--link",
        "linkdb:mysql",
        "busybox",
        "sh",
        "-c",
        "env; cat /etc/hosts; ping -c1 -W5 mysql",
    )
    assert "MYSQL_NAME=/web/mysql" in r.stdout
    assert f"MYSQL_PORT_3306_TCP=tcp://{ip}:3306" in r.stdout
    assert "MYSQL_ENV_MYSQL_ROOT_PASSWORD=pw" in r.stdout
    assert f"{ip}\tmysql" in r.stdout and "1 packets received" in r.stdout


def test_network_modes(d: GoraeDaemon) -> None:
    r = d.docker("run", "--rm", "--network", "none", "busybox", "ip", "-o", "link")
    assert [line.split(":")[1].strip() for line in r.stdout.splitlines()] == ["lo"]
    r = d.docker("run", "--rm", "--network", "host", "busybox", "hostname")
    assert r.stdout.strip() == socket.gethostname()
    d.docker("run", "-d", "--name", "nsowner", "busybox", "sleep", "1d")
    ip = inspect(d, "nsowner")["NetworkSettings"]["IPAddress"]
    r = d.docker("run", "--rm", "--network", "container:nsowner", "busybox", "ip", "-4", "-o", "addr")
    assert ip in r.stdout
    r = d.docker(
        "run", "--rm", "--network", "container:nsowner", "-p", "81:80", "busybox", "true", check=False
    )
    assert "conflicting options: port publishing and the container type network mode" in r.stderr


def test_connect_disconnect_running(d: GoraeDaemon) -> None:
    d.docker("network", "create", "--subnet", "10.201.7.0/24", "cnet")
    d.docker("run", "-d", "--name", "cc", "busybox", "sleep", "1d")
    d.docker("network", "connect", "--ip", "10.201.7.50", "--alias", "ccalias", "cnet", "cc")
    ns = inspect(d, "cc")["NetworkSettings"]["Networks"]
    assert ns["cnet"]["IPAddress"] == "10.201.7.50" and "ccalias" in ns["cnet"]["Aliases"]
    r = d.docker("exec", "cc", "ip", "-4", "-o", "addr")
    assert "10.201.7.50/24" in r.stdout
    r = d.docker("run", "--rm", "--network", "cnet", "busybox", "ping", "-c1", "-W5", "ccalias")
    assert "1 packets received" in r.stdout
    d.docker("network", "disconnect", "cnet", "cc")
    assert "cnet" not in inspect(d, "cc")["NetworkSettings"]["Networks"]
    assert "10.201.7.50" not in d.docker("exec", "cc", "ip", "-4", "-o", "addr").stdout
    d.docker("rm", "-f", "cc")
    d.docker("network", "rm", "cnet")


def test_the_default_route_skips_internal_networks(d: GoraeDaemon) -> None:
    """libnetwork's gateway endpoint: the first network that can give a way out, not an internal one — at the
    start (an internal network first, another connected before the start, as compose does) and when a running
    container on an internal network only is connected to another; when the network carrying it is
    disconnected, the next takes over (dockerd 20.10 answers the same routes here; it names the interfaces in
    its own order, internal networks last)."""
    d.docker("network", "create", "--internal", "--subnet", "10.201.8.0/24", "backnet")
    d.docker("network", "create", "--subnet", "10.201.9.0/24", "frontnet")
    try:
        d.docker("create", "--name", "both", "--network", "backnet", "busybox", "sleep", "1d")
        d.docker("network", "connect", "frontnet", "both")
        d.docker("start", "both")
        assert d.docker("exec", "both", "ip", "route").stdout.startswith("default via 10.201.9.1 ")
        d.docker("run", "-d", "--name", "inside", "--network", "backnet", "busybox", "sleep", "1d")
        d.docker("network", "connect", "frontnet", "inside")
        assert d.docker("exec", "inside", "ip", "route").stdout.startswith("default via 10.201.9.1 ")
        d.docker("network", "create", "--subnet", "10.201.10.0/24", "othernet")
        d.docker("network", "connect", "othernet", "inside")  # a way out already: the route stays
        assert d.docker("exec", "inside", "ip", "route").stdout.count("default") == 1
        # the network carrying it goes: the next one that can give one takes over (as dockerd does)
        d.docker("network", "disconnect", "frontnet", "inside")
        routes = d.docker("exec", "inside", "ip", "route").stdout
        assert routes.startswith("default via 10.201.10.1 ") and routes.count("default") == 1, routes
        d.docker("network", "disconnect", "othernet", "inside")
        assert "default" not in d.docker("exec", "inside", "ip", "route").stdout
    finally:
        d.docker("rm", "-f", "both", "inside", check=False)
        d.docker("network", "rm", "backnet", "frontnet", "othernet", check=False)


def test_network_api_docker_py(d: GoraeDaemon) -> None:
    c = d.client()
    try:
        net = c.networks.create("pynet", driver="bridge", labels={"a": "b"}, internal=True)
        assert net.attrs["Internal"] is True and net.attrs["Labels"] == {"a": "b"}
        assert "pynet" in [n.name for n in c.networks.list()]
        assert [n.name for n in c.networks.list(filters={"label": "a=b"})] == ["pynet"]
        with pytest.raises(docker.errors.APIError) as e:
            c.networks.create("pynet")
        assert e.value.status_code == 409
        with pytest.raises(docker.errors.NotFound):
            c.networks.get("nonexistent-net")
        with pytest.raises(docker.errors.APIError) as e:
            c.networks.get("bridge").remove()
        assert e.value.status_code == 403
        res = c.networks.prune(filters={"label": "a=b"})
        assert res["NetworksDeleted"] == ["pynet"]
    finally:
        c.close()


def test_removal_leaves_no_veth_rule_or_netns(d: GoraeDaemon) -> None:
    v_before, ns_before = veths(d), netns_files(d)
    port = free_port()
    d.docker("network", "create", "gonenet")
    net = json.loads(d.docker("network", "inspect", "gonenet").stdout)[0]
    d.docker("run", "-d", "--name", "gone1", "-p", f"{port}:3000", "app")
    d.docker("run", "-d", "--name", "gone2", "--network", "gonenet", "busybox", "sleep", "1d")
    assert len(veths(d)) == len(v_before) + 2 and len(netns_files(d)) == len(ns_before) + 2
    d.docker("rm", "-f", "gone1", "gone2")
    d.docker("network", "rm", "gonenet")
    assert veths(d) == v_before and netns_files(d) == ns_before
    assert f"--dport {port} " not in nat_rules()
    subnet = net["IPAM"]["Config"][0]["Subnet"]
    assert subnet not in nat_rules()
    from gorae.daemon.config import DaemonConfig
    from gorae.network.names import network_names

    prefix = network_names(DaemonConfig(exec_root=d.exec_root)).user_bridge_prefix
    assert prefix + net["Id"][: 15 - len(prefix)] not in links()


# ---- restarts ---------------------------------------------------------------------------------------


def test_published_port_survives_daemon_restart_and_kill9(fresh_daemon: GoraeDaemon) -> None:
    d = fresh_daemon
    make_app(d)
    port = free_port()
    d.docker("run", "-d", "--name", "keep", "-p", f"{port}:3000", "app")
    assert http_get("127.0.0.1", port) == "hello-from-app\n"
    from gorae.daemon.config import DaemonConfig
    from gorae.network.names import network_names

    prefix = network_names(DaemonConfig(exec_root=d.exec_root)).chain_prefix

    def mine() -> list[str]:  # other daemons on this host change their own rules meanwhile
        return [line for line in nat_rules().splitlines() if prefix in line]

    rules = mine()
    d.stop()
    assert http_get("127.0.0.1", port) == "hello-from-app\n"  # the kernel forwards without the daemon
    d.start()
    assert http_get("127.0.0.1", port) == "hello-from-app\n"
    assert mine() == rules, "restart re-applies the same rules"
    d.kill9()
    d.start()
    assert http_get("127.0.0.1", port) == "hello-from-app\n"
    assert not port_free(port), "the host port is held again after the restart"
    r = d.docker("run", "-d", "-p", f"{port}:3000", "app", check=False)
    assert "port is already allocated" in r.stderr
    d.docker("rm", "-f", "keep")
    with contextlib.suppress(AssertionError):
        d.docker("container", "prune", "-f")
    assert port_free(port)
