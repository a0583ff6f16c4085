"""What dockerd cannot show here, on gorae's own daemons: logs and healthchecks across a daemon restart (live
restore: output written while no daemon ran reaches the log driver; probes are re-armed), a log driver set as
the daemon's default (`--log-driver`/`--log-opt`, daemon.json's `log-driver`/`log-opts`), and conmon's spool
removed once a container exits (so `max-size`×`max-file` is all a stopped container keeps)."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from cli_daemon import wait_for_event
from conftest import GoraeDaemon, new_daemon, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run containers")

NET = ["--network", "none"]
COUNT = 400
SCRIPT = f"i=0; while [ $i -lt {COUNT} ]; do echo line$i; i=$((i+1)); sleep 0.01; done"
WANT = [f"line{i}" for i in range(COUNT)]


def _spool(d: GoraeDaemon, cid: str) -> str:
    return os.path.join(d.data_root, "containers", cid, "ctr.log")


def _spool_has(path: str, text: bytes) -> bool:
    try:
        with open(path, "rb") as f:
            return text in f.read()
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_output_written_while_the_daemon_is_down_is_logged(fresh_daemon: GoraeDaemon, sig: int) -> None:
    d = fresh_daemon
    cid = d.docker("run", "-d", *NET, "--log-opt", "max-size=2k", "--log-opt", "max-file=50", "busybox", "sh", "-c", SCRIPT).stdout.strip()
    wait_for(lambda: "line20\n" in d.docker("logs", cid).stdout, timeout=30)
    d.stop(sig)
    # the container goes on writing into conmon's spool while no daemon runs
    wait_for(lambda: _spool_has(_spool(d, cid), b" line150\n"), timeout=30)
    d.start()
    assert d.docker("wait", cid).stdout.strip() == "0"
    out = d.docker("logs", cid).stdout.splitlines()
    if sig == signal.SIGKILL:  # a batch shipped but not yet marked as shipped may come twice; none is lost
        out = list(dict.fromkeys(out))
    assert out == WANT
    assert not os.path.exists(_spool(d, cid))  # gone with the container's exit
    follow = d.docker("logs", "-f", "--tail", "2", cid).stdout.splitlines()
    assert follow == WANT[-2:]


def test_healthcheck_is_rearmed_after_a_restart(fresh_daemon: GoraeDaemon) -> None:
    d = fresh_daemon
    cid = d.docker("run", "-d", *NET, "--health-cmd", "echo ok", "--health-interval", "200ms", "busybox", "sleep", "300").stdout.strip()

    def status() -> str:
        return json.loads(d.docker("inspect", "-f", "{{json .State.Health}}", cid).stdout)["Status"]

    wait_for(lambda: status() == "healthy", timeout=30)
    d.stop(signal.SIGTERM)
    d.start()
    since = f"{time.time():.6f}"
    assert d.docker("inspect", "-f", "{{.State.Running}}", cid).stdout.strip() == "true"
    # the restored container starts over as "starting" and its first probe makes it healthy again
    seen = wait_for_event(d.env, cid, "health_status: healthy", since)
    assert "health_status: unhealthy" not in seen and seen.count("exec_die") == 1
    log = json.loads(d.docker("inspect", "-f", "{{json .State.Health}}", cid).stdout)["Log"]
    # the log is persisted when the status changes (dockerd keeps it best-effort too): the entry of the first
    # "healthy" came through the restart, the new probe's follows it
    from gorae.runtime.logs import parse_time_ns

    restarted = int(float(since) * 1e9)
    assert len(log) >= 2 and {e["Output"] for e in log} == {"ok\n"}
    assert parse_time_ns(log[0]["Start"]) < restarted - 10**8 < parse_time_ns(log[-1]["Start"])


def test_daemon_default_driver_from_flags() -> None:
    d = new_daemon(["--log-driver", "json-file", "--log-opt", "max-size=1k", "--log-opt", "max-file=2"])
    try:
        plain = d.docker("run", *NET, "busybox", "sh", "-c", "i=0; while [ $i -lt 500 ]; do echo $i; i=$((i+1)); done")
        cid = d.docker("ps", "-lq", "--no-trunc").stdout.strip()
        info = json.loads(d.docker("inspect", cid).stdout)[0]
        assert info["HostConfig"]["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1k", "max-file": "2"}}
        assert plain.stdout.splitlines()[-1] == "499"
        d_dir = os.path.dirname(info["LogPath"])
        kept = [f for f in os.listdir(d_dir) if ".log" in f]
        assert sorted(kept) == sorted([f"{cid}-json.log", f"{cid}-json.log.1"])
        assert sum(os.path.getsize(os.path.join(d_dir, f)) for f in kept) < 2 * 1024 + 200
        other = d.docker("create", "--log-driver", "local", "busybox", "true").stdout.strip()
        assert json.loads(d.docker("inspect", "-f", "{{json .HostConfig.LogConfig}}", other).stdout) == {"Type": "local", "Config": {}}
    finally:
        d.cleanup()


def test_daemon_default_driver_from_daemon_json() -> None:
    d = new_daemon(with_busybox=True)
    try:
        d.stop()
        cfg = os.path.join(d.data_root, "daemon.json")
        with open(cfg, encoding="utf-8") as f:
            doc = json.load(f)
        doc.update({"log-driver": "none", "log-opts": {}})
        with open(cfg, "w", encoding="utf-8") as f:
            json.dump(doc, f)
        d.start()
        assert d.docker("info", "--format", "{{.LoggingDriver}}").stdout == "none\n"
        r = d.docker("run", "--name", "quiet", *NET, "busybox", "echo", "hi")
        assert r.stdout == "hi\n"
        assert json.loads(d.docker("inspect", "-f", "{{json .HostConfig.LogConfig}}", "quiet").stdout) == {"Type": "none", "Config": {}}
        logs = d.docker("logs", "quiet", check=False)
        assert (logs.returncode, logs.stderr) == (1, "Error response from daemon: configured logging driver does not support reading\n")
        d.stop()
        doc["log-driver"] = "bogus"
        with open(cfg, "w", encoding="utf-8") as f:
            json.dump(doc, f)
        with pytest.raises(RuntimeError, match='error looking up logging plugin bogus: plugin "bogus" not found'):
            d.start()
    finally:
        d.cleanup()


def test_docker_py_healthcheck_and_log_driver(docker_client) -> None:  # noqa: ANN001
    import docker

    c = docker_client.containers.run(
        "busybox",
        ["sleep", "300"],
        detach=True,
        network_mode="none",
        healthcheck={"test": ["CMD", "echo", "py"], "interval": 200_000_000, "retries": 2},
        log_config=docker.types.LogConfig(type="none"),
    )
    try:

        def health() -> dict:
            c.reload()
            return c.attrs["State"]["Health"]

        h = wait_for(lambda: health() if health()["Status"] == "healthy" else None, timeout=30)
        assert h["Log"][0]["Output"] == "py\n" and h["FailingStreak"] == 0
        assert c.attrs["HostConfig"]["LogConfig"] == {"Type": "none", "Config": {}}
        with pytest.raises(docker.errors.APIError) as e:
            c.logs()
        assert e.value.status_code == 501
        assert e.value.explanation == "configured logging driver does not support reading"
        assert [x.name for x in docker_client.containers.list(filters={"health": "healthy", "id": c.id})] == [c.name]
    finally:
        c.remove(force=True)
