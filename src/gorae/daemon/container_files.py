"""The files docker writes next to a container and bind-mounts into it: hostname, hosts, resolv.conf.

Owns their content rules: loopback name servers of the host are dropped (they mean nothing in the
container's network namespace) and Google's 8.8.8.8/8.8.4.4 stand in when none remain, as docker does;
`--dns`, `--dns-search`, `--dns-option`, `--add-host` and host networking are honoured. Writes only
inside the container's directory.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import Any

HOST_RESOLV_CONF = "/etc/resolv.conf"
SYSTEMD_RESOLV_CONF = "/run/systemd/resolve/resolv.conf"
DEFAULT_DNS = ["8.8.8.8", "8.8.4.4"]

HOSTS_DEFAULT = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)


def _is_loopback(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def host_resolv_conf() -> str:
    """The host's resolv.conf; systemd-resolved's upstream file when the stub (127.0.0.53) is in use."""
    text = _read(HOST_RESOLV_CONF)
    if "127.0.0.53" in text and os.path.exists(SYSTEMD_RESOLV_CONF):
        return _read(SYSTEMD_RESOLV_CONF)
    return text


def resolv_conf(host_text: str, host_config: dict[str, Any], *, host_network: bool = False) -> str:
    """resolv.conf content for a container."""
    dns = list(host_config.get("Dns") or [])
    search = list(host_config.get("DnsSearch") or [])
    options = list(host_config.get("DnsOptions") or [])
    if host_network and not (dns or search or options):
        return host_text
    servers: list[str] = []
    host_search: list[str] = []
    host_options: list[str] = []
    other: list[str] = []
    for line in host_text.splitlines():
        words = line.split()
        if not words or words[0].startswith(("#", ";")):
            continue
        if words[0] == "nameserver" and len(words) > 1:
            if host_network or not _is_loopback(words[1]):
                servers.append(words[1])
        elif words[0] in ("search", "domain"):
            host_search = words[1:]
        elif words[0] == "options":
            host_options.extend(words[1:])
        else:
            other.append(line)
    if dns:
        servers = dns
    if not servers:
        servers = list(DEFAULT_DNS)
    out = []
    final_search = search or host_search
    if final_search and final_search != ["."]:
        out.append("search " + " ".join(final_search))
    out.extend(f"nameserver {s}" for s in servers)
    final_options = options or host_options
    if final_options:
        out.append("options " + " ".join(final_options))
    return "\n".join(out) + "\n"


def hosts_file(
    hostname: str, host_config: dict[str, Any], *, host_network: bool = False, ip: str = ""
) -> str:
    """/etc/hosts content: docker's defaults, `--add-host` entries, and the container's own name."""
    if host_network:
        text = _read("/etc/hosts") or HOSTS_DEFAULT
    else:
        text = HOSTS_DEFAULT
    for entry in host_config.get("ExtraHosts") or []:
        name, sep, addr = entry.partition(":")
        if not sep:
            name, sep, addr = entry.partition("=")
        if addr == "host-gateway":
            addr = "172.17.0.1"
        text += f"{addr}\t{name}\n"
    if ip and not host_network:
        text += f"{ip}\t{hostname}\n"
    return text


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
        hosts_file(
            hostname if not domainname else f"{hostname}.{domainname} {hostname}",
            host_config,
            host_network=host_network,
        ),
        resolv_conf(host_resolv_conf(), host_config, host_network=host_network),
    )
    for path, content in zip(paths, contents, strict=True):
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(content)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    return paths
