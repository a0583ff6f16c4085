"""Load balancing in the kernel without IPVS: a virtual IP:port spread over backends by iptables DNAT rules
chosen with `statistic --mode random --probability` (kube-proxy's iptables mode).

For n backends, rule i (0-based) matches with probability 1/(n-i) and the last one always, so each backend
gets 1/n of the new connections; conntrack keeps a connection on the backend it got. A frontend without
backends is refused at once (REJECT with a TCP reset / ICMP port unreachable), as a VIP without tasks is.

`LoadBalancer.apply(table)` makes the rules exactly `table` in one `iptables-restore --noflush` transaction
over our own chains only (`<prefix>-LB` and one `<prefix>-<hash>` chain per frontend in nat, `<prefix>-RJ` in
filter), so an update is atomic: a connection sees either the old backends or the new ones. The chains are
hooked from nat PREROUTING and OUTPUT (forwarded and locally made connections) and filter OUTPUT and
FORWARD. With `netns_path` everything happens inside that network namespace (a container's, an overlay's).
"""

from __future__ import annotations

import hashlib
import ipaddress
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gorae.errors import InvalidParameter, SystemError_

IPTABLES = "iptables"
IPTABLES_RESTORE = "iptables-restore"
IPTABLES_SAVE = "iptables-save"
CONNTRACK = "conntrack"
MAX_CHAIN = 28  # iptables' chain name limit


def mesh_chain_prefix(chain_prefix: str) -> str:
    """The routing mesh's chain prefix for a daemon whose chains are `chain_prefix`-..."""
    return chain_prefix[:14] + "-ING"


@dataclass(frozen=True, order=True)
class Frontend:
    """A virtual address clients connect to."""

    vip: str  # "" for every local address of the namespace (a published port)
    port: int  # 0 with proto "all": every port and protocol
    proto: str = "tcp"


@dataclass(frozen=True, order=True)
class Backend:
    ip: str
    port: int


def _check(fe: Frontend, backends: Sequence[Backend]) -> None:
    if not fe.vip and fe.proto == "all":
        raise InvalidParameter("a frontend on every local address needs a protocol and port")
    for ip in ((fe.vip,) if fe.vip else ()) + tuple(b.ip for b in backends):
        try:
            ipaddress.IPv4Address(ip)
        except ValueError:
            raise InvalidParameter(f"invalid IPv4 address {ip!r}") from None
    if fe.proto == "all":  # every port and protocol to the VIP (Docker's VIP semantics)
        if fe.port != 0 or any(b.port != 0 for b in backends):
            raise InvalidParameter("a frontend for all protocols has port 0, and so have its backends")
        return
    if fe.proto not in ("tcp", "udp"):
        raise InvalidParameter(f"invalid protocol {fe.proto!r}: tcp, udp or all")
    for port in (fe.port, *(b.port for b in backends)):
        if not 0 < port < 65536:
            raise InvalidParameter(f"invalid port {port}")


