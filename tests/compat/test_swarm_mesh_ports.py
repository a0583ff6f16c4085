"""Published ports of swarm services on two namespaced nodes (needs issue 10's services and agent): ingress
port conflicts refused in swarmkit's words at create and update, `--publish mode=host` bound on the node that
runs each task, UDP through the routing mesh end to end (an echo of the task's hostname), and a UDP client
that keeps its source port moved to the new task when the old one goes (stale conntrack flows flushed)."""

from __future__ import annotations

import json
import socket
import subprocess

from conftest import GoraeDaemon, wait_for
from test_swarm_mesh import HTTPD, _curl
from test_swarm_network import cluster  # noqa: F401 - `cluster` is a fixture

# a UDP echo of the container's hostname; busybox has no UDP server, so the host's python is mounted in
UDP_ECHO = (
    "import socket\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "s.bind(('', 9053))\n"
    "h = socket.gethostname().encode()\n"
    "while True:\n"
    "    _, a = s.recvfrom(512)\n"
    "    s.sendto(h, a)\n"
)
PYTHON_MOUNTS = [
    arg
    for src in ("/usr", "/lib", "/lib64")
    for arg in ("--mount", f"type=bind,source={src},target={src},readonly")
]

# a UDP client in a node's namespace: sends from `sport` until an answer comes; prints it
UDP_ASK = (
    "import socket, sys\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('', int(sys.argv[3])))\n"
    "s.settimeout(1)\n"
    "s.sendto(b'hi', (sys.argv[1], int(sys.argv[2])))\n"
    "print(s.recvfrom(512)[0].decode())\n"
)


