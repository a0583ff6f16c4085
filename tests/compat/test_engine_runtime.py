"""Engine core (issue 2) through the real docker CLI: docker's security defaults in effect, the files docker
mounts, users, --init, cgroup limits and `update`, OOM kills, pause/unpause, top, stats, inspect -f,
restart policies across a daemon restart, and a pull of a missing image failing fast."""

from __future__ import annotations

import json
import os
import signal
import socket
import time

import pytest
from conftest import GoraeDaemon, inspect, unique_name, wait_for

# Docker's default capability set (moby oci/caps/defaults.go) as a CapEff bit mask
DOCKER_DEFAULT_CAPEFF = "00000000a80425fb"


def _name(prefix: str = "eng") -> str:
    return unique_name(prefix)


@pytest.fixture
def names(cleanup: list[str]) -> list[str]:
    """Container names registered here are force-removed after the test, pass or fail."""
    return cleanup


def _wait_for(pred, timeout: float = 15.0, step: float = 0.1):  # type: ignore[no-untyped-def]
    return wait_for(pred, timeout, step)


def _run(d: GoraeDaemon, *args: str) -> str:
    return d.docker("run", "--rm", *args).stdout


def test_default_capabilities_seccomp_and_no_mount(gorae_daemon: GoraeDaemon) -> None:
    d = gorae_daemon
    status = _run(d, "busybox", "cat", "/proc/self/status")
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    assert fields["CapEff"].strip() == DOCKER_DEFAULT_CAPEFF
    assert fields["CapBnd"].strip() == DOCKER_DEFAULT_CAPEFF
    assert fields["CapInh"].strip() == "0000000000000000"
    assert fields["Seccomp"].strip() == "2"  # filter mode: docker's default profile is loaded
    assert fields["NoNewPrivs"].strip() == "0"
    # mount(2) needs CAP_SYS_ADMIN: refused without --privileged
    res = d.docker(
        "run", "--rm", "busybox", "sh", "-c", "mkdir -p /mnt && mount -t tmpfs none /mnt", check=False
    )
    assert res.returncode != 0 and "permission denied" in res.stderr.lower()
    # docker's profile filters unshare(2) unless CAP_SYS_ADMIN is granted; unconfined lets it through
    res = d.docker("run", "--rm", "busybox", "unshare", "-U", "true", check=False)
    assert res.returncode != 0 and "Operation not permitted" in res.stderr
    assert d.docker("run", "--rm", "--security-opt", "seccomp=unconfined", "busybox", "unshare", "-U", "true")
    assert d.docker("run", "--rm", "--cap-add", "SYS_ADMIN", "busybox", "unshare", "-U", "true")
    # --cap-drop/--cap-add change the set
    status = _run(
        d, "--cap-drop", "ALL", "--cap-add", "CHOWN", "busybox", "grep", "CapEff", "/proc/self/status"
    )
    assert status.split()[-1] == "0000000000000001"


def test_masked_and_readonly_paths(gorae_daemon: GoraeDaemon) -> None:
    out = _run(
        gorae_daemon,
        "busybox",
        "sh",
        "-c",
        "wc -c < /proc/keys; ls /sys/firmware | wc -l; "
        "echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo writable || echo ro; "
        "echo x > /proc/sysrq-trigger 2>/dev/null && echo writable || echo ro",
    )
    assert out.split() == ["0", "0", "ro", "ro"]


def test_hostname_hosts_resolv_conf_are_mounted(gorae_daemon: GoraeDaemon, names) -> None:  # type: ignore[no-untyped-def]
    d = gorae_daemon
    name = _name()
    names.append(name)
    d.docker("run", "-d", "--name", name, "--hostname", "myhost", "busybox", "sleep", "60")
    out = d.docker(
        "exec",
        name,
        "sh",
        "-c",
        "hostname; cat /etc/hostname; grep localhost /etc/hosts; "
        "grep -c nameserver /etc/resolv.conf; grep -E ' /etc/(hostname|hosts|resolv.conf) ' "
        "/proc/self/mounts | wc -l",
    ).stdout.split("\n")
    assert out[0] == "myhost" and out[1] == "myhost"
    assert "127.0.0.1\tlocalhost" in out
    assert int(out[-3]) >= 1 and out[-2] == "3"
    info = inspect(d, name)
    for key in ("HostnamePath", "HostsPath", "ResolvConfPath"):
        assert info[key].startswith("/") and info[key].endswith(
            key[: -len("Path")].lower().replace("resolvconf", "resolv.conf")
        )
    with open(info["HostnamePath"], encoding="utf-8") as f:
        assert f.read().strip() == "myhost"


