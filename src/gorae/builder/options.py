"""One build's options (the `/build` query), as plain data."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class BuildOptions:
    dockerfile: str = "Dockerfile"
    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str | None] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    target: str = ""
    no_cache: bool = False
    pull: bool = False
    rm: bool = True
    force_rm: bool = False
    quiet: bool = False
    network_mode: str = ""
    extra_hosts: list[str] = field(default_factory=list)
    shm_size: int = 0
    cache_from: list[str] = field(default_factory=list)
    platform: str = ""
    registry_auth: dict[str, dict[str, str]] = field(default_factory=dict)  # X-Registry-Config: host -> auth
