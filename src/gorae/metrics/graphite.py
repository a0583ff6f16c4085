"""The Graphite plaintext sink (`--metrics-graphite host:port --metrics-interval 10s`).

Every interval the registry (the same series `/metrics` serves) is collected and pushed over TCP as
`gorae.<host>.<container>.<metric>[.<label value>...] <value> <unix time>` lines: container series under the
container's name, engine series under `engine`; the extra labels (interface, device, state, action, ...)
become path components in their label order; histograms send `_sum` and `_count`. A lost connection is
re-made at the next push (one retry at once), a push that cannot be delivered is dropped, never queued.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import socket
import time

from prometheus_client import CollectorRegistry

from gorae.errors import InvalidParameter

log = logging.getLogger("gorae.metrics")

_BAD = re.compile(r"[^A-Za-z0-9_\-]")
_CONTAINER_LABELS = {"id", "name", "image"}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def component(text: str) -> str:
    """One path component: characters other than letters, digits, `_` and `-` become `_`."""
    return _BAD.sub("_", text) or "_"


def parse_duration(text: str) -> float:
    """A Go duration ("10s", "1m30s", "500ms") in seconds; must be positive."""
    s = text.strip()
    pos, total = 0, 0.0
    for m in _DURATION.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if not s or pos != len(s) or not total > 0 or math.isinf(total):
        raise InvalidParameter(f"invalid duration {text!r}: want a positive Go duration such as 10s")
    return total


def parse_hostport(text: str, *, default_port: int | None = None) -> tuple[str, int]:
    """"host:port" or "[v6]:port" (or a bare host with `default_port`)."""
    s = text.strip()
    if s.startswith("["):
        host, sep, rest = s[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        if not sep or (rest and not rest.startswith(":")):
            raise InvalidParameter(f"invalid address {text!r}: want host:port")
    else:
        host, sep, port_text = s.rpartition(":")
        if not sep:
            host, port_text = s, ""
        elif ":" in host:
            raise InvalidParameter(f"invalid address {text!r}: put an IPv6 address in brackets")
    if not port_text:
        if default_port is None:
            raise InvalidParameter(f"invalid address {text!r}: want host:port")
        port = default_port
    else:
        if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
            raise InvalidParameter(f"invalid address {text!r}: bad port")
        port = int(port_text)
    if not host or any(c.isspace() or c in "/[]@" for c in host):
        raise InvalidParameter(f"invalid address {text!r}: bad host")
    return host, port


def render(registry: CollectorRegistry, host: str, ts: int | None = None) -> list[str]:
    """The registry's current samples as Graphite plaintext lines (newline-terminated)."""
    stamp = int(time.time()) if ts is None else ts
    prefix = "gorae." + component(host)
    out: list[str] = []
    for fam in registry.collect():
        for s in fam.samples:
            if s.name.endswith("_bucket") or s.name.endswith("_created") or math.isnan(s.value):
                continue
            labels = s.labels
            if "name" in labels and "id" in labels:
                who = component(labels["name"] or labels["id"])
                extra = [v for k, v in labels.items() if k not in _CONTAINER_LABELS
                         and not k.startswith("container_label_") and not (k == "cpu" and v == "total")]
            else:
                who = "engine"
                extra = [v for k, v in labels.items() if k not in ("version", "commit", "kernel", "os", "daemon_id")]
                if s.name == "engine_daemon_engine_info":
                    extra = []
            path = ".".join([prefix, who, component(s.name), *(component(v) for v in extra)])
            value = repr(float(s.value)) if not float(s.value).is_integer() else str(int(s.value))
            out.append(f"{path} {value} {stamp}\n")
    return out


class GraphitePusher:
    """Pushes `registry` to a Graphite plaintext receiver every `interval` seconds until stopped."""

    def __init__(
        self, registry: CollectorRegistry, address: tuple[str, int], interval: float, host: str | None = None
    ) -> None:
        self.registry = registry
        self.address = address
        self.interval = interval
        self.host = host or socket.gethostname().split(".")[0]
        self._writer: asyncio.StreamWriter | None = None
        self._failing = False
        self.pushes = 0  # batches delivered (tests and logs)

    async def run(self) -> None:
        try:
            while True:
                started = time.monotonic()
                await self.push_once()
                await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))
        finally:
            await self._close()

    async def push_once(self) -> bool:
        lines = await asyncio.to_thread(render, self.registry, self.host)
        data = "".join(lines).encode()
        for _attempt in range(2):
            try:
                if self._writer is None:
                    conn = await asyncio.wait_for(asyncio.open_connection(*self.address), 10)
                    self._writer = conn[1]
                writer = self._writer
                writer.write(data)
                await asyncio.wait_for(writer.drain(), 10)
            except (TimeoutError, OSError) as e:
                await self._close()
                if not self._failing:
                    log.warning("graphite %s:%d: %s (retrying every %gs)", *self.address, e, self.interval)
                    self._failing = True
                continue
            if self._failing:
                log.info("graphite %s:%d: connected again", *self.address)
                self._failing = False
            self.pushes += 1
            return True
        return False

    async def _close(self) -> None:
        w, self._writer = self._writer, None
        if w is not None:
            w.close()
            try:
                await asyncio.wait_for(w.wait_closed(), 2)
            except (TimeoutError, OSError):
                pass

