"""Monitoring against the real thing: a daemon with --metrics-addr and --metrics-graphite, containers that burn
CPU and hold memory, the metric values checked against their cgroup files, a real Prometheus scraping the
daemon and Debian's carbon-cache receiving the Graphite pushes."""

from __future__ import annotations

import json
import os
import shutil
import socket
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from conftest import GoraeDaemon, new_daemon, skip_outside_ci, unique_name, wait_for
from monitoring_peers import Carbon, Prometheus, free_port
from prometheus_client.parser import text_string_to_metric_families

from gorae.metrics.graphite import component
from gorae.runtime import cgroups

BURN = "while :; do :; done"
# ~30 MB held in a shell variable, then a busy loop
HOG = 'a=$(head -c 30000000 /dev/zero | tr "\\0" x); while :; do :; done'


@dataclass
class Mon:
    d: GoraeDaemon
    metrics: str
    carbon: Carbon


@pytest.fixture(scope="module")
def mon() -> Iterator[Mon]:
    if shutil.which("carbon-cache") is None or shutil.which("whisper-fetch") is None:
        skip_outside_ci("Debian graphite-carbon is not installed (scripts/test.sh installs it)")
    carbon = Carbon()
    d = None
    try:
        port = free_port()
        d = new_daemon([
            "--metrics-addr", f"127.0.0.1:{port}",
            "--metrics-graphite", f"127.0.0.1:{carbon.port}", "--metrics-interval", "1s",
            "--metrics-container-labels", "com.example.tier",
        ])
        yield Mon(d, f"http://127.0.0.1:{port}/metrics", carbon)
    finally:
        if d is not None:
            d.cleanup()
        carbon.stop()


def scrape(m: Mon) -> dict[str, dict[frozenset[tuple[str, str]], float]]:
    with urllib.request.urlopen(m.metrics, timeout=10) as r:
        assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        text = r.read().decode()
    out: dict[str, dict[frozenset[tuple[str, str]], float]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, {})[frozenset(s.labels.items())] = s.value
    return out


def one(samples: dict[frozenset[tuple[str, str]], float], **labels: str) -> float:
    hits = [v for k, v in samples.items() if set(labels.items()) <= k]
    assert len(hits) == 1, (labels, samples)
    return hits[0]


def inspect(d: GoraeDaemon, name: str) -> dict:  # type: ignore[type-arg]
    return json.loads(d.docker("inspect", name).stdout)[0]


def cg_file(cid: str, controller: str, name: str) -> str:
    d = cgroups.controller_dir(controller, f"/gorae/{cid}")
    assert d is not None
    return os.path.join(d, name)


def read_int(path: str) -> int:
    with open(path) as f:
        return int(f.read().split()[0])


def read_kv(path: str) -> dict[str, int]:
    with open(path) as f:
        return {k: int(v) for k, v in (line.split() for line in f if line.strip())}


def eth0_rx(pid: int) -> int:
    with open(f"/proc/{pid}/net/dev") as f:
        eth0 = next(line for line in f if line.strip().startswith("eth0:"))
    return int(eth0.split(":", 1)[1].split()[0])