def _udp(ns: str, host: str, port: int, sport: int = 0) -> str:
    """The answer to one datagram ("" without one within a second)."""
    r = subprocess.run(
        ["nsenter", f"--net=/run/netns/{ns}", "python3", "-c", UDP_ASK, host, str(port), str(sport)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return r.stdout.strip() if r.returncode == 0 else ""


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def _hosts(d: GoraeDaemon, service: str) -> set[str]:
    out = d.docker("ps", "-q", "--filter", f"label=com.docker.swarm.service.name={service}").stdout
    return {cid[:12] for cid in out.split()}


def test_conflicts_host_mode_and_udp_through_the_mesh(
    cluster: tuple[GoraeDaemon, GoraeDaemon, list[tuple[str, str]]],  # noqa: F811 - the fixture
) -> None:
    manager, worker, [(ns1, addr1), (ns2, addr2)] = cluster
    web_id = manager.docker(
        "service", "create", "-d", "-q", "--no-resolve-image", "--name", "web", "-p", "8080:80",
        "busybox", "sh", "-c", HTTPD,
    ).stdout.strip()  # fmt: skip
    refusal = (
        f"Error response from daemon: rpc error: code = InvalidArgument desc = port '8080' is already in use "
        f"by service 'web' ({web_id}) as an ingress port\n"
    )
    r = manager.docker(
        "service", "create", "-d", "--no-resolve-image", "--name", "other", "-p", "8080:80", "busybox",
        "sleep", "1d", check=False,
    )  # fmt: skip
    assert (r.returncode, r.stderr) == (1, refusal)
    manager.docker(
        "service", "create", "-d", "--no-resolve-image", "--name", "other", "-p", "8081:80", "busybox",
        "sleep", "1d",
    )  # fmt: skip
    # the managers fill Endpoint.Ports in (a new version of the service, as swarmkit's allocator makes): an
    # update read before that would be "out of sequence"
    wait_for(
        lambda: (
            manager.docker("service", "inspect", "-f", "{{json .Endpoint.Ports}}", "other").stdout.strip()
            != "null"
        ),
        timeout=15,
    )
    r = manager.docker("service", "update", "-d", "--publish-add", "8080:80", "other", check=False)
    assert (r.returncode, r.stderr) == (1, refusal)
    ports = json.loads(
        manager.docker("service", "inspect", "-f", "{{json .Spec.EndpointSpec.Ports}}", "other").stdout
    )
    assert [p["PublishedPort"] for p in ports] == [8081]  # the refused update changed nothing
    wait_for(
        lambda: (
            manager.docker("service", "inspect", "-f", "{{json .Endpoint.Ports}}", "web").stdout.strip()
            != "null"
        ),
        timeout=15,
    )
    manager.docker("service", "update", "-d", "--publish-add", "8082:80", "web")  # its own: fine
    manager.docker("service", "rm", "other")

    # UDP 8080 is another port than TCP 8080: a UDP echo through the mesh, on both nodes
    manager.docker(
        "service", "create", "-d", "--no-resolve-image", "--name", "echo", "-p", "8080:9053/udp",
        *PYTHON_MOUNTS, "busybox", "/usr/bin/python3", "-c", UDP_ECHO,
    )  # fmt: skip
    wait_for(lambda: len(_hosts(manager, "echo") | _hosts(worker, "echo")) == 1, timeout=60)
    first = next(iter(_hosts(manager, "echo") | _hosts(worker, "echo")))
    wait_for(lambda: _udp(ns1, "127.0.0.1", 8080) == first, timeout=20)
    for ns, host in ((ns1, "127.0.0.1"), (ns2, "127.0.0.1"), (ns2, addr1), (ns1, addr2)):
        assert _udp(ns, host, 8080) == first, (ns, host)
    # a client that keeps its source port: its flow stays in conntrack as long as it sends; when the task is
    # replaced, the flow to the old task's address is flushed and the next datagram reaches the new task
    sport = _free_udp_port()
    for ns in (ns1, ns2):
        assert _udp(ns, "127.0.0.1", 8080, sport) == first
    manager.docker("service", "update", "-d", "--force", "echo")

    def replacement() -> str | None:
        now = _hosts(manager, "echo") | _hosts(worker, "echo")
        return next(iter(now)) if len(now) == 1 and first not in now else None

    second = wait_for(replacement, timeout=60)
    for ns in (ns1, ns2):
        wait_for(lambda ns=ns: _udp(ns, "127.0.0.1", 8080, sport) == second, timeout=20)
    assert replacement() == second, manager.docker("service", "ps", "echo").stdout
    manager.docker("service", "rm", "echo")

    # --publish mode=host: each node's own task answers on that node's port 8090, no routing mesh
    manager.docker(
        "service", "create", "-d", "--no-resolve-image", "--name", "hm", "--mode", "global",
        "--publish", "mode=host,target=80,published=8090", "busybox", "sh", "-c", HTTPD,
    )  # fmt: skip
    wait_for(lambda: len(_hosts(manager, "hm")) == 1 and len(_hosts(worker, "hm")) == 1, timeout=60)
    for d, ns, addr in ((manager, ns1, addr1), (worker, ns2, addr2)):
        (cid,) = _hosts(d, "hm")
        wait_for(lambda ns=ns, addr=addr: _curl(ns, f"http://{addr}:8090/").returncode == 0, timeout=20)
        for _ in range(5):
            assert _curl(ns, f"http://{addr}:8090/").stdout.strip() == cid
        assert d.docker("port", cid).stdout == "80/tcp -> 0.0.0.0:8090\n"
    endpoint = json.loads(manager.docker("service", "inspect", "-f", "{{json .Endpoint.Ports}}", "hm").stdout)
    assert endpoint == [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8090, "PublishMode": "host"}]
    # a host-mode port added alone re-creates the tasks (swarmkit's dirty endpoint): new containers on both
    # ports of each node
    before = _hosts(manager, "hm") | _hosts(worker, "hm")
    manager.docker("service", "update", "-d", "--publish-add", "mode=host,target=80,published=8091", "hm")

    def renewed(d: GoraeDaemon) -> bool:
        now = _hosts(d, "hm")
        return len(now) == 1 and not now & before

    wait_for(lambda: renewed(manager) and renewed(worker), timeout=90)
    for d, ns, addr in ((manager, ns1, addr1), (worker, ns2, addr2)):
        (cid,) = _hosts(d, "hm")
        for port in (8090, 8091):
            wait_for(
                lambda ns=ns, a=addr, p=port, c=cid: _curl(ns, f"http://{a}:{p}/").stdout.strip() == c,
                timeout=20,
            )
    manager.docker("service", "rm", "hm", "web")
    for d in (manager, worker):
        wait_for(lambda d=d: d.docker("ps", "-aq").stdout == "", timeout=30)
