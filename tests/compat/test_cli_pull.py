"""`gorae pull`, `gorae push` and the auto-pull of `gorae run`/`gorae create` next to the docker 28 CLI, on the
same daemon (both targets: the gorae daemon and a real dockerd), pulling from and pushing to Debian's
docker-registry: the plain log through a pipe, the redrawn per-layer lines under a pty (compared as the final
screen a terminal shows), `-q`, `-a`, digests, and the errors (before the stream and inside it)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_daemon import NET, Daemon
from registry_peer import Registry, run, screen, spawn, transcript

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run containers")

CLIS = ("docker", "gorae")
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    reg = Registry(tmp_path_factory.mktemp("registry"))
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty DOCKER_CONFIG shared by both CLIs (nothing in these tests logs in)."""
    return tmp_path_factory.mktemp("docker-config")


def _dk(daemon: Daemon, cfg: Path, *args: str) -> str:
    r = run("docker", daemon, cfg, *args)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _make_image(daemon: Daemon, cfg: Path, tag: str, kbytes: int) -> None:
    """busybox plus one layer of random bytes, committed as `tag` (the container is removed)."""
    name = "mk-" + re.sub(r"[^a-z0-9]", "", tag)[-20:]
    _dk(
        daemon,
        cfg,
        "run",
        *NET,
        "--name",
        name,
        "busybox",
        "sh",
        "-c",
        f"head -c {kbytes * 1024} /dev/urandom > /blob",
    )
    _dk(daemon, cfg, "commit", name, tag)
    _dk(daemon, cfg, "rm", name)


@pytest.fixture(scope="module")
def seeded(daemon: Daemon, registry: Registry, cfg: Path) -> Iterator[str]:
    """REG/pulltest:1 and :2 (one image) and REG/corrupt:1 in the registry, none of them on the daemon."""
    repo = f"{registry.host}/pulltest"
    _make_image(daemon, cfg, f"{repo}:1", 3000)
    _dk(daemon, cfg, "tag", f"{repo}:1", f"{repo}:2")
    _dk(daemon, cfg, "push", "-a", repo)
    _make_image(daemon, cfg, f"{registry.host}/corrupt:1", 200)
    _dk(daemon, cfg, "push", f"{registry.host}/corrupt:1")
    _dk(daemon, cfg, "rmi", f"{repo}:1", f"{repo}:2", f"{registry.host}/corrupt:1")
    try:
        yield repo
    finally:
        run("docker", daemon, cfg, "rmi", "-f", f"{repo}:1", f"{repo}:2", f"{registry.host}/corrupt:1")


def _rmi(daemon: Daemon, cfg: Path, *refs: str) -> None:
    """Remove what a pull brought in (and any container using it), so the next CLI starts from the same state."""
    ids = run("docker", daemon, cfg, "ps", "-aq").stdout.split()
    if ids:
        run("docker", daemon, cfg, "rm", "-f", *ids)
    run("docker", daemon, cfg, "rmi", "-f", *refs)


# states a daemon reports or skips depending on timing (dockerd sends "Verifying Checksum" only for a
# download still in flight when verification starts): not the CLI's doing, left out of comparisons
TIMING = re.compile(r"^[0-9a-f]{12}: (Verifying Checksum|Waiting)\n", re.M)
DOWNLOAD_COMPLETE = re.compile(r"^[0-9a-f]{12}: Download complete\n", re.M)


def _both(daemon: Daemon, cfg: Path, args: list[str], cleanup: list[str]) -> dict[str, tuple[int, str, str]]:
    out = {}
    for which in CLIS:
        r = run(which, daemon, cfg, *args)
        stderr = r.stderr.replace("gorae", "docker")  # the program name in usage texts
        stdout = TIMING.sub("", r.stdout)
        stderr = TIMING.sub("", stderr)
        if daemon.target == "dref":
            # dockerd's transfer broadcaster hands a watcher only the latest progress of a layer, so its
            # "Download complete" is dropped when "Extracting" follows fast enough: not part of the comparison
            stdout, stderr = DOWNLOAD_COMPLETE.sub("", stdout), DOWNLOAD_COMPLETE.sub("", stderr)
        out[which] = (r.returncode, stdout, stderr)
        _rmi(daemon, cfg, *cleanup)
    return out


