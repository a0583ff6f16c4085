"""`gorae registry gc`: mark and sweep of the registry's storage (distribution's garbage-collect), through the
StorageDriver protocol only, so it runs the same on the filesystem and on S3.

Mark: one walk of `repositories/` finds every repository's manifest revisions, tags and layer links. The
manifests kept are every revision (by default) or, with `delete_untagged`, those a tag points at plus, to a
fixed point, the children of a kept index and the referrers (OCI `subject`) of a kept manifest. A kept
manifest marks its own blob, its config, its layers (and `blobs`/`fsLayers` of artifact and schema 1
manifests) and its children, which are manifests of the same repository. With `delete_untagged`, every other
manifest is eligible for deletion: its revision (and referrer link) is removed, so its blobs are unmarked and
swept in the same run.

Sweep: one walk of `blobs/`; a blob no kept manifest reaches is eligible for deletion: its directory and the
layer links to it are removed (distribution 2.8 leaves those links dangling; otherwise the storage after a gc
is the same as after its `garbage-collect`, tests/compat/test_registry_gc_reference.py). `dry_run` reports the same and changes nothing. Upload directories are left
alone (they are not blobs).

Safety (a push racing the gc; distribution requires the registry read-only meanwhile, this gc does not):
T0 is when the mark starts, read from the storage's own clock (the mtime of a marker the gc writes under
`/docker/registry/v2/_gc/`; the local clock in a dry run). With `grace` (default an hour):
  1. A blob whose data was written after T0 - grace is never swept: the layers of a push whose manifest has
     not arrived yet (a push taking longer than `grace` between its first layer and its manifest is not
     covered by this rule).
  2. An untagged manifest whose revision link was written after T0 - grace is kept (a push writes the
     revision link before the tag link). After the sweep list is made and before anything is deleted, a
     second walk of `repositories/` marks from every revision link, tag link and layer link written after
     T0 - grace: a manifest pushed (or a blob mounted or re-linked) while the gc ran keeps its blobs.
  3. Left uncovered: a manifest PUT that lands between that second walk and the deletions and names a blob
     older than the grace period that no other manifest references (a blob the repository still links after
     its manifest was deleted). The PUT succeeds or fails on the server's check; the blob's layer links go
     with it, so a client asking again (HEAD) uploads it anew.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from gorae.registry.storage import paths
from gorae.registry.storage.driver import FileInfo, PathNotFound, StorageDriver

DEFAULT_GRACE = 3600.0
GC_DIR = f"{paths.ROOT}/_gc"


@dataclass
class _Repo:
    """What one walk of a repository's directory found: digest -> mtime of each link kind."""

    name: str
    revisions: dict[str, float] = field(default_factory=dict)
    tags: dict[str, tuple[str, float]] = field(default_factory=dict)  # tag -> (link path, mtime)
    layers: dict[str, float] = field(default_factory=dict)
    referrer_links: dict[str, str] = field(default_factory=dict)  # referrer digest -> its link dir


@dataclass
class GcReport:
    """The outcome: what was marked, what was (or in a dry run would be) deleted, what the grace rules kept."""

    marked: set[str] = field(default_factory=set)
    blobs_deleted: list[str] = field(default_factory=list)
    manifests_deleted: list[tuple[str, str]] = field(default_factory=list)  # (repository, digest)
    kept_young: list[str] = field(default_factory=list)
    dry_run: bool = False


def _scan(driver: StorageDriver) -> dict[str, _Repo]:
    """Every repository's links, from one walk of `repositories/`."""
    repos: dict[str, _Repo] = {}
    try:
        entries: Iterable[FileInfo] = driver.walk(paths.REPOSITORIES)
    except PathNotFound:
        return repos
    base = len(paths.REPOSITORIES) + 1
    for info in entries:
        if info.is_dir or not info.path.endswith("/link"):
            continue
        parts = info.path[base:].split("/")
        cut = next((i for i, p in enumerate(parts) if p.startswith("_")), None)
        if not cut:
            continue
        name, rest = "/".join(parts[:cut]), parts[cut:]
        repo = repos.setdefault(name, _Repo(name))
        if rest[:2] == ["_manifests", "revisions"] and len(rest) == 5:
            repo.revisions[f"{rest[2]}:{rest[3]}"] = info.mtime
        elif rest[:2] == ["_manifests", "tags"] and rest[3:] == ["current", "link"] and len(rest) == 5:
            repo.tags[rest[2]] = (info.path, info.mtime)
        elif rest[0] == "_layers" and len(rest) == 4:
            repo.layers[f"{rest[1]}:{rest[2]}"] = info.mtime
        elif rest[0] == "_referrers" and len(rest) == 6:
            repo.referrer_links[f"{rest[3]}:{rest[4]}"] = info.path.rsplit("/", 1)[0]
    return repos


