"""In-memory collaborators of the container service for unit tests: a record store, an event recorder,
an image resolver, a snapshotter, a mounter and a network attacher. Each keeps what it was asked so a
test can look."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gorae.errors import NotFound
from gorae.network.types import ContainerNet, EndpointRequest


class MemoryStore:
    def __init__(self) -> None:
        self.docs: dict[tuple[str, str], dict[str, Any]] = {}

    def put(self, kind: str, id: str, doc: dict[str, Any], *, name: str | None = None) -> None:
        import json

        self.docs[(kind, id)] = json.loads(json.dumps(doc))

    def list(self, kind: str) -> list[dict[str, Any]]:
        import json

        return [json.loads(json.dumps(d)) for (k, _), d in self.docs.items() if k == kind]

    def delete(self, kind: str, id: str) -> None:
        if self.docs.pop((kind, id), None) is None:
            raise NotFound(f"no {kind} {id}")


class EventRecorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, dict[str, str]]] = []

    def __call__(
        self,
        type_: str,
        action: str,
        actor_id: str,
        attributes: dict[str, str] | None = None,
        *,
        scope: str = "local",
    ) -> dict[str, Any]:
        self.events.append((type_, action, actor_id, dict(attributes or {})))
        return {}

    def actions(self, actor_id: str | None = None) -> list[str]:
        return [a for _, a, i, _ in self.events if actor_id is None or i == actor_id]


@dataclass
class FakeImage:
    id: str


class FakeImages:
    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.config = config or {"Cmd": ["sleep", "60"], "Env": ["PATH=/usr/bin:/bin"]}

    def resolve(self, ref_or_id: str) -> FakeImage:
        if ref_or_id.startswith("missing"):
            raise NotFound(f"No such image: {ref_or_id}")
        return FakeImage("sha256:" + "ab" * 32)

    def inspect(self, ref_or_id: str) -> dict[str, Any]:
        return {"Id": "sha256:" + "ab" * 32, "Config": dict(self.config), "Size": 1000}

    def top_layer_chain_id(self, image: Any) -> str | None:
        return None

    def commit(self, container: dict[str, Any], upper_dir: str, *args: Any, **kw: Any) -> str:
        return "sha256:" + "cd" * 32


class FakeSnapshotter:
    def __init__(self, root: str) -> None:
        self.root = root
        self.keys: set[str] = set()

    def prepare(self, key: str, parent: str | None) -> list[Any]:
        os.makedirs(os.path.join(self.root, key, "fs"), exist_ok=True)
        self.keys.add(key)
        return []

    def mounts(self, key: str) -> list[Any]:
        if key not in self.keys:
            raise NotFound(f"snapshot {key} does not exist")
        return []

    def remove(self, key: str) -> None:
        if key not in self.keys:
            raise NotFound(f"snapshot {key} does not exist")
        self.keys.discard(key)

    def upper_dir(self, key: str) -> str:
        return os.path.join(self.root, key, "fs")

    def lower_dirs(self, key: str) -> list[str]:
        return []

    def usage(self, key: str) -> int:
        return 0

    def list(self) -> list[Any]:
        from gorae.snapshot.types import Kind, SnapshotInfo

        return [SnapshotInfo(name=k, parent=None, kind=Kind.ACTIVE, created=0) for k in sorted(self.keys)]


class FakeMounter:
    def __init__(self) -> None:
        self.mounted: set[str] = set()

    def mount(self, mounts: list[Any], target: str) -> None:
        self.mounted.add(target)

    def unmount(self, target: str) -> None:
        self.mounted.discard(target)

    def is_mounted(self, target: str) -> bool:
        return target in self.mounted


class FakeNetworks:
    def __init__(self) -> None:
        self.sandboxes: dict[str, dict[str, Any]] = {}
        self.requests: list[EndpointRequest] = []
        self.networks = {"bridge": {"Id": "n" * 64, "Name": "bridge", "Driver": "bridge"}}

    def inspect(self, name_or_id: str) -> dict[str, Any]:
        for net in self.networks.values():
            if name_or_id in (net["Id"], net["Name"]):
                return dict(net)
        raise NotFound(f"network {name_or_id} not found")

    async def setup_container(self, request: EndpointRequest) -> ContainerNet:
        self.requests.append(request)
        settings = {"Networks": {"bridge": {"IPAddress": "172.17.0.2"}}, "Ports": {}}
        self.sandboxes[request.container_id] = settings
        return ContainerNet(
            netns_path="/run/netns/fake",
            settings=settings,
            hosts="127.0.0.1\tlocalhost\n",
            resolv_conf="nameserver 10.0.0.1\n",
        )

    def network_settings(self, container_id: str) -> dict[str, Any]:
        if container_id not in self.sandboxes:
            raise NotFound(f"no sandbox for {container_id}")
        return self.sandboxes[container_id]

    async def teardown_container(self, container_id: str, *, announce: bool = True) -> Callable[[], None]:
        self.sandboxes.pop(container_id, None)
        return lambda: None

    async def take_ports(self, container_id: str, from_id: str) -> None:
        self.sandboxes[container_id]["Ports"] = self.sandboxes[from_id].get("Ports") or {}
        self.sandboxes[from_id]["Ports"] = {}

    async def connect(self, network: str, container_id: str, **kw: Any) -> dict[str, Any]:
        return self.sandboxes[container_id]

    async def disconnect(self, network: str, container_id: str, *, force: bool = False) -> dict[str, Any]:
        return self.sandboxes[container_id]
