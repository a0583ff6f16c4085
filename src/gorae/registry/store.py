"""The registry's content over a storage driver: blobs, manifests, tags, uploads, referrers, the catalog.

Owns the meaning of the layout in `storage.paths`: a repository may serve a blob once it has a link to it;
a blob's bytes are written once, by moving a verified upload into place (never by writing in place, so a
reader never sees a partial blob); a manifest is a blob plus a revision link (plus a tag link, plus referrer
links for its subject). Upload data is appended request by request; the running hash of an upload lives in
this process (`UploadHash`) and is rebuilt from the stored data when it is missing (another process took
the earlier requests) or behind. Every method blocks: the HTTP handlers call them off the event loop.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from gorae.registry.storage import paths
from gorae.registry.storage.driver import FileReader, FileWriter, PathNotFound, StorageDriver

HASH_READ = 4 * 1024 * 1024
_MAX_HASH_STATES = 4096


@dataclass
class UploadHash:
    """The sha256 of an upload's first `size` bytes, kept between its requests."""

    hasher: Any
    size: int


class RegistryStore:
    """Repositories on one storage driver."""

    def __init__(self, driver: StorageDriver) -> None:
        self.driver = driver
        self._hashes: OrderedDict[str, UploadHash] = OrderedDict()
        self._lock = threading.Lock()

    # -- blobs ------------------------------------------------------------------------------------

    def blob_size(self, digest: str) -> int | None:
        """The stored blob's size, None if no such blob."""
        try:
            info = self.driver.stat(paths.blob_data(digest))
        except PathNotFound:
            return None
        return None if info.is_dir else info.size

    def has_link(self, name: str, digest: str) -> bool:
        for link in (paths.layer_link(name, digest), paths.manifest_revision_link(name, digest)):
            try:
                self.driver.stat(link)
                return True
            except PathNotFound:
                continue
        return False

    def repo_blob_size(self, name: str, digest: str) -> int | None:
        """The blob's size if repository `name` may serve it."""
        if not self.has_link(name, digest):
            return None
        return self.blob_size(digest)

    def link_blob(self, name: str, digest: str) -> None:
        self.driver.put_content(paths.layer_link(name, digest), digest.encode())

    def unlink_blob(self, name: str, digest: str) -> bool:
        try:
            self.driver.delete(paths.layer_link(name, digest))
            return True
        except PathNotFound:
            return False

    def blob_local_path(self, digest: str) -> str | None:
        return self.driver.local_path(paths.blob_data(digest))

    def blob_reader(self, digest: str, offset: int) -> FileReader:
        return self.driver.reader(paths.blob_data(digest), offset)

    def blob_bytes(self, digest: str) -> bytes:
        return self.driver.get_content(paths.blob_data(digest))

    def put_blob(self, digest: str, data: bytes) -> None:
        """Store bytes already verified against `digest` (a manifest) unless stored."""
        if self.blob_size(digest) is None:
            self.driver.put_content(paths.blob_data(digest), data)

    # -- uploads ----------------------------------------------------------------------------------

    def start_upload(self, name: str) -> str:
        upload_id = str(uuid.uuid4())
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        self.driver.put_content(paths.upload_started(name, upload_id), now.encode())
        w = self.driver.writer(paths.upload_data(name, upload_id))
        w.close()
        self._remember(upload_id, UploadHash(hashlib.sha256(), 0))
        return upload_id

    def upload_size(self, name: str, upload_id: str) -> int | None:
        """Bytes received so far, None if there is no such upload."""
        try:
            self.driver.stat(paths.upload_started(name, upload_id))
            return self.driver.stat(paths.upload_data(name, upload_id)).size
        except PathNotFound:
            return None

    def upload_writer(self, name: str, upload_id: str) -> FileWriter:
        return self.driver.writer(paths.upload_data(name, upload_id), append=True)

    def upload_hash(self, upload_id: str, size: int) -> UploadHash | None:
        """The running hash if it covers exactly the first `size` bytes (else the caller rehashes at commit)."""
        with self._lock:
            state = self._hashes.get(upload_id)
            if state is not None and state.size != size:
                del self._hashes[upload_id]
                return None
            return state

    def _remember(self, upload_id: str, state: UploadHash) -> None:
        with self._lock:
            self._hashes[upload_id] = state
            self._hashes.move_to_end(upload_id)
            while len(self._hashes) > _MAX_HASH_STATES:
                self._hashes.popitem(last=False)

    def keep_hash(self, upload_id: str, state: UploadHash) -> None:
        self._remember(upload_id, state)

    def cancel_upload(self, name: str, upload_id: str) -> bool:
        with self._lock:
            self._hashes.pop(upload_id, None)
        try:
            self.driver.delete(paths.upload_dir(name, upload_id))
            return True
        except PathNotFound:
            return False

    def upload_digest(self, name: str, upload_id: str, algorithm: str) -> tuple[str, int]:
        """The digest and size of everything uploaded so far (the kept hash caught up from storage)."""
        size = self.driver.stat(paths.upload_data(name, upload_id)).size
        state = self.upload_hash(upload_id, size) if algorithm == "sha256" else None
        hasher: Any = state.hasher.copy() if state is not None else hashlib.new(algorithm)
        done = state.size if state is not None else 0
        if done < size:
            r = self.driver.reader(paths.upload_data(name, upload_id), done)
            try:
                while chunk := r.read(HASH_READ):
                    hasher.update(chunk)
                    done += len(chunk)
            finally:
                r.close()
        return f"{algorithm}:{hasher.hexdigest()}", done

    def commit_upload(self, name: str, upload_id: str, digest: str) -> None:
        """Move the verified upload into place as blob `digest` (unless stored already), link it, tidy."""
        data = paths.upload_data(name, upload_id)
        if self.blob_size(digest) is None:
            self.driver.move(data, paths.blob_data(digest))
        self.link_blob(name, digest)
        self.cancel_upload(name, upload_id)

    # -- manifests --------------------------------------------------------------------------------

    def put_manifest(self, name: str, digest: str, data: bytes, media_type: str, tag: str | None) -> None:
        self.put_blob(digest, data)
        self.driver.put_content(paths.manifest_media_type(name, digest), media_type.encode())
        self.driver.put_content(paths.manifest_revision_link(name, digest), digest.encode())
        if tag is not None:
            self.driver.put_content(paths.tag_current_link(name, tag), digest.encode())

    def add_referrer(self, name: str, subject: str, digest: str) -> None:
        self.driver.put_content(paths.referrer_link(name, subject, digest), digest.encode())

    def has_manifest(self, name: str, digest: str) -> bool:
        try:
            self.driver.stat(paths.manifest_revision_link(name, digest))
            return True
        except PathNotFound:
            return False

    def manifest(self, name: str, digest: str) -> tuple[bytes, str] | None:
        """(bytes, media type) of a manifest of the repository, None if it has none by that digest."""
        if not self.has_manifest(name, digest):
            return None
        try:
            data = self.blob_bytes(digest)
        except PathNotFound:
            return None
        return data, self._media_type(name, digest, data)

    def _media_type(self, name: str, digest: str, data: bytes) -> str:
        try:
            doc = json.loads(data)
            if isinstance(doc, dict) and isinstance(doc.get("mediaType"), str) and doc["mediaType"]:
                return str(doc["mediaType"])
        except ValueError:
            pass
        try:
            return self.driver.get_content(paths.manifest_media_type(name, digest)).decode()
        except PathNotFound:
            return "application/vnd.oci.image.manifest.v1+json"

    def resolve_tag(self, name: str, tag: str) -> str | None:
        try:
            return self.driver.get_content(paths.tag_current_link(name, tag)).decode().strip()
        except PathNotFound:
            return None

    def delete_tag(self, name: str, tag: str) -> bool:
        try:
            self.driver.delete(paths.tag_dir(name, tag))
            return True
        except PathNotFound:
            return False

    def delete_manifest(self, name: str, digest: str) -> bool:
        """Remove the revision, every tag pointing at it, and its referrer link (the blob stays for gc)."""
        found = self.manifest(name, digest)
        if found is None:
            return False
        for tag in self.tags(name):
            if self.resolve_tag(name, tag) == digest:
                self.delete_tag(name, tag)
        try:
            subject = json.loads(found[0]).get("subject", {}).get("digest")
            if isinstance(subject, str):
                self.driver.delete(paths.referrer_dir(name, subject, digest))
        except (ValueError, AttributeError, PathNotFound):
            pass
        self.driver.delete(paths.manifest_revision_dir(name, digest))
        return True

    def tags(self, name: str) -> list[str]:
        try:
            children = self.driver.list(paths.tags_dir(name))
        except PathNotFound:
            return []
        return sorted(c.rsplit("/", 1)[1] for c in children)

    def repository_exists(self, name: str) -> bool:
        try:
            return self.driver.stat(paths.repository_dir(name)).is_dir
        except PathNotFound:
            return False

    def referrers(self, name: str, subject: str) -> list[str]:
        """Digests of the repository's manifests whose subject is `subject`."""
        out: list[str] = []
        try:
            algs = self.driver.list(paths.referrers_dir(name, subject))
        except PathNotFound:
            return out
        for alg_dir in algs:
            try:
                entries = self.driver.list(alg_dir)
            except PathNotFound:
                continue
            for entry in entries:
                digest = paths.digest_from_link_path(entry)
                if self.has_manifest(name, digest):
                    out.append(digest)
        return sorted(out)

    def repositories(self) -> list[str]:
        """Every repository name (a directory with `_layers`, `_manifests` or `_uploads` below it)."""
        out: list[str] = []
        root = paths.REPOSITORIES
        try:
            top = self.driver.list(root)
        except PathNotFound:
            return out
        stack = list(reversed(top))
        while stack:
            d = stack.pop()
            try:
                children = self.driver.list(d)
            except PathNotFound:
                continue
            names = [c.rsplit("/", 1)[1] for c in children]
            if any(n.startswith("_") for n in names):
                out.append(d[len(root) + 1 :])
            stack.extend(reversed([c for c, n in zip(children, names, strict=True) if not n.startswith("_")]))
        return sorted(out)
