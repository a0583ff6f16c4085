"""The shapes docker shows for networks and container network settings, and `network ls`/`prune` filters.

Network records are stored in the metadata store (kind "network") in docker's inspect shape plus a private
`_gorae` key (bridge name, whether it is a pre-defined network); `Containers` is computed from the
endpoints on every inspect. Filters have moby's `filters.Args` semantics (`gorae.filters.Filters`).
"""

from __future__ import annotations

from typing import Any

from gorae.errors import InvalidParameter
from gorae.filters import Filters, label_matches
from gorae.network.types import NetworkSpec
from gorae.timefmt import now_rfc3339nano, parse_timestamp

PREDEFINED = ("bridge", "host", "none")
BRIDGE_OPT_NAME = "com.docker.network.bridge.name"
BRIDGE_OPT_MASQ = "com.docker.network.bridge.enable_ip_masquerade"
BRIDGE_OPT_ICC = "com.docker.network.bridge.enable_icc"
BRIDGE_OPT_MTU = "com.docker.network.driver.mtu"
BRIDGE_OPT_HOST_IP = "com.docker.network.bridge.host_binding_ipv4"
BRIDGE_OPT_DEFAULT = "com.docker.network.bridge.default_bridge"

FILTER_KEYS = ("dangling", "driver", "id", "label", "name", "scope", "type")
PRUNE_FILTER_KEYS = ("until", "label", "label!")


def network_doc(
    *,
    name: str,
    id: str,
    driver: str,
    subnet: str | None,
    gateway: str | None,
    ip_range: str | None,
    internal: bool,
    attachable: bool,
    labels: dict[str, str],
    options: dict[str, str],
    bridge: str | None,
    default: bool = False,
    ipam_options: dict[str, str] | None = None,
) -> dict[str, Any]:
    config: list[dict[str, str]] = []
    if subnet:
        entry = {"Subnet": subnet}
        if ip_range and ip_range != subnet:
            entry["IPRange"] = ip_range
        if gateway:
            entry["Gateway"] = gateway
        config.append(entry)
    return {
        "Name": name,
        "Id": id,
        "Created": now_rfc3339nano(),
        "Scope": "local",
        "Driver": driver,
        "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": ipam_options, "Config": config},
        "Internal": internal,
        "Attachable": attachable,
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Options": options,
        "Labels": labels,
        "_gorae": {"bridge": bridge, "default": default},
    }


def set_ipv6(
    doc: dict[str, Any], subnet: str, gateway: str, ip_range: str | None, *, user_gateway: bool
) -> dict[str, Any]:
    """Add a network's IPv6 pool: its `IPAM.Config` entry (after the IPv4 one; `Gateway` only when the user
    gave one, as dockerd 20.10 shows it) and the private record endpoints are addressed from
    (`_gorae.ipv6`: subnet, gateway — the first address unless given — and range)."""
    import ipaddress

    net = ipaddress.IPv6Network(subnet, strict=False)
    entry: dict[str, str] = {"Subnet": str(net)}
    if ip_range and ip_range != str(net):
        entry["IPRange"] = ip_range
    gw = gateway or str(net.network_address + 1)
    if user_gateway:
        entry["Gateway"] = gw
    doc["IPAM"]["Config"].append(entry)
    v6 = {"subnet": str(net), "gateway": gw, "range": ip_range or str(net), "prefixlen": net.prefixlen}
    doc["_gorae"]["ipv6"] = v6
    return v6


