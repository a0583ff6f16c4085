"""Swarm commands: `swarm init`, `join`, `join-token`, `leave`, `update`, `unlock-key`, `unlock` and `ca`
(display the root CA), with the docker CLI's flags, texts and exit statuses. The join command printed is
docker's literal `docker swarm join --token …` (what users paste on other hosts, whatever their CLI)."""

from __future__ import annotations

import os
import sys
from typing import Any

from gorae.cli.context import Cli, StatusError
from gorae.cli.flags import O, Opt, Spec, usage_error
from gorae.cli.opts import OptError
from gorae.cli.swarmopts import go_duration_ns, parse_int, parse_uint

_ADDR_HELP = 'Listen address (format: "<ip|interface>[:port]")'
_ADV_HELP = 'Advertised address (format: "<ip|interface>[:port]")'
_DATA_HELP = 'Address or interface to use for data path traffic (format: "<ip|interface>")'
_AVAIL_HELP = 'Availability of the node ("active", "pause", "drain")'


def _swarm_flags(update: bool) -> list[Opt]:
    return [
        O(
            "autolock",
            None,
            help="Change manager autolocking setting (true|false)"
            if update
            else "Enable manager autolocking (requiring an unlock key to start a stopped manager)",
        ),
        O(
            "cert-expiry",
            None,
            "string",
            "Validity period for node certificates (ns|us|ms|s|m|h)",
            type_name="duration",
            default_text="2160h0m0s",
        ),
        O(
            "dispatcher-heartbeat",
            None,
            "string",
            "Dispatcher heartbeat period (ns|us|ms|s|m|h)",
            type_name="duration",
            default_text="5s",
        ),
        O(
            "external-ca",
            None,
            "list",
            "Specifications of one or more certificate signing endpoints",
            type_name="external-ca",
        ),
        O("max-snapshots", None, "string", "Number of additional Raft snapshots to retain", type_name="uint"),
        O(
            "snapshot-interval",
            None,
            "string",
            "Number of log entries between Raft snapshots",
            type_name="uint",
            default_text="10000",
        ),
        O(
            "task-history-limit",
            None,
            "string",
            "Task history retention limit",
            type_name="int",
            default_text="5",
        ),
    ]


INIT = Spec(
    "swarm init",
    "[OPTIONS]",
    "Initialize a swarm",
    sorted(
        [
            O("advertise-addr", None, "string", _ADV_HELP),
            O("availability", None, "string", _AVAIL_HELP, default="active"),
            O("data-path-addr", None, "string", _DATA_HELP),
            O(
                "data-path-port",
                None,
                "string",
                "Port number to use for data path traffic (1024 - 49151). If no value is set or is set to 0, the default port (4789) is used.",
                type_name="uint32",
            ),
            O(
                "default-addr-pool",
                None,
                "list",
                "default address pool in CIDR format",
                type_name="ipNetSlice",
                default_text="[]",
            ),
            O(
                "default-addr-pool-mask-length",
                None,
                "string",
                "default address pool subnet mask length",
                type_name="uint32",
                default_text="24",
            ),
            O("force-new-cluster", None, help="Force create a new cluster from current state"),
            O("listen-addr", None, "string", _ADDR_HELP, type_name="node-addr", default_text="0.0.0.0:2377"),
            *_swarm_flags(False),
        ],
        key=lambda o: o.long,
    ),
    max_args=0,
)

JOIN = Spec(
    "swarm join",
    "[OPTIONS] HOST:PORT",
    "Join a swarm as a node and/or manager",
    [
        O("advertise-addr", None, "string", _ADV_HELP),
        O("availability", None, "string", _AVAIL_HELP, default="active"),
        O("data-path-addr", None, "string", _DATA_HELP),
        O("listen-addr", None, "string", _ADDR_HELP, type_name="node-addr", default_text="0.0.0.0:2377"),
        O("token", None, "string", "Token for entry into the swarm"),
    ],
    min_args=1,
    max_args=1,
)

JOIN_TOKEN = Spec(
    "swarm join-token",
    "[OPTIONS] (worker|manager)",
    "Manage join tokens",
    [O("quiet", "q", help="Only display token"), O("rotate", None, help="Rotate join token")],
    min_args=1,
    max_args=1,
)

