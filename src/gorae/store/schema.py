"""The catalogue of metadata kinds: every kind of document gorae keeps, its owner and its record shape (a leaf).

`MetadataStore` (metadata.py) stores JSON documents by (kind, id). This module is the one list of those
kinds, in the manner of containerd's core/metadata/buckets.go: a kind has exactly one owner package, the
only code that writes it; everyone else reads through the owner's service. Code names a kind by the
constant below, never by a string literal. `version` is the record version of the document shape: bump it
(and teach the owner's `from_doc` to read the older shape) when a field changes meaning or goes away;
adding an optional field is not a change.

    gorae.db  (MetadataStore at <data-root>/gorae.db)
    ├── docs (kind, id, name, doc)
    │   ├── container   id = container ID (64 hex); name = canonical "/name"     owner: container/repository
    │   │                 Docker's inspect shape (Id, Created, Path, Args, State{...}, Image, Name, HostConfig,
    │   │                 Config, Mounts, NetworkSettings, ...) plus "_gorae": gorae's bookkeeping
    │   │                 {CreatedNs, StartedNs, FinishedNs, ManuallyStopped, StartedBefore, RestartDelay,
    │   │                 Snapshot, CgroupsPath, ImageRef, Mounts (volume.mounts records), EndpointsConfig,
    │   │                 NetnsPath, LinkEnv, PendingExit}
    │   ├── image       id = image ID "sha256:<hex of the config bytes>"        owner: image/store
    │   │                 {Id, Parent, LastTagTime (RFC 3339), LayerSizes [int per diff_id]};
    │   │                 the config bytes themselves are the content blob of the same digest
    │   ├── ref         id = docker's familiar form ("busybox:latest", "x/y@sha256:...") owner: image/store
    │   │                 {image: image ID, name: the fully qualified reference}
    │   ├── layer       id = chain ID                                            owner: image/store
    │   │                 {ChainID, DiffID, Parent (chain ID or null), Size}; the uncompressed tar is the
    │   │                 content blob named by DiffID, the files the committed snapshot named by ChainID
    │   ├── v2meta      id = diff_id of a layer                                  owner: distribution/metadata
    │   │                 {DiffID, Sources [{Digest (compressed blob), SourceRepository (full name)}]}:
    │   │                 where a layer was pulled from or pushed to (dockerd's v2 metadata)
    │   ├── volume      id = name = volume name                                  owner: volume/local
    │   │                 {CreatedAt, Driver, Labels, Mountpoint, Name, Options, Scope}
    │   ├── network     id = network ID; name = network name                     owner: network/state
    │   │                 Docker's network inspect shape (Id, Name, Driver, IPAM, Options, Labels, ...)
    │   ├── endpoint    id = endpoint ID                                         owner: network/state
    │   │                 {id, container_id, container_name, network_id, ip, prefixlen, mac, gateway,
    │   │                 aliases, dns_names, ifname, veth, ipam_config}
    │   ├── netsandbox  id = container ID                                        owner: network/state
    │   │                 {container_id, name, mode, netns_path, endpoints [endpoint IDs], ports, ...}
    │   └── ipam        id = network ID                                          owner: network/ipam
    │                     {subnet, range, gateway, allocated {address: owner}, last}
    └── events (seq, time_nano, doc)                                             owner: gorae/events
                      Docker's event shape (Type, Action, Actor, scope, time, timeNano); the newest
                      EVENTS_KEPT are kept. Not a kind: `MetadataStore.add_event`/`events_since`.

    snapshots.db  (a second MetadataStore at <data-root>/overlay/snapshots.db)
    └── docs
        ├── snapshot    id = snapshot key                                        owner: snapshot/overlay
        │                 {id (directory number), parent (key or null), kind, created (ns), usage}
        └── counter     id = "next"                                              owner: snapshot/overlay
                          {n: the next directory number}

Execs are not persisted: they live in the exec service's memory and die with the daemon.
"""

from __future__ import annotations

from dataclasses import dataclass

CONTAINER = "container"
IMAGE = "image"
REF = "ref"
LAYER = "layer"
VOLUME = "volume"
NETWORK = "network"
ENDPOINT = "endpoint"
NETSANDBOX = "netsandbox"
IPAM = "ipam"
SNAPSHOT = "snapshot"
V2META = "v2meta"
SNAPSHOT_COUNTER = "counter"


@dataclass(frozen=True)
class Kind:
    """One kind of document: its name, the package that alone writes it, the database file it lives in,
    the record version of its shape and a one-line description of the shape."""

    name: str
    owner: str
    database: str
    version: int
    shape: str


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            CONTAINER, "gorae.container.repository", "gorae.db", 1, "Docker inspect shape + _gorae bookkeeping"
        ),
        Kind(IMAGE, "gorae.image.store", "gorae.db", 1, "{Id, Parent, LastTagTime, LayerSizes}"),
        Kind(REF, "gorae.image.store", "gorae.db", 1, "{image, name}"),
        Kind(LAYER, "gorae.image.store", "gorae.db", 1, "{ChainID, DiffID, Parent, Size, TarBlob?, TarCompression?, TarSize?}"),
        Kind(V2META, "gorae.distribution.metadata", "gorae.db", 1, "{DiffID, Sources [{Digest, SourceRepository}]}"),
        Kind(VOLUME, "gorae.volume.local", "gorae.db", 1, "Docker volume inspect shape"),
        Kind(NETWORK, "gorae.network.state", "gorae.db", 1, "Docker network inspect shape"),
        Kind(
            ENDPOINT, "gorae.network.state", "gorae.db", 1, "{id, container_id, network_id, ip, mac, ...}"
        ),
        Kind(
            NETSANDBOX,
            "gorae.network.state",
            "gorae.db",
            1,
            "{container_id, mode, netns_path, endpoints, ...}",
        ),
        Kind(IPAM, "gorae.network.ipam", "gorae.db", 1, "{subnet, range, gateway, allocated, last}"),
        Kind(SNAPSHOT, "gorae.snapshot.overlay", "snapshots.db", 1, "{id, parent, kind, created, usage}"),
        Kind(SNAPSHOT_COUNTER, "gorae.snapshot.overlay", "snapshots.db", 1, "{n}"),
    )
}
