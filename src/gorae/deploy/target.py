"""What one application is deployed as: the container settings the CLI parsed from the repository's
`gorae.*` config (a create body fragment), plus the deploy's own settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_KEEP = 3
DEFAULT_HEALTH_TIMEOUT = 60.0
DEFAULT_STOP_TIMEOUT = 10
DEFAULT_BRANCH = "main"


@dataclass
class Target:
    name: str
    # Env, ExposedPorts, Healthcheck, HostConfig {PortBindings, Binds, NetworkMode, ...}: the container's
    # create body without Image and Labels
    body: dict[str, Any] = field(default_factory=dict)
    dockerfile: str = ""
    branch: str = DEFAULT_BRANCH
    keep: int = DEFAULT_KEEP
    registry: str = ""
    health_timeout: float = DEFAULT_HEALTH_TIMEOUT
    stop_timeout: int = DEFAULT_STOP_TIMEOUT
    port_handover: bool = True  # gorae's POST /containers/{id}/ports/take; False: stop, then start
    # `--service`: deployed as a Swarm service. ContainerSpec {Env, Mounts, Healthcheck}, Ports (PortConfigs),
    # Networks ([{Target}]), Replicas; empty: container mode
    service: dict[str, Any] = field(default_factory=dict)

    @property
    def network(self) -> str:
        return str(self.body.get("HostConfig", {}).get("NetworkMode") or "")

    def published(self) -> list[str]:
        """The host ports asked for, as shown to the user (":80", "127.0.0.1:8080")."""
        out = []
        for lst in (self.body.get("HostConfig", {}).get("PortBindings") or {}).values():
            for b in lst or []:
                ip, port = b.get("HostIp") or "", b.get("HostPort") or ""
                out.append(f"{ip}:{port}" if port else f"{ip}:(any)")
        return out