def test_pull_through_a_pipe_prints_dockers_plain_log(daemon: Daemon, cfg: Path, seeded: str) -> None:
    res = _both(daemon, cfg, ["pull", f"{seeded}:1"], [f"{seeded}:1"])
    assert res["gorae"] == res["docker"]
    code, out, err = res["docker"]
    assert code == 0 and err == ""
    assert out.startswith("1: Pulling from pulltest\n")
    assert out.endswith(f"Status: Downloaded newer image for {seeded}:1\n{seeded}:1\n")
    assert "[=" not in out and "Downloading" not in out


@pytest.mark.parametrize("columns", [150, 80])
def test_pull_on_a_terminal_redraws_layer_lines_as_docker(
    daemon: Daemon, cfg: Path, seeded: str, columns: int
) -> None:
    raw = {}
    for which in CLIS:
        raw[which] = transcript(spawn(which, daemon, cfg, "pull", f"{seeded}:1", columns=columns))
        _rmi(daemon, cfg, f"{seeded}:1")
    assert screen(raw["gorae"]) == screen(raw["docker"])
    assert screen(raw["docker"])[-1] == f"{seeded}:1"
    assert re.search(rb": Pull complete \r\x1b\[1B", raw["gorae"])  # redrawn in place, cursor moved back down
    assert b"\x1b[1A\x1b[2K\r" in raw["gorae"]
    counts = rb"\s*[\d.]+[kM]?B/[\d.]+[kM]?B"
    assert re.search(rb"Extracting [^\r]*" + counts, raw["docker"])  # dockerd reports extraction with counts
    bar = rb"\[=*>\s*\] " if columns > 110 else rb""  # docker draws the bar only wider than 110 columns
    assert re.search(rb"Extracting " + bar + counts, raw["gorae"])
    assert (b"[=" in raw["gorae"] or b"[>" in raw["gorae"]) == (columns > 110)


def test_run_on_a_terminal_draws_the_pull_then_runs(daemon: Daemon, cfg: Path, seeded: str) -> None:
    raw = {}
    for which in CLIS:
        raw[which] = transcript(spawn(which, daemon, cfg, "run", "--rm", *NET, f"{seeded}:1", "echo", "ran"))
        _rmi(daemon, cfg, f"{seeded}:1")
    assert screen(raw["gorae"]) == screen(raw["docker"])
    shown = screen(raw["docker"])
    assert shown[0] == f"Unable to find image '{seeded}:1' locally"
    assert shown[-1] == "ran"


def test_pull_quiet_prints_the_reference_only(daemon: Daemon, cfg: Path, seeded: str) -> None:
    res = _both(daemon, cfg, ["pull", "-q", f"{seeded}:1"], [f"{seeded}:1"])
    assert res["gorae"] == res["docker"] == (0, f"{seeded}:1\n", "")


def test_pull_all_tags_and_by_digest(daemon: Daemon, registry: Registry, cfg: Path, seeded: str) -> None:
    res = _both(daemon, cfg, ["pull", "-a", seeded], [f"{seeded}:1", f"{seeded}:2"])
    assert res["gorae"] == res["docker"]
    assert res["docker"][0] == 0 and res["docker"][1].endswith(f"\n{seeded}\n")
    status, headers, _ = registry.get("/v2/pulltest/manifests/1", accept=MANIFEST_V2)
    assert status == 200
    digest = headers["Docker-Content-Digest"]
    res = _both(daemon, cfg, ["pull", f"{seeded}@{digest}"], [f"{seeded}@{digest}"])
    assert res["gorae"] == res["docker"]
    assert res["docker"][1].endswith(f"{seeded}@{digest}\n")


