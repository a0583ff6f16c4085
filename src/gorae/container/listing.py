"""`GET /containers/json` and prune selection: docker's summary shape and its list filters.

Owns the summary document (Id, Names, Image, ImageID, Command, Created, Ports, Labels, State, Status,
HostConfig, NetworkSettings, Mounts), the filters id/name/label/status/ancestor/exited/before/since/
network/volume/is-task with docker's error text for unknown keys, and the prune filters until/label.
Reads container records through a narrow `ContainerView`; never changes them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Protocol

from gorae.container.health import FILTER_VALUES as HEALTH_VALUES
from gorae.container.health import health_status
from gorae.container.record import Container
from gorae.container.state import Status
from gorae.errors import InvalidParameter, NotFound
from gorae.filters import Filters, label_matches


class ContainerView(Protocol):
    """What listing needs of the container service."""

    def all(self) -> list[Container]: ...

    def get(self, ref: str) -> Container: ...

    def status_text(self, ct: Container) -> str: ...

    def sizes(self, ct: Container) -> tuple[int, int]: ...


LIST_FILTERS = frozenset(
    {
        "id",
        "name",
        "label",
        "label!",
        "status",
        "ancestor",
        "exited",
        "before",
        "since",
        "network",
        "volume",
        "is-task",
        "health",
        "publish",
        "expose",
    }
)
STATUSES = frozenset(s.value for s in Status)


def command_string(path: str, args: list[str]) -> str:
    """docker's `Command` column: arguments containing spaces are single-quoted."""
    if not args:
        return path
    return path + " " + " ".join(f"'{a}'" if " " in a else a for a in args)


def shown_image(doc: dict[str, Any], resolve_image: Callable[[str], str] | None) -> str:
    """The `Image` of a summary: the name the container was created from while it still names the
    container's image, else the image ID (dockerd: a removed or re-pointed tag is not shown)."""
    image_id = str(doc.get("Image") or "")
    name = str(doc["Config"].get("Image") or "")
    if not name:
        return image_id
    if resolve_image is None or name == image_id:
        return name
    try:
        current = resolve_image(name)
    except Exception:  # NotFound: the tag is gone
        current = ""
    return name if current == image_id else image_id


def summary(
    svc: ContainerView, ct: Container, *, size: bool = False, resolve_image: Callable[[str], str] | None = None
) -> dict[str, Any]:
    doc = ct.doc
    out: dict[str, Any] = {
        "Id": ct.id,
        "Names": [ct.name],
        "Image": shown_image(doc, resolve_image),
        "ImageID": doc.get("Image"),
        "Command": command_string(doc.get("Path") or "", list(doc.get("Args") or [])),
        "Created": ct.book.created_ns // 1_000_000_000,
        "Ports": _ports((doc.get("NetworkSettings") or {}).get("Ports") or {}),
        "Labels": dict(doc["Config"].get("Labels") or {}),
        "State": ct.status.value,
        "Status": svc.status_text(ct),
        "HostConfig": {"NetworkMode": doc["HostConfig"].get("NetworkMode") or "bridge"},
        "NetworkSettings": {"Networks": dict((doc.get("NetworkSettings") or {}).get("Networks") or {})},
        "Mounts": [_mount_point(m) for m in doc.get("Mounts") or []],
    }
    if size:
        rw, root = svc.sizes(ct)
        out["SizeRw"] = rw
        out["SizeRootFs"] = root
    return out


def _ports(ports: dict[str, Any]) -> list[dict[str, Any]]:
    """docker's `Ports` of a summary: one entry per host binding, a bare one for an unpublished port."""
    out: list[dict[str, Any]] = []
    for key, bindings in ports.items():
        num, _, proto = key.partition("/")
        if not num.isdigit():
            continue
        if not bindings:
            out.append({"PrivatePort": int(num), "Type": proto or "tcp"})
            continue
        for b in bindings:
            entry: dict[str, Any] = {"IP": b.get("HostIp") or "0.0.0.0", "PrivatePort": int(num)}
            if str(b.get("HostPort") or "").isdigit():
                entry["PublicPort"] = int(b["HostPort"])
            entry["Type"] = proto or "tcp"
            out.append(entry)
    return out


def _mount_point(m: dict[str, Any]) -> dict[str, Any]:
    keys = ("Type", "Name", "Source", "Destination", "Driver", "Mode", "RW", "Propagation")
    return {k: m[k] for k in keys if k in m}


def _created_ns(ct: Container) -> int:
    return ct.book.created_ns


