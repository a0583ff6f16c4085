"""`service logs SERVICE|TASK`: the logs of every task of a service (or of one task), each line prefixed
`<service>.<slot>.<task id>@<node>    | ` as the docker CLI does from the log details the daemon sends
(`com.docker.swarm.node.id`, `…service.id`, `…task.id`); `--raw` prints the lines untouched."""

from __future__ import annotations

import sys
from typing import Any
from urllib.parse import unquote_plus

from gorae.cli.context import Cli, StatusError
from gorae.cli.flags import O, Spec
from gorae.cli.opts import OptError, parse_timestamp
from gorae.cli.swarmfmt import IDResolver, trunc_id
from gorae.client.api import q
from gorae.client.errors import APIError
from gorae.client.streams import STDERR, Demuxer

LOGS = Spec(
    "service logs",
    "[OPTIONS] SERVICE|TASK",
    "Fetch the logs of a service or task",
    [
        O("details", None, help="Show extra details provided to logs"),
        O("follow", "f", help="Follow log output"),
        O("no-resolve", None, help="Do not map IDs to Names in output"),
        O("no-task-ids", None, help="Do not include task IDs in output"),
        O("no-trunc", None, help="Do not truncate output"),
        O("raw", None, help="Do not neatly format logs"),
        O(
            "since",
            None,
            "string",
            'Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)',
        ),
        O("tail", "n", "string", "Number of lines to show from the end of the logs", default="all"),
        O("timestamps", "t", help="Show timestamps"),
    ],
    min_args=1,
    max_args=1,
)


def parse_details(text: str) -> dict[str, str]:
    """logdetails.Parse: `k=v,k2=v2`, keys and values query-escaped."""
    out: dict[str, str] = {}
    if not text:
        return out
    for pair in text.split(","):
        k, eq, val = pair.partition("=")
        if not eq:
            raise ValueError(f"invalid details format: {text}")
        out[unquote_plus(k)] = unquote_plus(val)
    return out


class LineFormatter:
    """taskFormatter + logWriter: the prefix of each log line from its details."""

    def __init__(self, cli: Cli, v: dict[str, Any], padding: int) -> None:
        # the lookups go over a connection of their own: the main one is carrying the log stream
        from gorae.cli.context import Cli as SideCli
        from gorae.client.api import APIClient

        side = SideCli(cli.gopts)
        side._api = APIClient(cli.api.host, cli.api.version)
        self.cli, self.v, self.padding = side, v, padding
        self.resolver = IDResolver(side, bool(v["no_resolve"]))
        self.cache: dict[tuple[str, str, str], str] = {}

    def prefix(self, node_id: str, service_id: str, task_id: str) -> str:
        key = (node_id, service_id, task_id)
        if key in self.cache:
            return self.cache[key]
        node = self.resolver.resolve("node", node_id)
        service = self.resolver.resolve("service", service_id)
        task = self.cli.api.get_json(f"/tasks/{q(task_id)}") or {}
        slot = int(task.get("Slot") or 0)
        name = f"{service}.{slot}"
        if not self.v["no_task_ids"]:
            name += "." + (task.get("ID", "") if self.v["no_trunc"] else trunc_id(task.get("ID", "")))
        pad = self.padding - len(str(slot))
        text = name + "@" + node + (" " * pad if pad > 0 else "")
        self.cache[key] = text
        return text

    def line(self, frame: bytes) -> bytes:
        ts = bool(self.v["timestamps"])
        parts = frame.split(b" ", 2 if ts else 1)
        if len(parts) != (3 if ts else 2):
            raise StatusError(1, f"invalid context in log message: {frame.decode('utf-8', 'replace')}")
        idx = 1 if ts else 0
        try:
            details = parse_details(parts[idx].decode("utf-8", "replace"))
        except ValueError as e:
            raise StatusError(1, str(e)) from None
        ids = []
        for key, what in (
            ("com.docker.swarm.node.id", "node id"),
            ("com.docker.swarm.service.id", "service id"),
            ("com.docker.swarm.task.id", "task id"),
        ):
            if key not in details:
                raise StatusError(1, f"missing {what} in details: map{details}")
            ids.append(details.pop(key))
        out = (parts[0] + b" ") if ts else b""
        out += (self.prefix(*ids) + "    | ").encode()
        if self.v["details"]:
            out += ",".join(sorted(f"{k}={val}" for k, val in details.items())).encode() + b" "
        return out + parts[idx + 1]


def cmd_logs(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    target = args[0]
    padding = 1
    try:
        service = cli.api.get_json(f"/services/{q(target)}", {"insertDefaults": "false"}) or {}
        spec = service.get("Spec") or {}
        path = f"/services/{q(target)}/logs"
        tty = bool(((spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("TTY"))
        replicas = ((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas")
        if replicas is not None:
            padding = len(str(replicas))
    except APIError as e:
        if e.status != 404:
            raise
        try:
            task = cli.api.get_json(f"/tasks/{q(target)}") or {}
        except APIError as e2:
            if e2.status == 404:
                raise StatusError(1, f"no such task or service: {target}") from None
            raise
        path = f"/tasks/{q(target)}/logs"
        tty = bool(((task.get("Spec") or {}).get("ContainerSpec") or {}).get("TTY"))
        padding = len(str(int(task.get("Slot") or 0)))
    if tty and not v["raw"]:
        raise StatusError(1, "tty service logs only supported with --raw")
    params: dict[str, Any] = {
        "stdout": 1,
        "stderr": 1,
        "follow": 1 if v["follow"] else None,
        "timestamps": 1 if v["timestamps"] else None,
        "details": 1 if (v["details"] or not v["raw"]) else None,
        "tail": v["tail"],
    }
    if v["since"]:
        try:
            params["since"] = parse_timestamp(v["since"])
        except OptError as e:
            raise StatusError(1, str(e)) from None
    resp = cli.api.request("GET", path, params)
    out, err = sys.stdout.buffer, sys.stderr.buffer
    if tty:
        for chunk in resp.iter_chunks():
            out.write(chunk)
            out.flush()
        return 0
    fmt = None if v["raw"] else LineFormatter(cli, v, padding)
    d = Demuxer()
    for chunk in resp.iter_chunks():
        for stream, payload in d.feed(chunk):
            to = err if stream >= STDERR else out
            to.write(payload if fmt is None else fmt.line(payload))
            to.flush()
    return 0


COMMANDS = {"service logs": (LOGS, cmd_logs)}
