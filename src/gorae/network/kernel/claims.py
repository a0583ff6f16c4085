"""Which daemon owns a bridge: an exclusive claim on its name, so two daemons never share one.

A claim is an abstract unix socket named after the interface: it lives in the network namespace (as the
bridge does), only one process can bind it, and the kernel releases it when that process dies — even by
kill -9 — so a restarted daemon claims its bridges again without clean-up.
"""

from __future__ import annotations

import socket

from gorae.errors import Conflict


class InterfaceClaimed(Conflict):
    """Another gorae daemon in this network namespace holds the interface."""


def claim_interface(name: str) -> socket.socket:
    """Hold `name` for this process until the returned socket is closed."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        s.bind(f"\0gorae-bridge-{name}")
    except OSError:
        s.close()
        raise InterfaceClaimed(f"bridge {name} is in use by another gorae daemon") from None
    return s
