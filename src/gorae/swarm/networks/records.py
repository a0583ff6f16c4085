"""Service discovery and load-balancing records of swarm networks, computed on a manager from the store:
which services are on which network, their virtual IP there (endpoint mode `vip`), and the addresses of
their running tasks. Also the VIP allocation itself (pure functions; the component writes the results).

A task's address on a network is the endpoint its node's agent attached for the task's container, named
`<service>.<slot>.<task id>` (`<service>.<node id>.<task id>` for global services), as the agent names it.
"""

from __future__ import annotations

from typing import Any

from gorae.errors import GoraeError
from gorae.swarm.networks import allocator

DYNAMIC_PORTS = range(30000, 32768)  # swarmkit's range for published ports it chooses


def _spec_ports(svc: dict[str, Any]) -> list[dict[str, Any]]:
    ports = ((svc.get("Spec") or {}).get("EndpointSpec") or {}).get("Ports") or []
    return [p for p in ports if isinstance(p, dict) and isinstance(p.get("TargetPort"), int)]


def _key(p: dict[str, Any]) -> tuple[str, int, str]:
    return (str(p.get("Protocol") or "tcp"), int(p["TargetPort"]), str(p.get("PublishMode") or "ingress"))


def endpoint_ports(svc: dict[str, Any], taken: set[tuple[str, int]]) -> list[dict[str, Any]]:
    """Docker's Endpoint.Ports of a service: its spec's ports with a published port for each ingress one
    (the one asked for, the one it already has, else the first free of 30000-32767 as swarmkit chooses);
    `taken`: (protocol, port) published by other services, extended with this one's."""
    had = {
        _key(p): p.get("PublishedPort")
        for p in (svc.get("Endpoint") or {}).get("Ports") or []
        if isinstance(p, dict)
    }
    out = []
    for p in _spec_ports(svc):
        proto, target, mode = _key(p)
        port = (
            p.get("PublishedPort")
            if isinstance(p.get("PublishedPort"), int) and p.get("PublishedPort")
            else None
        )
        if port is None and mode == "ingress":
            port = had.get((proto, target, mode))
            if not isinstance(port, int) or (proto, port) in taken:
                port = next((n for n in DYNAMIC_PORTS if (proto, n) not in taken), None)
        entry: dict[str, Any] = {"Protocol": proto, "TargetPort": target, "PublishMode": mode}
        if port:
            entry["PublishedPort"] = port
            if mode == "ingress":
                taken.add((proto, port))
        out.append(entry)
    return out


def port_conflict(
    services: list[tuple[str, dict[str, Any]]], spec: dict[str, Any], service_id: str = ""
) -> str | None:
    """swarmkit's refusal of a service spec publishing an ingress port another service already publishes
    (None when there is none): for the services' create/update validation."""
    mine = {
        (str(p.get("Protocol") or "tcp"), int(p["PublishedPort"]))
        for p in _spec_ports({"Spec": spec})
        if (p.get("PublishMode") or "ingress") == "ingress"
        and isinstance(p.get("PublishedPort"), int)
        and p["PublishedPort"]
    }
    for sid, svc in services:
        if sid == service_id:
            continue
        for p in ingress_ports(svc):
            if (str(p.get("Protocol") or "tcp"), int(p["PublishedPort"])) in mine:
                name = str((svc.get("Spec") or {}).get("Name") or "")
                return (
                    f"rpc error: code = InvalidArgument desc = port '{p['PublishedPort']}' is already in use by "
                    f"service '{name}' ({sid}) as an ingress port"
                )
    return None


def ingress_ports(svc: dict[str, Any]) -> list[dict[str, Any]]:
    """The service's ports published through the routing mesh (PublishMode ingress, the default) with their
    published port: Endpoint.Ports once the managers filled it in, else the spec's that name one."""
    ports = (
        (svc.get("Endpoint") or {}).get("Ports")
        or ((svc.get("Spec") or {}).get("EndpointSpec") or {}).get("Ports")
        or []
    )
    return [
        p
        for p in ports
        if isinstance(p, dict)
        and (p.get("PublishMode") or "ingress") == "ingress"
        and isinstance(p.get("PublishedPort"), int)
        and isinstance(p.get("TargetPort"), int)
    ]


