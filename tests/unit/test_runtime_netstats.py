"""`docker stats`' `networks` section from /proc/PID/net/dev (`docker_networks` over the metrics collector's
`parse_net_dev`): exact values, lo left out, hostile text."""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st

from gorae.runtime.stats import docker_networks, network_stats, parse_net_dev

NET_DEV = """\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0
  eth0:    1296      16    1    2    0     0          0         0      726       9    3    4    0     0       0          0
"""


def test_parse_net_dev() -> None:
    assert docker_networks(parse_net_dev(NET_DEV)) == {
        "eth0": {
            "rx_bytes": 1296,
            "rx_packets": 16,
            "rx_errors": 1,
            "rx_dropped": 2,
            "tx_bytes": 726,
            "tx_packets": 9,
            "tx_errors": 3,
            "tx_dropped": 4,
        }
    }


def test_network_stats_of_this_process() -> None:
    with open("/proc/self/net/dev") as f:
        names = {line.partition(":")[0].strip() for line in f.read().splitlines()[2:]}
    assert set(network_stats(os.getpid())) == names - {"lo"}
    assert network_stats(2**22 + 7) == {}


@given(st.text())
def test_parse_net_dev_hostile(text: str) -> None:
    for name, entry in docker_networks(parse_net_dev(text)).items():
        assert name and name != "lo" and len(entry) == 8
