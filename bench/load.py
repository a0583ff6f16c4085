"""Image-load benchmark: `docker load` into gorae vs a real dockerd on this machine, same CLI, same run.

    python bench/load.py [--mib 300] [--layers 5] [--runs 3] [--only docker-save,oci-gzip]

Builds (once per run, in a temp dir) an image of --layers layers of incompressible data, ~--mib MiB in all:
each layer has a few big files and many small ones (per-byte and per-entry costs both show). Two tarballs:

- `docker-save`: what `docker save` writes since docker 25 (an OCI layout with uncompressed layer tars plus
  manifest.json, the layers first and manifest.json after them);
- `oci-gzip`: the same with gzip-compressed layers (the shape a registry pull ingests: decompress, hash,
  apply).

Each variant is loaded --runs times into each engine (alternating order, `docker rmi` between) and the
median MiB/s (of the uncompressed image size) and the gorae/dockerd ratio are printed, plus the daemon's
CPU seconds per load (user + system, its waited-for children included: on a shared machine a steadier
figure than wall time) and its peak RSS during the loads (sampled every 20 ms from /proc, above its RSS
before the load).
Not a test: numbers depend on the machine (and on what else runs on it); the README records what it printed.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
sys.path.insert(0, HERE)

from conftest import new_daemon, remove_busybox_tar  # noqa: E402
from refdockerd import Dockerd  # noqa: E402

TAG = "bench/load:1"
MIB = 1 << 20


def _layer_tar(index: int, size: int) -> bytes:
    """A layer tar of ~`size` bytes of random data: 3 big files (3/4 of it) and 10 KiB files (the rest)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:

        def add(name: str, data: bytes | None, mode: int = 0o644) -> None:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1_700_000_000
            ti.mode = mode
            if data is None:
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755
                t.addfile(ti)
            else:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))

        top = f"layer{index}"
        add(top, None)
        big = size * 3 // 4 // 3
        for i in range(3):
            add(f"{top}/big{i}.bin", os.urandom(big))
        small = 10 * 1024
        count = (size - 3 * big) // small
        for d in range(count // 100 + 1):
            add(f"{top}/d{d:03d}", None)
        for i in range(count):
            add(f"{top}/d{i // 100:03d}/f{i:05d}", os.urandom(small))
    return buf.getvalue()


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def build(out_dir: str, mib: int, layers: int) -> tuple[dict[str, str], int]:
    """Writes docker-save.tar and oci-gzip.tar; returns their paths and the uncompressed image size."""
    per = mib * MIB // layers
    tars = [_layer_tar(i, per) for i in range(layers)]
    diff_ids = [_sha(t) for t in tars]
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": f"layer {i}"} for i in range(layers)],
        }
    ).encode()
    total = sum(len(t) for t in tars)
    paths: dict[str, str] = {}
    for variant in ("docker-save", "oci-gzip"):
        blobs = [gzip.compress(t, compresslevel=1) for t in tars] if variant == "oci-gzip" else tars
        media = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if variant == "oci-gzip" else "")
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": _sha(config),
                    "size": len(config),
                },
                "layers": [{"mediaType": media, "digest": _sha(b), "size": len(b)} for b in blobs],
            }
        ).encode()
        index = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [
                    {
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": _sha(manifest),
                        "size": len(manifest),
                        "annotations": {
                            "io.containerd.image.name": "docker.io/" + TAG,
                            "org.opencontainers.image.ref.name": TAG.split(":")[1],
                        },
                    }
                ],
            }
        ).encode()
        members: list[tuple[str, bytes]] = [("blobs/sha256/" + _sha(b)[7:], b) for b in blobs]
        members += [
            ("blobs/sha256/" + _sha(config)[7:], config),
            ("blobs/sha256/" + _sha(manifest)[7:], manifest),
            ("index.json", index),
            ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
        ]
        # manifest.json names the layer blobs (dockerd's graphdriver store loads nothing without it)
        save = [
            {
                "Config": "blobs/sha256/" + _sha(config)[7:],
                "RepoTags": [TAG],
                "Layers": ["blobs/sha256/" + _sha(b)[7:] for b in blobs],
            }
        ]
        members.insert(-1, ("manifest.json", json.dumps(save).encode()))
        path = os.path.join(out_dir, variant + ".tar")
        with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as t:
            for d in ("blobs", "blobs/sha256"):
                ti = tarfile.TarInfo(d)
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                t.addfile(ti)
            for name, data in members:
                ti = tarfile.TarInfo(name)
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
        paths[variant] = path
    return paths, total


