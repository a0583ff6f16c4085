"""Content of a container's /etc/hosts and /etc/resolv.conf as its networks dictate, and the environment
variables of legacy links (`--link name:alias` on the default bridge).

resolv.conf: on the default bridge the host's name servers with loopback ones dropped (8.8.8.8/8.8.4.4
when none remain); on user-defined networks `nameserver 127.0.0.11` (the embedded DNS, which forwards to
the host's servers or to `--dns`); host networking gets the host's file. Pure functions; the caller writes
the files.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field

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


def read_host_resolv_conf() -> str:
    """The host's resolv.conf; systemd-resolved's upstream file when the stub (127.0.0.53) is in use."""
    paths = [HOST_RESOLV_CONF]
    try:
        with open(HOST_RESOLV_CONF, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return ""
    if "127.0.0.53" in text and os.path.exists(SYSTEMD_RESOLV_CONF):
        paths = [SYSTEMD_RESOLV_CONF]
        try:
            with open(paths[0], encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            pass
    return text


@dataclass
class ResolvConf:
    nameservers: list[str] = field(default_factory=list)
    search: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)


def parse_resolv_conf(text: str) -> ResolvConf:
    rc = ResolvConf()
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].startswith(("#", ";")):
            continue
        if words[0] == "nameserver" and len(words) > 1:
            rc.nameservers.append(words[1])
        elif words[0] in ("search", "domain"):
            rc.search = words[1:]
        elif words[0] == "options":
            rc.options.extend(words[1:])
    return rc


def upstream_servers(host_text: str, dns: list[str]) -> list[str]:
    """Where the embedded DNS forwards: --dns, else the host's servers (loopback ones work from the daemon)."""
    return list(dns) or parse_resolv_conf(host_text).nameservers or list(DEFAULT_DNS)


def resolv_conf(
    host_text: str,
    *,
    dns: list[str],
    dns_search: list[str],
    dns_options: list[str],
    mode: str,  # "bridge" (default bridge / none), "user" (embedded DNS), "host"
) -> str:
    host = parse_resolv_conf(host_text)
    if mode == "host" and not (dns or dns_search or dns_options):
        return host_text
    search = dns_search or host.search
    options = list(dns_options or host.options)
    if mode == "user":
        servers = ["127.0.0.11"]
        if not any(o.startswith("ndots:") for o in options):
            options.append("ndots:0")
    else:
        servers = list(dns) or [s for s in host.nameservers if mode == "host" or not _is_loopback(s)]
        if not servers:
            servers = list(DEFAULT_DNS)
    out = []
    if search and search != ["."]:
        out.append("search " + " ".join(search))
    out.extend(f"nameserver {s}" for s in servers)
    if options:
        out.append("options " + " ".join(options))
    if mode == "user":
        ext = list(dns) or host.nameservers
        out.append("")
        out.append("# Based on host file: '/etc/resolv.conf' (internal resolver)")
        out.append("# ExtServers: [" + " ".join(ext) + "]")
    return "\n".join(out) + "\n"


def hosts_file(
    *,
    hostname: str,
    domainname: str = "",
    ips: list[str],
    extra_hosts: list[str],
    link_entries: list[tuple[str, list[str]]],
    host_network: bool = False,
    host_gateway: str = "",
) -> str:
    """/etc/hosts: docker's defaults, --add-host entries, legacy link entries, then the container's names."""
    if host_network:
        try:
            with open("/etc/hosts", encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            text = HOSTS_DEFAULT
        if text and not text.endswith("\n"):
            text += "\n"
    else:
        text = HOSTS_DEFAULT
    for entry in extra_hosts:
        name, sep, addr = entry.partition(":")
        if not sep:
            name, sep, addr = entry.partition("=")
        if addr == "host-gateway":
            addr = host_gateway
        if addr.startswith("[") and addr.endswith("]"):
            addr = addr[1:-1]
        text += f"{addr}\t{name}\n"
    for ip, names in link_entries:
        text += f"{ip}\t{' '.join(names)}\n"
    if not host_network:
        own = f"{hostname}.{domainname} {hostname}" if domainname else hostname
        for ip in ips:  # one entry per network the container is on (libnetwork's updateHostsFile per join)
            text += f"{ip}\t{own}\n"
    return text


def _env_name(alias: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in alias.upper())


def _port_key(port: str) -> tuple[int, str]:
    num, _, proto = port.partition("/")
    try:
        return int(num), proto or "tcp"
    except ValueError:
        return 0, proto


def link_env(
    parent_name: str, alias: str, child_ip: str, exposed: list[str], child_env: list[str]
) -> list[str]:
    """docker's legacy link variables: ALIAS_NAME, ALIAS_PORT[_<n>_<PROTO>[_ADDR|_PORT|_PROTO]], ALIAS_ENV_*."""
    a = _env_name(alias)
    out = [f"{a}_NAME=/{parent_name.lstrip('/')}/{alias}"]
    ports = sorted((_port_key(p) for p in exposed), key=lambda x: (x[0], x[1]))
    if ports:
        n, proto = ports[0]
        out.append(f"{a}_PORT={proto}://{child_ip}:{n}")
    for n, proto in ports:
        pre = f"{a}_PORT_{n}_{proto.upper()}"
        out.append(f"{pre}={proto}://{child_ip}:{n}")
        out.append(f"{pre}_ADDR={child_ip}")
        out.append(f"{pre}_PORT={n}")
        out.append(f"{pre}_PROTO={proto}")
    for kv in child_env:
        k, sep, v = kv.partition("=")
        if sep and k not in ("HOME", "PATH"):
            out.append(f"{a}_ENV_{k}={v}")
    return out
