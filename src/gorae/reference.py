"""Image references per the distribution reference grammar, normalised as docker does (a base module: the
daemon's image service and the `gorae` CLI both parse with it).

`parse("busybox")` gives `Reference(domain="docker.io", path="library/busybox", tag=None, digest=None)`;
`.name` is "docker.io/library/busybox", `.familiar_name` is "busybox" and `.familiar()` the display form
docker puts in RepoTags ("busybox:latest"). Errors carry docker's texts ("invalid reference format", ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gorae.errors import InvalidParameter

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEP = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEP}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"

REFERENCE_RE = re.compile(rf"({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?", re.ASCII)
TAG_RE = re.compile(_TAG, re.ASCII)
DOMAIN_RE = re.compile(_DOMAIN, re.ASCII)
PATH_RE = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*", re.ASCII)
ID_RE = re.compile(r"[a-f0-9]{64}")
SHORT_ID_RE = re.compile(r"(?:sha256:)?[a-f0-9]{1,64}")


@dataclass(frozen=True)
class Reference:
    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        if self.domain == DEFAULT_DOMAIN:
            path = self.path
            if path.startswith(OFFICIAL_PREFIX) and "/" not in path[len(OFFICIAL_PREFIX) :]:
                return path[len(OFFICIAL_PREFIX) :]
            return path
        return self.name

    def with_default_tag(self) -> Reference:
        if self.tag is None and self.digest is None:
            return Reference(self.domain, self.path, DEFAULT_TAG, None)
        return self

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.domain, self.path, tag, None)

    def familiar(self) -> str:
        """The display form docker uses ("busybox:latest", "localhost:5000/x@sha256:...")."""
        out = self.familiar_name
        if self.tag is not None:
            out += ":" + self.tag
        if self.digest is not None:
            out += "@" + self.digest
        return out

    def __str__(self) -> str:
        out = self.name
        if self.tag is not None:
            out += ":" + self.tag
        if self.digest is not None:
            out += "@" + self.digest
        return out


def _split_domain(name: str) -> tuple[str, str]:
    i = name.find("/")
    if i == -1 or (
        not any(c in name[:i] for c in ".:") and name[:i] != "localhost" and name[:i].lower() == name[:i]
    ):
        domain, rest = DEFAULT_DOMAIN, name
    else:
        domain, rest = name[:i], name[i + 1 :]
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in rest:
        rest = OFFICIAL_PREFIX + rest
    return domain, rest


_DIGEST_HEX_LEN = {"sha256": 64, "sha384": 96, "sha512": 128}


def _check_digest(digest: str) -> None:
    """go-digest's Digest.Validate, with its error texts."""
    algo, _, encoded = digest.partition(":")
    size = _DIGEST_HEX_LEN.get(algo)
    if size is None:
        raise InvalidParameter("unsupported digest algorithm")
    if len(encoded) != size:
        raise InvalidParameter("invalid checksum digest length")
    if not re.fullmatch(r"[a-f0-9]+", encoded):
        raise InvalidParameter("invalid checksum digest format")


def parse(s: str) -> Reference:
    """Parse and normalise a reference as docker's ParseNormalizedNamed (no default tag added), with its
    checks in its order and its error texts."""
    if not isinstance(s, str):
        raise InvalidParameter("invalid reference format")
    if ID_RE.fullmatch(s):
        raise InvalidParameter(f"invalid repository name ({s}), cannot specify 64-byte hexadecimal strings")
    domain, remainder = _split_domain(s)
    colon = remainder.find(":")
    remote = remainder[:colon] if colon > -1 else remainder
    if remote.lower() != remote:
        raise InvalidParameter(f"invalid reference format: repository name ({remote}) must be lowercase")
    full = f"{domain}/{remainder}"
    m = REFERENCE_RE.fullmatch(full)
    if m is None:
        if REFERENCE_RE.fullmatch(full.lower()) is not None:
            raise InvalidParameter("repository name must be lowercase")
        raise InvalidParameter("invalid reference format")
    name, tag, digest = m.group(1), m.group(2), m.group(3)
    if len(name) > NAME_TOTAL_MAX:
        raise InvalidParameter(f"repository name must not be more than {NAME_TOTAL_MAX} characters")
    if digest is not None:
        _check_digest(digest)
    # the regex may split "host:port/..." differently from docker's domain rule: keep docker's split
    path = name[len(domain) + 1 :]
    return Reference(domain, path, tag, digest)


def parse_tagged(s: str) -> Reference:
    """A reference with "latest" added when it has neither tag nor digest (what `docker pull x` means)."""
    return parse(s).with_default_tag()


def parse_repository(repo: str, tag: str | None) -> Reference:
    """A repository name and a separate tag, as in POST /images/{name}/tag?repo=&tag=."""
    ref = parse(repo)
    if ref.digest is not None or ref.tag is not None and tag:
        raise InvalidParameter("invalid reference format")
    if tag:
        if not TAG_RE.fullmatch(tag):
            raise InvalidParameter(f"invalid tag format: {tag!r}" if tag else "invalid reference format")
        return ref.with_tag(tag)
    return ref.with_default_tag()


def is_short_id(s: str) -> bool:
    return SHORT_ID_RE.fullmatch(s) is not None
