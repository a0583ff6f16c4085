"""Nothing a test starts outlives a pytest run that is killed (issue 16 item 6): a pytest subprocess holds the
session daemon (`gorae_daemon`) with a running container (overlay mount, veth on the daemon's bridge, its
iptables chains) and the CLI tests' reference dockerd (`daemon`, tests/compat/cli_daemon.py) with one too, and
is killed in the middle of its test. With SIGTERM (a CI timeout, `kill`), pytest itself
runs the fixtures' teardown before it exits (conftest's SIGTERM handler); with SIGKILL, the daemon's watcher
(tests/daemon_reaper.py) does it once pytest is gone. Either way no daemon, container process, mount, root
directory, socket, bridge, iptables chain or namespace of it remains."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SRC, GoraeDaemon, network_leftovers, wait_for
from daemon_reaper import clean_roots

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

INNER = '''
import json, os

from conftest import busybox_tar, network_leftovers


def test_hold_the_daemons(gorae_daemon, daemon):
    d, ref = gorae_daemon, daemon  # GORAE_TEST_TARGET=dref: `daemon` is the CLI tests' reference dockerd
    cid = d.docker("run", "-d", "busybox", "sleep", "1000000").stdout.strip()
    r = ref.docker("run", "-d", "--network", "none", "busybox", "sleep", "1000000")
    assert r.returncode == 0, r.stderr
    state = {
        "container_pid": int(d.docker("inspect", "-f", "{{.State.Pid}}", cid).stdout),
        "pid": d.proc.pid, "reaper": d.reaper.proc.pid, "data_root": d.data_root, "exec_root": d.exec_root,
        "socket": d.socket, "log_path": d.log_path, "kernel": network_leftovers(d.exec_root),
        "busybox_tar": busybox_tar(),  # the session's tarball: a SIGKILLed session cannot remove it itself
        "ref": {
            "container_pid": int(ref.docker("inspect", "-f", "{{.State.Pid}}", r.stdout.strip()).stdout),
            "pid": ref.proc.pid, "reaper": ref.reaper.proc.pid, "data_root": str(ref.data),
            "exec_root": str(ref.exec_root), "socket": ref.sock,
        },
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
    """The containers' processes (SIGKILLed by the cleanup, so they may take a moment to go): the container,
    conmon or containerd's shim (their command lines name the exec root)."""
    out = []
    for d in (st, st["ref"]):
        out += [f"container process {d['container_pid']}"] if _alive(d["container_pid"]) else []
        out += [f"process {p} naming {d['exec_root']}" for p in _processes_naming(d["exec_root"])]
    return out


def _remains(st: dict) -> list[str]:
    """What is left of the inner run's daemons once their cleanup has returned (empty when all is gone)."""
    out = []
    for d in (st, st["ref"]):
        out += [f"process {p}" for p in (d["pid"], d["reaper"]) if _alive(p)]
        out += [f"mount {m}" for m in _mounts_under(d["data_root"], d["exec_root"])]
        out += [f"path {p}" for p in (d["data_root"], d["exec_root"], d["socket"]) if os.path.exists(p)]
    return out + network_leftovers(st["exec_root"])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_killed_pytest_leaves_no_daemon_behind(tmp_path: Path, sig: signal.Signals) -> None:
    (tmp_path / "test_inner.py").write_text(INNER)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([TESTS, SRC]), GORAE_TEST_TARGET="dref")
    out = open(tmp_path / "pytest.out", "wb")
    inner = subprocess.Popen(
        [
            *(sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "-p", "conftest"),
            *("--basetemp", str(tmp_path / "inner-tmp"), "test_inner.py"),
        ],
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
        for d in (st, st["ref"]):
            assert _alive(d["pid"]) and _alive(d["reaper"]) and _alive(d["container_pid"])
            assert _mounts_under(d["data_root"], d["exec_root"])
            assert _processes_naming(d["exec_root"])  # conmon, containerd's shim
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
        if st is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(st["busybox_tar"])
        if st is not None and (_remains(st) or _processes_left(st)):  # the test failed: clean up what is left
            for p in (st["pid"], st["reaper"], st["ref"]["pid"], st["ref"]["reaper"]):
                if _alive(p):
                    os.kill(p, signal.SIGKILL)
            ref = st["ref"]
            clean_roots(
                {
                    "roots": [ref["exec_root"], ref["data_root"]],
                    "files": [ref["socket"]],
                    "exec_root": ref["exec_root"],
                }
            )
            GoraeDaemon(st["data_root"], st["exec_root"], st["socket"], st["log_path"]).cleanup()