def _rss(pid: int) -> int:
    """VmRSS of a process in bytes (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class RssSampler:
    """Samples a process's RSS every 20 ms in a thread; `peak` is the highest seen."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.base = _rss(pid)
        self.peak = self.base
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss(self.pid))

    def stop(self) -> None:
        self._stop.set()
        self._t.join()


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and its waited-for children so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def load_once(env: dict[str, str], path: str, pid: int) -> tuple[float, float, int, int]:
    """Seconds for `docker load -i path`, the daemon's CPU seconds meanwhile, its RSS before and its peak
    RSS; removes the image after."""
    sampler = RssSampler(pid)
    cpu = _cpu(pid)
    t = time.perf_counter()
    res = subprocess.run(["docker", "load", "-i", path], env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t
    cpu = _cpu(pid) - cpu
    sampler.stop()
    if res.returncode != 0 or TAG not in res.stdout:
        raise RuntimeError(f"docker load failed: {res.returncode} {res.stdout} {res.stderr}")
    rm = subprocess.run(["docker", "rmi", TAG], env=env, capture_output=True, text=True)
    if rm.returncode != 0:
        raise RuntimeError(f"docker rmi failed: {rm.stderr}")
    return dt, cpu, sampler.base, sampler.peak


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=300)
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", default="docker-save,oci-gzip")
    ap.add_argument("--no-dockerd", action="store_true")
    ap.add_argument(
        "--root-dir",
        default="",
        help="where both engines' data roots go (default: the temp dir); e.g. /dev/shm to leave the disk's "
        "per-file cost out (on this machine creating a file on ext4 costs 0.1-0.8 ms of kernel time, "
        "depending on where its directory landed)",
    )
    ap.add_argument("--cache", default="", help="keep the built tarballs in this directory and reuse them")
    args = ap.parse_args()
    work = args.cache or tempfile.mkdtemp(prefix="gorae-bench-load-")
    os.makedirs(work, exist_ok=True)
    if args.root_dir:
        tempfile.tempdir = args.root_dir  # new_daemon() and Dockerd() make their data roots with mkdtemp()
    closers = []
    results: dict[tuple[str, str], list[float]] = {}
    cpus: dict[tuple[str, str], list[float]] = {}
    rss: dict[tuple[str, str], int] = {}
    try:
        t = time.perf_counter()
        stamp = os.path.join(work, f"built-{args.mib}-{args.layers}.json")
        if args.cache and os.path.exists(stamp):
            with open(stamp, encoding="utf-8") as f:
                paths, total = json.load(f)
        else:
            paths, total = build(work, args.mib, args.layers)
            with open(stamp, "w", encoding="utf-8") as f:
                json.dump([paths, total], f)
        print(
            f"built {args.layers} layers, {total / MIB:.0f} MiB uncompressed "
            f"({ {k: round(os.path.getsize(p) / MIB) for k, p in paths.items()} } MiB tarballs) "
            f"in {time.perf_counter() - t:.1f}s",
            flush=True,
        )
        g = new_daemon(with_busybox=False)
        closers.append(g.cleanup)
        assert g.proc is not None
        engines: dict[str, tuple[dict[str, str], int]] = {"gorae": (g.env, g.proc.pid)}
        if shutil.which("dockerd") and not args.no_dockerd:
            d = Dockerd()
            closers.append(d.close)
            engines["dockerd"] = (d.env, d.proc.pid)
        order = list(engines)
        for variant in args.only.split(","):
            for i in range(args.runs):
                for name in order if i % 2 == 0 else order[::-1]:
                    env, pid = engines[name]
                    dt, cpu, base, peak = load_once(env, paths[variant], pid)
                    results.setdefault((variant, name), []).append(total / MIB / dt)
                    cpus.setdefault((variant, name), []).append(cpu)
                    rss[(variant, name)] = max(rss.get((variant, name), 0), peak - base)
                    print(
                        f"  {variant:<12}{name:<8}{total / MIB / dt:8.1f} MiB/s  cpu {cpu:5.2f}s  "
                        f"rss +{(peak - base) / MIB:.0f} MiB",
                        flush=True,
                    )
    finally:
        for close in reversed(closers):
            close()
        remove_busybox_tar()
        if not args.cache:
            shutil.rmtree(work, ignore_errors=True)
    print(
        f"{'variant':<14}{'engine':<10}{'median MiB/s':>14}{'(min-max)':>16}{'daemon CPU s':>14}"
        f"{'peak RSS +MiB':>16}"
    )
    for (variant, name), rates in results.items():
        print(
            f"{variant:<14}{name:<10}{statistics.median(rates):>14.1f}"
            f"{f'{min(rates):.0f}-{max(rates):.0f}':>16}{statistics.median(cpus[(variant, name)]):>14.2f}"
            f"{rss[(variant, name)] / MIB:>16.0f}"
        )
    for variant in args.only.split(","):
        if (variant, "dockerd") in results:
            ratio = statistics.median(results[(variant, "gorae")]) / statistics.median(
                results[(variant, "dockerd")]
            )
            print(f"{variant}: load ratio gorae/dockerd {ratio:.2f} (goal >= 1.0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
