"""A zero-downtime rolling update through the routing mesh on two namespaced nodes (issue 11 item 5; needs
issue 10's services and agent): tasks that answer only 3 s after their start, with a healthcheck, that die at
once when stopped (SIGKILL), updated start-first to another image while clients hammer the published port on both nodes. A new task joins the
balancers only once healthy (its state `running`), an old one leaves them as soon as its desired state leaves
running and its container stops only after the agent's drain: no request fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from conftest import GoraeDaemon, wait_for
from test_swarm_network import cluster  # noqa: F401 - `cluster` is a fixture

SLOW_HTTPD = "sleep 3 && mkdir /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"

# clients in a node's namespace: a new connection per request until `stop` exists; prints "ok failed"
LOAD = r"""
import http.client, os, sys, threading
host, port, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ok, failed, errors = [0], [0], []
lock = threading.Lock()
def run():
    while not os.path.exists(stop):
        try:
            c = http.client.HTTPConnection(host, port, timeout=5)
            c.request("GET", "/")
            r = c.getresponse()
            r.read()
            c.close()
            good = r.status == 200
        except OSError as e:
            good = False
            errors.append(repr(e))
        with lock:
            if good:
                ok[0] += 1
            else:
                failed[0] += 1
ts = [threading.Thread(target=run) for _ in range(2)]
[t.start() for t in ts]
[t.join() for t in ts]
print(ok[0], failed[0], errors[:5])
"""


def test_a_start_first_rolling_update_under_load_fails_no_request(
    cluster: tuple[GoraeDaemon, GoraeDaemon, list[tuple[str, str]]],  # noqa: F811 - the fixture
) -> None:
    manager, worker, [(ns1, _), (ns2, addr2)] = cluster
    for d in (manager, worker):
        d.docker("tag", "busybox", "busybox:v2")
    replicas = 4
    manager.docker(
        "service", "create", "-d", "--no-resolve-image", "--name", "web", "--replicas", str(replicas),
        "-p", "8080:80", "--health-cmd", "wget -q -O /dev/null http://127.0.0.1/", "--health-interval", "1s",
        "--health-retries", "3", "--health-start-period", "30s", "--update-order", "start-first", "--update-parallelism", "1", "--stop-signal", "KILL",
        "busybox", "sh", "-c", SLOW_HTTPD,
    )  # fmt: skip

    def running(image: str) -> int:
        out = manager.docker(
            "service",
            "ps",
            "web",
            "--filter",
            "desired-state=running",
            "--format",
            "{{.Image}} {{.CurrentState}}",
        ).stdout
        return sum(1 for line in out.splitlines() if line.startswith(image + " Running"))

    wait_for(lambda: running("busybox:latest") == replicas, timeout=90)
    wait_for(
        lambda: (
            subprocess.run(
                ["nsenter", f"--net=/run/netns/{ns1}", "curl", "-sf", "-m", "5", "http://127.0.0.1:8080/"],
                capture_output=True,
            ).returncode
            == 0
        ),
        timeout=15,
    )
    stop = os.path.join(tempfile.mkdtemp(prefix="gorae-rolling-"), "stop")
    loads = [
        subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{ns}", sys.executable, "-c", LOAD, host, "8080", stop],
            stdout=subprocess.PIPE,
            text=True,
        )
        for ns, host in ((ns1, "127.0.0.1"), (ns1, addr2), (ns2, "127.0.0.1"))
    ]
    try:
        manager.docker("service", "update", "-d", "--no-resolve-image", "--image", "busybox:v2", "web")
        wait_for(lambda: running("busybox:v2") == replicas, timeout=180)
        # the last old task is still draining: wait until every old container is gone
        wait_for(
            lambda: sum(len(d.docker("ps", "-q").stdout.split()) for d in (manager, worker)) == replicas,
            timeout=60,
        )
    finally:
        open(stop, "w").close()
        outs = [p.communicate(timeout=60)[0] for p in loads]
        os.unlink(stop)
        os.rmdir(os.path.dirname(stop))
    results = [(int(o.split()[0]), int(o.split()[1]), o) for o in outs]
    assert all(failed == 0 for _, failed, _ in results), results
    assert all(ok > 50 for ok, _, _ in results), results
    wait_for(  # once the last new task has run for the update's monitor period (5 s)
        lambda: (
            json.loads(manager.docker("service", "inspect", "-f", "{{json .UpdateStatus}}", "web").stdout)[
                "State"
            ]
            == "completed"
        ),
        timeout=30,
    )
    manager.docker("service", "rm", "web")
