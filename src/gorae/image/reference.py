"""Image references for the image service: the parser lives in the base module `gorae.reference` (the CLI
needs it too); this module keeps the image package's name for it."""

from gorae.reference import (
    DEFAULT_DOMAIN,
    DEFAULT_TAG,
    ID_RE,
    LEGACY_DOMAIN,
    NAME_TOTAL_MAX,
    OFFICIAL_PREFIX,
    SHORT_ID_RE,
    TAG_RE,
    Reference,
    is_short_id,
    parse,
    parse_repository,
    parse_tagged,
)

__all__ = [
    "DEFAULT_DOMAIN",
    "DEFAULT_TAG",
    "ID_RE",
    "LEGACY_DOMAIN",
    "NAME_TOTAL_MAX",
    "OFFICIAL_PREFIX",
    "SHORT_ID_RE",
    "TAG_RE",
    "Reference",
    "is_short_id",
    "parse",
    "parse_repository",
    "parse_tagged",
]
