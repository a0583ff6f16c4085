"""Storage of gorae's state: the SQLite metadata store (documents, names, events) and the content store.

`MetadataStore` (metadata.py) keeps JSON documents by kind and id; `ContentStore` (content.py) keeps blobs
by their sha256 digest; `digest.py` validates digests before any of them becomes a path.
"""

from gorae.store.content import ContentStore
from gorae.store.digest import parse_digest, sha256_digest
from gorae.store.metadata import MetadataStore

__all__ = ["ContentStore", "MetadataStore", "parse_digest", "sha256_digest"]