def test_users_workdir_env_entrypoint(gorae_daemon: GoraeDaemon) -> None:
    d = gorae_daemon
    # as dockerd: the primary gid is among the supplementary groups (issue 14's review W11)
    assert _run(d, "-u", "nobody", "busybox", "id").strip() == "uid=65534(nobody) gid=65534(nobody) groups=65534(nobody)"
    assert _run(d, "-u", "1234:5678", "busybox", "sh", "-c", "id -u; id -g").split() == ["1234", "5678"]
    assert _run(d, "-w", "/var/x", "-e", "A=b c", "busybox", "sh", "-c", 'pwd; echo "$A"; echo $HOME').split(
        "\n"
    )[:3] == ["/var/x", "b c", "/root"]
    assert _run(d, "--entrypoint", "echo", "busybox", "via", "entry").strip() == "via entry"
    res = d.docker("run", "--rm", "-u", "nosuchuser", "busybox", "true", check=False)
    assert res.returncode != 0 and "nosuchuser" in res.stderr


def test_init_runs_docker_init_as_pid1(gorae_daemon: GoraeDaemon) -> None:
    d = gorae_daemon
    out = _run(d, "--init", "busybox", "cat", "/proc/1/cmdline")
    assert out.split("\0")[0] == "/sbin/docker-init"
    # without --init the command itself is PID 1
    assert _run(d, "busybox", "cat", "/proc/1/cmdline").split("\0")[0] == "cat"
    # tini forwards the signal and reaps: the container stops promptly with the shell's status
    name = _name()
    d.docker("run", "-d", "--init", "--name", name, "busybox", "sleep", "60")
    try:
        t0 = time.monotonic()
        d.docker("stop", "-t", "10", name)
        assert time.monotonic() - t0 < 8
        assert inspect(d, name)["HostConfig"]["Init"] is True
    finally:
        d.docker("rm", "-f", name, check=False)


def test_cgroup_limits_are_in_the_container_cgroup(gorae_daemon: GoraeDaemon, names) -> None:  # type: ignore[no-untyped-def]
    d = gorae_daemon
    name = _name()
    names.append(name)
    d.docker(
        "run",
        "-d",
        "--name",
        name,
        "--memory",
        "128m",
        "--cpus",
        "0.5",
        "--cpu-shares",
        "512",
        "--pids-limit",
        "200",
        "busybox",
        "sleep",
        "60",
    )

    def read(*paths: str) -> str:
        script = "; ".join(f"cat {p} 2>/dev/null" for p in paths)
        return d.docker("exec", name, "sh", "-c", script).stdout.strip()

    v2 = (
        d.docker("exec", name, "test", "-e", "/sys/fs/cgroup/cgroup.controllers", check=False).returncode == 0
    )
    if v2:
        assert read("/sys/fs/cgroup/memory.max") == str(128 * 1024 * 1024)
        assert read("/sys/fs/cgroup/cpu.max") == "50000 100000"
        assert read("/sys/fs/cgroup/pids.max") == "200"
    else:
        assert read("/sys/fs/cgroup/memory/memory.limit_in_bytes") == str(128 * 1024 * 1024)
        assert read(
            "/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us"
        ).split() == ["50000", "100000"]
        assert read("/sys/fs/cgroup/cpu/cpu.shares") == "512"
        assert read("/sys/fs/cgroup/pids/pids.max") == "200"
    hc = inspect(d, name)["HostConfig"]
    assert (hc["Memory"], hc["MemorySwap"], hc["NanoCpus"], hc["CpuShares"], hc["PidsLimit"]) == (
        128 * 1024 * 1024,
        256 * 1024 * 1024,
        500_000_000,
        512,
        200,
    )
    # the pids limit is enforced
    out = d.docker("exec", name, "sh", "-c", "for i in $(seq 250); do sleep 5 & done 2>&1; wait", check=False)
    assert "can't fork: Resource temporarily unavailable" in out.stdout, (out.stdout, out.stderr)

    # docker update: limits change live, inspect follows
    d.docker(
        "update",
        "--memory",
        "96m",
        "--memory-swap",
        "200m",
        "--cpus",
        "0.25",
        "--pids-limit",
        "40",
        "--restart",
        "on-failure:2",
        name,
    )
    hc = inspect(d, name)["HostConfig"]
    assert (hc["Memory"], hc["MemorySwap"], hc["NanoCpus"], hc["PidsLimit"]) == (
        96 * 1024 * 1024,
        200 * 1024 * 1024,
        250_000_000,
        40,
    )
    assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    if v2:
        assert read("/sys/fs/cgroup/memory.max") == str(96 * 1024 * 1024)
        assert read("/sys/fs/cgroup/cpu.max") == "25000 100000"
        assert read("/sys/fs/cgroup/pids.max") == "40"
    else:
        assert read("/sys/fs/cgroup/memory/memory.limit_in_bytes") == str(96 * 1024 * 1024)
        assert read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") == "25000"
        assert read("/sys/fs/cgroup/pids/pids.max") == "40"
    # docker's errors for bad updates
    res = d.docker("update", "--restart", "sometimes", name, check=False)
    assert res.returncode == 1 and "invalid restart policy" in res.stderr
    res = d.docker("update", "--memory", "1m", name, check=False)
    assert res.returncode == 1 and "Minimum memory limit allowed is 6MB" in res.stderr
    res = d.docker("update", "--memory", "300m", name, check=False)  # above the memory-swap limit
    assert res.returncode == 1 and "update the memoryswap at the same time" in res.stderr


