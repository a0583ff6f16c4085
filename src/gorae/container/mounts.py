"""`VolumeMounts`: the volume service and volume/mounts.py seen as a `MountResolver` (container/types.py).

Owns nothing: it binds the volume service to the mount functions so the container services take one
narrow collaborator. Failures to release or remove a volume are the callers' to ignore.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gorae.volume import mounts as vm
from gorae.volume.local import VolumeService

ANONYMOUS_LABEL = "com.docker.volume.anonymous"


class VolumeMounts:
    def __init__(self, volumes: VolumeService) -> None:
        self.volumes = volumes

    def resolve(
        self,
        config: dict[str, Any],
        host_config: dict[str, Any],
        image_volumes: dict[str, Any] | None,
        lookup_container: Callable[[str], dict[str, Any]],
    ) -> list[dict[str, Any]]:
        return vm.resolve(config, host_config, image_volumes, self.volumes, lookup_container)

    def public(self, mounts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return vm.public(mounts)

    def copy_up(self, rootfs: str, mounts: list[dict[str, Any]]) -> None:
        vm.copy_up(rootfs, mounts)

    def oci_mounts(self, mounts: list[dict[str, Any]], host_config: dict[str, Any]) -> list[dict[str, Any]]:
        return vm.oci_mounts(mounts, host_config, self.volumes)

    def hold(self, mounts: list[dict[str, Any]]) -> None:
        vm.hold(mounts, self.volumes)

    def release(self, mounts: list[dict[str, Any]]) -> None:
        vm.release(mounts, self.volumes)

    def remove_anonymous(self, mounts: list[dict[str, Any]]) -> None:
        """Volumes labelled anonymous (docker's label) among the container's volume mounts."""
        for m in mounts:
            if m.get("Type") != "volume":
                continue
            try:
                doc = self.volumes.inspect(m["Name"])
                if (doc.get("Labels") or {}).get(ANONYMOUS_LABEL) is not None:
                    self.volumes.remove(m["Name"])
            except Exception:  # noqa: S112 - one volume's failure must not keep the others
                continue
