"""The kernel load balancer (gorae.network.portmap.lb) with real containers: a VIP:port in a client container's
namespace spread over three busybox httpd containers, updated to two, to none (refused at once), removed;
each update takes effect in well under a second; nothing of ours is left in the namespace."""

from __future__ import annotations

import collections
import subprocess
import time
from collections.abc import Iterator

import pytest
from conftest import GoraeDaemon, unique_name, wait_for

from gorae.network.portmap.lb import Backend, Frontend, LoadBalancer

VIP = "10.222.33.44"


def _serve(d: GoraeDaemon, net: str, name: str) -> str:
    d.docker(
        "run", "-d", "--name", name, "--network", net, "busybox", "sh", "-c",
        f"mkdir /www && echo {name} > /www/index.html && exec httpd -f -p 80 -h /www",
    )  # fmt: skip
    return d.docker(
        "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name
    ).stdout.strip()


def _hits(d: GoraeDaemon, client: str, n: int) -> collections.Counter[str]:
    script = f"for i in $(seq {n}); do wget -q -O- http://{VIP}/ || echo FAILED; done 2>&1"
    out = d.docker("exec", client, "sh", "-c", script).stdout
    return collections.Counter(out.split())


@pytest.fixture
def setup(
    gorae_daemon: GoraeDaemon,
) -> Iterator[tuple[GoraeDaemon, str, list[tuple[str, str]], LoadBalancer]]:
    d = gorae_daemon
    net = unique_name("lbnet")
    names = [unique_name("be") for _ in range(3)]
    client = unique_name("cl")
    lb: LoadBalancer | None = None
    d.docker("network", "create", net)
    try:
        backends = [(n, _serve(d, net, n)) for n in names]
        d.docker("run", "-d", "--name", client, "--network", net, "busybox", "sleep", "300")
        sandbox = d.docker("inspect", "-f", "{{.NetworkSettings.SandboxKey}}", client).stdout.strip()
        for _, ip in backends:  # every httpd is listening
            wait_for(
                lambda ip=ip: (
                    d.docker("exec", client, "wget", "-q", "-O-", f"http://{ip}/", check=False).returncode
                    == 0
                )
            )
        lb = LoadBalancer("GLBT", netns_path=sandbox)
        yield d, client, backends, lb
    finally:
        if lb is not None:
            lb.purge()
        d.docker("rm", "-f", client, *names, check=False)
        d.docker("network", "rm", net, check=False)


def test_vip_spread_over_real_containers_and_updated_atomically(
    setup: tuple[GoraeDaemon, str, list[tuple[str, str]], LoadBalancer],
) -> None:
    d, client, backends, lb = setup
    fe = Frontend(VIP, 80)
    t0 = time.monotonic()
    lb.apply({fe: [Backend(ip, 80) for _, ip in backends]})
    first_apply = time.monotonic() - t0
    hits = _hits(d, client, 90)
    assert set(hits) == {n for n, _ in backends}, hits  # every backend answers, no request fails
    assert sum(hits.values()) == 90 and min(hits.values()) >= 10, hits  # ~30 each (p of < 10: ~1e-6)

    # an update is one iptables-restore over our chains: effective for the next connection
    t0 = time.monotonic()
    lb.apply({fe: [Backend(ip, 80) for _, ip in backends[:2]]})
    update = time.monotonic() - t0
    assert max(first_apply, update) < 1.0, (first_apply, update)
    hits = _hits(d, client, 40)
    assert set(hits) == {n for n, _ in backends[:2]}, hits

    # no backend: refused at once (a TCP reset), not a timeout
    lb.apply({fe: []})
    t0 = time.monotonic()
    r = d.docker("exec", client, "wget", "-q", "-O-", f"http://{VIP}/", check=False)
    assert r.returncode == 1 and "Connection refused" in r.stderr, r.stderr
    assert time.monotonic() - t0 < 3

    lb.apply({fe: [Backend(backends[2][1], 80)]})
    assert _hits(d, client, 5) == {backends[2][0]: 5}
    assert lb.chains() == {"nat": {"GLBT-LB", lb.chain_of(fe)}, "filter": {"GLBT-RJ"}}
    lb.apply({})
    assert lb.chains() == {"nat": {"GLBT-LB"}, "filter": {"GLBT-RJ"}}
    lb.purge()
    assert lb.chains() == {"nat": set(), "filter": set()}
    sandbox = lb.netns_path or ""
    saved = subprocess.run(
        ["nsenter", f"--net={sandbox}", "iptables-save"], capture_output=True, text=True
    ).stdout
    assert "GLBT" not in saved
