"""A container's mounts: `-v`/`Binds`, `--mount`/`Mounts`, `VolumesFrom`, image and `Config.Volumes` anonymous
volumes, and `--tmpfs`, resolved at create time into Docker's `Mounts` entries, and at start into OCI mounts.

Docker's texts are kept for bad specs ("invalid volume specification: '...'", "bind source path does not
exist", "Duplicate mount point"). A bind source given with `-v` is created if missing, as docker does; with
`--mount` it must exist. `copy_up` fills a new empty volume from the image content at its destination,
walking the rootfs without following symlinks out of it.

A mount is a typed `MountPoint`; `to_docker()` is its `Mounts` entry in Docker's shape and `to_record()`
the form kept in the container record (the Docker keys plus gorae's facts as `_`-prefixed keys, which is
how records written by earlier versions look; `from_record` reads both). The record-level functions
(`resolve`, `public`, `oci_mounts`, `release`, `copy_up`) take and give those records.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gorae.archive.tree import copy_tree
from gorae.errors import InvalidParameter, NotFound
from gorae.volume.local import VolumeService

_PROPAGATIONS = {"shared", "slave", "private", "rshared", "rslave", "rprivate"}
_DEFAULT_TMPFS = ["nosuid", "nodev", "noexec"]


def _bad(spec: str, why: str = "") -> InvalidParameter:
    return InvalidParameter(f"invalid volume specification: '{spec}'" + (f": {why}" if why else ""))


def _check_dest(spec: str, dest: str, kind: str) -> str:
    if not dest.startswith("/"):
        raise _bad(
            spec,
            f"invalid mount config for type \"{kind}\": invalid mount path: '{dest}' mount path must be absolute",
        )
    clean = posixpath.normpath(dest)
    if clean == "/":
        raise _bad(
            spec, f"invalid mount config for type \"{kind}\": invalid specification: destination can't be '/'"
        )
    return clean


@dataclass
class MountPoint:
    """One mount of a container. `fresh`: a volume created for this container and not yet filled from
    the image (copy-up at first start); `anonymous`: a volume made without a name;
    `create_source`: make a missing bind source (`-v`); `labels`/`driver_opts`: for creating the volume."""

    type: str
    destination: str
    source: str = ""
    name: str = ""
    driver: str = "local"
    mode: str = ""
    rw: bool = True
    propagation: str = ""
    create_source: bool = False
    nocopy: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    driver_opts: dict[str, str] = field(default_factory=dict)
    tmpfs_options: list[str] | None = None
    fresh: bool = False
    anonymous: bool = False

    def to_docker(self) -> dict[str, Any]:
        """The `Mounts` entry of container inspect."""
        if self.type == "volume":
            return {
                "Type": "volume",
                "Name": self.name,
                "Source": self.source,
                "Destination": self.destination,
                "Driver": self.driver,
                "Mode": self.mode,
                "RW": self.rw,
                "Propagation": self.propagation,
            }
        return {
            "Type": self.type,
            "Source": self.source,
            "Destination": self.destination,
            "Mode": self.mode,
            "RW": self.rw,
            "Propagation": self.propagation,
        }

    def to_record(self) -> dict[str, Any]:
        """The form kept in the container record."""
        rec = self.to_docker()
        if self.type == "volume":
            rec["_nocopy"] = self.nocopy
            rec["_fresh"] = self.fresh
            if self.anonymous:
                rec["_anonymous"] = True
        elif self.type == "tmpfs" and self.tmpfs_options is not None:
            rec["_tmpfs_options"] = list(self.tmpfs_options)
        return rec

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> MountPoint:
        """From a record (or a bare Docker `Mounts` entry, private facts then at their defaults)."""
        opts = rec.get("_tmpfs_options")
        return cls(
            type=str(rec.get("Type") or ""),
            destination=str(rec.get("Destination") or ""),
            source=str(rec.get("Source") or ""),
            name=str(rec.get("Name") or ""),
            driver=str(rec.get("Driver") or "local"),
            mode=str(rec.get("Mode") or ""),
            rw=bool(rec.get("RW", True)),
            propagation=str(rec.get("Propagation") or ""),
            create_source=bool(rec.get("_create_source")),
            nocopy=bool(rec.get("_nocopy")),
            labels=dict(rec.get("_labels") or {}),
            driver_opts=dict(rec.get("_driver_opts") or {}),
            tmpfs_options=list(opts) if opts is not None else None,
            fresh=bool(rec.get("_fresh")),
            anonymous=bool(rec.get("_anonymous")),
        )


def parse_bind(spec: str) -> MountPoint:
    """One `-v` / `Binds` entry."""
    parts = spec.split(":")
    if len(parts) == 1 or len(parts) > 3 or any(p == "" for p in parts):
        raise _bad(spec)
    src, dest = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else ""
    rw = True
    propagation = ""
    nocopy = False
    for opt in filter(None, mode.split(",")):
        if opt in ("ro", "rw"):
            rw = opt == "rw"
        elif opt in ("z", "Z"):
            pass
        elif opt in _PROPAGATIONS:
            propagation = opt
        elif opt == "nocopy":
            nocopy = True
        else:
            raise _bad(spec)
    if src.startswith("/"):
        dest = _check_dest(spec, dest, "bind")
        return MountPoint(
            "bind",
            dest,
            source=posixpath.normpath(src),
            mode=mode,
            rw=rw,
            propagation=propagation or "rprivate",
            create_source=True,
        )
    dest = _check_dest(spec, dest, "volume")
    return MountPoint("volume", dest, name=src, mode=mode, rw=rw, nocopy=nocopy)


def parse_mount(m: dict[str, Any]) -> MountPoint:
    """One `--mount` / `HostConfig.Mounts` entry."""
    if not isinstance(m, dict):
        raise InvalidParameter("invalid mount config: not an object")
    kind = m.get("Type") or "volume"
    target = m.get("Target") or m.get("Destination") or ""
    source = m.get("Source") or ""
    ro = bool(m.get("ReadOnly"))
    if not target:
        raise InvalidParameter(f'invalid mount config for type "{kind}": field Target must not be empty')
    dest = _check_dest(target, target, kind)
    if kind == "bind":
        if not source:
            raise InvalidParameter('invalid mount config for type "bind": field Source must not be empty')
        if not source.startswith("/"):
            raise InvalidParameter(
                f"invalid mount config for type \"bind\": invalid mount path: '{source}' mount path must be absolute"
            )
        bind_opts = m.get("BindOptions") or {}
        create = bool(bind_opts.get("CreateMountpoint"))
        if not create and not os.path.exists(source):
            raise InvalidParameter(
                f'invalid mount config for type "bind": bind source path does not exist: {source}'
            )
        prop = bind_opts.get("Propagation") or "rprivate"
        if prop not in _PROPAGATIONS:
            raise InvalidParameter(f"invalid propagation mode: {prop}")
        return MountPoint(
            "bind", dest, source=posixpath.normpath(source), rw=not ro, propagation=prop, create_source=create
        )
    if kind == "volume":
        vopts = m.get("VolumeOptions") or {}
        driver_config = vopts.get("DriverConfig") or {}
        return MountPoint(
            "volume",
            dest,
            name=source,
            driver=driver_config.get("Name") or "local",
            rw=not ro,
            nocopy=bool(vopts.get("NoCopy")),
            labels=dict(vopts.get("Labels") or {}),
            driver_opts=dict(driver_config.get("Options") or {}),
        )
    if kind == "tmpfs":
        if source:
            raise InvalidParameter(
                'invalid mount config for type "tmpfs": field Source must not be specified'
            )
        t = m.get("TmpfsOptions") or {}
        opts = list(_DEFAULT_TMPFS)
        if t.get("SizeBytes"):
            opts.append(f"size={int(t['SizeBytes'])}")
        if t.get("Mode"):
            opts.append(f"mode={int(t['Mode']):o}")
        return MountPoint("tmpfs", dest, rw=not ro, tmpfs_options=opts)
    raise InvalidParameter(f'invalid mount config for type "{kind}": mount type unknown')


def resolve_points(
    config: dict[str, Any],
    host_config: dict[str, Any],
    image_volumes: dict[str, Any] | None,
    volumes: VolumeService,
    lookup_container: Callable[[str], dict[str, Any]],
) -> list[MountPoint]:
    """All mounts of a new container, volumes created as needed, sorted by destination.
    Raises InvalidParameter/NotFound, creating nothing then. `lookup_container(ref)` gives another
    container's {"Mounts": records} for `VolumesFrom`."""
    points: dict[str, MountPoint] = {}
    for spec in host_config.get("VolumesFrom") or []:
        cname, _, mode = spec.partition(":")
        if mode not in ("", "ro", "rw"):
            raise InvalidParameter(f"invalid mode for volumes-from: {mode}")
        try:
            other = lookup_container(cname)
        except NotFound as e:  # not a 404: the docker CLI would take it for a missing image and pull
            raise InvalidParameter(e.message) from None
        for rec in other.get("Mounts") or []:
            copy = MountPoint.from_record({k: v for k, v in rec.items() if not k.startswith("_")})
            if mode:
                copy.rw = mode == "rw"
                copy.mode = mode
            points[copy.destination] = copy
    explicit: dict[str, MountPoint] = {}

    def add_explicit(mp: MountPoint) -> None:
        if mp.destination in explicit:
            raise InvalidParameter(f"Duplicate mount point: {mp.destination}")
        explicit[mp.destination] = mp

    for spec in host_config.get("Binds") or []:
        add_explicit(parse_bind(spec))
    for m in host_config.get("Mounts") or []:
        add_explicit(parse_mount(m))
    points.update(explicit)
    for dest in list((image_volumes or {}).keys()) + list((config.get("Volumes") or {}).keys()):
        if not dest.startswith("/"):
            raise _bad(dest, "mount path must be absolute")
        dest = posixpath.normpath(dest)
        if dest not in points:
            points[dest] = MountPoint("volume", dest)
    for dest in (host_config.get("Tmpfs") or {}).keys():
        points.pop(posixpath.normpath(dest), None)  # --tmpfs wins over an image VOLUME at the same place
    # validation done: now create what is needed
    out = sorted(points.values(), key=lambda p: p.destination)
    for mp in out:
        if mp.type == "volume":
            if mp.driver != "local":
                raise NotFound(f'error looking up volume plugin {mp.driver}: plugin "{mp.driver}" not found')
            existed = bool(mp.name) and volumes.exists(mp.name)
            mp.anonymous = not mp.name
            doc = volumes.create(mp.name or None, "local", mp.labels, mp.driver_opts, anonymous=mp.anonymous)
            mp.name = doc["Name"]
            mp.source = doc["Mountpoint"]
            mp.fresh = not existed
        elif mp.type == "bind" and mp.create_source and not os.path.exists(mp.source):
            os.makedirs(mp.source, exist_ok=True)
        mp.create_source = False
        mp.labels, mp.driver_opts = {}, {}
    return out


