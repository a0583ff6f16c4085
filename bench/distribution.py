"""Registry benchmark (the engine half): push and pull MiB/s through gorae vs a real dockerd, against the same
Debian docker-registry, in one run; and the gorae daemon's memory during a pull.

    python bench/distribution.py [--layers 5] [--layer-mib 60]

An image of --layers layers of incompressible data (os.urandom) is `docker load`ed into both engines. Push:
each engine pushes it to its own repository (wall time of `docker push`, uncompressed MiB over seconds).
Pull: both images are removed, then each engine pulls the repository dockerd pushed (the same bytes for
both). The gorae daemon's RSS is sampled every 50 ms during its pull (baseline before, peak during).
Prints the figures and gorae/dockerd ratios. Not a test: the machine is shared, the numbers are noisy.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "compat"))

from conftest import new_daemon, remove_busybox_tar  # noqa: E402
from distribution_peers import Registry  # noqa: E402
from refdockerd import Dockerd  # noqa: E402

MIB = 1 << 20


def make_image(path: str, tag: str, layers: int, layer_mib: int) -> int:
    """A docker-save tarball of `layers` layers of random bytes; returns the bytes of layer content."""
    diff_ids: list[str] = []
    with tarfile.open(path, "w") as out:
        for i in range(layers):
            data = os.urandom(layer_mib * MIB)
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as lt:
                ti = tarfile.TarInfo(f"data{i}.bin")
                ti.size = len(data)
                lt.addfile(ti, io.BytesIO(data))
            layer = buf.getvalue()
            diff_ids.append("sha256:" + hashlib.sha256(layer).hexdigest())
            ti = tarfile.TarInfo(f"l{i}/layer.tar")
            ti.size = len(layer)
            out.addfile(ti, io.BytesIO(layer))
        cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                          "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
        cname = hashlib.sha256(cfg).hexdigest() + ".json"
        for name, data in ((cname, cfg), ("manifest.json", json.dumps(
                [{"Config": cname, "RepoTags": [tag], "Layers": [f"l{i}/layer.tar" for i in range(layers)]}]
        ).encode())):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            out.addfile(ti, io.BytesIO(data))
    return layers * layer_mib * MIB


def docker(env: dict[str, str], *args: str) -> float:
    t = time.perf_counter()
    r = subprocess.run(["docker", *args], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: {r.stderr}")
    return time.perf_counter() - t


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--layer-mib", type=int, default=60)
    a = ap.parse_args()
    reg = Registry().start()
    g = new_daemon()
    ref = Dockerd()
    tmp = tempfile.mkdtemp(prefix="gorae-bench-dist-")
    tar = os.path.join(tmp, "image.tar")
    try:
        total = make_image(tar, "bench:1", a.layers, a.layer_mib)
        genv, denv = g.env, ref.env
        for env in (genv, denv):
            docker(env, "load", "-i", tar)
        gname, dname = f"{reg.addr}/g/bench:1", f"{reg.addr}/d/bench:1"
        docker(genv, "tag", "bench:1", gname)
        docker(denv, "tag", "bench:1", dname)
        push_g = docker(genv, "push", gname)
        push_d = docker(denv, "push", dname)
        for env, names in ((genv, ["bench:1", gname]), (denv, ["bench:1", dname])):
            docker(env, "rmi", *names)
        # both pull what dockerd pushed: the same bytes
        pull_d = docker(denv, "pull", dname)
        samples: list[int] = []
        stop = threading.Event()
        assert g.proc is not None
        base = rss_kib(g.proc.pid)

        def sample() -> None:
            while not stop.is_set():
                samples.append(rss_kib(g.proc.pid))  # type: ignore[union-attr]
                stop.wait(0.05)

        th = threading.Thread(target=sample)
        th.start()
        try:
            pull_g = docker(genv, "pull", dname)
        finally:
            stop.set()
            th.join()
        mib = total / MIB
        print(f"image: {a.layers} layers x {a.layer_mib} MiB of random data ({mib:.0f} MiB), registry: docker-registry "
              f"{reg.addr}; machine shared with other jobs: noisy figures")
        print(f"{'':8}{'gorae':>14}{'dockerd':>14}{'ratio':>8}")
        print(f"{'push':8}{mib / push_g:>10.1f} MiB/s{mib / push_d:>8.1f} MiB/s{push_d / push_g:>7.2f}x")
        print(f"{'pull':8}{mib / pull_g:>10.1f} MiB/s{mib / pull_d:>8.1f} MiB/s{pull_d / pull_g:>7.2f}x")
        print(f"gorae daemon RSS during its pull: {base / 1024:.0f} MiB before, {max(samples) / 1024:.0f} MiB peak "
              f"({len(samples)} samples)")
    finally:
        ref.close()
        g.cleanup()
        reg.stop()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        remove_busybox_tar()


if __name__ == "__main__":
    main()
