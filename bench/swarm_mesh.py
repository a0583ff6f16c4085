"""Swarm networking figures (issue 11) on two gorae daemons, each in its own network namespace:

1. requests/s through the routing mesh (127.0.0.1:8080 on a node) vs straight to one task's address on the
   ingress network (same path through the node's ingress veth and VXLAN, without the DNAT);
2. failed requests of clients hammering the published port during `service update --image` (rolling,
   start-first, parallelism 1, tasks with a healthcheck);
3. time from a new task becoming healthy (its `health_status: healthy` event) to its first answer through
   the mesh (and from its container's start).

Needs issue 10's services and agent.

    PYTHONPATH=src /opt/gorae/venv/bin/python bench/swarm_mesh.py [--seconds 5] [--replicas 4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import datetime

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "compat"))

from conftest import GoraeDaemon, import_busybox, remove_busybox_tar  # noqa: E402
from swarm_cluster import Host, init, join, lan  # noqa: E402

HTTPD = "mkdir /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"

LOAD = r"""
import http.client, os, sys, threading, time
hosts, port, seconds, threads = sys.argv[1].split(","), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
stop = sys.argv[5] if len(sys.argv) > 5 else ""
ok, failed, seen = [0], [0], {}
lock = threading.Lock()
def run():
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end and not (stop and os.path.exists(stop)):
        n += 1
        try:
            c = http.client.HTTPConnection(hosts[n % len(hosts)], port, timeout=5)
            c.request("GET", "/")
            body = c.getresponse().read().decode().strip()
            c.close()
            with lock:
                ok[0] += 1
                seen[body] = seen.get(body, 0) + 1
        except OSError:
            with lock:
                failed[0] += 1
ts = [threading.Thread(target=run) for _ in range(threads)]
[t.start() for t in ts]
[t.join() for t in ts]
print(ok[0], failed[0], len(seen))
"""

WATCH = r"""
import http.client, sys, time
host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
first = {}
end = time.time() + seconds
while time.time() < end:
    try:
        c = http.client.HTTPConnection(host, port, timeout=2)
        c.request("GET", "/")
        body = c.getresponse().read().decode().strip()
        c.close()
        first.setdefault(body, time.time())
    except OSError:
        pass
for k, v in first.items():
    print(k, v)
