"""`gorae stats`: per-container resource usage from GET /containers/{id}/stats, as a live table redrawn in
place (one reader thread per container) or a single snapshot with --no-stream."""

from __future__ import annotations

import threading
import time
from typing import Any

from gorae.cli.context import Cli
from gorae.cli.flags import TABLE_FORMAT_HELP, O, Spec
from gorae.cli.output import Header, JsonRow, bytes_size, human_size, print_list
from gorae.client.api import APIClient, q
from gorae.client.errors import APIError

STATS = Spec(
    "stats",
    "[OPTIONS] [CONTAINER...]",
    "Display a live stream of container(s) resource usage statistics",
    [
        O("all", "a", help="Show all containers (default shows just running)"),
        O(
            "format",
            None,
            "string",
            TABLE_FORMAT_HELP,
        ),
        O("no-stream", None, help="Disable streaming stats and only pull the first result"),
        O("no-trunc", None, help="Do not truncate output"),
    ],
)

HEADERS = {
    "ID": "CONTAINER ID",
    "Container": "CONTAINER",
    "Name": "NAME",
    "CPUPerc": "CPU %",
    "MemUsage": "MEM USAGE / LIMIT",
    "MemPerc": "MEM %",
    "NetIO": "NET I/O",
    "BlockIO": "BLOCK I/O",
    "PIDs": "PIDS",
}
DEFAULT = (
    "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
)


class StatsRow(JsonRow):
    """docker's StatsContext computed from one stats sample."""

    GO_TYPE = "*container.statsContext"

    def __init__(self, container: str, cid: str, s: dict[str, Any] | None, trunc: bool) -> None:
        self.Container = container
        self.ID = cid[:12] if trunc else cid
        s = s or {}
        self.Name = (s.get("name") or "").lstrip("/") or "--"
        cpu, pre = s.get("cpu_stats") or {}, s.get("precpu_stats") or {}
        cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (pre.get("cpu_usage") or {}).get(
            "total_usage", 0
        )
        sys_delta = (cpu.get("system_cpu_usage") or 0) - (pre.get("system_cpu_usage") or 0)
        ncpu = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1
        pct = cpu_delta / sys_delta * ncpu * 100.0 if sys_delta > 0 and cpu_delta > 0 else 0.0
        mem = s.get("memory_stats") or {}
        mstats = mem.get("stats") or {}
        usage = mem.get("usage", 0)
        for key in ("total_inactive_file", "inactive_file"):
            if key in mstats and mstats[key] < usage:
                usage -= mstats[key]
                break
        limit = mem.get("limit", 0)
        net = s.get("networks") or {}
        rx = sum(n.get("rx_bytes", 0) for n in net.values())
        tx = sum(n.get("tx_bytes", 0) for n in net.values())
        rd = wr = 0
        for e in (s.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []:
            op = (e.get("op") or "").lower()
            if op == "read":
                rd += e.get("value", 0)
            elif op == "write":
                wr += e.get("value", 0)
        if not s:
            self.CPUPerc = self.MemPerc = "--"
            self.MemUsage = self.NetIO = self.BlockIO = "-- / --"
            self.PIDs = "--"
            return
        self.CPUPerc = f"{pct:.2f}%"
        self.MemUsage = f"{bytes_size(usage)} / {bytes_size(limit)}"
        self.MemPerc = f"{(usage / limit * 100.0 if limit else 0.0):.2f}%"
        self.NetIO = f"{human_size(rx)} / {human_size(tx)}"
        self.BlockIO = f"{human_size(rd)} / {human_size(wr)}"
        self.PIDs = str((s.get("pids_stats") or {}).get("current", 0))

    def as_json(self) -> dict[str, str]:
        return {
            k: getattr(self, k)
            for k in ("BlockIO", "CPUPerc", "Container", "ID", "MemPerc", "MemUsage", "Name", "NetIO", "PIDs")
        }


def _targets(cli: Cli, v: dict[str, Any], args: list[str]) -> list[tuple[str, str]]:
    if args:
        out = []
        for a in args:
            info = cli.api.get_json(f"/containers/{q(a)}/json")
            out.append((a, info["Id"]))
        return out
    return [
        (c["Id"][:12], c["Id"]) for c in cli.api.get_json("/containers/json", {"all": v["all"] or None}) or []
    ]


def cmd_stats(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    trunc = not v["no_trunc"]
    fmt = v["format"] or cli.config.get("statsFormat") or ""
    targets = _targets(cli, v, args)
    if v["no_stream"]:
        rows = []
        for name, cid in targets:
            try:
                s = cli.api.get_json(f"/containers/{q(cid)}/stats", {"stream": 0})
            except APIError as e:
                cli.eprint(str(e))
                s = None
            rows.append(StatsRow(name, cid, s, trunc))
        print_list(
            cli.out, fmt, rows, default_table=DEFAULT, header=Header(HEADERS), to_json=StatsRow.as_json
        )
        return 0
    latest: dict[str, dict[str, Any] | None] = {cid: None for _, cid in targets}
    lock = threading.Lock()

    def reader(cid: str) -> None:
        api = APIClient(cli.api.host, cli.api.version)
        try:
            for s in api.stream_json("GET", f"/containers/{q(cid)}/stats", {"stream": 1}):
                with lock:
                    latest[cid] = s
        except Exception:  # noqa: BLE001 - the container went away; its row stays at its last sample
            pass

    for _, cid in targets:
        threading.Thread(target=reader, args=(cid,), daemon=True).start()
    tty = cli.out.isatty()
    while True:
        time.sleep(0.5)
        with lock:
            rows = [StatsRow(name, cid, latest[cid], trunc) for name, cid in targets]
        if tty:
            cli.out.write("\x1b[2J\x1b[H")
        print_list(
            cli.out, fmt, rows, default_table=DEFAULT, header=Header(HEADERS), to_json=StatsRow.as_json
        )
        cli.out.flush()


COMMANDS = {"stats": (STATS, cmd_stats)}
