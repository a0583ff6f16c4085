"""`MetricsSink`: how a service reports a timed action (an image pull, a build, a push) to the metrics.

A service takes a `MetricsSink` (default `NULL_SINK`) and calls `sink.observe("image", "pull", seconds)` when
the action ends (also when it failed: `ok=False`). The daemon hands every service the engine's metrics
(`gorae.metrics.engine.EngineMetrics`), which files the observation under the histogram
`engine_daemon_<kind>_actions_seconds{action=...}` (dockerd's `engine_daemon_image_actions_seconds` and
`engine_daemon_container_actions_seconds`) and counts failures in `engine_daemon_<kind>_actions_failed_total`.
Kinds known to the engine: "container", "image", "build"; another kind is filed under "other".
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Protocol


class MetricsSink(Protocol):
    def observe(self, kind: str, action: str, seconds: float, *, ok: bool = True) -> None:
        """One finished action of `kind` ("image", "build", "container") named `action` ("pull", ...)."""
        ...


class NullSink:
    """Reports nowhere (a service built without metrics, unit tests)."""

    def observe(self, kind: str, action: str, seconds: float, *, ok: bool = True) -> None:
        return None


NULL_SINK = NullSink()


@contextlib.contextmanager
def timed(sink: MetricsSink, kind: str, action: str) -> Iterator[None]:
    """`with timed(sink, "image", "pull"): ...` reports the block's duration (ok=False when it raised)."""
    start = time.perf_counter()
    ok = False
    try:
        yield
        ok = True
    finally:
        sink.observe(kind, action, time.perf_counter() - start, ok=ok)
