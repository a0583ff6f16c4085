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
from gorae.metrics import cgread
from gorae.metrics.containers import ContainerCollector, ContainerInfo, label_name
from gorae.metrics.engine import UNMATCHED, EngineMetrics, route_of
from gorae.metrics.exposition import text_format
from gorae.metrics.graphite import GraphitePusher, parse_duration, parse_hostport, render
from gorae.metrics.http import MetricsApp
from gorae.metrics.sink import NULL_SINK, timed
from gorae.runtime import cgroups, stats
from gorae.runtime.stats import parse_net_dev

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
    pid = 1000 + i
    (root / "proc" / str(pid) / "net").mkdir(parents=True)
    (root / "proc" / str(pid) / "ns").mkdir()
    (root / "proc" / str(pid) / "net" / "dev").write_text(NET_DEV.format(rx=pid * 10, tx=pid * 20))
    (root / "proc" / str(pid) / "ns" / "net").write_text("")  # its own namespace: a file of its own
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
            v2=True,
            dir_of=lambda controller, path: str(root) + path,
            proc=str(root / "proc"),
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


def test_a_second_scrape_opens_nothing_and_reads_each_file_once(tmp_path: Path) -> None:
    infos = [_fake_container(tmp_path, i) for i in range(200)]
    for i in range(100, 200):  # half of them share the netns of container 0 (`--network container:c0`)
        infos[i] = ContainerInfo(**{**infos[i].__dict__, "pid": infos[0].pid})
    coll = ContainerCollector(lambda: infos, v2=True, dir_of=lambda c, p: str(tmp_path) + p,
                              proc=str(tmp_path / "proc"))
    reg = CollectorRegistry(auto_describe=False)
    reg.register(coll)
    text_format(reg)
    files = coll.files
    # 6 cgroup files each, kept open; 100 network namespaces, each net/dev opened once and closed
    assert (files.opened, files.held) == (200 * 6 + 100, 200 * 6)
    opened, reads = files.opened, files.reads
    cpu = []
    for _ in range(5):
        c = time.thread_time()
        body = text_format(reg)
        cpu.append(time.thread_time() - c)
    # per scrape: one pread of each cgroup file, one open+read of each network namespace's net/dev
    assert files.opened - opened == 5 * 100
    assert files.reads - reads == 5 * (200 * 6 + 100)
    shared = _samples(body.decode())
    assert shared[("container_network_receive_bytes_total",
                   frozenset({"id": infos[150].cgroups_path, "name": "c150", "image": "busybox",
                              "interface": "eth0"}.items()))] == infos[0].pid * 10
    # the code's own CPU (not wall: the machine is shared): measured ~0.06 ms a container, bound at 0.25 ms
    assert statistics.median(cpu) / 200 < 0.25e-3, cpu
    # containers gone: their files closed
    infos[:] = infos[:10]
    text_format(reg)
    assert files.held == 10 * 6


def test_past_the_fd_budget_files_are_opened_per_read(tmp_path: Path) -> None:
    infos = [_fake_container(tmp_path, i) for i in range(3)]
    coll = ContainerCollector(lambda: infos, v2=True, dir_of=lambda c, p: str(tmp_path) + p,
                              proc=str(tmp_path / "proc"), files=cgread.Files(budget=4))
    reg = CollectorRegistry(auto_describe=False)
    reg.register(coll)
    first = text_format(reg)
    assert coll.files.held == 4
    opened = coll.files.opened
    second = text_format(reg)
    assert coll.files.opened - opened == 3 * 7 - 4  # the 4 held stay open
    assert [x for x in first.splitlines() if b"last_seen" not in x] == [
        x for x in second.splitlines() if b"last_seen" not in x
    ]


