"""Archive I/O: the only code that writes tar content to disk (layers, `docker cp`) and that turns
directories into tars (export, commit, `docker cp` out, `docker diff`).

Modules: `names` (cleaning, whiteout vocabulary), `inroot` (fd-relative in-root path resolution, through
the mounts of a root: `MountSpec`),
`streams` (compression sniffing, digest, size cap), `chunks` (the forward-only reader apply parses),
`apply` (apply_layer, apply_tar, extract_to), `tarwriter` and
`export` (tar_dir, tar_overlay_diff, tar_path), `pathstat` (stat_path, PathStat), `changes`
(overlay_changes). Nothing here speaks HTTP or knows about containers or images.
"""

from gorae.archive.apply import ApplyResult, apply_layer, apply_tar, extract_to
from gorae.archive.changes import init_artifacts, overlay_changes
from gorae.archive.export import tar_dir, tar_overlay_diff, tar_path
from gorae.archive.inroot import MountSpec
from gorae.archive.pathstat import PathStat, check_writable, stat_path
from gorae.archive.streams import DEFAULT_MAX

__all__ = [
    "DEFAULT_MAX",
    "ApplyResult",
    "MountSpec",
    "PathStat",
    "apply_layer",
    "apply_tar",
    "check_writable",
    "extract_to",
    "init_artifacts",
    "overlay_changes",
    "stat_path",
    "tar_dir",
    "tar_overlay_diff",
    "tar_path",
]
