"""The classic builder's image records: the run config of a step (docker's `Config` shape), the `#(nop)`
comments, Go's `%q` rendering of string lists, and the image config + history entry a step commits."""

from __future__ import annotations

import copy
import json
from typing import Any

from gorae.image.models import docker_config, dump_config
from gorae.platform import host_arch, host_os
from gorae.timefmt import now_rfc3339nano

DEFAULT_SHELL = ["/bin/sh", "-c"]
PROXY_ARGS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
              "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")  # fmt: skip
CACHE_KEYS = ("Cmd", "Entrypoint", "Env", "Labels", "ExposedPorts", "Volumes", "WorkingDir", "User",
              "OnBuild", "Shell", "Healthcheck", "StopSignal")  # fmt: skip


def go_quote(items: list[str]) -> str:
    """Go's `fmt.Sprintf("%q", []string{...})`: `["a" "b"]`."""
    return "[" + " ".join(json.dumps(s, ensure_ascii=False) for s in items) + "]"


def shell_of(cfg: dict[str, Any]) -> list[str]:
    return list(cfg.get("Shell") or DEFAULT_SHELL)


def nop_cmd(cfg: dict[str, Any], comment: str) -> list[str]:
    """A metadata step's recorded command: shell + `#(nop) ` + comment, as the classic builder writes it."""
    return shell_of(cfg) + ["#(nop) ", comment]


def nop_cmd_string(cfg: dict[str, Any], comment: str) -> list[str]:
    """COPY/ADD/WORKDIR's recorded command: shell + `#(nop) <comment>` in one word."""
    return shell_of(cfg) + ["#(nop) " + comment]


def cache_key_of(parent: str, cfg: dict[str, Any]) -> dict[str, Any]:
    return {"Parent": parent, **{k: cfg.get(k) or None for k in CACHE_KEYS}}


def image_config(
    parent_cfg: dict[str, Any] | None,
    run_config: dict[str, Any],
    container_config: dict[str, Any],
    diff_id: str | None,
    *,
    container_id: str = "",
    empty: bool,
    author: str = "",
) -> bytes:
    """The config bytes of a step's image: the parent's rootfs and history plus this step."""
    when = now_rfc3339nano()
    base = parent_cfg or {}
    diff_ids = list((base.get("rootfs") or {}).get("diff_ids") or [])
    if diff_id is not None and not empty:
        diff_ids.append(diff_id)
    hist: dict[str, Any] = {"created": when}
    if author:
        hist["author"] = author
    hist["created_by"] = " ".join(container_config.get("Cmd") or [])
    if empty:
        hist["empty_layer"] = True
    cfg: dict[str, Any] = {
        "architecture": base.get("architecture") or host_arch(),
        "author": author,
        "config": docker_config(copy.deepcopy(run_config)),
        "container": container_id,
        "container_config": docker_config(copy.deepcopy(container_config)),
        "created": when,
        "docker_version": "",
        "history": list(base.get("history") or []) + [hist],
        "os": base.get("os") or host_os(),
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    if base.get("variant"):
        cfg["variant"] = base["variant"]
    if not container_id:
        del cfg["container"]
    if not author:
        del cfg["author"]
    return dump_config(cfg)
