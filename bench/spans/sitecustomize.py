"""Span timing for the gorae daemon (bench only): put this directory on PYTHONPATH and set GORAE_SPANS=<file>.

Wraps the calls on the container run path (runtime, metadata store, mounts, snapshots, container service,
API dispatch) and appends one line per call, `<start_ns> <dur_us> <name>`, to the file named by GORAE_SPANS.
Imported by Python's `site` at start-up of any process with this directory on PYTHONPATH; does nothing when
GORAE_SPANS is unset. bench/spans_report.py summarises the file.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import time
from typing import Any

_OUT = os.environ.get("GORAE_SPANS")


def _wrap(owner: Any, attr: str, name: str) -> None:
    fn = getattr(owner, attr)
    f = open(_OUT, "a", buffering=1)  # type: ignore[arg-type]  # noqa: SIM115

    def label(args: tuple[Any, ...]) -> str:
        if attr == "_runc" and len(args) > 1:
            return f"{name}:{args[1]}"
        if attr == "_dispatch" and len(args) > 1:
            r = args[1]
            p = r.path.split("?")[0]
            return f"{name}:{r.method} {'/'.join(s if len(s) < 40 else '{id}' for s in p.split('/'))}"
        return name

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def aw(*args: Any, **kw: Any) -> Any:
            t = time.perf_counter_ns()
            try:
                return await fn(*args, **kw)
            finally:
                f.write(f"{t} {(time.perf_counter_ns() - t) // 1000} {label(args)}\n")

        setattr(owner, attr, aw)
    else:

        @functools.wraps(fn)
        def sw(*args: Any, **kw: Any) -> Any:
            t = time.perf_counter_ns()
            try:
                return fn(*args, **kw)
            finally:
                f.write(f"{t} {(time.perf_counter_ns() - t) // 1000} {label(args)}\n")

        setattr(owner, attr, sw)


_TARGETS = [
    (
        "gorae.runtime.conmon",
        "ConmonRuntime",
        ["create", "start", "delete", "_runc", "_spawn_conmon", "wait_exit", "state"],
    ),
    ("gorae.store.metadata", "MetadataStore", ["put", "delete", "add_event"]),
    ("gorae.snapshot.overlay", "OverlaySnapshotter", ["prepare", "remove", "mounts"]),
    ("gorae.snapshot.mount", None, ["mount_all", "unmount"]),
    (
        "gorae.daemon.containers",
        "ContainerService",
        [
            "create",
            "start",
            "_start_locked",
            "_handle_exit",
            "remove",
            "_destroy",
            "_mount",
            "_unmount",
            "_build_spec",
            "_oci_mounts",
            "_resolve_mounts",
        ],
    ),
    ("gorae.api.server", "_Connection", ["_dispatch"]),
    (
        "gorae.network.sandboxes",
        "SandboxManager",
        ["setup", "teardown", "attach", "_setup_exclusive", "_publish_ports", "drop_sandbox_sync"],
    ),
    ("gorae.network.dns.resolver", "DnsServers", ["start", "stop"]),
    # the build path: receiving the context, indexing it, the steps
    ("gorae.api.build", None, ["_receive"]),
    ("gorae.api.build", "BuildRouter", ["build"]),
    ("gorae.builder.service", "BuildService", ["prepare", "run", "discard"]),
]


def _install() -> None:
    for modname, clsname, attrs in _TARGETS:
        try:
            mod = importlib.import_module(modname)
        except ImportError:  # moved since this list was written: time the rest
            continue
        owner = getattr(mod, clsname, None) if clsname else mod
        if owner is None:
            continue
        for a in attrs:
            if hasattr(owner, a):
                _wrap(owner, a, f"{clsname or modname.rsplit('.', 1)[1]}.{a}")
    import gorae.snapshot as snap

    snap.mount_all = importlib.import_module("gorae.snapshot.mount").mount_all
    snap.unmount = importlib.import_module("gorae.snapshot.mount").unmount


if _OUT:
    _install()
