"""A route table: path patterns and method dispatch.

Owns path patterns (`/containers/{id}/json`, and `{name:.*}` for names with slashes) and method dispatch
(HEAD falls back to GET). Version prefixes and error bodies are the application's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gorae.httpserver.message import Handler

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([^{}]+))?\}")


class RouteNotFound(LookupError):
    """No route has this path (404 "page not found")."""


class MethodNotAllowed(LookupError):
    """The path exists, but not for this method (405)."""

    def __init__(self, allowed: list[str]) -> None:
        super().__init__(", ".join(allowed))
        self.allowed = allowed


@dataclass
class _Pattern:
    regex: re.Pattern[str]
    handlers: dict[str, Handler]


def _compile(pattern: str) -> re.Pattern[str]:
    if not pattern.startswith("/"):
        raise ValueError(f"route pattern must start with '/': {pattern!r}")
    out: list[str] = []
    pos = 0
    for m in _PARAM.finditer(pattern):
        out.append(re.escape(pattern[pos : m.start()]))
        regex = m.group(2) or "[^/]+"
        out.append(f"(?P<{m.group(1)}>{regex})")
        pos = m.end()
    out.append(re.escape(pattern[pos:]))
    return re.compile("".join(out) + r"\Z", re.DOTALL)


class Router:
    """Routes by method and path. `add("GET", "/containers/{id}/json", handler)`."""

    def __init__(self) -> None:
        self._static: dict[str, dict[str, Handler]] = {}
        self._patterns: list[_Pattern] = []
        self._pattern_index: dict[str, _Pattern] = {}

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        method = method.upper()
        if _PARAM.search(pattern) is None:
            table = self._static.setdefault(pattern, {})
        else:
            entry = self._pattern_index.get(pattern)
            if entry is None:
                entry = _Pattern(_compile(pattern), {})
                self._pattern_index[pattern] = entry
                self._patterns.append(entry)
            table = entry.handlers
        if method in table:
            raise ValueError(f"duplicate route {method} {pattern}")
        table[method] = handler

    def get(self, pattern: str, handler: Handler) -> None:
        self.add("GET", pattern, handler)

    def post(self, pattern: str, handler: Handler) -> None:
        self.add("POST", pattern, handler)

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        """The handler and path parameters; RouteNotFound or MethodNotAllowed otherwise.

        `path` is the decoded path (without an application's version prefix). Static routes win over patterns,
        and patterns match in the order they were added.
        """
        static = self._static.get(path)
        if static is not None:
            handler = _pick(static, method)
            if handler is not None:
                return handler, {}
            allowed = set(static)
        else:
            allowed = set()
        for entry in self._patterns:
            m = entry.regex.match(path)
            if m is None:
                continue
            handler = _pick(entry.handlers, method)
            if handler is not None:
                return handler, m.groupdict()
            allowed.update(entry.handlers)
        if allowed:
            if "GET" in allowed:
                allowed.add("HEAD")
            raise MethodNotAllowed(sorted(allowed))
        raise RouteNotFound(path)


def _pick(handlers: dict[str, Handler], method: str) -> Handler | None:
    handler = handlers.get(method)
    if handler is None and method == "HEAD":
        handler = handlers.get("GET")
    return handler
