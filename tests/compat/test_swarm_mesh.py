"""Swarm networking with services on two namespaced nodes (needs the services and agent of issue 10):
service discovery (VIP, tasks.<service>), VIP load balancing across nodes, the routing mesh answering on
every node (also on 127.0.0.1), scale to 0 and back, and nothing left behind."""

from __future__ import annotations

import json
import subprocess

from conftest import GoraeDaemon, wait_for
from test_swarm_network import _links, _overlay_netns, cluster  # noqa: F401 - `cluster` is a fixture


def _curl(ns: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["nsenter", f"--net=/run/netns/{ns}", "curl", "-s", "-m", "5", url], capture_output=True, text=True
    )


HTTPD = "mkdir /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"


def test_services_discovery_vip_balancing_and_the_routing_mesh(
    cluster: tuple[GoraeDaemon, GoraeDaemon, list[tuple[str, str]]],  # noqa: F811 - the fixture
) -> None:
    """Tasks of a service on an overlay network on both nodes: `web` resolves to its VIP, `tasks.web` to
    the running tasks, the VIP spreads connections over them; the published port answers on both nodes,
    on 127.0.0.1 too, from tasks on either node; scale to 0 refuses, back up answers; rm leaves nothing."""
    manager, worker, [(ns1, addr1), (ns2, addr2)] = cluster
    manager.docker("network", "create", "-d", "overlay", "--attachable", "appnet")
    manager.docker(
        "service", "create", "-d", "--no-resolve-image", "--name", "web", "--network", "appnet",
        "--replicas", "3", "-p", "8080:80", "busybox", "sh", "-c", HTTPD,
    )  # fmt: skip

    def running() -> list[str]:
        out = manager.docker(
            "service",
            "ps",
            "web",
            "--filter",
            "desired-state=running",
            "--format",
            "{{.CurrentState}}|{{.Node}}",
        ).stdout
        return [line for line in out.splitlines() if line.startswith("Running")]

    wait_for(lambda: len(running()) == 3, timeout=60)
    endpoint = json.loads(manager.docker("service", "inspect", "web").stdout)[0]["Endpoint"]
    assert endpoint["Ports"] == [
        {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"}
    ]
    vip = endpoint["VirtualIPs"]
    net_id = manager.docker("network", "inspect", "-f", "{{.Id}}", "appnet").stdout.strip()
    appnet_vip = next(v["Addr"].split("/")[0] for v in vip if v["NetworkID"] == net_id)
    assert appnet_vip.startswith("10.0.1.")

    manager.docker("run", "-d", "--name", "probe", "--network", "appnet", "busybox", "sleep", "300")
    out = manager.docker("exec", "probe", "nslookup", "web").stdout
    assert f"Address: {appnet_vip}" in out, out
    wait_for(
        lambda: (
            manager.docker("exec", "probe", "nslookup", "tasks.web").stdout.count("Address: 10.0.1.") == 3
        ),
        timeout=15,
    )
    names = set()
    for _ in range(30):
        r = manager.docker("exec", "probe", "wget", "-q", "-O-", "http://web/", check=False)
        assert r.returncode == 0, r.stderr
        names.add(r.stdout.strip())
    assert len(names) == 3, names  # the VIP spreads over every task

    # the routing mesh: both nodes, from the node itself (127.0.0.1 and its address) and from the other
    for ns, url in ((ns1, "http://127.0.0.1:8080/"), (ns2, "http://127.0.0.1:8080/"), (ns2, f"http://{addr1}:8080/"),
                    (ns1, f"http://{addr2}:8080/")):  # fmt: skip
        seen = set()
        for _ in range(20):
            r = _curl(ns, url)
            assert r.returncode == 0, (ns, url, r.returncode, r.stderr)
            seen.add(r.stdout.strip())
        assert seen == names, (ns, url, seen)

    manager.docker("service", "scale", "-d", "web=0")
    wait_for(lambda: _curl(ns2, "http://127.0.0.1:8080/").returncode == 7, timeout=30)  # refused at once
    manager.docker("service", "scale", "-d", "web=2")
    wait_for(lambda: len(running()) == 2, timeout=60)
    wait_for(lambda: _curl(ns2, "http://127.0.0.1:8080/").returncode == 0, timeout=15)

    manager.docker("rm", "-f", "probe")
    manager.docker("service", "rm", "web")
    for d, ns in ((manager, ns1), (worker, ns2)):
        wait_for(lambda d=d: d.docker("ps", "-aq").stdout == "", timeout=30)
        wait_for(lambda d=d: _overlay_netns(d) == [], timeout=15)
        wait_for(lambda ns=ns: not any("ingr" in line or "vxlan" in line for line in _links(ns)), timeout=15)
        saved = subprocess.run(
            ["ip", "netns", "exec", ns, "iptables-save"], capture_output=True, text=True
        ).stdout
        assert "-ING" not in saved, saved
    manager.docker("network", "rm", "appnet")


def test_a_killed_nodes_tasks_leave_the_mesh(
    cluster: tuple[GoraeDaemon, GoraeDaemon, list[tuple[str, str]]],  # noqa: F811 - the fixture
) -> None:
    """kill -9 of the worker's daemon (its containers keep running): once the manager marks it Down, the
    published port answers only from the manager's tasks, every time."""
    manager, worker, [(ns1, _), _] = cluster
    manager.docker(
        "service", "create", "-d", "--no-resolve-image", "--name", "web", "--replicas", "4", "-p", "8080:80",
        "busybox", "sh", "-c", HTTPD,
    )  # fmt: skip

    def hosts(d: GoraeDaemon) -> set[str]:
        return {
            cid[:12]
            for cid in d.docker(
                "ps", "-q", "--filter", "label=com.docker.swarm.service.name=web"
            ).stdout.split()
        }

    wait_for(lambda: len(hosts(manager)) + len(hosts(worker)) == 4 and hosts(worker), timeout=60)
    on_worker = hosts(worker)
    wait_for(
        lambda: any(_curl(ns1, "http://127.0.0.1:8080/").stdout.strip() in on_worker for _ in range(10)),
        timeout=15,
    )
    worker_id = json.loads(worker.docker("info", "--format", "{{json .Swarm}}").stdout)["NodeID"]
    worker.kill9()
    wait_for(
        lambda: (
            manager.docker("node", "inspect", "-f", "{{.Status.State}}", worker_id).stdout.strip() == "down"
        ),
        timeout=20,
    )
    wait_for(lambda: _curl(ns1, "http://127.0.0.1:8080/").returncode == 0, timeout=10)
    answers = [_curl(ns1, "http://127.0.0.1:8080/") for _ in range(20)]
    assert all(r.returncode == 0 for r in answers), [r.returncode for r in answers]
    assert not {r.stdout.strip() for r in answers} & on_worker
    manager.docker("service", "rm", "web")


def _nothing_left(d: GoraeDaemon, ns: str) -> None:
    """No overlay namespace, no VXLAN or mesh veth, no rule of the mesh, the VIPs or the overlays' egress."""
    wait_for(lambda: _overlay_netns(d) == [], timeout=30)
    wait_for(
        lambda: [n for n in _link_names(ns) if n not in ("lo", "eth0") and not n.endswith("0")] == [],
        timeout=15,
    )
    assert not any("vxlan" in line for line in _links(ns))
    saved = subprocess.run(["ip", "netns", "exec", ns, "iptables-save"], capture_output=True, text=True).stdout
    for marker in ("-ING", "GORAE-SVC", "169.254."):
        assert marker not in saved, (marker, saved)


def _link_names(ns: str) -> list[str]:
    return sorted(line.split(":")[1].strip().split("@")[0] for line in _links(ns))


def test_leaving_the_swarm_with_services_running_leaves_nothing(
    cluster: tuple[GoraeDaemon, GoraeDaemon, list[tuple[str, str]]],  # noqa: F811 - the fixture
) -> None:
    """Tasks on an overlay network and the ingress on both nodes, an attachable container too; then the
    worker leaves, and the manager leaves with --force: neither node keeps a namespace, device or rule."""
    manager, worker, [(ns1, _), (ns2, _)] = cluster
    manager.docker("network", "create", "-d", "overlay", "--attachable", "appnet")
    manager.docker(
        "service", "create", "-d", "--no-resolve-image", "--name", "web", "--network", "appnet",
        "--replicas", "4", "-p", "8080:80", "busybox", "sh", "-c", HTTPD,
    )  # fmt: skip

    def tasks(d: GoraeDaemon) -> int:
        return len(d.docker("ps", "-q", "--filter", "label=com.docker.swarm.service.name=web").stdout.split())

    wait_for(lambda: tasks(manager) > 0 and tasks(worker) > 0 and tasks(manager) + tasks(worker) == 4, timeout=60)
    wait_for(lambda: _curl(ns2, "http://127.0.0.1:8080/").returncode == 0, timeout=15)
    for d in (manager, worker):
        assert len(_overlay_netns(d)) == 2  # appnet's and ingress'
    assert worker.docker("swarm", "leave").stdout == "Node left the swarm.\n"
    wait_for(lambda: tasks(worker) == 0, timeout=30)
    _nothing_left(worker, ns2)
    assert manager.docker("swarm", "leave", "--force").stdout == "Node left the swarm.\n"
    wait_for(lambda: tasks(manager) == 0, timeout=30)
    _nothing_left(manager, ns1)