def list_containers(
    svc: ContainerView,
    *,
    include_stopped: bool = False,
    limit: int | None = None,
    size: bool = False,
    filters: dict[str, list[str]] | None = None,
    resolve_image: Callable[[str], str] | None = None,
) -> list[dict[str, Any]]:
    """Summaries, newest first, as docker's `GET /containers/json`."""
    filters = Filters(filters)
    filters.validate(LIST_FILTERS)
    for value in filters.get("status", []):
        if value not in STATUSES:
            raise InvalidParameter(f"invalid filter 'status={value}'")
    for value in filters.get("health", []):
        if value not in HEALTH_VALUES:
            raise InvalidParameter(f"Unrecognised filter value for health: {value}")
    exit_codes: set[int] = set()
    for value in filters.get("exited", []):
        try:
            exit_codes.add(int(value))
        except ValueError:
            raise InvalidParameter(f"invalid filter 'exited={value}'") from None
    before_ns = since_ns = None
    if "before" in filters:
        before_ns = min(_created_ns(_ref(svc, v, "before")) for v in filters["before"])
    if "since" in filters:
        since_ns = max(_created_ns(_ref(svc, v, "since")) for v in filters["since"])
    ancestors: set[str] = set()
    for value in filters.get("ancestor", []):
        ancestors.add(value)
        if resolve_image is not None:
            try:
                ancestors.add(resolve_image(value))
            except Exception:
                pass
    show_all = (
        include_stopped or (limit is not None and limit > 0) or "status" in filters or "exited" in filters
    )
    items = sorted(svc.all(), key=_created_ns, reverse=True)
    out: list[dict[str, Any]] = []
    for ct in items:
        st = ct.status.value
        if not show_all and st not in ("running", "paused", "restarting"):
            continue
        if "id" in filters and not any(ct.id.startswith(v) for v in filters["id"]):
            continue
        if "name" in filters and not any(_name_match(ct.name, v) for v in filters["name"]):
            continue
        labels = ct.doc["Config"].get("Labels") or {}
        if not filters.match_labels(labels):
            continue
        if any(label_matches(labels, v) for v in filters.get("label!")):
            continue
        if "status" in filters and st not in filters["status"]:
            continue
        if exit_codes and (st != "exited" or int(ct.state.get("ExitCode") or 0) not in exit_codes):
            continue
        if before_ns is not None and _created_ns(ct) >= before_ns:
            continue
        if since_ns is not None and _created_ns(ct) <= since_ns:
            continue
        if ancestors and not (
            ct.doc.get("Image") in ancestors
            or (ct.doc["Config"].get("Image") or "") in ancestors
            or _strip_latest(ct.doc["Config"].get("Image") or "") in {_strip_latest(a) for a in ancestors}
        ):
            continue
        if "is-task" in filters and "true" in filters["is-task"]:
            continue
        if "network" in filters:
            nets = set((ct.doc.get("NetworkSettings") or {}).get("Networks") or {})
            mode = ct.doc["HostConfig"].get("NetworkMode") or ""
            if not any(v in nets or v == mode for v in filters["network"]):
                continue
        if "volume" in filters:
            mounts = ct.doc.get("Mounts") or []
            if not any(
                v == m.get("Name") or v == m.get("Destination") or v == m.get("Source")
                for m in mounts
                for v in filters["volume"]
            ):
                continue
        if "health" in filters and health_status(ct.state) not in filters["health"]:
            continue
        out.append(summary(svc, ct, size=size, resolve_image=resolve_image))
        if limit is not None and limit > 0 and len(out) >= limit:
            break
    return out


def _strip_latest(ref: str) -> str:
    return ref[: -len(":latest")] if ref.endswith(":latest") else ref


def _name_match(name: str, pattern: str) -> bool:
    bare = name.lstrip("/")
    try:
        return re.search(pattern, bare) is not None or re.search(pattern, name) is not None
    except re.error:
        return pattern in bare


def _ref(svc: ContainerView, ref: str, key: str) -> Container:
    try:
        return svc.get(ref)
    except NotFound:
        raise NotFound(f"No such container: {ref}") from None


def prune_matches(ct: Container, filters: dict[str, list[str]]) -> bool:
    """`until` (values already in unix nanoseconds, converted by the API) and `label`/`label!`."""
    f = Filters(filters)
    f.validate(("until", "label", "label!"))
    labels = ct.doc["Config"].get("Labels") or {}
    for value in f.get("until"):
        if _created_ns(ct) >= int(value):
            return False
    if not f.match_labels(labels):
        return False
    return not any(label_matches(labels, v) for v in f.get("label!"))
