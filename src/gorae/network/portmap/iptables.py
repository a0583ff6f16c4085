"""gorae's iptables rules: rendered whole from the desired state and applied atomically.

Owns the chains `<P>` (nat: DNAT of published ports; filter: ACCEPT of published ports),
`<P>-POSTROUTING` (nat: outbound MASQUERADE, loopback/hairpin MASQUERADE), `<P>-FORWARD` and
`<P>-ISOLATION` (filter: per-bridge forwarding, inter-network isolation, internal networks), where `<P>` is
the chain prefix (default "GORAE"). Their content is rebuilt in one `iptables-restore --noflush` transaction
per change (declaring a chain flushes it), so applying is idempotent and a restart (also after kill -9)
converges. The jumps from the built-in chains are checked with `-C` and inserted once. The mode is dockerd's
with `userland-proxy=false`: DNAT in nat PREROUTING and OUTPUT (also for 127.0.0.1, with route_localnet on
the bridge and a MASQUERADE of locally sourced packets), hairpin MASQUERADE per published port.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field

from gorae.errors import CommandFailed

IPTABLES = "iptables"
IPTABLES_RESTORE = "iptables-restore"
IP6TABLES = "ip6tables"
IP6TABLES_RESTORE = "ip6tables-restore"


def _tools(family: int) -> tuple[str, str]:
    """The command and its restore companion for an address family (4: iptables, 6: ip6tables)."""
    return (IP6TABLES, IP6TABLES_RESTORE) if family == 6 else (IPTABLES, IPTABLES_RESTORE)


@dataclass(frozen=True)
class BridgeRules:
    bridge: str
    subnet: str
    internal: bool = False
    masquerade: bool = True
    icc: bool = True


@dataclass(frozen=True)
class PortRule:
    proto: str  # tcp | udp | sctp
    host_ip: str  # "" or "0.0.0.0" = any
    host_port: int
    container_ip: str
    container_port: int
    bridge: str


@dataclass
class RuleSet:
    bridges: list[BridgeRules] = field(default_factory=list)
    ports: list[PortRule] = field(default_factory=list)


class Chains:
    def __init__(self, prefix: str = "GORAE") -> None:
        self.prefix = prefix
        self.dnat = prefix
        self.post = f"{prefix}-POSTROUTING"
        self.fwd = f"{prefix}-FORWARD"
        self.iso = f"{prefix}-ISOLATION"

    def jumps(self) -> list[tuple[str, str, list[str]]]:
        """(table, built-in chain, rule spec) of every jump into our chains."""
        return [
            ("nat", "PREROUTING", ["-m", "addrtype", "--dst-type", "LOCAL", "-j", self.dnat]),
            ("nat", "OUTPUT", ["-m", "addrtype", "--dst-type", "LOCAL", "-j", self.dnat]),
            ("nat", "POSTROUTING", ["-j", self.post]),
            ("filter", "FORWARD", ["-j", self.fwd]),
        ]

    def render(self, rules: RuleSet) -> str:
        """iptables-restore input that (re)declares and fills all our chains."""
        nat = ["*nat", f":{self.dnat} - [0:0]", f":{self.post} - [0:0]"]
        flt = ["*filter", f":{self.dnat} - [0:0]", f":{self.fwd} - [0:0]", f":{self.iso} - [0:0]"]
        for p in rules.ports:
            dst = [] if p.host_ip in ("", "0.0.0.0") else ["-d", f"{p.host_ip}/32"]
            nat.append(
                " ".join(
                    [
                        "-A",
                        self.dnat,
                        "-p",
                        p.proto,
                        *dst,
                        "-m",
                        p.proto,
                        "--dport",
                        str(p.host_port),
                        "-j",
                        "DNAT",
                        "--to-destination",
                        f"{p.container_ip}:{p.container_port}",
                    ]
                )
            )
            nat.append(
                f"-A {self.post} -s {p.container_ip}/32 -d {p.container_ip}/32 -p {p.proto} -m {p.proto}"
                f" --dport {p.container_port} -j MASQUERADE"
            )
            flt.append(
                f"-A {self.dnat} -d {p.container_ip}/32 ! -i {p.bridge} -o {p.bridge} -p {p.proto}"
                f" -m {p.proto} --dport {p.container_port} -j ACCEPT"
            )
        # inter-network isolation; DNAT'd flows (published ports reached via the host) may cross
        flt.append(f"-A {self.iso} -m conntrack --ctstate DNAT -j RETURN")
        for b in rules.bridges:
            flt.append(f"-A {self.iso} -o {b.bridge} -j DROP")
        for b in rules.bridges:
            if b.internal:
                flt.append(f"-A {self.fwd} -i {b.bridge} ! -d {b.subnet} -j DROP")
                flt.append(f"-A {self.fwd} -o {b.bridge} ! -s {b.subnet} -j DROP")
            else:
                flt.append(f"-A {self.fwd} -i {b.bridge} ! -o {b.bridge} -j {self.iso}")
        for b in rules.bridges:
            if not b.internal:
                flt.append(
                    f"-A {self.fwd} -o {b.bridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
                )
                flt.append(f"-A {self.fwd} -o {b.bridge} -j {self.dnat}")
                flt.append(f"-A {self.fwd} -i {b.bridge} ! -o {b.bridge} -j ACCEPT")
            flt.append(f"-A {self.fwd} -i {b.bridge} -o {b.bridge} -j {'ACCEPT' if b.icc else 'DROP'}")
            if not b.internal:
                if b.masquerade:
                    nat.append(f"-A {self.post} -s {b.subnet} ! -o {b.bridge} -j MASQUERADE")
                nat.append(f"-A {self.post} -o {b.bridge} -m addrtype --src-type LOCAL -j MASQUERADE")
        nat.append("COMMIT")
        flt.append("COMMIT")
        return "\n".join(nat + flt) + "\n"


def run(argv: list[str], *, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise CommandFailed(argv, proc.returncode, proc.stderr)
    return proc


def apply(chains: Chains, rules: RuleSet, *, jumps: bool = True, family: int = 4) -> None:
    """Make our chains hold exactly `rules` (one transaction), then (with jumps) make sure the jumps exist.
    `family` 6: the same chains in ip6tables, for the IPv6 subnets of networks (ports are IPv4 only)."""
    run([_tools(family)[1], "--noflush", "-w"], stdin=chains.render(rules))
    if jumps:
        ensure_jumps(chains, family=family)


def ensure_jumps(chains: Chains, *, family: int = 4) -> None:
    tool = _tools(family)[0]
    for table, builtin, spec in chains.jumps():
        if run([tool, "-w", "-t", table, "-C", builtin, *spec], check=False).returncode != 0:
            run([tool, "-w", "-t", table, "-I", builtin, "1", *spec])


def purge(chains: Chains, *, family: int = 4) -> None:
    """Remove the jumps and our chains entirely (uninstall, tests). Missing pieces are fine."""
    tool = _tools(family)[0]
    try:
        for table, builtin, spec in chains.jumps():
            while run([tool, "-w", "-t", table, "-D", builtin, *spec], check=False).returncode == 0:
                pass
        for table, names in (
            ("nat", [chains.dnat, chains.post]),
            ("filter", [chains.fwd, chains.iso, chains.dnat]),
        ):
            for name in names:
                run([tool, "-w", "-t", table, "-F", name], check=False)
            for name in names:
                run([tool, "-w", "-t", table, "-X", name], check=False)
    except FileNotFoundError:  # no ip6tables on this host: nothing of ours can be there
        pass


def dump(table: str, *, family: int = 4) -> str:
    """`iptables -S` (or `ip6tables -S`) of a table (tests assert on it)."""
    return run([_tools(family)[0], "-w", "-t", table, "-S"]).stdout


def set_ip_forward() -> None:
    with open("/proc/sys/net/ipv4/ip_forward", "w", encoding="ascii") as f:
        f.write("1")


def set_ipv6_forward() -> None:
    """net.ipv6.conf.all.forwarding = 1, as dockerd sets it for IPv6 networks with --ip-forward."""
    with open("/proc/sys/net/ipv6/conf/all/forwarding", "w", encoding="ascii") as f:
        f.write("1")