class LoadBalancer:
    def __init__(self, prefix: str, netns_path: str | None = None, masquerade_out: str | None = None) -> None:
        """masquerade_out: an interface whose outgoing balanced connections get its address as source (the
        routing mesh's, so that replies come back through this namespace)."""
        if len(prefix) > MAX_CHAIN - 9:
            raise InvalidParameter(f"load balancer chain prefix {prefix!r} is too long")
        self.prefix = prefix
        self.netns_path = netns_path
        self.entry = f"{prefix}-LB"
        self.reject = f"{prefix}-RJ"
        self.post = f"{prefix}-PO"
        self.masquerade_out = masquerade_out
        self._lock = threading.Lock()
        self._hooked = False
        self._applied: str | None = None
        self._table: dict[Frontend, set[Backend]] = {}

    def _argv(self, argv: list[str]) -> list[str]:
        return ["nsenter", f"--net={self.netns_path}", *argv] if self.netns_path else argv

    def _run(
        self, argv: list[str], stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(self._argv(argv), input=stdin, capture_output=True, text=True, timeout=60)
        if check and proc.returncode != 0:
            raise SystemError_(f"{' '.join(argv)}: {proc.stderr.strip()}")
        return proc

    def chain_of(self, fe: Frontend) -> str:
        digest = hashlib.sha256(f"{fe.proto}:{fe.vip}:{fe.port}".encode()).hexdigest()[:8].upper()
        return f"{self.prefix}-{digest}"

    def chains(self) -> dict[str, set[str]]:
        """Our chains as they exist now, by table."""
        out: dict[str, set[str]] = {}
        for table in ("nat", "filter"):
            text = self._run([IPTABLES_SAVE, "-t", table], check=False).stdout
            out[table] = {
                line[1:].split()[0]
                for line in text.splitlines()
                if line.startswith(":") and line[1:].split()[0].startswith(self.prefix + "-")
            }
        return out

    def render(self, table: Mapping[Frontend, Sequence[Backend]], existing: Mapping[str, set[str]]) -> str:
        """The iptables-restore input that makes our chains exactly `table` (stale chains removed)."""
        nat = ["*nat", f":{self.entry} - [0:0]"]
        flt = ["*filter", f":{self.reject} - [0:0]"]
        rules_nat: list[str] = []
        rules_flt: list[str] = []
        wanted: set[str] = set()
        for fe in sorted(table):
            backends = sorted(set(table[fe]))
            _check(fe, backends)
            every = fe.proto == "all"
            dst = f"-d {fe.vip}/32" if fe.vip else "-m addrtype --dst-type LOCAL"
            match = dst if every else f"{dst} -p {fe.proto} -m {fe.proto} --dport {fe.port}"
            if not backends:
                if every or fe.proto == "tcp":
                    tcp = f"{dst} -p tcp" if every else match
                    rules_flt.append(f"-A {self.reject} {tcp} -j REJECT --reject-with tcp-reset")
                if every or fe.proto == "udp":
                    rules_flt.append(
                        f"-A {self.reject} {match} -j REJECT --reject-with icmp-port-unreachable"
                    )
                continue
            chain = self.chain_of(fe)
            wanted.add(chain)
            nat.append(f":{chain} - [0:0]")
            rules_nat.append(f"-A {self.entry} {match} -j {chain}")
            n = len(backends)
            for i, be in enumerate(backends):
                stat = "" if i == n - 1 else f"-m statistic --mode random --probability {1.0 / (n - i):.11f} "
                if every:
                    rules_nat.append(f"-A {chain} {stat}-j DNAT --to-destination {be.ip}")
                else:
                    rules_nat.append(
                        f"-A {chain} -p {fe.proto} {stat}-j DNAT --to-destination {be.ip}:{be.port}"
                    )
        if self.masquerade_out:
            nat.append(f":{self.post} - [0:0]")
            rules_nat.append(
                f"-A {self.post} -o {self.masquerade_out} -m conntrack --ctstate DNAT -j MASQUERADE"
            )
            wanted.add(self.post)
        stale = sorted(existing.get("nat", set()) - wanted - {self.entry})
        nat += [f":{c} - [0:0]" for c in stale]  # flushed, so nothing refers to them any more
        nat += rules_nat + [f"-X {c}" for c in stale] + ["COMMIT"]
        flt += rules_flt + ["COMMIT"]
        return "\n".join(nat + flt) + "\n"

    def apply(self, table: Mapping[Frontend, Sequence[Backend]]) -> None:
        """Make the rules exactly `table` (one transaction); cheap when nothing changed."""
        with self._lock:
            text = self.render(table, self.chains())
            if text == self._applied:
                return
            self._run([IPTABLES_RESTORE, "--noflush", "-w"], stdin=text)
            self._applied = text
            if not self._hooked:
                self._hook()
                self._hooked = True
            new = {fe: set(bes) for fe, bes in table.items()}
            for argv in stale_udp_flows(self._table, new):
                self._run([CONNTRACK, *argv], check=False)  # none to delete is fine
            self._table = new

    def _hooks(self) -> list[tuple[str, str, str]]:
        post = [("nat", "POSTROUTING", self.post)] if self.masquerade_out else []
        return post + [
            ("nat", "PREROUTING", self.entry),
            ("nat", "OUTPUT", self.entry),
            ("filter", "OUTPUT", self.reject),
            ("filter", "FORWARD", self.reject),
        ]

    def _hook(self) -> None:
        for table, builtin, chain in self._hooks():
            if self._run([IPTABLES, "-w", "-t", table, "-C", builtin, "-j", chain], check=False).returncode:
                self._run([IPTABLES, "-w", "-t", table, "-I", builtin, "1", "-j", chain])

    def purge(self) -> None:
        """Remove the hooks and all our chains (missing pieces are fine)."""
        with self._lock:
            hooks = self._hooks() + ([] if self.masquerade_out else [("nat", "POSTROUTING", self.post)])
            for table, builtin, chain in hooks:
                while not self._run(
                    [IPTABLES, "-w", "-t", table, "-D", builtin, "-j", chain], check=False
                ).returncode:
                    pass
            for table, names in self.chains().items():
                for name in names:
                    self._run([IPTABLES, "-w", "-t", table, "-F", name], check=False)
                for name in names:
                    self._run([IPTABLES, "-w", "-t", table, "-X", name], check=False)
            self._hooked, self._applied, self._table = False, None, {}


def stale_udp_flows(
    old: Mapping[Frontend, set[Backend]], new: Mapping[Frontend, set[Backend]]
) -> list[list[str]]:
    """`conntrack -D` arguments for the UDP flows an update leaves stale (kube-proxy's clean-up): UDP has no
    connection end, so a client that keeps sending to a frontend would stay on a backend that went, or on
    no backend at all (flows that met the frontend while it had none). So: the flows of each removed
    backend, and every flow of a frontend that had no backend before."""
    out: list[list[str]] = []
    for fe in sorted(new):
        if fe.proto not in ("udp", "all"):
            continue
        match = ["-p", "udp"]
        match += ["--orig-dst", fe.vip] if fe.vip else ["--orig-port-dst", str(fe.port)]
        before = old.get(fe, set())
        if not before and new[fe]:
            out.append(["-D", *match])
            continue
        for be in sorted(before - new[fe]):
            out.append(
                ["-D", *match, "--reply-src", be.ip, *(["--reply-port-src", str(be.port)] if be.port else [])]
            )
    for fe in sorted(set(old) - set(new)):
        if fe.proto in ("udp", "all") and old[fe]:
            out.append(
                [
                    "-D",
                    "-p",
                    "udp",
                    *(["--orig-dst", fe.vip] if fe.vip else ["--orig-port-dst", str(fe.port)]),
                ]
            )
    return out
