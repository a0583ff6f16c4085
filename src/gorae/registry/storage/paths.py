"""The registry's layout on a storage driver: every path the registry reads or writes is made here.

    /docker/registry/v2/
      blobs/<alg>/<hex[:2]>/<hex>/data                      the content, once per digest, whatever repository
      repositories/<name>/                                  <name> may have several components (library/busybox)
        _layers/<alg>/<hex>/link                            "<alg>:<hex>": the repository may serve this blob
        _manifests/revisions/<alg>/<hex>/link               a manifest of the repository (its bytes are a blob)
        _manifests/revisions/<alg>/<hex>/mediatype          its media type when the manifest names none itself
        _manifests/tags/<tag>/current/link                  the digest the tag points at
        _referrers/<alg>/<subject-hex>/<alg>/<hex>/link      a manifest whose `subject` is <subject>
        _uploads/<uuid>/data                                an upload in progress, appended request by request
        _uploads/<uuid>/startedat                           RFC 3339 time the upload began (for gc of stale ones)

Blobs are content-addressed and shared; a repository only holds links, so a cross-repository mount is one link
write and deleting a blob from a repository removes its link, not the data (`gorae registry gc` sweeps blobs no
link or manifest reaches). The same layout as distribution's (`registry/storage/paths.go`), so its tools read
it, plus `_referrers`, the index the referrers API answers from. Repository name components never start with
`_`, so `_layers`, `_manifests`, ... cannot clash with a nested repository name.

Callers pass names, tags and digests already validated (`gorae.registry.names`); these functions still refuse
anything that would not be a single path component.
"""

from __future__ import annotations

import re

ROOT = "/docker/registry/v2"
BLOBS = f"{ROOT}/blobs"
REPOSITORIES = f"{ROOT}/repositories"

_ALG = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*")
_HEX = re.compile(r"[a-zA-Z0-9=_-]+")
_COMPONENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")


def split_digest(digest: str) -> tuple[str, str]:
    """ "sha256:abc" -> ("sha256", "abc"); ValueError if it cannot be a path."""
    alg, sep, hexpart = digest.partition(":")
    if not sep or _ALG.fullmatch(alg) is None or _HEX.fullmatch(hexpart) is None:
        raise ValueError(f"not a digest: {digest!r}")
    return alg, hexpart


def _component(value: str, what: str) -> str:
    if _COMPONENT.fullmatch(value) is None or ".." in value:
        raise ValueError(f"not a valid {what}: {value!r}")
    return value


def _repo(name: str) -> str:
    for part in name.split("/"):
        _component(part, "repository name")
        if part.startswith("_"):
            raise ValueError(f"not a valid repository name: {name!r}")
    return f"{REPOSITORIES}/{name}"


def blob_dir(digest: str) -> str:
    alg, hexpart = split_digest(digest)
    return f"{BLOBS}/{alg}/{hexpart[:2]}/{hexpart}"


def blob_data(digest: str) -> str:
    return f"{blob_dir(digest)}/data"


def repository_dir(name: str) -> str:
    return _repo(name)


def layer_link(name: str, digest: str) -> str:
    alg, hexpart = split_digest(digest)
    return f"{_repo(name)}/_layers/{alg}/{hexpart}/link"


def layers_dir(name: str) -> str:
    return f"{_repo(name)}/_layers"


def manifest_revision_link(name: str, digest: str) -> str:
    return f"{manifest_revision_dir(name, digest)}/link"


def manifest_media_type(name: str, digest: str) -> str:
    return f"{manifest_revision_dir(name, digest)}/mediatype"


def manifest_revision_dir(name: str, digest: str) -> str:
    alg, hexpart = split_digest(digest)
    return f"{_repo(name)}/_manifests/revisions/{alg}/{hexpart}"


def referrer_dir(name: str, subject: str, digest: str) -> str:
    alg, hexpart = split_digest(digest)
    return f"{referrers_dir(name, subject)}/{alg}/{hexpart}"


def manifest_revisions_dir(name: str) -> str:
    return f"{_repo(name)}/_manifests/revisions"


def tags_dir(name: str) -> str:
    return f"{_repo(name)}/_manifests/tags"


def tag_dir(name: str, tag: str) -> str:
    return f"{tags_dir(name)}/{_component(tag, 'tag')}"


def tag_current_link(name: str, tag: str) -> str:
    return f"{tag_dir(name, tag)}/current/link"


def referrers_dir(name: str, subject: str) -> str:
    alg, hexpart = split_digest(subject)
    return f"{_repo(name)}/_referrers/{alg}/{hexpart}"


def referrer_link(name: str, subject: str, digest: str) -> str:
    return f"{referrer_dir(name, subject, digest)}/link"


def uploads_dir(name: str) -> str:
    return f"{_repo(name)}/_uploads"


def upload_data(name: str, upload_id: str) -> str:
    return f"{upload_dir(name, upload_id)}/data"


def upload_started(name: str, upload_id: str) -> str:
    return f"{upload_dir(name, upload_id)}/startedat"


def upload_dir(name: str, upload_id: str) -> str:
    return f"{uploads_dir(name)}/{_component(upload_id, 'upload id')}"


def digest_from_link_path(path: str) -> str:
    """`.../<alg>/<hex>/link` (or `.../<alg>/<hex>`) -> "<alg>:<hex>"."""
    parts = path.rstrip("/").split("/")
    if parts[-1] == "link":
        parts.pop()
    return f"{parts[-2]}:{parts[-1]}"
