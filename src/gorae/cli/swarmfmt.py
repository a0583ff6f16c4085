"""Helpers the swarm commands share for printing: docker's formatter.PrettyPrint, Go's time.Time.String()
of an API timestamp, ages ("5 minutes ago"), image names without digests, ID truncation, and resolving
node/service IDs to names for task lists (idresolver)."""

from __future__ import annotations

import re
from datetime import UTC
from typing import Any

from gorae.cli.context import Cli

_TS = re.compile(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?")


def pretty(value: Any) -> str:
    """formatter.PrettyPrint: None → "None", else the text with its first letter upper-cased."""
    if value is None:
        return "None"
    s = str(value)
    if len(s) == 1:
        return s.lower()
    return s[:1].upper() + s[1:].lower()


def filters(spec: Any, values: list[str]) -> dict[str, dict[str, bool]]:
    """`-f key=value` flags → the API's filters JSON; a bad one is pflag's usage error (status 125)."""
    from gorae.cli.opts import OptError, parse_filters

    try:
        return parse_filters(values)
    except OptError as e:
        from gorae.cli.commands.swarm import flag_error

        bad = next(x for x in values if "=" not in x)
        raise flag_error(spec, "filter", bad, str(e)) from None


def go_time(ts: str | None) -> str:
    """Go's time.Time.String() of an RFC 3339 timestamp: "2026-12-06 10:21:06.123456789 +0000 UTC"."""
    m = _TS.match(ts or "")
    if not m:
        return "0001-01-01 00:00:00 +0000 UTC"
    frac = (m.group(3) or "").rstrip("0")
    zone = m.group(4) or "Z"
    off = "+0000 UTC" if zone == "Z" else f"{zone.replace(':', '')} {zone.replace(':', '')}"
    return f"{m.group(1)} {m.group(2)}{'.' + frac if frac else ''} {off}"


def unix_time(ts: str | None) -> float:
    """An RFC 3339 timestamp (nanoseconds allowed) as a unix time; 0 when absent."""
    m = _TS.match(ts or "")
    if not m:
        return 0.0
    from datetime import datetime, timedelta, timezone

    zone = m.group(4) or "Z"
    tz = UTC
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    dt = datetime.strptime(f"{m.group(1)}T{m.group(2)}", "%Y-%m-%dT%H:%M:%S").replace(tzinfo=tz)
    return dt.timestamp() + float("0." + (m.group(3) or "0"))


def ago(ts: str | None) -> str:
    """units.HumanDuration(time.Since(ts)) + " ago"."""
    import time

    from gorae.cli.output import human_duration

    return human_duration(time.time() - unix_time(ts)) + " ago"


def trunc_id(s: str) -> str:
    """stringid.TruncateID."""
    if ":" in s:
        s = s.split(":", 1)[1]
    return s[:12]


def familiar_image(image: str) -> str:
    """The image reference without its digest when it has a tag (`busybox:latest@sha256:…` → `busybox:latest`)."""
    name, at, _digest = image.partition("@")
    if not at:
        return image
    slash = name.rfind("/")
    if name.rfind(":") > slash:
        return name
    return image


class IDResolver:
    """idresolver.IDResolver: node and service IDs to names, cached; the ID itself when not found."""

    def __init__(self, cli: Cli, no_resolve: bool) -> None:
        self.cli, self.no_resolve = cli, no_resolve
        self.cache: dict[tuple[str, str], str] = {}

    def resolve(self, kind: str, ident: str) -> str:
        if self.no_resolve:
            return ident
        key = (kind, ident)
        if key in self.cache:
            return self.cache[key]
        from gorae.client.api import q
        from gorae.client.errors import APIError

        name = ident
        try:
            if kind == "node":
                doc = self.cli.api.get_json(f"/nodes/{q(ident)}") or {}
                name = (
                    (doc.get("Spec") or {}).get("Name")
                    or (doc.get("Description") or {}).get("Hostname")
                    or ident
                )
            else:
                doc = self.cli.api.get_json(f"/services/{q(ident)}") or {}
                name = (doc.get("Spec") or {}).get("Name", "")
        except APIError:
            name = ident
        self.cache[key] = name
        return name


def node_reference(cli: Cli, ref: str) -> str:
    """node.Reference: "self" is this node's ID (from /info)."""
    if ref != "self":
        return ref
    from gorae.cli.context import StatusError

    info = cli.api.get_json("/info") or {}
    node_id = (info.get("Swarm") or {}).get("NodeID") or ""
    if not node_id:
        cli.api.get_json("/nodes")
        raise StatusError(1, "node ID not found in /info")
    return str(node_id)
