"""Daemon configuration: dockerd's flag names and daemon.json keys, merged the way dockerd merges them.

A key given both as a flag and in the file is an error (dockerd: "the following directives are specified
both as a flag and in the configuration file"); an unknown key in the file is an error too. Parsing is pure:
`load_config(argv)` returns a `DaemonConfig` or raises `InvalidParameter`.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, field
from typing import Any

from gorae.errors import InvalidParameter

DEFAULT_CONFIG_FILE = "/etc/gorae/daemon.json"
DEFAULT_SOCKET = "unix:///run/gorae.sock"


@dataclass
class DaemonConfig:
    data_root: str = "/var/lib/gorae"
    exec_root: str = "/run/gorae"
    hosts: list[str] = field(default_factory=list)
    tls: bool = False
    tlsverify: bool = False
    tlscacert: str | None = None
    tlscert: str | None = None
    tlskey: str | None = None
    group: str | None = None  # the unix socket's group; None: "docker" when that group exists
    pidfile: str | None = None
    log_level: str = "info"
    debug: bool = False
    insecure_registries: list[str] = field(default_factory=list)
    registry_mirrors: list[str] = field(default_factory=list)
    certs_dirs: list[str] = field(default_factory=list)  # gorae's own: the certs.d roots (default both)
    live_restore: bool = True
    bip: str | None = None
    fixed_cidr: str | None = None
    ipv6: bool = False  # dockerd's --ipv6: the default bridge gets IPv6 (addresses from --fixed-cidr-v6)
    fixed_cidr_v6: str | None = None
    ip6tables: bool = False  # dockerd 20.10's --ip6tables (experimental there, off by default)
    default_address_pools: list[dict[str, Any]] = field(default_factory=list)
    iptables: bool = True
    ip_forward: bool = True
    ip_masq: bool = True
    userland_proxy: bool = False
    bridge: str | None = None  # dockerd's -b/--bridge: the default bridge's Linux name
    iptables_chain_prefix: str | None = None  # gorae's own: prefix of its iptables chains
    dns: list[str] = field(default_factory=list)
    runtime: str = "runc"
    conmon: str = "conmon"
    init_path: str = "/usr/bin/tini-static"
    log_driver: str = "json-file"  # containers' default logging driver (dockerd's --log-driver)
    log_opts: dict[str, str] = field(default_factory=dict)
    config_file: str = DEFAULT_CONFIG_FILE
    metrics_addr: str | None = None  # host:port of the Prometheus /metrics listener (dockerd's flag)
    metrics_graphite: str | None = None  # host:port of a Graphite plaintext receiver
    metrics_interval: str = "10s"  # how often the Graphite sink pushes (a Go duration)
    metrics_container_labels: list[str] = field(default_factory=list)  # label keys as container_label_*; "*": all
    dashboard_addr: str | None = None  # host:port of the web dashboard
    dashboard_token_file: str | None = None  # a file holding the dashboard's access token

    def effective_hosts(self) -> list[str]:
        return self.hosts or [DEFAULT_SOCKET]


# daemon.json key -> (attribute, is_list)
_FILE_KEYS: dict[str, tuple[str, bool]] = {
    "data-root": ("data_root", False),
    "graph": ("data_root", False),
    "exec-root": ("exec_root", False),
    "hosts": ("hosts", True),
    "tls": ("tls", False),
    "tlsverify": ("tlsverify", False),
    "tlscacert": ("tlscacert", False),
    "tlscert": ("tlscert", False),
    "tlskey": ("tlskey", False),
    "group": ("group", False),
    "pidfile": ("pidfile", False),
    "log-level": ("log_level", False),
    "debug": ("debug", False),
    "insecure-registries": ("insecure_registries", True),
    "registry-mirrors": ("registry_mirrors", True),
    "certs-dirs": ("certs_dirs", True),
    "live-restore": ("live_restore", False),
    "bip": ("bip", False),
    "fixed-cidr": ("fixed_cidr", False),
    "ipv6": ("ipv6", False),
    "fixed-cidr-v6": ("fixed_cidr_v6", False),
    "ip6tables": ("ip6tables", False),
    "default-address-pools": ("default_address_pools", True),
    "iptables": ("iptables", False),
    "ip-forward": ("ip_forward", False),
    "ip-masq": ("ip_masq", False),
    "userland-proxy": ("userland_proxy", False),
    "bridge": ("bridge", False),
    "iptables-chain-prefix": ("iptables_chain_prefix", False),
    "dns": ("dns", True),
    "default-runtime": ("runtime", False),
    "init-path": ("init_path", False),
    "metrics-addr": ("metrics_addr", False),
    "metrics-graphite": ("metrics_graphite", False),
    "metrics-interval": ("metrics_interval", False),
    "metrics-container-labels": ("metrics_container_labels", True),
    "dashboard-addr": ("dashboard_addr", False),
    "dashboard-token-file": ("dashboard_token_file", False),
    "log-driver": ("log_driver", False),
    "log-opts": ("log_opts", False),
}


def _bool(v: str) -> bool:
    low = v.lower()
    if low in ("1", "true", "t", "yes"):
        return True
    if low in ("0", "false", "f", "no"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {v!r}")


def build_parser() -> argparse.ArgumentParser:
    """dockerd's flags (names, short forms and help texts as `dockerd --help`, with gorae's defaults)."""
    d = DaemonConfig()
    p = argparse.ArgumentParser(
        prog="gorae daemon",
        usage="gorae daemon [OPTIONS]",
        description="A self-sufficient runtime for containers: the gorae engine, serving the Docker Engine API.",
        epilog="Flags may also be set in the configuration file under dockerd's daemon.json keys "
        "(data-root, hosts, tlsverify, insecure-registries, ...); a key given both ways is an error.",
    )

    # default=None everywhere so we can tell which flags were given
    def switch(*names: str, dest: str, help: str) -> None:
        p.add_argument(*names, dest=dest, nargs="?", const=True, type=_bool, metavar="bool", help=help)

    def value(*names: str, dest: str, help: str, many: bool = False) -> None:
        p.add_argument(*names, dest=dest, metavar="list" if many else "string", help=help,
                       action="append" if many else "store")

    value("--data-root", dest="data_root", help=f'Root directory of persistent gorae state (default "{d.data_root}")')
    value("--exec-root", dest="exec_root", help=f'Root directory for execution state files (default "{d.exec_root}")')
    value("-H", "--host", dest="hosts", many=True,
          help=f'Daemon socket(s) to listen on: unix://PATH or tcp://HOST:PORT (default "{DEFAULT_SOCKET}")')
    switch("--tls", dest="tls", help="Use TLS; implied by --tlsverify (without --tlsverify any client is served)")
    switch("--tlsverify", dest="tlsverify", help="Use TLS and verify the remote (mutual TLS)")
    value("--tlscacert", dest="tlscacert", help="Trust certs signed only by this CA")
    value("--tlscert", dest="tlscert", help="Path to TLS certificate file")
    value("--tlskey", dest="tlskey", help="Path to TLS key file")
    value("--config-file", dest="config_file", help=f'Daemon configuration file (default "{DEFAULT_CONFIG_FILE}")')
    value("-G", "--group", dest="group", help='Group for the unix socket (default "docker", used when it exists)')
    value("-p", "--pidfile", dest="pidfile", help="Path to use for daemon PID file")
    p.add_argument("-l", "--log-level", dest="log_level", choices=["debug", "info", "warn", "error", "fatal"],
                   metavar="string",
                   help='Set the logging level ("debug"|"info"|"warn"|"error"|"fatal") (default "info")')
    switch("-D", "--debug", dest="debug", help="Enable debug mode")
    value("--insecure-registry", dest="insecure_registries", many=True,
          help="Enable insecure registry communication (plain HTTP to HOST:PORT)")
    value("--registry-mirror", dest="registry_mirrors", many=True, help="Preferred registry mirror")
    value("--certs-dir", dest="certs_dirs", many=True,
          help='Directory of per-registry TLS files <dir>/<host:port>/{ca.crt,*.cert,*.key} '
               '(default "/etc/gorae/certs.d" and "/etc/docker/certs.d")')
    switch("--live-restore", dest="live_restore", help="Keep containers running while the daemon is down (default true)")
    value("--bip", dest="bip", help="Specify network bridge IP (CIDR)")
    value("--fixed-cidr", dest="fixed_cidr", help="IPv4 subnet for fixed IPs")
    switch("--ipv6", dest="ipv6", help="Enable IPv6 networking")
    value("--fixed-cidr-v6", dest="fixed_cidr_v6", help="IPv6 subnet for fixed IPs")
    switch("--ip6tables", dest="ip6tables",
           help="Enable addition of ip6tables rules (default false, as dockerd 20.10)")
    switch("--iptables", dest="iptables", help="Enable addition of iptables rules (default true)")
    switch("--ip-forward", dest="ip_forward", help="Enable net.ipv4.ip_forward (default true)")
    switch("--ip-masq", dest="ip_masq", help="Enable IP masquerading (default true)")
    switch("--userland-proxy", dest="userland_proxy",
           help="Use userland proxy for loopback traffic (default false: the kernel forwards)")
    value("-b", "--bridge", dest="bridge",
          help="Linux name of the default network's bridge (default derived from the exec root)")
    value("--iptables-chain-prefix", dest="iptables_chain_prefix",
          help="Prefix of the daemon's iptables chains (default derived from the exec root)")
    value("--dns", dest="dns", many=True, help="DNS server to use")
    value("--default-runtime", dest="runtime", help=f'Default OCI runtime for containers (default "{d.runtime}")')
    value("--log-driver", dest="log_driver", help='Default driver for container logs (default "json-file")')
    value("--log-opt", dest="log_opts", many=True, help="Default log driver options for containers (key=value)")
    value("--init-path", dest="init_path", help=f'Path to the init binary for --init (default "{d.init_path}")')
    value("--metrics-addr", dest="metrics_addr", help="Set default address and port to serve the metrics api on")
    value("--metrics-graphite", dest="metrics_graphite",
          help="Push the metrics to a Graphite plaintext receiver at HOST:PORT")
    value("--metrics-interval", dest="metrics_interval",
          help=f'Interval of the Graphite pushes (default "{d.metrics_interval}")')
    value("--metrics-container-labels", dest="metrics_container_labels", many=True,
          help='Container label keys exported as container_label_<key> on container metrics ("*" for all)')
    value("--dashboard-addr", dest="dashboard_addr",
          help="Serve the web dashboard on HOST:PORT (loopback unless TLS or a token is configured)")
    value("--dashboard-token-file", dest="dashboard_token_file",
          help="File holding the token the dashboard asks for (required off loopback without --tlsverify)")
    return p


def load_config(argv: list[str]) -> DaemonConfig:
    """Parse flags, read the config file, merge; raise InvalidParameter on any conflict or bad key."""
    parser = build_parser()
    try:
        ns = parser.parse_args(argv)
    except SystemExit as e:  # argparse prints its own message
        raise InvalidParameter(f"invalid daemon flags: {' '.join(argv)}") from e
    flags = {k: v for k, v in vars(ns).items() if v is not None}
    cfg = DaemonConfig()
    cfg_path = flags.pop("config_file", None)
    explicit_file = cfg_path is not None
    cfg.config_file = cfg_path or DEFAULT_CONFIG_FILE
    file_values: dict[str, Any] = {}
    if os.path.exists(cfg.config_file):
        try:
            with open(cfg.config_file, encoding="utf-8") as f:
                raw = json.load(f)
        except (OSError, ValueError) as e:
            raise InvalidParameter(
                f"unable to configure the Docker daemon with file {cfg.config_file}: {e}"
            ) from e
        if not isinstance(raw, dict):
            raise InvalidParameter(
                f"unable to configure the Docker daemon with file {cfg.config_file}: not an object"
            )
        unknown = sorted(k for k in raw if k not in _FILE_KEYS)
        if unknown:
            raise InvalidParameter(
                "the following directives don't match any configuration option: " + ", ".join(unknown)
            )
        for key, value in raw.items():
            attr, is_list = _FILE_KEYS[key]
            if is_list and not isinstance(value, list):
                raise InvalidParameter(f"invalid value for {key!r} in {cfg.config_file}: want a list")
            file_values[attr] = value
    elif explicit_file:
        raise InvalidParameter(
            f"unable to configure the Docker daemon with file {cfg.config_file}: no such file"
        )
    if "log_opts" in flags:  # --log-opt k=v, repeated
        opts: dict[str, str] = {}
        for item in flags["log_opts"]:
            key, sep, val = str(item).partition("=")
            if not sep:
                raise InvalidParameter(f"invalid key value pair format in driver options: {item}")
            opts[key] = val
        flags["log_opts"] = opts
    if "log_opts" in file_values and not (
        isinstance(file_values["log_opts"], dict)
        and all(isinstance(v, str) for v in file_values["log_opts"].values())
    ):
        raise InvalidParameter(f"invalid value for 'log-opts' in {cfg.config_file}: want an object of strings")
    both = sorted(a for a in flags if a in file_values)
    if both:
        raise InvalidParameter(
            "the following directives are specified both as a flag and in the configuration file: "
            + ", ".join(f"{a.replace('_', '-')}" for a in both)
        )
    for attr, value in {**file_values, **flags}.items():
        setattr(cfg, attr, value)
    from gorae.runtime.logdrivers import check as check_log_config

    check_log_config(str(cfg.log_driver), {str(k): str(v) for k, v in cfg.log_opts.items()})
    if cfg.debug:
        cfg.log_level = "debug"
    if cfg.tlsverify:
        cfg.tls = True
    return cfg
