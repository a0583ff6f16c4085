"""Tar entry names and whiteout markers: pure string work, no filesystem access.

Owns the lexical cleaning of archive names (every name is taken as if rooted at `/`, so `..` can never
climb above the root of the extraction) and the whiteout vocabulary of OCI/Docker layers. Must never
touch the disk: resolving a cleaned name against a real directory is `inroot`'s job.
"""

from __future__ import annotations

from gorae.errors import InvalidParameter

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
# xattrs that belong to overlayfs itself: never taken from an archive, never written into one
OVERLAY_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.")


def clean_parts(name: str) -> list[str]:
    """The components of `name` cleaned as if it were rooted at `/` (Go's filepath.Clean("/" + name)).

    `.` and empty components vanish and `..` pops a component but never goes above the root, so the
    result only ever names something inside the root. `[]` means the root itself.
    """
    if "\x00" in name:
        raise InvalidParameter(f"invalid archive entry name {name!r}: contains a NUL byte")
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return parts


def whiteout_target(base: str) -> str:
    """The name a whiteout entry `.wh.NAME` hides; refuses the names that would reach outside its dir."""
    target = base[len(WHITEOUT_PREFIX) :]
    if target in ("", ".", "..") or "/" in target:
        raise InvalidParameter(f"invalid whiteout entry {base!r}: it must name an entry of its own directory")
    return target
