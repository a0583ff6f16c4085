"""Resolving Docker's `User` ("name", "uid", "uid:gid", "name:group") against a rootfs's /etc/passwd
and /etc/group, as runc's libcontainer/user does for Docker.

Owns parsing of passwd/group content; reads the files only through `rootfs_files` (never follows a
symlink out of the rootfs).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from gorae.errors import InvalidParameter
from gorae.runtime.rootfs_files import read_in_root


@dataclass
class ExecUser:
    uid: int
    gid: int
    home: str = "/"
    additional_gids: list[int] = field(default_factory=list)


@dataclass
class _Passwd:
    name: str
    uid: int
    gid: int
    home: str


@dataclass
class _Group:
    name: str
    gid: int
    members: list[str]


def _int(s: str) -> int | None:
    s = s.strip()
    if s.isdigit():
        v = int(s)
        return v if v < 2**32 - 1 else None
    return None


def _entries(data: bytes, min_fields: int) -> Iterator[list[str]]:
    """The colon-separated fields of each line of an /etc/passwd or /etc/group file with at least
    `min_fields` of them (blank and # lines skipped)."""
    for raw in data.decode("utf-8", "replace").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            f = line.split(":")
            if len(f) >= min_fields:
                yield f


def parse_passwd(data: bytes) -> list[_Passwd]:
    out: list[_Passwd] = []
    for f in _entries(data, 4):
        uid, gid = _int(f[2]), _int(f[3])
        if uid is None or gid is None:
            continue
        out.append(_Passwd(f[0], uid, gid, f[5] if len(f) > 5 and f[5] else "/"))
    return out


def parse_group(data: bytes) -> list[_Group]:
    out: list[_Group] = []
    for f in _entries(data, 3):
        gid = _int(f[2])
        if gid is None:
            continue
        members = [m.strip() for m in f[3].split(",") if m.strip()] if len(f) > 3 else []
        out.append(_Group(f[0], gid, members))
    return out


def resolve_user(rootfs: str, user: str | None, group_add: list[str] | None = None) -> ExecUser:
    """Docker's semantics: a numeric uid need not exist; a name must. Default gid is the passwd
    entry's (or 0); supplementary groups are the primary gid, the /etc/group entries listing the user
    name, and `group_add` (HostConfig.GroupAdd: names or numbers)."""
    spec = (user or "").strip()
    user_part, _, group_part = spec.partition(":")
    passwd = parse_passwd(read_in_root(rootfs, "/etc/passwd") or b"")
    groups = parse_group(read_in_root(rootfs, "/etc/group") or b"")

    if user_part == "":
        user_part = "0"
    uid_num = _int(user_part)
    entry = next(
        (p for p in passwd if (uid_num is not None and p.uid == uid_num) or p.name == user_part),
        None,
    )
    if entry is None and uid_num is None:
        raise InvalidParameter(f"unable to find user {user_part}: no matching entries in passwd file")
    if entry is not None:
        result = ExecUser(entry.uid, entry.gid, entry.home)
        name = entry.name
    else:
        assert uid_num is not None
        result = ExecUser(uid_num, 0, "/")
        name = None

    if group_part:
        gid_num = _int(group_part)
        if gid_num is not None:
            result.gid = gid_num
        else:
            g = next((g for g in groups if g.name == group_part), None)
            if g is None:
                raise InvalidParameter(
                    f"unable to find group {group_part}: no matching entries in group file"
                )
            result.gid = g.gid
    # moby's getUser: the primary gid leads the supplementary groups, then the user's /etc/group
    # memberships (only in the implicit "user" form), then GroupAdd
    result.additional_gids = [result.gid]
    if not group_part and name is not None:
        result.additional_gids += [g.gid for g in groups if name in g.members and g.gid != result.gid]

    for extra in group_add or []:
        gid_num = _int(extra)
        if gid_num is None:
            g = next((g for g in groups if g.name == extra), None)
            if g is None:
                raise InvalidParameter(f"Unable to find group {extra}: no matching entries in group file")
            gid_num = g.gid
        if gid_num not in result.additional_gids:
            result.additional_gids.append(gid_num)
    return result