def resolve(
    config: dict[str, Any],
    host_config: dict[str, Any],
    image_volumes: dict[str, Any] | None,
    volumes: VolumeService,
    lookup_container: Callable[[str], dict[str, Any]],
) -> list[dict[str, Any]]:
    """`resolve_points` as records (see `MountPoint.to_record`)."""
    points = resolve_points(config, host_config, image_volumes, volumes, lookup_container)
    return [mp.to_record() for mp in points]


def public(mounts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Docker's `Mounts` entries of inspect, from records."""
    return [MountPoint.from_record(m).to_docker() for m in mounts]


def oci_mounts(
    mounts: list[dict[str, Any]], host_config: dict[str, Any], volumes: VolumeService
) -> list[dict[str, Any]]:
    """OCI runtime mounts for a starting container, from its records (volumes mounted through the driver)."""
    out: list[dict[str, Any]] = []
    for mp in map(MountPoint.from_record, mounts):
        if mp.type == "volume":
            src = volumes.mount(mp.name)
            opts = ["rbind", "rw" if mp.rw else "ro"]
            out.append({"destination": mp.destination, "type": "bind", "source": src, "options": opts})
        elif mp.type == "bind":
            opts = ["rbind", "rw" if mp.rw else "ro", mp.propagation or "rprivate"]
            out.append({"destination": mp.destination, "type": "bind", "source": mp.source, "options": opts})
        elif mp.type == "tmpfs":
            opts = list(mp.tmpfs_options or _DEFAULT_TMPFS)
            if not mp.rw:
                opts.append("ro")
            out.append({"destination": mp.destination, "type": "tmpfs", "source": "tmpfs", "options": opts})
    # HostConfig.Tmpfs (`--tmpfs`) is not here: the runtime spec mounts it, once (runtime/spec.py)
    out.sort(key=lambda m: m["destination"].count("/"))
    return out


def hold(mounts: list[dict[str, Any]], volumes: VolumeService) -> None:
    """Mount the volumes of a container for a while (docker cp of a stopped one): one reference each,
    given back by `release`; a volume with driver options is mounted on its first reference."""
    held: list[str] = []
    try:
        for mp in map(MountPoint.from_record, mounts):
            if mp.type == "volume":
                volumes.mount(mp.name)
                held.append(mp.name)
    except BaseException:
        for name in held:
            with contextlib.suppress(NotFound):
                volumes.unmount(name)
        raise


def release(mounts: list[dict[str, Any]], volumes: VolumeService) -> None:
    """Unmount the volumes of a stopped container (its records)."""
    for mp in map(MountPoint.from_record, mounts):
        if mp.type == "volume":
            try:
                volumes.unmount(mp.name)
            except NotFound:
                pass


def resolve_in_root(root: str, path: str, max_links: int = 40) -> str | None:
    """The host path of `path` inside `root`, following symlinks as if `root` were `/`; None if it does not exist."""
    parts = [p for p in path.split("/") if p and p != "."]
    cur = root
    links = 0
    while parts:
        p = parts.pop(0)
        if p == "..":
            cur = os.path.dirname(cur) if cur != root else root
            if not (cur + "/").startswith(root.rstrip("/") + "/"):
                cur = root
            continue
        nxt = os.path.join(cur, p)
        if os.path.islink(nxt):
            links += 1
            if links > max_links:
                return None
            target = os.readlink(nxt)
            if target.startswith("/"):
                cur = root
            parts = [x for x in target.split("/") if x and x != "."] + parts
            continue
        if not os.path.lexists(nxt):
            return None
        cur = nxt
    return cur


def copy_up(rootfs: str, mounts: list[dict[str, Any]]) -> None:
    """Fill each freshly created, empty volume from the image content at its destination (docker's copy-up).

    Runs once, at the container's first start; it clears the `_fresh` mark of each record it looked at.
    The image decides what is copied, so the copy is `archive.tree.copy_tree`: a device node in an image
    is recreated in the volume, never opened (opening it would copy the *host's* device).
    """
    for rec in mounts:
        mp = MountPoint.from_record(rec)
        rec.pop("_fresh", None)
        if mp.type != "volume" or mp.nocopy or not mp.fresh:
            continue
        src = resolve_in_root(rootfs, mp.destination)
        if src is None or not os.path.isdir(src) or os.path.islink(src):
            continue
        dst = mp.source
        if os.listdir(dst):
            continue
        # owners, modes, hardlinks and xattrs kept; device nodes and fifos recreated, never opened; any depth
        copy_tree(src, dst)
        st = os.stat(src)
        os.chown(dst, st.st_uid, st.st_gid)
        os.chmod(dst, st.st_mode & 0o7777)
