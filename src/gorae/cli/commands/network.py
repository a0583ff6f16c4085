"""Network commands: `network create`, `network ls` (list), `network inspect`, `network rm` (remove),
`network prune`, `network connect` and `network disconnect`, with docker's flags, IPAM option checks, table
columns and messages."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from gorae.cli.commands.common import inspect_objects, remove_each
from gorae.cli.commands.volume import natural_key, opts_map
from gorae.cli.context import Cli, StatusError
from gorae.cli.flags import INSPECT_FORMAT_HELP, TABLE_FORMAT_HELP, O, Spec
from gorae.cli.opts import OptError, labels_map, parse_filters
from gorae.cli.output import Header, JsonRow, print_list
from gorae.client.api import q

CREATE = Spec(
    "network create",
    "[OPTIONS] NETWORK",
    "Create a network",
    [
        O("attachable", None, help="Enable manual container attachment"),
        O(
            "aux-address",
            None,
            "list",
            "Auxiliary IPv4 or IPv6 addresses used by Network driver",
            type_name="map",
            default_text="map[]",
        ),
        O("config-from", None, "string", "The network from which to copy the configuration"),
        O("config-only", None, help="Create a configuration only network"),
        O("driver", "d", "string", "Driver to manage the Network", default="bridge"),
        O("gateway", None, "list", "IPv4 or IPv6 Gateway for the master subnet", type_name="strings"),
        O("ingress", None, help="Create swarm routing-mesh network"),
        O("internal", None, help="Restrict external access to the network"),
        O("ip-range", None, "list", "Allocate container ip from a sub-range", type_name="strings"),
        O("ipam-driver", None, "string", "IP Address Management Driver", default="default"),
        O(
            "ipam-opt",
            None,
            "list",
            "Set IPAM driver specific options",
            type_name="map",
            default_text="map[]",
        ),
        O("ipv4", None, help="Enable or disable IPv4 address assignment", default=True, default_text="true"),
        O("ipv6", None, help="Enable or disable IPv6 address assignment"),
        O("label", None, "list", "Set metadata on a network"),
        O("opt", "o", "list", "Set driver specific options", type_name="map", default_text="map[]"),
        O("scope", None, "string", "Control the network's scope"),
        O(
            "subnet",
            None,
            "list",
            "Subnet in CIDR format that represents a network segment",
            type_name="strings",
        ),
    ],
    min_args=1,
    max_args=1,
    exact_args=True,
)


def _split_list(values: list[str]) -> list[str]:
    """pflag `strings` values: each may hold several comma-separated items."""
    return [x for v in values for x in v.split(",") if x]


def ipam_config(
    subnets: list[str], ranges: list[str], gateways: list[str], aux: dict[str, str]
) -> list[dict[str, Any]]:
    """docker's consolidateIpam: attach each ip-range, gateway and aux address to the subnet holding it."""
    if not subnets and (ranges or gateways or aux):
        raise StatusError(1, "every ip-range or gateway must have a corresponding subnet")
    nets: list[tuple[Any, dict[str, Any]]] = []
    for s in subnets:
        try:
            net = ipaddress.ip_network(s, strict=False)
        except ValueError:
            if ranges or gateways or aux:
                raise StatusError(1, f"invalid CIDR address: {s}") from None
            nets.append((None, {"Subnet": s, "AuxiliaryAddresses": {}}))  # the daemon's to refuse, as docker
            continue
        for other, _ in nets:
            if other is not None and other.version == net.version and other.overlaps(net):
                raise StatusError(1, "multiple overlapping subnet configuration is not supported")
        nets.append((net, {"Subnet": s, "AuxiliaryAddresses": {}}))

    def owner(addr: Any) -> dict[str, Any] | None:
        for net, cfg in nets:
            if net is not None and addr.version == net.version and (
                addr.subnet_of(net) if hasattr(addr, "subnet_of") else addr in net
            ):
                return cfg
        return None

    for r in ranges:
        try:
            rn = ipaddress.ip_network(r, strict=False)
        except ValueError:
            raise StatusError(1, f"invalid CIDR address: {r}") from None
        cfg = owner(rn)
        if cfg is None:
            raise StatusError(1, f"no matching subnet for range {r}")
        if cfg.get("IPRange"):
            raise StatusError(
                1,
                f"cannot configure multiple ranges ({r}, {cfg['IPRange']}) on the same subnet ({cfg['Subnet']})",
            )
        cfg["IPRange"] = r
    for g in gateways:
        try:
            ga = ipaddress.ip_address(g)
        except ValueError:
            raise StatusError(1, f"invalid IP address: {g}") from None
        cfg = owner(ipaddress.ip_network(ga))
        if cfg is None:
            raise StatusError(1, f"no matching subnet for gateway {g}")
        if cfg.get("Gateway"):
            raise StatusError(
                1,
                f"cannot configure multiple gateways ({g}, {cfg['Gateway']}) for the same subnet ({cfg['Subnet']})",
            )
        cfg["Gateway"] = g
    for key, a in aux.items():
        try:
            aa = ipaddress.ip_address(a)
        except ValueError:
            raise StatusError(1, f"invalid IP address: {a}") from None
        cfg = owner(ipaddress.ip_network(aa))
        if cfg is None:
            raise StatusError(1, f"no matching subnet for aux-address {a}")
        cfg["AuxiliaryAddresses"][key] = a
    out = []
    for _, cfg in nets:
        if not cfg["AuxiliaryAddresses"]:
            del cfg["AuxiliaryAddresses"]
        out.append(cfg)
    return out


