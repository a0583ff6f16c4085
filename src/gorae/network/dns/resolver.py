"""What a container's embedded DNS server answers (its user-defined networks' names and aliases, legacy link
aliases, reverse lookups, which upstream servers to forward to) and the servers themselves, one per sandbox
that is on a user-defined network."""

from __future__ import annotations

import logging

from gorae.network import containerfiles
from gorae.network.dns.dnsserver import EmbeddedDns
from gorae.network.state import NetworkState
from gorae.network.types import SANDBOX_ATTACHED, SandboxDoc

log = logging.getLogger(__name__)


def needs_dns(state: NetworkState, sb: SandboxDoc) -> bool:
    """A sandbox gets an embedded DNS server when one of its networks is user-defined."""
    if sb.get("mode") != SANDBOX_ATTACHED or not sb.get("netns_path"):
        return False
    for e in sb["endpoints"]:
        ep = state.endpoints.get(e)
        if ep and not state.networks.get(ep["network_id"], {}).get("_gorae", {}).get("default", True):
            return True
    return False


def resolve_name(state: NetworkState, cid: str, name: str) -> list[str] | None:
    """Addresses of `name` as seen by container cid on its user-defined networks, IPv4 and IPv6 (None: not
    ours)."""
    name = name.lower().rstrip(".")
    with state.lock:
        sb = state.sandboxes.get(cid)
        if sb is None:
            return None
        my_nets = {ep["network_id"]: ep for ep in state.endpoints_of(sb)}
        user_nets = [n for n in my_nets if not state.networks.get(n, {}).get("_gorae", {}).get("default", True)]
        child = sb.get("link_aliases", {}).get(name)
        if child is not None:
            ip = state.shared_network_ip(sb, state.sandboxes.get(child) or {"endpoints": []})
            if ip:
                return [ip]
        out: list[str] = []
        for ep in state.endpoints.values():
            if ep["network_id"] not in user_nets or not ep.get("ip"):
                continue
            names = {
                ep["container_name"].lower(),
                ep["container_id"][:12],
                *(a.lower() for a in ep["aliases"]),
            }
            addrs = [ep["ip"], *([ep["ip6"]] if ep.get("ip6") else [])]
            if name in names or name == ep["container_id"]:
                out += addrs
            else:
                net = state.networks[ep["network_id"]]
                if name.endswith("." + net["Name"].lower()) and name.rsplit(".", 1)[0] in names:
                    out += addrs
        swarm_nets = {n for n in user_nets if state.networks.get(n, {}).get("Scope") == "swarm"}
    if not out and swarm_nets and state.cluster is not None:
        return state.cluster.resolve(swarm_nets, name)  # services, tasks.<service>, other nodes' containers
    return out or None


def reverse_name(state: NetworkState, cid: str, ip: str) -> str | None:
    with state.lock:
        sb = state.sandboxes.get(cid)
        if sb is None:
            return None
        mine = {ep["network_id"] for ep in state.endpoints_of(sb)}
        for ep in state.endpoints.values():
            if ep["network_id"] in mine and ep.get("ip") == ip:
                net = state.networks[ep["network_id"]]
                if net["_gorae"].get("default"):
                    return None
                return f"{ep['container_name']}.{net['Name']}"
    return None


def upstreams(state: NetworkState, cid: str) -> list[str]:
    """Where the server forwards other names: none when all the container's networks are internal."""
    sb = state.sandboxes.get(cid)
    if sb is None:
        return []
    if all(state.networks.get(ep["network_id"], {}).get("Internal") for ep in state.endpoints_of(sb)):
        return []
    return containerfiles.upstream_servers(containerfiles.read_host_resolv_conf(), sb.get("dns") or [])


class DnsServers:
    """The running embedded DNS servers, by container ID."""

    def __init__(self, state: NetworkState) -> None:
        self.state = state
        self._servers: dict[str, EmbeddedDns] = {}

    async def start(self, cid: str) -> None:
        if cid in self._servers:
            return
        sb = self.state.sandbox(cid)
        state = self.state
        server = EmbeddedDns(
            sb["netns_path"],
            lambda n: resolve_name(state, cid, n),
            lambda ip: reverse_name(state, cid, ip),
            lambda: upstreams(state, cid),
        )
        await server.start()
        self._servers[cid] = server

    async def stop(self, cid: str) -> None:
        server = self._servers.pop(cid, None)
        if server is not None:
            await server.close()

    async def restart_all(self) -> None:
        """Daemon start: a server for every sandbox that needs one."""
        for cid, sb in list(self.state.sandboxes.items()):
            if needs_dns(self.state, sb):
                try:
                    await self.start(cid)
                except OSError as e:
                    log.warning("embedded DNS for %s could not be restarted: %s", cid[:12], e)

    async def stop_all(self) -> None:
        for cid in list(self._servers):
            await self.stop(cid)

