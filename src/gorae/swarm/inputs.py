"""What clients and peers send, checked: `host:port` values, the advertise address (given as an IP, IP:port or
interface, else the listen address or the default route's source), `version` parameters, and the JSON types of
the swarm request bodies as dockerd's decoder reports them (400 with its message)."""

from __future__ import annotations

import os
import socket
from typing import Any

from gorae.errors import InvalidParameter


def join_hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_hostport(value: str, default_port: int) -> tuple[str, int]:
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest.lstrip(":")
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    else:
        host, port = value, ""
    if not port:
        return host, default_port
    if not (port.isascii() and port.isdigit()) or not 0 <= int(port) <= 65535:
        raise InvalidParameter(f"invalid port: {port}")
    return host, int(port)


def is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True


def _default_route_addr() -> str:
    """The source address of the default route (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
        except OSError:
            raise InvalidParameter(
                "could not choose an IP address to advertise since this system has no default route "
                "- specify one with --advertise-addr"
            ) from None
        return str(s.getsockname()[0])


def route_source(host: str) -> str:
    """This host's source address towards `host` (no packet is sent)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect((host, 9))
        except OSError as e:
            raise InvalidParameter(f"could not choose an IP address to advertise: {e}") from None
        return str(s.getsockname()[0])


def _interface_addr(name: str) -> str | None:
    """The IPv4 address of interface `name`, if that is an interface."""
    import fcntl
    import struct

    if not os.path.exists(f"/sys/class/net/{name}"):
        return None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))  # SIOCGIFADDR
        except OSError:
            raise InvalidParameter(f"interface {name} has no usable IPv4 address") from None
    return socket.inet_ntoa(packed[20:24])


def resolve_advertise(advertise: str, listen_host: str, listen_port: int) -> str:
    """ "host:port" this node is reached at: --advertise-addr (IP, IP:port or interface), else the
    listen address when specific, else the default route's source address."""
    if advertise:
        host, port = split_hostport(advertise, listen_port)
        if not is_ip(host):
            iface = _interface_addr(host)
            if iface is None:
                raise InvalidParameter(
                    "advertise address must be a non-zero IP address or network interface "
                    "(with optional port number)"
                )
            host = iface
    elif listen_host and listen_host not in ("0.0.0.0", "::") and is_ip(listen_host):
        host, port = listen_host, listen_port
    else:
        host, port = _default_route_addr(), listen_port
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_version(raw: str | None, what: str) -> int:
    """An object's `version` query parameter as dockerd's strconv.ParseUint takes it (ASCII digits only: "²"
    is a digit to str.isdigit but not to int)."""
    value = raw if raw is not None else ""
    if not (value.isascii() and value.isdigit()):
        raise InvalidParameter(
            f"invalid {what} version '{value}': strconv.ParseUint: parsing \"{value}\": invalid syntax"
        )
    return int(value)


_SPEC_SECTIONS = ("Orchestration", "Raft", "Dispatcher", "CAConfig", "TaskDefaults", "EncryptionConfig")


def _json_type(value: Any) -> str:
    return {bool: "bool", int: "number", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), "null"
    )


def unmarshal_error(value: Any, field: str, go_type: str) -> InvalidParameter:
    return InvalidParameter(
        f"json: cannot unmarshal {_json_type(value)} into Go struct field {field} of type {go_type}"
    )


def check_spec(spec: Any) -> dict[str, Any]:
    """A cluster spec's JSON types as dockerd's decoder checks them (400 with its message)."""
    if not isinstance(spec, dict):
        raise unmarshal_error(spec, "Spec", "swarm.Spec")
    name = spec.get("Name")
    if name is not None and not isinstance(name, str):
        raise unmarshal_error(name, "Spec.Name", "string")
    labels = spec.get("Labels")
    if labels is not None and (
        not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values())
    ):
        raise unmarshal_error(labels, "Spec.Labels", "map[string]string")
    for section in _SPEC_SECTIONS:
        value = spec.get(section)
        if value is not None and not isinstance(value, dict):
            raise unmarshal_error(value, f"Spec.{section}", f"swarm.{section}Config")
    return spec


def check_init(body: dict[str, Any]) -> None:
    for key in ("ListenAddr", "AdvertiseAddr", "DataPathAddr"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise unmarshal_error(body[key], f"InitRequest.{key}", "string")
    for key in ("SubnetSize", "DataPathPort"):
        value = body.get(key)
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**32
        ):
            raise unmarshal_error(value, f"InitRequest.{key}", "uint32")
    pool = body.get("DefaultAddrPool")
    if pool is not None and (not isinstance(pool, list) or not all(isinstance(p, str) for p in pool)):
        raise unmarshal_error(pool, "InitRequest.DefaultAddrPool", "[]string")
    if body.get("Spec") is not None:
        check_spec(body["Spec"])


def check_join(body: dict[str, Any]) -> None:
    for key in ("ListenAddr", "AdvertiseAddr", "DataPathAddr", "JoinToken", "Availability"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise unmarshal_error(body[key], f"JoinRequest.{key}", "string")
    remotes = body.get("RemoteAddrs")
    if remotes is not None and (
        not isinstance(remotes, list) or not all(isinstance(r, str) for r in remotes)
    ):
        raise unmarshal_error(remotes, "JoinRequest.RemoteAddrs", "[]string")


def check_node_spec(spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise unmarshal_error(spec, "NodeSpec", "swarm.NodeSpec")
    for key in ("Name", "Role", "Availability"):
        if spec.get(key) is not None and not isinstance(spec[key], str):
            raise unmarshal_error(spec[key], f"NodeSpec.{key}", "string")
    labels = spec.get("Labels")
    if labels is not None and (
        not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values())
    ):
        raise unmarshal_error(labels, "NodeSpec.Labels", "map[string]string")
    return spec
