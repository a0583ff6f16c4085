"""The files docker writes next to a container and bind-mounts into it: hostname, hosts, resolv.conf.

Only the writing lives here; the content rules (loopback name servers dropped, 8.8.8.8/8.8.4.4 when none
remain, `--dns`/`--dns-search`/`--dns-option`/`--add-host`, host networking, the embedded DNS of user-defined
networks, legacy links) are `gorae.network.containerfiles`'s. At create the files get a first content from
HostConfig alone; at every start the network service's content replaces it. Writes only inside the
container's directory.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from gorae.network import containerfiles as cf


def host_resolv_conf() -> str:
    """The host's resolv.conf (systemd-resolved's upstream file when its stub is in use)."""
    return cf.read_host_resolv_conf()


def resolv_conf(host_text: str, host_config: dict[str, Any], *, host_network: bool = False) -> str:
    """resolv.conf content for a container on the default bridge (or the host's network)."""
    return cf.resolv_conf(
        host_text,
        dns=list(host_config.get("Dns") or []),
        dns_search=list(host_config.get("DnsSearch") or []),
        dns_options=list(host_config.get("DnsOptions") or []),
        mode="host" if host_network else "bridge",
    )


def hosts_file(
    hostname: str,
    host_config: dict[str, Any],
    *,
    host_network: bool = False,
    ip: str = "",
    domainname: str = "",
) -> str:
    """/etc/hosts content: docker's defaults, `--add-host` entries, and the container's own name."""
    return cf.hosts_file(
        hostname=hostname,
        domainname=domainname,
        ips=[ip] if ip else [],
        extra_hosts=list(host_config.get("ExtraHosts") or []),
        link_entries=[],
        host_network=host_network,
    )


def _write(path: str, content: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(content)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def write_bundle_files(
    directory: str, hostname: str, domainname: str, host_config: dict[str, Any]
) -> tuple[str, str, str]:
    """Write hostname, hosts and resolv.conf into `directory`; their paths."""
    host_network = host_config.get("NetworkMode") == "host"
    name = socket.gethostname() if host_network else hostname
    paths = (
        os.path.join(directory, "hostname"),
        os.path.join(directory, "hosts"),
        os.path.join(directory, "resolv.conf"),
    )
    contents = (
        name + "\n",
        hosts_file(hostname, host_config, host_network=host_network, domainname=domainname),
        resolv_conf(host_resolv_conf(), host_config, host_network=host_network),
    )
    for path, content in zip(paths, contents, strict=True):
        _write(path, content)
    return paths


def write_network_files(hosts_path: str | None, resolv_path: str | None, hosts: str, resolv: str) -> None:
    """Replace hosts and resolv.conf with the network service's content (at start, connect, disconnect).
    The files are bind-mounted, so they are rewritten in place (a rename would leave the mount stale)."""
    for path, content in ((hosts_path, hosts), (resolv_path, resolv)):
        if not path:
            continue
        with open(path, "w", encoding="utf-8") as f:
            f.write(content)
