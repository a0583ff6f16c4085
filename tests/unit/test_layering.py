"""The import contract: dependencies flow one way and no import cycle exists.

Every `import` in src/gorae counts — top-level, lazy (inside a function) and under `TYPE_CHECKING` — because a
cycle hidden behind a lazy import is still a cycle in the design. Importing `a.b.c` also runs the packages
`a` and `a.b` (their `__init__`), so those edges count too (see `_edges`).

The layers, lowest first (a package may import its own layer and those below it, never above):
  base      errors, humanize, filters, timefmt, platform, events, reference, dockerignore, authconfig, gitcontext,
            gotemplate (self-contained helpers; Go's text/template serves the CLI's --format and swarm's templates)
  leaves    archive, store, snapshot, runtime, volume                  (the kernel- and disk-facing parts)
            httpserver                                                 (the generic HTTP/1.1 server: api and
                                                                        the registry server both plug into it)
  services  image, network, container, daemon, distribution, registry, builder, swarm, metrics
  api       the Engine API handlers over backend protocols
  cmd       the composition root: the only package that may import everything
and on the client side: client imports base only; deploy (git-push deploys, driving the daemon over the Engine
API) imports client and base; cli imports deploy, client and base only; the dashboard (the web
page's static assets) imports client and base at most — the composition root serves it.
Inside `registry`, `registry.storage` (the storage drivers) is the bottom: it imports base only, never the
registry's HTTP side, so a driver or `registry gc` never drags in the server.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
ROOT = "gorae"

BASE = {
    "errors",
    "humanize",
    "filters",
    "timefmt",
    "platform",
    "events",
    "reference",
    "dockerignore",
    "authconfig",
    "gitcontext",
    "gotemplate",
    "__init__",
}
LEAVES = {"archive", "store", "snapshot", "runtime", "volume"}
HTTP = {"httpserver"}
SERVICES = {
    "image",
    "network",
    "container",
    "daemon",
    "distribution",
    "registry",
    "builder",
    "swarm",
    "metrics",
}

# what each top-level part may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    **{b: BASE for b in BASE},
    **{leaf: BASE | LEAVES for leaf in LEAVES},
    "httpserver": BASE | HTTP,
    **{s: BASE | LEAVES | SERVICES | HTTP for s in SERVICES},
    "api": BASE | SERVICES | HTTP | {"api"},
    "cmd": BASE | LEAVES | SERVICES | HTTP | {"api", "cli", "client", "cmd", "dashboard"},
    "client": BASE,
    "cli": BASE | {"client", "deploy"},
    # git-push deploys: a client of the daemon like the CLI (it drives builds and containers over the Engine
    # API), below the CLI, which parses its flags and prints its output
    "deploy": BASE | {"client"},
    "dashboard": BASE | {"client"},
}
# the API talks to services through their interfaces, never to the disk- and kernel-facing leaves directly
API_MUST_NOT = LEAVES


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for path in (SRC / ROOT).rglob("*.py"):
        rel = path.relative_to(SRC).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _with_parents(name: str, modules: dict[str, Path]) -> list[str]:
    """Importing `a.b.c` runs the modules a, a.b and a.b.c (those of them that are ours)."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in modules]


def _edges(mod: str, node: ast.Import | ast.ImportFrom, package: str, modules: dict[str, Path]) -> set[str]:
    """The modules one import statement in `mod` depends on.

    The packages that contain `mod` are already initialised when it runs, so the implied edge to them is
    dropped; reading a name that a package's `__init__` defines (`from gorae.x import Thing`) is kept, since
    that depends on the `__init__` itself — from inside the package, that is the package-init cycle."""
    own_parents = {mod.rsplit(".", i)[0] for i in range(1, mod.count(".") + 1)}
    implied: set[str] = set()
    explicit: set[str] = set()
    if isinstance(node, ast.Import):
        for alias in node.names:
            implied.update(_with_parents(alias.name, modules))
    else:
        if node.level:
            base = package.split(".")
            if node.level > 1:
                base = base[: -(node.level - 1)]
            prefix = ".".join(base)
            base_name = f"{prefix}.{node.module}" if node.module else prefix
        else:
            base_name = node.module or ""
        implied.update(_with_parents(base_name, modules))
        for alias in node.names:
            sub = f"{base_name}.{alias.name}"
            if sub in modules:
                implied.update(_with_parents(sub, modules))
            elif base_name in modules:
                explicit.add(base_name)
    return {d for d in implied if d not in own_parents} | explicit


def import_graph() -> dict[str, set[str]]:
    """module → the gorae modules it imports (lazy and TYPE_CHECKING imports included)."""
    modules = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for mod, path in modules.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                graph[mod].update(
                    d for d in _edges(mod, node, package, modules) if d != mod and d.startswith(ROOT)
                )
        graph.setdefault(mod, set())
    return dict(graph)


def _part(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _sccs(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively (no recursion limit to hit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work: list[tuple[str, list[str]]] = [(start, sorted(graph.get(start, ())))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, todo = work[-1]
            if todo:
                nxt = todo.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(graph.get(nxt, ()))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for mod, deps in sorted(graph.items()):
        src = _part(mod)
        allowed = ALLOWED.get(src)
        for dep in sorted(deps):
            dst = _part(dep)
            if dst == src or dst == "__init__":
                continue
            if allowed is None:
                bad.append(
                    f"{mod} -> {dep}: package {src!r} has no place in the layering (add it to ALLOWED)"
                )
            elif dst not in allowed or (src == "api" and dst in API_MUST_NOT):
                bad.append(f"{mod} -> {dep}")
    return bad


def test_the_graph_sees_every_kind_of_import() -> None:
    """The walker itself: lazy and TYPE_CHECKING imports and package inits are edges."""
    graph = import_graph()
    assert len(graph) > 100
    assert all(_part(m) in ALLOWED for m in graph), "a package outside the layering"


def test_no_import_cycles() -> None:
    cycles = _sccs(import_graph())
    assert not cycles, "import cycles (lazy and TYPE_CHECKING imports count):\n" + "\n".join(
        " <-> ".join(c) for c in cycles
    )


def test_dependencies_flow_one_way() -> None:
    bad = layer_violations(import_graph())
    assert not bad, "imports against the layering:\n" + "\n".join(bad)


def test_registry_storage_is_the_bottom_of_the_registry() -> None:
    """Storage drivers import base only: not the registry's handlers, not the HTTP server, not the engine."""
    bad = [
        f"{mod} -> {dep}"
        for mod, deps in sorted(import_graph().items())
        if mod.startswith("gorae.registry.storage")
        for dep in sorted(deps)
        if not dep.startswith("gorae.registry.storage") and _part(dep) not in BASE and dep != "gorae.registry"
    ]
    assert not bad, "registry.storage importing above itself:\n" + "\n".join(bad)


def test_cycle_finder_finds_cycles() -> None:
    assert _sccs({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _sccs({"a": {"b"}, "b": set()}) == []


def test_layer_check_flags_upward_imports() -> None:
    graph = {
        "gorae.store.x": {"gorae.api.y"},
        "gorae.cli.z": {"gorae.daemon.w"},
        "gorae.api.q": {"gorae.runtime.r"},
    }
    assert layer_violations(graph) == [
        "gorae.api.q -> gorae.runtime.r",
        "gorae.cli.z -> gorae.daemon.w",
        "gorae.store.x -> gorae.api.y",
    ]
