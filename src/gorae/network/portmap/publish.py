"""Turning a container's PortBindings (and `-P`) into reserved host ports: the mapping records the
iptables rules are rendered from. All or nothing: on any failure every port taken so far is released.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gorae.errors import InvalidParameter
from gorae.network.portmap.ports import PortReserver, ephemeral_range, parse_port_range, split_proto_port


def _wanted(
    port_bindings: dict[str, Any] | None, publish_all_exposed: Iterable[str]
) -> list[tuple[str, int, str, str]]:
    """(proto, container port, host ip, host port spec) for every binding asked for."""
    out: list[tuple[str, int, str, str]] = []
    bindings = port_bindings or {}
    for key, lst in bindings.items():
        proto, port = split_proto_port(key)
        try:
            cport = parse_port_range(port)[0]
        except ValueError:
            raise InvalidParameter(f'invalid port specification: "{port}"') from None
        for b in lst or [{}]:
            b = b or {}
            out.append((proto, cport, b.get("HostIp") or "", str(b.get("HostPort") or "")))
    for key in publish_all_exposed:
        if key in bindings:
            continue
        proto, port = split_proto_port(key)
        try:
            lo, hi = parse_port_range(port)
        except ValueError:
            raise InvalidParameter(f'invalid port specification: "{port}"') from None
        out.extend((proto, p, "", "") for p in range(lo, hi + 1))
    return out


def reserve_bindings(
    reserver: PortReserver,
    port_bindings: dict[str, Any] | None,
    publish_all_exposed: Iterable[str],
    *,
    default_host_ip: str,
    container_ip: str,
    bridge: str,
) -> list[dict[str, Any]]:
    """Reserve every host port; return the mappings ({proto, container_port, host_ip, host_port,
    container_ip, bridge}). Raises SystemError_ ("Bind for ... failed: port is already allocated")."""
    done: list[dict[str, Any]] = []
    try:
        for proto, cport, hip, hspec in _wanted(port_bindings, publish_all_exposed):
            hip = hip or default_host_ip
            if hip == "0.0.0.0":
                hip = ""
            if ":" in hip:
                continue  # IPv6 host addresses: not yet
            if hspec in ("", "0"):
                lo, hi = ephemeral_range()
                hport = reserver.reserve_any(proto, hip, lo, hi)
            else:
                try:
                    lo, hi = parse_port_range(hspec)
                except ValueError:
                    raise InvalidParameter(f'invalid port specification: "{hspec}"') from None
                if lo == hi:
                    reserver.reserve(proto, hip, lo)
                    hport = lo
                else:
                    hport = reserver.reserve_any(proto, hip, lo, hi)
            done.append(
                {
                    "proto": proto,
                    "container_port": cport,
                    "host_ip": hip,
                    "host_port": hport,
                    "container_ip": container_ip,
                    "bridge": bridge,
                }
            )
    except BaseException:
        for m in done:
            reserver.release(m["proto"], m["host_ip"], m["host_port"])
        raise
    return done
