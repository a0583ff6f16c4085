"""Cluster-wide IPAM and VNIs for swarm networks, as pure functions over the stored network documents.

A swarm network's document (store kind "network") is Docker's network inspect shape with Scope "swarm";
under `_gorae` it keeps what the cluster allocated:
  vni        its VXLAN network identifier (4097 and up; Docker's overlay starts there too)
  ipam       {"subnet", "range", "gateway", "allocated": {ip: owner}, "last"} (the local IPAM's format)
  endpoints  {owner: {"ip", "mac", "node", "vtep", "name"}}: every address given to a container or task,
             with the node that holds it and that node's address (the VXLAN tunnel endpoint)
Subnets come from Docker's default swarm address pool, 10.0.0.0/8 in /24s. Every change goes through a
version-checked store update, so two managers (or two nodes' requests) never hand out one address twice.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

from gorae.errors import Conflict, Forbidden, InvalidParameter, SystemError_
from gorae.network.ipam import next_free, parse_ip, parse_subnet
from gorae.network.kernel.netlink import mac_for_ip
from gorae.timefmt import now_rfc3339nano

DEFAULT_POOL = ipaddress.IPv4Network("10.0.0.0/8")
DEFAULT_SIZE = 24
FIRST_VNI = 4097
INGRESS_VNI = (
    4096  # Docker's ingress network: 10.0.0.0/24, VNI 4096; user networks start at 10.0.1.0/24, 4097
)
INGRESS_NAME = "ingress"
INGRESS_SUBNET = "10.0.0.0/24"
MAX_VNI = (1 << 24) - 1
OPT_VXLANID = "com.docker.network.driver.overlay.vxlanid_list"


def subnets_of(docs: Iterable[dict[str, Any]]) -> list[ipaddress.IPv4Network]:
    return [ipaddress.IPv4Network(c["Subnet"]) for d in docs for c in d["IPAM"]["Config"] if c.get("Subnet")]


def choose_subnet(taken: list[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    for cand in DEFAULT_POOL.subnets(new_prefix=DEFAULT_SIZE):
        if not any(cand.overlaps(t) for t in taken):
            return cand
    raise Forbidden("could not find an available IP while allocating VIP")  # pragma: no cover - 65536 /24s


def choose_vni(taken: Iterable[int]) -> int:
    used = set(taken)
    for vni in range(FIRST_VNI, MAX_VNI + 1):
        if vni not in used:
            return vni
    raise SystemError_("no VXLAN network identifier left")  # pragma: no cover


def vni_of(doc: dict[str, Any]) -> int:
    return int(doc.get("_gorae", {}).get("vni", 0))


def new_network(
    net_id: str,
    name: str,
    body: dict[str, Any],
    existing: list[dict[str, Any]],
) -> dict[str, Any]:
    """The stored document of a new swarm network; `body` has the controller's create arguments (subnet,
    gateway, ip_range, internal, attachable, labels, options). Conflict/Forbidden/InvalidParameter as
    dockerd words them."""
    if any(d["Name"] == name for d in existing):
        raise Conflict(f"network with name {name} already exists")
    taken = subnets_of(existing)
    if body.get("subnet"):
        net = parse_subnet(str(body["subnet"]))  # may overlap another swarm network's, as dockerd allows
    else:
        net = choose_subnet(taken)
    if body.get("gateway"):
        gw = parse_ip(str(body["gateway"]), "gateway address")
        if gw not in net:
            raise InvalidParameter(f"no matching subnet for gateway {body['gateway']}")
        gateway = str(gw)
    else:
        gateway = str(next(net.hosts()))
    rng = str(net)
    if body.get("ip_range"):
        r = parse_subnet(str(body["ip_range"]))
        if not r.subnet_of(net):
            raise InvalidParameter(f"no matching subnet for range {body['ip_range']}")
        rng = str(r)
    ingress = bool(body.get("ingress"))
    vni = INGRESS_VNI if ingress else choose_vni(vni_of(d) for d in existing)
    config: dict[str, str] = {"Subnet": str(net), "Gateway": gateway}
    if rng != str(net):
        config = {"Subnet": str(net), "IPRange": rng, "Gateway": gateway}
    options = {**{str(k): str(v) for k, v in (body.get("options") or {}).items()}, OPT_VXLANID: str(vni)}
    return {
        "Name": name,
        "Id": net_id,
        "Created": now_rfc3339nano(),
        "Scope": "swarm",
        "Driver": "overlay",
        "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": None, "Config": [config]},
        "Internal": bool(body.get("internal")),
        "Attachable": bool(body.get("attachable")),
        "Ingress": ingress,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Options": options,
        "Labels": dict(body.get("labels") or {}) or None,  # dockerd: null without labels
        "_gorae": {
            "vni": vni,
            "ipam": {
                "subnet": str(net),
                "range": rng,
                "gateway": gateway,
                "allocated": {gateway: "gateway"},
                "last": gateway,
            },
            "endpoints": {},
        },
    }


def ingress_network(net_id: str, existing: list[dict[str, Any]]) -> dict[str, Any]:
    """The routing mesh's network, as `swarm init` makes it in Docker."""
    return new_network(net_id, INGRESS_NAME, {"subnet": INGRESS_SUBNET, "ingress": True}, existing)


