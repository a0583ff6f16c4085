"""`docker top`: run the host's `ps` with the caller's arguments and keep the container's processes,
as dockerd does (rows whose PID column is one of the container's cgroup pids).

Owns the ps invocation and parsing; never signals or changes a process.
"""

from __future__ import annotations

import shlex
import subprocess
from typing import Any

from gorae.errors import InvalidParameter, SystemError_
from gorae.runtime import cgroups


def parse_ps(output: str, pids: set[int]) -> dict[str, Any]:
    lines = [ln for ln in output.splitlines() if ln.strip()]
    if not lines:
        return {"Titles": [], "Processes": []}
    titles = lines[0].split()
    try:
        pid_index = titles.index("PID")
    except ValueError:
        raise InvalidParameter("Couldn't find PID field in ps output") from None
    procs: list[list[str]] = []
    for line in lines[1:]:
        fields = line.split()
        if len(fields) <= pid_index:
            continue
        try:
            p = int(fields[pid_index])
        except ValueError:
            continue
        if p not in pids:
            continue
        # the last column (usually CMD) may contain spaces: keep it whole
        head = line.split(None, len(titles) - 1)
        procs.append(head)
    return {"Titles": titles, "Processes": procs}


def top(init_pid: int, ps_args: str, cgroups_path: str | None = None) -> dict[str, Any]:
    """{"Titles": [...], "Processes": [[...], ...]} for the container whose init is `init_pid`."""
    path = cgroups_path or cgroups.cgroup_path_of_pid(init_pid)
    pids = set(cgroups.pids_of(path)) if path else set()
    if not pids and init_pid:
        pids = {init_pid}
    args = shlex.split(ps_args) if ps_args else ["-ef"]
    p = subprocess.run(["ps", *args], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemError_(f"Error running ps: {p.stderr.strip()}")
    return parse_ps(p.stdout, pids)