LEAVE = Spec(
    "swarm leave",
    "[OPTIONS]",
    "Leave the swarm",
    [O("force", "f", help="Force this node to leave the swarm, ignoring warnings")],
    max_args=0,
)

UPDATE = Spec("swarm update", "[OPTIONS]", "Update the swarm", _swarm_flags(True), max_args=0)

UNLOCK_KEY = Spec(
    "swarm unlock-key",
    "[OPTIONS]",
    "Manage the unlock key",
    [O("quiet", "q", help="Only display token"), O("rotate", None, help="Rotate unlock key")],
    max_args=0,
)

UNLOCK = Spec("swarm unlock", "", "Unlock swarm", [], max_args=0)

CA = Spec(
    "swarm ca",
    "[OPTIONS]",
    "Display and rotate the root CA",
    [
        O(
            "ca-cert",
            None,
            "string",
            "Path to the PEM-formatted root CA certificate to use for the new cluster",
            type_name="pem-file",
        ),
        O(
            "ca-key",
            None,
            "string",
            "Path to the PEM-formatted root CA key to use for the new cluster",
            type_name="pem-file",
        ),
        O(
            "cert-expiry",
            None,
            "string",
            "Validity period for node certificates (ns|us|ms|s|m|h)",
            type_name="duration",
            default_text="2160h0m0s",
        ),
        O("detach", "d", help="Exit immediately instead of waiting for the root rotation to converge"),
        O(
            "external-ca",
            None,
            "list",
            "Specifications of one or more certificate signing endpoints",
            type_name="external-ca",
        ),
        O("quiet", "q", help="Suppress progress output"),
        O(
            "rotate",
            None,
            help="Rotate the swarm CA - if no certificate or key are provided, new ones will be generated",
        ),
    ],
    max_args=0,
)


def flag_error(spec: Spec, flag: str, value: str, err: str) -> StatusError:
    """pflag's rejection of a flag value: the usage text, status 125."""
    o = spec.find_long(flag)
    shown = f"-{o.short}, --{flag}" if o is not None and o.short else f"--{flag}"
    return StatusError(
        125, usage_error(spec, f'invalid argument "{value}" for "{shown}" flag: {err}').rstrip("\n")
    )


def _tcp_addr(spec: Spec, flag: str, value: str, default: str = "0.0.0.0:2377") -> str:
    """opts.ParseTCPAddr against the default: a missing host or port is taken from it."""
    v = value.removeprefix("tcp://")
    if "://" in v:
        raise flag_error(spec, flag, value, f"invalid proto, expected tcp: {value}")
    dhost, _, dport = default.rpartition(":")
    if v.startswith("["):
        host, _, port = v[1:].partition("]")
        port = port.removeprefix(":")
        host = f"[{host}]"
    elif v.count(":") > 1:
        host, port = f"[{v}]", ""
    else:
        host, _, port = v.partition(":")
    host = host or dhost
    port = port or dport
    if not port.isdigit():
        raise flag_error(spec, flag, value, f"invalid bind address format: {port}")
    return f"{host}:{port}"


def _availability(v: dict[str, Any]) -> str | None:
    if "availability" not in v["_set"]:
        return None
    a = v["availability"].lower()
    if a not in ("active", "pause", "drain"):
        raise StatusError(
            1, f'invalid availability "{v["availability"]}", only active, pause and drain are supported'
        )
    return str(a)


