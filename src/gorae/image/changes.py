"""`--change` instructions for import and commit: Dockerfile-like lines applied to an image's Config.

Allowed, as in docker: CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK (NONE or CMD), LABEL, ONBUILD, STOPSIGNAL,
USER, VOLUME, WORKDIR. CMD/ENTRYPOINT/VOLUME take the JSON form or the shell form (CMD/ENTRYPOINT wrapped in
["/bin/sh", "-c", ...]). ENV and LABEL take `k=v ...` (quotes allowed) or the legacy `k v`.
"""

from __future__ import annotations

import copy
import json
import posixpath
import re
import shlex
from typing import Any

from gorae.errors import InvalidParameter

ALLOWED = (
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "HEALTHCHECK",
    "LABEL",
    "ONBUILD",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
)
_PORT = re.compile(r"(\d{1,5})(?:-(\d{1,5}))?(?:/(tcp|udp|sctp))?", re.IGNORECASE)


def _json_list(args: str) -> list[str] | None:
    s = args.strip()
    if not s.startswith("["):
        return None
    try:
        v = json.loads(s)
    except ValueError:
        return None
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return v
    return None


def _words(args: str, instr: str) -> list[str]:
    try:
        return shlex.split(args, posix=True)
    except ValueError as e:
        raise InvalidParameter(f"dockerfile parse error: {instr}: {e}") from None


def _pairs(args: str, instr: str) -> list[tuple[str, str]]:
    words = _words(args, instr)
    if not words:
        raise InvalidParameter(f"{instr} requires at least one argument")
    if "=" not in words[0]:
        # legacy form: KEY value with spaces
        key, _, value = args.strip().partition(" ")
        if not value.strip() and instr == "ENV":
            raise InvalidParameter(f"{instr} must have two arguments")
        return [(key, value.strip())]
    out: list[tuple[str, str]] = []
    for w in words:
        k, eq, v = w.partition("=")
        if not eq or not k:
            raise InvalidParameter(
                f"{instr} names can not be blank"
                if not k
                else f"Syntax error - can't find = in {w!r}. Must be of the form: name=value"
            )
        out.append((k, v))
    return out


def _command(args: str) -> list[str]:
    j = _json_list(args)
    if j is not None:
        return j
    return ["/bin/sh", "-c", args.strip()]


def _expose(ports: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for p in ports:
        m = _PORT.fullmatch(p)
        if m is None:
            raise InvalidParameter(f"invalid containerPort: {p}")
        lo = int(m.group(1))
        hi = int(m.group(2) or lo)
        proto = (m.group(3) or "tcp").lower()
        if hi < lo or hi > 65535:
            raise InvalidParameter(f"invalid port range: {p}")
        for n in range(lo, hi + 1):
            out[f"{n}/{proto}"] = {}
    return out


def apply_changes(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """A copy of the Docker-shaped Config with each change line applied in order."""
    cfg = copy.deepcopy(config) if config else {}
    state = {"cmd_set": False}
    for raw in changes or []:
        for line in str(raw).splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            word, _, args = line.partition(" ")
            instr = word.upper()
            args = args.strip()
            if instr not in ALLOWED:
                raise InvalidParameter(f"{word.lower()} is not a valid change command")
            _apply_one(cfg, instr, args, state)
    return cfg


def _apply_one(cfg: dict[str, Any], instr: str, args: str, state: dict[str, bool]) -> None:
    if instr == "CMD":
        cfg["Cmd"] = _command(args)
        state["cmd_set"] = True
    elif instr == "ENTRYPOINT":
        cfg["Entrypoint"] = _command(args) if args else None
        if not state["cmd_set"]:  # as in a Dockerfile: a new ENTRYPOINT drops the inherited CMD
            cfg["Cmd"] = None
    elif instr == "ENV":
        env = list(cfg.get("Env") or [])
        for k, v in _pairs(args, instr):
            env = [e for e in env if e.split("=", 1)[0] != k] + [f"{k}={v}"]
        cfg["Env"] = env
    elif instr == "LABEL":
        labels = dict(cfg.get("Labels") or {})
        for k, v in _pairs(args, instr):
            labels[k] = v
        cfg["Labels"] = labels
    elif instr == "EXPOSE":
        ports = dict(cfg.get("ExposedPorts") or {})
        ports.update(_expose(_words(args, instr)))
        cfg["ExposedPorts"] = ports
    elif instr == "VOLUME":
        vols = _json_list(args)
        if vols is None:
            vols = _words(args, instr)
        if not vols or any(not v for v in vols):
            raise InvalidParameter("VOLUME specified can not be an empty string")
        volumes = dict(cfg.get("Volumes") or {})
        for v in vols:
            volumes[v] = {}
        cfg["Volumes"] = volumes
    elif instr == "USER":
        if not args:
            raise InvalidParameter("USER requires exactly one argument")
        cfg["User"] = args
    elif instr == "WORKDIR":
        if not args:
            raise InvalidParameter("WORKDIR requires exactly one argument")
        cur = cfg.get("WorkingDir") or "/"
        cfg["WorkingDir"] = posixpath.normpath(posixpath.join(cur, args))
    elif instr == "STOPSIGNAL":
        if not args:
            raise InvalidParameter("STOPSIGNAL requires exactly one argument")
        cfg["StopSignal"] = args
    elif instr == "ONBUILD":
        if not args:
            raise InvalidParameter("ONBUILD requires at least one argument")
        cfg["OnBuild"] = list(cfg.get("OnBuild") or []) + [args]
    elif instr == "HEALTHCHECK":
        words = args.split(None, 1)
        if words and words[0].upper() == "NONE":
            cfg["Healthcheck"] = {"Test": ["NONE"]}
        elif words and words[0].upper() == "CMD" and len(words) == 2:
            j = _json_list(words[1])
            cfg["Healthcheck"] = {"Test": ["CMD", *j] if j is not None else ["CMD-SHELL", words[1]]}
        else:
            raise InvalidParameter("HEALTHCHECK requires NONE or CMD <command>")