def _v1_tree(root: Path, cg: str, n: int, mem_limit: int, throttled_blkio: bool, cfq: bool) -> None:
    files = {
        "cpuacct": {"cpuacct.usage": f"{n * 7 + 1}\n", "cpuacct.stat": f"user {n}\nsystem {n // 3}\n"},
        "cpu": {"cpu.stat": f"nr_periods {n}\nnr_throttled {n // 5}\nthrottled_time {n * 11}\n"},
        "memory": {
            "memory.usage_in_bytes": f"{n * 4096 + 4096}\n",
            "memory.limit_in_bytes": f"{mem_limit}\n",
            "memory.stat": f"cache {n}\nrss {n}\nrss_huge 0\ntotal_cache {n * 3}\ntotal_rss {n * 2}\n"
            f"total_rss_huge 7\ntotal_inactive_file {n}\ntotal_active_file 5\n",
        },
        "pids": {"pids.current": f"{n % 50}\n"},
        "blkio": {
            "blkio.throttle.io_service_bytes_recursive": (
                f"250:9 Read {n}\n250:9 Write {n * 2}\n250:9 Sync 1\n250:9 Total {n * 3}\nTotal {n * 3}\n"
                if throttled_blkio else "Total 0\n"
            ),
            "blkio.io_service_bytes_recursive": f"250:9 Read {n + 1}\n250:9 Write 3\nTotal 4\n",
            "blkio.throttle.io_serviced_recursive": "Total 0\n",
            "blkio.io_serviced_recursive": f"250:9 Read 5\n250:9 Write {n}\n250:8 Read 1\nTotal 6\n",
        },
    }
    for ctl, content in files.items():
        d = root / ctl / cg.lstrip("/")
        d.mkdir(parents=True, exist_ok=True)
        for name, text in content.items():
            if cfq or not name.startswith("blkio.io_"):  # without CFQ v1 has only the throttle files
                (d / name).write_text(text)


def _expected(c: dict[str, object], host_memory: int) -> dict[str, object]:
    """What the collector exported from `stats.cgroup_counters` before it read the files itself."""
    cpu = c["cpu_stats"]["cpu_usage"]  # type: ignore[index]
    mem = c["memory_stats"]
    st_ = mem.get("stats", {})  # type: ignore[attr-defined]
    v1 = "total_rss" in st_
    blk = c["blkio_stats"]

    def per_dev(entries: list[dict[str, object]]) -> dict[tuple[int, int], list[int]]:
        out: dict[tuple[int, int], list[int]] = {}
        for e in entries:
            op = str(e["op"]).lower()
            if op in ("read", "write"):
                slot = out.setdefault((e["major"], e["minor"]), [0, 0])  # type: ignore[arg-type]
                slot[op == "write"] += int(e["value"])  # type: ignore[call-overload]
        return out

    return {
        "cpu_total": cpu["total_usage"] / 1e9,
        "cpu_user": cpu["usage_in_usermode"] / 1e9,
        "cpu_system": cpu["usage_in_kernelmode"] / 1e9,
        "throttled": c["cpu_stats"]["throttling_data"]["throttled_periods"],  # type: ignore[index]
        "mem_usage": mem["usage"],  # type: ignore[index]
        "mem_working_set": max(0, mem["usage"] - st_.get("total_inactive_file" if v1 else "inactive_file", 0)),
        "mem_rss": st_.get("total_rss" if v1 else "anon", 0),
        "mem_cache": st_.get("total_cache" if v1 else "file", 0),
        "mem_limit": 0 if mem["limit"] == host_memory else mem["limit"],  # type: ignore[index]
        "pids": c["pids_stats"].get("current", 0),  # type: ignore[attr-defined]
        "io_bytes": per_dev(blk["io_service_bytes_recursive"]),  # type: ignore[index]
        "io_ops": per_dev(blk["io_serviced_recursive"]),  # type: ignore[index]
    }


def _got(s: cgread.Sample) -> dict[str, object]:
    def per_dev(entries: cgread.Blkio | None) -> dict[tuple[int, int], list[int]]:
        out: dict[tuple[int, int], list[int]] = {}
        for major, minor, r, w in entries or ():
            slot = out.setdefault((major, minor), [0, 0])
            slot[0] += r
            slot[1] += w
        return out

    d = dict(s.__dict__)
    d["io_bytes"], d["io_ops"] = per_dev(s.io_bytes), per_dev(s.io_ops)
    return d


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 10**12), limit=st.sampled_from([stats.NO_LIMIT, 268435456, 9223372036854771712]),
       throttled=st.booleans(), cfq=st.booleans())
