"""Commands acting on existing containers: stop, restart, kill, rm, pause, unpause, wait, rename, update,
port, diff, top, commit, export and container prune. Multi-container commands print each name that
succeeded and each error (docker's wording), exiting 1 when any failed."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from gorae.cli.commands.common import print_pruned
from gorae.cli.context import Cli, StatusError
from gorae.cli.flags import O, Spec
from gorae.cli.opts import OptError, nano_cpus, parse_filters, parse_restart, ram_in_bytes
from gorae.cli.output import tabwrite
from gorae.client.api import q
from gorae.client.errors import APIError

C1 = "CONTAINER [CONTAINER...]"


def for_each(
    cli: Cli, names: list[str], fn: Callable[[str], Any], *, echo: bool = True, missing_ok: bool = False
) -> int:
    """`fn` on each name, errors printed; `missing_ok` (docker's `rm -f`): a missing one does not fail."""
    failed = False
    for n in names:
        try:
            res = fn(n)
        except APIError as e:
            cli.eprint(str(e))
            failed = failed or not (missing_ok and e.status == 404)
            continue
        if echo:
            cli.print(n if res is None else str(res))
    return 1 if failed else 0


STOP = Spec(
    "stop",
    f"[OPTIONS] {C1}",
    "Stop one or more running containers",
    [
        O("signal", "s", "string", "Signal to send to the container"),
        O("timeout", "t", "int", "Seconds to wait before killing the container"),
        O("time", None, "int", "Seconds to wait before killing the container", hidden=True),
    ],
    min_args=1,
)
RESTART = Spec("restart", f"[OPTIONS] {C1}", "Restart one or more containers", STOP.opts, min_args=1)


def _stop_params(v: dict[str, Any]) -> dict[str, Any]:
    p: dict[str, Any] = {}
    t = v["timeout"] if v["timeout"] is not None else v["time"]
    if t is not None:
        p["t"] = t
    if v["signal"]:
        p["signal"] = v["signal"]
    return p


def cmd_stop(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    return for_each(
        cli, args, lambda n: cli.api.post(f"/containers/{q(n)}/stop", _stop_params(v), ok=(304,)) and None
    )


def cmd_restart(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    return for_each(
        cli, args, lambda n: cli.api.post(f"/containers/{q(n)}/restart", _stop_params(v)) and None
    )


KILL = Spec(
    "kill",
    f"[OPTIONS] {C1}",
    "Kill one or more running containers",
    [
        O("signal", "s", "string", "Signal to send to the container"),
    ],
    min_args=1,
)


def cmd_kill(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    p = {"signal": v["signal"]} if v["signal"] else {}
    return for_each(cli, args, lambda n: cli.api.post(f"/containers/{q(n)}/kill", p) and None)


RM = Spec(
    "rm",
    f"[OPTIONS] {C1}",
    "Remove one or more containers",
    [
        O("force", "f", help="Force the removal of a running container (uses SIGKILL)"),
        O("link", "l", help="Remove the specified link"),
        O("volumes", "v", help="Remove anonymous volumes associated with the container"),
    ],
    min_args=1,
)


def cmd_rm(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    p = {"force": v["force"] or None, "v": v["volumes"] or None, "link": v["link"] or None}

    def rm(n: str) -> None:
        if not n.strip("/"):
            raise APIError(400, "Container name cannot be empty")
        cli.api.request("DELETE", f"/containers/{q(n)}", p).read()

    return for_each(cli, args, rm, missing_ok=bool(v["force"]))


PAUSE = Spec("pause", C1, "Pause all processes within one or more containers", [], min_args=1)
UNPAUSE = Spec("unpause", C1, "Unpause all processes within one or more containers", [], min_args=1)


def cmd_pause(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    return for_each(cli, args, lambda n: cli.api.post(f"/containers/{q(n)}/pause") and None)


def cmd_unpause(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    return for_each(cli, args, lambda n: cli.api.post(f"/containers/{q(n)}/unpause") and None)


WAIT = Spec(
    "wait", C1, "Block until one or more containers stop, then print their exit codes", [], min_args=1
)


def cmd_wait(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    def wait(n: str) -> int:
        doc = cli.api.post_json(f"/containers/{q(n)}/wait") or {}
        return int(doc.get("StatusCode", -1))

    return for_each(cli, args, wait)


RENAME = Spec(
    "rename", "CONTAINER NEW_NAME", "Rename a container", [], min_args=2, max_args=2, exact_args=True
)


def cmd_rename(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    old, new = args
    if not new.strip():
        raise StatusError(1, "Error: neither old nor new names may be empty")
    try:
        cli.api.post(f"/containers/{q(old)}/rename", {"name": new})
    except APIError as e:
        raise StatusError(1, f"{e}\nError: failed to rename container named {old}") from None
    return 0


UPDATE = Spec(
    "update",
    f"[OPTIONS] {C1}",
    "Update configuration of one or more containers",
    [
        O(
            "blkio-weight",
            None,
            "int",
            "Block IO (relative weight), between 10 and 1000, or 0 to disable",
            type_name="uint16",
            default_text="0",
        ),
        O("cpu-period", None, "int", "Limit CPU CFS (Completely Fair Scheduler) period"),
        O("cpu-quota", None, "int", "Limit CPU CFS (Completely Fair Scheduler) quota"),
        O("cpu-rt-period", None, "int", "Limit the CPU real-time period in microseconds"),
        O("cpu-rt-runtime", None, "int", "Limit the CPU real-time runtime in microseconds"),
        O("cpu-shares", "c", "int", "CPU shares (relative weight)"),
        O("cpus", None, "string", "Number of CPUs", type_name="decimal"),
        O("cpuset-cpus", None, "string", "CPUs in which to allow execution (0-3, 0,1)"),
        O("cpuset-mems", None, "string", "MEMs in which to allow execution (0-3, 0,1)"),
        O("memory", "m", "string", "Memory limit", type_name="bytes"),
        O("memory-reservation", None, "string", "Memory soft limit", type_name="bytes"),
        O(
            "memory-swap",
            None,
            "string",
            "Swap limit equal to memory plus swap: -1 to enable unlimited swap",
            type_name="bytes",
        ),
        O("pids-limit", None, "int", "Tune container pids limit (set -1 for unlimited)"),
        O("restart", None, "string", "Restart policy to apply when a container exits"),
    ],
    min_args=1,
)


def cmd_update(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    body: dict[str, Any] = {}
    try:
        for flag, key in (
            ("blkio_weight", "BlkioWeight"),
            ("cpu_period", "CpuPeriod"),
            ("cpu_rt_period", "CpuRealtimePeriod"),
            ("cpu_rt_runtime", "CpuRealtimeRuntime"),
            ("cpu_quota", "CpuQuota"),
            ("cpu_shares", "CpuShares"),
            ("pids_limit", "PidsLimit"),
        ):
            if v[flag] is not None:
                body[key] = v[flag]
        for flag, key in (("cpuset_cpus", "CpusetCpus"), ("cpuset_mems", "CpusetMems")):
            if v[flag] is not None:
                body[key] = v[flag]
        if v["cpus"]:
            body["NanoCpus"] = nano_cpus(v["cpus"])
        for flag, key in (("memory", "Memory"), ("memory_reservation", "MemoryReservation")):
            if v[flag]:
                body[key] = ram_in_bytes(v[flag])
        if v["memory_swap"]:
            body["MemorySwap"] = -1 if v["memory_swap"] == "-1" else ram_in_bytes(v["memory_swap"])
        if v["restart"]:
            body["RestartPolicy"] = parse_restart(v["restart"])
    except OptError as e:
        raise StatusError(125, str(e)) from None
    if not body:
        raise StatusError(1, "you must provide one or more flags when using this command")

    def upd(n: str) -> None:
        doc = cli.api.post_json(f"/containers/{q(n)}/update", None, body) or {}
        for w in doc.get("Warnings") or []:
            cli.eprint(f"WARNING: {w}")

    return for_each(cli, args, upd)


PORT = Spec(
    "port",
    "CONTAINER [PRIVATE_PORT[/PROTO]]",
    "List port mappings or a specific mapping for the container",
    [],
    min_args=1,
    max_args=2,
)


def cmd_port(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    info = cli.api.get_json(f"/containers/{q(args[0])}/json")
    ports: dict[str, Any] = (info.get("NetworkSettings") or {}).get("Ports") or {}

    def fmt(b: dict[str, str]) -> str:
        ip = b.get("HostIp") or "0.0.0.0"
        return f"[{ip}]:{b.get('HostPort')}" if ":" in ip else f"{ip}:{b.get('HostPort')}"

    if len(args) == 2:
        want = args[1] if "/" in args[1] else f"{args[1]}/tcp"
        binds = ports.get(want)
        if not binds:
            raise StatusError(1, f"Error: No public port '{args[1]}' published for {args[0]}")
        for b in binds:
            cli.print(fmt(b))
        return 0
    for key in sorted(ports, key=lambda k: (int(k.split("/")[0]), k)):
        for b in ports[key] or []:
            cli.print(f"{key} -> {fmt(b)}")
    return 0


DIFF = Spec(
    "diff",
    "CONTAINER",
    "Inspect changes to files or directories on a container's filesystem",
    [],
    min_args=1,
    max_args=1,
    exact_args=True,
)


def cmd_diff(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    for ch in cli.api.get_json(f"/containers/{q(args[0])}/changes") or []:
        cli.print(f"{'CAD'[ch.get('Kind', 0)] if 0 <= ch.get('Kind', 0) <= 2 else '?'} {ch.get('Path')}")
    return 0


TOP = Spec(
    "top",
    "CONTAINER [ps OPTIONS]",
    "Display the running processes of a container",
    [],
    min_args=1,
    interspersed=False,
)


def cmd_top(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    params = {"ps_args": " ".join(args[1:])} if len(args) > 1 else None
    doc = cli.api.get_json(f"/containers/{q(args[0])}/top", params) or {}
    lines = ["\t".join(doc.get("Titles") or [])]
    lines += ["\t".join(p) for p in doc.get("Processes") or []]
    cli.print(tabwrite(lines, minwidth=20, padding=3))
    return 0


COMMIT = Spec(
    "commit",
    "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
    "Create a new image from a container's changes",
    [
        O("author", "a", "string", 'Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")'),
        O("change", "c", "list", "Apply Dockerfile instruction to the created image"),
        O("message", "m", "string", "Commit message"),
        O("pause", "p", help="Pause container during commit", default=True, default_text="true"),
    ],
    min_args=1,
    max_args=2,
)


def cmd_commit(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    params: list[tuple[str, Any]] = [("container", args[0])]
    if len(args) > 1:
        from gorae.cli.commands.images import split_image_ref
        from gorae.errors import InvalidParameter
        from gorae.reference import parse

        try:  # the docker CLI parses the new name before asking the daemon
            parse(args[1])
        except InvalidParameter as e:
            raise StatusError(1, str(e)) from None

        repo, tag = split_image_ref(args[1])
        params += [("repo", repo), ("tag", tag)]
    params += [("author", v["author"]), ("comment", v["message"]), ("pause", v["pause"])]
    params += [("changes", c) for c in v["change"]]
    doc = cli.api.post_json("/commit", params) or {}
    cli.print(doc.get("Id", ""))
    return 0


EXPORT = Spec(
    "export",
    "[OPTIONS] CONTAINER",
    "Export a container's filesystem as a tar archive",
    [
        O("output", "o", "string", "Write to a file, instead of STDOUT"),
    ],
    min_args=1,
    max_args=1,
    exact_args=True,
)


def write_stream(cli: Cli, chunks: Any, output: str | None, what: str) -> None:
    if output:
        tmp = output + ".gorae-tmp"
        with open(tmp, "wb") as f:
            for c in chunks:
                f.write(c)
        os.replace(tmp, output)
        return
    if sys.stdout.isatty():
        raise StatusError(1, "cowardly refusing to save to a terminal. Use the -o flag or redirect")
    out = sys.stdout.buffer
    for c in chunks:
        out.write(c)
    out.flush()


def cmd_export(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    if not v["output"] and sys.stdout.isatty():
        raise StatusError(1, "cowardly refusing to save to a terminal. Use the -o flag or redirect")
    resp = cli.api.request("GET", f"/containers/{q(args[0])}/export")
    write_stream(cli, resp.iter_chunks(), v["output"], "export")
    return 0


PRUNE = Spec(
    "container prune",
    "[OPTIONS]",
    "Remove all stopped containers",
    [
        O("filter", None, "list", 'Provide filter values (e.g. "until=<timestamp>")', type_name="filter"),
        O("force", "f", help="Do not prompt for confirmation"),
    ],
    max_args=0,
)


def confirm(cli: Cli, text: str) -> bool:
    cli.out.write(text + " [y/N] ")
    cli.out.flush()
    try:
        ans = sys.stdin.readline()
    except (OSError, KeyboardInterrupt):
        return False
    return ans.strip().lower() in ("y", "yes")


def cmd_container_prune(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    if not v["force"] and not confirm(
        cli, "WARNING! This will remove all stopped containers.\nAre you sure you want to continue?"
    ):
        return 0
    filters = parse_filters(v["filter"])
    doc = cli.api.post_json("/containers/prune", {"filters": filters} if filters else None) or {}
    print_pruned(cli, "Containers", doc.get("ContainersDeleted") or [], doc.get("SpaceReclaimed") or 0)
    return 0


COMMANDS = {
    "stop": (STOP, cmd_stop),
    "restart": (RESTART, cmd_restart),
    "kill": (KILL, cmd_kill),
    "rm": (RM, cmd_rm),
    "pause": (PAUSE, cmd_pause),
    "unpause": (UNPAUSE, cmd_unpause),
    "wait": (WAIT, cmd_wait),
    "rename": (RENAME, cmd_rename),
    "update": (UPDATE, cmd_update),
    "port": (PORT, cmd_port),
    "diff": (DIFF, cmd_diff),
    "top": (TOP, cmd_top),
    "commit": (COMMIT, cmd_commit),
    "export": (EXPORT, cmd_export),
    "container prune": (PRUNE, cmd_container_prune),
}
