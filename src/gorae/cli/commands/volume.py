"""Volume commands: `volume create`, `volume ls` (list), `volume inspect`, `volume rm` (remove) and
`volume prune`, with docker's flags, table columns, warnings and messages."""

from __future__ import annotations

import re
from typing import Any

from gorae.cli.commands.common import inspect_objects, print_pruned, remove_each
from gorae.cli.context import Cli, StatusError
from gorae.cli.flags import INSPECT_FORMAT_HELP, TABLE_FORMAT_HELP, O, Spec
from gorae.cli.opts import OptError, labels_map, parse_filters
from gorae.cli.output import Header, JsonRow, human_size, print_list
from gorae.client.api import q

CREATE = Spec(
    "volume create",
    "[OPTIONS] [VOLUME]",
    "Create a volume",
    [
        O(
            "availability",
            None,
            "string",
            'Cluster Volume availability ("active", "pause", "drain")',
            default="active",
        ),
        O("driver", "d", "string", "Specify volume driver name", default="local"),
        O("group", None, "string", "Cluster Volume group (cluster volumes)"),
        O("label", None, "list", "Set metadata for a volume"),
        O("limit-bytes", None, "string", "Minimum size of the Cluster Volume in bytes", type_name="bytes"),
        O("name", None, "string", "Specify volume name", hidden=True),
        O("opt", "o", "list", "Set driver specific options", type_name="map", default_text="map[]"),
        O("required-bytes", None, "string", "Maximum size of the Cluster Volume in bytes", type_name="bytes"),
        O("scope", None, "string", 'Cluster Volume access scope ("single", "multi")', default="single"),
        O("secret", None, "list", "Cluster Volume secrets", type_name="map", default_text="map[]"),
        O(
            "sharing",
            None,
            "string",
            'Cluster Volume access sharing ("none", "readonly", "onewriter", "all")',
            default="none",
        ),
        O(
            "topology-preferred",
            None,
            "list",
            "A topology that the Cluster Volume would be preferred in",
        ),
        O("topology-required", None, "list", "A topology that the Cluster Volume must be accessible from"),
        O("type", None, "string", 'Cluster Volume access type ("mount", "block")', default="block"),
    ],
    max_args=1,
)

_CLUSTER = (
    "availability",
    "group",
    "limit_bytes",
    "required_bytes",
    "scope",
    "secret",
    "sharing",
    "topology_preferred",
    "topology_required",
    "type",
)


def opts_map(values: list[str]) -> dict[str, str]:
    """docker's `map` flag values (key=value, repeatable)."""
    return labels_map(values)