@pytest.mark.parametrize(
    "args",
    [
        ["pull", "{repo}"],  # no "latest" in the registry: the daemon's error after "Using default tag"
        ["pull", "-a", "{repo}:1"],
        ["pull", "BAD"],
        ["pull", "{repo}:nosuchtag"],
        ["pull", "127.0.0.1:1/nothing:1"],
        ["pull", "-q", "{repo}"],
        ["pull"],
        ["push", "{repo}:notlocal"],
        ["push", "-a", "{repo}:1"],
        ["push", "{repo}@sha256:" + "a" * 64],
        ["push", "UPPER"],
        ["push", "--platform", "linux/amd64", "{repo}:1"],
    ],
)
def test_errors_match_docker(daemon: Daemon, registry: Registry, cfg: Path, args: list[str]) -> None:
    args = [a.format(repo=f"{registry.host}/pulltest") for a in args]
    res = _both(daemon, cfg, args, [])
    assert res["gorae"] == res["docker"]
    assert res["docker"][0] != 0


def test_an_error_inside_the_stream_ends_with_the_daemons_text(
    daemon: Daemon, registry: Registry, cfg: Path, seeded: str
) -> None:
    status, _, body = registry.get("/v2/corrupt/manifests/1", accept=MANIFEST_V2)
    assert status == 200
    layer = json.loads(body)["layers"][-1]["digest"]
    blob = registry.blob_path(layer)
    data = bytearray(blob.read_bytes())
    data[100:104] = b"XXXX" if data[100:104] != b"XXXX" else b"YYYY"
    blob.write_bytes(bytes(data))
    ref = f"{registry.host}/corrupt:1"
    res = _both(daemon, cfg, ["pull", ref], [ref])
    assert res["gorae"] == res["docker"]
    code, out, err = res["docker"]
    assert code == 1
    assert out.startswith("1: Pulling from corrupt\n")
    assert err == f"filesystem layer verification failed for digest {layer}\n"


@pytest.fixture
def two_registries(tmp_path: Path) -> Iterator[dict[str, Registry]]:
    """A fresh registry per CLI, so neither push finds the other's layers there."""
    regs: dict[str, Registry] = {}
    try:
        for which in CLIS:
            regs[which] = Registry(tmp_path / f"reg-{which}")
        yield regs
    finally:
        for reg in regs.values():
            reg.stop()


def _layer_lines_sorted(text: str) -> str:
    """Concurrent layer uploads finish in any order: sort each run of "<id>: ..." lines."""
    out: list[str] = []
    block: list[str] = []
    for line in text.split("\n"):
        if re.match(r"^[0-9a-f]{12}: ", line):
            block.append(line)
            continue
        out += sorted(block) + [line]
        block = []
    return "\n".join(out + sorted(block))


def test_push_prints_dockers_log_and_quiet_the_reference(
    daemon: Daemon, cfg: Path, seeded: str, two_registries: dict[str, Registry]
) -> None:
    _dk(daemon, cfg, "pull", "-q", f"{seeded}:1")
    try:
        res = {}
        for which, reg in two_registries.items():
            target = f"{reg.host}/pushed:1"
            _dk(daemon, cfg, "tag", f"{seeded}:1", target)
            r = run(which, daemon, cfg, "push", target)
            res[which] = (r.returncode, _layer_lines_sorted(r.stdout.replace(reg.host, "REG")), r.stderr)
            q = run(which, daemon, cfg, "push", "-q", target)
            assert (q.returncode, q.stdout, q.stderr) == (0, f"{target}\n", "")
            _dk(daemon, cfg, "rmi", target)
        assert res["gorae"] == res["docker"]
        code, out, err = res["docker"]
        assert code == 0 and err == ""
        assert out.startswith("The push refers to repository [REG/pushed]\n")
        assert re.search(r"\n1: digest: sha256:[0-9a-f]{64} size: \d+\n$", out)
        assert out.count(": Pushed\n") == 2
    finally:
        _rmi(daemon, cfg, f"{seeded}:1")


def test_push_all_tags_pushes_each_tag(
    daemon: Daemon, cfg: Path, seeded: str, two_registries: dict[str, Registry]
) -> None:
    res = {}
    for which, reg in two_registries.items():
        for tag in ("a", "b"):
            _dk(daemon, cfg, "tag", "busybox", f"{reg.host}/multi:{tag}")
        r = run(which, daemon, cfg, "push", "-a", f"{reg.host}/multi")
        res[which] = (r.returncode, _layer_lines_sorted(r.stdout.replace(reg.host, "REG")), r.stderr)
        _dk(daemon, cfg, "rmi", f"{reg.host}/multi:a", f"{reg.host}/multi:b")
        status, _, body = reg.get("/v2/multi/tags/list")
        assert (status, sorted(json.loads(body)["tags"])) == (200, ["a", "b"])
    assert res["gorae"] == res["docker"]
    assert res["docker"][0] == 0
    assert re.findall(r"^(\w+): digest: ", res["docker"][1], re.M) == ["a", "b"]


