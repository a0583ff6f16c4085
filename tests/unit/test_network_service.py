"""NetworkController with the bridge driver against the real kernel: namespaces, veths on a test bridge,
DNAT'd published ports, the embedded DNS, restart idempotency, and cleanup that leaves no link, rule,
namespace or held port behind.

Every test uses its own bridge names (gt/gu/gv + random hex), its own chain prefix (GORAE-<RAND>) and a
random 10.213-250.x subnet, and asserts in teardown that all of them are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import random
import secrets
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest

from gorae.errors import Conflict, Forbidden, InvalidParameter, NotFound, SystemError_
from gorae.network.controller import NetworkController
from gorae.network.kernel import netlink, netns
from gorae.network.names import NetworkNames
from gorae.network.portmap import iptables
from gorae.network.types import EndpointRequest, NetworkOptions
from gorae.store.metadata import MetadataStore

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and iptables")


class Env:
    def __init__(self, tmp: str) -> None:
        rand = secrets.token_hex(3)
        self.rand = rand
        self.tmp = tmp
        self.third = random.randint(213, 250)
        self.meta_path = os.path.join(tmp, "meta.db")
        self.meta = MetadataStore(self.meta_path)
        self.exec_root = os.path.join(tmp, "run")
        self.cfg = NetworkOptions(
            bip=f"10.{self.third}.{random.randint(0, 127)}.1/24",
            fixed_cidr=None,
            default_address_pools=[{"base": f"10.{self.third}.128.0/17", "size": 24}],
            iptables=True,
            ip_forward=False,
            ip_masq=True,
        )
        self.names = NetworkNames(
            bridge=f"gt{rand}",
            user_bridge_prefix=f"gu{rand}",
            veth_prefix=f"gv{rand[:4]}",
            chain_prefix=f"GORAE-{rand.upper()}",
        )
        self.procs: list[subprocess.Popen[bytes]] = []
        self.svc = self.new_service()

    def new_service(self) -> NetworkController:
        return NetworkController(self.meta, self.exec_root, self.cfg, self.names)

    def leftovers(self) -> list[str]:
        out = []
        for name in netlink.list_links():
            if name.startswith((f"gt{self.rand}", f"gu{self.rand}", f"gv{self.rand[:4]}")):
                out.append(f"link {name}")
        for table in ("nat", "filter"):
            for line in iptables.dump(table).splitlines():
                if self.names.chain_prefix in line:
                    out.append(f"{table}: {line}")
        nsdir = os.path.join(self.exec_root, "netns")
        if os.path.isdir(nsdir):
            out += [f"netns {n}" for n in os.listdir(nsdir)]
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            out += [f"mount {line.split()[4]}" for line in f if self.tmp in line.split()[4]]
        return out

    def spawn(self, netns_path: str, *argv: str) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(
            ["nsenter", f"--net={netns_path}", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.procs.append(p)
        return p

    async def cleanup(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait()
        await self.svc.purge()
        netns.release_dir(os.path.join(self.exec_root, "netns"))
        self.meta.close()


@contextlib.asynccontextmanager
async def network_env() -> AsyncIterator[Env]:
    with tempfile.TemporaryDirectory(prefix="gnet") as tmp:
        env = Env(tmp)
        try:
            await env.svc.init()
            yield env
        finally:
            await env.cleanup()
            left = env.leftovers()
            assert left == [], left


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def sh(netns_path: str, *argv: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["nsenter", f"--net={netns_path}", *argv], capture_output=True, text=True, timeout=timeout
    )


async def ash(netns_path: str, *argv: str, timeout: float = 20) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        "nsenter",
        f"--net={netns_path}",
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode or 0, out.decode()


def http_get(host: str, port: int, timeout: float = 5) -> str:
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data.decode(errors="replace")


def wait_port(host: str, port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def host_address() -> str:
    """A non-loopback IPv4 address of this machine."""
    out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        words = line.split()
        dev, addr = words[1], words[3].split("/")[0]
        if not addr.startswith("127.") and not dev.startswith(("gt", "gu", "br-", "docker", "gorae")):
            return addr
    pytest.skip("no non-loopback IPv4 address")


def req(
    container_id: str,
    name: str,
    hostname: str,
    network_mode: str = "default",
    endpoints_config: dict[str, Any] | None = None,
    port_bindings: dict[str, Any] | None = None,
    publish_all: bool = False,
    exposed_ports: Iterable[str] = (),
    **kw: Any,
) -> EndpointRequest:
    """An EndpointRequest in the order `docker run` options are usually written."""
    return EndpointRequest(
        container_id,
        name,
        hostname,
        network_mode,
        endpoints_config or {},
        port_bindings or {},
        publish_all,
        list(exposed_ports),
        **kw,
    )


def cid() -> str:
    return secrets.token_hex(32)


def test_default_networks_and_ping_between_namespaces() -> None:
    async def main() -> None:
        async with network_env() as env:
            svc = env.svc
            names = sorted(n["Name"] for n in svc.list({}))
            assert names == ["bridge", "host", "none"]
            br = svc.inspect("bridge")
            assert br["IPAM"]["Config"] == [
                {"Subnet": f"10.{env.third}.{env.cfg.bip.split('.')[2]}.0/24", "Gateway": env.cfg.bip[:-3]}
            ]
            assert br["Options"]["com.docker.network.bridge.name"] == env.names.bridge
            a, b = cid(), cid()
            na = await svc.setup_container(req(a, "/alpha", "alpha", "default", {}, {}, False, {}))
            nb = await svc.setup_container(req(b, "beta", "beta", "bridge", {}, {}, False, {}))
            ipa, ipb = na.settings["IPAddress"], nb.settings["IPAddress"]
            assert ipa != ipb and ipa.startswith(f"10.{env.third}.")
            assert na.settings["Networks"]["bridge"]["IPAddress"] == ipa
            assert na.settings["Gateway"] == env.cfg.bip[:-3]
            assert na.settings["MacAddress"] == netlink.mac_for_ip(ipa)
            assert na.netns_path == os.path.join(env.exec_root, "netns", a)
            assert f"{ipa}\talpha\n" in na.hosts
            assert "nameserver 127.0.0.11" not in na.resolv_conf
            links = {link["name"]: link["addrs"] for link in netlink.links_in_netns(na.netns_path)}
            assert links["eth0"] == [f"{ipa}/24"] and "lo" in links
            r = sh(na.netns_path, "busybox", "ping", "-c1", "-W3", ipb)
            assert r.returncode == 0, r.stdout + r.stderr
            r = sh(na.netns_path, "busybox", "ping", "-c1", "-W3", env.cfg.bip[:-3])
            assert r.returncode == 0, r.stdout + r.stderr
            insp = svc.inspect("bridge")
            assert set(insp["Containers"]) == {a, b}
            assert insp["Containers"][a]["Name"] == "alpha"
            assert insp["Containers"][a]["IPv4Address"] == f"{ipa}/24"
            await svc.teardown_container(a)
            await svc.settle()  # the kernel part of a teardown runs in the background
            assert not os.path.exists(na.netns_path)
            assert set(svc.inspect("bridge")["Containers"]) == {b}
            await svc.teardown_container(a)  # idempotent

    run(main())


def test_published_port_from_loopback_and_host_address() -> None:
    async def main() -> None:
        async with network_env() as env:
            svc = env.svc
            www = os.path.join(env.tmp, "www")
            os.makedirs(www)
            with open(os.path.join(www, "index.html"), "w") as f:
                f.write("hello from gorae\n")
            c = cid()
            net = await svc.setup_container(req(
                c,
                "web",
                "web",
                "bridge",
                {},
                {"8080/tcp": [{"HostIp": "", "HostPort": ""}]},
                False,
                {"8080/tcp": {}, "9999/udp": {}},
            ))
            ports = net.settings["Ports"]
            assert ports["9999/udp"] is None
            [binding] = ports["8080/tcp"]
            assert binding["HostIp"] == "0.0.0.0" and isinstance(binding["HostPort"], str)
            hport = int(binding["HostPort"])
            lo, hi = (int(x) for x in open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
            assert lo <= hport <= hi
            assert svc.port_map(c) == {"8080/tcp": [binding]}
            env.spawn(net.netns_path, "busybox", "httpd", "-f", "-p", "8080", "-h", www)
            wait_port(net.settings["IPAddress"], 8080)
            assert "hello from gorae" in http_get("127.0.0.1", hport)
            assert "hello from gorae" in http_get(host_address(), hport)
            # a second container reaches it through the host address (hairpin through the bridge)
            c2 = cid()
            n2 = await svc.setup_container(req(c2, "client", "client", "bridge", {}, {}, False, {}))
            rc, out = await ash(
                n2.netns_path, "busybox", "wget", "-q", "-O-", f"http://{host_address()}:{hport}/"
            )
            assert rc == 0 and "hello from gorae" in out, out
            # the port is held: binding it fails, as does publishing it again
            with pytest.raises(OSError), socket.socket() as s:
                s.bind(("0.0.0.0", hport))
            with pytest.raises(
                SystemError_, match=f"Bind for 0.0.0.0:{hport} failed: port is already allocated"
            ):
                await svc.setup_container(req(
                    cid(),
                    "dup",
                    "dup",
                    "bridge",
                    {},
                    {"80/tcp": [{"HostIp": "", "HostPort": str(hport)}]},
                    False,
                    {},
                ))
            nat = iptables.dump("nat")
            assert f"--dport {hport} -j DNAT --to-destination {net.settings['IPAddress']}:8080" in nat
            await svc.teardown_container(c)
            assert f"--dport {hport} " not in iptables.dump("nat")
            with socket.socket() as s:
                s.bind(("0.0.0.0", hport))  # released

    run(main())


def test_taken_host_port_is_a_clear_error_and_leaves_nothing() -> None:
    async def main() -> None:
        async with network_env() as env:
            blocker = socket.socket()
            blocker.bind(("0.0.0.0", 0))
            blocker.listen(1)
            port = blocker.getsockname()[1]
            try:
                c = cid()
                with pytest.raises(SystemError_) as ei:
                    await env.svc.setup_container(req(
                        c,
                        "web",
                        "web",
                        "bridge",
                        {},
                        {
                            "80/tcp": [{"HostIp": "", "HostPort": "18080"}],
                            "81/tcp": [{"HostPort": str(port)}],
                        },
                        False,
                        {},
                    ))
                assert f"Bind for 0.0.0.0:{port} failed: port is already allocated" in ei.value.message
                assert "driver failed programming external connectivity on endpoint web" in ei.value.message
                assert env.svc.state.sandboxes == {} and env.svc.state.endpoints == {}
                assert env.svc.ports.held() == []
                assert os.listdir(os.path.join(env.exec_root, "netns")) == []
                assert [ln for ln in netlink.list_links() if ln.startswith(env.names.veth_prefix)] == []
                bridge_id = env.svc.inspect("bridge")["Id"]
                assert set(env.svc.ipam.allocated(bridge_id).values()) == {"gateway"}
            finally:
                blocker.close()

    run(main())


def test_user_network_embedded_dns_aliases_and_isolation() -> None:
    async def main() -> None:
        async with network_env() as env:
            svc = env.svc
            sub = f"10.{env.third}.{random.randint(200, 250)}.0/24"
            res = svc.create("appnet", subnet=sub, labels={"a": "b"})
            assert res["Warning"] == "" and len(res["Id"]) == 64
            with pytest.raises(Conflict, match="network with name appnet already exists"):
                svc.create("appnet")
            with pytest.raises(Forbidden, match="Pool overlaps"):
                svc.create("other", subnet=sub)
            db, web = cid(), cid()
            ndb = await svc.setup_container(req(
                db, "db", "db", "appnet", {"appnet": {"Aliases": ["database"]}}, {}, False, {}
            ))
            nweb = await svc.setup_container(req(
                web,
                "web",
                "web",
                "appnet",
                {"appnet": {"IPAMConfig": {"IPv4Address": sub[:-4] + "77"}}},
                {},
                False,
                {},
            ))
            assert nweb.settings["Networks"]["appnet"]["IPAddress"] == sub[:-4] + "77"
            assert nweb.settings["IPAddress"] == ""  # top-level fields are for the default bridge only
            assert ndb.settings["Networks"]["appnet"]["DNSNames"] == ["db", db[:12], "database"]
            assert "nameserver 127.0.0.11" in nweb.resolv_conf
            dbip = ndb.settings["Networks"]["appnet"]["IPAddress"]
            for name in ("db", "database", db[:12]):
                rc, out = await ash(nweb.netns_path, "busybox", "nslookup", name, "127.0.0.11")
                assert rc == 0 and dbip in out, out
            rc, out = await ash(nweb.netns_path, "busybox", "ping", "-c1", "-W3", dbip)
            assert rc == 0, out
            rc, out = await ash(
                nweb.netns_path, "busybox", "nslookup", "nonexistent-gorae-name.invalid", "127.0.0.11"
            )
            assert dbip not in out
            # a container on the default bridge is isolated from appnet and cannot resolve db
            other = cid()
            nother = await svc.setup_container(req(other, "other", "other", "bridge", {}, {}, False, {}))
            rc, _ = await ash(nother.netns_path, "busybox", "ping", "-c1", "-W1", dbip)
            assert rc != 0
            # connect it: now it resolves and reaches db
            st = await svc.connect("appnet", other, aliases=["late"])
            assert st["Networks"]["appnet"]["IPAddress"]
            rc, out = await ash(nother.netns_path, "busybox", "nslookup", "db", "127.0.0.11")
            assert rc == 0 and dbip in out, out
            rc, out = await ash(nweb.netns_path, "busybox", "nslookup", "late", "127.0.0.11")
            assert rc == 0 and st["Networks"]["appnet"]["IPAddress"] in out, out
            with pytest.raises(Forbidden, match="already exists in network appnet"):
                await svc.connect("appnet", other)
            st = await svc.disconnect("appnet", other)
            assert list(st["Networks"]) == ["bridge"]
            with pytest.raises(Forbidden, match="has active endpoints"):
                svc.remove("appnet")
            with pytest.raises(Forbidden, match="pre-defined network"):
                svc.remove("bridge")
            assert [n["Name"] for n in svc.list({"label": ["a=b"]})] == ["appnet"]
            assert [n["Name"] for n in svc.list({"type": ["custom"]})] == ["appnet"]
            for c in (db, web, other):
                await svc.teardown_container(c)
            assert svc.prune({})["NetworksDeleted"] == ["appnet"]
            with pytest.raises(NotFound, match="network appnet not found"):
                svc.inspect("appnet")

    run(main())


def test_internal_network_has_no_default_route() -> None:
    async def main() -> None:
        async with network_env() as env:
            sub = f"10.{env.third}.{random.randint(200, 250)}.0/24"
            env.svc.create("inner", subnet=sub, internal=True, ip_range=sub[:-4] + "128/25")
            c = cid()
            n = await env.svc.setup_container(req(c, "x", "x", "inner", {}, {}, False, {}))
            ip = n.settings["Networks"]["inner"]["IPAddress"]
            assert int(ip.rsplit(".", 1)[1]) >= 128
            r = sh(n.netns_path, "ip", "route")
            assert "default" not in r.stdout
            assert f"-A {env.names.chain_prefix}-FORWARD -i " in iptables.dump("filter")

    run(main())


def test_restart_rebuilds_rules_and_keeps_allocations() -> None:
    async def main() -> None:
        async with network_env() as env:
            svc = env.svc
            c = cid()
            n = await svc.setup_container(req(
                c,
                "web",
                "web",
                "bridge",
                {},
                {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]},
                False,
                {},
            ))

            def ours() -> list[str]:
                return [
                    ln
                    for t in ("nat", "filter")
                    for ln in iptables.dump(t).splitlines()
                    if env.names.chain_prefix in ln
                ]

            before = ours()
            # simulate kill -9: drop the service object without cleanup (sockets close with it)
            await svc.close()
            env.svc = env.new_service()
            await env.svc.init()
            await env.svc.init()  # twice: idempotent
            assert ours() == before
            assert env.svc.network_settings(c)["Ports"] == n.settings["Ports"]
            c2 = cid()
            n2 = await env.svc.setup_container(req(c2, "web2", "web2", "bridge", {}, {}, False, {}))
            assert n2.settings["IPAddress"] != n.settings["IPAddress"]

    run(main())


def test_modes_host_none_container_and_links() -> None:
    async def main() -> None:
        async with network_env() as env:
            svc = env.svc
            h = await svc.setup_container(req(cid(), "h", "h", "host", {}, {}, False, {}))
            assert h.netns_path is None and "host" in h.settings["Networks"]
            none_id = cid()
            nn = await svc.setup_container(req(none_id, "n", "n", "none", {}, {}, False, {}))
            assert [link["name"] for link in netlink.links_in_netns(nn.netns_path)] == ["lo"]
            db = cid()
            ndb = await svc.setup_container(req(
                db,
                "db",
                "db",
                "bridge",
                {},
                {},
                False,
                {"3306/tcp": {}},
                env=["MYSQL_ROOT_PASSWORD=x", "PATH=/bin"],
            ))
            web = cid()
            nweb = await svc.setup_container(req(
                web,
                "web",
                "web",
                "bridge",
                {},
                {},
                False,
                {},
                links=["db:mysql"],
                extra_hosts=["gw:10.0.0.1"],
                dns=["1.1.1.1"],
                dns_search=["example.com"],
                mac_address="02:42:aa:bb:cc:dd",
            ))
            ip = ndb.settings["IPAddress"]
            assert f"{ip}\tmysql {db[:12]} db\n" in nweb.hosts
            assert "10.0.0.1\tgw\n" in nweb.hosts
            assert "nameserver 1.1.1.1" in nweb.resolv_conf and "search example.com" in nweb.resolv_conf
            assert nweb.settings["MacAddress"] == "02:42:aa:bb:cc:dd"
            assert f"MYSQL_PORT=tcp://{ip}:3306" in nweb.link_env
            assert f"MYSQL_PORT_3306_TCP_ADDR={ip}" in nweb.link_env
            assert "MYSQL_ENV_MYSQL_ROOT_PASSWORD=x" in nweb.link_env
            assert "MYSQL_NAME=/web/mysql" in nweb.link_env
            assert not any(e.startswith("MYSQL_ENV_PATH") for e in nweb.link_env)
            assert nweb.settings["Networks"]["bridge"]["Links"] == ["/db:/web/mysql"]
            shared = await svc.setup_container(req(
                cid(), "side", "side", f"container:{web[:10]}", {}, {}, False, {}
            ))
            assert shared.netns_path == nweb.netns_path
            with pytest.raises(InvalidParameter, match="user defined networks only"):
                await svc.setup_container(req(
                    cid(),
                    "bad",
                    "bad",
                    "bridge",
                    {"bridge": {"IPAMConfig": {"IPv4Address": "10.1.1.1"}}},
                    {},
                    False,
                    {},
                ))
            with pytest.raises(NotFound, match="network nosuchnet not found"):
                await svc.setup_container(req(cid(), "bad", "bad", "nosuchnet", {}, {}, False, {}))
            with pytest.raises(InvalidParameter, match="not a valid mac address"):
                await svc.setup_container(req(cid(), "bad", "bad", "bridge", {}, {}, False, {}, mac_address="zz"))

    run(main())


def test_default_pool_publish_all_and_events() -> None:
    async def main() -> None:
        async with network_env() as env:
            await env.svc.purge()  # start over without --bip: the subnet comes from the pools
            env.meta.delete("network", env.svc.state.find_network("bridge")["Id"])
            env.cfg = dataclasses.replace(env.cfg, bip=None)
            events: list[tuple[str, str, str, dict[str, str]]] = []
            env.svc = env.new_service()
            env.svc.publish = lambda *a: events.append(a)
            await env.svc.init()
            subnet = env.svc.inspect("bridge")["IPAM"]["Config"][0]["Subnet"]
            assert subnet.startswith(f"10.{env.third}.") and subnet.endswith(".0/24")
            c = cid()
            n = await env.svc.setup_container(req(
                c, "p", "p", "bridge", {}, {}, True, {"80/tcp": {}, "53/udp": {}}
            ))
            assert set(n.settings["Ports"]) == {"80/tcp", "53/udp"}
            assert all(len(v) == 1 and v[0]["HostPort"].isdigit() for v in n.settings["Ports"].values())
            assert [(e[0], e[1]) for e in events] == [("network", "connect")]
            assert events[0][3]["container"] == c
            await env.svc.teardown_container(c)
            assert [(e[0], e[1]) for e in events][-1] == ("network", "disconnect")

    run(main())