def service_networks(
    svc: dict[str, Any], nets_by_ref: dict[str, str], ingress_id: str | None = None
) -> list[str]:
    """The IDs of the swarm networks a service's tasks attach to (Spec.TaskTemplate.Networks, or the older
    Spec.Networks), in order, unknown targets skipped; the ingress network first when the service publishes
    ports through the routing mesh (Docker attaches its tasks there)."""
    spec = svc.get("Spec") or {}
    atts = (spec.get("TaskTemplate") or {}).get("Networks") or spec.get("Networks") or []
    out: list[str] = [ingress_id] if ingress_id and ingress_ports(svc) else []
    for att in atts:
        target = str((att or {}).get("Target") or "") if isinstance(att, dict) else ""
        nid = nets_by_ref.get(target)
        if nid and nid not in out:
            out.append(nid)
    return out


def service_aliases(svc: dict[str, Any], nets_by_ref: dict[str, str]) -> dict[str, list[str]]:
    """A service's network aliases by network ID (its attachments' `Aliases`; `docker stack deploy` gives each
    service its short name there): names of the service itself, as libnetwork's service bindings have them."""
    spec = svc.get("Spec") or {}
    atts = (spec.get("TaskTemplate") or {}).get("Networks") or spec.get("Networks") or []
    out: dict[str, list[str]] = {}
    for att in atts:
        if not isinstance(att, dict):
            continue
        nid = nets_by_ref.get(str(att.get("Target") or ""))
        aliases = att.get("Aliases")
        if nid and isinstance(aliases, list):
            out.setdefault(nid, []).extend(str(a) for a in aliases if isinstance(a, str) and a)
    return out


def endpoint_mode(svc: dict[str, Any]) -> str:
    return str(((svc.get("Spec") or {}).get("EndpointSpec") or {}).get("Mode") or "vip")


def refs(networks: list[dict[str, Any]]) -> dict[str, str]:
    """name or ID → ID."""
    out = {d["Name"]: d["Id"] for d in networks}
    out.update({d["Id"]: d["Id"] for d in networks})
    return out


def plan_vips(
    networks: list[dict[str, Any]], services: list[tuple[str, dict[str, Any]]]
) -> dict[str, dict[str, Any]]:
    """The network documents whose VIP allocations must change: one VIP per (vip-mode service, network it
    is on), released for services gone or in dnsrr mode. Returns {network ID: new doc}."""
    by_ref = refs(networks)
    want: dict[str, set[str]] = {d["Id"]: set() for d in networks}
    for sid, svc in services:
        if endpoint_mode(svc) != "vip":
            continue
        for nid in service_networks(svc, by_ref):
            want[nid].add(sid)
    changed: dict[str, dict[str, Any]] = {}
    for doc in networks:
        g = doc["_gorae"]
        have = dict(g.get("vips") or {})
        new = doc
        for sid in sorted(set(have) - want[doc["Id"]]):
            new = allocator.release(new, f"vip/{sid}") or _drop_ipam_owner(new, f"vip/{sid}")
            have.pop(sid)
        for sid in sorted(want[doc["Id"]] - set(have)):
            try:
                new, ip = allocator.allocate(new, f"vip/{sid}", None, node="", vtep="", name="")
            except GoraeError:
                continue  # a full network: the service gets no VIP there (as swarmkit's allocation error)
            have[sid] = ip
            # a VIP is an address, not an endpoint: no node holds it, no peer entry for it
            new = {
                **new,
                "_gorae": {**new["_gorae"], "endpoints": _without(new["_gorae"]["endpoints"], f"vip/{sid}")},
            }
        if new is not doc:
            changed[doc["Id"]] = {**new, "_gorae": {**new["_gorae"], "vips": have}}
    return changed


def _without(d: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k != key}


def _drop_ipam_owner(doc: dict[str, Any], owner: str) -> dict[str, Any]:
    g = doc["_gorae"]
    ipam = dict(g["ipam"])
    ipam["allocated"] = {ip: o for ip, o in ipam["allocated"].items() if o != owner}
    return {**doc, "_gorae": {**g, "ipam": ipam}}


def virtual_ips(networks: list[dict[str, Any]], sid: str) -> list[dict[str, str]]:
    """Docker's Service.Endpoint.VirtualIPs for a service: [{NetworkID, Addr: "ip/prefix"}]."""
    out = []
    for d in networks:
        ip = (d["_gorae"].get("vips") or {}).get(sid)
        if ip:
            prefix = d["IPAM"]["Config"][0]["Subnet"].split("/")[1]
            out.append({"NetworkID": d["Id"], "Addr": f"{ip}/{prefix}"})
    return out