def cmd_create(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    config = ipam_config(
        _split_list(v["subnet"]),
        _split_list(v["ip_range"]),
        _split_list(v["gateway"]),
        opts_map(v["aux_address"]),
    )
    body: dict[str, Any] = {
        "Name": args[0],
        "Driver": v["driver"],
        "Options": opts_map(v["opt"]),
        "IPAM": {"Driver": v["ipam_driver"], "Config": config, "Options": opts_map(v["ipam_opt"])},
        "Internal": v["internal"],
        "Attachable": v["attachable"],
        "Ingress": v["ingress"],
        "Scope": v["scope"] or "",
        "ConfigOnly": v["config_only"],
        "Labels": labels_map(v["label"]),
    }
    if "ipv6" in v["_set"]:
        body["EnableIPv6"] = v["ipv6"]
    if "ipv4" in v["_set"]:
        body["EnableIPv4"] = v["ipv4"]
    if v["config_from"]:
        body["ConfigFrom"] = {"Network": v["config_from"]}
    doc = cli.api.post_json("/networks/create", body=body) or {}
    cli.print(doc.get("Id", ""))
    return 0


LS = Spec(
    "network ls",
    "[OPTIONS]",
    "List networks",
    [
        O("filter", "f", "list", 'Provide filter values (e.g. "driver=bridge")', type_name="filter"),
        O("format", None, "string", TABLE_FORMAT_HELP),
        O("no-trunc", None, help="Do not truncate the output"),
        O("quiet", "q", help="Only display network IDs"),
    ],
    max_args=0,
)

NETWORK_HEADERS = {
    "ID": "NETWORK ID",
    "Name": "NAME",
    "Driver": "DRIVER",
    "Scope": "SCOPE",
    "IPv4": "IPV4",
    "IPv6": "IPV6",
    "Internal": "INTERNAL",
    "Labels": "LABELS",
    "CreatedAt": "CREATED AT",
}


_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def go_time_string(rfc3339: str) -> str:
    """Go's time.Time.String() of a time parsed from RFC 3339 JSON ("2024-01-02 15:04:05.123 +0000 UTC")."""
    m = _RFC3339.match(rfc3339)
    if not m:
        return "0001-01-01 00:00:00 +0000 UTC"
    day, clock, frac, zone = m.groups()
    frac = (frac or "").rstrip("0")
    text = f"{day} {clock}" + (f".{frac}" if frac else "")
    if zone == "Z":
        return text + " +0000 UTC"
    off = zone.replace(":", "")
    return f"{text} {off} {off}"


class NetworkRow(JsonRow):
    """docker's networkContext: the fields a `network ls --format` template can use."""

    GO_TYPE = "*network.networkContext"

    def __init__(self, net: dict[str, Any], trunc: bool) -> None:
        self._n = net
        nid = net.get("Id", "")
        self.ID = nid[:12] if trunc else nid
        self.Name = net.get("Name", "")
        self.Driver = net.get("Driver", "")
        self.Scope = net.get("Scope", "")
        self.IPv4 = "true" if net.get("EnableIPv4") else "false"
        self.IPv6 = "true" if net.get("EnableIPv6") else "false"
        self.Internal = "true" if net.get("Internal") else "false"
        self.Labels = ",".join(f"{k}={val}" for k, val in sorted((net.get("Labels") or {}).items()))
        self.CreatedAt = go_time_string(net.get("Created") or "")

    def Label(self, name: str) -> str:  # noqa: N802 - Go method name
        return str((self._n.get("Labels") or {}).get(name, ""))

    def as_json(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in sorted(NETWORK_HEADERS)}


def cmd_ls(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    try:
        filters = parse_filters(v["filter"])
    except OptError as e:
        raise StatusError(125, str(e)) from None
    nets = cli.api.get_json("/networks", {"filters": filters or None}) or []
    nets.sort(key=lambda n: natural_key(n.get("Name", "")))
    rows = [NetworkRow(n, not v["no_trunc"]) for n in nets]
    fmt = v["format"] or ("" if v["quiet"] else cli.config.get("networksFormat") or "")
    if v["quiet"] and not v["format"]:
        for r in rows:
            cli.print(r.ID)
        return 0
    print_list(
        cli.out,
        fmt,
        rows,
        default_table="table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
        header=Header(NETWORK_HEADERS),
        to_json=NetworkRow.as_json,
    )
    return 0


INSPECT = Spec(
    "network inspect",
    "[OPTIONS] NETWORK [NETWORK...]",
    "Display detailed information on one or more networks",
    [
        O("format", "f", "string", INSPECT_FORMAT_HELP),
        O("verbose", "v", help="Verbose output for diagnostics"),
    ],
    min_args=1,
)


def cmd_inspect(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    verbose = "true" if v["verbose"] else None
    return inspect_objects(
        cli, lambda n: cli.api.get_json(f"/networks/{q(n)}", {"verbose": verbose}), args, v["format"], kind="network"
    )


RM = Spec(
    "network rm",
    "NETWORK [NETWORK...]",
    "Remove one or more networks",
    [O("force", "f", help="Do not error if the network does not exist")],
    min_args=1,
)


def cmd_rm(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    try:
        return remove_each(cli, args, lambda n: cli.api.delete(f"/networks/{q(n)}"), ignore_missing=v["force"])
    except StatusError as e:  # docker 28's network rm ends its errors with this line
        raise StatusError(e.status, e.message + "\nexit status 1") from None


PRUNE = Spec(
    "network prune",
    "[OPTIONS]",
    "Remove all unused networks",
    [
        O("filter", None, "list", 'Provide filter values (e.g. "until=<timestamp>")', type_name="filter"),
        O("force", "f", help="Do not prompt for confirmation"),
    ],
    max_args=0,
)


def cmd_prune(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    from gorae.cli.commands.lifecycle import confirm

    try:
        filters = parse_filters(v["filter"])
    except OptError as e:
        raise StatusError(125, str(e)) from None
    if not v["force"] and not confirm(
        cli,
        "WARNING! This will remove all custom networks not used by at least one container.\n"
        "Are you sure you want to continue?",
    ):
        return 0
    doc = cli.api.post_json("/networks/prune", {"filters": filters or None}) or {}
    deleted = doc.get("NetworksDeleted") or []
    if deleted:
        cli.out.write("Deleted Networks:\n" + "".join(d + "\n" for d in deleted) + "\n")
    return 0


CONNECT = Spec(
    "network connect",
    "[OPTIONS] NETWORK CONTAINER",
    "Connect a container to a network",
    [
        O("alias", None, "list", "Add network-scoped alias for the container", type_name="strings"),
        O("driver-opt", None, "list", "driver options for the network", type_name="strings"),
        O(
            "gw-priority",
            None,
            "int",
            "Highest gw-priority provides the default gateway. Accepts positive and negative values.",
        ),
        O("ip", None, "string", 'IPv4 address (e.g., "172.30.100.104")'),
        O("ip6", None, "string", 'IPv6 address (e.g., "2001:db8::33")'),
        O("link", None, "list", "Add link to another container"),
        O("link-local-ip", None, "list", "Add a link-local address for the container", type_name="strings"),
    ],
    min_args=2,
    max_args=2,
    exact_args=True,
)


def cmd_connect(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    ipam: dict[str, Any] = {}
    if v["ip"]:
        ipam["IPv4Address"] = v["ip"]
    if v["ip6"]:
        ipam["IPv6Address"] = v["ip6"]
    if v["link_local_ip"]:
        ipam["LinkLocalIPs"] = _split_list(v["link_local_ip"])
    endpoint: dict[str, Any] = {}
    if ipam:
        endpoint["IPAMConfig"] = ipam
    if v["link"]:
        endpoint["Links"] = v["link"]
    if v["alias"]:
        endpoint["Aliases"] = _split_list(v["alias"])
    if v["driver_opt"]:
        endpoint["DriverOpts"] = opts_map(_split_list(v["driver_opt"]))
    if v["gw_priority"]:
        endpoint["GwPriority"] = v["gw_priority"]
    body = {"Container": args[1], "EndpointConfig": endpoint or None}
    cli.api.post(f"/networks/{q(args[0])}/connect", body=body)
    return 0


DISCONNECT = Spec(
    "network disconnect",
    "[OPTIONS] NETWORK CONTAINER",
    "Disconnect a container from a network",
    [O("force", "f", help="Force the container to disconnect from a network")],
    min_args=2,
    max_args=2,
    exact_args=True,
)


def cmd_disconnect(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    cli.api.post(f"/networks/{q(args[0])}/disconnect", body={"Container": args[1], "Force": v["force"]})
    return 0


COMMANDS = {
    "network create": (CREATE, cmd_create),
    "network ls": (LS, cmd_ls),
    "network inspect": (INSPECT, cmd_inspect),
    "network rm": (RM, cmd_rm),
    "network prune": (PRUNE, cmd_prune),
    "network connect": (CONNECT, cmd_connect),
    "network disconnect": (DISCONNECT, cmd_disconnect),
}