def test_push_on_a_terminal_redraws_layer_lines_as_docker(
    daemon: Daemon, cfg: Path, seeded: str, two_registries: dict[str, Registry]
) -> None:
    _dk(daemon, cfg, "pull", "-q", f"{seeded}:1")
    try:
        shown = {}
        for which, reg in two_registries.items():
            target = f"{reg.host}/pushed:1"
            _dk(daemon, cfg, "tag", f"{seeded}:1", target)
            raw = transcript(spawn(which, daemon, cfg, "push", target))
            text = screen(raw)
            shown[which] = [text[0], *sorted(text[1:-1]), text[-1]]  # layers finish in any order
            shown[which] = [line.replace(reg.host, "REG") for line in shown[which]]
            _dk(daemon, cfg, "rmi", target)
        assert shown["gorae"] == shown["docker"]
        assert shown["docker"][0] == "The push refers to repository [REG/pushed]"
        assert [line.split(": ", 1)[1] for line in shown["docker"][1:-1]] == ["Pushed", "Pushed"]
    finally:
        _rmi(daemon, cfg, f"{seeded}:1")


def test_push_without_tag_says_default_tag(
    daemon: Daemon, cfg: Path, seeded: str, two_registries: dict[str, Registry]
) -> None:
    res = {}
    for which, reg in two_registries.items():
        _dk(daemon, cfg, "tag", "busybox", f"{reg.host}/bb")
        r = run(which, daemon, cfg, "push", f"{reg.host}/bb")
        res[which] = (r.returncode, r.stdout.replace(reg.host, "REG"), r.stderr)
        _dk(daemon, cfg, "rmi", f"{reg.host}/bb")
    assert res["gorae"] == res["docker"]
    assert res["docker"][1].startswith("Using default tag: latest\nThe push refers to repository [REG/bb]\n")


def test_run_pulls_a_missing_image_with_progress_on_stderr(daemon: Daemon, cfg: Path, seeded: str) -> None:
    res = _both(daemon, cfg, ["run", "--rm", *NET, f"{seeded}:1", "echo", "hi"], [f"{seeded}:1"])
    assert res["gorae"] == res["docker"]
    code, out, err = res["docker"]
    assert (code, out) == (0, "hi\n")
    assert err.startswith(f"Unable to find image '{seeded}:1' locally\n1: Pulling from pulltest\n")
    assert err.endswith(f"Status: Downloaded newer image for {seeded}:1\n")


def test_create_quiet_pulls_silently_and_prints_the_id(daemon: Daemon, cfg: Path, seeded: str) -> None:
    for which in CLIS:
        r = run(which, daemon, cfg, "create", "-q", *NET, f"{seeded}:1")
        assert r.returncode == 0, (which, r.stderr)
        assert re.fullmatch(r"[0-9a-f]{64}\n", r.stdout) and r.stderr == ""
        _rmi(daemon, cfg, f"{seeded}:1")


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--pull", "never", *NET, "{repo}:1"],
        ["create", "--pull", "never", *NET, "{repo}:1"],
        ["run", "--pull", "bogus", *NET, "{repo}:1"],
        ["create", "--pull", "missing", *NET, "{repo}:nosuchtag"],
        ["run", "--pull", "always", "--rm", *NET, "{repo}:1", "true"],
    ],
)
def test_run_and_create_pull_policies_match_docker(
    daemon: Daemon, cfg: Path, seeded: str, args: list[str]
) -> None:
    args = [a.format(repo=seeded) for a in args]
    res = _both(daemon, cfg, args, [f"{seeded}:1"])
    if args[0] == "create" and res["docker"][0] == 0:  # the container ids differ
        res = {k: (c, "ID\n", e) for k, (c, o, e) in res.items()}
    assert res["gorae"] == res["docker"]
