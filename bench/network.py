"""Network benchmark: HTTP requests/second to busybox httpd in a gorae container, through a published port
(127.0.0.1 and the host's other address: kernel DNAT) against the container's own IP (direct), and the
time from `docker run -d -p` until the first HTTP answer.

    python bench/network.py [--seconds 5] [--clients 8] [--runs 10]

dockerd comparison (where dockerd is installed; `--no-dockerd` skips it): the reference dockerd runs inside
its own network namespace `dref-<rand>` (`--userland-proxy=false`, default bridge and iptables), so its
docker0, DOCKER chains and sysctls live in that namespace only and the host's shared firewall is untouched.
The same load client (a subprocess, `ip netns exec`'d for dockerd) measures dockerd's published port on the
namespace's 127.0.0.1 and gorae's on the host's 127.0.0.1 in interleaved rounds; the time from `docker run -d -p`
to the first HTTP answer is taken by the same poller subprocess for both.
Not a test: numbers depend on the machine and its load. Each request is a new TCP connection (busybox httpd
closes after every answer), so this measures connection setup + DNAT, the path published ports add.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from conftest import new_daemon, remove_busybox_tar, unmount_under  # noqa: E402

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
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True
    )
    for line in out.stdout.splitlines():
        w = line.split()
        if not w[1].startswith(("g", "docker", "br-", "veth")):
            return w[3].split("/")[0]
    return None


# The load client and the first-answer poller, run as subprocesses so the same code can run on the host or
# inside dockerd's namespace (`ip netns exec`). Processes, not threads: the GIL would cap the client.
CLIENT = r"""
import json, multiprocessing as mp, socket, sys, time
host, port, seconds, clients = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
REQ = b"GET / HTTP/1.0\r\nHost: x\r\n\r\n"
def one():
    try:
        with socket.create_connection((host, port), timeout=5) as s:
            s.sendall(REQ)
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        return data.startswith(b"HTTP/1.") and b" 200 " in data[:20]
    except OSError:
        return False
def work(q, start, stop):
    while time.monotonic() < start:
        time.sleep(0.001)
    ok = err = 0
    while time.monotonic() < stop:
        if one():
            ok += 1
        else:
            err += 1
    q.put((ok, err))
if __name__ == "__main__":
    q = mp.Queue()
    start = time.monotonic() + 0.3
    ps = [mp.Process(target=work, args=(q, start, start + seconds)) for _ in range(clients)]
    for p in ps:
        p.start()
    res = [q.get() for _ in ps]
    for p in ps:
        p.join()
    print(json.dumps({"rps": sum(r[0] for r in res) / seconds, "errors": sum(r[1] for r in res)}))