def test_created_defaults_match_dockerd(gorae_daemon: GoraeDaemon, names) -> None:  # type: ignore[no-untyped-def]
    """The values dockerd fills in for what the CLI sends as "unset" (see dockerd's adaptContainerSettings)."""
    name = _name()
    names.append(name)
    gorae_daemon.docker("create", "--name", name, "busybox", "true")
    hc = inspect(gorae_daemon, name)["HostConfig"]
    assert hc["IpcMode"] == "private"
    assert hc["CgroupnsMode"] in ("host", "private")
    assert hc["PidsLimit"] is None and hc["MemorySwappiness"] is None and hc["MemorySwap"] == 0


def test_oom_kill_is_recorded(gorae_daemon: GoraeDaemon, names) -> None:  # type: ignore[no-untyped-def]
    d = gorae_daemon
    name = _name()
    names.append(name)
    res = d.docker(
        "run",
        "--name",
        name,
        "--memory",
        "16m",
        "--memory-swap",
        "16m",
        "busybox",
        "sh",
        "-c",
        "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived",
        check=False,
    )
    assert res.returncode == 137, res
    assert "survived" not in res.stdout
    state = inspect(d, name)["State"]
    assert state["OOMKilled"] is True and state["ExitCode"] == 137 and state["Status"] == "exited"
    assert d.docker("inspect", "-f", "{{.State.OOMKilled}}", name).stdout.strip() == "true"
    events = d.docker(
        "events",
        "--since",
        state["StartedAt"],
        "--until",
        str(int(time.time()) + 1),
        "--filter",
        f"container={name}",
        "--format",
        "{{.Action}}",
    ).stdout.split()
    assert "oom" in events and "die" in events


def test_pause_unpause_top_stats_inspect_format(gorae_daemon: GoraeDaemon, names) -> None:  # type: ignore[no-untyped-def]
    d = gorae_daemon
    name = _name()
    names.append(name)
    d.docker("run", "-d", "--name", name, "-l", "role=probe", "busybox", "sh", "-c", "sleep 300")
    top = d.docker("top", name).stdout.splitlines()
    assert top[0].split()[:3] == ["UID", "PID", "PPID"] and top[0].split()[-1] == "CMD"
    assert any(line.endswith("sleep 300") for line in top[1:])
    assert "sleep 300" in d.docker("top", name, "-o", "pid,args").stdout
    stats = d.docker("stats", "--no-stream", "--format", "{{json .}}", name).stdout.strip().splitlines()
    assert len(stats) == 1
    row = json.loads(stats[0])
    assert row["Name"] == name and row["PIDs"] == "1" and "/" in row["MemUsage"]
    assert (
        d.docker("inspect", "-f", "{{.Config.Labels.role}} {{.State.Running}} {{.Name}}", name).stdout
        == f"probe true /{name}\n"
    )
    assert d.docker("inspect", "-f", "{{json .Config.Cmd}}", name).stdout.strip() == '["sh","-c","sleep 300"]'

    d.docker("pause", name)
    st = inspect(d, name)["State"]
    assert st["Status"] == "paused" and st["Paused"] and st["Running"]
    assert "Paused" in d.docker("ps", "--filter", f"name={name}", "--format", "{{.Status}}").stdout
    assert d.docker("ps", "-q", "--filter", "status=paused", "--filter", f"name={name}").stdout.strip()
    res = d.docker("exec", name, "true", check=False)
    assert res.returncode != 0 and "is paused, unpause the container before exec" in res.stderr
    res = d.docker("pause", name, check=False)
    assert res.returncode != 0 and "is already paused" in res.stderr
    # docker stops a paused container: it unfreezes the cgroup to deliver the signal
    res = d.docker("stop", "-t", "0", name, check=False)
    assert res.returncode == 0 and res.stdout == f"{name}\n", res.stderr
    st = inspect(d, name)["State"]
    assert (st["Status"], st["Paused"], st["Running"]) == ("exited", False, False)
    d.docker("start", name)
    d.docker("pause", name)
    d.docker("unpause", name)
    assert inspect(d, name)["State"]["Status"] == "running"
    res = d.docker("unpause", name, check=False)
    assert res.returncode != 0 and "is not paused" in res.stderr
    assert d.docker("exec", name, "echo", "ok").stdout == "ok\n"