def is_ingress(doc: dict[str, Any]) -> bool:
    return bool(doc.get("Ingress"))


def public(doc: dict[str, Any]) -> dict[str, Any]:
    """The network as docker shows it (no private keys)."""
    return {k: v for k, v in doc.items() if not k.startswith("_")}


def allocate(
    doc: dict[str, Any],
    owner: str,
    wanted: str | None,
    *,
    node: str,
    vtep: str,
    name: str,
    aliases: Sequence[str] = (),
) -> tuple[dict[str, Any], str]:
    """A copy of doc with an address for owner (the one it already holds, `wanted`, or the next free one);
    `name` and `aliases` are what the other nodes' embedded DNS answers for it."""
    g = doc["_gorae"]
    held = g["endpoints"].get(owner)
    if held is not None:
        return doc, str(held["ip"])
    ipam = dict(g["ipam"])
    allocated = dict(ipam["allocated"])
    subnet = ipaddress.IPv4Network(ipam["subnet"])
    if wanted:
        ip = parse_ip(wanted)
        if ip not in subnet or ip in (subnet.network_address, subnet.broadcast_address):
            raise InvalidParameter(f"invalid address {wanted} for network {doc['Name']} ({subnet})")
        key = str(ip)
        if key in allocated:
            raise Conflict("Address already in use")
    else:
        free = next_free({**ipam, "allocated": allocated}, subnet)
        if free is None:
            raise SystemError_(f"could not find an available IP while allocating on network {doc['Name']}")
        key = free
    allocated[key] = owner
    ipam.update(allocated=allocated, last=key)
    endpoints = dict(g["endpoints"])
    endpoints[owner] = {"ip": key, "mac": mac_for_ip(key), "node": node, "vtep": vtep, "name": name}
    if aliases:
        endpoints[owner]["aliases"] = list(aliases)
    return {**doc, "_gorae": {**g, "ipam": ipam, "endpoints": endpoints}}, key


def release(doc: dict[str, Any], owner: str) -> dict[str, Any] | None:
    """A copy of doc without owner's address; None when owner holds none."""
    g = doc["_gorae"]
    held = g["endpoints"].get(owner)
    if held is None:
        return None
    endpoints = {k: v for k, v in g["endpoints"].items() if k != owner}
    ipam = dict(g["ipam"])
    ipam["allocated"] = {ip: o for ip, o in ipam["allocated"].items() if o != owner}
    return {**doc, "_gorae": {**g, "ipam": ipam, "endpoints": endpoints}}


def release_node(doc: dict[str, Any], node: str) -> dict[str, Any] | None:
    """A copy of doc without any address held on `node` (it left the swarm); None when it held none."""
    owners = [o for o, e in doc["_gorae"]["endpoints"].items() if e.get("node") == node]
    for o in owners:
        doc = release(doc, o) or doc
    return doc if owners else None