def merge_spec(spec: Spec, v: dict[str, Any], doc: dict[str, Any], ca_cert: str | None = None) -> None:
    """swarmOptions.mergeSwarmSpec: only the flags given change the spec."""
    given = v["_set"]
    try:
        if "task_history_limit" in given:
            doc.setdefault("Orchestration", {})["TaskHistoryRetentionLimit"] = parse_int(
                v["task_history_limit"]
            )
        if "dispatcher_heartbeat" in given:
            doc.setdefault("Dispatcher", {})["HeartbeatPeriod"] = go_duration_ns(v["dispatcher_heartbeat"])
        if "max_snapshots" in given:
            doc.setdefault("Raft", {})["KeepOldSnapshots"] = parse_uint(v["max_snapshots"])
        if "snapshot_interval" in given:
            doc.setdefault("Raft", {})["SnapshotInterval"] = parse_uint(v["snapshot_interval"])
    except OptError as e:
        flag = next(
            f
            for f in ("task_history_limit", "dispatcher_heartbeat", "max_snapshots", "snapshot_interval")
            if f in given and _bad(f, v[f])
        )
        raise flag_error(spec, flag.replace("_", "-"), v[flag], str(e)) from None
    if "autolock" in given:
        doc.setdefault("EncryptionConfig", {})["AutoLockManagers"] = bool(v["autolock"])
    if "cert_expiry" in given:
        try:
            doc.setdefault("CAConfig", {})["NodeCertExpiry"] = go_duration_ns(v["cert_expiry"])
        except OptError as e:
            raise flag_error(spec, "cert-expiry", v["cert_expiry"], str(e)) from None
    if "external_ca" in given:
        cas = [_external_ca(spec, x) for x in v["external_ca"]]
        for ca in cas:
            if ca_cert is not None and not ca.get("CACert"):
                ca["CACert"] = ca_cert
        doc.setdefault("CAConfig", {})["ExternalCAs"] = cas


def _bad(flag: str, value: str) -> bool:
    try:
        {"task_history_limit": parse_int, "dispatcher_heartbeat": go_duration_ns}.get(flag, parse_uint)(value)
    except OptError:
        return True
    return False


def _external_ca(spec: Spec, value: str) -> dict[str, Any]:
    ca: dict[str, Any] = {"Protocol": "", "URL": "", "Options": {}}
    proto = url = False
    for field in value.split(","):
        key, eq, val = field.partition("=")
        if not eq:
            raise flag_error(spec, "external-ca", value, f"invalid field '{field}' must be a key=value pair")
        k = key.lower()
        if k == "protocol":
            proto = True
            if val.lower() != "cfssl":
                raise flag_error(spec, "external-ca", value, f"unrecognized external CA protocol {val}")
            ca["Protocol"] = "cfssl"
        elif k == "url":
            url = True
            ca["URL"] = val
        elif k == "cacert":
            try:
                with open(val) as f:
                    ca["CACert"] = f.read()
            except OSError as e:
                raise flag_error(
                    spec, "external-ca", value, f"unable to read CA cert for external CA: {e}"
                ) from None
        else:
            ca["Options"][key] = val
    if not proto:
        raise flag_error(spec, "external-ca", value, "the external-ca option needs a protocol= parameter")
    if not url:
        raise flag_error(spec, "external-ca", value, "the external-ca option needs a url= parameter")
    return ca


def print_join_command(cli: Cli, node_id: str, worker: bool, manager: bool) -> None:
    from gorae.client.api import q

    node = cli.api.get_json(f"/nodes/{q(node_id)}") or {}
    sw = cli.api.get_json("/swarm") or {}
    ms = node.get("ManagerStatus")
    if ms is None:
        return
    tokens = sw.get("JoinTokens") or {}
    addr = ms.get("Addr", "")
    if worker:
        cli.print(
            "To add a worker to this swarm, run the following command:\n\n"
            f"    docker swarm join --token {tokens.get('Worker', '')} {addr}\n"
        )
    if manager:
        cli.print(
            "To add a manager to this swarm, run the following command:\n\n"
            f"    docker swarm join --token {tokens.get('Manager', '')} {addr}\n"
        )


def print_unlock_command(cli: Cli, key: str) -> None:
    if key:
        cli.out.write(
            "To unlock a swarm manager after it restarts, run the `docker swarm unlock`\n"
            f"command and provide the following key:\n\n    {key}\n\n"
            "Remember to store this key in a password manager, since without it you\n"
            "will not be able to restart the manager.\n"
        )


def _unlock_key(cli: Cli) -> str:
    from gorae.client.errors import APIError

    try:
        doc = cli.api.get_json("/swarm/unlockkey") or {}
    except APIError as e:
        raise StatusError(1, f"could not fetch unlock key: {e}") from None
    return str(doc.get("UnlockKey") or "")


