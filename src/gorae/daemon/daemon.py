"""The Daemon object: builds every service on one data root and exec root, and recovers state at start.

It owns wiring and lifecycle only. Behaviour lives in the services it holds: `images` (image/),
`containers` and `execs` (container/service.py, container/execs.py), `events` (gorae/events.py),
`networks` (network/service.py), `volumes` (volume/local.py).
On shutdown containers keep running (conmon holds them); the next start re-attaches to them.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from typing import Any

from gorae.daemon.config import DaemonConfig
from gorae.events import EventBus

log = logging.getLogger("gorae.daemon")


class Daemon:
    def __init__(self, config: DaemonConfig) -> None:
        from gorae.container.mounts import VolumeMounts
        from gorae.container.service import ContainerService
        from gorae.image.service import ImageService
        from gorae.runtime.conmon import ConmonRuntime
        from gorae.snapshot.overlay import OverlaySnapshotter
        from gorae.store.content import ContentStore
        from gorae.store.metadata import MetadataStore
        from gorae.volume.local import VolumeService

        self.config = config
        self.started_at = time.time()
        root = config.data_root
        for sub in ("", "content", "overlay", "containers", "volumes", "tmp"):
            os.makedirs(os.path.join(root, sub), mode=0o711, exist_ok=True)
        os.makedirs(config.exec_root, mode=0o711, exist_ok=True)
        self.meta = MetadataStore(os.path.join(root, "gorae.db"))
        self.content = ContentStore(os.path.join(root, "content"))
        self.snapshotter = OverlaySnapshotter(os.path.join(root, "overlay"))
        self.events = EventBus(self.meta)
        publish = self.events.publish  # callable from the worker threads image and volume calls run in
        self.images = ImageService(
            self.meta,
            self.content,
            self.snapshotter,
            os.path.join(root, "tmp"),
            publish=publish,
            usage=self.image_users,
        )
        self.volumes = VolumeService(
            self.meta, os.path.join(root, "volumes"), users=self.volume_users, publish=publish
        )
        self.runtime = ConmonRuntime(config.exec_root, runc=config.runtime, conmon=config.conmon)
        from gorae.network.controller import NetworkController
        from gorae.network.names import network_names
        from gorae.network.types import NetworkOptions

        options = NetworkOptions(
            bip=config.bip,
            fixed_cidr=config.fixed_cidr,
            default_address_pools=list(config.default_address_pools or []),
            iptables=config.iptables is not False,
            ip_forward=config.ip_forward is not False,
            ip_masq=config.ip_masq is not False,
        )
        self.networks = NetworkController(
            self.meta, config.exec_root, options, network_names(config), publish=self.events.publish
        )
        self.containers = ContainerService(
            root=os.path.join(root, "containers"),
            store=self.meta,
            publish=self.events.publish,
            runtime=self.runtime,
            images=self.images,
            snapshotter=self.snapshotter,
            networks=self.networks,
            mounts=VolumeMounts(self.volumes),
            default_dns=list(config.dns),
        )
        self.execs = self.containers.execs
        self.node_id = _engine_id(os.path.join(root, "engine-id"))

    def image_users(self, image_id: str) -> list[str]:
        """IDs of the containers created from image `image_id`."""
        return [c["Id"] for c in self.meta.list("container") if c.get("Image") == image_id]

    def volume_users(self, name: str) -> list[str]:
        """IDs of the containers whose mounts use volume `name`."""
        return [
            c["Id"]
            for c in self.meta.list("container")
            if any(m.get("Type") == "volume" and m.get("Name") == name for m in c.get("Mounts") or [])
        ]

    def system_df(self) -> dict[str, Any]:
        """GET /system/df: images, containers (with sizes), volumes, build cache."""
        images = self.images.list(all=False)
        from gorae.container.listing import summary

        containers = [summary(self.containers, ct, size=True) for ct in self.containers.all()]
        for img in images:
            img["Containers"] = sum(1 for c in containers if c.get("ImageID") == img["Id"])
        return {
            "LayersSize": sum(i.get("Size", 0) for i in images),
            "Images": images,
            "Containers": containers,
            "Volumes": [
                {
                    **v,
                    "UsageData": {
                        "Size": self.volumes.usage(v["Name"]),
                        "RefCount": len(self.volume_users(v["Name"])),
                    },
                }
                for v in self.volumes.list()
            ],
            "BuildCache": [],
        }

    async def start(self) -> None:
        """Recover: networks (bridges, rules, held ports) first, then re-attach to running containers and
        record the ones that exited while we were away."""
        await self.networks.init()
        await self.containers.restore()

    async def shutdown(self) -> None:
        """Stop watching; leave containers running (their network state stays for the next start)."""
        await self.containers.close()
        await self.networks.close()


def _engine_id(path: str) -> str:
    """A stable identifier of this engine (docker's `ID` in /info), made once per data root."""
    try:
        with open(path, encoding="ascii") as f:
            value = f.read().strip()
            if value:
                return value
    except OSError:
        pass
    value = str(uuid.uuid4())
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(value)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return value