def ipv6_of(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The IPv6 pool endpoints of the network get addresses from (None: IPv4 only)."""
    v6: dict[str, Any] | None = doc.get("_gorae", {}).get("ipv6")
    return v6 if doc.get("EnableIPv6") else None


def public(doc: dict[str, Any], containers: dict[str, Any] | None) -> dict[str, Any]:
    """The inspect document: without private keys, with Containers filled in; the gateway gorae chose on a
    subnet the user gave is left out of IPAM.Config, as dockerd records only what the user gave."""
    out = {k: v for k, v in doc.items() if not k.startswith("_")}
    if doc.get("_gorae", {}).get("implicit_gateway") and out["IPAM"]["Config"]:
        first = {k: v for k, v in out["IPAM"]["Config"][0].items() if k != "Gateway"}
        out["IPAM"] = {**out["IPAM"], "Config": [first, *out["IPAM"]["Config"][1:]]}
    keys = list(out)
    result: dict[str, Any] = {}
    for k in keys:
        result[k] = out[k]
        if k == "ConfigOnly":
            result["Containers"] = containers
    result.setdefault("Containers", containers)
    return result


def as_filters(raw: Any) -> Filters:
    """The filters of a list/prune call: a parsed `Filters`, or a decoded document in either encoding."""
    return raw if isinstance(raw, Filters) else Filters.from_json(raw or None)


def check_list_filters(filters: Filters) -> None:
    filters.validate(FILTER_KEYS)
    for t in filters.get("type"):
        if t not in ("custom", "builtin"):
            raise InvalidParameter(f"invalid filter: 'type'='{t}'")
    filters.bool_or_default("dangling", False)  # InvalidParameter "invalid filter 'dangling=x'"


def matches(doc: dict[str, Any], filters: Filters, in_use: bool) -> bool:
    """`network ls --filter`: name and id as regular expressions, driver and scope exactly, labels, type
    (builtin or custom) and dangling (neither in use nor builtin)."""
    if not (filters.regex("name", doc["Name"]) and filters.regex("id", doc["Id"])):
        return False
    if not (filters.exact("driver", doc["Driver"]) and filters.exact("scope", doc["Scope"])):
        return False
    if not filters.match_labels(doc.get("Labels")):
        return False
    builtin = bool(doc.get("_gorae", {}).get("default"))
    if not filters.exact("type", "builtin" if builtin else "custom"):
        return False
    if filters.contains("dangling"):
        if filters.bool_or_default("dangling", False) != (not in_use and not builtin):
            return False
    return True


def created_ns(doc: dict[str, Any]) -> int:
    try:
        return parse_timestamp(str(doc.get("Created", "")))
    except InvalidParameter:
        return 0


def prune_matches(doc: dict[str, Any], filters: Filters) -> bool:
    """`network prune --filter`: until (created before), label, label! (none of them holds)."""
    filters.validate(PRUNE_FILTER_KEYS)
    for u in filters.get("until"):
        if created_ns(doc) >= parse_timestamp(u):
            return False
    labels = doc.get("Labels") or {}
    if not filters.match_labels(labels):
        return False
    if any(label_matches(labels, w) for w in filters.get("label!")):
        return False
    return True


def endpoint_settings(ep: dict[str, Any] | None, network_id: str) -> dict[str, Any]:
    """One entry of NetworkSettings.Networks."""
    ep = ep or {}
    return {
        "IPAMConfig": ep.get("ipam_config") or None,
        "Links": ep.get("links") or None,
        "Aliases": ep.get("aliases") or None,
        "MacAddress": ep.get("mac", ""),
        "DriverOpts": ep.get("driver_opts") or None,
        "NetworkID": network_id,
        "EndpointID": ep.get("id", ""),
        "Gateway": ep.get("gateway", ""),
        "IPAddress": ep.get("ip", ""),
        "IPPrefixLen": ep.get("prefixlen", 0),
        "IPv6Gateway": ep.get("gateway6", ""),
        "GlobalIPv6Address": ep.get("ip6", ""),
        "GlobalIPv6PrefixLen": ep.get("prefixlen6", 0),
        "DNSNames": ep.get("dns_names") or None,
    }


def empty_settings(sandbox_key: str = "", sandbox_id: str = "") -> dict[str, Any]:
    return {
        "Bridge": "",
        "SandboxID": sandbox_id,
        "SandboxKey": sandbox_key,
        "Ports": {},
        "HairpinMode": False,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "SecondaryIPAddresses": None,
        "SecondaryIPv6Addresses": None,
        "EndpointID": "",
        "Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "IPAddress": "",
        "IPPrefixLen": 0,
        "IPv6Gateway": "",
        "MacAddress": "",
        "Networks": {},
    }


def predefined_network_doc(name: str, driver_type: str, network_id: str, spec: NetworkSpec) -> dict[str, Any]:
    """The record of a driver's predefined network (`bridge`, `host`, `none`) from its spec."""
    return network_doc(
        name=name,
        id=network_id,
        driver=driver_type,
        subnet=spec.subnet,
        gateway=spec.gateway,
        ip_range=spec.ip_range,
        internal=False,
        attachable=False,
        labels={},
        options=dict(spec.options),
        bridge=spec.interface,
        default=True,
    )
