"""The shapes docker shows for networks and container network settings, and `network ls`/`prune` filters.

Network records are stored in the metadata store (kind "network") in docker's inspect shape plus a private
`_gorae` key (bridge name, whether it is a pre-defined network); `Containers` is computed from the
endpoints on every inspect.
"""

from __future__ import annotations

import re
import time
from typing import Any

from gorae.errors import InvalidParameter

PREDEFINED = ("bridge", "host", "none")
BRIDGE_OPT_NAME = "com.docker.network.bridge.name"
BRIDGE_OPT_MASQ = "com.docker.network.bridge.enable_ip_masquerade"
BRIDGE_OPT_ICC = "com.docker.network.bridge.enable_icc"
BRIDGE_OPT_MTU = "com.docker.network.driver.mtu"
BRIDGE_OPT_HOST_IP = "com.docker.network.bridge.host_binding_ipv4"
BRIDGE_OPT_DEFAULT = "com.docker.network.bridge.default_bridge"

FILTER_KEYS = ("dangling", "driver", "id", "label", "name", "scope", "type")
PRUNE_FILTER_KEYS = ("until", "label", "label!")


def now_rfc3339() -> str:
    ns = time.time_ns()
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + f".{ns % 1_000_000_000:09d}Z"
    )


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
        "Created": now_rfc3339(),
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


def public(doc: dict[str, Any], containers: dict[str, Any]) -> dict[str, Any]:
    """The inspect document: without private keys, with Containers filled in."""
    out = {k: v for k, v in doc.items() if not k.startswith("_")}
    keys = list(out)
    result: dict[str, Any] = {}
    for k in keys:
        result[k] = out[k]
        if k == "ConfigOnly":
            result["Containers"] = containers
    result.setdefault("Containers", containers)
    return result


def normalize_filters(filters: Any) -> dict[str, list[str]]:
    """docker's two encodings ({"k": ["v"]} and {"k": {"v": true}}) → {"k": ["v"]}."""
    if not filters:
        return {}
    if not isinstance(filters, dict):
        raise InvalidParameter("invalid filter")
    out: dict[str, list[str]] = {}
    for k, v in filters.items():
        if isinstance(v, dict):
            out[k] = [x for x, on in v.items() if on]
        elif isinstance(v, list):
            out[k] = [str(x) for x in v]
        else:
            out[k] = [str(v)]
    return out


def _match(pattern: str, value: str) -> bool:
    try:
        return re.search(pattern, value) is not None
    except re.error:
        return pattern in value


def _labels_match(labels: dict[str, str], wanted: list[str]) -> bool:
    for w in wanted:
        k, sep, v = w.partition("=")
        if k not in labels or (sep and labels[k] != v):
            return False
    return True


def check_list_filters(filters: dict[str, list[str]]) -> None:
    for k in filters:
        if k not in FILTER_KEYS:
            raise InvalidParameter(f"invalid filter '{k}'")
    for t in filters.get("type", []):
        if t not in ("custom", "builtin"):
            raise InvalidParameter(f"invalid filter: 'type'='{t}'")
    for d in filters.get("dangling", []):
        if d.lower() not in ("true", "false", "1", "0"):
            raise InvalidParameter(f"invalid filter 'dangling={d}'")


def matches(doc: dict[str, Any], filters: dict[str, list[str]], in_use: bool) -> bool:
    if "name" in filters and not any(_match(p, doc["Name"]) for p in filters["name"]):
        return False
    if "id" in filters and not any(_match(p, doc["Id"]) for p in filters["id"]):
        return False
    if "driver" in filters and doc["Driver"] not in filters["driver"]:
        return False
    if "scope" in filters and doc["Scope"] not in filters["scope"]:
        return False
    if "label" in filters and not _labels_match(doc.get("Labels") or {}, filters["label"]):
        return False
    builtin = bool(doc.get("_gorae", {}).get("default"))
    if "type" in filters:
        kinds = {"builtin" if builtin else "custom"}
        if not kinds & set(filters["type"]):
            return False
    if "dangling" in filters:
        want = filters["dangling"][-1].lower() in ("true", "1")
        dangling = not in_use and not builtin
        if want != dangling:
            return False
    return True


def _parse_until(value: str) -> float:
    """docker's `until`: a Unix timestamp, an RFC 3339 date, or a duration like 10m/24h."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)", value)
    if m:
        mult = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}[m.group(2)]
        return time.time() - float(m.group(1)) * mult
    try:
        return float(value)
    except ValueError:
        pass
    for fmt in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            return time.mktime(time.strptime(value[: len(time.strftime(fmt))], fmt))
        except ValueError:
            continue
    raise InvalidParameter(f"failed to parse value {value!r} as a time or duration")


def created_epoch(doc: dict[str, Any]) -> float:
    s = str(doc.get("Created", ""))[:19]
    try:
        return time.mktime(time.strptime(s, "%Y-%m-%dT%H:%M:%S")) - time.timezone
    except ValueError:
        return 0.0


def prune_matches(doc: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    for k in filters:
        if k not in PRUNE_FILTER_KEYS:
            raise InvalidParameter(f"invalid filter '{k}'")
    for u in filters.get("until", []):
        if created_epoch(doc) >= _parse_until(u):
            return False
    labels = doc.get("Labels") or {}
    if "label" in filters and not _labels_match(labels, filters["label"]):
        return False
    if "label!" in filters and any(_labels_match(labels, [w]) for w in filters["label!"]):
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
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
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
