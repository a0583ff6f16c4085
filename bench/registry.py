"""Registry server benchmark: `gorae registry serve` against Debian's `docker-registry` (distribution), with
skopeo as the client for both.

    python bench/registry.py [--rounds 3] [--layers 5] [--layer-mib 60]

An image of --layers layers of incompressible data (random bytes, gzipped once at level 1 so skopeo sends them
as they are) is pushed with `skopeo copy dir:SRC docker://REG/bench/rN:latest` (fresh registries each round,
so every blob is uploaded) and pulled back with `skopeo copy docker://... dir:OUT`. Both registries run in the
same session on filesystem storage in temporary roots, rounds rotate and alternate which goes first, and the figure is the
median MiB/s (layer bytes over wall time of the copy) over rounds. skopeo's own work (hashing, files) weighs on
those figures, so each round also measures the servers alone with curl: the 5 layers fetched in parallel to
/dev/null (`GET`), and each layer uploaded with one `PUT` of its bytes (`curl -T`, the monolithic upload).
skopeo's CPU time (user + system) for each pull is printed too: on a loaded machine it is steadier than the
wall time, and it shows what a server's way of sending costs its client. The load average at the start and
the end says how loaded the machine was. `--compare-src DIR` adds a third server run from DIR/src (another copy
of the code), in the same rounds.
Not a test: numbers depend on the machine, and this machine is shared, so they are noisy.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "compat"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from registry_helpers import Registry, gorae_registry, reference_registry, tar_of, write_oci_layout  # noqa: E402


def skopeo(*args: str) -> None:
    subprocess.run(
        ["skopeo", "--insecure-policy", *args],
        check=True,
        stdout=subprocess.DEVNULL,
        env=dict(
            os.environ, REGISTRY_AUTH_FILE=os.path.join(tempfile.gettempdir(), "gorae-bench-no-auth.json")
        ),
    )


def timed_skopeo(*args: str) -> float:
    t = time.perf_counter()
    skopeo(*args)
    return time.perf_counter() - t


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def curl_rates(reg: Registry, src: str, digests: list[str], mib: float) -> tuple[float, float]:
    """(PUT MiB/s, parallel GET MiB/s) of the layers with curl against `reg` (new repository `bench/curl`)."""
    t = time.perf_counter()
    for d in digests:
        r = subprocess.run(
            [
                "curl",
                "-sS",
                "-D",
                "-",
                "-o",
                "/dev/null",
                "-X",
                "POST",
                f"{reg.url}/v2/bench/curl/blobs/uploads/",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        loc = next(
            line.split(":", 1)[1].strip()
            for line in r.stdout.splitlines()
            if line.lower().startswith("location:")
        )
        url = loc if loc.startswith("http") else reg.url + loc
        url += ("&" if "?" in url else "?") + f"digest={d}"
        subprocess.run(
            ["curl", "-sS", "-f", "-o", "/dev/null", "-T", os.path.join(src, d.split(":")[1]), url],
            check=True,
        )
    put = mib / (time.perf_counter() - t)
    t = time.perf_counter()
    procs = [
        subprocess.Popen(["curl", "-sS", "-f", "-o", "/dev/null", f"{reg.url}/v2/bench/curl/blobs/{d}"])
        for d in digests
    ]
    if any(p.wait() for p in procs):
        raise RuntimeError("a blob GET failed")
    return put, mib / (time.perf_counter() - t)


def make_image(work: str, layers: int, layer_mib: int) -> tuple[str, int]:
    """A dir: image of incompressible layers; (its path, bytes of layer blobs)."""
    layout = os.path.join(work, "oci")
    write_oci_layout(
        layout,
        [tar_of({f"data{i}.bin": os.urandom(layer_mib << 20)}) for i in range(layers)],
        gzip_level=1,
    )
    src = os.path.join(work, "src")
    skopeo("copy", f"oci:{layout}:latest", f"dir:{src}")
    shutil.rmtree(layout)
    size = sum(os.path.getsize(os.path.join(src, f)) for f in os.listdir(src) if len(f) == 64)
    return src, size


@contextlib.contextmanager
def servers(compare_src: str) -> Iterator[dict[str, Registry]]:
    with contextlib.ExitStack() as stack:
        regs = {"gorae": stack.enter_context(gorae_registry())}
        if compare_src:
            regs["compared"] = stack.enter_context(gorae_registry(src=os.path.join(compare_src, "src")))
        regs["docker-registry"] = stack.enter_context(reference_registry())
        yield regs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--layer-mib", type=int, default=60)
    ap.add_argument(
        "--compare-src",
        default="",
        help="also serve from this copy of the code (DIR/src, e.g. from `git archive <commit> src | tar -x -C DIR`)",
    )
    args = ap.parse_args()
    if shutil.which("skopeo") is None or shutil.which("docker-registry") is None:
        print("bench/registry.py needs skopeo and docker-registry (apt-get install skopeo docker-registry)")
        return 1
    work = tempfile.mkdtemp(prefix="gorae-bench-registry-")
    try:
        src, size = make_image(work, args.layers, args.layer_mib)
        manifest = json.loads(open(os.path.join(src, "manifest.json")).read())
        digests = [layer["digest"] for layer in manifest["layers"]]
        mib = size / (1 << 20)
        print(
            f"image: {args.layers} layers, {mib:.0f} MiB of layer data; {args.rounds} rounds; "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        results: dict[str, dict[str, list[float]]] = {}
        for rnd in range(args.rounds):
            # fresh registries (new ports) each round: skopeo's blob-info cache would otherwise turn the next
            # round's uploads into cross-repository mounts
            with servers(args.compare_src) as regs:
                names = list(regs)
                names = names[rnd % len(names) :] + names[: rnd % len(names)]
                order = names if rnd % 2 == 0 else names[::-1]
                for name in order:
                    reg = regs[name]
                    dest = f"docker://{reg.addr}/bench/r{rnd}:latest"
                    out = os.path.join(work, f"out-{name}-{rnd}")
                    push = timed_skopeo("copy", "--dest-tls-verify=false", f"dir:{src}", dest)
                    cpu = children_cpu()
                    pull = timed_skopeo("copy", "--src-tls-verify=false", dest, f"dir:{out}")
                    cpu = children_cpu() - cpu
                    shutil.rmtree(out)
                    put, get = curl_rates(reg, src, digests, mib)
                    res = results.setdefault(
                        name, {"push": [], "pull": [], "put": [], "get": [], "pull_cpu": []}
                    )
                    res["pull_cpu"].append(cpu)
                    res["push"].append(mib / push)
                    res["pull"].append(mib / pull)
                    res["put"].append(put)
                    res["get"].append(get)
                    print(
                        f"  round {rnd + 1} {name:16} push {mib / push:7.1f}  pull {mib / pull:7.1f}"
                        f"  curl PUT {put:7.1f}  GET {get:7.1f} MiB/s  (skopeo pull CPU {cpu:.2f} s)"
                    )
        print()
        cols = ["push", "pull", "put", "get"]
        heads = ["skopeo push", "skopeo pull", "curl PUT", "curl GET"]
        print(f"{'MiB/s (median)':16} " + " ".join(f"{h:>12}" for h in heads))
        med = {n: {k: statistics.median(v) for k, v in r.items()} for n, r in results.items()}
        for name, r in med.items():
            print(f"{name:16} " + " ".join(f"{r[c]:12.1f}" for c in cols))
        ref = med["docker-registry"]
        for name in [n for n in med if n != "docker-registry"]:
            g = med[name]
            print(f"{'ratio ' + name:16} " + " ".join(f"{g[c] / ref[c]:11.2f}x" for c in cols))
        print(
            "skopeo CPU per pull (median): "
            + ", ".join(f"{name} {r['pull_cpu']:.2f} s" for name, r in med.items())
            + f"; load average at the end {os.getloadavg()[0]:.1f}"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
