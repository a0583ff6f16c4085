"""The narrow interfaces the container package consumes, one per collaborator.

The composition root hands the container services objects that satisfy these (the metadata store, the
image service, the overlay snapshotter, the volume mounts adapter, the network service, the runtime);
tests hand in fakes. Nothing in gorae/container/ depends on a concrete collaborator class. The runtime's
own protocol lives in gorae/runtime/types.py.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Collection, Iterable
from typing import Any, Protocol

from gorae.events import Publisher
from gorae.network.types import ContainerNet, EndpointRequest
from gorae.snapshot.types import Mount, SnapshotInfo

EventSink = Publisher


class RecordStore(Protocol):
    """Persistence of container records (the metadata store, kind "container")."""

    def put(self, kind: str, id: str, doc: dict[str, Any], *, name: str | None = None) -> None: ...

    def list(self, kind: str) -> list[dict[str, Any]]: ...

    def delete(self, kind: str, id: str) -> None: ...


class ImageRecord(Protocol):
    @property
    def id(self) -> str: ...


class ImageResolver(Protocol):
    """The image service, as far as containers use it."""

    def resolve(self, ref_or_id: str) -> Any: ...  # an ImageRecord; NotFound "No such image: ..."

    def inspect(self, ref_or_id: str) -> dict[str, Any]: ...

    def top_layer_chain_id(self, image: Any) -> str | None: ...

    def commit(
        self,
        container: dict[str, Any],
        upper_dir: str,
        repo_tag: str | None = None,
        author: str = "",
        comment: str = "",
        changes: list[str] | None = None,
        pause: bool = True,
        exclude: Collection[str] = (),
    ) -> str: ...


class RootfsProvider(Protocol):
    """The snapshotter: a container's writable layer on its image's layers."""

    def prepare(self, key: str, parent: str | None) -> list[Mount]: ...

    def mounts(self, key: str) -> list[Mount]: ...

    def remove(self, key: str) -> None: ...

    def upper_dir(self, key: str) -> str: ...

    def lower_dirs(self, key: str) -> list[str]: ...

    def usage(self, key: str) -> int: ...

    def list(self) -> builtins.list[SnapshotInfo]: ...


class Mounter(Protocol):
    """Puts a snapshot's mount specs on a host directory (the host's mount table, or a test double)."""

    def mount(self, mounts: list[Mount], target: str) -> None: ...

    def unmount(self, target: str) -> None: ...

    def is_mounted(self, target: str) -> bool: ...


class MountResolver(Protocol):
    """Volumes and binds of a container (container/mounts.py adapts the volume service)."""

    def resolve(
        self,
        config: dict[str, Any],
        host_config: dict[str, Any],
        image_volumes: dict[str, Any] | None,
        lookup_container: Callable[[str], dict[str, Any]],
    ) -> list[dict[str, Any]]:
        """The private mount list of a new container (volumes created as needed)."""
        ...

    def public(self, mounts: list[dict[str, Any]]) -> list[dict[str, Any]]: ...

    def copy_up(self, rootfs: str, mounts: list[dict[str, Any]]) -> None: ...

    def oci_mounts(
        self, mounts: list[dict[str, Any]], host_config: dict[str, Any]
    ) -> list[dict[str, Any]]: ...

    def hold(self, mounts: list[dict[str, Any]]) -> None:
        """Mount the volumes among `mounts` (one reference each) until `release`."""
        ...

    def release(self, mounts: list[dict[str, Any]]) -> None: ...

    def remove_anonymous(self, mounts: list[dict[str, Any]]) -> None:
        """Remove the anonymous volumes among `mounts` (docker rm -v)."""
        ...


class NetworkAttacher(Protocol):
    """The network service, as container/networking.py calls it (and nothing else in this package)."""

    def inspect(self, name_or_id: str) -> dict[str, Any]: ...

    async def setup_container(self, request: EndpointRequest) -> ContainerNet: ...

    def network_settings(self, container_id: str) -> dict[str, Any]: ...

    async def teardown_container(self, container_id: str, *, announce: bool = True) -> Callable[[], None]:
        """Release the sandbox; with announce=False its `disconnect` events wait for the returned call."""
        ...

    async def take_ports(self, container_id: str, from_id: str) -> None: ...

    async def connect(
        self,
        network: str,
        container_id: str,
        *,
        ipv4_address: str | None = None,
        ipv6_address: str | None = None,
        aliases: Iterable[str] = (),
        links: Iterable[str] = (),
        driver_opts: dict[str, str] | None = None,
    ) -> dict[str, Any]: ...

    async def disconnect(self, network: str, container_id: str, *, force: bool = False) -> dict[str, Any]: ...

    def container_files(self, container_id: str) -> tuple[str, str]:
        """The /etc/hosts and /etc/resolv.conf content of a container with a live sandbox, as of now."""
        ...
