"""Nothing a test starts outlives a pytest run that is killed (issue 16 item 6): a pytest subprocess holds the
session daemon (`gorae_daemon`) with a running container (overlay mount, veth on the daemon's bridge, its
iptables chains) and is killed in the middle of its test. With SIGTERM (a CI timeout, `kill`), pytest itself
runs the fixtures' teardown before it exits (conftest's SIGTERM handler); with SIGKILL, the daemon's watcher
(tests/daemon_reaper.py) does it once pytest is gone. Either way no daemon, container process, mount, root
directory, socket, bridge, iptables chain or namespace of it remains."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SRC, GoraeDaemon, network_leftovers, wait_for

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

INNER = '''
import json, os

from conftest import network_leftovers


def test_hold_the_daemon(gorae_daemon):
    d = gorae_daemon
    cid = d.docker("run", "-d", "busybox", "sleep", "1000000").stdout.strip()
    state = {
        "container_pid": int(d.docker("inspect", "-f", "{{.State.Pid}}", cid).stdout),
        "pid": d.proc.pid, "reaper": d.reaper.pid, "data_root": d.data_root, "exec_root": d.exec_root,
        "socket": d.socket, "log_path": d.log_path, "kernel": network_leftovers(d.exec_root),
    }
    with open("state.json.new", "w") as f:
        json.dump(state, f)
    os.rename("state.json.new", "state.json")
    os.read(0, 1)  # stdin is a pipe nobody writes to: the test holds until pytest is killed
'''


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _mounts_under(*roots: str) -> list[str]:
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points for r in roots if p == r or p.startswith(r + "/")]


def _processes_naming(text: str) -> list[int]:
    """Live processes whose command line mentions `text` (conmon of the daemon's exec root, the daemon)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if text.encode() in cmd and _alive(int(entry)):
            found.append(int(entry))
    return found


def _processes_left(st: dict) -> list[str]:
    """The container's processes (killed with SIGKILL by the cleanup, so they may take a moment to go)."""
    out = [f"container process {p}" for p in (st["container_pid"],) if _alive(p)]
    return out + [f"process {p} naming the exec root" for p in _processes_naming(st["exec_root"])]


def _remains(st: dict) -> list[str]:
    """What is left of the inner run's daemon once its cleanup has returned (empty when all is gone)."""
    out = [f"process {p}" for p in (st["pid"], st["reaper"]) if _alive(p)]
    out += [f"mount {m}" for m in _mounts_under(st["data_root"], st["exec_root"])]
    out += [f"path {p}" for p in (st["data_root"], st["exec_root"], st["socket"]) if os.path.exists(p)]
    out += network_leftovers(st["exec_root"])
    return out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_killed_pytest_leaves_no_daemon_behind(tmp_path: Path, sig: signal.Signals) -> None:
    (tmp_path / "test_inner.py").write_text(INNER)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([TESTS, SRC]))
    out = open(tmp_path / "pytest.out", "wb")
    inner = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "-p", "conftest", "test_inner.py"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.PIPE,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    out.close()
    state = tmp_path / "state.json"
    st: dict | None = None
    try:
        wait_for(lambda: state.exists() or inner.poll() is not None, timeout=180)
        assert state.exists(), (tmp_path / "pytest.out").read_text()
        st = json.loads(state.read_text())
        # what there is to leave behind: the daemon, its watcher, the container's mounts, the bridge and chains
        assert _alive(st["pid"]) and _alive(st["reaper"]) and _alive(st["container_pid"])
        assert _mounts_under(st["data_root"], st["exec_root"])
        assert any(k.startswith("link ") for k in st["kernel"]), st["kernel"]
        assert any(k.startswith("filter: ") for k in st["kernel"]), st["kernel"]
        inner.send_signal(sig)
        code = inner.wait(timeout=120)
        output = (tmp_path / "pytest.out").read_text()
        if sig == signal.SIGTERM:
            # pytest stopped as on ^C and ran the teardown before it exited: everything is gone already
            assert code == pytest.ExitCode.INTERRUPTED, output
            assert "KeyboardInterrupt" in output, output
            assert _remains(st) == []
        else:  # the teardown never ran: the watcher takes over once pytest is gone
            assert code == -signal.SIGKILL
            wait_for(lambda: _remains(st) == [], timeout=90)
        wait_for(lambda: _processes_left(st) == [], timeout=30)
    finally:
        if inner.poll() is None:
            inner.kill()
            inner.wait()
        if inner.stdin is not None:
            inner.stdin.close()
        if st is not None and (_remains(st) or _processes_left(st)):  # the test failed: clean up what is left
            for p in (st["pid"], st["reaper"]):
                if _alive(p):
                    os.kill(p, signal.SIGKILL)
            GoraeDaemon(st["data_root"], st["exec_root"], st["socket"], st["log_path"]).cleanup()
