"""Network benchmark: HTTP requests/second to busybox httpd in a gorae container, through a published port
(127.0.0.1 and the host's other address: kernel DNAT) against the container's own IP (direct), and the
time from `docker run -d -p` until the first HTTP answer.

    python bench/network.py [--seconds 5] [--clients 8] [--runs 10]

dockerd comparison: skipped. The dockerd installed here may only run with `--iptables=false --bridge=none`
(the host firewall is shared with other engineers), which leaves it no bridge to publish ports on; a
dockerd with its own bridge and `--userland-proxy` would still install DOCKER chains in the shared firewall.
Not a test: numbers depend on the machine and its load. Each request is a new TCP connection (busybox httpd
closes after every answer), so this measures connection setup + DNAT, the path published ports add.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from conftest import new_daemon  # noqa: E402

REQUEST = b"GET / HTTP/1.0\r\nHost: x\r\n\r\n"


def one_request(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=5) as s:
            s.sendall(REQUEST)
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        return data.startswith(b"HTTP/1.") and b" 200 " in data[:20]
    except OSError:
        return False


def rps(host: str, port: int, seconds: float, clients: int) -> float:
    counts = [0] * clients
    errors = [0] * clients
    stop = time.monotonic() + seconds

    def worker(i: int) -> None:
        while time.monotonic() < stop:
            if one_request(host, port):
                counts[i] += 1
            else:
                errors[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if sum(errors):
        print(f"  ({sum(errors)} failed requests to {host}:{port})")
    return sum(counts) / seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


def host_address() -> str | None:
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True)
    for line in out.stdout.splitlines():
        w = line.split()
        if not w[1].startswith(("g", "docker", "br-", "veth")):
            return w[3].split("/")[0]
    return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--runs", type=int, default=10)
    a = ap.parse_args()
    d = new_daemon()
    try:
        script = "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 3000 -h /www"
        port = free_port()
        cid = d.docker("run", "-d", "-p", f"{port}:3000", "busybox", "sh", "-c", script).stdout.strip()
        ip = d.docker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", cid).stdout.strip()
        deadline = time.monotonic() + 10
        while not one_request(ip, 3000) and time.monotonic() < deadline:
            time.sleep(0.05)
        other = host_address()
        targets = [("direct (container IP)", ip, 3000), ("published via 127.0.0.1", "127.0.0.1", port)]
        if other:
            targets.append((f"published via {other}", other, port))
        results: dict[str, list[float]] = {name: [] for name, _, _ in targets}
        for _ in range(3):  # interleaved rounds so load changes affect all paths alike
            for name, host, p in targets:
                results[name].append(rps(host, p, a.seconds / 3, a.clients))
        direct = statistics.median(results[targets[0][0]])
        print(f"requests/second ({a.clients} clients, new connection per request, median of 3 rounds)")
        for name, vals in results.items():
            med = statistics.median(vals)
            print(f"  {name:32s} {med:9.0f}   {med / direct:5.2f}x direct")
        d.docker("rm", "-f", cid)
        times = []
        for _ in range(a.runs):
            port = free_port()
            t0 = time.monotonic()
            cid = d.docker("run", "-d", "-p", f"{port}:3000", "busybox", "sh", "-c", script).stdout.strip()
            while not one_request("127.0.0.1", port):
                if time.monotonic() - t0 > 20:
                    raise SystemExit("no answer within 20 s")
                time.sleep(0.005)
            times.append(time.monotonic() - t0)
            d.docker("rm", "-f", cid)
        print(f"run -d -p → first HTTP answer: median {statistics.median(times) * 1000:.0f} ms, "
              f"min {min(times) * 1000:.0f} ms over {a.runs} runs")
        print("dockerd: skipped (only --iptables=false --bridge=none is allowed on this shared host: no ports)")
    finally:
        d.cleanup()


if __name__ == "__main__":
    main()
