"""The engine's own metrics, in the style of dockerd's `engine_daemon_*`.

`EngineMetrics` owns one prometheus-client registry holding: `engine_daemon_engine_info` (version, OS,
architecture, kernel as labels, value 1), `engine_daemon_container_states_containers{state}` (running,
paused, stopped: read at scrape time), `engine_daemon_events_total` (every event published, by `type` and
`action`), `engine_daemon_events_subscribers_total`, `engine_daemon_api_requests_total{method,route,code}`
and `engine_daemon_api_request_duration_seconds{method,route}` (every Engine API request, the route as its
pattern: `/containers/{id}/start`), and `engine_daemon_<kind>_actions_seconds{action}` histograms fed by
the `MetricsSink` protocol (container actions from the API's timings; image pulls, builds, pushes reported
by the services that do them). The container collector joins the same registry, so one scrape has all.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gorae import __version__

ACTION_KINDS = ("container", "image", "build")
# dockerd's buckets for engine_daemon_*_actions_seconds (prometheus.DefBuckets widened for slow actions)
ACTION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
API_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Engine API routes that are a container action (dockerd times these in the daemon)
CONTAINER_ACTIONS: dict[tuple[str, str], str] = {
    ("POST", "/containers/create"): "create",
    ("POST", "/containers/{id}/start"): "start",
    ("POST", "/containers/{id}/stop"): "stop",
    ("POST", "/containers/{id}/restart"): "restart",
    ("POST", "/containers/{id}/kill"): "kill",
    ("POST", "/containers/{id}/pause"): "pause",
    ("POST", "/containers/{id}/unpause"): "unpause",
    ("POST", "/containers/{id}/commit"): "commit",
    ("POST", "/commit"): "commit",
    ("DELETE", "/containers/{id}"): "delete",
}


UNMATCHED = "(unmatched)"


def route_of(path: str, params: Mapping[str, str]) -> str:
    """The route pattern of a request: each path parameter's value put back as `{name}` (longest first,
    so `/images/{name:.*}/json` and ids inside names come out right)."""
    if not params:
        return path
    out = path
    for name, value in sorted(params.items(), key=lambda kv: -len(kv[1])):
        if value:
            head, sep, tail = out.partition("/" + value)
            if sep:
                out = f"{head}/{{{name}}}{tail}"
    return out


class _States(Collector):
    def __init__(self, states: Callable[[], Mapping[str, int]]) -> None:
        self._states = states

    def collect(self) -> Iterator[Metric]:
        counts = self._states()
        fam = GaugeMetricFamily(
            "engine_daemon_container_states_containers", "The count of containers in various states",
            labels=["state"],
        )
        running = counts.get("running", 0) + counts.get("restarting", 0)
        paused = counts.get("paused", 0)
        stopped = sum(counts.values()) - running - paused
        for state, n in (("running", running), ("paused", paused), ("stopped", stopped)):
            fam.add_metric([state], n)
        yield fam


class EngineMetrics:
    """The registry the daemon serves, and the sink services report timed actions into."""

    def __init__(
        self,
        *,
        states: Callable[[], Mapping[str, int]] | None = None,
        subscribers: Callable[[], int] | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        # no `_created` series (dockerd has none); a process-wide switch, which the daemon wants anyway
        disable_created_metrics()  # type: ignore[no-untyped-call]
        r = self.registry = registry if registry is not None else CollectorRegistry(auto_describe=False)
        info = Gauge(
            "engine_daemon_engine_info", "The information related to the engine and the OS it is running on",
            ["version", "commit", "architecture", "graphdriver", "kernel", "os", "os_type", "daemon_id"],
            registry=r,
        )
        uname = os.uname()
        self._info = info
        self._info_labels = {
            "version": __version__, "commit": "", "architecture": platform.machine(), "graphdriver": "overlay2",
            "kernel": uname.release, "os": _os_name(), "os_type": "linux", "daemon_id": "",
        }
        info.labels(**self._info_labels).set(1)
        self.events = Counter(
            "engine_daemon_events_total", "The number of events logged", ["type", "action"], registry=r
        )
        if subscribers is not None:
            g = Gauge("engine_daemon_events_subscribers_total", "The number of current subscribers to events",
                      registry=r)
            g.set_function(lambda: float(subscribers()))
        self.api_requests = Counter(
            "engine_daemon_api_requests_total", "Engine API requests by method, route and status code",
            ["method", "route", "code"], registry=r,
        )
        self.api_seconds = Histogram(
            "engine_daemon_api_request_duration_seconds", "Engine API request latency by method and route",
            ["method", "route"], buckets=API_BUCKETS, registry=r,
        )
        self.actions = {
            kind: Histogram(
                f"engine_daemon_{kind}_actions_seconds", f"The number of seconds it takes to process each {kind} "
                "action", ["action"], buckets=ACTION_BUCKETS, registry=r,
            )
            for kind in (*ACTION_KINDS, "other")
        }
        self.failed = Counter(
            "engine_daemon_actions_failed_total", "Actions that ended in an error, by kind and action",
            ["kind", "action"], registry=r,
        )
        if states is not None:
            r.register(_States(states))

    def set_daemon_id(self, daemon_id: str) -> None:
        self._info.remove(*self._info_labels.values())
        self._info_labels["daemon_id"] = daemon_id
        self._info.labels(**self._info_labels).set(1)

    # -- MetricsSink --------------------------------------------------------------------------------

    def observe(self, kind: str, action: str, seconds: float, *, ok: bool = True) -> None:
        hist = self.actions.get(kind) or self.actions["other"]
        hist.labels(action=action).observe(seconds)
        if not ok:
            self.failed.labels(kind=kind, action=action).inc()

    # -- hooks the daemon wires -----------------------------------------------------------------

    def on_event(self, ev: Mapping[str, Any]) -> None:
        """An EventBus observer: count each published event."""
        self.events.labels(type=str(ev.get("Type", "")), action=str(ev.get("Action", "")).split(":")[0]).inc()

    def on_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """One Engine API request answered (the access hook); `route` is its pattern (`route_of`), or
        `UNMATCHED` for a path no route has (so junk paths never make new series)."""
        self.api_requests.labels(method=method, route=route, code=str(status)).inc()
        self.api_seconds.labels(method=method, route=route).observe(seconds)
        action = CONTAINER_ACTIONS.get((method, route))
        if action is not None:
            self.observe("container", action, seconds, ok=status < 400)


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"