def test_rename_and_restart_keep_identity(gorae_daemon: GoraeDaemon, names) -> None:  # type: ignore[no-untyped-def]
    d = gorae_daemon
    a, b = _name(), _name()
    names.extend([a, b])
    cid = d.docker("run", "-d", "--init", "--name", a, "busybox", "sleep", "60").stdout.strip()
    d.docker("rename", a, b)
    assert inspect(d, b)["Id"] == cid
    res = d.docker("inspect", a, check=False)
    assert res.returncode == 1 and f"No such object: {a}" in res.stderr
    pid = inspect(d, b)["State"]["Pid"]
    d.docker("restart", "-t", "1", b)
    info = inspect(d, b)
    assert info["State"]["Running"] and info["State"]["Pid"] != pid and info["RestartCount"] == 0
    d.docker("kill", "-s", "TERM", b)
    assert d.docker("wait", b).stdout.strip() == "143"
    assert inspect(d, b)["State"]["ExitCode"] == 143


def test_pull_of_a_missing_image_fails_fast(gorae_daemon: GoraeDaemon) -> None:
    d = gorae_daemon
    t0 = time.monotonic()
    res = d.docker("pull", "nope-not-here", check=False, timeout=20)
    assert res.returncode == 1 and "Error response from daemon" in res.stderr
    res = d.docker("run", "--rm", "nope-not-here:1.0", check=False, timeout=20)
    assert res.returncode == 125 and "Unable to find image 'nope-not-here:1.0' locally" in res.stderr
    assert time.monotonic() - t0 < 10
    # raw API: a clear JSON error at once; no registry is reachable here, and dockerd answers an unreachable
    # registry with a 500 naming it
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(d.socket)
        s.sendall(
            b"POST /v1.45/images/create?fromImage=nope&tag=latest HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        resp = b""
        while chunk := s.recv(65536):
            resp += chunk
    head, _, body = resp.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 500"), head
    assert b'"message"' in body and b"registry-1.docker.io" in body, body


def test_restart_policies_across_a_daemon_restart(fresh_daemon: GoraeDaemon) -> None:
    """always and unless-stopped come back after the daemon restarts; a stopped unless-stopped stays down."""
    d = fresh_daemon
    d.docker("run", "-d", "--name", "always", "--restart", "always", "busybox", "sleep", "300")
    d.docker("run", "-d", "--name", "unless", "--restart", "unless-stopped", "busybox", "sleep", "300")
    d.docker(
        "run",
        "-d",
        "--name",
        "unless-stopped-by-user",
        "--restart",
        "unless-stopped",
        "busybox",
        "sleep",
        "300",
    )
    d.docker(
        "run", "-d", "--name", "always-stopped-by-user", "--restart", "always", "busybox", "sleep", "300"
    )
    d.docker("run", "-d", "--name", "never", "busybox", "sleep", "300")
    d.docker("stop", "-t", "0", "unless-stopped-by-user", "always-stopped-by-user")
    pids = {n: inspect(d, n)["State"]["Pid"] for n in ("always", "unless", "never")}
    d.stop()  # SIGTERM: containers keep running under conmon
    for pid in pids.values():  # they die while the daemon is away
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    d.start()
    _wait_for(
        lambda: (
            inspect(d, "always")["State"]["Status"] == "running"
            and inspect(d, "unless")["State"]["Status"] == "running"
        )
    )
    assert inspect(d, "never")["State"]["Status"] == "exited"
    assert inspect(d, "never")["State"]["ExitCode"] == 137
    assert inspect(d, "unless-stopped-by-user")["State"]["Status"] == "exited"
    # docker starts an `always` container the user stopped when the daemon starts again
    _wait_for(lambda: inspect(d, "always-stopped-by-user")["State"]["Status"] == "running")
    assert d.docker("exec", "unless", "echo", "back").stdout == "back\n"
    d.docker("rm", "-f", "always", "unless", "unless-stopped-by-user", "always-stopped-by-user", "never")
