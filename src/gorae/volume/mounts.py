"""A container's mounts: `-v`/`Binds`, `--mount`/`Mounts`, `VolumesFrom`, image and `Config.Volumes` anonymous
volumes, and `--tmpfs`, resolved at create time into Docker's `Mounts` entries, and at start into OCI mounts.

Docker's texts are kept for bad specs ("invalid volume specification: '...'", "bind source path does not
exist", "Duplicate mount point"). A bind source given with `-v` is created if missing, as docker does; with
`--mount` it must exist. `copy_up` fills a new empty volume from the image content at its destination,
walking the rootfs without following symlinks out of it.
"""

from __future__ import annotations

import os
import posixpath
import shutil
from collections.abc import Callable
from typing import Any

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


def parse_bind(spec: str) -> dict[str, Any]:
    """One `-v` / `Binds` entry → a MountPoint dict (plus private `_` keys used at start)."""
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
        return {
            "Type": "bind",
            "Source": posixpath.normpath(src),
            "Destination": dest,
            "Mode": mode,
            "RW": rw,
            "Propagation": propagation or "rprivate",
            "_create_source": True,
        }
    dest = _check_dest(spec, dest, "volume")
    return {
        "Type": "volume",
        "Name": src,
        "Source": "",
        "Destination": dest,
        "Driver": "local",
        "Mode": mode,
        "RW": rw,
        "Propagation": "",
        "_nocopy": nocopy,
    }


def parse_mount(m: dict[str, Any]) -> dict[str, Any]:
    """One `--mount` / `HostConfig.Mounts` entry → a MountPoint dict."""
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
        return {
            "Type": "bind",
            "Source": posixpath.normpath(source),
            "Destination": dest,
            "Mode": "",
            "RW": not ro,
            "Propagation": prop,
            "_create_source": create,
        }
    if kind == "volume":
        vopts = m.get("VolumeOptions") or {}
        driver = ((vopts.get("DriverConfig") or {}).get("Name")) or "local"
        return {
            "Type": "volume",
            "Name": source,
            "Source": "",
            "Destination": dest,
            "Driver": driver,
            "Mode": "",
            "RW": not ro,
            "Propagation": "",
            "_nocopy": bool(vopts.get("NoCopy")),
            "_labels": vopts.get("Labels") or {},
            "_driver_opts": (vopts.get("DriverConfig") or {}).get("Options") or {},
        }
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
        return {
            "Type": "tmpfs",
            "Source": "",
            "Destination": dest,
            "Mode": "",
            "RW": not ro,
            "Propagation": "",
            "_tmpfs_options": opts,
        }
    raise InvalidParameter(f'mount type unknown: "{kind}"')


def resolve(
    config: dict[str, Any],
    host_config: dict[str, Any],
    image_volumes: dict[str, Any] | None,
    volumes: VolumeService,
    lookup_container: Callable[[str], dict[str, Any]],
) -> list[dict[str, Any]]:
    """All mounts of a new container, volumes created as needed. Raises InvalidParameter/NotFound, creating nothing then."""
    points: dict[str, dict[str, Any]] = {}

    def add(mp: dict[str, Any], *, override: bool = False) -> None:
        dest = mp["Destination"]
        if dest in points and not override:
            raise InvalidParameter(f"Duplicate mount point: {dest}")
        points[dest] = mp

    for spec in host_config.get("VolumesFrom") or []:
        cname, _, mode = spec.partition(":")
        if mode not in ("", "ro", "rw"):
            raise InvalidParameter(f"invalid mode for volumes-from: {mode}")
        other = lookup_container(cname)
        for mp in other.get("Mounts") or []:
            copy = {k: v for k, v in mp.items() if not k.startswith("_")}
            if mode:
                copy["RW"] = mode == "rw"
                copy["Mode"] = mode
            points[copy["Destination"]] = copy
    explicit: dict[str, dict[str, Any]] = {}
    for spec in host_config.get("Binds") or []:
        mp = parse_bind(spec)
        if mp["Destination"] in explicit:
            raise InvalidParameter(f"Duplicate mount point: {mp['Destination']}")
        explicit[mp["Destination"]] = mp
    for m in host_config.get("Mounts") or []:
        mp = parse_mount(m)
        if mp["Destination"] in explicit:
            raise InvalidParameter(f"Duplicate mount point: {mp['Destination']}")
        explicit[mp["Destination"]] = mp
    for mp in explicit.values():
        add(mp, override=True)
    for dest in list((image_volumes or {}).keys()) + list((config.get("Volumes") or {}).keys()):
        if not dest.startswith("/"):
            raise _bad(dest, "mount path must be absolute")
        dest = posixpath.normpath(dest)
        if dest in points:
            continue
        points[dest] = {
            "Type": "volume",
            "Name": "",
            "Source": "",
            "Destination": dest,
            "Driver": "local",
            "Mode": "",
            "RW": True,
            "Propagation": "",
        }
    tmpfs_dests = set((host_config.get("Tmpfs") or {}).keys())
    for dest in tmpfs_dests:
        points.pop(posixpath.normpath(dest), None)  # --tmpfs wins over an image VOLUME at the same place
    # validation done: now create what is needed
    out = []
    for mp in sorted(points.values(), key=lambda p: p["Destination"]):
        if mp["Type"] == "volume":
            if mp.get("Driver", "local") != "local":
                raise NotFound(
                    f'error looking up volume plugin {mp["Driver"]}: plugin "{mp["Driver"]}" not found'
                )
            existed = bool(mp["Name"]) and volumes.exists(mp["Name"])
            doc = volumes.create(
                mp["Name"] or None,
                "local",
                mp.pop("_labels", None),
                mp.pop("_driver_opts", None),
                anonymous=not mp["Name"],
            )
            mp["Name"] = doc["Name"]
            mp["Source"] = doc["Mountpoint"]
            mp["_fresh"] = not existed
        elif mp["Type"] == "bind" and mp.pop("_create_source", False) and not os.path.exists(mp["Source"]):
            os.makedirs(mp["Source"], exist_ok=True)
        else:
            mp.pop("_create_source", None)
        out.append(mp)
    return out