"""


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(list(args), capture_output=True, text=True)
    if check and r.returncode:
        raise RuntimeError(f"{' '.join(args)}: {r.stderr}")
    return r


def in_ns(ns: str, code: str, *args: str) -> str:
    return sh("nsenter", f"--net=/run/netns/{ns}", sys.executable, "-c", code, *args).stdout


def _main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--replicas", type=int, default=4)
    ap.add_argument("--threads", type=int, default=4)
    opts = ap.parse_args()
    with lan(2, containers=True) as hosts:
        daemons = [h.daemon for h in hosts]
        for d in daemons:
            import_busybox(d)
        manager, worker = daemons
        ns1, addr1 = hosts[0].ns, hosts[0].addr
        try:
            _run(opts, hosts, daemons, manager, worker, ns1, addr1)
        finally:
            for d in daemons:
                if d.ping():
                    d.docker("service", "rm", "web", check=False)
                    d.docker("rm", "-f", *d.docker("ps", "-aq", check=False).stdout.split(), check=False)


def _run(opts: argparse.Namespace, hosts: list[Host], daemons: list[GoraeDaemon], manager: GoraeDaemon,
         worker: GoraeDaemon, ns1: str, addr1: str) -> None:  # fmt: skip
    tag = uuid.uuid4().hex[:6]
    _, tokens = init(hosts[0])
    join(hosts[1], hosts[0], tokens["worker"])
    for d in daemons:
        d.docker("tag", "busybox", "busybox:v2")
    manager.docker(
        "service", "create", "-d", "--no-resolve-image", "--name", "web", "--replicas", str(opts.replicas),
        "-p", "8080:80", "--health-cmd", "wget -q -O /dev/null http://127.0.0.1/", "--health-interval", "1s",
        "--health-retries", "1", "busybox", "sh", "-c", HTTPD,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        states = manager.docker("service", "ps", "web", "--format", "{{.CurrentState}}").stdout.split("\n")
        if sum(s.startswith("Running") for s in states) == opts.replicas:
            break
        time.sleep(0.5)
    time.sleep(2)
    # the tasks' ingress addresses (both nodes), for the direct comparison
    task_ips = []
    for d in daemons:
        for cid in d.docker("ps", "-q").stdout.split():
            nets = json.loads(d.docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", cid).stdout)
            if "ingress" in nets:
                task_ips.append(nets["ingress"]["IPAddress"])
    thr = str(opts.threads)
    # alternated rounds, so that the shared machine's load swings hit both the same way
    rounds = 4
    secs = str(opts.seconds / rounds)
    ratios, m_ok, d_ok, m_failed, d_failed, answered = [], 0, 0, 0, 0, set()
    for _ in range(rounds):
        mesh = in_ns(ns1, LOAD, "127.0.0.1", "8080", secs, thr).split()
        direct = in_ns(ns1, LOAD, ",".join(task_ips), "80", secs, thr).split()
        m_ok, d_ok = m_ok + int(mesh[0]), d_ok + int(direct[0])
        m_failed, d_failed = m_failed + int(mesh[1]), d_failed + int(direct[1])
        answered.add(int(mesh[2]))
        ratios.append(int(mesh[0]) / max(1, int(direct[0])))
    m_rps, d_rps = m_ok / opts.seconds, d_ok / opts.seconds
    print(
        f"mesh   127.0.0.1:8080 : {m_rps:8.1f} req/s, {m_failed} failed, tasks answering per round {sorted(answered)}"
    )
    print(f"direct to the {len(task_ips)} tasks in turn: {d_rps:8.1f} req/s, {d_failed} failed")
    print(f"mesh / direct = {m_rps / d_rps:.2f} (rounds: {' '.join(f'{r:.2f}' for r in ratios)})")

    # rolling update under load
    stop = f"/tmp/gorae-bench-mesh-{tag}.stop"

    def running_tasks() -> set[str]:
        out = manager.docker(
            "service",
            "ps",
            "web",
            "--filter",
            "desired-state=running",
            "--format",
            "{{.ID}} {{.CurrentState}}",
        ).stdout
        return {line.split()[0] for line in out.splitlines() if " Running" in line}

    old = running_tasks()
    load = subprocess.Popen(
        ["nsenter", f"--net=/run/netns/{ns1}", sys.executable, "-c", LOAD, "127.0.0.1", "8080", "120", "2", stop],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    time.sleep(1)
    t0 = time.monotonic()
    upd = manager.docker(
        "service", "update", "--image", "busybox:v2", "--no-resolve-image", "--update-parallelism", "1",
        "--update-order", "start-first", "-d", "web", check=False, timeout=120,
    )  # fmt: skip
    while upd.returncode == 0 and time.monotonic() - t0 < 300:
        now = running_tasks()
        containers = sum(len(d.docker("ps", "-q").stdout.split()) for d in daemons)
        if len(now) == opts.replicas and not now & old and containers == opts.replicas:
            break  # the new tasks run and the old containers are gone (drained, stopped)
        time.sleep(0.2)
    took = time.monotonic() - t0
    if upd.returncode:
        print("service update:", upd.stderr.strip()[-300:])
    time.sleep(1)
    open(stop, "w").close()
    out, _ = load.communicate()
    os.unlink(stop)
    ok, failed, _n = out.split()
    print(
        f"rolling update (--image, start-first, healthchecks, {opts.replicas} tasks, rc {upd.returncode}, {took:.1f} s): "
        f"{failed} failed of {int(ok) + int(failed)} requests"
    )

    # time from a new task's start to its first answer through the mesh
    watch = subprocess.Popen(
        ["nsenter", f"--net=/run/netns/{ns1}", sys.executable, "-c", WATCH, "127.0.0.1", "8080", "25"],
        stdout=subprocess.PIPE,
        text=True,
    )
    before = {cid for d in daemons for cid in d.docker("ps", "-q", "--no-trunc").stdout.split()}
    since = str(int(time.time()))
    time.sleep(1)
    manager.docker("service", "scale", "-d", f"web={opts.replicas + 2}")
    out, _ = watch.communicate()
    first = {line.split()[0]: float(line.split()[1]) for line in out.splitlines()}
    delays, from_healthy = [], []
    for d in daemons:
        events = d.docker(
            "events", "--since", since, "--until", str(int(time.time()) + 1), "--filter",
            "event=health_status", "--format", "{{.ID}} {{.TimeNano}} {{.Status}}",
        ).stdout  # fmt: skip
        healthy: dict[str, float] = {}
        for line in events.splitlines():
            cid, nano, status = line.split(" ", 2)
            if status.endswith("healthy") and not status.endswith("unhealthy"):
                healthy.setdefault(cid[:12], int(nano) / 1e9)
        for cid in d.docker("ps", "-q", "--no-trunc").stdout.split():
            if cid in before:
                continue
            started = d.docker("inspect", "-f", "{{.State.StartedAt}}", cid).stdout.strip()
            host = cid[:12]
            if host in first:
                t_start = datetime.fromisoformat(started.replace("Z", "+00:00")[:26] + "+00:00").timestamp()
                delays.append((host, first[host] - t_start))
                if host in healthy:
                    from_healthy.append(first[host] - healthy[host])
    print(
        "start → first answer through the mesh (s), the new tasks:",
        " ".join(f"{d:.2f}" for _, d in delays),
    )
    print("healthy → first answer through the mesh (s):", " ".join(f"{d:.2f}" for d in from_healthy))


def main() -> None:
    try:
        _main()
    finally:
        remove_busybox_tar()  # the tarball import_busybox made for this run


if __name__ == "__main__":
    main()
