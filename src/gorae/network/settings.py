"""What a container sees of its sandbox: NetworkSettings (inspect), the published ports (`docker port`), and
the `ContainerNet` handed to the container service (hosts and resolv.conf content, legacy link variables).
Reads the state; never changes it."""

from __future__ import annotations

from typing import Any

from gorae.network import containerfiles, model
from gorae.network.dns.resolver import needs_dns
from gorae.network.portmap.ports import split_proto_port
from gorae.network.state import NetworkState
from gorae.network.types import SANDBOX_ATTACHED, SANDBOX_HOST, SANDBOX_SHARED, ContainerNet, SandboxDoc


def ports_view(sb: SandboxDoc) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if sb.get("mode") != SANDBOX_ATTACHED:
        return out
    for key in sb.get("exposed", []):
        proto, port = split_proto_port(key)
        out[f"{port}/{proto}"] = None
    for m in sb.get("ports", []):
        key = f"{m['container_port']}/{m['proto']}"
        if out.get(key) is None:
            out[key] = []
        out[key].append({"HostIp": m["host_ip"] or "0.0.0.0", "HostPort": str(m["host_port"])})
    return out


def network_settings(state: NetworkState, container_id: str) -> dict[str, Any]:
    """The current NetworkSettings of a container (after connect/disconnect too)."""
    sb = state.sandbox(container_id)
    if sb.get("mode") == SANDBOX_SHARED:
        return model.empty_settings()
    st = model.empty_settings(sb.get("netns_path") or "", sb["sandbox_id"])
    st["Ports"] = ports_view(sb)
    with state.lock:
        for ep in state.endpoints_of(sb):
            net = state.networks.get(ep["network_id"])
            if net is None:
                continue
            entry = model.endpoint_settings(ep, net["Id"])
            if sb.get("links") and net["Name"] == "bridge":
                entry["Links"] = [
                    f"/{state.sandboxes[lk['child']]['name']}:/{sb['name']}/{lk['alias']}"
                    for lk in sb["links"]
                    if lk["child"] in state.sandboxes
                ] or None
            st["Networks"][net["Name"]] = entry
            if net["Name"] == "bridge" and net["_gorae"].get("default"):
                st.update(
                    EndpointID=ep["id"],
                    Gateway=ep["gateway"],
                    IPAddress=ep["ip"],
                    IPPrefixLen=ep["prefixlen"],
                    MacAddress=ep["mac"],
                    GlobalIPv6Address=ep.get("ip6", ""),
                    GlobalIPv6PrefixLen=ep.get("prefixlen6", 0),
                    IPv6Gateway=ep.get("gateway6", ""),
                )
    return st


def port_map(state: NetworkState, container_id: str) -> dict[str, Any]:
    """`docker port`: the published ports only ({"80/tcp": [{"HostIp", "HostPort"}]})."""
    sb = state.sandbox(container_id)
    if sb.get("mode") == SANDBOX_SHARED:
        sb = state.sandbox(sb["shared_with"])
    return {k: v for k, v in ports_view(sb).items() if v}


def container_net(state: NetworkState, sb: SandboxDoc) -> ContainerNet:
    host_text = containerfiles.read_host_resolv_conf()
    mode = sb.get("mode")
    if mode == SANDBOX_HOST:
        rmode = "host"
    elif needs_dns(state, sb):
        rmode = "user"
    else:
        rmode = "bridge"
    resolv = containerfiles.resolv_conf(
        host_text, dns=sb["dns"], dns_search=sb["dns_search"], dns_options=sb["dns_options"], mode=rmode
    )
    ips = [ip for ep in state.endpoints_of(sb) for ip in (ep["ip"], ep.get("ip6")) if ip]
    link_entries: list[tuple[str, list[str]]] = []
    env: list[str] = []
    for lk in sb.get("links", []):
        child = state.sandboxes.get(lk["child"])
        if child is None:
            continue
        ip = state.shared_network_ip(sb, child)
        if not ip:
            continue
        names = list(dict.fromkeys([lk["alias"], child["container_id"][:12], child["name"]]))
        link_entries.append((ip, names))
        env += containerfiles.link_env(sb["name"], lk["alias"], ip, child.get("exposed", []), child.get("env", []))
    gw = ""
    for n in state.networks.values():
        if n["Name"] == "bridge" and n["IPAM"]["Config"]:
            gw = n["IPAM"]["Config"][0].get("Gateway", "")
    hosts = containerfiles.hosts_file(
        hostname=sb["hostname"],
        domainname=sb.get("domainname", ""),
        ips=ips,
        extra_hosts=sb["extra_hosts"],
        link_entries=link_entries,
        host_network=(mode == SANDBOX_HOST),
        host_gateway=gw,
    )
    return ContainerNet(
        netns_path=sb.get("netns_path"),
        settings=network_settings(state, sb["container_id"]),
        hosts=hosts,
        resolv_conf=resolv,
        link_env=env,
    )
