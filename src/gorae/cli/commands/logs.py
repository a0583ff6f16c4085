"""`gorae logs`: GET /containers/{id}/logs, demultiplexed unless the container has a tty, followed with -f."""

from __future__ import annotations

import sys

from gorae.cli.context import StatusError
from gorae.cli.flags import O, Spec
from gorae.cli.opts import OptError, parse_timestamp
from gorae.client.api import q
from gorae.client.streams import STDERR, Demuxer

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` stays off the CLI's import path
    from typing import Any

    from gorae.cli.context import Cli

LOGS = Spec(
    "logs",
    "[OPTIONS] CONTAINER",
    "Fetch the logs of a container",
    [
        O("details", None, help="Show extra details provided to logs"),
        O("follow", "f", help="Follow log output"),
        O(
            "since",
            None,
            "string",
            'Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)',
        ),
        O("tail", "n", "string", "Number of lines to show from the end of the logs", default="all"),
        O("timestamps", "t", help="Show timestamps"),
        O(
            "until",
            None,
            "string",
            'Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)',
        ),
    ],
    min_args=1,
    max_args=1,
    exact_args=True,
)


def cmd_logs(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    api = cli.api
    info = api.get_json(f"/containers/{q(args[0])}/json")
    params: dict[str, Any] = {
        "stdout": 1,
        "stderr": 1,
        "follow": v["follow"] or None,
        "timestamps": v["timestamps"] or None,
        "details": v["details"] or None,
        "tail": v["tail"],
    }
    for key in ("since", "until"):  # the docker client's words: invalid value for "since": ...
        if v[key]:
            try:
                params[key] = parse_timestamp(v[key])
            except OptError as e:
                raise StatusError(1, f'invalid value for "{key}": {e}') from None
    resp = api.request("GET", f"/containers/{q(info['Id'])}/logs", params)
    out, err = sys.stdout.buffer, sys.stderr.buffer
    if (info.get("Config") or {}).get("Tty"):
        for chunk in resp.iter_chunks():
            out.write(chunk)
            out.flush()
        return 0
    d = Demuxer()
    for chunk in resp.iter_chunks():
        target = None
        for stream, payload in d.feed(chunk):
            to = err if stream >= STDERR else out
            if target is not None and to is not target:
                target.flush()  # the other stream's bytes go out first: the order between the two is kept
            target = to
            to.write(payload)
        if target is not None:
            target.flush()  # what arrived is out before waiting for more (-f)
    return 0


COMMANDS = {"logs": (LOGS, cmd_logs)}