def cmd_create(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    name = v["name"] or ""
    if args:
        if name and name != args[0]:
            raise StatusError(
                1, "conflicting options: either specify --name or provide positional arg, not both"
            )
        name = args[0]
    if any(k in v["_set"] for k in _CLUSTER):
        raise StatusError(
            1, "Error response from daemon: cluster volumes require the engine to be a swarm manager"
        )
    body = {
        "Name": name,
        "Driver": v["driver"],
        "DriverOpts": opts_map(v["opt"]),
        "Labels": labels_map(v["label"]),
    }
    vol = cli.api.post_json("/volumes/create", body=body) or {}
    cli.print(vol.get("Name", name))
    return 0


LS = Spec(
    "volume ls",
    "[OPTIONS]",
    "List volumes",
    [
        O("cluster", None, help="Display only cluster volumes, and use cluster volume list formatting"),
        O("filter", "f", "list", 'Provide filter values (e.g. "dangling=true")', type_name="filter"),
        O("format", None, "string", TABLE_FORMAT_HELP),
        O("quiet", "q", help="Only display volume names"),
    ],
    max_args=0,
)

VOLUME_HEADERS = {
    "Name": "VOLUME NAME",
    "Driver": "DRIVER",
    "Scope": "SCOPE",
    "Mountpoint": "MOUNTPOINT",
    "Labels": "LABELS",
    "Links": "LINKS",
    "Size": "SIZE",
    "Group": "GROUP",
    "Availability": "AVAILABILITY",
    "Status": "STATUS",
}


def _labels_text(labels: dict[str, str] | None) -> str:
    return ",".join(f"{k}={val}" for k, val in sorted((labels or {}).items()))


class VolumeRow(JsonRow):
    """docker's volumeContext: the fields a `volume ls --format` template can use."""

    GO_TYPE = "*formatter.volumeContext"

    def __init__(self, vol: dict[str, Any]) -> None:
        self._v = vol
        self.Name = vol.get("Name", "")
        self.Driver = vol.get("Driver", "")
        self.Scope = vol.get("Scope", "")
        self.Mountpoint = vol.get("Mountpoint", "")
        self.Labels = _labels_text(vol.get("Labels"))
        usage = vol.get("UsageData")
        self.Links = "N/A" if not usage else str(usage.get("RefCount", 0))
        self.Size = "N/A" if not usage else human_size(usage.get("Size", 0))
        cluster = vol.get("ClusterVolume") or {}
        self.Group = "N/A" if not cluster else (cluster.get("Spec") or {}).get("Group", "")
        self.Availability = "N/A" if not cluster else (cluster.get("Spec") or {}).get("Availability", "")
        self.Status = "N/A" if not cluster else ""

    def Label(self, name: str) -> str:  # noqa: N802 - Go method name
        return str((self._v.get("Labels") or {}).get(name, ""))

    def as_json(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in sorted(VOLUME_HEADERS)}


_NUM = re.compile(r"(\d+)")


def natural_key(s: str) -> list[Any]:
    """sortorder.NaturalLess: digit runs compare by value."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in _NUM.split(s) if p]


def cmd_ls(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    try:
        filters = parse_filters(v["filter"])
    except OptError as e:
        raise StatusError(125, str(e)) from None
    doc = cli.api.get_json("/volumes", {"filters": filters or None}) or {}
    vols = sorted(doc.get("Volumes") or [], key=lambda x: natural_key(x.get("Name", "")))
    rows = [VolumeRow(x) for x in vols]
    fmt = v["format"] or ("" if v["quiet"] else cli.config.get("volumesFormat") or "")
    if v["quiet"] and not v["format"]:
        for r in rows:
            cli.print(r.Name)
        return 0
    print_list(
        cli.out,
        fmt,
        rows,
        default_table="table {{.Driver}}\t{{.Name}}",
        header=Header(VOLUME_HEADERS),
        to_json=VolumeRow.as_json,
    )
    for w in doc.get("Warnings") or []:
        cli.eprint(w)
    return 0


INSPECT = Spec(
    "volume inspect",
    "[OPTIONS] VOLUME [VOLUME...]",
    "Display detailed information on one or more volumes",
    [O("format", "f", "string", INSPECT_FORMAT_HELP)],
    min_args=1,
)


def cmd_inspect(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    # docker re-marshals the volume struct: fields in struct order (alphabetical) and map keys sorted
    return inspect_objects(
        cli, lambda n: cli.api.get_json(f"/volumes/{q(n)}"), args, v["format"], kind="volume", sort_keys=True
    )


RM = Spec(
    "volume rm",
    "[OPTIONS] VOLUME [VOLUME...]",
    "Remove one or more volumes. You cannot remove a volume that is in use by a container.",
    [O("force", "f", help="Force the removal of one or more volumes")],
    min_args=1,
)


def cmd_rm(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    force = 1 if v["force"] else None
    return remove_each(cli, args, lambda n: cli.api.delete(f"/volumes/{q(n)}", {"force": force}))


PRUNE = Spec(
    "volume prune",
    "[OPTIONS]",
    "Remove unused local volumes",
    [
        O("all", "a", help="Remove all unused volumes, not just anonymous ones"),
        O("filter", None, "list", 'Provide filter values (e.g. "label=<label>")', type_name="filter"),
        O("force", "f", help="Do not prompt for confirmation"),
    ],
    max_args=0,
)

UNUSED_WARNING = (
    "WARNING! This will remove anonymous local volumes not used by at least one container.\n"
    "Are you sure you want to continue?"
)
ALL_WARNING = (
    "WARNING! This will remove all local volumes not used by at least one container.\n"
    "Are you sure you want to continue?"
)


def cmd_prune(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    from gorae.cli.commands.lifecycle import confirm

    try:
        filters = parse_filters(v["filter"])
    except OptError as e:
        raise StatusError(125, str(e)) from None
    if v["all"]:
        if "all" in filters:
            raise StatusError(1, "conflicting options: cannot specify both --all and --filter all=1")
        if cli.api.api_at_least("1.42"):
            filters["all"] = {"true": True}
    if not v["force"] and not confirm(cli, ALL_WARNING if v["all"] else UNUSED_WARNING):
        return 0
    doc = cli.api.post_json("/volumes/prune", {"filters": filters or None}) or {}
    print_pruned(cli, "Volumes", doc.get("VolumesDeleted") or [], doc.get("SpaceReclaimed") or 0)
    return 0


COMMANDS = {
    "volume create": (CREATE, cmd_create),
    "volume ls": (LS, cmd_ls),
    "volume inspect": (INSPECT, cmd_inspect),
    "volume rm": (RM, cmd_rm),
    "volume prune": (PRUNE, cmd_prune),
}
