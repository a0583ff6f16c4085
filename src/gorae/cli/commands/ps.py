"""`gorae ps` (container ls): the list, its columns, filters and formats, as docker's."""

from __future__ import annotations

from gorae.cli.context import StatusError
from gorae.cli.flags import TABLE_FORMAT_HELP, O, Spec
from gorae.cli.output import Header, JsonRow, ellipsis, go_time, human_size, print_list, render, since

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from gorae.cli.context import Cli

FORMAT_HELP = TABLE_FORMAT_HELP

PS = Spec(
    "ps",
    "[OPTIONS]",
    "List containers",
    [
        O("all", "a", help="Show all containers (default shows just running)"),
        O("filter", "f", "list", "Filter output based on conditions provided", type_name="filter"),
        O("format", None, "string", FORMAT_HELP),
        O("last", "n", "int", "Show n last created containers (includes all states)", default=-1),
        O("latest", "l", help="Show the latest created container (includes all states)"),
        O("no-trunc", None, help="Don't truncate output"),
        O("quiet", "q", help="Only display container IDs"),
        O("size", "s", help="Display total file sizes"),
    ],
    max_args=0,
)

HEADERS = {
    "ID": "CONTAINER ID",
    "Image": "IMAGE",
    "Command": "COMMAND",
    "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED",
    "Ports": "PORTS",
    "State": "STATE",
    "Status": "STATUS",
    "Size": "SIZE",
    "Names": "NAMES",
    "Labels": "LABELS",
    "Mounts": "MOUNTS",
    "Networks": "NETWORKS",
    "LocalVolumes": "LOCAL VOLUMES",
}


def display_ports(ports: list[dict[str, Any]]) -> str:
    """docker's DisplayablePorts (formatting.ports_string)."""
    from gorae.cli.formatting import ports_string

    return str(ports_string(ports))


class PsRow(JsonRow):
    """docker's ContainerContext: the fields a `ps --format` template can use."""

    def __init__(self, c: dict[str, Any], trunc: bool) -> None:
        self._c = c
        self._trunc = trunc

    @property
    def ID(self) -> str:  # noqa: N802
        cid: str = self._c["Id"]
        return cid[:12] if self._trunc else cid

    @property
    def Image(self) -> str:  # noqa: N802
        image = self._c.get("Image") or "<no image>"
        if self._trunc:
            if image.startswith("sha256:") and image.replace("sha256:", "") in (self._c.get("ImageID") or ""):
                return image[7:19]
            if "@" in image:
                image = image.split("@", 1)[0]
        return image

    @property
    def Command(self) -> str:  # noqa: N802
        from gorae.cli.formatting import ps_command

        return str(ps_command(self._c.get("Command") or "", self._trunc))

    @property
    def CreatedAt(self) -> str:  # noqa: N802
        return go_time(self._c.get("Created", 0))

    @property
    def RunningFor(self) -> str:  # noqa: N802
        return since(self._c.get("Created", 0))

    @property
    def Ports(self) -> str:  # noqa: N802
        return display_ports(self._c.get("Ports") or [])

    @property
    def State(self) -> str:  # noqa: N802
        state: str = self._c.get("State", "")
        return state

    @property
    def Status(self) -> str:  # noqa: N802
        status: str = self._c.get("Status", "")
        return status

    @property
    def Size(self) -> str:  # noqa: N802
        rw, root = self._c.get("SizeRw") or 0, self._c.get("SizeRootFs") or 0
        if "SizeRw" not in self._c and "SizeRootFs" not in self._c:
            return "0B"
        return f"{human_size(rw)} (virtual {human_size(root)})"

    @property
    def Names(self) -> str:  # noqa: N802
        names = [n[1:] if n.startswith("/") else n for n in self._c.get("Names") or []]
        if self._trunc:
            names = [n for n in names if "/" not in n][:1] or names[:1]
        return ",".join(names)

    @property
    def Labels(self) -> str:  # noqa: N802
        return ",".join(f"{k}={v}" for k, v in (self._c.get("Labels") or {}).items())

    def Label(self, name: str) -> str:  # noqa: N802
        labels: dict[str, str] = self._c.get("Labels") or {}
        return labels.get(name, "")

    @property
    def Mounts(self) -> str:  # noqa: N802
        out = []
        for m in self._c.get("Mounts") or []:
            name = m.get("Name") or m.get("Source") or ""
            out.append(ellipsis(name, 15) if self._trunc else name)
        return ",".join(out)

    @property
    def Networks(self) -> str:  # noqa: N802
        return ",".join(sorted((self._c.get("NetworkSettings") or {}).get("Networks") or {}))

    @property
    def LocalVolumes(self) -> str:  # noqa: N802
        return str(sum(1 for m in self._c.get("Mounts") or [] if m.get("Driver") == "local"))

    GO_TYPE = "*formatter.ContainerContext"
    TEMPLATE_ERROR = "failed to execute template"

    def as_json(self) -> dict[str, Any]:
        """docker's ContainerContext.MarshalJSON: every field (sorted when marshalled), `Platform` null."""
        doc: dict[str, Any] = {k: getattr(self, k) for k in HEADERS}
        doc["Platform"] = None
        return {k: doc[k] for k in sorted(doc)}


def cmd_ps(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    filters = None
    if v["filter"]:
        from gorae.cli.opts import OptError, parse_filters

        try:
            filters = parse_filters(v["filter"])
        except OptError as e:
            raise StatusError(125, str(e)) from None
    params: dict[str, Any] = {}
    if v["all"]:
        params["all"] = 1
    limit = 1 if v["latest"] else v["last"]
    if limit is not None and limit != -1:
        params["limit"] = limit
    fmt = v["format"] or ""
    if not fmt and not v["quiet"]:
        fmt = cli.config.get("psFormat") or ""
    # docker asks for sizes when the template uses .Size, `{{json .}}` too (it marshals every field); not for
    # `--format json`
    want_size = v["size"] or (not v["quiet"] and (".Size" in fmt or "json ." in " ".join(fmt.split())))
    if want_size:
        params["size"] = 1
    if filters:
        params["filters"] = filters
    containers = cli.api.get_json("/containers/json", params) or []
    if v["quiet"] and not v["format"]:
        fmt = "{{.ID}}"
    write_ps(cli.out, fmt, containers, trunc=not v["no_trunc"], size=v["size"])
    return 0


def write_ps(out: Any, fmt: str, containers: list[dict[str, Any]], *, trunc: bool, size: bool) -> None:
    """Print the API's container list in `fmt` (empty: the default table, plus SIZE with --size)."""
    if fmt and fmt not in ("table", "json"):
        # docker runs the template once on an empty context before listing (to see whether it uses .Size):
        # an unknown field fails there, with or without containers, at its column in the format as typed
        render(fmt, PsRow({"Id": ""}, trunc))
    rows = [PsRow(c, trunc) for c in containers]
    default = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
    if size:
        default += "\t{{.Size}}"
    print_list(out, fmt, rows, default_table=default, header=Header(HEADERS), to_json=PsRow.as_json)


COMMANDS = {"ps": (PS, cmd_ps)}
