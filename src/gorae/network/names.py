"""The kernel object names of one daemon (default bridge, user bridge and veth prefixes, iptables chain
prefix), derived from its exec root so that several daemons on one host never share a bridge or a chain."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Protocol

DEFAULT_EXEC_ROOT = "/run/gorae"


class NameConfig(Protocol):
    """The part of the daemon configuration the names depend on (DaemonConfig has these fields)."""

    @property
    def exec_root(self) -> str: ...
    @property
    def bridge(self) -> str | None: ...
    @property
    def iptables_chain_prefix(self) -> str | None: ...


@dataclass(frozen=True)
class NetworkNames:
    """Kernel object names of one daemon: its default bridge, user bridge and veth prefixes, chain prefix."""

    bridge: str
    user_bridge_prefix: str
    veth_prefix: str
    chain_prefix: str


def network_names(cfg: NameConfig) -> NetworkNames:
    """`gorae0`/`br-`/`veth`/`GORAE` for the default exec root; a daemon on another exec root gets names
    tagged with a hash of it (`g<tag>0`, `g<tag>-`, `g<tag>v`, `GORAE-<TAG>`), so several daemons on one
    host (tests, side-by-side installs) never share a bridge or chain. `--bridge` and
    `--iptables-chain-prefix` override the derived names."""
    if os.path.normpath(cfg.exec_root) == DEFAULT_EXEC_ROOT:
        names = NetworkNames("gorae0", "br-", "veth", "GORAE")
    else:
        tag = hashlib.sha256(os.path.normpath(cfg.exec_root).encode()).hexdigest()[:6]
        names = NetworkNames(f"g{tag}0", f"g{tag}-", f"g{tag}v", f"GORAE-{tag.upper()}")
    return NetworkNames(
        cfg.bridge or names.bridge,
        names.user_bridge_prefix,
        names.veth_prefix,
        cfg.iptables_chain_prefix or names.chain_prefix,
    )


def daemon_names(exec_root: str, bridge: str | None = None, chain_prefix: str | None = None) -> NetworkNames:
    """network_names() of a daemon given by its exec root and overrides (tests, leftovers)."""
    return network_names(_Names(exec_root, bridge, chain_prefix))


@dataclass(frozen=True)
class _Names:
    exec_root: str
    bridge: str | None
    iptables_chain_prefix: str | None
