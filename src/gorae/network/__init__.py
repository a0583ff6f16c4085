"""Container networking: IPAM, the Linux bridge driver, veth/netns plumbing, published ports (iptables DNAT),
the embedded DNS server for user-defined networks, and the content of /etc/hosts and /etc/resolv.conf.

`NetworkService` (service.py) is the one entry point the daemon uses; `ContainerNet` is what it hands back
for a container (namespace path, NetworkSettings, hosts and resolv.conf content, legacy link variables).
"""

from gorae.network.service import ContainerNet, NetworkService

__all__ = ["ContainerNet", "NetworkService"]
