"""`gorae run`/`create` take docker 28's whole flag set: `--help` lists the same flags as `docker run --help`,
and `gorae create` sends the same create body as `docker create` (compared through `inspect` on the same
daemon, gorae's and a real dockerd), including flags the daemon stores but does not act on."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from typing import Any

import pytest
from cli_daemon import NET

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run containers")

# (flags, [(section, field)]) — section "H" is HostConfig, "C" is Config
CASES: list[tuple[list[str], list[tuple[str, str]]]] = [
    (
        ["--blkio-weight", "300", "--blkio-weight-device", "/dev/null:100", "--device-read-bps", "/dev/null:1mb",
         "--device-write-iops", "/dev/null:50", "--device-read-iops", "/dev/null:20",
         "--device-write-bps", "/dev/null:2k"],
        [("H", "BlkioWeight"), ("H", "BlkioWeightDevice"), ("H", "BlkioDeviceReadBps"), ("H", "BlkioDeviceWriteIOps"),
         ("H", "BlkioDeviceReadIOps"), ("H", "BlkioDeviceWriteBps")],
    ),
    (
        ["--device", "/dev/null:/dev/mynull:rw", "--device", "/dev/zero", "--device-cgroup-rule", "c 1:3 mr"],
        [("H", "Devices"), ("H", "DeviceCgroupRules")],
    ),
    (
        ["--health-cmd", "true", "--health-interval", "5s", "--health-retries", "3", "--health-timeout", "2s",
         "--health-start-period", "1s"],
        [("C", "Healthcheck")],
    ),
    (["--no-healthcheck"], [("C", "Healthcheck")]),
    (
        ["--runtime", "runc", "--group-add", "audio", "--oom-score-adj", "100", "--sysctl", "net.ipv4.ip_forward=1",
         "--cgroup-parent", "mygroup", "--ipc", "private", "--pid", "host", "--uts", "host", "--userns", "host",
         "--cgroupns", "private", "--shm-size", "128m", "--domainname", "example.org", "--isolation", "default"],
        [("H", "Runtime"), ("H", "GroupAdd"), ("H", "OomScoreAdj"), ("H", "Sysctls"), ("H", "CgroupParent"),
         ("H", "IpcMode"), ("H", "PidMode"), ("H", "UTSMode"), ("H", "UsernsMode"), ("H", "CgroupnsMode"),
         ("H", "ShmSize"), ("C", "Domainname"), ("H", "Isolation")],
    ),
    (["--log-driver", "json-file", "--log-opt", "max-size=1m", "--log-opt", "max-file=2"], [("H", "LogConfig")]),
    (
        ["--cpuset-cpus", "0", "--cpuset-mems", "0", "--cpu-period", "100000", "--cpu-quota", "50000",
         "--cpu-shares", "512"],
        [("H", "CpusetCpus"), ("H", "CpusetMems"), ("H", "CpuPeriod"), ("H", "CpuQuota"), ("H", "CpuShares")],
    ),
    (["--cpu-rt-period", "1000000", "--cpu-rt-runtime", "950000"],
     [("H", "CpuRealtimePeriod"), ("H", "CpuRealtimeRuntime")]),
    (
        ["--memory", "64m", "--memory-reservation", "32m", "--memory-swap", "128m", "--memory-swappiness", "10",
         "--kernel-memory", "50m", "--oom-kill-disable"],
        [("H", "Memory"), ("H", "MemoryReservation"), ("H", "MemorySwap"), ("H", "MemorySwappiness"),
         ("H", "OomKillDisable")],
    ),
    (
        ["--stop-signal", "SIGUSR1", "--stop-timeout", "7", "--privileged", "--tty", "-i", "-a", "stdin",
         "-a", "stdout", "--expose", "8080", "--expose", "9000-9001/udp", "--dns-option", "ndots:2",
         "--volume-driver", "local", "--read-only", "--init"],
        [("C", "StopSignal"), ("C", "StopTimeout"), ("H", "Privileged"), ("C", "Tty"), ("C", "OpenStdin"),
         ("C", "AttachStdin"), ("C", "AttachStdout"), ("C", "AttachStderr"), ("C", "StdinOnce"),
         ("C", "ExposedPorts"), ("H", "DnsOptions"), ("H", "VolumeDriver"), ("H", "ReadonlyRootfs"), ("H", "Init")],
    ),
    (["--gpus", "all"], [("H", "DeviceRequests")]),
    (["--gpus", '"device=0,1",capabilities=utility', "--cpu-count", "2"], [("H", "DeviceRequests")]),
    (["--annotation", "org.example.a=b"], [("H", "Annotations")]),
]  # fmt: skip


def _inspect(dk, ref: str) -> dict[str, Any]:  # noqa: ANN001
    r = dk("inspect", ref)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)[0]


def _cleanup(dk, *names: str) -> None:  # noqa: ANN001
    dk("rm", "-f", *names)


@pytest.mark.parametrize("case", range(len(CASES)))
def test_create_flags_match_docker(g, dk, case: int) -> None:  # noqa: ANN001
    flags, fields = CASES[case]
    mine, theirs = f"rf-g-{case}", f"rf-d-{case}"
    try:
        rg = g("create", "--name", mine, *NET, *flags, "busybox", "true")
        rd = dk("create", "--name", theirs, *NET, *flags, "busybox", "true")
        assert rg.returncode == rd.returncode, (flags, rg.stderr, rd.stderr)
        if rd.returncode != 0:
            assert rg.stderr.replace("gorae", "docker").strip() == rd.stderr.strip()
            return
        a, b = _inspect(dk, mine), _inspect(dk, theirs)
        for section, field in fields:
            key = "HostConfig" if section == "H" else "Config"
            assert a[key].get(field) == b[key].get(field), (field, a[key].get(field), b[key].get(field))
        # nothing else in the configs differs either (names and ids aside)
        for key in ("HostConfig", "Config"):
            x, y = dict(a[key]), dict(b[key])
            for k in ("Hostname", "ContainerIDFile"):
                x.pop(k, None), y.pop(k, None)
            assert x == y, key
    finally:
        _cleanup(dk, mine, theirs)


def test_create_files_and_mac(g, dk, tmp_path) -> None:  # noqa: ANN001
    env, labels = tmp_path / "env", tmp_path / "labels"
    env.write_text("# comment\nA=1\nB=two words\n")
    labels.write_text("l1=x\nl2=y\n")
    flags = ["--env-file", str(env), "--label-file", str(labels), "-e", "C=3", "-l", "l3=z",
             "--mac-address", "92:d0:c6:0a:29:33"]  # fmt: skip
    try:
        rg = g(
            "create", "--name", "rf-files-g", "--cidfile", str(tmp_path / "g.cid"), *flags, "busybox", "true"
        )
        rd = dk(
            "create", "--name", "rf-files-d", "--cidfile", str(tmp_path / "d.cid"), *flags, "busybox", "true"
        )
        assert rg.returncode == rd.returncode, (rg.stderr, rd.stderr)
        if rd.returncode:  # "specify mac-address per network" needs API 1.44
            assert rg.stderr.strip() == rd.stderr.strip()
            return
        assert (tmp_path / "g.cid").read_text() == rg.stdout.strip()
        a, b = _inspect(dk, "rf-files-g"), _inspect(dk, "rf-files-d")
        assert a["Config"]["Env"] == b["Config"]["Env"]
        assert a["Config"]["Labels"] == b["Config"]["Labels"]
        assert a["HostConfig"]["ContainerIDFile"] == str(tmp_path / "g.cid")
        mac = a["Config"].get("MacAddress") or a["NetworkSettings"]["Networks"].get("bridge", {}).get(
            "MacAddress"
        )
        assert mac == "92:d0:c6:0a:29:33"
    finally:
        _cleanup(dk, "rf-files-g", "rf-files-d")


def test_gpus_without_driver_is_a_clear_error(g, dk) -> None:  # noqa: ANN001
    r = g("run", "--rm", *NET, "--gpus", "all", "busybox", "true")
    d = dk("run", "--rm", *NET, "--gpus", "all", "busybox", "true")
    assert r.returncode == d.returncode == 125, (r.stderr, d.stderr)
    assert 'could not select device driver "" with capabilities: [[gpu]]' in r.stderr
    assert "Traceback" not in r.stderr


def test_pull_policy_and_bad_values(g) -> None:  # noqa: ANN001
    r = g("create", "--pull", "never", *NET, "nosuchimage:v9")
    # docker 28's create prints a daemon error bare and exits 1 (run: "docker: ..." and 125)
    assert r.returncode == 1 and "nosuchimage" in r.stderr and "Unable to find image" not in r.stderr
    r = g("create", "--pull", "sometimes", "busybox")
    assert r.returncode == 125 and "invalid pull option" in r.stderr
    for bad in (
        ["--blkio-weight-device", "nodev"],
        ["--device-read-bps", "/dev/sda:lots"],
        ["--gpus", "x=1"],
    ):
        r = g("create", *bad, "busybox")
        assert r.returncode == 125 and "Traceback" not in r.stderr, (bad, r.stderr)


def _flag_names(text: str) -> set[str]:
    return set(re.findall(r"^\s+(?:-\w, )?(--[\w-]+)", text, re.M))


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker CLI")
@pytest.mark.parametrize("cmd", ["run", "create"])
def test_help_lists_docker_flags(g, cmd: str) -> None:  # noqa: ANN001
    theirs = subprocess.run(
        ["docker", cmd, "--help"], capture_output=True, text=True, env={"PATH": os.environ["PATH"]}
    )
    mine = g(cmd, "--help")
    assert _flag_names(mine.stdout) == _flag_names(theirs.stdout)
    # same texts, same layout at 80 columns
    assert mine.stdout.replace("gorae", "docker") == theirs.stdout
