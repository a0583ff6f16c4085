"""`.dockerignore` (shared by the daemon's builder and the CLI's context sender): docker's pattern rules.
Lines are cleaned paths (a leading `/` dropped, `#` comments and blank lines skipped); `*` and `?` stop at `/`, `**` crosses directories, `[...]` classes, `\\` escapes; a
`!` pattern re-includes; the last matching pattern wins; a pattern matching a parent directory matches every
path below it. Pure: no file system access."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Pattern:
    text: str
    exclusion: bool  # a `!` pattern
    regex: re.Pattern[str]


def _clean(p: str) -> str:
    p = posixpath.normpath(p)
    if p.startswith("//"):
        p = p.lstrip("/")
    return p.lstrip("/") or "."


def compile_pattern(p: str) -> re.Pattern[str]:
    out = ["^"]
    i = 0
    while i < len(p):
        c = p[i]
        if c == "*":
            if p.startswith("**", i):
                i += 2
                if p.startswith("/", i):  # `**/` : zero or more directories
                    i += 1
                    out.append("(.*/)?")
                    continue
                out.append(".*")
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\" and i + 1 < len(p):
            i += 1
            out.append(re.escape(p[i]))
        elif c == "[":
            end = p.find("]", i + 1)
            if end < 0:
                out.append(re.escape(c))
            else:
                body = p[i + 1 : end]
                if body.startswith("^"):
                    body = "!" + body[1:]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    out.append("$")
    try:
        return re.compile("".join(out), re.DOTALL)
    except re.error:
        return re.compile(re.escape(p))


def parse(text: str) -> list[Pattern]:
    """The patterns of a .dockerignore file's text, in order."""
    pats: list[Pattern] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        excl = line.startswith("!")
        if excl:
            line = line[1:].strip()
            if not line:
                continue
        cleaned = _clean(line)
        pats.append(Pattern(cleaned, excl, compile_pattern(cleaned)))
    return pats


def _matches(pat: Pattern, path: str) -> bool:
    if pat.regex.match(path):
        return True
    # a pattern naming a directory matches everything below it
    parts = path.split("/")
    for n in range(1, len(parts)):
        if pat.regex.match("/".join(parts[:n])):
            return True
    return False


def excluded(patterns: list[Pattern], path: str) -> bool:
    """Whether the context-relative `path` is left out of the context."""
    path = _clean(path)
    out = False
    for pat in patterns:
        if _matches(pat, path):
            out = not pat.exclusion
    return out


def may_hold_inclusions(patterns: list[Pattern], directory: str) -> bool:
    """Whether an excluded `directory` may still hold a path a later `!` pattern re-includes (walkers descend)."""
    d = _clean(directory)
    for pat in patterns:
        if pat.exclusion and (
            pat.text.startswith(d + "/") or "*" in pat.text or "?" in pat.text or "[" in pat.text
        ):
            return True
    return False