def cmd_init(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    listen = _tcp_addr(INIT, "listen-addr", v["listen_addr"]) if v["listen_addr"] else "0.0.0.0:2377"
    spec: dict[str, Any] = {}
    merge_spec(INIT, v, spec)
    try:
        data_port = parse_uint(v["data_path_port"], 32) if v["data_path_port"] else 0
        mask = (
            parse_uint(v["default_addr_pool_mask_length"], 32) if v["default_addr_pool_mask_length"] else 24
        )
    except OptError as e:
        flag = (
            "data-path-port"
            if v["data_path_port"] and _bad("x", v["data_path_port"])
            else "default-addr-pool-mask-length"
        )
        raise flag_error(INIT, flag, v[flag.replace("-", "_")], str(e)) from None
    pools = []
    for p in v["default_addr_pool"]:
        import ipaddress

        for one in p.split(","):
            try:
                pools.append(str(ipaddress.ip_network(one.strip(), strict=False)))
            except ValueError:
                raise flag_error(INIT, "default-addr-pool", p, f"invalid CIDR address: {one}") from None
    req: dict[str, Any] = {
        "ListenAddr": listen,
        "AdvertiseAddr": v["advertise_addr"] or "",
        "DataPathAddr": v["data_path_addr"] or "",
        "DataPathPort": data_port,
        "DefaultAddrPool": pools,
        "ForceNewCluster": bool(v["force_new_cluster"]),
        "Spec": _full_spec(spec),
        "AutoLockManagers": bool(v["autolock"]),
        "Availability": _availability(v) or "",
        "SubnetSize": mask,
    }
    from gorae.client.errors import APIError

    try:
        node_id = cli.api.post_json("/swarm/init", body=req)
    except APIError as e:
        if (
            "could not choose an IP address to advertise" in e.message
            or "could not find the system's IP address" in e.message
        ):
            raise StatusError(1, f"{e} - specify one with --advertise-addr") from None
        raise
    cli.print(f"Swarm initialized: current node ({node_id}) is now a manager.\n")
    print_join_command(cli, str(node_id), True, False)
    cli.print(
        "To add a manager to this swarm, run 'docker swarm join-token manager' and follow the instructions."
    )
    if req["AutoLockManagers"]:
        print_unlock_command(cli, _unlock_key(cli))
    return 0


def _full_spec(partial: dict[str, Any]) -> dict[str, Any]:
    """The Go client's marshalling of a swarm.Spec: every struct present, zero values where unset."""
    spec: dict[str, Any] = {
        "Labels": None,
        "Orchestration": {},
        "Raft": {"ElectionTick": 0, "HeartbeatTick": 0},
        "Dispatcher": {},
        "CAConfig": {},
        "TaskDefaults": {},
        "EncryptionConfig": {"AutoLockManagers": False},
    }
    for k, val in partial.items():
        spec[k] = {**spec.get(k, {}), **val}
    return spec


def cmd_join(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    listen = _tcp_addr(JOIN, "listen-addr", v["listen_addr"]) if v["listen_addr"] else "0.0.0.0:2377"
    req: dict[str, Any] = {
        "ListenAddr": listen,
        "AdvertiseAddr": v["advertise_addr"] or "",
        "DataPathAddr": v["data_path_addr"] or "",
        "RemoteAddrs": [args[0]],
        "JoinToken": v["token"] or "",
        "Availability": _availability(v) or "",
    }
    cli.api.post("/swarm/join", body=req)
    info = cli.api.get_json("/info") or {}
    if (info.get("Swarm") or {}).get("ControlAvailable"):
        cli.print("This node joined a swarm as a manager.")
    else:
        cli.print("This node joined a swarm as a worker.")
    return 0


def _swarm_update(cli: Cli, sw: dict[str, Any], **flags: bool) -> None:
    params: dict[str, Any] = {"version": (sw.get("Version") or {}).get("Index", 0)}
    for k in ("rotateWorkerToken", "rotateManagerToken", "rotateManagerUnlockKey"):
        params[k] = "true" if flags.get(k) else "false"
    cli.api.post("/swarm/update", params, body=sw.get("Spec") or {})


def cmd_join_token(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    role = args[0]
    worker, manager = role == "worker", role == "manager"
    if not worker and not manager:
        raise StatusError(1, f"unknown role {role}")
    if v["rotate"]:
        sw = cli.api.get_json("/swarm") or {}
        _swarm_update(cli, sw, rotateWorkerToken=worker, rotateManagerToken=manager)
        if not v["quiet"]:
            cli.print(f"Successfully rotated {role} join token.\n")
    sw = cli.api.get_json("/swarm") or {}
    tokens = sw.get("JoinTokens") or {}
    if v["quiet"]:
        cli.print(str(tokens.get("Worker" if worker else "Manager", "")))
        return 0
    info = cli.api.get_json("/info") or {}
    print_join_command(cli, str((info.get("Swarm") or {}).get("NodeID", "")), worker, manager)
    return 0


def cmd_leave(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    cli.api.post("/swarm/leave", {"force": "1" if v["force"] else None})
    cli.print("Node left the swarm.")
    return 0


def cmd_update(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    sw = cli.api.get_json("/swarm") or {}
    spec = sw.setdefault("Spec", {})
    prev = bool((spec.get("EncryptionConfig") or {}).get("AutoLockManagers"))
    merge_spec(UPDATE, v, spec, ((sw.get("TLSInfo") or {}).get("TrustRoot") or ""))
    cur = bool((spec.get("EncryptionConfig") or {}).get("AutoLockManagers"))
    _swarm_update(cli, sw)
    cli.print("Swarm updated.")
    if cur and not prev:
        print_unlock_command(cli, _unlock_key(cli))
    return 0


def cmd_unlock_key(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    if v["rotate"]:
        sw = cli.api.get_json("/swarm") or {}
        if not ((sw.get("Spec") or {}).get("EncryptionConfig") or {}).get("AutoLockManagers"):
            raise StatusError(1, "cannot rotate because autolock is not turned on")
        _swarm_update(cli, sw, rotateManagerUnlockKey=True)
        if not v["quiet"]:
            cli.print("Successfully rotated manager unlock key.")
    key = _unlock_key(cli)
    if not key:
        raise StatusError(1, "no unlock key is set")
    if v["quiet"]:
        cli.print(key)
    else:
        print_unlock_command(cli, key)
    return 0


def read_key(cli: Cli, prompt: str) -> str:
    """The docker CLI's readKey: on a terminal the prompt on stdout, the key read without echo, a newline
    after it; otherwise the first line of stdin, trimmed."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().strip()
    import termios

    fd = sys.stdin.fileno()
    cli.out.write(prompt)
    cli.out.flush()
    saved = termios.tcgetattr(fd)
    quiet = list(saved)
    quiet[3] = (quiet[3] & ~termios.ECHO) | termios.ICANON | termios.ISIG
    quiet[0] |= termios.ICRNL
    try:
        termios.tcsetattr(fd, termios.TCSANOW, quiet)
        line = b""
        while not line.endswith(b"\n"):
            chunk = os.read(fd, 1)
            if not chunk:
                break
            line += chunk
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, saved)
        cli.out.write("\n")
        cli.out.flush()
    return line.rstrip(b"\n").rstrip(b"\r").decode(errors="replace")


def cmd_unlock(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    info = cli.api.get_json("/info") or {}
    state = (info.get("Swarm") or {}).get("LocalNodeState", "")
    if state == "inactive":
        raise StatusError(1, "Error: This node is not part of a swarm")
    if state in ("pending", "active", "error"):
        raise StatusError(1, "Error: swarm is not locked")
    key = read_key(cli, "Enter unlock key: ")
    cli.api.post("/swarm/unlock", body={"UnlockKey": key})
    return 0


def cmd_ca(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    sw = cli.api.get_json("/swarm") or {}
    if not v["rotate"]:
        for f in ("ca-cert", "ca-key", "cert-expiry", "external-ca"):
            if f.replace("-", "_") in v["_set"]:
                raise StatusError(1, f"`--{f}` flag requires the `--rotate` flag to update the CA")
        root = str((sw.get("TLSInfo") or {}).get("TrustRoot") or "")
        if not root:
            raise StatusError(1, "No CA information available")
        cli.print(root.strip())
        return 0
    raise StatusError(1, "gorae: `swarm ca --rotate` is not supported")


COMMANDS = {
    "swarm init": (INIT, cmd_init),
    "swarm join": (JOIN, cmd_join),
    "swarm join-token": (JOIN_TOKEN, cmd_join_token),
    "swarm leave": (LEAVE, cmd_leave),
    "swarm update": (UPDATE, cmd_update),
    "swarm unlock-key": (UNLOCK_KEY, cmd_unlock_key),
    "swarm unlock": (UNLOCK, cmd_unlock),
    "swarm ca": (CA, cmd_ca),
}