def public(mounts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Docker's `Mounts` entries of inspect (private keys dropped)."""
    return [{k: v for k, v in m.items() if not k.startswith("_")} for m in mounts]


def oci_mounts(
    mounts: list[dict[str, Any]], host_config: dict[str, Any], volumes: VolumeService
) -> list[dict[str, Any]]:
    """OCI runtime mounts for a starting container (volumes mounted through the driver)."""
    out: list[dict[str, Any]] = []
    for mp in mounts:
        if mp["Type"] == "volume":
            src = volumes.mount(mp["Name"])
            opts = ["rbind", "rw" if mp["RW"] else "ro"]
            out.append({"destination": mp["Destination"], "type": "bind", "source": src, "options": opts})
        elif mp["Type"] == "bind":
            opts = ["rbind", "rw" if mp["RW"] else "ro", mp.get("Propagation") or "rprivate"]
            out.append(
                {"destination": mp["Destination"], "type": "bind", "source": mp["Source"], "options": opts}
            )
        elif mp["Type"] == "tmpfs":
            opts = list(mp.get("_tmpfs_options") or _DEFAULT_TMPFS)
            if not mp["RW"]:
                opts.append("ro")
            out.append(
                {"destination": mp["Destination"], "type": "tmpfs", "source": "tmpfs", "options": opts}
            )
    for dest, optstr in (host_config.get("Tmpfs") or {}).items():
        opts = [o for o in (optstr or "").split(",") if o]
        if not any(o.startswith("size=") for o in opts) and not optstr:
            opts = ["rw", "noexec", "nosuid", "size=65536k"]
        out.append(
            {"destination": posixpath.normpath(dest), "type": "tmpfs", "source": "tmpfs", "options": opts}
        )
    out.sort(key=lambda m: m["destination"].count("/"))
    return out


def release(mounts: list[dict[str, Any]], volumes: VolumeService) -> None:
    for mp in mounts:
        if mp["Type"] == "volume":
            try:
                volumes.unmount(mp["Name"])
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

    Runs once, at the container's first start; it clears the `_fresh` mark of each mount it looked at.
    """
    for mp in mounts:
        fresh = mp.pop("_fresh", False)
        if mp["Type"] != "volume" or mp.get("_nocopy") or not fresh:
            continue
        src = resolve_in_root(rootfs, mp["Destination"])
        if src is None or not os.path.isdir(src) or os.path.islink(src):
            continue
        dst = mp["Source"]
        if os.listdir(dst):
            continue
        for entry in os.listdir(src):
            s = os.path.join(src, entry)
            d = os.path.join(dst, entry)
            if os.path.isdir(s) and not os.path.islink(s):
                shutil.copytree(s, d, symlinks=True)
            else:
                shutil.copy2(s, d, follow_symlinks=False)
        st = os.stat(src)
        os.chown(dst, st.st_uid, st.st_gid)
        os.chmod(dst, st.st_mode & 0o7777)
