"""Finding and removing the kernel state one daemon left behind: its links (default bridge, user bridges,
veths), its iptables chains and jumps, and its network namespace files. For tests and uninstalls, run
when that daemon is stopped (`gorae.network.names` gives the names of a daemon)."""

from __future__ import annotations

import contextlib
import os
import subprocess

from gorae.network.kernel import netns
from gorae.network.names import daemon_names
from gorae.network.portmap import iptables
from gorae.network.portmap.lb import LoadBalancer, mesh_chain_prefix


def _link_names() -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    names = []
    for line in out.splitlines():
        parts = line.split(":")
        if len(parts) > 1:
            names.append(parts[1].strip().split("@")[0])
    return names


def leftovers(bridge: str, link_prefixes: tuple[str, ...], chain_prefix: str, exec_root: str) -> list[str]:
    """What is still there: "link X", "<table>: <iptables -S line>", "netns X"."""
    out = [f"link {n}" for n in _link_names() if n == bridge or n.startswith(link_prefixes)]
    c = iptables.Chains(chain_prefix)
    ours = {
        c.dnat,
        c.post,
        c.fwd,
        c.iso,
    }  # exactly these: "GORAE" must not match another daemon's "GORAE-1A2B3C"
    mesh = mesh_chain_prefix(chain_prefix) + "-"  # the routing mesh's (gorae.swarm.networks.mesh)
    for table in ("nat", "filter"):
        for line in iptables.dump(table).splitlines():
            words = line.split()
            if any(w in ours or w.startswith(mesh) for w in words) or _egress_rule(
                table, words, link_prefixes
            ):
                out.append(f"{table}: {line}")
    nsdir = os.path.join(exec_root, "netns")
    if os.path.isdir(nsdir):
        out += [f"netns {n}" for n in os.listdir(nsdir)]
    return out


def _egress_rule(table: str, words: list[str], link_prefixes: tuple[str, ...]) -> bool:
    """An overlay's egress MASQUERADE (gorae.network.kernel.vxlan.add_egress) naming one of our veths."""
    return (
        table == "nat"
        and words[-1:] == ["MASQUERADE"]
        and any(w.startswith("169.254.") for w in words)
        and any(w.startswith(link_prefixes) for w in words)
    )


def purge(bridge: str, link_prefixes: tuple[str, ...], chain_prefix: str, exec_root: str) -> list[str]:
    """Remove all of it; returns what could not be removed (empty when clean)."""
    nsdir = os.path.join(exec_root, "netns")
    if os.path.isdir(nsdir):
        for n in os.listdir(nsdir):
            path = os.path.join(nsdir, n)
            try:
                netns.delete(path)
            except Exception:  # noqa: BLE001 - fall back to umount(8)
                subprocess.run(["umount", "-l", path], capture_output=True)
                with contextlib.suppress(OSError):
                    os.unlink(path)
    for entry in leftovers(bridge, link_prefixes, chain_prefix, exec_root):
        if entry.startswith("link "):
            subprocess.run(["ip", "link", "del", entry[5:]], capture_output=True)
        elif entry.startswith("nat: -A POSTROUTING ") and _egress_rule(
            "nat", entry.split()[1:], link_prefixes
        ):
            subprocess.run(["iptables", "-w", "-t", "nat", "-D", *entry.split()[2:]], capture_output=True)
    iptables.purge(iptables.Chains(chain_prefix))
    iptables.purge(iptables.Chains(chain_prefix), family=6)  # --ip6tables
    LoadBalancer(mesh_chain_prefix(chain_prefix)).purge()
    return leftovers(bridge, link_prefixes, chain_prefix, exec_root)


def purge_daemon(exec_root: str, bridge: str | None = None, chain_prefix: str | None = None) -> list[str]:
    """purge() with the names the daemon on exec_root uses (derived as in network_names)."""
    names = daemon_names(exec_root, bridge, chain_prefix)
    prefixes: tuple[str, ...] = (names.user_bridge_prefix, names.veth_prefix)
    if names.bridge != "gorae0":
        prefixes += (names.user_bridge_prefix[:-1],)  # g<tag>: everything of a derived-name daemon
    return purge(names.bridge, prefixes, names.chain_prefix, exec_root)