def test_series_exist_from_the_first_second(mon: Mon) -> None:
    name = unique_name("first")
    mon.d.docker("run", "-d", "--name", name, "-l", "com.example.tier=web", "-l", "other=x", "busybox",
                 "sleep", "600")
    try:
        got = scrape(mon)  # at once: no sampling interval to wait for
        ct = inspect(mon.d, name)
        labels = {"name": name, "id": f"/gorae/{ct['Id']}", "image": "busybox"}
        assert one(got["container_cpu_usage_seconds_total"], **labels, cpu="total") >= 0
        assert one(got["container_memory_usage_bytes"], **labels) > 0
        key = next(k for k in got["container_memory_rss"] if ("name", name) in k)
        assert dict(key)["container_label_com_example_tier"] == "web"
        assert "container_label_other" not in dict(key)
        pid = ct["State"]["Pid"]
        with open(f"/proc/{pid}/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as f:
            btime = next(int(line.split()[1]) for line in f if line.startswith("btime"))
        started = one(got["container_start_time_seconds"], **labels)
        assert abs(started - (btime + start_ticks / os.sysconf("SC_CLK_TCK"))) < 2
    finally:
        mon.d.docker("rm", "-f", name)
    assert not any(("name", name) in k for k in scrape(mon).get("container_memory_usage_bytes", {}))


def test_values_match_the_cgroup_files(mon: Mon) -> None:
    if cgroups.use_v2():
        pytest.skip("this host's cgroup v2 checks: see test_metrics.py (v1 host here)")
    name = unique_name("hog")
    mon.d.docker("run", "-d", "--name", name, "busybox", "sh", "-c", HOG)
    try:
        cid = inspect(mon.d, name)["Id"]
        stat = cg_file(cid, "memory", "memory.stat")
        wait_for(lambda: read_kv(stat)["total_rss"] > 30_000_000, timeout=30)
        usage = cg_file(cid, "cpuacct", "cpuacct.usage")
        mem = cg_file(cid, "memory", "memory.usage_in_bytes")
        pid = inspect(mon.d, name)["State"]["Pid"]
        cpu_before, mem_before, rss_before = read_int(usage), read_int(mem), read_kv(stat)["total_rss"]
        rx_before = eth0_rx(pid)
        got = scrape(mon)
        cpu_after, mem_after, rss_after = read_int(usage), read_int(mem), read_kv(stat)["total_rss"]
        rx_after = eth0_rx(pid)
        labels = {"name": name}
        cpu = one(got["container_cpu_usage_seconds_total"], **labels)
        assert cpu_before / 1e9 <= cpu <= cpu_after / 1e9
        assert min(mem_before, mem_after) <= one(got["container_memory_usage_bytes"], **labels) <= max(
            mem_before, mem_after
        )
        assert min(rss_before, rss_after) <= one(got["container_memory_rss"], **labels) <= max(rss_before, rss_after)
        assert one(got["container_memory_rss"], **labels) > 30_000_000
        ticks = read_kv(cg_file(cid, "cpuacct", "cpuacct.stat"))
        user = one(got["container_cpu_user_seconds_total"], **labels)
        assert abs(user - ticks["user"] / os.sysconf("SC_CLK_TCK")) < 1.0
        assert one(got["container_spec_memory_limit_bytes"], **labels) == 0
        # the bridge carries other containers' broadcasts: the value read lies between the reads around it
        assert rx_before <= one(got["container_network_receive_bytes_total"], **labels, interface="eth0") <= rx_after
        # a second scrape: the counter moved with the container
        later = wait_for(lambda: (g := scrape(mon)) and one(g["container_cpu_usage_seconds_total"], **labels) > cpu
                         and g)
        assert one(later["container_cpu_usage_seconds_total"], **labels) <= read_int(usage) / 1e9
    finally:
        mon.d.docker("rm", "-f", name)


def test_engine_metrics(mon: Mon) -> None:
    name = unique_name("eng")
    before = scrape(mon)
    starts = before.get("engine_daemon_events_total", {}).get(
        frozenset({("type", "container"), ("action", "start")}), 0.0
    )
    mon.d.docker("run", "-d", "--name", name, "busybox", "sleep", "600")
    try:
        got = scrape(mon)
        running = len(mon.d.docker("ps", "-q").stdout.split())
        assert one(got["engine_daemon_container_states_containers"], state="running") == running
        assert one(got["engine_daemon_events_total"], type="container", action="start") == starts + 1
        assert one(got["engine_daemon_api_requests_total"], method="POST", route="/containers/{id}/start",
                   code="204") >= 1
        assert one(got["engine_daemon_container_actions_seconds_count"], action="start") >= 1
        assert one(got["engine_daemon_engine_info"], os_type="linux") == 1
    finally:
        mon.d.docker("rm", "-f", name)


def test_a_real_prometheus_scrapes_the_daemon(mon: Mon) -> None:
    if shutil.which("prometheus") is None:
        skip_outside_ci("Debian prometheus is not installed (scripts/test.sh installs it)")
    name = unique_name("prom")
    mon.d.docker("run", "-d", "--name", name, "busybox", "sh", "-c", BURN)
    prom = Prometheus(mon.metrics.removeprefix("http://").removesuffix("/metrics"))
    try:
        result = wait_for(lambda: prom.query(f'rate(container_cpu_usage_seconds_total{{name="{name}"}}[5s])'),
                          timeout=60, step=0.5)
        assert result[0]["metric"]["id"].startswith("/gorae/")
        assert float(result[0]["value"][1]) > 0.05  # a busy loop: a good part of a core
        targets = prom.api("targets")["data"]["activeTargets"]
        assert targets[0]["health"] == "up", targets
        states = prom.query("engine_daemon_container_states_containers")
        assert {r["metric"]["state"] for r in states} == {"running", "paused", "stopped"}
    finally:
        prom.stop()
        mon.d.docker("rm", "-f", name)


def test_carbon_receives_the_graphite_pushes(mon: Mon) -> None:
    name = unique_name("carbon")
    mon.d.docker("run", "-d", "--name", name, "busybox", "sh", "-c", BURN)
    try:
        cid = inspect(mon.d, name)["Id"]
        host = component(socket.gethostname().split(".")[0])
        metric = f"gorae.{host}.{component(name)}.container_cpu_usage_seconds_total"
        values = wait_for(lambda: os.path.exists(mon.carbon.whisper(metric)) and len(v := mon.carbon.values(metric))
                          >= 3 and v, timeout=60, step=0.5)
        assert values == sorted(values) and values[-1] > values[0]  # a counter that moves, one point a second
        assert values[-1] <= read_int(cg_file(cid, "cpuacct", "cpuacct.usage")) / 1e9
        engine = f"gorae.{host}.engine.engine_daemon_container_states_containers.running"
        assert wait_for(lambda: os.path.exists(mon.carbon.whisper(engine)) and mon.carbon.values(engine), timeout=30)
    finally:
        mon.d.docker("rm", "-f", name)


def test_graphite_survives_a_receiver_restart() -> None:
    """The sink connects again when the receiver comes back (carbon stopped, then started on the same port)."""
    if shutil.which("carbon-cache") is None:
        skip_outside_ci("Debian graphite-carbon is not installed (scripts/test.sh installs it)")
    carbon = Carbon()
    d = None
    try:
        d = new_daemon(["--metrics-graphite", f"127.0.0.1:{carbon.port}", "--metrics-interval", "1s"],
                       with_busybox=False)
        host = component(socket.gethostname().split(".")[0])
        metric = f"gorae.{host}.engine.engine_daemon_container_states_containers.stopped"
        wait_for(lambda: os.path.exists(carbon.whisper(metric)), timeout=30)
        port = carbon.port
        carbon.stop()
        carbon = Carbon(port=port)  # a new storage dir: only pushes after the restart land here
        assert wait_for(lambda: os.path.exists(carbon.whisper(metric)) and carbon.values(metric), timeout=30) == [0]
        assert f"graphite 127.0.0.1:{port}" in d.log()  # the lost connection was reported
    finally:
        if d is not None:
            d.cleanup()
        carbon.stop()


def test_bad_monitoring_flags_stop_the_daemon_with_a_message() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(RuntimeError, match=f"--metrics-addr 127.0.0.1:{port}: listen tcp 127.0.0.1:{port}: bind: address already in use"):
            new_daemon(["--metrics-addr", f"127.0.0.1:{port}"], with_busybox=False)
    with pytest.raises(RuntimeError, match="invalid duration '10'"):
        new_daemon(["--metrics-graphite", "127.0.0.1:2003", "--metrics-interval", "10"], with_busybox=False)
    with pytest.raises(RuntimeError, match="invalid address 'nohost:'"):
        new_daemon(["--metrics-addr", "nohost:"], with_busybox=False)