def service_records(
    networks: list[dict[str, Any]],
    services: list[tuple[str, dict[str, Any]]],
    tasks: list[tuple[str, dict[str, Any]]],
    *,
    down_nodes: set[str] | frozenset[str] = frozenset(),
) -> list[dict[str, Any]]:
    """For every service on a swarm network: {"id", "name", "mode", "vips": {net ID: ip}, "tasks": {net ID:
    [ips of its running tasks]}, "aliases": {net ID: [its network aliases there]}, "ingress": the ingress
    network's ID when it publishes ports through the routing mesh, "ports": [{"proto", "published",
    "target"}]}. Only tasks whose state is running and that should run are listed, and none on a node that is
    down (it drops out at once, before the orchestrator replaces its tasks)."""
    by_ref = refs(networks)
    ingress_id = next((d["Id"] for d in networks if allocator.is_ingress(d)), None)
    running = {
        tid: doc
        for tid, doc in tasks
        if (doc.get("Status") or {}).get("State") == "running"
        and doc.get("DesiredState", "running") == "running"
    }
    task_ips: dict[tuple[str, str], list[str]] = {}  # (service ID, network ID) -> ips
    for d in networks:
        for ep in d["_gorae"]["endpoints"].values():
            tid = str(ep.get("name") or "").rpartition(".")[2]
            task = running.get(tid)
            if task is not None and task.get("NodeID") == ep.get("node") and ep.get("node") not in down_nodes:
                task_ips.setdefault((str(task.get("ServiceID")), d["Id"]), []).append(str(ep["ip"]))
    out = []
    for sid, svc in services:
        nets = service_networks(svc, by_ref, ingress_id)
        if not nets:
            continue
        ports = [
            {
                "proto": str(p.get("Protocol") or "tcp"),
                "published": p["PublishedPort"],
                "target": p["TargetPort"],
            }
            for p in ingress_ports(svc)
        ]
        vips = {d["Id"]: (d["_gorae"].get("vips") or {}).get(sid) for d in networks if d["Id"] in nets}
        out.append(
            {
                "id": sid,
                "name": str((svc.get("Spec") or {}).get("Name") or ""),
                "mode": endpoint_mode(svc),
                "vips": {k: v for k, v in vips.items() if v},
                "tasks": {nid: sorted(task_ips.get((sid, nid), []), key=_ip_key) for nid in nets},
                "aliases": service_aliases(svc, by_ref),
                "ingress": ingress_id if ports and ingress_id else "",
                "ports": ports,
            }
        )
    return sorted(out, key=lambda r: str(r["id"]))


def _ip_key(ip: str) -> tuple[int, ...]:
    return tuple(int(x) for x in ip.split("."))


def resolve(records: list[dict[str, Any]], network_ids: set[str], name: str) -> list[str] | None:
    """What the embedded DNS answers for `name` on those networks: a service's VIP (vip mode) or its tasks'
    addresses (dnsrr), `tasks.<service>` → the tasks' addresses; a service's network alias on a network
    stands for its name there (libnetwork's service bindings); None when it is no service's name."""
    name = name.lower().rstrip(".")
    tasks_of = name[len("tasks.") :] if name.startswith("tasks.") else None
    wanted = tasks_of if tasks_of is not None else name
    for rec in records:
        aliases = rec.get("aliases") or {}
        own = str(rec["name"]).lower()
        nets = [
            n
            for n in rec["tasks"]
            if n in network_ids
            and n != rec.get("ingress")
            and (wanted == own or wanted in (a.lower() for a in aliases.get(n, [])))
        ]
        if not nets:
            continue
        if tasks_of is not None or rec["mode"] == "dnsrr":
            return [ip for n in nets for ip in rec["tasks"][n]]
        vips = [rec["vips"][n] for n in nets if n in rec["vips"]]
        return vips or None
    return None


def mesh(records: list[dict[str, Any]]) -> dict[tuple[str, int], list[tuple[str, int]]]:
    """The routing mesh: (protocol, published port) → [(task address on the ingress network, target port)]."""
    out: dict[tuple[str, int], list[tuple[str, int]]] = {}
    for rec in records:
        ingress = rec.get("ingress")
        if not ingress:
            continue
        for p in rec.get("ports") or []:
            key = (str(p["proto"]), int(p["published"]))
            out.setdefault(key, []).extend((ip, int(p["target"])) for ip in rec["tasks"].get(ingress, []))
    return out


def balancing(records: list[dict[str, Any]], network_ids: set[str]) -> dict[str, list[str]]:
    """VIP → task addresses for the vip-mode services on those networks (what a container there balances)."""
    out: dict[str, list[str]] = {}
    for rec in records:
        if rec["mode"] != "vip":
            continue
        for nid, vip in rec["vips"].items():
            if nid in network_ids:
                out[vip] = list(rec["tasks"].get(nid, []))
    return out