def test_v1_files_read_as_docker_stats_reads_them(tmp_path_factory: pytest.TempPathFactory, n: int, limit: int,
                                                  throttled: bool, cfq: bool) -> None:
    root = tmp_path_factory.mktemp("v1")
    cg = "/gorae/" + "a" * 64
    _v1_tree(root, cg, n, limit, throttled, cfq)

    def dir_of(controller: str, path: str) -> str:
        return f"{root}/{controller}{path}"

    mp = pytest.MonkeyPatch()
    try:  # stats reads through cgroups.controller_dir: point it at the fake tree for the reference values
        mp.setattr(cgroups, "controller_dir", dir_of)
        want = _expected(stats._v1(cg, lean=True), stats.host_memory())
    finally:
        mp.undo()
    files = cgread.Files()
    cf = cgread.CgroupFiles(cg, v2=False, dir_of=dir_of)
    try:
        assert _got(cf.sample(files, stats.host_memory())) == want
        assert want["cpu_user"] == n * stats.NS_PER_TICK / 1e9 and want["throttled"] == n // 5
        opened = files.opened
        assert _got(cf.sample(files, stats.host_memory())) == want
        assert files.opened == opened  # a second read opens nothing, missing files not looked for again
    finally:
        cf.close(files)
    assert files.held == 0


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 10**12), limit=st.sampled_from(["max", "268435456", "", "junk"]))
def test_v2_files_read_as_docker_stats_reads_them(tmp_path_factory: pytest.TempPathFactory, n: int,
                                                  limit: str) -> None:
    root = tmp_path_factory.mktemp("v2")
    d = root / "c"
    d.mkdir()
    (d / "cpu.stat").write_text(f"usage_usec {n}\nuser_usec {n // 2}\nsystem_usec {n // 3}\nnr_periods 4\n"
                                f"nr_throttled {n % 9}\nthrottled_usec 1\n")
    (d / "memory.current").write_text(f"{n * 2}\n")
    (d / "memory.max").write_text(limit + "\n")
    (d / "memory.stat").write_text(f"anon {n}\nfile {n + 1}\nkernel 3\ninactive_anon 2\ninactive_file {n * 3}\n")
    (d / "pids.current").write_text(f"{n % 100}\n")
    (d / "io.stat").write_text(f"8:0 rbytes={n} wbytes=2 rios=3 wios={n} dbytes=0 dios=0\n"
                               "8:16 rbytes=1 wbytes=1 rios=1 wios=1 dbytes=0 dios=0\n")
    want = _expected(stats.v2_counters(str(d)), stats.host_memory())
    files = cgread.Files()
    cf = cgread.CgroupFiles("/c", v2=True, dir_of=lambda c, p: str(root) + p)
    try:
        assert _got(cf.sample(files, stats.host_memory())) == want
    finally:
        cf.close(files)


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
@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode)
       | st.lists(st.sampled_from(["lo:", "eth0:", " 1", " 22", " x", "\n", "  ", ":"]), max_size=80).map(
           lambda parts: "Inter-|\n face |\n".join(["", "".join(parts)]).encode()))
def test_cgroup_file_parsers_never_raise(data: bytes) -> None:
    assert isinstance(cgread._int(data), int)
    assert isinstance(cgread._key(data, b"total_rss"), int)
    for line in cgread._blkio_v1(data):
        assert len(line) == 4
    for entries in cgread._blkio_v2(data):
        for line in entries:
            assert len(line) == 4
    got = cgread.parse_net_dev(data)
    if all(32 <= b < 127 or b == 10 for b in data):  # /proc's alphabet: both parsers see the same lines
        want = {k: [v[f] for f in stats.NET_DEV_FIELDS if f[3:] in ("bytes", "packets", "errors", "dropped")]
                for k, v in parse_net_dev(data.decode()).items() if k != "lo"}
        assert dict(got) == want


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