"""

POLLER = r"""
import socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])
print("ready", flush=True)
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        # short connect timeout: a SYN dropped while the path is being set up is retried at once
        # instead of after TCP's 1 s retransmission, so this measures readiness, not the RTO
        with socket.create_connection((host, port), timeout=0.1) as s:
            s.settimeout(2)
            s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            if s.recv(100).startswith(b"HTTP/1."):
                print(repr(time.monotonic()), flush=True)
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.002)
sys.exit(1)
"""

APP = "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 3000 -h /www"


class Engine:
    """One engine under comparison: how to call its docker CLI and where its clients run."""

    def __init__(self, name: str, env: dict[str, str], prefix: list[str]) -> None:
        self.name, self.env, self.prefix = name, env, prefix
        self.run_returned: list[float] = []  # seconds until `docker run -d` itself returned

    def docker(self, *args: str, check: bool = True) -> str:
        r = subprocess.run(["docker", *args], env=self.env, capture_output=True, text=True, timeout=120)
        if check and r.returncode != 0:
            raise RuntimeError(f"{self.name}: docker {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout

    def load(self, host: str, port: int, seconds: float, clients: int) -> float:
        cmd = [*self.prefix, sys.executable, "-c", CLIENT, host, str(port), str(seconds), str(clients)]
        out = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
        if out["errors"]:
            print(f"  ({out['errors']} failed requests to {self.name} {host}:{port})")
        return float(out["rps"])

    def first_answer(self, port: int) -> float:
        """Seconds from `docker run -d -p` (CLI start) until the first HTTP answer on 127.0.0.1:port."""
        poll = subprocess.Popen(
            [*self.prefix, sys.executable, "-c", POLLER, "127.0.0.1", str(port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert poll.stdout is not None and poll.stdout.readline().strip() == "ready"
            t0 = time.monotonic()
            cid = self.docker("run", "-d", "-p", f"{port}:3000", "busybox", "sh", "-c", APP).strip()
            self.run_returned.append(time.monotonic() - t0)
            out, _ = poll.communicate(timeout=40)
            if poll.returncode != 0:
                raise RuntimeError(f"{self.name}: no HTTP answer on port {port}")
            self.docker("rm", "-f", cid)
            return float(out.strip()) - t0
        finally:
            if poll.poll() is None:
                poll.kill()
                poll.wait()


class NetnsDockerd:
    """A reference dockerd in its own network namespace, with its default bridge and iptables there."""

    def __init__(self) -> None:
        tag = secrets.token_hex(3)
        self.ns = f"dref-{tag}"
        self.data, self.exec_root = f"/tmp/dref-{tag}", f"/tmp/drefx-{tag}"
        self.sock, self.pidfile, self.cfg = (
            f"/tmp/dref-{tag}.sock",
            f"/tmp/dref-{tag}.pid",
            f"/tmp/dref-{tag}.json",
        )
        self.log = f"/tmp/dref-{tag}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.engine = Engine("dockerd", self._env(), ["ip", "netns", "exec", self.ns])

    def _env(self) -> dict[str, str]:
        env = dict(os.environ, DOCKER_HOST="unix://" + self.sock, DOCKER_CONFIG=self.data + "-cli")
        env.pop("DOCKER_CONTEXT", None)
        return env

    def start(self) -> Engine:
        subprocess.run(["ip", "netns", "add", self.ns], check=True)
        subprocess.run(["ip", "netns", "exec", self.ns, "ip", "link", "set", "lo", "up"], check=True)
        with open(self.cfg, "w", encoding="utf-8") as f:
            f.write("{}")
        # nsenter --net only: `ip netns exec` would remount /sys and hide the cgroup hierarchy from dockerd.
        argv = [
            "nsenter", f"--net=/run/netns/{self.ns}", "dockerd", "--data-root", self.data,
            "--exec-root", self.exec_root, "-H", "unix://" + self.sock, "--pidfile", self.pidfile,
            "--config-file", self.cfg, "--userland-proxy=false",
        ]  # fmt: skip
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while self.engine.docker("version", check=False) == "" or not os.path.exists(self.sock):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"reference dockerd did not come up:\n{self.tail()}")
            time.sleep(0.2)
        boot = subprocess.Popen([sys.executable, "-m", "gorae.image.bootstrap"], stdout=subprocess.PIPE)
        r = subprocess.run(
            ["docker", "import", "-c", 'CMD ["sh"]', "-", "busybox:latest"],
            stdin=boot.stdout, env=self.engine.env, capture_output=True, text=True,
        )  # fmt: skip
        boot.wait()
        if r.returncode != 0 or boot.returncode != 0:
            raise RuntimeError(f"busybox import into dockerd failed: {r.stderr}")
        return self.engine

    def tail(self) -> str:
        try:
            with open(self.log, encoding="utf-8", errors="replace") as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            ids = self.engine.docker("ps", "-aq", check=False).split()
            if ids:
                self.engine.docker("rm", "-f", *ids, check=False)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # anything still in the namespace was started by this dockerd (containerd, shims, containers)
        pids = subprocess.run(["ip", "netns", "pids", self.ns], capture_output=True, text=True).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        for d in (self.exec_root, self.data):
            unmount_under(d)
            shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(self.data + "-cli", ignore_errors=True)
        for f in (self.sock, self.pidfile, self.cfg, self.log):
            if os.path.exists(f):
                os.unlink(f)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)


def compare_dockerd(gorae: Engine, a: argparse.Namespace) -> None:
    ref = NetnsDockerd()
    try:
        dockerd = ref.start()
        engines = [gorae, dockerd]
        cids: list[tuple[Engine, str]] = []
        ports: dict[str, int] = {}
        for e in engines:
            ports[e.name] = free_port()
            cids.append(
                (e, e.docker("run", "-d", "-p", f"{ports[e.name]}:3000", "busybox", "sh", "-c", APP).strip())
            )
        for e in engines:  # warm-up; wait until it answers
            for _ in range(40):
                if e.load("127.0.0.1", ports[e.name], 0.25, 1) > 0:
                    break
        results: dict[str, list[float]] = {e.name: [] for e in engines}
        for i in range(a.rounds):  # interleaved, alternating which engine goes first
            for e in engines if i % 2 == 0 else engines[::-1]:
                results[e.name].append(e.load("127.0.0.1", ports[e.name], a.seconds / a.rounds, a.clients))
        for e, cid in cids:
            e.docker("rm", "-f", cid)
        times: dict[str, list[float]] = {e.name: [] for e in engines}
        for i in range(a.runs):
            for e in engines if i % 2 == 0 else engines[::-1]:
                times[e.name].append(e.first_answer(free_port()))
        by_name = {e.name: e for e in engines}
        g_rps, d_rps = (statistics.median(results[n]) for n in ("gorae", "dockerd"))
        g_t, d_t = (statistics.median(times[n]) for n in ("gorae", "dockerd"))
        print(
            f"gorae vs reference dockerd in netns {ref.ns} (--userland-proxy=false), published port on 127.0.0.1,"
        )
        print(f"same subprocess client ({a.clients} processes, {a.rounds} interleaved rounds, median):")
        for n in ("gorae", "dockerd"):
            vals = " ".join(f"{v:.0f}" for v in results[n])
            print(f"  {n:8s} {statistics.median(results[n]):9.0f} req/s   (rounds: {vals})")
        print(
            f"  ratio gorae/dockerd rps      {g_rps / d_rps:5.2f}x   goal >= 1.0x   {_ok(g_rps / d_rps >= 1.0)}"
        )
        for n in ("gorae", "dockerd"):
            ret = statistics.median(by_name[n].run_returned) * 1000
            print(
                f"  {n:8s} run -d -p -> first answer: median {statistics.median(times[n]) * 1000:.0f} ms, "
                f"min {min(times[n]) * 1000:.0f} ms over {a.runs} runs (docker run -d returned: {ret:.0f} ms)"
            )
        print(
            f"  ratio gorae/dockerd first answer {g_t / d_t:5.2f}x   goal <= 0.5x   {_ok(g_t / d_t <= 0.5)}"
        )
    finally:
        ref.stop()


def _ok(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=6, help="interleaved rounds in the dockerd comparison")
    ap.add_argument("--no-dockerd", action="store_true")
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
            print(
                f"  {name:32s} {med:9.0f}   {med / direct:5.2f}x direct   goal >= 0.9x   {_ok(med / direct >= 0.9)}"
            )
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
        print(
            f"run -d -p → first HTTP answer: median {statistics.median(times) * 1000:.0f} ms, "
            f"min {min(times) * 1000:.0f} ms over {a.runs} runs"
        )
        if a.no_dockerd or not shutil.which("dockerd"):
            print("dockerd: skipped")
        else:
            env = dict(d.env)
            compare_dockerd(Engine("gorae", env, []), a)
    finally:
        d.cleanup()
        remove_busybox_tar()


if __name__ == "__main__":
    main()