def _references(doc: Any) -> tuple[list[str], list[str], str | None]:
    """(blobs, child manifests, subject) a manifest or index names."""
    blobs: list[str] = []
    children: list[str] = []
    subject: str | None = None
    if not isinstance(doc, dict):
        return blobs, children, subject

    def digest_of(d: Any, key: str = "digest") -> str | None:
        value = d.get(key) if isinstance(d, dict) else None
        return value if isinstance(value, str) else None

    if (config := digest_of(doc.get("config"))) is not None:
        blobs.append(config)
    for key, out, field_name in (
        ("layers", blobs, "digest"),
        ("blobs", blobs, "digest"),
        ("fsLayers", blobs, "blobSum"),
        ("manifests", children, "digest"),
    ):
        items = doc.get(key)
        if isinstance(items, list):
            out.extend(d for d in (digest_of(i, field_name) for i in items) if d is not None)
    subject = digest_of(doc.get("subject"))
    return blobs, children, subject


class _Collector:
    def __init__(
        self,
        driver: StorageDriver,
        dry_run: bool,
        delete_untagged: bool,
        grace: float,
        emit: Callable[[str], None],
    ) -> None:
        self.driver = driver
        self.dry_run = dry_run
        self.delete_untagged = delete_untagged
        self.grace = grace
        self.emit = emit
        self.report = GcReport(dry_run=dry_run)
        self._docs: dict[str, Any] = {}

    # -- reading ----------------------------------------------------------------------------------

    def _doc(self, digest: str) -> Any:
        """The parsed manifest stored as blob `digest` (None if missing or not JSON)."""
        if digest not in self._docs:
            try:
                self._docs[digest] = json.loads(self.driver.get_content(paths.blob_data(digest)))
            except (PathNotFound, ValueError, UnicodeDecodeError):
                self._docs[digest] = None
        return self._docs[digest]

    def _tag_target(self, link: str) -> str | None:
        try:
            value = self.driver.get_content(link).decode().strip()
            paths.split_digest(value)
            return value
        except (PathNotFound, UnicodeDecodeError, ValueError):
            return None

    # -- mark -------------------------------------------------------------------------------------

    def _kept_manifests(self, repo: _Repo, young: float) -> set[str]:
        if not self.delete_untagged:
            return set(repo.revisions)
        kept = {d for d in (self._tag_target(p) for p, _ in repo.tags.values()) if d in repo.revisions}
        kept |= {d for d, mtime in repo.revisions.items() if mtime >= young}  # a push between revision and tag
        while True:
            more: set[str] = set()
            for digest in repo.revisions:
                if digest in kept:
                    _, children, _ = _references(self._doc(digest))
                    more.update(c for c in children if c in repo.revisions)
                else:
                    _, _, subject = _references(self._doc(digest))
                    if subject in kept:
                        more.add(digest)
            if more <= kept:
                return kept
            kept |= more

    def _mark_manifest(self, repo: str, root: str, seen: set[str], quiet: bool = False) -> None:
        """Mark manifest `root`, what it references and its children (depth first, without recursion)."""
        stack = [root]
        while stack:
            digest = stack.pop()
            if digest in seen:
                continue
            seen.add(digest)
            if not quiet:
                self.emit(f"{repo}: marking manifest {digest} ")
            self.report.marked.add(digest)
            doc = self._doc(digest)
            if doc is None:
                self.emit(f"{repo}: manifest {digest} has no readable blob: its references are not marked")
                continue
            blobs, children, _ = _references(doc)
            for blob in blobs:
                if not quiet:
                    self.emit(f"{repo}: marking blob {blob}")
                self.report.marked.add(blob)
            stack.extend(reversed(children))

    # -- the run ----------------------------------------------------------------------------------

    def _start_time(self) -> float:
        """T0 in the storage's clock (a marker's mtime), or the local clock in a dry run."""
        if self.dry_run:
            return time.time()
        marker = f"{GC_DIR}/{uuid.uuid4().hex}"
        self.driver.put_content(marker, b"")
        try:
            return self.driver.stat(marker).mtime
        finally:
            with contextlib.suppress(PathNotFound):
                self.driver.delete(marker)
                if not self.driver.list(GC_DIR):  # the filesystem keeps empty directories
                    self.driver.delete(GC_DIR)

    def run(self) -> GcReport:
        t0 = self._start_time()
        young = t0 - self.grace
        repos = _scan(self.driver)
        untagged: list[tuple[str, str]] = []
        for name in sorted(repos):
            repo = repos[name]
            self.emit(name)
            kept = self._kept_manifests(repo, young)
            seen: set[str] = set()
            for digest in sorted(repo.revisions):
                if digest in kept:
                    self._mark_manifest(name, digest, seen)
                else:
                    self.emit(f"manifest eligible for deletion: {digest}")
                    untagged.append((name, digest))

        blobs = self._blobs()
        candidates: dict[str, str] = {}
        for digest, (directory, mtime) in blobs.items():
            if digest in self.report.marked:
                continue
            if mtime >= young:
                self.report.kept_young.append(digest)
            else:
                candidates[digest] = directory

        # rule 2: what was linked while the gc ran keeps its blobs (and an untagged manifest that young stays)
        rescan = _scan(self.driver)
        self._docs = {d: doc for d, doc in self._docs.items() if doc is not None}  # blobs may have arrived
        for name in sorted(rescan):
            repo = rescan[name]
            fresh = {d for d, m in repo.revisions.items() if m >= young}
            fresh |= {t for t in (self._tag_target(p) for p, m in repo.tags.values() if m >= young) if t}
            seen = set()
            for digest in sorted(fresh):
                self._mark_manifest(name, digest, seen, quiet=True)
            for digest in [d for r, d in untagged if r == name and d in seen]:
                self.emit(f"{name}: manifest {digest} kept: linked while the gc ran")
            untagged = [(r, d) for r, d in untagged if not (r == name and d in seen)]
            for digest, mtime in repo.layers.items():
                if mtime >= young:
                    self.report.marked.add(digest)
        for digest in [d for d in candidates if d in self.report.marked]:
            del candidates[digest]
            self.report.kept_young.append(digest)
        self.emit("")
        self.emit(
            f"{len(self.report.marked)} blobs marked, {len(candidates)} blobs and "
            f"{len(untagged)} manifests eligible for deletion"
        )
        for name, digest in untagged:
            self.report.manifests_deleted.append((name, digest))
            if not self.dry_run:
                self._delete_manifest(repos[name], digest)
        for digest in sorted(candidates):
            self.emit(f"blob eligible for deletion: {digest}")
            self.report.blobs_deleted.append(digest)
            if not self.dry_run:
                self._delete_blob(rescan, digest, candidates[digest])
        return self.report

    def _blobs(self) -> dict[str, tuple[str, float]]:
        """digest -> (blob directory, mtime of its data) for every stored blob."""
        out: dict[str, tuple[str, float]] = {}
        try:
            entries: Iterable[FileInfo] = self.driver.walk(paths.BLOBS)
        except PathNotFound:
            return out
        base = len(paths.BLOBS) + 1
        for info in entries:
            parts = info.path[base:].split("/")
            if info.is_dir or len(parts) != 4 or parts[3] != "data":
                continue
            out[f"{parts[0]}:{parts[2]}"] = (info.path.rsplit("/", 1)[0], info.mtime)
        return out

    def _delete(self, path: str) -> None:
        try:
            self.driver.delete(path)
        except PathNotFound:
            pass

    def _delete_manifest(self, repo: _Repo, digest: str) -> None:
        self._delete(paths.manifest_revision_link(repo.name, digest).rsplit("/", 1)[0])
        if digest in repo.referrer_links:
            self._delete(repo.referrer_links[digest])

    def _delete_blob(self, repos: dict[str, _Repo], digest: str, directory: str) -> None:
        self._delete(directory)
        for repo in repos.values():
            if digest in repo.layers:
                self._delete(paths.layer_link(repo.name, digest).rsplit("/", 1)[0])


def garbage_collect(
    driver: StorageDriver,
    *,
    dry_run: bool = False,
    delete_untagged: bool = False,
    grace: float = DEFAULT_GRACE,
    emit: Callable[[str], None] = print,
) -> GcReport:
    """Mark and sweep `driver`'s registry (see the module docstring); `emit` gets distribution's output lines."""
    if grace < 0:
        raise ValueError("the grace period cannot be negative")
    return _Collector(driver, dry_run, delete_untagged, grace, emit).run()
