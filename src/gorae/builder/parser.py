"""The Dockerfile, parsed with the `dockerfile` package (moby's own parser) and checked as the classic builder
checks it before anything runs: known instructions and flags, argument counts, stages. Every error names its
line: `Dockerfile parse error line N: ...`. Returns plain data; never touches the disk or the daemon."""

from __future__ import annotations

from dataclasses import dataclass, field

import dockerfile  # type: ignore[import-not-found]

from gorae.errors import InvalidParameter

KNOWN = {
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
    "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
}  # fmt: skip
FLAGS: dict[str, set[str]] = {
    "FROM": {"platform"},
    "RUN": {"network", "mount", "security"},
    "COPY": {"from", "chown", "chmod", "link", "parents", "exclude"},
    "ADD": {"chown", "chmod", "link", "checksum", "keep-git-dir", "exclude"},
    "HEALTHCHECK": {"interval", "timeout", "start-period", "start-interval", "retries"},
}
NEEDS_ARGS = {"ADD", "COPY", "ENV", "EXPOSE", "LABEL", "MAINTAINER", "ONBUILD", "RUN", "STOPSIGNAL", "USER",
              "VOLUME", "WORKDIR", "ARG", "SHELL", "CMD", "ENTRYPOINT", "HEALTHCHECK"}  # fmt: skip


@dataclass(frozen=True)
class Instruction:
    cmd: str  # upper case
    original: str  # the source text, continuations joined (what "Step n/m :" shows)
    line: int
    args: tuple[str, ...]
    flags: dict[str, str]
    json: bool
    heredocs: tuple[tuple[str, str], ...] = ()  # (name, content)
    sub: Instruction | None = None  # ONBUILD's instruction


@dataclass
class Stage:
    source: Instruction  # its FROM
    base: str
    name: str  # lower case, "" when unnamed
    platform: str
    commands: list[Instruction] = field(default_factory=list)


@dataclass
class Dockerfile:
    meta_args: list[Instruction]
    stages: list[Stage]
    escape: str


def _err(line: int, msg: str) -> InvalidParameter:
    return InvalidParameter(f"dockerfile parse error line {line}: {msg}")


def _flags(c: dockerfile.Command, line: int) -> dict[str, str]:
    out: dict[str, str] = {}
    allowed = FLAGS.get(c.cmd.upper(), set())
    for f in c.flags:
        if not f.startswith("--"):
            raise _err(line, f"Unknown flag: {f}")
        name, eq, value = f[2:].partition("=")
        if name not in allowed:
            raise _err(line, f"Unknown flag: {name}")
        out[name] = value if eq else "true"
    return out


def _escape_of(text: str) -> str:
    for raw in text.splitlines():
        s = raw.strip()
        if not s.startswith("#"):
            break
        body = s[1:].strip()
        key, eq, val = body.partition("=")
        if eq and key.strip().lower() == "escape":
            v = val.strip()
            if v not in ("\\", "`"):
                raise InvalidParameter(f"invalid ESCAPE '{v}'. Must be ` or \\")
            return v
    return "\\"


def _instruction(c: dockerfile.Command) -> Instruction:
    cmd = c.cmd.upper()
    line = c.start_line
    if cmd not in KNOWN:
        raise _err(line, f"unknown instruction: {c.cmd}")
    flags = _flags(c, line)
    if cmd == "RUN":
        for f in flags:  # BuildKit-only, as dockerd's classic builder says
            raise InvalidParameter(
                f"the --{f} option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn how "
                "to build images with BuildKit enabled"
            )
    if cmd in NEEDS_ARGS and not c.value:
        raise _err(line, f"{cmd} requires at least one argument")
    sub = None
    if cmd == "ONBUILD":
        body = c.original.split(None, 1)[1] if len(c.original.split(None, 1)) > 1 else ""
        try:
            inner = dockerfile.parse_string(body + "\n")
        except dockerfile.GoParseError as e:
            raise _err(line, str(e)) from None
        if not inner:
            raise _err(line, "ONBUILD requires at least one argument")
        first = inner[0]
        if first.cmd.upper() == "ONBUILD":
            raise _err(line, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
        if first.cmd.upper() in ("FROM", "MAINTAINER"):
            raise _err(line, f"{first.cmd.upper()} isn't allowed as an ONBUILD trigger")
        sub = _instruction(first)
    if cmd == "FROM" and len(c.value) not in (1, 3):
        raise _err(line, "FROM requires either one or three arguments")
    if cmd == "FROM" and len(c.value) == 3 and c.value[1].upper() != "AS":
        raise _err(line, "FROM requires either one or three arguments")
    if cmd in ("COPY", "ADD") and len(c.value) < 2 and not c.heredocs:
        raise _err(
            line,
            f"{cmd} requires at least two arguments, but only one was provided. Destination could not be determined.",
        )
    if cmd == "ENV" and len(c.value) % 2:
        raise _err(line, "ENV must have two arguments")
    if cmd == "SHELL" and not c.json:
        raise _err(line, "SHELL requires the arguments to be in JSON form")
    if cmd == "HEALTHCHECK" and c.value and c.value[0].upper() not in ("CMD", "NONE"):
        raise _err(line, f'Unknown type "{c.value[0]}" in HEALTHCHECK (try CMD)')
    heredocs = tuple((h.name, h.content) for h in c.heredocs)
    return Instruction(cmd, c.original, line, tuple(c.value), flags, bool(c.json), heredocs, sub)


def parse(text: str, name: str = "Dockerfile") -> Dockerfile:
    """Parse and check a Dockerfile; InvalidParameter with docker's line-numbered message when bad."""
    if not text:
        raise InvalidParameter(f"the Dockerfile ({name}) cannot be empty")
    escape = _escape_of(text)
    try:
        commands = dockerfile.parse_string(text)
    except dockerfile.GoParseError as e:
        raise InvalidParameter(f"failed to parse dockerfile: {e}") from None
    meta: list[Instruction] = []
    stages: list[Stage] = []
    names: set[str] = set()
    for c in commands:
        inst = _instruction(c)
        if inst.cmd == "FROM":
            name = inst.args[2].lower() if len(inst.args) == 3 else ""
            if name:
                if name in names:
                    raise _err(inst.line, f"duplicate name {name}")
                names.add(name)
            stages.append(Stage(inst, inst.args[0], name, inst.flags.get("platform", "")))
        elif not stages:
            if inst.cmd != "ARG":
                raise _err(inst.line, "no build stage in current context")
            meta.append(inst)
        else:
            stages[-1].commands.append(inst)
    if not stages:
        raise InvalidParameter("dockerfile contains no stages to build")
    return Dockerfile(meta, stages, escape)
